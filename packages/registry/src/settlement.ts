/**
 * Daily settlement compilation (docs/settlement.md): from the ledger's billable
 * receipts of one day, the debits per game and credits per reward address, the
 * merkle tree over them (OpenZeppelin StandardMerkleTree layout), every proof,
 * and the digest registry peers sign.
 *
 * Decisions:
 * - Suppliers with billable receipts but no reward address on record (none in the
 *   day, none before) cannot be paid: their receipts are left out of the debits
 *   as well as the credits (games are not charged for work nobody can be paid
 *   for), so Σ debits = Σ credits = totalDebit always; they are listed in `unpaid`.
 * - Zero amounts (e.g. only free receipts) make no leaf: they move nothing.
 * - A day with nothing to settle (no billable receipt, or only unpaid or free ones)
 *   compiles to undefined: it is not posted.
 * - Accounts are lowercase hex (as confirmations carry them); credits are summed
 *   per account, so suppliers sharing a reward address share one leaf.
 * - Ordering is canonical: debits by game key, credits by account (bytewise, which
 *   is the tree's value order), unpaid by supplier id; the report depends only on
 *   the ledger's content, never on insertion order.
 */

import { type BlockClock, InvalidMessageError } from '@gcn/core'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { type Address, encodeAbiParameters, hashMessage, keccak256, stringToBytes } from 'viem'
import type { Ledger } from './ledger.js'
import { type Hex, LEAF_CREDIT, LEAF_DEBIT, type SettlementLeaf, SettlementTree, toHex } from './settlement-tree.js'

export interface DayReport {
  day: number
  fromBlock: number
  toBlock: number
  /** The merkle root posted on chain. */
  root: Hex
  /** Σ debits = Σ credits. */
  totalDebit: bigint
  /** Billable receipts settled by this report (those of unpaid suppliers not counted). */
  billableReceipts: number
  /** One per game with a non-zero amount, ascending by gameKey. */
  debits: Array<{ gameId: string /** keccak256(utf8(gameId)). */; gameKey: Hex; amount: bigint; proof: Hex[] }>
  /** One per reward address with a non-zero amount, ascending by account. */
  credits: Array<{
    /** The smallest of `suppliers` (by UTF-16 code units). */
    supplier: string
    /** Every supplier whose credit goes to this account, ascending. */
    suppliers: string[]
    /** Lowercase 0x + 40 hex. */
    account: Hex
    amount: bigint
    proof: Hex[]
  }>
  /** Suppliers with billable receipts but no reward address on record: left out of debits, credits and the tree; ascending by supplier. */
  unpaid: Array<{ supplier: string; amount: bigint; receipts: number }>
}

/** DayReport with every bigint as a decimal string: the canonical JSON form. */
export interface DayReportJson {
  day: number
  fromBlock: number
  toBlock: number
  root: Hex
  totalDebit: string
  billableReceipts: number
  debits: Array<{ gameId: string; gameKey: Hex; amount: string; proof: Hex[] }>
  credits: Array<{ supplier: string; suppliers: string[]; account: Hex; amount: string; proof: Hex[] }>
  unpaid: Array<{ supplier: string; amount: string; receipts: number }>
}

const ADDRESS = /^0x[0-9a-f]{40}$/
const BYTES32 = /^0x[0-9a-f]{64}$/
const DECIMAL = /^(0|[1-9][0-9]*)$/
const REPORT_DOMAIN = keccak256(stringToBytes('gcn/settlement/1'))
const MAX_UINT64 = (1n << 64n) - 1n

const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** keccak256(utf8(gameId)): the game's bytes32 key on chain. */
export function gameKey(gameId: string): Hex {
  return toHex(keccak_256(new TextEncoder().encode(gameId)))
}

/** The bytes32 leaf id of an account: the 20-byte address left-padded with zeros. */
export function accountId(account: string): Hex {
  const a = account.toLowerCase()
  if (!ADDRESS.test(a)) throw new TypeError(`not an address: ${JSON.stringify(account)}`)
  return `0x${'0'.repeat(24)}${a.slice(2)}`
}

/**
 * Compiles day `day` from the ledger; undefined when nothing is to be settled.
 * Call it once no receipt of the day can still be accepted (acceptBlocksBehind
 * blocks after the day's last block).
 */
