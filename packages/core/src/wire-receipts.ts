/**
 * A fast path for decoding ReceiptBatch, the message registries parse most.
 *
 * scanReceiptBatch() parses only canonical encodings: what protons itself
 * writes (fields in ascending order, each at most once except the repeated
 * receipts, no field holding its default value, minimal varints, the declared
 * wire types, ASCII strings, no unknown fields). For those it returns exactly
 * what the generated decoder would (the wire spec compares the two on fuzzed
 * inputs), plus each receipt's own bytes, which are then byte for byte
 * `Receipt.encode(receipt)`. For anything else it returns undefined and the
 * caller decodes with protons, so accepting, rejecting and every error stay
 * the generated decoder's.
 */
import type { Receipt, ReceiptBatch } from './pb/gcn.js'

export interface ScannedReceiptBatch {
  batch: ReceiptBatch
  /** Each receipt's encoding: views into the input. */
  encodings: Uint8Array[]
}

const VERDICTS = ['UNSPECIFIED', 'UNCHECKED', 'VERIFIED', 'FAILED'] as Receipt.ProofVerdict[]
const latin1Slice = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string
const TWO_32 = 2 ** 32

/** Thrown inside the scanner to give up on the fast path; never escapes it. */
const NOT_CANONICAL = Symbol('not canonical')

/** Per-field memory of the last string decoded: receipts repeat the same few ids. */
class StringSlot {
  private last = ''

  read(buf: Uint8Array, start: number, end: number): string {
    const n = end - start
    const last = this.last
    if (last.length === n) {
      let i = 0
      while (i < n && last.charCodeAt(i) === buf[start + i]) i++
      if (i === n) return last
    }
    for (let i = start; i < end; i++) if (buf[i]! > 0x7f) throw NOT_CANONICAL
    const s = latin1Slice.call(buf, start, end)
    this.last = s
    return s
  }
}

const slots = {
  batchDistributor: new StringSlot(),
  gameId: new StringSlot(),
  supplier: new StringSlot(),
  distributor: new StringSlot(),
  modelId: new StringSlot()
}

class Scanner {
  pos = 0

  constructor(readonly buf: Uint8Array) {}

  /** A minimal varint below 2^53 (a number); `maxBytes` caps its length. */
  varint(end: number, maxBytes: number): number {
    const buf = this.buf
    let pos = this.pos
    let value = 0
    let scale = 1
    for (let i = 0; i < maxBytes; i++) {
      if (pos >= end) throw NOT_CANONICAL
      const b = buf[pos++]!
      value += (b & 0x7f) * scale
      if (b < 0x80) {
        // minimal: a multi-byte varint never ends in a zero byte
        if (b === 0 && i > 0) throw NOT_CANONICAL
        if (value > Number.MAX_SAFE_INTEGER) throw NOT_CANONICAL
        this.pos = pos
        return value
      }
      scale *= 0x80
    }
    throw NOT_CANONICAL
  }

  /** A minimal varint below 2^64, as protons' uint64() returns it (a bigint). */
  bigVarint(end: number): bigint {
    const buf = this.buf
    let pos = this.pos
    let lo = 0
    let hi = 0n
    let shift = 0n
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw NOT_CANONICAL
      const b = buf[pos++]!
      if (i < 7) lo += (b & 0x7f) * 2 ** (7 * i)
      else {
        hi |= BigInt(b & 0x7f) << shift
        shift += 7n
      }
      if (b < 0x80) {
        if (b === 0 && i > 0) throw NOT_CANONICAL
        // the 10th byte holds bit 63 only
        if (i === 9 && b > 1) throw NOT_CANONICAL
        this.pos = pos
        return hi === 0n ? BigInt(lo) : BigInt(lo) + (hi << 49n)
      }
    }
    throw NOT_CANONICAL
  }

  /** varint() of a field that must not hold its default (zero): protons would not have written it. */
  nonZero(end: number, maxBytes: number): number {
    const value = this.varint(end, maxBytes)
    if (value === 0) throw NOT_CANONICAL
    return value
  }

  /** bigVarint() of a field that must not hold its default (zero). */
  nonZeroBig(end: number): bigint {
    const value = this.bigVarint(end)
    if (value === 0n) throw NOT_CANONICAL
    return value
  }

  /** Start of a length-delimited field's body; its end is this.pos afterwards. */
  span(end: number): number {
    const length = this.varint(end, 5)
    const start = this.pos
    if (length > end - start) throw NOT_CANONICAL
    this.pos = start + length
    return start
  }

  /** A non-empty length-delimited field as a view into the input. */
  bytes(end: number): Uint8Array {
    const start = this.span(end)
    if (this.pos === start) throw NOT_CANONICAL
    return this.buf.subarray(start, this.pos)
  }

  /** A non-empty ASCII string field. */
  string(end: number, slot: StringSlot): string {
    const start = this.span(end)
    if (this.pos === start) throw NOT_CANONICAL
    return slot.read(this.buf, start, this.pos)
  }

  /** A single-byte tag for `field` with wire type `wireType`, or false at the end or at another field. */
  tag(end: number, field: number, wireType: number): boolean {
    if (this.pos >= end || this.buf[this.pos] !== ((field << 3) | wireType)) return false
    this.pos++
    return true
  }
}

