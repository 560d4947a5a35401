/**
 * The registry peer's durable ledger: signed receipt batches (from
 * distributors) and block confirmations (from suppliers), stored in SQLite
 * (WAL, synchronous=FULL) so that whatever insert() returned for survives a
 * SIGKILL.
 *
 * Signatures are checked by the caller before anything reaches the ledger; the
 * ledger stores already-verified items idempotently (by envelope id), dedups
 * receipts by task id and confirmations by (supplier, task id), records
 * conflicting receipts, and answers the queries settlement and replication
 * need (per-block merkle summaries, span digests, totals, mismatches).
 */

import { ConfigError, InvalidBlockError } from '@gcn/core'
import Database from 'better-sqlite3'
import { blockRoot, confirmationLeaf, spanDigest } from './merkle.js'

export interface ReceiptRow {
  /** 16 bytes. */
  taskId: Uint8Array
  /** 32-byte leaf: sha256 of the encoded receipt (computed by the caller). */
  hash: Uint8Array
  gameId: string
  /** Supplier peer id. */
  supplier: string
  distributor: string
  modelId: string
  promptTokens: number
  completionTokens: number
  pricePer1kTokens: bigint
  /** < 2^63 (caller guarantees). */
  cost: bigint
  blockHeight: number
  verdict: 'unchecked' | 'verified' | 'failed'
  timestampMs: number
}

export type LedgerItem =
  | {
      kind: 'receipts'
      /** 32-byte envelope id. */
      id: Uint8Array
      blockHeight: number
      signer: string
      /** Encoded SignedEnvelope bytes. */
      envelope: Uint8Array
      receipts: ReceiptRow[]
    }
  | {
      kind: 'confirmation'
      id: Uint8Array
      blockHeight: number
      /** The supplier. */
      signer: string
      envelope: Uint8Array
      taskIds: Uint8Array[]
      /** The supplier's reward address (lowercase 0x + 40 hex) from its signed confirmation. */
      rewardAddress?: string
    }

export interface InsertOutcome {
  /** The envelope id was already stored: nothing changed. */
  duplicate: boolean
  /** Receipts whose task id was already stored with a different hash. */
  conflicts: number
}

export interface BlockSummaryRow {
  blockHeight: number
  count: number
  root: Uint8Array
}

/** Which cached block summaries Ledger.spans may answer although inserts changed their block since. */
export interface SummaryStaleness {
  /** Blocks at or after this height. */
  fromBlock: number
  /** Summaries computed at most this long ago (ms). */
  maxMs: number
}

export interface LedgerFilter {
  fromBlock?: number
  toBlock?: number
  gameId?: string
  supplier?: string
}

export type ReceiptStatus = 'billable' | 'unconfirmed' | 'failed' | 'conflict'

export interface Totals {
  receipts: number
  promptTokens: number
  completionTokens: number
  cost: bigint
  billableReceipts: number
  billableCost: bigint
  unconfirmedReceipts: number
  failedReceipts: number
  /** Stored receipts whose task id has a conflicting receipt (status 'conflict'). */
  conflicts: number
}

export type Mismatch =
  /** A receipt with no confirmation for its task id at all. */
  | { kind: 'unconfirmed'; taskId: string; supplier: string; blockHeight: number }
  /** A confirmation with no receipt for its task id. */
  | { kind: 'unreceipted'; taskId: string; supplier: string; blockHeight: number }
  /** The receipt names `supplier`, the confirmation came from `confirmedBy`, and none came from `supplier`. */
  | { kind: 'supplier-mismatch'; taskId: string; supplier: string; confirmedBy: string; blockHeight: number }
  /** Two different receipts for one task id. */
  | { kind: 'conflict'; taskId: string; blockHeight: number }

/** Billable totals of a block range (see Ledger.dayAggregates). */
export interface DayAggregates {
  /** Per game id, ascending by game id (UTF-16 code unit order). */
  debits: Array<{ gameId: string; amount: bigint; receipts: number }>
  /** Per supplier, ascending by supplier id (UTF-16 code unit order). */
  credits: Array<{ supplier: string; amount: bigint; receipts: number }>
  billableReceipts: number
}

export interface LedgerInit {
  /** File path, or ':memory:'. */
  path: string
}

/**
 * 2: adds supplier_addresses. A version-1 file is upgraded in place (the table is
 * created empty: confirmations stored before the upgrade have no reward address on
 * record); a version-2 file is refused by version-1 builds, which would not record
 * addresses and so would settle differently from their peers.
 */