export function compileDay(ledger: Ledger, clock: BlockClock, day: number): DayReport | undefined {
  const fromBlock = clock.firstBlockOfDay(day)
  const toBlock = clock.lastBlockOfDay(day)
  let agg = ledger.dayAggregates(fromBlock, toBlock)
  if (agg.billableReceipts === 0) return undefined

  const accountOf = new Map<string, string>()
  const unpaid: DayReport['unpaid'] = []
  for (const c of agg.credits) {
    const address = ledger.rewardAddress(c.supplier, fromBlock, toBlock)?.toLowerCase()
    if (address !== undefined && ADDRESS.test(address)) accountOf.set(c.supplier, address)
    else unpaid.push({ supplier: c.supplier, amount: c.amount, receipts: c.receipts })
  }
  if (unpaid.length > 0) {
    agg = ledger.dayAggregates(
      fromBlock,
      toBlock,
      unpaid.map(u => u.supplier)
    )
  }
  unpaid.sort((a, b) => byString(a.supplier, b.supplier))

  const debits = agg.debits
    .filter(d => d.amount > 0n)
    .map(d => ({ gameId: d.gameId, gameKey: gameKey(d.gameId), amount: d.amount }))
    .sort((a, b) => byString(a.gameKey, b.gameKey))
  const byAccount = new Map<string, { suppliers: string[]; amount: bigint }>()
  for (const c of agg.credits) {
    const account = accountOf.get(c.supplier)!
    const entry = byAccount.get(account)
    if (entry === undefined) byAccount.set(account, { suppliers: [c.supplier], amount: c.amount })
    else {
      entry.suppliers.push(c.supplier)
      entry.amount += c.amount
    }
  }
  const credits = [...byAccount]
    .filter(([, c]) => c.amount > 0n)
    .map(([account, c]) => {
      const suppliers = c.suppliers.sort(byString)
      return { supplier: suppliers[0]!, suppliers, account: account as Hex, amount: c.amount }
    })
    .sort((a, b) => byString(a.account, b.account))
  if (debits.length === 0 && credits.length === 0) return undefined

  const leaves: SettlementLeaf[] = [
    ...debits.map(d => ({ kind: LEAF_DEBIT, id: d.gameKey, amount: d.amount })),
    ...credits.map(c => ({ kind: LEAF_CREDIT, id: accountId(c.account), amount: c.amount }))
  ]
  const tree = SettlementTree.of(leaves)
  const totalDebit = debits.reduce((sum, d) => sum + d.amount, 0n)
  return {
    day,
    fromBlock,
    toBlock,
    root: tree.root,
    totalDebit,
    billableReceipts: agg.billableReceipts,
    debits: debits.map((d, i) => ({ ...d, proof: tree.proof(i) })),
    credits: credits.map((c, i) => ({ ...c, proof: tree.proof(debits.length + i) })),
    unpaid
  }
}

/** keccak256(abi.encode(keccak256("gcn/settlement/1"), chainId, settlement, uint64 day, root, totalDebit)): what signers sign with personal_sign. */
export function reportHash(chainId: bigint, settlement: Address, day: number | bigint, root: Hex, totalDebit: bigint): Hex {
  const d = BigInt(day)
  if (d < 0n || d > MAX_UINT64) throw new RangeError(`day must be a uint64, got ${d}`)
  return keccak256(
    encodeAbiParameters(
      [{ type: 'bytes32' }, { type: 'uint256' }, { type: 'address' }, { type: 'uint64' }, { type: 'bytes32' }, { type: 'uint256' }],
      [REPORT_DOMAIN, chainId, settlement, d, root, totalDebit]
    )
  )
}

/**
 * The EIP-191 digest of reportHash (keccak256("\x19Ethereum Signed Message:\n32" ‖ hash)):
 * the contract's `reportDigest(day, root, totalDebit)`, what `ecrecover` checks. Sign it raw
 * (`sign({ hash })`), or sign reportHash with `signMessage({ message: { raw } })`.
 */
