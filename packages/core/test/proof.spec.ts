import { expect } from 'chai'
import fc from 'fast-check'
import { randomBytes } from '../src/crypto.js'
import { InvalidMessageError } from '../src/errors.js'
import {
  decodeProofSegment,
  encodeProofSegment,
  PROOF_GROUP_TOKENS,
  ProofError,
  type ProofSegment,
  ProofVerifier,
  ProofWriter,
  quantiseLogprob,
  type TokenLogprob
} from '../src/proof.js'

const MODEL = 'a'.repeat(64)

/** A plausible greedy generation: each chosen token is the top-1. */
function tokens(n: number, seed = 1): TokenLogprob[] {
  let s = seed
  const next = () => {
    s = (s * 1103515245 + 12345) % 2 ** 31
    return s / 2 ** 31
  }
  return Array.from({ length: n }, () => {
    const token = Math.floor(next() * 900) + 3
    const logprob = -next() * 2
    const other = (token + 1 + Math.floor(next() * 10)) % 900
    return {
      token,
      logprob,
      top: [
        { token, logprob },
        { token: other, logprob: logprob - 0.5 - next() }
      ]
    }
  })
}

/** Splits a generation into chunks as the supplier streams it and returns the segments with their token ids. */
function stream(
  nonce: Uint8Array,
  taskId: Uint8Array,
  model: string,
  all: TokenLogprob[],
  sizes: number[],
  /** Tokens after the sized chunks that ride in the finishing segment (finishWith). */
  finalTokens = 0
): Array<{ segment: ProofSegment; ids: number[] }> {
  const writer = new ProofWriter(nonce, taskId, model)
  const out: Array<{ segment: ProofSegment; ids: number[] }> = []
  let i = 0
  for (const size of sizes) {
    const part = all.slice(i, i + size)
    i += size
    out.push({ segment: decodeProofSegment(encodeProofSegment(writer.segment(part))), ids: part.map(t => t.token) })
  }
  const last = all.slice(i, i + finalTokens)
  const final = finalTokens === 0 ? writer.finish() : writer.finishWith(last)
  out.push({ segment: decodeProofSegment(encodeProofSegment(final)), ids: last.map(t => t.token) })
  return out
}

function verify(
  nonce: Uint8Array,
  taskId: Uint8Array,
  model: string,
  parts: Array<{ segment: ProofSegment; ids: number[] }>,
  count: number
) {
  const v = new ProofVerifier(nonce, taskId, model, { greedy: true })
  for (const p of parts) v.add(p.segment, p.ids)
  return v.finish(count)
}