const SCHEMA_VERSION = 2
const ACCEPTED_VERSIONS: readonly number[] = [0, 1, SCHEMA_VERSION]
const KIND_RECEIPTS = 1
const KIND_CONFIRMATION = 2
const DEFAULT_RECEIPT_LIMIT = 100
const DEFAULT_MISMATCH_LIMIT = 1000
const MAX_LIMIT = 10_000
const SUMMARY_CACHE_MAX = 65_536
/** WAL pages (4 KiB) between automatic checkpoints. */
const WAL_CHECKPOINT_PAGES = 10_000
/** The WAL file is truncated back to this size after a checkpoint (bytes). */
const WAL_SIZE_LIMIT = 64 * 1024 * 1024

const VERDICT_CODE: Record<ReceiptRow['verdict'], number> = { unchecked: 0, verified: 1, failed: 2 }
const VERDICTS: readonly ReceiptRow['verdict'][] = ['unchecked', 'verified', 'failed']
// status codes computed in SQL, see STATUS_SQL
const STATUSES: readonly ReceiptStatus[] = ['billable', 'unconfirmed', 'failed', 'conflict']

const SCHEMA = `
CREATE TABLE IF NOT EXISTS envelopes (
  id BLOB PRIMARY KEY,
  kind INTEGER NOT NULL,
  block INTEGER NOT NULL,
  signer TEXT NOT NULL,
  bytes BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS envelopes_block ON envelopes (block);
CREATE TABLE IF NOT EXISTS receipts (
  task_id BLOB NOT NULL UNIQUE,
  hash BLOB NOT NULL,
  block INTEGER NOT NULL,
  game TEXT NOT NULL,
  supplier TEXT NOT NULL,
  distributor TEXT NOT NULL,
  model TEXT NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  price INTEGER NOT NULL,
  cost INTEGER NOT NULL,
  verdict INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  envelope BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS receipts_block ON receipts (block, hash);
CREATE TABLE IF NOT EXISTS confirmations (
  supplier TEXT NOT NULL,
  task_id BLOB NOT NULL,
  block INTEGER NOT NULL,
  leaf BLOB NOT NULL,
  PRIMARY KEY (supplier, task_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS confirmations_task ON confirmations (task_id);
CREATE INDEX IF NOT EXISTS confirmations_block ON confirmations (block, leaf);
CREATE TABLE IF NOT EXISTS supplier_addresses (
  supplier TEXT NOT NULL,
  block INTEGER NOT NULL,
  address TEXT NOT NULL,
  PRIMARY KEY (supplier, block, address)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS conflicts (
  task_id BLOB NOT NULL,
  hash BLOB NOT NULL,
  envelope BLOB NOT NULL,
  block INTEGER NOT NULL,
  PRIMARY KEY (task_id, hash)
) WITHOUT ROWID;
`

/** 0 billable, 1 unconfirmed, 2 failed, 3 conflict (index into STATUSES); `r` is the receipts alias. */
const STATUS_SQL = `CASE
  WHEN EXISTS (SELECT 1 FROM conflicts x WHERE x.task_id = r.task_id) THEN 3
  WHEN r.verdict = 2 THEN 2
  WHEN EXISTS (SELECT 1 FROM confirmations c WHERE c.supplier = r.supplier AND c.task_id = r.task_id) THEN 0
  ELSE 1 END`

type Stmt = Database.Statement<unknown[], unknown>

interface CachedSummary {
  row: BlockSummaryRow
  /** performance.now() when it was computed. */
  computedAt: number
  /** No insert has touched the block since. */
  fresh: boolean
}

interface RawReceipt {
  task_id: Buffer
  hash: Buffer
  block: bigint
  game: string
  supplier: string
  distributor: string
  model: string
  prompt_tokens: bigint
  completion_tokens: bigint
  price: bigint
  cost: bigint
  verdict: bigint
  ts: bigint
  st: bigint
}

interface RawTotals {
  n: bigint
  pt: bigint
  ct: bigint
  cost: bigint
  bn: bigint
  bc: bigint
  un: bigint
  fn: bigint
  xn: bigint
}

interface RawMismatch {
  k: number
  task_id: Buffer
  supplier: string | null
  other: string | null
  block: number
}

function checkHeight(what: string, h: number): void {
  if (!Number.isSafeInteger(h) || h < 0) throw new InvalidBlockError(`${what} must be a non-negative integer, got ${h}`)
}

function clampLimit(limit: number | undefined, dflt: number): number {
  if (limit === undefined || !Number.isFinite(limit)) return dflt
  return Math.max(0, Math.min(MAX_LIMIT, Math.floor(limit)))
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
}

