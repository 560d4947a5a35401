import { CAPACITY_TOPIC, type CapacityAdvert, CapacityAdvertCodec, type GcnNode, plainBytes, signEnvelope, silentLogger } from '@gcn/core'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'chai'
import { SupplierDirectory, type SupplierEntry } from '../src/directory.js'
import { ROUTER_DEFAULTS, type RouterInit, TaskRouter } from '../src/router.js'

const MODEL = 'cc'.repeat(32)
const OTHER_MODEL = 'dd'.repeat(32)
const NONE: ReadonlySet<string> = new Set()

/** select() only reads the directory; the node is used by stream() alone. */
const NO_NODE = undefined as unknown as GcnNode

/**
 * A scripted source of randomness: returns the given values in order (and
 * fails the test if select() asks for more than scripted).
 */
function scripted(...values: number[]): () => number {
  return () => {
    const v = values.shift()
    if (v === undefined) throw new Error('random() called more often than scripted')
    return v
  }
}

/** Deterministic PRNG (mulberry32) for the statistical test. */
function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Fixture {
  directory: SupplierDirectory
  /** Entries by the name given to supplier(). */
  entries: Map<string, SupplierEntry>
  names: Map<string, string>
  router(random: () => number, init?: RouterInit): TaskRouter
  supplier(name: string, advert?: Partial<CapacityAdvert>): Promise<SupplierEntry>
  nameOf(entry: SupplierEntry | undefined): string | undefined
  id(name: string): string
}

let seq = 1

async function fixture(): Promise<Fixture> {
  const directory = new SupplierDirectory({}, { node: NO_NODE, logger: silentLogger })
  const entries = new Map<string, SupplierEntry>()
  const names = new Map<string, string>()
  const keys = new Map<string, PrivateKey>()
  return {
    directory,
    entries,
    names,
    router: (random, init = {}) => new TaskRouter(init, { node: NO_NODE, directory, logger: silentLogger, random }),
    async supplier(name, overrides = {}) {
      const key = keys.get(name) ?? (await generateKeyPair('Ed25519'))
      keys.set(name, key)
      const advert: CapacityAdvert = {
        peerId: peerIdFromPrivateKey(key).toString(),
        multiaddrs: [plainBytes(multiaddr('/ip4/127.0.0.1/tcp/4001').bytes)],
        models: [{ id: MODEL, name: 'tiny', contextSize: 2048, pricePer1kTokens: 10n }],
        freeSlots: 2,
        totalSlots: 2,
        queueDepth: 0,
        tokensPerSecond: 50,
        ttftMs: 100,
        rewardAddress: `0x${'ab'.repeat(20)}`,
        timestampMs: Date.now(),
        seq: seq++,
        ...overrides
      }
      const entry = await directory.ingest(await signEnvelope(key, CAPACITY_TOPIC, CapacityAdvertCodec.encode(advert)))
      entries.set(name, entry)
      names.set(entry.peerId.toString(), name)
      return entry
    },
    nameOf: entry => (entry === undefined ? undefined : names.get(entry.peerId.toString())),
    id: name => entries.get(name)!.peerId.toString()
  }
}

/** Pins a session to a supplier as stream() does after a successful task (remember() is private). */
function pinSession(router: TaskRouter, sessionId: string, peerId: string): void {
  ;(router as unknown as { remember(sessionId: string, peerId: string): void }).remember(sessionId, peerId)
}