describe('proof of inference: commitments', () => {
  const nonce = randomBytes(32)
  const taskId = randomBytes(16)
  const gen = tokens(40)
  const sizes = [1, 3, 12, 1, 16, 7]

  it('an honest proof verifies, whatever the chunking', () => {
    expect(verify(nonce, taskId, MODEL, stream(nonce, taskId, MODEL, gen, sizes), 40)).to.have.length(40)
    expect(verify(nonce, taskId, MODEL, stream(nonce, taskId, MODEL, gen, [40]), 40)).to.have.length(40)
    expect(verify(nonce, taskId, MODEL, stream(nonce, taskId, MODEL, [], []), 0)).to.have.length(0)
  })

  it('verifies when the last tokens ride in the finishing segment (finishWith), and not with a token dropped from it', () => {
    for (const [head, tail] of [
      [[1, 3, 12], 24],
      [[], 40],
      [[1, 8], 31]
    ] as Array<[number[], number]>) {
      const parts = stream(nonce, taskId, MODEL, gen, head, tail)
      expect(verify(nonce, taskId, MODEL, parts, 40)).to.have.length(40)
      const final = parts.at(-1)!
      const dropped = { segment: { ...final.segment, records: final.segment.records.slice(0, -1) }, ids: final.ids.slice(0, -1) }
      expect(() => verify(nonce, taskId, MODEL, [...parts.slice(0, -1), dropped], 39)).to.throw(ProofError)
    }
  })

  it('is bound to the nonce, the task id and the model id (no replay)', () => {
    const parts = stream(nonce, taskId, MODEL, gen, sizes)
    expect(() => verify(randomBytes(32), taskId, MODEL, parts, 40)).to.throw(ProofError)
    expect(() => verify(nonce, randomBytes(16), MODEL, parts, 40)).to.throw(ProofError)
    expect(() => verify(nonce, taskId, 'b'.repeat(64), parts, 40)).to.throw(ProofError)
  })

  it('fails when a streamed token differs from the committed one, or a record was altered', () => {
    const parts = stream(nonce, taskId, MODEL, gen, sizes)
    const badIds = parts.map(p => ({ ...p, ids: [...p.ids] }))
    badIds[2]!.ids[4] = badIds[2]!.ids[4]! + 1
    expect(() => verify(nonce, taskId, MODEL, badIds, 40)).to.throw(ProofError, /streamed id/)
    // Change a token and its records consistently without the key: codes break.
    const forged = stream(nonce, taskId, MODEL, gen, sizes)
    const rec = forged[4]!.segment.records[0]!
    rec.token += 1
    rec.top[0]!.token = rec.token
    forged[4]!.ids[0] = rec.token
    expect(() => verify(nonce, taskId, MODEL, forged, 40)).to.throw(ProofError, /code/)
  })

  it('fails when the output is truncated, extended or the count is wrong', () => {
    const parts = stream(nonce, taskId, MODEL, gen, sizes)
    expect(() => verify(nonce, taskId, MODEL, parts.slice(0, -1), 40)).to.throw(ProofError, /final/)
    expect(() => verify(nonce, taskId, MODEL, [...parts.slice(0, 3), parts.at(-1)!], 16)).to.throw(ProofError)
    expect(() => verify(nonce, taskId, MODEL, parts, 39)).to.throw(ProofError, /usage/)
    expect(() => verify(nonce, taskId, MODEL, [...parts, parts.at(-1)!], 40)).to.throw(ProofError, /after its final/)
  })

  it('rejects implausible records even with valid codes', () => {
    const bad = tokens(3)
    bad[1] = { ...bad[1]!, top: [{ token: bad[1]!.token + 1, logprob: bad[1]!.logprob + 1 }, bad[1]!.top[0]!] }
    expect(() => verify(nonce, taskId, MODEL, stream(nonce, taskId, MODEL, bad, [3]), 3)).to.throw(ProofError, /greedy|more likely/)
  })

  it('emits a code after the first token, then one per group, and costs under 16 bytes per token', () => {
    const writer = new ProofWriter(nonce, taskId, MODEL)
    expect(writer.segment(tokens(1)).codes).to.have.length(1)
    const seg = writer.segment(tokens(PROOF_GROUP_TOKENS * 4 - 1))
    expect(seg.codes).to.have.length(3)
    const bytesPerToken = encodeProofSegment(seg).length / (PROOF_GROUP_TOKENS * 4)
    expect(bytesPerToken).to.be.below(16)
  })

  it('quantises to 1/256 nat and clamps', () => {
    expect(quantiseLogprob(-1)).to.equal(-256)
    expect(quantiseLogprob(-1000)).to.equal(-64 * 256)
    expect(quantiseLogprob(0.1)).to.equal(0)
  })

  it('decoding rejects every malformed segment with InvalidMessageError and nothing else (10,000 inputs)', () => {
    const valid = encodeProofSegment(new ProofWriter(nonce, taskId, MODEL).segment(tokens(20)))
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.tuple(fc.nat(valid.length - 1), fc.nat(7)).map(([i, bit]) => {
            const b = valid.slice()
            b[i]! ^= 1 << bit
            return b
          }),
          fc.nat(valid.length - 1).map(n => valid.slice(0, n))
        ),
        bytes => {
          try {
            const seg = decodeProofSegment(bytes)
            // whatever decodes re-encodes to the same bytes (canonical)
            expect(encodeProofSegment(seg)).to.deep.equal(bytes)
          } catch (err) {
            if (!(err instanceof InvalidMessageError)) throw err
          }
        }
      ),
      { numRuns: 10_000 }
    )
  })
})
