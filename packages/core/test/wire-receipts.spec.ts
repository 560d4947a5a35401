import { expect } from 'chai'
import fc from 'fast-check'
import { InvalidMessageError, MessageTooLargeError } from '../src/errors.js'
import { Receipt, ReceiptBatch } from '../src/pb/gcn.js'
import { decodeReceiptBatch, FIELD_LIMITS, ProofVerdict, ReceiptBatchCodec } from '../src/wire.js'
import { scanReceiptBatch } from '../src/wire-receipts.js'

const MAX = FIELD_LIMITS.receiptsPerBatch

const bytesOf = (min: number, max = min) => fc.uint8Array({ minLength: min, maxLength: max }) as fc.Arbitrary<Uint8Array<ArrayBuffer>>
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const peerId = fc.constantFrom(
  '12D3KooWHgLCwFL2jz1E7U8PoeUw53ADp2bmXxbCx7BgTsGgLiWM',
  '12D3KooWQxCdwq33KW8WCRJLHenrbFwuKwvPCxoD86sWKU4aY8WU'
)
const ascii = (min: number, max: number) =>
  fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map(c => String.fromCharCode(c)), minLength: min, maxLength: max })
const edgeU32 = fc.oneof(fc.constantFrom(0, 1, 127, 128, 2 ** 31, 2 ** 32 - 1), fc.integer({ min: 0, max: 2 ** 32 - 1 }))
const edgeSafe = fc.oneof(fc.constantFrom(0, 1, 127, 128, 2 ** 32, Number.MAX_SAFE_INTEGER), fc.maxSafeNat())
const edgeU64 = fc.oneof(
  fc.constantFrom(0n, 1n, 128n, 2n ** 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })
)

/** Schema-valid receipts (what honest distributors send). */
const validReceipt: fc.Arbitrary<Receipt> = fc.record({
  taskId: bytesOf(16),
  gameId: ascii(1, 16),
  supplierPeerId: peerId,
  distributorPeerId: peerId,
  modelId: bytesOf(32).map(hex),
  promptTokens: edgeU32,
  completionTokens: edgeU32,
  pricePer1kTokens: edgeU64,
  cost: edgeU64,
  blockHeight: edgeSafe,
  promptHash: bytesOf(32),
  outputHash: bytesOf(32),
  verdict: fc.constantFrom(ProofVerdict.UNCHECKED, ProofVerdict.VERIFIED, ProofVerdict.FAILED),
  timestampMs: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })
})
const validBatch: fc.Arbitrary<ReceiptBatch> = fc
  .record({
    distributorPeerId: peerId,
    blockHeight: edgeSafe,
    receipts: fc.array(validReceipt, { minLength: 1, maxLength: 4 }),
    timestampMs: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })
  })
  .map(b => ({ ...b, receipts: b.receipts.map(r => ({ ...r, distributorPeerId: b.distributorPeerId, blockHeight: b.blockHeight })) }))

/** Anything protons can encode: empty and default fields, any strings, any verdict. */
const anyReceipt: fc.Arbitrary<Receipt> = fc.record({
  taskId: bytesOf(0, 18),
  gameId: fc.string({ unit: 'binary', maxLength: 6 }),
  supplierPeerId: fc.oneof(peerId, fc.constant('')),
  distributorPeerId: fc.oneof(peerId, fc.constant('')),
  modelId: fc.oneof(bytesOf(32).map(hex), fc.constant('')),
  promptTokens: edgeU32,
  completionTokens: edgeU32,
  pricePer1kTokens: edgeU64,
  cost: edgeU64,
  blockHeight: edgeSafe,
  promptHash: bytesOf(0, 33),
  outputHash: bytesOf(0, 33),
  verdict: fc.constantFrom(...Object.values(ProofVerdict).filter((v): v is ProofVerdict => typeof v === 'string')),
  timestampMs: edgeSafe
})
const anyBatch: fc.Arbitrary<ReceiptBatch> = fc.record({
  distributorPeerId: fc.oneof(peerId, fc.string({ maxLength: 4 })),
  blockHeight: edgeSafe,
  receipts: fc.array(anyReceipt, { maxLength: 3 }),
  timestampMs: edgeSafe
})

type Mutation = { at: number; op: 'flip' | 'insert' | 'delete' | 'truncate'; byte: number }
const mutation: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  op: fc.constantFrom('flip' as const, 'insert' as const, 'delete' as const, 'truncate' as const),
  byte: fc.integer({ min: 0, max: 255 })
})

function mutate(input: Uint8Array, mutations: Mutation[]): Uint8Array {
  let bytes = Uint8Array.from(input)
  for (const m of mutations) {
    const at = bytes.length === 0 ? 0 : m.at % (bytes.length + (m.op === 'insert' ? 1 : 0))
    if (m.op === 'flip' && bytes.length > 0) bytes[at] ^= 1 << (m.byte % 8)
    else if (m.op === 'insert') bytes = Uint8Array.from([...bytes.subarray(0, at), m.byte, ...bytes.subarray(at)])
    else if (m.op === 'delete' && bytes.length > 0) bytes = Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(at + 1)])
    else if (m.op === 'truncate') bytes = bytes.slice(0, at)
  }
  return bytes
}

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0

/** Whenever the fast path answers, it is protons' answer, and each receipt's bytes are its encoding. */
function checkScan(input: Uint8Array): boolean {
  const scanned = scanReceiptBatch(input, MAX)
  if (scanned === undefined) return false
  const protons = ReceiptBatch.decode(input, { limits: { receipts: MAX } })
  expect(scanned.batch).to.deep.equal(protons)
  expect(scanned.encodings).to.have.length(protons.receipts.length)
  scanned.encodings.forEach((bytes, i) => {
    expect(same(bytes, Receipt.encode(protons.receipts[i]!))).to.equal(true)
  })
  // canonical: the whole input is what protons writes
  expect(same(ReceiptBatch.encode(protons), input)).to.equal(true)
  return true
}

