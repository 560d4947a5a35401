import { createHash } from 'node:crypto'
import { expect } from 'chai'
import fc from 'fast-check'
import { envelopeId, receiptCost, receiptHash } from '../src/billing.js'
import { Receipt } from '../src/pb/gcn.js'

/** The definition receiptHash must keep: sha256 of the protons encoding. */
const reference = (r: Receipt): string => createHash('sha256').update(Receipt.encode(r)).digest('hex')
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

const bytesOf = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }) as fc.Arbitrary<Uint8Array<ArrayBuffer>>
const edgeU32 = fc.oneof(
  fc.constantFrom(0, 1, 127, 128, 16_383, 16_384, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1),
  fc.integer({ min: 0, max: 2 ** 32 - 1 })
)
const edgeSafe = fc.oneof(fc.constantFrom(0, 1, 127, 128, 2 ** 31, 2 ** 32, 2 ** 35, Number.MAX_SAFE_INTEGER), fc.maxSafeNat())
const edgeU64 = fc.oneof(
  fc.constantFrom(0n, 1n, 127n, 128n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })
)
const ascii = (max: number) => fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map(c => String.fromCharCode(c)), maxLength: max })
const anyText = (max: number) => fc.string({ unit: 'binary', maxLength: max })

const receipt = (str: (max: number) => fc.Arbitrary<string>): fc.Arbitrary<Receipt> =>
  fc.record({
    taskId: bytesOf(0, 20),
    gameId: str(12),
    supplierPeerId: str(60),
    distributorPeerId: str(60),
    modelId: str(70),
    promptTokens: edgeU32,
    completionTokens: edgeU32,
    pricePer1kTokens: edgeU64,
    cost: edgeU64,
    blockHeight: edgeSafe,
    promptHash: bytesOf(0, 40),
    outputHash: bytesOf(0, 40),
    verdict: fc.constantFrom(...Object.values(Receipt.ProofVerdict).filter((v): v is Receipt.ProofVerdict => typeof v === 'string')),
    timestampMs: edgeSafe
  })

describe('billing', () => {
  describe('receiptHash', () => {
    it('is sha256 of Receipt.encode for receipts with ASCII strings (the fast path)', () => {
      fc.assert(
        fc.property(receipt(ascii), r => {
          expect(hex(receiptHash(r))).to.equal(reference(r))
        }),
        { numRuns: 5_000 }
      )
    })

    it('is sha256 of Receipt.encode for any strings (non-ASCII take protons)', () => {
      fc.assert(
        fc.property(receipt(anyText), r => {
          expect(hex(receiptHash(r))).to.equal(reference(r))
        }),
        { numRuns: 2_000 }
      )
    })

    it('matches Receipt.encode for a receipt larger than its scratch buffer, and after it', () => {
      const big: Receipt = {
        taskId: new Uint8Array(16).fill(7),
        gameId: 'g'.repeat(20_000),
        supplierPeerId: 's',
        distributorPeerId: 'd',
        modelId: 'm',
        promptTokens: 1,
        completionTokens: 2,
        pricePer1kTokens: 3n,
        cost: 1n,
        blockHeight: 4,
        promptHash: new Uint8Array(32),
        outputHash: new Uint8Array(32).fill(1),
        verdict: Receipt.ProofVerdict.VERIFIED,
        timestampMs: 5
      }
      expect(hex(receiptHash(big))).to.equal(reference(big))
      const small = { ...big, gameId: 'game-1' }
      expect(hex(receiptHash(small))).to.equal(reference(small))
    })

    it('throws like Receipt.encode for a cost outside uint64', () => {
      const r: Receipt = {
        taskId: new Uint8Array(16),
        gameId: 'g',
        supplierPeerId: 's',
        distributorPeerId: 'd',
        modelId: 'm',
        promptTokens: 1,
        completionTokens: 1,
        pricePer1kTokens: 1n,
        cost: 2n ** 64n,
        blockHeight: 1,
        promptHash: new Uint8Array(32),
        outputHash: new Uint8Array(32),
        verdict: Receipt.ProofVerdict.UNCHECKED,
        timestampMs: 1
      }
      expect(() => Receipt.encode(r)).to.throw(RangeError)
      expect(() => receiptHash(r)).to.throw(RangeError)
    })

    it('returns a fresh 32-byte array each time', () => {
      const [r] = fc.sample(receipt(ascii), { numRuns: 1, seed: 1 })
      const a = receiptHash(r!)
      const b = receiptHash(r!)
      expect(a).to.have.length(32)
      expect(a).to.not.equal(b)
      expect(hex(a)).to.equal(hex(b))
    })
  })

  it('envelopeId is sha256 of the encoded envelope', () => {
    const bytes = Uint8Array.from([1, 2, 3])
    expect(hex(envelopeId(bytes))).to.equal(createHash('sha256').update(bytes).digest('hex'))
  })

  it('receiptCost rounds up to a whole micro-unit', () => {
    expect(receiptCost(40, 24, 1000n)).to.equal(64n)
    expect(receiptCost(1, 0, 1n)).to.equal(1n)
    expect(receiptCost(0, 0, 5n)).to.equal(0n)
  })
})