function scanReceipt(s: Scanner, end: number): Receipt {
  const r: Receipt = {
    taskId: new Uint8Array(0),
    gameId: '',
    supplierPeerId: '',
    distributorPeerId: '',
    modelId: '',
    promptTokens: 0,
    completionTokens: 0,
    pricePer1kTokens: 0n,
    cost: 0n,
    blockHeight: 0,
    promptHash: new Uint8Array(0),
    outputHash: new Uint8Array(0),
    verdict: 'UNSPECIFIED' as Receipt.ProofVerdict,
    timestampMs: 0
  }
  // Fields in ascending order; each present one must hold a non-default value.
  if (s.tag(end, 1, 2)) r.taskId = s.bytes(end) as Uint8Array<ArrayBuffer>
  if (s.tag(end, 2, 2)) r.gameId = s.string(end, slots.gameId)
  if (s.tag(end, 3, 2)) r.supplierPeerId = s.string(end, slots.supplier)
  if (s.tag(end, 4, 2)) r.distributorPeerId = s.string(end, slots.distributor)
  if (s.tag(end, 5, 2)) r.modelId = s.string(end, slots.modelId)
  if (s.tag(end, 6, 0)) r.promptTokens = s.nonZero(end, 5)
  if (s.tag(end, 7, 0)) r.completionTokens = s.nonZero(end, 5)
  if (s.tag(end, 8, 0)) r.pricePer1kTokens = s.nonZeroBig(end)
  if (s.tag(end, 9, 0)) r.cost = s.nonZeroBig(end)
  if (s.tag(end, 10, 0)) r.blockHeight = s.nonZero(end, 8)
  if (s.tag(end, 11, 2)) r.promptHash = s.bytes(end) as Uint8Array<ArrayBuffer>
  if (s.tag(end, 12, 2)) r.outputHash = s.bytes(end) as Uint8Array<ArrayBuffer>
  if (s.tag(end, 13, 0)) {
    const v = s.varint(end, 1)
    if (v === 0 || v >= VERDICTS.length) throw NOT_CANONICAL
    r.verdict = VERDICTS[v]!
  }
  if (s.tag(end, 14, 0)) r.timestampMs = s.nonZero(end, 8)
  if (s.pos !== end) throw NOT_CANONICAL
  if (r.promptTokens >= TWO_32 || r.completionTokens >= TWO_32) throw NOT_CANONICAL
  return r
}

/**
 * Parses a canonical ReceiptBatch encoding (see the file comment) holding at
 * most `maxReceipts` receipts; undefined for any other input, or for input
 * not backed by an ArrayBuffer.
 */
export function scanReceiptBatch(buf: Uint8Array, maxReceipts: number): ScannedReceiptBatch | undefined {
  if (!(buf.buffer instanceof ArrayBuffer)) return undefined
  const s = new Scanner(buf)
  const end = buf.byteLength
  try {
    const batch: ReceiptBatch = { distributorPeerId: '', blockHeight: 0, receipts: [], timestampMs: 0 }
    const encodings: Uint8Array[] = []
    if (s.tag(end, 1, 2)) batch.distributorPeerId = s.string(end, slots.batchDistributor)
    if (s.tag(end, 2, 0)) batch.blockHeight = s.nonZero(end, 8)
    while (s.tag(end, 3, 2)) {
      if (batch.receipts.length === maxReceipts) throw NOT_CANONICAL
      const start = s.span(end)
      const receiptEnd = s.pos
      s.pos = start
      batch.receipts.push(scanReceipt(s, receiptEnd))
      encodings.push(buf.subarray(start, receiptEnd))
    }
    if (s.tag(end, 4, 0)) batch.timestampMs = s.nonZero(end, 8)
    if (s.pos !== end) throw NOT_CANONICAL
    return { batch, encodings }
  } catch (err) {
    if (err === NOT_CANONICAL) return undefined
    throw err
  }
}
