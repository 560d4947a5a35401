/**
 * Fault-injection soak: a whole network on 127.0.0.1 (bootstrap, 3 suppliers,
 * a distributor with its gateway, 3 settling registries, an embedded chain)
 * serves a steady game load while a seeded schedule SIGKILLs and restarts
 * suppliers and registry peers, kills the elected submitter of a day right when
 * it should post, and pauses processes (SIGSTOP/SIGCONT). At the end it checks:
 *
 *  - every client request completed or got a clear retryable error;
 *  - every answered request's receipt (matched by the task id the answer
 *    carries) is on every registry, and the registries hold identical blocks;
 *  - the distributor's receipt outbox lost nothing (all acknowledged, none
 *    dropped or refused) and no task is receipted or billed twice;
 *  - every day with billable receipts is posted exactly once, with the root and
 *    total the test recomputes from the receipts itself (OpenZeppelin's merkle
 *    tree, not the registry's code), every registry agrees with the posted
 *    root, and the game's deposit fell by exactly the posted debits.
 *
 * GCN_SOAK_MS (default 300000) bounds the faulty phase, GCN_SOAK_SEED (default
 * 1) seeds the schedule. The numbers are printed (and kept in BENCHMARKS.md).
 */

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BlockClock, loadOrCreateIdentity } from '@gcn/core'
import { GcnApiError, GcnClient } from '@gcn/sdk'
import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { expect } from 'chai'
import { type Address, type Hex, keccak256, pad, toBytes } from 'viem'
import { listModels, makeTestModel, type TestModel } from './helpers/network.js'
import { gcn, killAll, type Proc, waitFor } from './helpers/procs.js'
import { clockArgs, type ReceiptJson, startBootstrap } from './helpers/registry.js'
import {
  makeRegistryIdentities,
  makeSupplier,
  readyBlock,
  type SettlementParams,
  type SettlingRegistry,
  seededRandom,
  startSettlingRegistries,
  startTestChain,
  submitterSchedule,
  type TestChain,
  type TestSupplier,
  untilBlock
} from './helpers/settlement.js'

const SOAK_MS = Number(process.env.GCN_SOAK_MS ?? 300_000)
const SEED = Number(process.env.GCN_SOAK_SEED ?? 1)
/** 500 ms blocks, 10 s days: some thirty days settle in five minutes. */
const BLOCK_MS = 500
const BLOCKS_PER_DAY = 20
const SETTLE: SettlementParams = { acceptBlocksBehind: 10, graceBlocks: 2, staggerBlocks: 6 }
const GAME = 'soak-game'
const DEPOSIT = 10n ** 24n
const CLIENTS = 4
const SUPPLIERS = 3
const LOCAL = ['--profile', 'local', '--listen', '/ip4/127.0.0.1/tcp/0', '--log-level', 'warn']

interface Outcome {
  kind: 'completed' | 'retryable' | 'bad'
  taskId?: string
  detail?: string
}

/** A supplier process that can be killed, paused and restarted with the same identity and data. */
class SupplierProc {
  proc: Proc | undefined
  paused = false
  starts = 0

  constructor(
    readonly index: number,
    readonly party: TestSupplier,
    readonly args: string[]
  ) {}

  get up(): boolean {
    return this.proc !== undefined && !this.proc.exited
  }

  async start(): Promise<void> {
    this.proc = gcn(this.args)
    this.starts++
    await this.proc.waitForLine(/^gcn supplier ready$/, 60_000)
  }
}

