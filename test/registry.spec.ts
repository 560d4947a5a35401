import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  AckedWriteStream,
  BlockClock,
  createGcnNode,
  type GcnNode,
  ProofVerdict,
  plainBytes,
  REGISTRY_SUBMIT_PROTOCOL,
  ReceiptBatchCodec,
  type RegistryAck,
  RegistryClient,
  RegistryRejectedError,
  type SignedEnvelope,
  silentLogger
} from '@gcn/core'
import { expect } from 'chai'
import { gcn, killAll, type Proc, waitFor } from './helpers/procs.js'
import {
  type ClockSettings,
  freePort,
  hexOf,
  makeParty,
  makeReceipt,
  type Party,
  type RegistryNode,
  signBatch,
  signConfirmation,
  startBootstrap,
  startRegistries,
  type Totals,
  waitForIdenticalBlocks
} from './helpers/registry.js'

const ACCEPT_BLOCKS_BEHIND = 30

/** What one ingest run sent and what was acknowledged. */
interface IngestResult {
  submitted: number
  batches: number
  ackedBatches: number
  /** Batches whose first registry did not acknowledge them, re-sent through the failover client. */
  retried: number
  /** Hex task ids of every receipt whose batch was acked (ack.ok). */
  acked: Set<string>
  failures: Record<string, number>
  firstBlock: number
  lastBlock: number
}

/**
 * Writes a batch to the registries round-robin (one single-registry client
 * each, so every registry takes submits); when that registry does not
 * acknowledge it, retries through the failover client over all registries,
 * as a distributor's outbox does.
 */
class SpreadingWriter {
  private next = 0
  constructor(
    private readonly direct: RegistryClient[],
    private readonly failover: RegistryClient
  ) {}

  async submit(envelope: SignedEnvelope, result: IngestResult): Promise<RegistryAck> {
    const first = this.direct[this.next++ % this.direct.length]!
    try {
      return await first.submit(envelope)
    } catch (err) {
      if (err instanceof RegistryRejectedError && !err.retryable) throw err
      result.retried++
      return this.failover.submit(envelope)
    }
  }
}

/**
 * Paced ingest: `batchesPerSecond` batches of `receiptsPerBatch` receipts for
 * the current block, at most `maxInFlight` submits outstanding, until stop()
 * is called; stop() resolves once every submit has settled.
 */
function startIngest(options: {
  writer: SpreadingWriter
  distributor: Party
  suppliers: Party[]
  clock: BlockClock
  batchesPerSecond: number
  receiptsPerBatch: number
  maxInFlight: number
}): { result: IngestResult; stop(): Promise<IngestResult> } {
  const { writer, distributor, suppliers, clock } = options
  const result: IngestResult = {
    submitted: 0,
    batches: 0,
    ackedBatches: 0,
    retried: 0,
    acked: new Set(),
    failures: {},
    firstBlock: clock.blockHeight(),
    lastBlock: clock.blockHeight()
  }
  let stopping = false
  const inFlight = new Set<Promise<void>>()
  const period = 1000 / options.batchesPerSecond
  const started = Date.now()

  const one = async (): Promise<void> => {
    const blockHeight = clock.blockHeight()
    result.lastBlock = Math.max(result.lastBlock, blockHeight)
    const receipts = Array.from({ length: options.receiptsPerBatch }, (_, i) =>
      makeReceipt({
        distributor: distributor.peerId,
        supplier: suppliers[i % suppliers.length]!.peerId,
        blockHeight,
        gameId: i % 2 === 0 ? 'game-a' : 'game-b',
        verdict: i % 3 === 0 ? ProofVerdict.VERIFIED : ProofVerdict.UNCHECKED
      })
    )
    const envelope = await signBatch(distributor, receipts)
    result.batches++
    result.submitted += receipts.length
    try {
      const ack = await writer.submit(envelope, result)
      if (ack.ok) {
        result.ackedBatches++
        for (const r of receipts) result.acked.add(hexOf(r.taskId))
      }
    } catch (err) {
      const code = err instanceof RegistryRejectedError ? err.registryCode : ((err as { code?: string }).code ?? 'unknown')
      result.failures[code] = (result.failures[code] ?? 0) + 1
    }
  }

  const loop = (async () => {
    for (let k = 0; !stopping; k++) {
      // Pacing only (not a correctness wait): the k-th batch leaves at start + k × period.
      const due = started + k * period - Date.now()
      if (due > 0) await new Promise(resolve => setTimeout(resolve, due))
      if (stopping) break
      if (inFlight.size >= options.maxInFlight) await Promise.race(inFlight)
      const job: Promise<void> = one().finally(() => inFlight.delete(job))
      inFlight.add(job)
    }
    await Promise.all(inFlight)
  })()

  return {
    result,
    async stop() {
      stopping = true
      await loop
      return result
    }
  }
}