/** WHERE conditions on a receipts alias for a filter; pushes bind values onto `params`. */
function receiptConds(f: LedgerFilter | undefined, alias: string, params: unknown[]): string[] {
  const conds: string[] = []
  if (f === undefined) return conds
  if (f.fromBlock !== undefined) {
    conds.push(`${alias}.block >= ?`)
    params.push(f.fromBlock)
  }
  if (f.toBlock !== undefined) {
    conds.push(`${alias}.block <= ?`)
    params.push(f.toBlock)
  }
  if (f.gameId !== undefined) {
    conds.push(`${alias}.game = ?`)
    params.push(f.gameId)
  }
  if (f.supplier !== undefined) {
    conds.push(`${alias}.supplier = ?`)
    params.push(f.supplier)
  }
  return conds
}

function blockConds(f: LedgerFilter | undefined, alias: string, params: unknown[]): string[] {
  const conds: string[] = []
  if (f?.fromBlock !== undefined) {
    conds.push(`${alias}.block >= ?`)
    params.push(f.fromBlock)
  }
  if (f?.toBlock !== undefined) {
    conds.push(`${alias}.block <= ?`)
    params.push(f.toBlock)
  }
  return conds
}

function where(conds: readonly string[]): string {
  return conds.length === 0 ? '' : ` WHERE ${conds.join(' AND ')}`
}

function and(conds: readonly string[]): string {
  return conds.length === 0 ? '' : ` AND ${conds.join(' AND ')}`
}

function isIntegerOverflow(err: unknown): boolean {
  return err instanceof Error && /integer overflow/i.test(err.message)
}

export class Ledger {
  private readonly db: Database.Database
  private readonly summaries = new Map<number, CachedSummary>()
  private readonly dynamic = new Map<string, Stmt>()
  private readonly insEnvelope: Stmt
  private readonly insReceipt: Stmt
  private readonly getStoredReceipt: Stmt
  private readonly delReceipt: Stmt
  private readonly insConflict: Stmt
  private readonly insConfirmation: Stmt
  private readonly insAddress: Stmt
  private readonly addressBlockStmt: Stmt
  private readonly addressBeforeStmt: Stmt
  private readonly addressAtStmt: Stmt
  private readonly billableStmt: Stmt
  private readonly hasEnvelopeStmt: Stmt
  private readonly envelopeIdsStmt: Stmt
  private readonly envelopeBytesStmt: Stmt
  private readonly receiptLeavesStmt: Stmt
  private readonly confirmationLeavesStmt: Stmt
  private readonly nextBlockStmt: Stmt
  private readonly nextRowBlockStmt: Stmt
  private readonly latestStmt: Stmt
  private readonly countsStmt: Stmt
  private readonly insertTxn: (items: readonly LedgerItem[]) => InsertOutcome[]
  private readonly touched = new Set<number>()

  constructor(init: LedgerInit) {
    const db = new Database(init.path)
    this.db = db
    try {
      db.defaultSafeIntegers(false)
      db.pragma('journal_mode = WAL')
      db.pragma('synchronous = FULL')
      db.pragma('foreign_keys = OFF')
      // Checkpoint (copy WAL pages into the database file, fsync it) every ~40 MiB of WAL
      // instead of SQLite's 4 MiB: a batch of inserts dirties pages all over the random
      // task_id index, so at 4 MiB nearly every commit also ran a checkpoint, writing the
      // same hot pages twice. Durability is the WAL's, fsynced at every commit either way.
      db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`)
      db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`)
      const version = db.pragma('user_version', { simple: true }) as number
      if (!ACCEPTED_VERSIONS.includes(version)) {
        throw new ConfigError(`ledger ${init.path} has schema version ${version}, this build reads versions 1 to ${SCHEMA_VERSION}`, {
          hint: 'use a ledger file written by a matching gcn version, or move it aside to start a fresh one'
        })
      }
      db.transaction(() => {
        db.exec(SCHEMA)
        db.pragma(`user_version = ${SCHEMA_VERSION}`)
      })()
    } catch (err) {
      db.close()
      throw err
    }