describe('TaskRouter.select', () => {
  let f: Fixture

  beforeEach(async () => {
    f = await fixture()
  })

  it('with two candidates always picks the cheaper one, whichever is sampled first', async () => {
    await f.supplier('slow', { ttftMs: 200 })
    await f.supplier('fast', { ttftMs: 20 })
    for (const first of [0, 0.99]) {
      const router = f.router(scripted(first, 0))
      expect(f.nameOf(router.select(MODEL, undefined, NONE))).to.equal('fast')
    }
  })

  it('compares only the two sampled candidates (power of two choices, not the global best)', async () => {
    // Directory order is insertion order: best, mid, worst.
    await f.supplier('best', { ttftMs: 10 })
    await f.supplier('mid', { ttftMs: 50 })
    await f.supplier('worst', { ttftMs: 500 })
    // i = floor(0.5 * 3) = 1 (mid); j = floor(0.9 * 2) = 1, bumped past i to 2 (worst).
    expect(f.nameOf(f.router(scripted(0.5, 0.9)).select(MODEL, undefined, NONE))).to.equal('mid')
    // i = 2 (worst); j = floor(0 * 2) = 0 (best).
    expect(f.nameOf(f.router(scripted(0.9, 0)).select(MODEL, undefined, NONE))).to.equal('best')
    // The two samples are always distinct: i = 0, j = 0 → bumped to 1.
    expect(f.nameOf(f.router(scripted(0, 0)).select(MODEL, undefined, NONE))).to.equal('best')
    // i = 1 (mid), j = 0 (best).
    expect(f.nameOf(f.router(scripted(0.4, 0.1)).select(MODEL, undefined, NONE))).to.equal('best')
  })

  it('spreads load: the worst supplier is never chosen and the middle one sometimes is', async () => {
    await f.supplier('best', { ttftMs: 10 })
    await f.supplier('mid', { ttftMs: 50 })
    await f.supplier('worst', { ttftMs: 500 })
    const router = f.router(seeded(42))
    const counts = new Map<string, number>()
    for (let n = 0; n < 3_000; n++) {
      const name = f.nameOf(router.select(MODEL, undefined, NONE))!
      counts.set(name, (counts.get(name) ?? 0) + 1)
    }
    // p2c over three: the best wins whenever sampled (2/3), mid only against worst (1/3).
    expect(counts.get('worst') ?? 0).to.equal(0)
    expect(counts.get('best')! / 3_000).to.be.within(0.6, 0.73)
    expect(counts.get('mid')! / 3_000).to.be.within(0.27, 0.4)
  })

  it('outstanding work raises the cost', async () => {
    const fast = await f.supplier('fast', { ttftMs: 20, totalSlots: 4, freeSlots: 4 })
    await f.supplier('slow', { ttftMs: 50, totalSlots: 4, freeSlots: 4 })
    expect(f.nameOf(f.router(scripted(0, 0)).select(MODEL, undefined, NONE))).to.equal('fast')
    // 20 × (2 + 1) = 60 > 50 × 1.
    fast.outstanding = 2
    expect(f.nameOf(f.router(scripted(0, 0)).select(MODEL, undefined, NONE))).to.equal('slow')
    // 20 × (1 + 1) = 40 < 50.
    fast.outstanding = 1
    expect(f.nameOf(f.router(scripted(0, 0)).select(MODEL, undefined, NONE))).to.equal('fast')
  })

  it("the supplier's advertised queue raises its cost", async () => {
    await f.supplier('queued', { ttftMs: 20, totalSlots: 2, freeSlots: 0, queueDepth: 6 })
    await f.supplier('idle', { ttftMs: 50, totalSlots: 2, freeSlots: 2 })
    // 20 × (1 + 6 / 2) = 80 > 50.
    expect(f.nameOf(f.router(scripted(0, 0)).select(MODEL, undefined, NONE))).to.equal('idle')
  })

  it('measured EWMA TTFT beats the advertised figure', async () => {
    const claims = await f.supplier('claims-fast', { ttftMs: 10 })
    await f.supplier('honest', { ttftMs: 100 })
    expect(f.nameOf(f.router(scripted(0, 0)).select(MODEL, undefined, NONE))).to.equal('claims-fast')
    // We measured 400 ms on our own tasks: the claim no longer counts.
    f.directory.recordResult(claims.peerId.toString(), { ok: true, ttftMs: 400 })
    expect(claims.ewmaTtftMs).to.equal(400)
    expect(f.nameOf(f.router(scripted(0, 0)).select(MODEL, undefined, NONE))).to.equal('honest')
    // And a measurement can also redeem a supplier that advertises badly.
    f.directory.recordResult(f.id('honest'), { ok: true, ttftMs: 500 })
    expect(f.nameOf(f.router(scripted(0, 0)).select(MODEL, undefined, NONE))).to.equal('claims-fast')
  })

  it('uses defaultTtftMs for a supplier that advertises no TTFT and was never measured', async () => {
    await f.supplier('unknown', { ttftMs: 0 })
    await f.supplier('known', { ttftMs: 80 })
    expect(f.nameOf(f.router(scripted(0, 0)).select(MODEL, undefined, NONE))).to.equal('unknown')
    expect(f.nameOf(f.router(scripted(0, 0), { defaultTtftMs: 120 }).select(MODEL, undefined, NONE))).to.equal('known')
    expect(ROUTER_DEFAULTS.defaultTtftMs).to.be.lessThan(80)
  })

  it('failures raise the cost until successes dilute them', async () => {
    const flaky = await f.supplier('flaky', { ttftMs: 60 })
    await f.supplier('steady', { ttftMs: 100 })
    expect(f.nameOf(f.router(scripted(0, 0)).select(MODEL, undefined, NONE))).to.equal('flaky')
    // Penalty 1 + failures / (attempts + 1): three failures give 60 × 1.75 = 105 > 100.
    f.directory.recordResult(flaky.peerId.toString(), { ok: false })
    f.directory.recordResult(flaky.peerId.toString(), { ok: false })
    f.directory.recordResult(flaky.peerId.toString(), { ok: false })
    expect(f.nameOf(f.router(scripted(0, 0)).select(MODEL, undefined, NONE))).to.equal('steady')
    // One success: 1 + 3/5 → 96 < 100.
    f.directory.recordResult(flaky.peerId.toString(), { ok: true })
    expect(f.nameOf(f.router(scripted(0, 0)).select(MODEL, undefined, NONE))).to.equal('flaky')
  })

  describe('session affinity', () => {
    it('keeps a session on its supplier while it has a free slot, even when another is cheaper', async () => {
      const pinned = await f.supplier('pinned', { ttftMs: 300, totalSlots: 2 })
      await f.supplier('cheap', { ttftMs: 10, totalSlots: 2 })
      const router = f.router(scripted())
      pinSession(router, 'npc-7', f.id('pinned'))
      // No random draw needed: the pinned supplier is returned directly.
      expect(f.nameOf(router.select(MODEL, 'npc-7', NONE))).to.equal('pinned')
      pinned.outstanding = 1
      expect(f.nameOf(router.select(MODEL, 'npc-7', NONE))).to.equal('pinned')
    })

    it('moves a session once its supplier has outstanding >= totalSlots (load guard)', async () => {
      const pinned = await f.supplier('pinned', { ttftMs: 100, totalSlots: 2 })
      await f.supplier('other', { ttftMs: 100, totalSlots: 2 })
      const router = f.router(scripted(0, 0, 0, 0))
      pinSession(router, 'npc-7', f.id('pinned'))
      pinned.outstanding = 2
      expect(f.nameOf(router.select(MODEL, 'npc-7', NONE))).to.equal('other')
      pinned.outstanding = 3
      expect(f.nameOf(router.select(MODEL, 'npc-7', NONE))).to.equal('other')
      // Back under its slot count, the session returns.
      pinned.outstanding = 1
      expect(f.nameOf(router.select(MODEL, 'npc-7', NONE))).to.equal('pinned')
    })

    it('other sessions and requests without a session are not pinned', async () => {
      await f.supplier('pinned', { ttftMs: 300 })
      await f.supplier('cheap', { ttftMs: 10 })
      const router = f.router(scripted(0, 0, 0, 0, 0, 0))
      pinSession(router, 'npc-7', f.id('pinned'))
      expect(f.nameOf(router.select(MODEL, 'npc-8', NONE))).to.equal('cheap')
      expect(f.nameOf(router.select(MODEL, undefined, NONE))).to.equal('cheap')
      expect(f.nameOf(router.select(MODEL, '', NONE))).to.equal('cheap')
    })

    it('leaves an excluded pinned supplier (a failed attempt) for another', async () => {
      await f.supplier('pinned', { ttftMs: 10 })
      await f.supplier('other', { ttftMs: 300 })
      const router = f.router(scripted())
      pinSession(router, 'npc-7', f.id('pinned'))
      expect(f.nameOf(router.select(MODEL, 'npc-7', new Set([f.id('pinned')])))).to.equal('other')
    })

    it('forgets the oldest sessions beyond maxSessions', async () => {
      await f.supplier('pinned', { ttftMs: 300 })
      await f.supplier('cheap', { ttftMs: 10 })
      const router = f.router(scripted(0, 0), { maxSessions: 2 })
      pinSession(router, 's1', f.id('pinned'))
      pinSession(router, 's2', f.id('pinned'))
      pinSession(router, 's3', f.id('pinned'))
      expect(f.nameOf(router.select(MODEL, 's3', NONE))).to.equal('pinned')
      expect(f.nameOf(router.select(MODEL, 's1', NONE)), 's1 was evicted').to.equal('cheap')
    })
  })

  it('respects the exclusion set', async () => {
    await f.supplier('a', { ttftMs: 10 })
    await f.supplier('b', { ttftMs: 20 })
    await f.supplier('c', { ttftMs: 30 })
    const router = f.router(scripted(0, 0))
    expect(f.nameOf(router.select(MODEL, undefined, new Set([f.id('a')])))).to.equal('b')
    // One candidate left: no random draw.
    expect(f.nameOf(router.select(MODEL, undefined, new Set([f.id('a'), f.id('b')])))).to.equal('c')
    expect(router.select(MODEL, undefined, new Set([f.id('a'), f.id('b'), f.id('c')]))).to.equal(undefined)
  })

  it('returns undefined when nobody is eligible', async () => {
    const router = f.router(scripted())
    expect(router.select(MODEL, undefined, NONE), 'empty directory').to.equal(undefined)
    await f.supplier('other-model', { models: [{ id: OTHER_MODEL, name: 'other', contextSize: 512, pricePer1kTokens: 1n }] })
    expect(router.select(MODEL, undefined, NONE), 'nobody serves the model').to.equal(undefined)
    const full = await f.supplier('full', { totalSlots: 2 })
    // Eligible while outstanding < totalSlots + maxQueuedPerSupplier (2 + 4).
    full.outstanding = 5
    expect(f.nameOf(router.select(MODEL, undefined, NONE))).to.equal('full')
    full.outstanding = 6
    expect(router.select(MODEL, undefined, NONE), 'the only supplier is saturated').to.equal(undefined)
    expect(f.router(scripted(), { maxQueuedPerSupplier: 10 }).select(MODEL, undefined, NONE)).to.equal(full)
  })

  it('skips expired suppliers', async () => {
    const directory = new SupplierDirectory({ expireAfterMs: 200 }, { node: NO_NODE, logger: silentLogger })
    const key = await generateKeyPair('Ed25519')
    const advert: CapacityAdvert = {
      peerId: peerIdFromPrivateKey(key).toString(),
      multiaddrs: [],
      models: [{ id: MODEL, name: 'tiny', contextSize: 2048, pricePer1kTokens: 10n }],
      freeSlots: 1,
      totalSlots: 1,
      queueDepth: 0,
      tokensPerSecond: 1,
      ttftMs: 1,
      rewardAddress: `0x${'ab'.repeat(20)}`,
      timestampMs: Date.now(),
      seq: 1
    }
    await directory.ingest(await signEnvelope(key, CAPACITY_TOPIC, CapacityAdvertCodec.encode(advert)))
    const router = new TaskRouter({}, { node: NO_NODE, directory, logger: silentLogger, random: scripted() })
    expect(router.select(MODEL, undefined, NONE)).to.not.equal(undefined)
    await new Promise(resolve => setTimeout(resolve, 300))
    expect(router.select(MODEL, undefined, NONE)).to.equal(undefined)
  })
})