/** The game's leaves and root, recomputed from receipts with @openzeppelin/merkle-tree. */
function recompute(
  receipts: readonly ReceiptJson[],
  rewardOf: ReadonlyMap<string, Address>
): { root: Hex; totalDebit: bigint } | undefined {
  const debits = new Map<string, bigint>()
  const credits = new Map<string, bigint>()
  for (const r of receipts) {
    if (r.status !== 'billable' || r.cost === '0') continue
    const cost = BigInt(r.cost)
    debits.set(r.gameId, (debits.get(r.gameId) ?? 0n) + cost)
    const account = rewardOf.get(r.supplier)
    if (account === undefined) throw new Error(`receipt ${r.taskId} names supplier ${r.supplier}, not one of this test`)
    credits.set(account.toLowerCase(), (credits.get(account.toLowerCase()) ?? 0n) + cost)
  }
  if (debits.size === 0) return undefined
  const values: Array<[number, Hex, bigint]> = [
    ...[...debits].map(([game, amount]): [number, Hex, bigint] => [0, keccak256(toBytes(game)), amount]),
    ...[...credits].map(([account, amount]): [number, Hex, bigint] => [1, pad(account as Hex, { size: 32 }), amount])
  ]
  const tree = StandardMerkleTree.of(values, ['uint8', 'bytes32', 'uint256'])
  return { root: tree.root as Hex, totalDebit: [...debits.values()].reduce((a, b) => a + b, 0n) }
}

