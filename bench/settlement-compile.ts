/**
 * Daily settlement compilation benchmark (`tsc -b bench && node bench/dist/settlement-compile.js`):
 * fills a file ledger with 1,000,000 billable receipts of one production day (43,200 blocks; 200 games,
 * 2,000 suppliers, each with a reward address) through `Ledger.insert` in batches of 1,024 receipts plus
 * the matching block confirmations (one per supplier in the batch), closes and reopens it, then times
 * `compileDay`: the aggregation query, the reward-address lookups, the merkle tree and every proof.
 * Goal: ≤ 10 s. Prints a markdown table row.
 *
 * Env: SETTLEMENT_BENCH_RECEIPTS (default 1,000,000), SETTLEMENT_BENCH_DB (reuse/keep this ledger file
 * instead of a temporary one; an existing file is not refilled).
 */
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BlockClock, PRODUCTION_CLOCK } from '@gcn/core'
import { compileDay, Ledger, type LedgerItem, type ReceiptRow } from '@gcn/registry'
import { appendSection, fmt, machine } from './lib.js'

const RECEIPTS = Number(process.env.SETTLEMENT_BENCH_RECEIPTS ?? 1_000_000)
const GAMES = 200
const SUPPLIERS = 2_000
const BATCH = 1_024
/** Suppliers serving one batch (a rotating window, so every supplier works during the day). */
const WINDOW = 64
const DAY = 3

const clock = new BlockClock({ genesisMs: 0, ...PRODUCTION_CLOCK })

const sha = (s: string): Buffer => createHash('sha256').update(s).digest()
const supplierId = (i: number): string => `12D3KooWsupplier${String(i).padStart(5, '0')}`
const gameId = (i: number): string => `game-${String(i).padStart(3, '0')}`
const address = (i: number): string => `0x${sha(`addr-${i}`).subarray(0, 20).toString('hex')}`

