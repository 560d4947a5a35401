import { hkdf } from '@noble/hashes/hkdf.js'
import { hmac } from '@noble/hashes/hmac.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { equalBytes } from './bytes.js'
import { GcnError, InvalidMessageError } from './errors.js'

/**
 * Proof-of-inference commitments. While generating, the supplier records for
 * every token the chosen id, its raw log-probability and the top-K
 * alternatives, quantised to 1/256 nat, and folds them into an HMAC chain
 * keyed by the task's secret nonce (which only the distributor and the chosen
 * supplier know) and bound to the task id and model id: a 16-byte code after
 * the first token, then one per PROOF_GROUP_TOKENS tokens, plus a final code
 * that also seals the count, so a
 * proof cannot be replayed for another task or model, extended or cut.
 *
 * Codes alone prove nothing about the model (the supplier holds the key); they
 * make the claimed log-probabilities binding, and re-scoring them with a
 * reference copy of the model is what catches a wrong model or forged tokens.
 *
 * Wire cost: a record is ~13 bytes (varint id, zig-zag varint logprob, K = 2
 * alternatives), plus codes (~1 byte per token) and ~4 bytes of segment
 * framing per chunk: ~18.5 bytes per token when every token is its own chunk
 * (measured, BENCHMARKS.md).
 */
export const PROOF_VERSION = 1
export const PROOF_TOP_K = 2
/** Tokens covered by one chained code. */
export const PROOF_GROUP_TOKENS = 16
export const PROOF_CODE_BYTES = 16
/** Quantisation step: 1/256 nat. */
export const LOGPROB_SCALE = 256
/** Log-probabilities below this are clamped (they carry no useful signal). */
export const LOGPROB_FLOOR = -64
const MAX_RECORDS_PER_SEGMENT = 4096
const MAX_CODES_PER_SEGMENT = 4096

export interface Logprob {
  token: number
  logprob: number
}

/** What the runtime reports per generated token. */
export interface TokenLogprob extends Logprob {
  top: Logprob[]
}

/** A token record as committed: logprobs are integers in 1/256 nat, ≤ 0. */
export interface TokenRecord {
  token: number
  lp: number
  top: Array<{ token: number; lp: number }>
}

/** One chunk's share of the proof: its records and any codes completed with it. */
export interface ProofSegment {
  records: TokenRecord[]
  codes: Uint8Array[]
  final: boolean
}

/** A proof that is malformed, does not verify, or disagrees with the streamed tokens. */
export class ProofError extends GcnError {
  static override readonly code = 'ERR_PROOF'
  override name = 'ProofError'
}

export function quantiseLogprob(logprob: number): number {
  if (Number.isNaN(logprob)) throw new GcnError('logprob is NaN')
  const clamped = Math.min(0, Math.max(LOGPROB_FLOOR, logprob))
  return Math.round(clamped * LOGPROB_SCALE)
}

export function dequantiseLogprob(lp: number): number {
  return lp / LOGPROB_SCALE
}

export function toRecord(t: TokenLogprob, topK = PROOF_TOP_K): TokenRecord {
  return {
    token: t.token,
    lp: quantiseLogprob(t.logprob),
    top: t.top.slice(0, topK).map(a => ({ token: a.token, lp: quantiseLogprob(a.logprob) }))
  }
}

// ---------------------------------------------------------------------------
// Canonical binary encoding (the same bytes are sent and authenticated).

class Writer {
  private bytes: number[] = []
  u8(v: number): void {
    this.bytes.push(v & 0xff)
  }
  varint(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new GcnError(`cannot encode ${v} as a varint`)
    while (v >= 0x80) {
      this.bytes.push((v % 0x80) | 0x80)
      v = Math.floor(v / 0x80)
    }
    this.bytes.push(v)
  }
  zigzag(v: number): void {
    this.varint(v < 0 ? -2 * v - 1 : 2 * v)
  }
  raw(b: Uint8Array): void {
    for (const x of b) this.bytes.push(x)
  }
  done(): Uint8Array {
    return Uint8Array.from(this.bytes)
  }
}

class Reader {
  private pos = 0
  constructor(private readonly bytes: Uint8Array) {}
  private fail(what: string): never {
    throw new InvalidMessageError(`proof segment: ${what} at byte ${this.pos}`)
  }
  u8(): number {
    if (this.pos >= this.bytes.length) this.fail('truncated')
    return this.bytes[this.pos++]!
  }
  varint(max = 0xffffffff): number {
    let value = 0
    for (let i = 0; i < 5; i++) {
      const b = this.u8()
      value += (b & 0x7f) * 2 ** (7 * i)
      if (b < 0x80) {
        // Only the shortest encoding is accepted, so every proof has exactly one byte form.
        if (b === 0 && i > 0) this.fail('non-minimal varint')
        if (value > max) this.fail(`value ${value} over ${max}`)
        return value
      }
    }
    return this.fail('varint too long')
  }
  zigzag(): number {
    const v = this.varint()
    return v % 2 === 0 ? v / 2 : -(v + 1) / 2
  }
  raw(n: number): Uint8Array {
    if (this.pos + n > this.bytes.length) this.fail('truncated')
    const out = this.bytes.slice(this.pos, this.pos + n)
    this.pos += n
    return out
  }
  end(): void {
    if (this.pos !== this.bytes.length) this.fail('trailing bytes')
  }
}

