import { createHash, hash } from 'node:crypto'
import type { ProofVerdictName } from './inference.js'
import { Receipt } from './pb/gcn.js'
import type { DecodedReceiptBatch } from './wire.js'

/**
 * What one finished task costs: (prompt + completion tokens) × price per
 * 1,000 tokens, rounded up to a whole micro-unit. Registries recompute it and
 * refuse a receipt whose cost disagrees.
 */
export function receiptCost(promptTokens: number, completionTokens: number, pricePer1kTokens: bigint): bigint {
  const tokens = BigInt(promptTokens) + BigInt(completionTokens)
  return (tokens * pricePer1kTokens + 999n) / 1000n
}

/**
 * A receipt's identity in the ledger: sha256 of its protobuf encoding. protons
 * writes fields in a fixed order, so every peer that decoded the same receipt
 * computes the same hash whichever batch carried it.
 *
 * Registries hash every receipt they store, so the usual case (ASCII strings,
 * in-range numbers, a known verdict) is encoded here straight into a scratch
 * buffer, byte for byte what `Receipt.encode` writes (billing.spec checks it);
 * anything else takes `Receipt.encode` itself.
 */
export function receiptHash(receipt: Receipt): Uint8Array {
  const length = encodeReceiptInto(receipt, scratch)
  if (length < 0) return createHash('sha256').update(Receipt.encode(receipt)).digest()
  return hash('sha256', scratch.subarray(0, length), 'buffer')
}

/**
 * receiptHash of every receipt of a decoded batch: sha256 of the receipt's
 * bytes as they arrived when decodeReceiptBatch found them canonical (they are
 * then exactly `Receipt.encode(receipt)`), else receiptHash.
 */
export function receiptHashes(decoded: DecodedReceiptBatch): Uint8Array[] {
  const { batch, encodings } = decoded
  if (encodings === undefined || encodings.length !== batch.receipts.length) return batch.receipts.map(receiptHash)
  return encodings.map(bytes => hash('sha256', bytes, 'buffer'))
}

/** The wire enum of a proof verdict and back. */
export function verdictToWire(verdict: ProofVerdictName): Receipt.ProofVerdict {
  switch (verdict) {
    case 'verified':
      return Receipt.ProofVerdict.VERIFIED
    case 'failed':
      return Receipt.ProofVerdict.FAILED
    default:
      return Receipt.ProofVerdict.UNCHECKED
  }
}

export function verdictFromWire(verdict: Receipt.ProofVerdict): ProofVerdictName {
  if (verdict === Receipt.ProofVerdict.VERIFIED) return 'verified'
  if (verdict === Receipt.ProofVerdict.FAILED) return 'failed'
  return 'unchecked'
}

/** Id of a stored envelope: sha256 of its encoded bytes (what replication and sync compare). */
export function envelopeId(encodedEnvelope: Uint8Array): Uint8Array {
  return hash('sha256', encodedEnvelope, 'buffer')
}

// ---------------------------------------------------------------------------
// The common-case Receipt encoder behind receiptHash.

const SCRATCH_BYTES = 16 * 1024
const scratch = Buffer.allocUnsafe(SCRATCH_BYTES)
/** Room for the 14 tags and the varints: 14 × (1-byte tag + ≤ 10-byte varint). */
const FIXED_OVERHEAD = 14 * 11
const U32_MAX = 0xffff_ffff
const U64_LIMIT = 2n ** 64n
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER)
/** ProofVerdict names to their wire numbers; UNSPECIFIED (0) is not written. */
const VERDICT_NUMBER: Readonly<Record<string, number>> = Object.freeze({
  [Receipt.ProofVerdict.UNCHECKED]: 1,
  [Receipt.ProofVerdict.VERIFIED]: 2,
  [Receipt.ProofVerdict.FAILED]: 3
})

function writeVarint(buf: Buffer, pos: number, value: number): number {
  while (value > 0x7f) {
    buf[pos++] = (value % 0x80) | 0x80
    value = Math.floor(value / 0x80)
  }
  buf[pos++] = value
  return pos
}

function writeBigVarint(buf: Buffer, pos: number, value: bigint): number {
  if (value <= SAFE_MAX) return writeVarint(buf, pos, Number(value))
  while (value > 0x7fn) {
    buf[pos++] = Number(value & 0x7fn) | 0x80
    value >>= 7n
  }
  buf[pos++] = Number(value)
  return pos
}