export function reportDigest(chainId: bigint, settlement: Address, day: number | bigint, root: Hex, totalDebit: bigint): Hex {
  return hashMessage({ raw: reportHash(chainId, settlement, day, root, totalDebit) })
}

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
const WORD = (n: bigint): Hex => `0x${n.toString(16).padStart(64, '0')}`

/**
 * The `signatures` argument of GcnSettlement.postDay: one entry per registered signer, in
 * ascending address order — its EIP-2098 compact signature as two words (r, then s with the
 * y parity in the top bit) when `signatures` holds one for it, else its address as one word.
 * `signatures` maps signer addresses (any case) to signatures over the day's reportDigest:
 * 65 bytes (r ‖ s ‖ v, v ∈ {0, 1, 27, 28}) or 64 bytes (EIP-2098). A high-s signature is
 * turned into its low-s twin (same signer). Throws RangeError for a signature by an address
 * that is not in `signers`, or one that cannot be encoded (malformed; r < 2¹⁶⁰, which the
 * contract would read as an address: probability 2⁻⁹⁶).
 */
export function encodeDaySignatures(signers: readonly string[], signatures: ReadonlyMap<string, Hex>): Hex[] {
  const bySigner = new Map<string, Hex>()
  for (const [signer, signature] of signatures) bySigner.set(signer.toLowerCase(), signature)
  const sorted = signers.map(a => a.toLowerCase()).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0))
  const words: Hex[] = []
  for (const signer of sorted) {
    const signature = bySigner.get(signer)
    bySigner.delete(signer)
    if (signature === undefined) {
      words.push(`0x${signer.slice(2).padStart(64, '0')}`)
      continue
    }
    if (!/^0x([0-9a-fA-F]{128}|[0-9a-fA-F]{130})$/.test(signature)) throw new RangeError(`signature of ${signer} is not 64 or 65 bytes`)
    const r = BigInt(`0x${signature.slice(2, 66)}`)
    let s = BigInt(`0x${signature.slice(66, 130)}`)
    let parity: bigint
    if (signature.length === 130) {
      parity = s >> 255n
      s &= (1n << 255n) - 1n
    } else {
      const v = Number.parseInt(signature.slice(130), 16)
      if (v !== 0 && v !== 1 && v !== 27 && v !== 28) throw new RangeError(`signature of ${signer} has v = ${v}`)
      parity = BigInt(v % 27)
    }
    if (s === 0n || s >= SECP256K1_N || r === 0n || r >= SECP256K1_N) throw new RangeError(`signature of ${signer} is malformed`)
    if (r >> 160n === 0n) throw new RangeError(`signature of ${signer} has r < 2^160 and cannot be posted`)
    if (s > SECP256K1_N >> 1n) {
      s = SECP256K1_N - s
      parity ^= 1n
    }
    words.push(WORD(r), WORD((parity << 255n) | s))
  }
  const [stray] = bySigner.keys()
  if (stray !== undefined) throw new RangeError(`${stray} signed but is not a registered signer`)
  return words
}

/** The canonical JSON form (bigints as decimal strings, fixed key order). */
export function reportToJson(report: DayReport): DayReportJson {
  return {
    day: report.day,
    fromBlock: report.fromBlock,
    toBlock: report.toBlock,
    root: report.root,
    totalDebit: report.totalDebit.toString(),
    billableReceipts: report.billableReceipts,
    debits: report.debits.map(d => ({ gameId: d.gameId, gameKey: d.gameKey, amount: d.amount.toString(), proof: [...d.proof] })),
    credits: report.credits.map(c => ({
      supplier: c.supplier,
      suppliers: [...c.suppliers],
      account: c.account,
      amount: c.amount.toString(),
      proof: [...c.proof]
    })),
    unpaid: report.unpaid.map(u => ({ supplier: u.supplier, amount: u.amount.toString(), receipts: u.receipts }))
  }
}

/** JSON.stringify(reportToJson(report)): byte-identical for identical reports. */
export function encodeReport(report: DayReport): string {
  return JSON.stringify(reportToJson(report))
}