/** decodeReceiptBatch and ReceiptBatchCodec.decode agree: same batch, or the same error. */
function checkDecodeAgrees(input: Uint8Array): void {
  let want: ReceiptBatch | Error
  try {
    want = ReceiptBatchCodec.decode(input)
  } catch (err) {
    want = err as Error
  }
  let got: ReturnType<typeof decodeReceiptBatch> | Error
  try {
    got = decodeReceiptBatch(input)
  } catch (err) {
    got = err as Error
  }
  if (want instanceof Error) {
    expect(got).to.be.instanceOf(Error)
    expect(want instanceof InvalidMessageError || want instanceof MessageTooLargeError).to.equal(true)
    expect((got as Error).constructor).to.equal(want.constructor)
    expect((got as Error).message).to.equal(want.message)
    return
  }
  expect(got).to.not.be.instanceOf(Error)
  const decoded = got as ReturnType<typeof decodeReceiptBatch>
  expect(decoded.batch).to.deep.equal(want)
  if (decoded.encodings !== undefined) {
    decoded.encodings.forEach((bytes, i) => {
      expect(same(bytes, Receipt.encode(want.receipts[i]!))).to.equal(true)
    })
  }
}

describe('ReceiptBatch fast path (wire-receipts)', function () {
  this.timeout(120_000)

  it('takes every batch protons encodes from valid receipts, and returns what protons decodes', () => {
    fc.assert(
      fc.property(validBatch, batch => {
        expect(checkScan(ReceiptBatch.encode(batch))).to.equal(true)
      }),
      { numRuns: 3_000 }
    )
  })

  it('on anything protons encodes, answers as protons or steps aside', () => {
    fc.assert(
      fc.property(anyBatch, batch => {
        checkScan(ReceiptBatch.encode(batch))
      }),
      { numRuns: 3_000 }
    )
  })

  it('on mutated encodings and random bytes, answers as protons or steps aside', () => {
    fc.assert(
      fc.property(fc.oneof(validBatch, anyBatch), fc.array(mutation, { minLength: 1, maxLength: 3 }), (batch, mutations) => {
        checkScan(mutate(ReceiptBatch.encode(batch), mutations))
      }),
      { numRuns: 10_000 }
    )
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), bytes => {
        checkScan(bytes)
      }),
      { numRuns: 5_000 }
    )
  })

  it('every truncation and bit flip of a valid batch is handled like protons', () => {
    for (const batch of fc.sample(validBatch, { numRuns: 4, seed: 7 })) {
      const bytes = ReceiptBatch.encode(batch)
      for (let at = 0; at < bytes.length; at++) {
        checkScan(bytes.subarray(0, at))
        checkDecodeAgrees(bytes.subarray(0, at))
        for (let bit = 0; bit < 8; bit++) {
          const flipped = Uint8Array.from(bytes)
          flipped[at] ^= 1 << bit
          checkScan(flipped)
          checkDecodeAgrees(flipped)
        }
      }
    }
  })

  it('steps aside for encodings protons accepts but never writes', () => {
    const [batch] = fc.sample(validBatch, { numRuns: 1, seed: 3 })
    const canonical = ReceiptBatch.encode(batch!)
    const r = Receipt.encode(batch!.receipts[0]!)
    const wrap = (receipt: Uint8Array): Uint8Array => Uint8Array.from([0x1a, receipt.length, ...receipt]) // one receipt (field 3), short enough for a 1-byte length
    expect(scanReceiptBatch(canonical, MAX)).to.not.equal(undefined)
    // an unknown field, an explicit zero, fields out of order, a non-minimal varint, a non-ASCII string byte
    const cases = [
      Uint8Array.from([...canonical, 0x78, 0x01]),
      wrap(Uint8Array.from([...r, 0x30, 0x00])),
      wrap(Uint8Array.from([...r.subarray(18), ...r.subarray(0, 18)])),
      Uint8Array.from([0x10, 0x81, 0x00]),
      Uint8Array.from([0x0a, 0x01, 0xc3])
    ]
    for (const input of cases) {
      expect(scanReceiptBatch(input, MAX)).to.equal(undefined)
      checkDecodeAgrees(input)
    }
  })

  it('leaves the receipt count limit to protons', () => {
    const [receipt] = fc.sample(validReceipt, { numRuns: 1, seed: 5 })
    const batch = {
      distributorPeerId: receipt!.distributorPeerId,
      blockHeight: 1,
      receipts: [receipt!, receipt!, receipt!],
      timestampMs: 1
    }
    const bytes = ReceiptBatch.encode(batch)
    expect(scanReceiptBatch(bytes, 2)).to.equal(undefined)
    expect(scanReceiptBatch(bytes, 3)).to.not.equal(undefined)
  })

  it('decodeReceiptBatch agrees with ReceiptBatchCodec.decode on valid, mutated and oversized inputs', () => {
    fc.assert(
      fc.property(validBatch, fc.array(mutation, { maxLength: 2 }), (batch, mutations) => {
        checkDecodeAgrees(mutate(ReceiptBatch.encode(batch), mutations))
      }),
      { numRuns: 5_000 }
    )
    const [batch] = fc.sample(validBatch, { numRuns: 1, seed: 9 })
    const decoded = decodeReceiptBatch(ReceiptBatchCodec.encode(batch!))
    expect(decoded.encodings).to.have.length(batch!.receipts.length)
    const oversized = new Uint8Array(ReceiptBatchCodec.maxBytes + 1)
    expect(() => decodeReceiptBatch(oversized)).to.throw(MessageTooLargeError)
  })
})