/** Tag, length and bytes of a non-empty bytes field (the caller checked it is one). */
function writeBytesField(buf: Buffer, pos: number, tag: number, value: Uint8Array): number {
  buf[pos++] = tag
  pos = writeVarint(buf, pos, value.byteLength)
  buf.set(value, pos)
  return pos + value.byteLength
}

/** OR of every character code writeAsciiField wrote since it was last reset: above 0x7f, one was not ASCII. */
let charBits = 0

/** Tag, length and characters of a non-empty string, one byte per character: right only if it is ASCII (see charBits). */
function writeAsciiField(buf: Buffer, pos: number, tag: number, value: string): number {
  const n = value.length
  buf[pos++] = tag
  pos = writeVarint(buf, pos, n)
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i)
    charBits |= c
    buf[pos++] = c
  }
  return pos
}

const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array
const isU32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= U32_MAX
const isSafeUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
const isU64 = (v: unknown): v is bigint => typeof v === 'bigint' && v >= 0n && v < U64_LIMIT

/**
 * Writes `Receipt.encode(r)` into `buf` and returns its length, or -1 when `r`
 * is outside the common case (a field missing or of another type, a non-ASCII
 * string, a number out of range, an unknown verdict, or too large for `buf`),
 * which the caller then encodes with protons. The field order and the
 * omission of default values (empty bytes and strings, zero numbers, an
 * UNSPECIFIED verdict) follow the generated encoder in pb/gcn.ts.
 */
function encodeReceiptInto(r: Receipt, buf: Buffer): number {
  const { taskId, gameId, supplierPeerId, distributorPeerId, modelId, promptHash, outputHash } = r
  if (!isBytes(taskId) || !isBytes(promptHash) || !isBytes(outputHash)) return -1
  if (
    typeof gameId !== 'string' ||
    typeof supplierPeerId !== 'string' ||
    typeof distributorPeerId !== 'string' ||
    typeof modelId !== 'string'
  ) {
    return -1
  }
  const { promptTokens, completionTokens, pricePer1kTokens, cost, blockHeight, timestampMs } = r
  if (!isU32(promptTokens) || !isU32(completionTokens) || !isSafeUint(blockHeight) || !isSafeUint(timestampMs)) return -1
  if (!isU64(pricePer1kTokens) || !isU64(cost)) return -1
  const verdict = r.verdict === Receipt.ProofVerdict.UNSPECIFIED ? 0 : VERDICT_NUMBER[r.verdict]
  if (verdict === undefined) return -1
  const variable =
    taskId.byteLength +
    promptHash.byteLength +
    outputHash.byteLength +
    gameId.length +
    supplierPeerId.length +
    distributorPeerId.length +
    modelId.length
  if (variable + FIXED_OVERHEAD > buf.byteLength) return -1

  let pos = 0
  charBits = 0
  if (taskId.byteLength > 0) pos = writeBytesField(buf, pos, 10, taskId)
  if (gameId !== '') pos = writeAsciiField(buf, pos, 18, gameId)
  if (supplierPeerId !== '') pos = writeAsciiField(buf, pos, 26, supplierPeerId)
  if (distributorPeerId !== '') pos = writeAsciiField(buf, pos, 34, distributorPeerId)
  if (modelId !== '') pos = writeAsciiField(buf, pos, 42, modelId)
  if (charBits > 0x7f) return -1
  if (promptTokens !== 0) {
    buf[pos++] = 48
    pos = writeVarint(buf, pos, promptTokens)
  }
  if (completionTokens !== 0) {
    buf[pos++] = 56
    pos = writeVarint(buf, pos, completionTokens)
  }
  if (pricePer1kTokens !== 0n) {
    buf[pos++] = 64
    pos = writeBigVarint(buf, pos, pricePer1kTokens)
  }
  if (cost !== 0n) {
    buf[pos++] = 72
    pos = writeBigVarint(buf, pos, cost)
  }
  if (blockHeight !== 0) {
    buf[pos++] = 80
    pos = writeVarint(buf, pos, blockHeight)
  }
  if (promptHash.byteLength > 0) pos = writeBytesField(buf, pos, 90, promptHash)
  if (outputHash.byteLength > 0) pos = writeBytesField(buf, pos, 98, outputHash)
  if (verdict !== 0) {
    buf[pos++] = 104
    buf[pos++] = verdict
  }
  if (timestampMs !== 0) {
    buf[pos++] = 112
    pos = writeVarint(buf, pos, timestampMs)
  }
  return pos
}