    this.insEnvelope = db.prepare('INSERT INTO envelopes (id, kind, block, signer, bytes) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING')
    this.insReceipt = db.prepare(
      `INSERT INTO receipts (task_id, hash, block, game, supplier, distributor, model,
         prompt_tokens, completion_tokens, price, cost, verdict, ts, envelope)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
    )
    this.getStoredReceipt = db.prepare('SELECT hash, envelope, block FROM receipts WHERE task_id = ?')
    this.delReceipt = db.prepare('DELETE FROM receipts WHERE task_id = ?')
    this.insConflict = db.prepare('INSERT INTO conflicts (task_id, hash, envelope, block) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING')
    this.insConfirmation = db.prepare(
      'INSERT INTO confirmations (supplier, task_id, block, leaf) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING'
    )
    this.insAddress = db.prepare('INSERT INTO supplier_addresses (supplier, block, address) VALUES (?, ?, ?) ON CONFLICT DO NOTHING')
    // latest block in [?, ?] / before ? with an address for the supplier, then its smallest address (index seeks only)
    this.addressBlockStmt = db
      .prepare('SELECT max(block) FROM supplier_addresses WHERE supplier = ? AND block >= ? AND block <= ?')
      .pluck(true)
    this.addressBeforeStmt = db.prepare('SELECT max(block) FROM supplier_addresses WHERE supplier = ? AND block < ?').pluck(true)
    this.addressAtStmt = db.prepare('SELECT min(address) FROM supplier_addresses WHERE supplier = ? AND block = ?').pluck(true)
    // (game, supplier, cost) of the billable receipts (status 0 of STATUS_SQL) with block in [?, ?]
    this.billableStmt = db
      .prepare(
        `SELECT r.game, r.supplier, r.cost FROM receipts r
         WHERE r.block >= ? AND r.block <= ? AND (${STATUS_SQL}) = 0`
      )
      .safeIntegers(true)
      .raw(true)
    this.hasEnvelopeStmt = db.prepare('SELECT 1 FROM envelopes WHERE id = ?').pluck(true)
    this.envelopeIdsStmt = db.prepare('SELECT id FROM envelopes WHERE block = ? ORDER BY id').pluck(true)
    this.envelopeBytesStmt = db.prepare('SELECT bytes FROM envelopes WHERE id = ?').pluck(true)
    // leaves of a block in ascending order, straight from the (block, hash) and (block, leaf) indexes
    this.receiptLeavesStmt = db.prepare('SELECT hash FROM receipts WHERE block = ? ORDER BY hash').pluck(true)
    this.confirmationLeavesStmt = db.prepare('SELECT leaf FROM confirmations WHERE block = ? ORDER BY leaf').pluck(true)
    // smallest block >= ? holding an envelope, receipt or confirmation (index seeks, no scans)
    this.nextBlockStmt = db
      .prepare(
        `SELECT min(b) FROM (
           SELECT (SELECT block FROM envelopes WHERE block >= ? ORDER BY block LIMIT 1) AS b
           UNION ALL SELECT (SELECT block FROM receipts WHERE block >= ? ORDER BY block LIMIT 1)
           UNION ALL SELECT (SELECT block FROM confirmations WHERE block >= ? ORDER BY block LIMIT 1))`
      )
      .pluck(true)
    // smallest block >= ? holding a receipt or confirmation
    this.nextRowBlockStmt = db
      .prepare(
        `SELECT min(b) FROM (
           SELECT (SELECT block FROM receipts WHERE block >= ? ORDER BY block LIMIT 1) AS b
           UNION ALL SELECT (SELECT block FROM confirmations WHERE block >= ? ORDER BY block LIMIT 1))`
      )
      .pluck(true)
    this.latestStmt = db
      .prepare(
        `SELECT max(b) FROM (
           SELECT (SELECT max(block) FROM envelopes) AS b
           UNION ALL SELECT (SELECT max(block) FROM receipts)
           UNION ALL SELECT (SELECT max(block) FROM confirmations))`
      )
      .pluck(true)
    this.countsStmt = db.prepare(
      `SELECT (SELECT count(*) FROM envelopes) AS envelopes, (SELECT count(*) FROM receipts) AS receipts,
              (SELECT count(*) FROM confirmations) AS confirmations`
    )

    this.insertTxn = db.transaction((items: readonly LedgerItem[]) => {
      const outcomes: InsertOutcome[] = []
      for (const item of items) outcomes.push(this.insertOne(item))
      return outcomes
    })
  }

  /**
   * Stores items in ONE transaction. Idempotent by envelope id; receipts dedup
   * by task id (same hash: skipped; different hash: the first row stays and the
   * the smaller hash stays in receipts, the other goes to the conflicts table); confirmations dedup by (supplier, task id).
   */
  insert(items: readonly LedgerItem[]): InsertOutcome[] {
    if (items.length === 0) return []
    try {
      return this.insertTxn(items)
    } finally {
      for (const h of this.touched) {
        const cached = this.summaries.get(h)
        if (cached !== undefined) cached.fresh = false
      }
      this.touched.clear()
    }
  }

  private insertOne(item: LedgerItem): InsertOutcome {
    const kind = item.kind === 'receipts' ? KIND_RECEIPTS : KIND_CONFIRMATION
    if (this.insEnvelope.run(item.id, kind, item.blockHeight, item.signer, item.envelope).changes === 0) {
      return { duplicate: true, conflicts: 0 }
    }
    let conflicts = 0
    if (item.kind === 'receipts') {
      for (const r of item.receipts) {
        if (this.insertReceipt(r, item.id)) {
          this.touched.add(r.blockHeight)
          continue
        }
        const stored = this.getStoredReceipt.get(r.taskId) as { hash: Buffer; envelope: Buffer; block: number } | undefined
        if (stored === undefined || Buffer.compare(stored.hash, r.hash) === 0) continue
        conflicts++
        // Keep the smaller hash in `receipts` so every replica ends up with the same rows (and roots) whatever the arrival order.
        if (Buffer.compare(r.hash, stored.hash) < 0) {
          this.insConflict.run(r.taskId, stored.hash, stored.envelope, stored.block)
          this.delReceipt.run(r.taskId)
          this.insertReceipt(r, item.id)
          this.touched.add(stored.block)
          this.touched.add(r.blockHeight)
        } else {
          this.insConflict.run(r.taskId, r.hash, item.id, r.blockHeight)
        }
      }
    } else {
      if (item.rewardAddress !== undefined && item.rewardAddress !== '') {
        this.insAddress.run(item.signer, item.blockHeight, item.rewardAddress.toLowerCase())
      }
      for (const taskId of item.taskIds) {
        const leaf = confirmationLeaf(item.signer, taskId)
        if (this.insConfirmation.run(item.signer, taskId, item.blockHeight, leaf).changes > 0) this.touched.add(item.blockHeight)
      }
    }
    return { duplicate: false, conflicts }
  }

  private insertReceipt(r: ReceiptRow, envelope: Uint8Array): boolean {
    const res = this.insReceipt.run(
      r.taskId,
      r.hash,
      r.blockHeight,
      r.gameId,
      r.supplier,
      r.distributor,
      r.modelId,
      r.promptTokens,
      r.completionTokens,
      r.pricePer1kTokens,
      r.cost,
      VERDICT_CODE[r.verdict],
      r.timestampMs,
      envelope
    )
    return res.changes > 0
  }

  hasEnvelope(id: Uint8Array): boolean {
    return this.hasEnvelopeStmt.get(id) !== undefined
  }

  /**
   * count = receipt rows + confirmation rows of the block; root = blockRoot over
   * the receipt hashes and confirmation leaves. Cached until an insert touches the block;
   * with maxStaleMs > 0 a cached summary computed at most that long ago is returned even
   * if inserts have touched the block since (anti-entropy then hashes a block that is
   * being written at most once per interval, rather than at every comparison).
   */
  blockSummary(height: number, maxStaleMs = 0): BlockSummaryRow {
    checkHeight('block height', height)
    const cached = this.summaries.get(height)
    if (cached !== undefined && (cached.fresh || performance.now() - cached.computedAt <= maxStaleMs)) {
      const { row } = cached
      return { blockHeight: row.blockHeight, count: row.count, root: row.root }
    }
    const leaves = this.receiptLeavesStmt.all(height) as Buffer[]
    const confirmed = this.confirmationLeavesStmt.all(height) as Buffer[]
    // two sorted runs: blockRoot's sort merges them in linear time
    for (const leaf of confirmed) leaves.push(leaf)
    const summary: BlockSummaryRow = { blockHeight: height, count: leaves.length, root: blockRoot(leaves) }
    this.summaries.delete(height)
    if (this.summaries.size >= SUMMARY_CACHE_MAX) {
      const oldest = this.summaries.keys().next()
      if (oldest.done !== true) this.summaries.delete(oldest.value)
    }
    this.summaries.set(height, { row: summary, computedAt: performance.now(), fresh: true })
    return { blockHeight: height, count: summary.count, root: summary.root }
  }

  /** Ascending blocks in [fromBlock, toBlock] that hold any envelope (or any receipt or confirmation row). */
  blocksWithData(fromBlock: number, toBlock: number): number[] {
    checkHeight('fromBlock', fromBlock)
    checkHeight('toBlock', toBlock)
    const out: number[] = []
    let h = fromBlock
    while (h <= toBlock) {
      const next = this.nextBlockStmt.get(h, h, h) as number | null
      if (next === null || next > toBlock) break
      out.push(next)
      h = next + 1
    }
    return out
  }

  /**
   * For each span-aligned range [k*span, (k+1)*span-1] intersecting [fromBlock,
   * toBlock] (clipped to it) that holds receipts or confirmations: blockHeight =
   * first block of the clipped range, count = sum of its block counts, root =
   * spanDigest of its non-empty block summaries. With `stale`, blocks from
   * stale.fromBlock on are summarised as blockSummary(height, stale.maxMs) does.
   */
  spans(fromBlock: number, toBlock: number, span: number, stale?: SummaryStaleness): BlockSummaryRow[] {
    checkHeight('fromBlock', fromBlock)
    checkHeight('toBlock', toBlock)
    if (!Number.isSafeInteger(span) || span < 1) throw new InvalidBlockError(`span must be a positive integer, got ${span}`)
    const out: BlockSummaryRow[] = []
    let currentK = -1
    let start = 0
    let count = 0
    let members: BlockSummaryRow[] = []
    const flush = (): void => {
      if (members.length > 0) out.push({ blockHeight: start, count, root: spanDigest(members) })
    }
    let h = fromBlock
    while (h <= toBlock) {
      const next = this.nextRowBlockStmt.get(h, h) as number | null
      if (next === null || next > toBlock) break
      h = next + 1
      const summary = this.blockSummary(next, stale !== undefined && next >= stale.fromBlock ? stale.maxMs : 0)
      if (summary.count === 0) continue
      const k = Math.floor(next / span)
      if (k !== currentK) {
        flush()
        currentK = k
        start = Math.max(k * span, fromBlock)
        count = 0
        members = []
      }
      count += summary.count
      members.push(summary)
    }
    flush()
    return out
  }

  /** Ids of the envelopes stored for a block, ascending bytewise. */
  envelopeIds(height: number): Uint8Array[] {
    return this.envelopeIdsStmt.all(height) as Buffer[]
  }

  /** Encoded envelope bytes for the ids we hold, in the order asked (unknown ids skipped). */
  envelopes(ids: readonly Uint8Array[]): Uint8Array[] {
    const out: Uint8Array[] = []
    for (const id of ids) {
      const bytes = this.envelopeBytesStmt.get(id) as Buffer | undefined
      if (bytes !== undefined) out.push(bytes)
    }
    return out
  }

  totals(filter?: LedgerFilter): Totals {
    const params: unknown[] = []
    const inner = `SELECT r.prompt_tokens, r.completion_tokens, r.cost, ${STATUS_SQL} AS st
      FROM receipts r${where(receiptConds(filter, 'r', params))}`
    const sql = `SELECT count(*) AS n, coalesce(sum(prompt_tokens), 0) AS pt, coalesce(sum(completion_tokens), 0) AS ct,
        coalesce(sum(cost), 0) AS cost,
        coalesce(sum(st = 0), 0) AS bn, coalesce(sum(CASE WHEN st = 0 THEN cost ELSE 0 END), 0) AS bc,
        coalesce(sum(st = 1), 0) AS un, coalesce(sum(st = 2), 0) AS fn, coalesce(sum(st = 3), 0) AS xn
      FROM (${inner})`
    let raw: RawTotals
    try {
      raw = this.stmt(sql, true).get(...params) as RawTotals
    } catch (err) {
      if (!isIntegerOverflow(err)) throw err
      raw = this.totalsSlow(inner, params)
    }
    return {
      receipts: Number(raw.n),
      promptTokens: Number(raw.pt),
      completionTokens: Number(raw.ct),
      cost: raw.cost,
      billableReceipts: Number(raw.bn),
      billableCost: raw.bc,
      unconfirmedReceipts: Number(raw.un),
      failedReceipts: Number(raw.fn),
      conflicts: Number(raw.xn)
    }
  }

  /** Row-by-row totals in bigint, for sums that overflow SQLite's 64-bit integers. */
  private totalsSlow(inner: string, params: unknown[]): RawTotals {
    const t: RawTotals = { n: 0n, pt: 0n, ct: 0n, cost: 0n, bn: 0n, bc: 0n, un: 0n, fn: 0n, xn: 0n }
    const rows = this.stmt(inner, true).iterate(...params) as IterableIterator<{
      prompt_tokens: bigint
      completion_tokens: bigint
      cost: bigint
      st: bigint
    }>
    for (const row of rows) {
      t.n++
      t.pt += row.prompt_tokens
      t.ct += row.completion_tokens
      t.cost += row.cost
      if (row.st === 0n) {
        t.bn++
        t.bc += row.cost
      } else if (row.st === 1n) t.un++
      else if (row.st === 2n) t.fn++
      else t.xn++
    }
    return t
  }

  /** Receipts ordered by blockHeight, taskId; default limit 100, at most 10,000. */
  receipts(filter?: LedgerFilter & { limit?: number; offset?: number }): Array<ReceiptRow & { status: ReceiptStatus }> {
    const params: unknown[] = []
    const conds = receiptConds(filter, 'r', params)
    params.push(clampLimit(filter?.limit, DEFAULT_RECEIPT_LIMIT), Math.max(0, Math.floor(filter?.offset ?? 0)))
    const sql = `SELECT r.task_id, r.hash, r.block, r.game, r.supplier, r.distributor, r.model, r.prompt_tokens,
        r.completion_tokens, r.price, r.cost, r.verdict, r.ts, ${STATUS_SQL} AS st
      FROM receipts r${where(conds)} ORDER BY r.block, r.task_id LIMIT ? OFFSET ?`
    const rows = this.stmt(sql, true).all(...params) as RawReceipt[]
    return rows.map(row => ({
      taskId: row.task_id,
      hash: row.hash,
      gameId: row.game,
      supplier: row.supplier,
      distributor: row.distributor,
      modelId: row.model,
      promptTokens: Number(row.prompt_tokens),
      completionTokens: Number(row.completion_tokens),
      pricePer1kTokens: row.price,
      cost: row.cost,
      blockHeight: Number(row.block),
      verdict: VERDICTS[Number(row.verdict)] ?? 'unchecked',
      timestampMs: Number(row.ts),
      status: STATUSES[Number(row.st)] ?? 'unconfirmed'
    }))
  }

  /**
   * Receipt/confirmation mismatches ordered by blockHeight, taskId. 'unconfirmed'
   * only for receipts with blockHeight < settledBefore (default: all). Receipts in
   * conflict are reported as 'conflict' only (once per task id). With a gameId
   * filter no 'unreceipted' items are reported (a bare confirmation has no game);
   * the supplier filter matches `supplier` or `confirmedBy`. Default limit 1000, at most 10,000.
   */
  mismatches(filter?: LedgerFilter & { settledBefore?: number; limit?: number }): Mismatch[] {
    const params: unknown[] = []
    const parts: string[] = []
    const noConflict = 'NOT EXISTS (SELECT 1 FROM conflicts x WHERE x.task_id = r.task_id)'

    // 0: unconfirmed — no confirmation for the task id from anyone
    {
      const conds = receiptConds(filter, 'r', params)
      if (filter?.settledBefore !== undefined) {
        conds.push('r.block < ?')
        params.push(filter.settledBefore)
      }
      parts.push(`SELECT 0 AS k, r.task_id, r.supplier, NULL AS other, r.block FROM receipts r
        WHERE ${noConflict} AND NOT EXISTS (SELECT 1 FROM confirmations c WHERE c.task_id = r.task_id)${and(conds)}`)
    }
    // 1: unreceipted — confirmation with no receipt for its task id
    if (filter?.gameId === undefined) {
      const conds = blockConds(filter, 'c', params)
      if (filter?.supplier !== undefined) {
        conds.push('c.supplier = ?')
        params.push(filter.supplier)
      }
      parts.push(`SELECT 1 AS k, c.task_id, c.supplier, NULL AS other, c.block FROM confirmations c
        WHERE NOT EXISTS (SELECT 1 FROM receipts r WHERE r.task_id = c.task_id)${and(conds)}`)
    }
    // 2: supplier-mismatch — confirmed by someone else, not by the receipt's supplier
    {
      const conds = receiptConds({ ...filter, supplier: undefined }, 'r', params)
      if (filter?.supplier !== undefined) {
        conds.push('(r.supplier = ? OR c.supplier = ?)')
        params.push(filter.supplier, filter.supplier)
      }
      parts.push(`SELECT 2 AS k, r.task_id, r.supplier, c.supplier AS other, r.block
        FROM receipts r JOIN confirmations c ON c.task_id = r.task_id AND c.supplier <> r.supplier
        WHERE ${noConflict}
          AND NOT EXISTS (SELECT 1 FROM confirmations c2 WHERE c2.supplier = r.supplier AND c2.task_id = r.task_id)${and(conds)}`)
    }
    // 3: conflict — once per stored receipt whose task id has a conflicting receipt
    {
      const conds = receiptConds(filter, 'r', params)
      parts.push(`SELECT 3 AS k, r.task_id, r.supplier, NULL AS other, r.block FROM receipts r
        WHERE EXISTS (SELECT 1 FROM conflicts x WHERE x.task_id = r.task_id)${and(conds)}`)
    }
    params.push(clampLimit(filter?.limit, DEFAULT_MISMATCH_LIMIT))
    const sql = `SELECT k, task_id, supplier, other, block FROM (${parts.join(' UNION ALL ')})
      ORDER BY block, task_id, k, other LIMIT ?`
    const rows = this.stmt(sql, false).all(...params) as RawMismatch[]
    return rows.map((row): Mismatch => {
      const taskId = hex(row.task_id)
      switch (row.k) {
        case 0:
          return { kind: 'unconfirmed', taskId, supplier: row.supplier ?? '', blockHeight: row.block }
        case 1:
          return { kind: 'unreceipted', taskId, supplier: row.supplier ?? '', blockHeight: row.block }
        case 2:
          return { kind: 'supplier-mismatch', taskId, supplier: row.supplier ?? '', confirmedBy: row.other ?? '', blockHeight: row.block }
        default:
          return { kind: 'conflict', taskId, blockHeight: row.block }
      }
    })
  }

  /**
   * Sums of `cost` over the billable receipts (status 'billable': verdict unchecked or
   * verified, no conflicting receipt, confirmed by the supplier the receipt names)
   * with block in [fromBlock, toBlock], per game (debits) and per supplier (credits).
   * Receipts of the suppliers in `excludeSuppliers` are left out of everything.
   */
  dayAggregates(fromBlock: number, toBlock: number, excludeSuppliers?: Iterable<string>): DayAggregates {
    checkHeight('fromBlock', fromBlock)
    checkHeight('toBlock', toBlock)
    const excluded = new Set(excludeSuppliers ?? [])
    const games = new Map<string, { amount: bigint; receipts: number }>()
    const suppliers = new Map<string, { amount: bigint; receipts: number }>()
    let billable = 0
    // Folded here rather than with GROUP BY: SQLite groups by sorting every row (slower than
    // these two hash maps), and bigint sums cannot overflow.
    for (const [game, supplier, cost] of this.billableStmt.iterate(fromBlock, toBlock) as IterableIterator<[string, string, bigint]>) {
      if (excluded.size > 0 && excluded.has(supplier)) continue
      billable++
      const g = games.get(game)
      if (g === undefined) games.set(game, { amount: cost, receipts: 1 })
      else {
        g.amount += cost
        g.receipts++
      }
      const s = suppliers.get(supplier)
      if (s === undefined) suppliers.set(supplier, { amount: cost, receipts: 1 })
      else {
        s.amount += cost
        s.receipts++
      }
    }
    const byKey = <T>(m: Map<string, T>): Array<[string, T]> => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return {
      debits: byKey(games).map(([gameId, v]) => ({ gameId, amount: v.amount, receipts: v.receipts })),
      credits: byKey(suppliers).map(([supplier, v]) => ({ supplier, amount: v.amount, receipts: v.receipts })),
      billableReceipts: billable
    }
  }

  /**
   * The reward address (lowercase) a supplier's confirmations carried: that of its
   * latest block in [fromBlock, toBlock] with one (several in that block → the
   * smallest); none in the range → that of its latest block before fromBlock;
   * undefined when it never sent one up to toBlock.
   */
  rewardAddress(supplier: string, fromBlock: number, toBlock: number): string | undefined {
    checkHeight('fromBlock', fromBlock)
    checkHeight('toBlock', toBlock)
    let block = this.addressBlockStmt.get(supplier, fromBlock, toBlock) as number | null
    if (block === null) block = this.addressBeforeStmt.get(supplier, fromBlock) as number | null
    if (block === null) return undefined
    return (this.addressAtStmt.get(supplier, block) as string | null) ?? undefined
  }

  /** Highest block with data (an envelope, receipt or confirmation), undefined when empty. */
  latestBlock(): number | undefined {
    const h = this.latestStmt.get() as number | null
    return h === null ? undefined : h
  }

  counts(): { envelopes: number; receipts: number; confirmations: number } {
    return this.countsStmt.get() as { envelopes: number; receipts: number; confirmations: number }
  }

  close(): void {
    if (!this.db.open) return
    this.summaries.clear()
    this.dynamic.clear()
    this.db.close()
  }

  /** Prepared statements for filter-dependent SQL, cached by text. */
  private stmt(sql: string, safeIntegers: boolean): Stmt {
    const key = (safeIntegers ? 'S' : 'N') + sql
    let s = this.dynamic.get(key)
    if (s === undefined) {
      s = this.db.prepare(sql).safeIntegers(safeIntegers)
      this.dynamic.set(key, s)
    }
    return s
  }
}