function writeRecord(w: Writer, r: TokenRecord): void {
  w.varint(r.token)
  w.zigzag(r.lp)
  w.u8(r.top.length)
  for (const a of r.top) {
    w.varint(a.token)
    w.zigzag(a.lp)
  }
}

function readRecord(rd: Reader): TokenRecord {
  const token = rd.varint()
  const lp = rd.zigzag()
  const k = rd.u8()
  if (k > PROOF_TOP_K) throw new InvalidMessageError(`proof record has ${k} alternatives, at most ${PROOF_TOP_K}`)
  const top: TokenRecord['top'] = []
  for (let i = 0; i < k; i++) top.push({ token: rd.varint(), lp: rd.zigzag() })
  return { token, lp, top }
}

export function encodeRecords(records: readonly TokenRecord[]): Uint8Array {
  const w = new Writer()
  for (const r of records) writeRecord(w, r)
  return w.done()
}

export function encodeProofSegment(segment: ProofSegment): Uint8Array {
  const w = new Writer()
  w.u8(PROOF_VERSION)
  w.varint(segment.records.length)
  for (const r of segment.records) writeRecord(w, r)
  w.varint(segment.codes.length)
  for (const c of segment.codes) {
    if (c.length !== PROOF_CODE_BYTES) throw new GcnError(`proof code must be ${PROOF_CODE_BYTES} bytes`)
    w.raw(c)
  }
  w.u8(segment.final ? 1 : 0)
  return w.done()
}

/** Strict decoder: anything malformed is an InvalidMessageError. */
export function decodeProofSegment(bytes: Uint8Array): ProofSegment {
  const rd = new Reader(bytes)
  const version = rd.u8()
  if (version !== PROOF_VERSION) throw new InvalidMessageError(`unknown proof version ${version}`)
  const n = rd.varint(MAX_RECORDS_PER_SEGMENT)
  const records: TokenRecord[] = []
  for (let i = 0; i < n; i++) records.push(readRecord(rd))
  const m = rd.varint(MAX_CODES_PER_SEGMENT)
  const codes: Uint8Array[] = []
  for (let i = 0; i < m; i++) codes.push(rd.raw(PROOF_CODE_BYTES))
  const final = rd.u8()
  if (final > 1) throw new InvalidMessageError('proof final flag must be 0 or 1')
  rd.end()
  return { records, codes, final: final === 1 }
}

// ---------------------------------------------------------------------------
// The HMAC chain.

const utf8 = new TextEncoder()

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, v)
  return b
}

/** The chain key: only holders of the task nonce can compute codes for this task and model. */
export function proofKey(nonce: Uint8Array, taskId: Uint8Array, modelId: string): Uint8Array {
  return hkdf(sha256, nonce, taskId, utf8.encode(`gcn/proof/1/${modelId}`), 32)
}

function groupCode(key: Uint8Array, index: number, previous: Uint8Array, records: readonly TokenRecord[], finalCount?: number): Uint8Array {
  // @noble, not node:crypto: at these sizes, on a process that was idle a few ms (every chunk's
  // case), OpenSSL's per-call setup made native HMAC and HKDF no faster (30 against 26 µs, 51
  // against 32 µs, 2-core dev VM).
  const mac = hmac.create(sha256, key)
  mac.update(u32(index))
  mac.update(previous)
  mac.update(Uint8Array.of(finalCount === undefined ? 0 : 1))
  mac.update(u32(finalCount ?? records.length))
  mac.update(encodeRecords(records))
  return mac.digest().subarray(0, PROOF_CODE_BYTES)
}

/** Shared chain state: groups of PROOF_GROUP_TOKENS records, each code chained to the previous one. */
class Chain {
  private readonly key: Uint8Array
  private pending: TokenRecord[] = []
  private previous: Uint8Array = new Uint8Array(PROOF_CODE_BYTES)
  private index = 0
  count = 0

  constructor(key: Uint8Array) {
    this.key = key
  }

  /** Adds records; returns the codes of every group they complete. */
  push(records: readonly TokenRecord[]): Uint8Array[] {
    const codes: Uint8Array[] = []
    for (const r of records) {
      this.pending.push(r)
      this.count++
      // The first group is a single token, so a proof replayed from another task fails at the
      // very first token, before any text reaches the client; later groups hold PROOF_GROUP_TOKENS.
      if (this.pending.length === (this.index === 0 ? 1 : PROOF_GROUP_TOKENS)) codes.push(this.close())
    }
    return codes
  }