describe(`fault-injection soak (${Math.round(SOAK_MS / 1000)} s, seed ${SEED}): kills, pauses and submitter kills under game load`, function () {
  this.timeout(SOAK_MS + 300_000)

  let dir: string
  let chain: TestChain | undefined
  let clock: BlockClock
  let model: TestModel
  let registries: SettlingRegistry[] = []
  let suppliers: SupplierProc[] = []
  let distributor: Proc
  let gatewayUrl: string
  let distributorStatusUrl: string
  let parties: TestSupplier[]
  const apiKey = `gcn-soak-${Math.random().toString(16).slice(2)}`

  const diagnostics = (): string =>
    [
      ...registries.map(r => `--- registry ${r.index + 1}\nstderr:\n${r.proc?.stderr.slice(-3_000) ?? ''}`),
      ...suppliers.map(s => `--- supplier ${s.index + 1}\nstderr:\n${s.proc?.stderr.slice(-2_000) ?? ''}`),
      `--- distributor\nstderr:\n${distributor?.stderr.slice(-5_000) ?? ''}`
    ].join('\n')

  before(async function () {
    this.timeout(180_000)
    dir = mkdtempSync(join(tmpdir(), 'gcn-soak-'))
    model = await makeTestModel(join(dir, 'model.gguf'))
    const boot = await startBootstrap(join(dir, 'bootstrap', 'peer.key'))
    const distId = (await loadOrCreateIdentity(join(dir, 'distributor', 'peer.key'))).peerId.toString()
    const regIds = await makeRegistryIdentities(dir, 3)
    parties = await Promise.all(Array.from({ length: SUPPLIERS }, (_, i) => makeSupplier(join(dir, `supplier-${i + 1}`))))
    chain = await startTestChain({ signers: regIds.map(r => r.signer), threshold: 2, fund: regIds.map(r => r.signer) })
    await chain.deposit(GAME, DEPOSIT)
    const clockSettings = { genesisMs: Date.now(), blockMs: BLOCK_MS, blocksPerDay: BLOCKS_PER_DAY }
    clock = new BlockClock(clockSettings)
    registries = await startSettlingRegistries({
      identities: regIds,
      bootstrapAddr: boot.addr,
      distributors: [distId],
      clock: clockSettings,
      settlement: SETTLE,
      rpcUrl: chain.rpcUrl,
      settlementAddress: chain.settlement,
      quorum: 1
    })
    const reportTo = registries.flatMap(r => ['--registry', r.addr])
    mkdirSync(join(dir, 'distributor'), { recursive: true })
    distributor = gcn([
      'distributor',
      ...LOCAL,
      ...clockArgs(clockSettings),
      ...reportTo,
      '--bootstrap',
      boot.addr,
      '--data-dir',
      join(dir, 'distributor'),
      '--gateway-port',
      '0',
      '--api-key',
      `${GAME}:${apiKey}`,
      '--key-rate-per-minute',
      '100000',
      '--key-max-concurrent',
      String(CLIENTS * 2),
      '--first-token-timeout-ms',
      '3000',
      '--rpc-url',
      chain.rpcUrl,
      '--settlement-address',
      chain.settlement
    ])
    suppliers = parties.map(
      (party, i) =>
        new SupplierProc(i, party, [
          'supplier',
          ...LOCAL,
          ...clockArgs(clockSettings),
          ...reportTo,
          '--bootstrap',
          boot.addr,
          '--data-dir',
          join(dir, `supplier-${i + 1}`),
          '--model',
          model.path,
          '--model-sha256',
          model.sha256,
          '--slots',
          '2',
          '--threads',
          '1',
          '--reward-address',
          party.rewardAddress
        ])
    )
    try {
      await Promise.all(suppliers.map(s => s.start()))
      gatewayUrl = (await distributor.waitForLine(/^gateway: (http:\/\/\S+)$/, 60_000))[1]!
      distributorStatusUrl = (await distributor.waitForLine(/^status: (http:\/\/\S+)$/))[1]!
      await waitFor(
        'the gateway to list the model with every supplier',
        async () => ((await listModels(gatewayUrl, apiKey))?.[0]?.gcn?.suppliers ?? 0) >= SUPPLIERS,
        60_000,
        200
      )
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${diagnostics()}`, { cause: err })
    }
  })

  after(async () => {
    await killAll()
    await chain?.close().catch(() => undefined)
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  it('keeps every promise: answers or retryable errors, no receipt lost or billed twice, each day posted once with the right totals', async () => {
    const random = seededRandom(SEED)
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!
    const between = (lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo))
    const faults = { supplierKills: 0, registryKills: 0, submitterKills: 0, pauses: 0 }
    const outcomes: Outcome[] = []
    const started = Date.now()
    const firstBlock = clock.blockHeight()
    let loadRunning = true
    // One registry at most is down or paused at a time (quorum 1 of 2 others, threshold 2 of 3), one supplier at most.
    let registryFault = false
    let supplierFault = false
    const chores = new Set<Promise<unknown>>()
    const chore = (p: Promise<unknown>): void => {
      const tracked = p.catch(err => {
        throw new Error(`fault chore failed: ${(err as Error).message}`, { cause: err })
      })
      chores.add(tracked)
      tracked.then(
        () => chores.delete(tracked),
        () => undefined
      )
    }
    const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

    const killRegistry = async (r: SettlingRegistry, downMs: number): Promise<void> => {
      registryFault = true
      try {
        await r.kill()
        await sleep(downMs)
        await r.start()
      } finally {
        registryFault = false
      }
    }
    const pause = async (proc: Proc, ms: number): Promise<void> => {
      faults.pauses++
      proc.child.kill('SIGSTOP')
      await sleep(ms)
      proc.child.kill('SIGCONT')
    }

    // ---- the game load: CLIENTS loops of streamed chats, no SDK retries (every error is seen).
    const client = new GcnClient({ baseUrl: gatewayUrl, apiKey, maxRetries: 0, timeoutMs: 30_000 })
    const modelName = (await client.models())[0]!.id
    const loops = Array.from({ length: CLIENTS }, async (_, c) => {
      for (let n = 0; loadRunning; n++) {
        try {
          const reply = client.chat(
            { model: modelName, messages: [{ role: 'user', content: `Player ${c} asks question ${n}.` }], max_tokens: 8 },
            { sessionId: `player-${c}` }
          )
          for await (const _ of reply) {
            // consumed
          }
          const result = await reply.done
          if (result.taskId === null) outcomes.push({ kind: 'bad', detail: 'an answer without a task id' })
          else if (result.finishReason === null) outcomes.push({ kind: 'bad', detail: 'an answer without a finish reason' })
          else outcomes.push({ kind: 'completed', taskId: result.taskId })
        } catch (err) {
          if (err instanceof GcnApiError && err.retryable) outcomes.push({ kind: 'retryable', detail: `${err.name}: ${err.message}` })
          else {
            outcomes.push({ kind: 'bad', detail: `${(err as Error).name}: ${(err as Error).message}` })
            await sleep(200)
          }
        }
      }
    })

    // ---- the elected submitter of each day, killed (half the days) right when it should post.
    const submitterKiller = (async () => {
      let day = clock.day(clock.blockHeight())
      while (loadRunning) {
        const at = readyBlock(clock, SETTLE, day)
        await untilBlock(clock, at, 60_000)
        if (!loadRunning) break
        const first = submitterSchedule(
          registries.map(r => r.peerId),
          day
        )[0]!
        const target = registries.find(r => r.peerId === first)!
        if (random() < 0.5 && !registryFault && target.up) {
          faults.submitterKills++
          faults.registryKills++
          chore(killRegistry(target, between(2_000, 6_000)))
        }
        day++
      }
    })()

    // ---- random kills and pauses of suppliers and registries.
    const chaos = (async () => {
      await sleep(5_000)
      while (Date.now() - started < SOAK_MS) {
        await sleep(between(3_000, 8_000))
        const action = pick(['kill-supplier', 'pause-supplier', 'kill-registry', 'pause-registry'] as const)
        if (action.endsWith('supplier') && !supplierFault) {
          const s = pick(suppliers.filter(x => x.up))
          supplierFault = true
          chore(
            (async () => {
              try {
                if (action === 'kill-supplier') {
                  faults.supplierKills++
                  await s.proc!.stop('SIGKILL')
                  await sleep(between(1_000, 5_000))
                  await s.start()
                } else await pause(s.proc!, between(1_000, 3_000))
              } finally {
                supplierFault = false
              }
            })()
          )
        } else if (action.endsWith('registry') && !registryFault) {
          const r = pick(registries.filter(x => x.up))
          if (action === 'kill-registry') {
            faults.registryKills++
            chore(killRegistry(r, between(1_000, 6_000)))
          } else {
            registryFault = true
            chore(pause(r.proc, between(1_000, 3_000)).finally(() => (registryFault = false)))
          }
        }
      }
    })()

    try {
      await chaos
      loadRunning = false
      await Promise.all(loops)
      await submitterKiller
      await Promise.all(chores)
      const lastBlock = clock.blockHeight()

      // ---- clients: every request answered (with a task id) or refused with a retryable error.
      const completed = outcomes.filter(o => o.kind === 'completed')
      const retryable = outcomes.filter(o => o.kind === 'retryable')
      const bad = outcomes.filter(o => o.kind === 'bad')
      expect(
        bad.length,
        `requests that neither completed nor got a retryable error: ${JSON.stringify([...new Set(bad.map(o => o.detail))].slice(0, 5))}`
      ).to.equal(0)
      expect(completed.length, 'answered requests').to.be.greaterThan(100)
      const answered = new Set(completed.map(o => o.taskId!))
      expect(answered.size, 'distinct task ids of answers').to.equal(completed.length)

      // ---- the distributor's outbox: every receipt batch acknowledged, none dropped or refused.
      const outbox = await waitFor(
        "the distributor's receipt outbox to drain",
        async () => {
          const res = await fetch(`${distributorStatusUrl}/status`)
          const s = (await res.json()) as {
            registryOutbox: { pending: number; enqueued: number; acked: number; rejected: number; dropped: number }
          }
          return s.registryOutbox.pending === 0 ? s.registryOutbox : undefined
        },
        60_000,
        500
      )
      expect(outbox.rejected, 'receipt batches refused by the registries').to.equal(0)
      expect(outbox.dropped, 'receipt batches dropped by the outbox').to.equal(0)
      expect(outbox.acked, 'receipt batches acknowledged').to.equal(outbox.enqueued)

      // ---- registries: identical blocks, and every answer's receipt on each of them, once.
      await waitFor(
        'identical blocks on the three registries',
        async () => {
          const all = await Promise.all(registries.map(r => r.blocks(firstBlock, lastBlock + 5)))
          return all.every(b => JSON.stringify(b) === JSON.stringify(all[0])) && all[0]!.length > 0
        },
        90_000,
        500
      )
      const ledgers = await Promise.all(registries.map(r => r.receipts(0, lastBlock + 5)))
      for (const [i, receipts] of ledgers.entries()) {
        const ids = receipts.map(r => r.taskId)
        expect(new Set(ids).size, `registry ${i + 1}: receipts per task id`).to.equal(ids.length)
        expect(
          receipts.filter(r => r.status === 'conflict'),
          `registry ${i + 1}: conflicting receipts`
        ).to.deep.equal([])
        const missing = [...answered].filter(id => !ids.includes(id))
        expect(missing, `registry ${i + 1}: answered tasks without a receipt`).to.deep.equal([])
        // A task whose answer the distributor refused (an empty answer, re-run elsewhere) keeps a receipt, marked
        // failed and never billed; any other receipt without an answer would bill the game for nothing.
        const unanswered = receipts.filter(r => !answered.has(r.taskId))
        expect(
          unanswered.filter(r => r.verdict !== 'failed' || r.status !== 'failed').map(r => `${r.taskId} ${r.verdict} ${r.status}`),
          `registry ${i + 1}: receipts of tasks no client got an answer for, other than refused answers`
        ).to.deep.equal([])
      }
      const receipts = ledgers[0]!
      const billable = receipts.filter(r => r.status === 'billable')

      // ---- settlement: every day with billable receipts posted once, with the recomputed root and total.
      const rewardOf = new Map<string, Address>(parties.map(p => [p.peerId, p.rewardAddress]))
      const days = [...new Set(receipts.map(r => clock.day(r.blockHeight)))].sort((a, b) => a - b)
      const lastDay = days.at(-1)!
      await untilBlock(clock, readyBlock(clock, SETTLE, lastDay) + 3 * SETTLE.staggerBlocks + 2, 120_000)
      let postedDays = 0
      let postedDebit = 0n
      for (const day of days) {
        const expected = recompute(
          receipts.filter(r => clock.day(r.blockHeight) === day),
          rewardOf
        )
        const events = await chain!.dayPosted(day)
        if (expected === undefined) {
          expect(events, `day ${day} has nothing billable and is not posted`).to.have.length(0)
          continue
        }
        expect(events, `DayPosted events of day ${day}`).to.have.length(1)
        expect(events[0]!.root, `day ${day}'s posted root`).to.equal(expected.root)
        expect(events[0]!.totalDebit, `day ${day}'s posted total`).to.equal(expected.totalDebit)
        postedDays++
        postedDebit += expected.totalDebit
        for (const r of registries) {
          const state = await waitFor(`registry ${r.index + 1}'s view of day ${day}`, () => r.settlementDay(day), 30_000, 500)
          expect(state.alarm, `registry ${r.index + 1}'s alarm on day ${day}`).to.equal(null)
          expect(state.report?.root, `registry ${r.index + 1}'s root of day ${day}`).to.equal(expected.root)
        }
        await waitFor(`day ${day}'s debit applied`, () => chain!.debited(day, GAME), 30_000, 500)
      }
      const allPosts = await chain!.dayPosted()
      expect(allPosts.length, 'DayPosted events in all').to.equal(postedDays)
      expect(DEPOSIT - (await chain!.deposits(GAME)), 'deposit spent = posted debits').to.equal(postedDebit)

      const seconds = ((Date.now() - started) / 1000).toFixed(0)
      console.log(
        `      soak (seed ${SEED}, ${seconds} s): ${outcomes.length} requests, ${completed.length} answered, ${retryable.length} retryable errors, 0 other; ` +
          `faults: ${faults.supplierKills} supplier kills, ${faults.registryKills} registry kills (${faults.submitterKills} of the elected submitter), ${faults.pauses} pauses; ` +
          `${receipts.length} receipts checked on 3 registries (${billable.length} billable, ${outbox.acked} batches acknowledged); ` +
          `${postedDays} days posted once each, ${postedDebit} debited`
      )
      if (retryable.length > 0)
        console.log(`      retryable errors seen: ${[...new Set(retryable.map(o => o.detail))].slice(0, 5).join(' | ')}`)
    } catch (err) {
      loadRunning = false
      throw new Error(`${(err as Error).message}\nfaults: ${JSON.stringify(faults)}\n${diagnostics()}`, { cause: err })
    }
  })
})