function fail(what: string): never {
  throw new InvalidMessageError(`invalid settlement report: ${what}`)
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function uint(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${what} must be a non-negative integer`)
  return v
}

function amount(v: unknown, what: string): bigint {
  if (typeof v !== 'string' || v.length > 78 || !DECIMAL.test(v)) fail(`${what} must be a decimal string`)
  return BigInt(v)
}

function hexOf(v: unknown, re: RegExp, what: string): Hex {
  if (typeof v !== 'string' || !re.test(v)) fail(`${what} must be lowercase hex`)
  return v as Hex
}

function proofOf(v: unknown, what: string): Hex[] {
  if (!Array.isArray(v) || v.length > 64) fail(`${what} must be an array of bytes32`)
  return v.map((p, i) => hexOf(p, BYTES32, `${what}[${i}]`))
}

function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) fail(`${what} must be an array`)
  return v
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') fail(`${what} must be a string`)
  return v
}

/**
 * Parses the canonical JSON form (a string or an already parsed value) and checks it
 * is self-consistent: game keys, sums, and every proof against the root.
 * Throws InvalidMessageError otherwise.
 */
export function decodeReport(json: unknown): DayReport {
  let v: unknown = json
  if (typeof json === 'string') {
    try {
      v = JSON.parse(json)
    } catch (err) {
      throw new InvalidMessageError('invalid settlement report: not JSON', { cause: err })
    }
  }
  if (!isRecord(v)) fail('not an object')
  const report: DayReport = {
    day: uint(v.day, 'day'),
    fromBlock: uint(v.fromBlock, 'fromBlock'),
    toBlock: uint(v.toBlock, 'toBlock'),
    root: hexOf(v.root, BYTES32, 'root'),
    totalDebit: amount(v.totalDebit, 'totalDebit'),
    billableReceipts: uint(v.billableReceipts, 'billableReceipts'),
    debits: list(v.debits, 'debits').map((d, i) => {
      if (!isRecord(d)) fail(`debits[${i}] must be an object`)
      return {
        gameId: str(d.gameId, `debits[${i}].gameId`),
        gameKey: hexOf(d.gameKey, BYTES32, `debits[${i}].gameKey`),
        amount: amount(d.amount, `debits[${i}].amount`),
        proof: proofOf(d.proof, `debits[${i}].proof`)
      }
    }),
    credits: list(v.credits, 'credits').map((c, i) => {
      if (!isRecord(c)) fail(`credits[${i}] must be an object`)
      return {
        supplier: str(c.supplier, `credits[${i}].supplier`),
        suppliers: list(c.suppliers, `credits[${i}].suppliers`).map((s, j) => str(s, `credits[${i}].suppliers[${j}]`)),
        account: hexOf(c.account, ADDRESS, `credits[${i}].account`),
        amount: amount(c.amount, `credits[${i}].amount`),
        proof: proofOf(c.proof, `credits[${i}].proof`)
      }
    }),
    unpaid: list(v.unpaid, 'unpaid').map((u, i) => {
      if (!isRecord(u)) fail(`unpaid[${i}] must be an object`)
      return {
        supplier: str(u.supplier, `unpaid[${i}].supplier`),
        amount: amount(u.amount, `unpaid[${i}].amount`),
        receipts: uint(u.receipts, `unpaid[${i}].receipts`)
      }
    })
  }
  let debitSum = 0n
  for (const [i, d] of report.debits.entries()) {
    if (d.gameKey !== gameKey(d.gameId)) fail(`debits[${i}].gameKey is not keccak256(gameId)`)
    if (!SettlementTree.verify(report.root, { kind: LEAF_DEBIT, id: d.gameKey, amount: d.amount }, d.proof)) {
      fail(`debits[${i}].proof does not verify`)
    }
    debitSum += d.amount
  }
  let creditSum = 0n
  for (const [i, c] of report.credits.entries()) {
    if (c.suppliers.length === 0 || c.supplier !== c.suppliers[0]) fail(`credits[${i}].supplier must be the first of suppliers`)
    if (!SettlementTree.verify(report.root, { kind: LEAF_CREDIT, id: accountId(c.account), amount: c.amount }, c.proof)) {
      fail(`credits[${i}].proof does not verify`)
    }
    creditSum += c.amount
  }
  if (debitSum !== report.totalDebit || creditSum !== report.totalDebit) fail('debits and credits do not both sum to totalDebit')
  // the root itself is checked by whoever compares it with their own compilation or the chain
  return report
}