  /** The final code: covers the last (possibly empty) group and the total count. */
  finish(): Uint8Array {
    return this.close(this.count)
  }

  private close(finalCount?: number): Uint8Array {
    const code = groupCode(this.key, this.index++, this.previous, this.pending, finalCount)
    this.previous = code
    this.pending = []
    return code
  }
}

/** Supplier side: turns each chunk's token logprobs into a proof segment. */
export class ProofWriter {
  private readonly chain: Chain

  constructor(nonce: Uint8Array, taskId: Uint8Array, modelId: string) {
    this.chain = new Chain(proofKey(nonce, taskId, modelId))
  }

  segment(tokens: readonly TokenLogprob[]): ProofSegment {
    const records = tokens.map(t => toRecord(t))
    return { records, codes: this.chain.push(records), final: false }
  }

  finish(): ProofSegment {
    return this.finishWith([])
  }

  /** The last tokens and the final code in one segment, for an answer's last chunk. */
  finishWith(tokens: readonly TokenLogprob[]): ProofSegment {
    const records = tokens.map(t => toRecord(t))
    const codes = this.chain.push(records)
    codes.push(this.chain.finish())
    return { records, codes, final: true }
  }
}

/**
 * Distributor side, always on: recomputes the chain from the records (so a
 * proof from another task, model or nonce fails at its first code), checks
 * the records name exactly the streamed token ids, that the final code seals
 * the count, and that every record is internally plausible.
 */
export class ProofVerifier {
  private readonly chain: Chain
  private finished = false
  readonly records: TokenRecord[] = []

  constructor(
    nonce: Uint8Array,
    taskId: Uint8Array,
    modelId: string,
    private readonly options: {
      greedy: boolean
      /** proofKey(nonce, taskId, modelId), when the caller derived it ahead (off a task's critical path). */
      key?: Uint8Array
    }
  ) {
    this.chain = new Chain(options.key ?? proofKey(nonce, taskId, modelId))
  }

  /** Checks one chunk's segment against the token ids streamed in that chunk. */
  add(segment: ProofSegment, tokenIds: readonly number[]): void {
    if (this.finished) throw new ProofError('proof continues after its final code')
    if (segment.records.length !== tokenIds.length) {
      throw new ProofError(`chunk streamed ${tokenIds.length} tokens but its proof has ${segment.records.length} records`)
    }
    segment.records.forEach((r, i) => {
      if (r.token !== tokenIds[i])
        throw new ProofError(`token ${this.records.length + i}: streamed id ${tokenIds[i]} but committed ${r.token}`)
      checkPlausible(r, this.records.length + i, this.options.greedy)
    })
    const expected = this.chain.push(segment.records)
    this.records.push(...segment.records)
    const codes = segment.final ? segment.codes.slice(0, -1) : segment.codes
    if (codes.length !== expected.length || !codes.every((c, i) => equalBytes(c, expected[i]!))) {
      throw new ProofError(`proof code mismatch near token ${this.records.length}`, {
        hint: 'the proof belongs to another task, model or output'
      })
    }
    if (segment.final) {
      const last = segment.codes[segment.codes.length - 1]
      if (last === undefined || !equalBytes(last, this.chain.finish())) throw new ProofError('final proof code does not seal this output')
      this.finished = true
    }
  }

  /** Call at the end of the stream with the reported completion token count. */
  finish(completionTokens: number): TokenRecord[] {
    if (!this.finished) throw new ProofError('proof has no final code')
    if (completionTokens !== this.records.length) {
      throw new ProofError(`usage reports ${completionTokens} completion tokens but the proof covers ${this.records.length}`)
    }
    return this.records
  }
}

/** One quantum of slack for rounding when comparing a token's own logprob with its top-K entry. */
const QUANTUM = 1

function checkPlausible(r: TokenRecord, position: number, greedy: boolean): void {
  if (r.lp > 0 || r.top.some(a => a.lp > 0)) throw new ProofError(`token ${position}: a log-probability above 0`)
  for (let i = 1; i < r.top.length; i++) {
    if (r.top[i]!.lp > r.top[i - 1]!.lp) throw new ProofError(`token ${position}: top alternatives are not sorted`)
  }
  const best = r.top[0]
  if (best === undefined) throw new ProofError(`token ${position}: no top alternatives`)
  if (r.lp > best.lp + QUANTUM) throw new ProofError(`token ${position}: the chosen token is more likely than the top-1`)
  const self = r.top.find(a => a.token === r.token)
  if (self !== undefined && Math.abs(self.lp - r.lp) > QUANTUM)
    throw new ProofError(`token ${position}: two different logprobs for the chosen token`)
  if (greedy && best.token !== r.token && best.lp - r.lp > QUANTUM) {
    throw new ProofError(`token ${position}: greedy decoding chose a token that is not the most likely`)
  }
}