/** Deterministic xorshift32, so every run fills the same ledger. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x
  }
}

function fill(ledger: Ledger): { seconds: number; items: number } {
  const next = rng(42)
  const first = clock.firstBlockOfDay(DAY)
  const batches = Math.ceil(RECEIPTS / BATCH)
  let items = 0
  let n = 0
  const t0 = performance.now()
  for (let b = 0; b < batches; b++) {
    const block = first + Math.floor((b * clock.blocksPerDay) / batches)
    const size = Math.min(BATCH, RECEIPTS - n)
    const receipts: ReceiptRow[] = []
    const bySupplier = new Map<number, Uint8Array[]>()
    for (let i = 0; i < size; i++, n++) {
      const taskId = new Uint8Array(16)
      const view = new DataView(taskId.buffer)
      view.setUint32(0, 0x7a5c0000)
      view.setUint32(12, n)
      const s = (b * 37 + (next() % WINDOW)) % SUPPLIERS
      const promptTokens = 50 + (next() % 500)
      const completionTokens = 20 + (next() % 300)
      receipts.push({
        taskId,
        hash: sha(`receipt-${n}`),
        gameId: gameId(next() % GAMES),
        supplier: supplierId(s),
        distributor: 'dist-1',
        modelId: 'model-x',
        promptTokens,
        completionTokens,
        pricePer1kTokens: 1_000n,
        cost: BigInt(promptTokens + completionTokens),
        blockHeight: block,
        verdict: next() % 10 === 0 ? 'verified' : 'unchecked',
        timestampMs: clock.blockStartMs(block)
      })
      const tasks = bySupplier.get(s)
      if (tasks === undefined) bySupplier.set(s, [taskId])
      else tasks.push(taskId)
    }
    const envelope = Buffer.from(`receipts-envelope-${b}`)
    const batch: LedgerItem[] = [{ kind: 'receipts', id: sha(`env-r-${b}`), blockHeight: block, signer: 'dist-1', envelope, receipts }]
    for (const [s, taskIds] of bySupplier) {
      batch.push({
        kind: 'confirmation',
        id: sha(`env-c-${b}-${s}`),
        blockHeight: block,
        signer: supplierId(s),
        envelope: Buffer.from(`confirmation-envelope-${b}-${s}`),
        taskIds,
        rewardAddress: address(s)
      })
    }
    ledger.insert(batch)
    items += batch.length
  }
  return { seconds: (performance.now() - t0) / 1000, items }
}

async function main(): Promise<void> {
  const keep = process.env.SETTLEMENT_BENCH_DB
  const dir = keep === undefined ? mkdtempSync(join(tmpdir(), 'gcn-settlement-bench-')) : undefined
  const path = keep ?? join(dir!, 'ledger.sqlite')
  try {
    let fillNote = 'reused'
    if (!existsSync(path)) {
      const ledger = new Ledger({ path })
      const { seconds, items } = fill(ledger)
      ledger.close()
      fillNote = `${fmt((seconds * 1e6) / RECEIPTS, 1)} µs/receipt`
      console.error(`filled ${RECEIPTS} receipts (${items} ledger items) in ${fmt(seconds, 1)} s: ${fillNote}`)
    }

    const ledger = new Ledger({ path })
    try {
      // cold: the first compilation after opening the file; warm: the best of two more
      const runs: number[] = []
      let report: ReturnType<typeof compileDay>
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now()
        report = compileDay(ledger, clock, DAY)
        runs.push(performance.now() - t0)
      }
      const r = report
      if (r === undefined) throw new Error('no report compiled')
      if (r.billableReceipts !== RECEIPTS) throw new Error(`expected ${RECEIPTS} billable receipts, got ${r.billableReceipts}`)
      const credits = r.credits.reduce((a, c) => a + c.amount, 0n)
      if (credits !== r.totalDebit) throw new Error(`credits ${credits} ≠ totalDebit ${r.totalDebit}`)

      // where the time goes (warm, best of two): the aggregation query, the reward-address lookups,
      // and the rest of compileDay (game keys, merkle tree, every proof) by difference
      const from = clock.firstBlockOfDay(DAY)
      const to = clock.lastBlockOfDay(DAY)
      let aggMs = Number.POSITIVE_INFINITY
      let addrMs = Number.POSITIVE_INFINITY
      let suppliers = 0
      for (let i = 0; i < 2; i++) {
        let t0 = performance.now()
        const agg = ledger.dayAggregates(from, to)
        aggMs = Math.min(aggMs, performance.now() - t0)
        t0 = performance.now()
        for (const c of agg.credits) ledger.rewardAddress(c.supplier, from, to)
        addrMs = Math.min(addrMs, performance.now() - t0)
        suppliers = agg.credits.length
      }
      const warm = Math.min(runs[1]!, runs[2]!)
      const leaves = r.debits.length + r.credits.length

      appendSection(
        [
          `## Settlement day compilation — ${new Date().toISOString().slice(0, 10)}`,
          '',
          `Machine: ${machine()}. \`compileDay\` over a file ledger (SQLite WAL) holding one day of billable receipts: aggregate per game and supplier, reward addresses, Merkle tree and every proof (goal ≤ 10 s).`,
          '',
          '| receipts (1 day) | games | suppliers | leaves | compileDay cold s | compileDay warm s | aggregate s | reward addresses ms | tree + proofs ms (by difference) | insert (receipts + confirmations) |',
          '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
          `| ${RECEIPTS.toLocaleString('en-US')} | ${r.debits.length} | ${suppliers} | ${leaves} | ${fmt(runs[0]! / 1000, 2)} | ${fmt(warm / 1000, 2)} | ${fmt(aggMs / 1000, 2)} | ${fmt(addrMs, 1)} | ${fmt(Math.max(0, warm - aggMs - addrMs), 0)} | ${fillNote} |`
        ].join('\n')
      )
    } finally {
      ledger.close()
    }
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  }
}

await main()