async function writeTo(node: GcnNode, client: RegistryClient, index: number, envelope: SignedEnvelope): Promise<RegistryAck> {
  const stream = await AckedWriteStream.open(node, client.registries[index]!, REGISTRY_SUBMIT_PROTOCOL, AbortSignal.timeout(10_000))
  try {
    return await stream.write(envelope, AbortSignal.timeout(10_000))
  } finally {
    stream.close()
  }
}

async function expectRejected(client: RegistryClient, envelope: SignedEnvelope, code: string): Promise<void> {
  let caught: unknown
  try {
    await client.submit(envelope)
  } catch (err) {
    caught = err
  }
  expect(caught, `expected a ${code} refusal`).to.be.instanceOf(RegistryRejectedError)
  const err = caught as RegistryRejectedError
  expect(err.registryCode, err.message).to.equal(code)
  expect(err.retryable, `${code} must not be retryable`).to.equal(false)
}

function sumRejected(statuses: Awaited<ReturnType<RegistryNode['status']>>[], code: string): number {
  return statuses.reduce((n, s) => n + (s.stats.rejected[code] ?? 0), 0)
}

describe('gcn registry (real processes: bootstrap + 3 registries)', function () {
  this.timeout(120_000)

  let dir: string
  let clockSettings: ClockSettings
  let clock: BlockClock
  let distributor: Party
  let suppliers: Party[]
  let bootstrap: { proc: Proc; peerId: string; addr: string }
  let registries: RegistryNode[]
  let node: GcnNode | undefined
  let client: RegistryClient | undefined
  let direct: RegistryClient[] = []
  let writer: SpreadingWriter
  let stoppedPid: number | undefined

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gcn-registry-'))
    clockSettings = { genesisMs: Date.now(), blockMs: 200, blocksPerDay: 50 }
    clock = new BlockClock(clockSettings)
    distributor = await makeParty(join(dir, 'distributor', 'peer.key'))
    suppliers = await Promise.all([1, 2, 3].map(i => makeParty(join(dir, `supplier-${i}`, 'peer.key'))))
    bootstrap = await startBootstrap(join(dir, 'bootstrap', 'peer.key'))
    registries = await startRegistries({
      count: 3,
      dir,
      bootstrapAddr: bootstrap.addr,
      distributors: [distributor.peerId],
      clock: clockSettings,
      acceptBlocksBehind: ACCEPT_BLOCKS_BEHIND
    })
    // The test process is the distributor (and, below, the suppliers).
    node = await createGcnNode({
      role: 'distributor',
      privateKey: distributor.privateKey,
      profile: 'local',
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [bootstrap.addr]
    })
    await node.start()
    client = new RegistryClient({ registries: registries.map(r => r.addr), ackTimeoutMs: 4_000 }, { node, logger: silentLogger })
    direct = registries.map(r => new RegistryClient({ registries: [r.addr], ackTimeoutMs: 2_500 }, { node: node!, logger: silentLogger }))
    writer = new SpreadingWriter(direct, client)
    // Registries find each other by peer id (DHT); until then a write cannot reach quorum (ERR_QUORUM).
    await waitFor('every registry connected to both others', async () => {
      const statuses = await Promise.all(registries.map(r => r.status()))
      return statuses.every(s => s.peers.length === 2 && s.peers.every(p => p.connected))
    })
  })

  after(async () => {
    if (stoppedPid !== undefined) {
      try {
        process.kill(stoppedPid, 'SIGCONT')
      } catch {}
    }
    client?.close()
    for (const c of direct) c.close()
    await node?.stop().catch(() => undefined)
    await killAll()
    rmSync(dir, { recursive: true, force: true })
  })

  it('starts three registries that see each other and report status', async () => {
    for (const [i, r] of registries.entries()) {
      const s = await r.status()
      expect(s.peerId).to.equal(r.peerId)
      expect(s.quorum).to.equal(2)
      expect(s.peers.map(p => p.peerId).sort()).to.deep.equal(
        registries
          .filter((_, j) => j !== i)
          .map(o => o.peerId)
          .sort()
      )
      expect(s.currentBlock).to.be.within(clock.blockHeight() - 1, clock.blockHeight() + 1)
      expect(s.stats).to.include.keys('writes', 'duplicates', 'rejected', 'quorumFailures', 'replicatedIn', 'syncedIn', 'syncRounds')
      expect(s.counts).to.deep.equal({ envelopes: 0, receipts: 0, confirmations: 0 })
    }
    await waitFor('an anti-entropy round on every registry', async () =>
      (await Promise.all(registries.map(r => r.status()))).every(s => s.stats.syncRounds > 0)
    )
  })

  it('loses no acknowledged receipt when a registry is SIGKILLed during sustained ingest; the restarted peer catches up', async () => {
    const r2 = registries[1]!
    const ingest = startIngest({
      writer,
      distributor,
      suppliers,
      clock,
      batchesPerSecond: 25,
      receiptsPerBatch: 40,
      maxInFlight: 32
    })
    const { result } = ingest
    let killedAt = 0
    let restartedAt = 0
    try {
      await waitFor('3,000 receipts acknowledged', () => result.acked.size >= 3_000, 30_000)
      const r2Before = await r2.status()
      expect(r2Before.stats.writes, 'registry 2 took submits before the kill').to.be.greaterThan(0)
      expect(r2Before.stats.replicatedIn, 'registry 2 took replicated writes before the kill').to.be.greaterThan(0)

      killedAt = result.acked.size
      r2.proc.child.kill('SIGKILL')
      await waitFor('registry 2 to die', () => r2.proc.exited)
      // Writes keep being acknowledged by registries 1 and 3 (quorum 2 of 3).
      await waitFor('3,000 more receipts acknowledged while registry 2 is down', () => result.acked.size >= killedAt + 3_000, 30_000)

      await r2.start()
      restartedAt = result.acked.size
      await waitFor('3,000 more receipts acknowledged after the restart', () => result.acked.size >= restartedAt + 3_000, 30_000)
    } finally {
      await ingest.stop()
    }
    expect(r2.starts).to.equal(2)
    expect(result.retried, 'writes aimed at the dead registry were re-sent').to.be.greaterThan(0)
    expect(result.ackedBatches, JSON.stringify(result.failures)).to.be.greaterThan(result.batches * 0.9)

    const now = clock.blockHeight()
    const blocks = await waitForIdenticalBlocks(registries, 0, now, 45_000)
    expect(blocks.length).to.be.greaterThan(10)
    expect(blocks.every(b => b.blockHeight >= result.firstBlock && b.blockHeight <= result.lastBlock)).to.equal(true)

    for (const r of registries) {
      const stored = new Set((await r.receipts(result.firstBlock, result.lastBlock)).map(x => x.taskId))
      const lost = [...result.acked].filter(id => !stored.has(id))
      expect(lost.length, `registry ${r.index + 1} lost ${lost.length} acknowledged receipts, e.g. ${lost[0]}`).to.equal(0)
      const totals = await r.totals(`from=${result.firstBlock}&to=${result.lastBlock}`)
      expect(totals.receipts).to.be.at.least(result.acked.size)
      expect(totals.receipts).to.be.at.most(result.submitted)
      expect(totals.receipts).to.equal(stored.size)
    }
    // Registry 2 missed the writes acknowledged while it was down: it must have fetched them.
    const s2 = await r2.status()
    expect(s2.stats.syncedIn, 'registry 2 synced the writes it missed').to.be.greaterThan(0)
    await waitFor('registry 2 reconnected to both peers', async () => (await r2.status()).peers.every(p => p.connected))
  })

  it('lets a partitioned (SIGSTOPped) registry converge to identical roots', async () => {
    const r3 = registries[2]!
    const before3 = await r3.status()
    const ingest = startIngest({
      writer,
      distributor,
      suppliers,
      clock,
      batchesPerSecond: 20,
      receiptsPerBatch: 20,
      maxInFlight: 48
    })
    const { result } = ingest
    let ackedWhileStopped = 0
    try {
      await waitFor('500 receipts acknowledged', () => result.acked.size >= 500, 30_000)
      const stoppedAtBlock = clock.blockHeight()
      const ackedAtStop = result.acked.size
      const retriedAtStop = result.retried
      stoppedPid = r3.pid
      process.kill(stoppedPid, 'SIGSTOP')
      try {
        // ~3 s: 15 blocks, during which writes still reach quorum 2 on registries 1 and 2, and
        // writes sent to registry 3 time out there and are re-sent to the others.
        await waitFor(
          '15 blocks, 500 acknowledged receipts and a re-sent write while registry 3 is stopped',
          () => clock.blockHeight() >= stoppedAtBlock + 15 && result.acked.size >= ackedAtStop + 500 && result.retried > retriedAtStop,
          30_000
        )
        ackedWhileStopped = result.acked.size - ackedAtStop
      } finally {
        process.kill(stoppedPid, 'SIGCONT')
        stoppedPid = undefined
      }
      const ackedAtCont = result.acked.size
      await waitFor('500 more receipts acknowledged after SIGCONT', () => result.acked.size >= ackedAtCont + 500, 30_000)
    } finally {
      await ingest.stop()
    }
    expect(ackedWhileStopped).to.be.at.least(500)

    await waitForIdenticalBlocks(registries, 0, clock.blockHeight(), 45_000)
    for (const r of registries) {
      const stored = new Set((await r.receipts(result.firstBlock, result.lastBlock)).map(x => x.taskId))
      const lost = [...result.acked].filter(id => !stored.has(id))
      expect(lost.length, `registry ${r.index + 1} lost ${lost.length} acknowledged receipts`).to.equal(0)
      expect((await r.totals(`from=${result.firstBlock}&to=${result.lastBlock}`)).receipts).to.be.at.most(result.submitted)
    }
    const after3 = await r3.status()
    expect(after3.stats.replicatedIn + after3.stats.syncedIn).to.be.greaterThan(before3.stats.replicatedIn + before3.stats.syncedIn)
    await waitFor('registry 3 connected to both peers again', async () => (await r3.status()).peers.every(p => p.connected))
  })

  it('fails a write over past unreachable registries, trying each registry once', async () => {
    // Registry lists with unreachable peers (free ports, fresh peer ids) between live ones; the
    // client starts at a random entry, so several fresh clients cover every starting point.
    const dead = async (name: string): Promise<string> =>
      `/ip4/127.0.0.1/tcp/${await freePort()}/p2p/${(await makeParty(join(dir, 'dead', name, 'peer.key'))).peerId}`
    const [d1, d2, d3] = await Promise.all(['1', '2', '3'].map(dead))
    const lists = [
      [d1!, registries[0]!.addr],
      [d1!, registries[0]!.addr, d2!, registries[1]!.addr],
      [d1!, d2!, d3!, registries[2]!.addr]
    ]
    const supplier = suppliers[0]!
    const failed: string[] = []
    for (const [li, list] of lists.entries()) {
      for (let k = 0; k < 8; k++) {
        const c = new RegistryClient({ registries: list, ackTimeoutMs: 4_000 }, { node: node!, logger: silentLogger })
        try {
          const envelope = await signBatch(distributor, [
            makeReceipt({ distributor: distributor.peerId, supplier: supplier.peerId, blockHeight: clock.blockHeight() })
          ])
          const ack = await c.submit(envelope)
          expect(ack.ok).to.equal(true)
        } catch (err) {
          failed.push(
            `list ${li + 1} (${list.length} registries, ${list.filter(a => [d1, d2, d3].includes(a)).length} unreachable): ${(err as Error).message}`
          )
        } finally {
          c.close()
        }
      }
    }
    expect(failed, failed.join('\n')).to.deep.equal([])
  })

  it('refuses forgeries with their codes and stores replays once', async () => {
    const supplier = await makeParty(join(dir, 'supplier-forgery', 'peer.key'))
    const stranger = await makeParty(join(dir, 'stranger', 'peer.key'))
    const bySupplier = `supplier=${supplier.peerId}`
    const snapshot = async (): Promise<{ totals: Totals[]; envelopes: number[]; global: Totals[] }> => ({
      totals: await Promise.all(registries.map(r => r.totals(bySupplier))),
      envelopes: (await Promise.all(registries.map(r => r.status()))).map(s => s.counts.envelopes),
      global: await Promise.all(registries.map(r => r.totals()))
    })
    // Start from converged ledgers, so that nothing earlier tests wrote still changes the totals.
    await waitForIdenticalBlocks(registries, 0, clock.blockHeight(), 30_000)
    const rejectedBefore = await Promise.all(registries.map(r => r.status()))

    // A legitimate batch, acknowledged by registry 1 and replicated to all.
    const block = clock.blockHeight()
    const receipts = [0, 1, 2].map(() => makeReceipt({ distributor: distributor.peerId, supplier: supplier.peerId, blockHeight: block }))
    const legit = await signBatch(distributor, receipts)
    const first = await writeTo(node!, client!, 0, legit)
    expect(first.ok, first.errorMessage).to.equal(true)
    expect(first.duplicate).to.equal(false)
    expect(first.replicas).to.be.at.least(2)
    await waitFor('the batch on all three registries', async () =>
      (await Promise.all(registries.map(r => r.totals(bySupplier)))).every(t => t.receipts === 3)
    )
    const base = await snapshot()
    const unchanged = async (what: string): Promise<void> => {
      const now = await snapshot()
      expect(now.totals, `${what}: supplier totals`).to.deep.equal(base.totals)
      expect(now.global, `${what}: global totals`).to.deep.equal(base.global)
    }

    // 1. Bad signature: one flipped bit.
    const badSig = { ...legit, signature: Uint8Array.from(legit.signature) }
    badSig.signature[10]! ^= 0x01
    await expectRejected(client!, badSig, 'ERR_INVALID_SIGNATURE')
    await unchanged('bad signature')

    // 2. Cost altered after signing: new payload bytes under the old signature.
    const inflated = receipts.map(r => ({ ...r, taskId: Uint8Array.from(r.taskId), cost: r.cost * 10n }))
    const alteredPayload = ReceiptBatchCodec.encode({ ...ReceiptBatchCodec.decode(legit.payload), receipts: inflated })
    await expectRejected(client!, { ...legit, payload: plainBytes(alteredPayload) }, 'ERR_INVALID_SIGNATURE')
    // ... and a correctly signed receipt whose cost is not tokens × price.
    const wrongCost = makeReceipt({ distributor: distributor.peerId, supplier: supplier.peerId, blockHeight: block })
    wrongCost.cost += 1n
    await expectRejected(client!, await signBatch(distributor, [wrongCost]), 'ERR_COST_MISMATCH')
    await unchanged('altered cost')

    // 3. A distributor the registries do not accept.
    const fresh = (d: Party): ReturnType<typeof makeReceipt> =>
      makeReceipt({ distributor: d.peerId, supplier: supplier.peerId, blockHeight: clock.blockHeight() })
    await expectRejected(client!, await signBatch(stranger, [fresh(stranger)]), 'ERR_UNKNOWN_SIGNER')
    // 4. A batch naming the accepted distributor, signed by someone else.
    await expectRejected(
      client!,
      await signBatch(stranger, [fresh(distributor)], { distributorPeerId: distributor.peerId }),
      'ERR_SIGNER_MISMATCH'
    )
    // ... and a confirmation naming a supplier it was not signed by.
    await expectRejected(
      client!,
      await signConfirmation(stranger, clock.blockHeight(), [receipts[0]!.taskId], { supplierPeerId: supplier.peerId }),
      'ERR_SIGNER_MISMATCH'
    )
    await unchanged('unknown or mismatched signer')

    // 5. Blocks outside the accepted window: far future, and older than --accept-blocks-behind.
    const future = clock.blockHeight() + 100
    await expectRejected(
      client!,
      await signBatch(distributor, [makeReceipt({ distributor: distributor.peerId, supplier: supplier.peerId, blockHeight: future })]),
      'ERR_BLOCK_OUT_OF_RANGE'
    )
    await expectRejected(client!, await signConfirmation(supplier, future, [receipts[0]!.taskId]), 'ERR_BLOCK_OUT_OF_RANGE')
    await waitFor('the clock to be far enough past genesis', () => clock.blockHeight() > ACCEPT_BLOCKS_BEHIND + 10, 15_000)
    const old = clock.blockHeight() - ACCEPT_BLOCKS_BEHIND - 10
    await expectRejected(
      client!,
      await signBatch(distributor, [makeReceipt({ distributor: distributor.peerId, supplier: supplier.peerId, blockHeight: old })]),
      'ERR_BLOCK_OUT_OF_RANGE'
    )
    await unchanged('block out of range')
    expect((await snapshot()).envelopes, 'no refused envelope stored').to.deep.equal(base.envelopes)

    // 6. The exact same write again, to the registry that took it and to one that got it by replication.
    for (const index of [0, 2]) {
      const again = await writeTo(node!, client!, index, legit)
      expect(again.ok, again.errorMessage).to.equal(true)
      expect(again.duplicate, `registry ${index + 1} reports the duplicate`).to.equal(true)
    }
    await unchanged('exact duplicate')
    expect((await snapshot()).envelopes).to.deep.equal(base.envelopes)

    // 7. The same receipts re-batched in a new envelope: a new envelope, no new receipt.
    const rebatched = await signBatch(distributor, receipts, { timestampMs: Date.now() + 1 })
    const ack = await client!.submit(rebatched)
    expect(ack.ok).to.equal(true)
    expect(ack.duplicate).to.equal(false)
    await waitFor('the re-batched envelope on all three registries', async () =>
      (await Promise.all(registries.map(r => r.status()))).every((s, i) => s.counts.envelopes === base.envelopes[i]! + 1)
    )
    await unchanged('re-batched receipts')

    // Every refusal is counted by code in /status.
    const statuses = await Promise.all(registries.map(r => r.status()))
    const expected: Record<string, number> = {
      ERR_INVALID_SIGNATURE: 2,
      ERR_COST_MISMATCH: 1,
      ERR_UNKNOWN_SIGNER: 1,
      ERR_SIGNER_MISMATCH: 2,
      ERR_BLOCK_OUT_OF_RANGE: 3
    }
    for (const [code, n] of Object.entries(expected)) {
      expect(sumRejected(statuses, code) - sumRejected(rejectedBefore, code), code).to.equal(n)
    }
    expect(statuses[0]!.stats.duplicates + statuses[2]!.stats.duplicates).to.be.at.least(
      rejectedBefore[0]!.stats.duplicates + rejectedBefore[2]!.stats.duplicates + 2
    )
  })

  it('shows receipt/confirmation mismatches and billable totals, also through gcn registry query', async () => {
    const [s1, s2] = await Promise.all(['mm-1', 'mm-2'].map(n => makeParty(join(dir, `supplier-${n}`, 'peer.key'))))
    const block = clock.blockHeight()
    const r = (gameId: string): ReturnType<typeof makeReceipt> =>
      makeReceipt({ distributor: distributor.peerId, supplier: s1!.peerId, blockHeight: block, gameId })
    const confirmed = r('game-a')
    const unconfirmed = r('game-a')
    const misattributed = r('game-b')
    const unreceiptedTask = makeReceipt({ distributor: distributor.peerId, supplier: s1!.peerId, blockHeight: block }).taskId

    const acks = await Promise.all([
      client!.submit(await signBatch(distributor, [confirmed, unconfirmed, misattributed])),
      // s1 confirms its task and one nobody has a receipt for; s2 confirms a task that was s1's.
      client!.submit(await signConfirmation(s1!, block, [confirmed.taskId, unreceiptedTask])),
      client!.submit(await signConfirmation(s2!, block, [misattributed.taskId]))
    ])
    for (const ack of acks) expect(ack.ok).to.equal(true)
    await waitForIdenticalBlocks(registries, 0, clock.blockHeight(), 30_000)

    const hex = (b: Uint8Array): string => hexOf(b)
    for (const reg of registries) {
      const totals = await reg.totals(`supplier=${s1!.peerId}`)
      expect(totals.receipts).to.equal(3)
      expect(totals.billableReceipts).to.equal(1)
      expect(totals.billableCost).to.equal(confirmed.cost.toString())
      expect(totals.unconfirmedReceipts).to.equal(2)
      expect(totals.cost).to.equal((confirmed.cost + unconfirmed.cost + misattributed.cost).toString())

      const rows = await reg.receipts(block, block, `&supplier=${s1!.peerId}`)
      const status = Object.fromEntries(rows.map(x => [x.taskId, x.status]))
      expect(status).to.deep.equal({
        [hex(confirmed.taskId)]: 'billable',
        [hex(unconfirmed.taskId)]: 'unconfirmed',
        [hex(misattributed.taskId)]: 'unconfirmed'
      })
    }

    // 'unconfirmed' is only reported once the block is a few blocks old (the supplier confirms at block end).
    const mismatches = await waitFor(
      'the unconfirmed receipt to be reported',
      async () => {
        const m = await registries[0]!.mismatches(`from=${block}&to=${block}&supplier=${s1!.peerId}`)
        return m.some(x => x.kind === 'unconfirmed') ? m : undefined
      },
      20_000,
      200
    )
    const byTask = new Map(mismatches.map(m => [m.taskId, m]))
    expect(byTask.get(hex(unconfirmed.taskId))).to.deep.equal({
      kind: 'unconfirmed',
      taskId: hex(unconfirmed.taskId),
      supplier: s1!.peerId,
      blockHeight: block
    })
    expect(byTask.get(hex(unreceiptedTask))).to.deep.equal({
      kind: 'unreceipted',
      taskId: hex(unreceiptedTask),
      supplier: s1!.peerId,
      blockHeight: block
    })
    expect(byTask.get(hex(misattributed.taskId))).to.deep.equal({
      kind: 'supplier-mismatch',
      taskId: hex(misattributed.taskId),
      supplier: s1!.peerId,
      confirmedBy: s2!.peerId,
      blockHeight: block
    })
    expect(byTask.has(hex(confirmed.taskId)), 'a confirmed receipt is no mismatch').to.equal(false)
    expect(mismatches).to.have.length(3)
    // Every registry reports the same.
    for (const reg of registries.slice(1)) {
      expect(await reg.mismatches(`from=${block}&to=${block}&supplier=${s1!.peerId}`)).to.deep.equal(mismatches)
    }

    // The CLI prints the registry's JSON answer.
    const url = registries[1]!.url
    const query = async (args: string[]): Promise<unknown> => {
      const proc = gcn(['registry', 'query', ...args, '--url', url])
      await waitFor('gcn registry query to exit', () => proc.exited, 30_000)
      expect(proc.child.exitCode, proc.stderr).to.equal(0)
      return JSON.parse(proc.lines.join('\n'))
    }
    const cliTotals = (await query(['totals', '--game', 'game-a'])) as Totals
    expect(cliTotals).to.deep.equal(await registries[1]!.totals('game=game-a'))
    expect(cliTotals.receipts).to.be.at.least(2)
    expect(cliTotals.billableReceipts).to.be.at.least(1)
    const cliSupplier = (await query(['totals', '--game', 'game-a', '--supplier', s1!.peerId])) as Totals
    expect(cliSupplier).to.include({ receipts: 2, billableReceipts: 1, unconfirmedReceipts: 1, billableCost: confirmed.cost.toString() })
  })
})
