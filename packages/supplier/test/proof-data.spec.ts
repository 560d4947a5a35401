import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AbortedError, type GenerationParams, type InferenceInput, silentLogger, type TokenLogprob } from '@gcn/core'
import { expect } from 'chai'
import { InvalidInputError, PromptTooLongError } from '../src/errors.js'
import { writeGguf } from '../src/gguf-writer.js'
import { compareLogprobs, DEFAULT_PROOF_TOP_K, RESCORE_TOLERANCE, rescore, tokenLogprobFrom } from '../src/rescore.js'
import {
  createModelRuntime,
  type GenerationChunk,
  type GenerationTokenChunk,
  type ModelRuntime,
  type ModelRuntimeInit
} from '../src/runtime.js'
import { rejection } from './helpers.js'

interface Generated {
  chunks: GenerationTokenChunk[]
  ids: number[]
  text: string
  logprobs: TokenLogprob[]
}

async function generate(runtime: ModelRuntime, input: InferenceInput, params: GenerationParams): Promise<Generated> {
  const chunks: GenerationTokenChunk[] = []
  for await (const chunk of runtime.generate(input, params) as AsyncIterable<GenerationChunk>) {
    if (chunk.type === 'token') chunks.push(chunk)
  }
  return {
    chunks,
    ids: chunks.flatMap(c => c.tokenIds),
    text: chunks.map(c => c.text).join(''),
    logprobs: chunks.flatMap(c => c.logprobs ?? [])
  }
}

const KING: InferenceInput = { kind: 'prompt', prompt: 'The king said' }
const CHAT: InferenceInput = {
  kind: 'chat',
  messages: [
    { role: 'system', content: 'You are the village blacksmith.' },
    { role: 'user', content: 'Hello! Can you make me a sword?' }
  ]
}
const greedy = (maxTokens: number): GenerationParams => ({ maxTokens, temperature: 0 })
const sampled = (maxTokens: number, seed: number): GenerationParams => ({ maxTokens, temperature: 0.9, topP: 0.95, seed })
const EPSILON = 1e-9

/** Polls (no fixed sleeps) until `predicate` holds. */
async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const startedAt = performance.now()
  while (!predicate()) {
    if (performance.now() - startedAt > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`)
    await new Promise(resolve => setImmediate(resolve))
  }
}

describe('proof-of-inference data (tiny model, CPU, 1 thread)', () => {
  let dir: string
  let modelPath: string
  let otherModelPath: string
  let runtime: ModelRuntime
  const extra: ModelRuntime[] = []

  const started = async (init: Partial<ModelRuntimeInit>, path = modelPath): Promise<ModelRuntime> => {
    const r = createModelRuntime({ modelPath: path, threads: 1, ...init }, { logger: silentLogger })
    extra.push(r)
    await r.start()
    return r
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gcn-proof-'))
    modelPath = join(dir, 'tiny.gguf')
    otherModelPath = join(dir, 'tiny-other.gguf')
    await writeGguf(modelPath, { preset: 'tiny', seed: 1 })
    await writeGguf(otherModelPath, { preset: 'tiny', seed: 2 })
    runtime = createModelRuntime({ modelPath, slots: 2, threads: 1 }, { logger: silentLogger })
    await runtime.start()
  })

  after(async () => {
    await runtime?.stop()
    await Promise.all(extra.map(r => r.stop()))
    await rm(dir, { recursive: true, force: true })
  })

  it('records a logprob for every emitted token: sorted top-K, chosen ≤ top-1, all ≤ 0', async () => {
    for (const [input, params] of [
      [KING, greedy(64)],
      [CHAT, greedy(64)],
      [KING, sampled(64, 3)],
      [CHAT, sampled(64, 4)]
    ] as const) {
      const out = await generate(runtime, input, params)
      expect(out.ids.length).to.be.greaterThan(8)
      for (const chunk of out.chunks) {
        expect(chunk.logprobs, 'one entry per token id').to.have.length(chunk.tokenIds.length)
        expect(chunk.logprobs!.map(lp => lp.token)).to.deep.equal(chunk.tokenIds)
      }
      for (const lp of out.logprobs) {
        expect(lp.top).to.have.length(DEFAULT_PROOF_TOP_K)
        expect(Number.isFinite(lp.logprob)).to.equal(true)
        expect(lp.logprob).to.be.at.most(0)
        expect(lp.logprob).to.be.at.most(lp.top[0]!.logprob + EPSILON)
        for (let i = 1; i < lp.top.length; i++) expect(lp.top[i]!.logprob).to.be.at.most(lp.top[i - 1]!.logprob)
        for (const alt of lp.top) expect(alt.logprob).to.be.at.most(0)
        expect(lp.top.reduce((sum, alt) => sum + Math.exp(alt.logprob), 0)).to.be.at.most(1 + 1e-6)
        const same = lp.top.find(alt => alt.token === lp.token)
        if (same !== undefined) expect(same.logprob).to.equal(lp.logprob)
      }
    }
  })

  it('greedy: the chosen token is the top-1 token', async () => {
    const out = await generate(runtime, KING, greedy(96))
    for (const lp of out.logprobs) {
      expect(lp.top[0]!.token).to.equal(lp.token)
      expect(lp.top[0]!.logprob).to.equal(lp.logprob)
    }
  })

  it('sampled: logprobs are raw, independent of the temperature', async () => {
    // Same seed and a different temperature sample other tokens; at position 0 the context is the
    // same prompt, so the raw distribution there must be identical whatever the sampler.
    const hot = await generate(runtime, KING, { maxTokens: 4, temperature: 1.5, topP: 0.5, seed: 9 })
    const cold = await generate(runtime, KING, greedy(4))
    expect(hot.logprobs[0]!.top).to.deep.equal(cold.logprobs[0]!.top)
    const rescored = await runtime.rescore(runtime.tokenizeInput(KING), hot.ids)
    expect(compareLogprobs(hot.logprobs, rescored).ok).to.equal(true)
  })

  it('records the raw logprobs under a JSON schema too (grammar not applied to them)', async () => {
    const schema = JSON.stringify({ type: 'object', properties: { ok: { type: 'boolean' } } })
    const out = await generate(runtime, KING, { maxTokens: 24, temperature: 0, jsonSchema: schema })
    expect(out.logprobs).to.have.length(out.ids.length)
    const rescored = await runtime.rescore(runtime.tokenizeInput(KING), out.ids)
    const comparison = compareLogprobs(out.logprobs, rescored)
    expect(comparison.ok, JSON.stringify(comparison.mismatches)).to.equal(true)
  })

  it('records the true top-K in every recording path (greedy, sampled, top-p nucleus < K, grammar) for K = 0, 1, 4', async () => {
    const schema = JSON.stringify({ type: 'object', properties: { ok: { type: 'boolean' } } })
    for (const topK of [0, 1, 4]) {
      const r = await started({ slots: 1, proofTopK: topK })
      for (const [input, params] of [
        [KING, greedy(32)],
        [KING, sampled(32, 41)],
        // top-p this low keeps one candidate: the top-K sampler supplies the alternatives.
        [CHAT, { maxTokens: 32, temperature: 0.9, topP: 0.01, seed: 42 }],
        [KING, { maxTokens: 24, temperature: 0.8, seed: 43, jsonSchema: schema }]
      ] as const) {
        const out = await generate(r, input, params)
        expect(out.logprobs).to.have.length(out.ids.length)
        for (const lp of out.logprobs) expect(lp.top).to.have.length(topK)
        const rescored = await r.rescore(r.tokenizeInput(input), out.ids, { topK })
        const comparison = compareLogprobs(out.logprobs, rescored)
        expect(comparison.ok, `K ${topK} ${JSON.stringify(params)}: ${JSON.stringify(comparison.mismatches.slice(0, 2))}`).to.equal(true)
      }
    }
  })

  it('re-scoring an honest generation agrees within the calibrated tolerance at every position', async () => {
    for (const [input, params] of [
      [KING, greedy(96)],
      [CHAT, greedy(96)],
      [KING, sampled(96, 11)],
      [CHAT, sampled(96, 12)]
    ] as const) {
      const out = await generate(runtime, input, params)
      const rescored = await rescore(runtime, runtime.tokenizeInput(input), out.ids)
      expect(rescored).to.have.length(out.ids.length)
      const comparison = compareLogprobs(out.logprobs, rescored, RESCORE_TOLERANCE)
      expect(comparison.ok, JSON.stringify(comparison.mismatches.slice(0, 3))).to.equal(true)
      expect(comparison.maxDelta).to.be.below(RESCORE_TOLERANCE)
    }
  })

  it('re-scores only the requested positions, with the requested K', async () => {
    const out = await generate(runtime, KING, greedy(40))
    const prompt = runtime.tokenizeInput(KING)
    const all = await runtime.rescore(prompt, out.ids)
    const some = await runtime.rescore(prompt, out.ids, { positions: [7, 0, 30], topK: 4 })
    expect(some.map(lp => lp.token)).to.deep.equal([out.ids[7], out.ids[0], out.ids[30]])
    for (const [j, position] of [7, 0, 30].entries()) {
      expect(some[j]!.top).to.have.length(4)
      expect(Math.abs(some[j]!.logprob - all[position]!.logprob)).to.be.below(RESCORE_TOLERANCE)
      expect(some[j]!.top.slice(0, 2).map(t => t.token)).to.deep.equal(all[position]!.top.map(t => t.token))
    }
    expect(await runtime.rescore(prompt, out.ids, { positions: [] })).to.deep.equal([])
    expect(await rejection(runtime.rescore(prompt, out.ids, { positions: [out.ids.length] }))).to.be.instanceOf(RangeError)
    expect(await rejection(runtime.rescore(prompt, out.ids, { topK: -1 }))).to.be.instanceOf(RangeError)
    expect(await rejection(runtime.rescore(prompt, [1_000_000]))).to.be.instanceOf(InvalidInputError)
    expect(await rejection(runtime.rescore([], out.ids))).to.be.instanceOf(InvalidInputError)
    expect(await rejection(runtime.rescore(prompt, out.ids, { signal: AbortSignal.abort() }))).to.be.instanceOf(AbortedError)
    expect(await rejection(runtime.rescore(prompt, new Array(600).fill(out.ids[0])))).to.be.instanceOf(PromptTooLongError)
    await until(() => runtime.stats().freeSlots === 2, 1000, 'both slots free again')
  })

  it('re-scoring an output with one token changed disagrees at that position', async () => {
    const out = await generate(runtime, KING, greedy(48))
    const prompt = runtime.tokenizeInput(KING)
    const at = 20
    const forged = out.ids.slice()
    forged[at] = out.logprobs[at]!.top[1]!.token // the runner-up: plausible, but not what greedy picks
    const rescored = await runtime.rescore(prompt, forged)
    // The forged token is not the top-1 at that position, as a greedy claim requires.
    expect(rescored[at]!.top[0]!.token).to.not.equal(forged[at])
    expect(rescored[at]!.logprob).to.be.below(rescored[at]!.top[0]!.logprob - RESCORE_TOLERANCE)
    // A forger who keeps the honest logprob for the new token is caught by its value.
    const claimed = out.logprobs.map((lp, i) => (i === at ? { ...lp, token: forged[at]! } : lp))
    const comparison = compareLogprobs(claimed, rescored)
    expect(comparison.ok).to.equal(false)
    expect(comparison.mismatches[0]!.index).to.equal(at)
    expect(Math.abs(rescored[at]!.logprob - out.logprobs[at]!.logprob)).to.be.above(RESCORE_TOLERANCE)
    // Positions before the change still agree.
    expect(compareLogprobs(out.logprobs.slice(0, at), rescored.slice(0, at)).ok).to.equal(true)
  })

  it('re-scoring with a model from another seed disagrees badly', async () => {
    const other = await started({ slots: 1 }, otherModelPath)
    const out = await generate(runtime, KING, greedy(48))
    const rescored = await other.rescore(runtime.tokenizeInput(KING), out.ids)
    const comparison = compareLogprobs(out.logprobs, rescored)
    expect(comparison.ok).to.equal(false)
    expect(comparison.maxDelta).to.be.above(1)
    const positionsOff = new Set(comparison.mismatches.map(m => m.index))
    expect(positionsOff.size).to.be.at.least(Math.floor(out.ids.length * 0.8))
  })

  it('with recording off: same ids and text, no logprobs', async () => {
    const off = await started({ slots: 1, recordLogprobs: false })
    for (const params of [greedy(64), sampled(64, 21)]) {
      const a = await generate(runtime, KING, params)
      const b = await generate(off, KING, params)
      expect(b.ids).to.deep.equal(a.ids)
      expect(b.text).to.equal(a.text)
      for (const chunk of b.chunks) expect(chunk.logprobs).to.equal(undefined)
    }
    // Re-scoring does not depend on recording.
    const out = await generate(off, CHAT, greedy(32))
    expect(await off.rescore(off.tokenizeInput(CHAT), out.ids)).to.have.length(out.ids.length)
  })

  it('samples exactly as sequence.evaluate() does (the public decoder gives the same ids)', async () => {
    const publicDecoder = await started({ slots: 1, forcePublicDecoder: true })
    const schema = JSON.stringify({ type: 'object', properties: { name: { type: 'string' } } })
    for (const [input, params] of [
      [KING, greedy(96)],
      [CHAT, greedy(96)],
      [KING, sampled(96, 5)],
      [CHAT, { maxTokens: 96, temperature: 0.7, topP: 0.8, seed: 6 }],
      [KING, { maxTokens: 32, temperature: 0.8, seed: 8, jsonSchema: schema }]
    ] as const) {
      const native = await generate(runtime, input, params)
      const reference = await generate(publicDecoder, input, params)
      expect(native.ids).to.deep.equal(reference.ids)
      expect(reference.logprobs).to.deep.equal([])
    }
  })

  it('re-scores the same through the internals and through the public controlledEvaluate', async () => {
    const publicRescorer = await started({ slots: 1, forcePublicDecoder: true })
    for (const [input, params] of [
      [KING, greedy(64)],
      [CHAT, sampled(64, 51)]
    ] as const) {
      const out = await generate(runtime, input, params)
      const prompt = runtime.tokenizeInput(input)
      const native = await runtime.rescore(prompt, out.ids, { topK: 3 })
      const viaPublic = await publicRescorer.rescore(prompt, out.ids, { topK: 3 })
      expect(native.map(lp => lp.top.map(t => t.token))).to.deep.equal(viaPublic.map(lp => lp.top.map(t => t.token)))
      // Same logits; only the float32 summation order of the total weight differs.
      expect(compareLogprobs(native, viaPublic, 1e-5).ok).to.equal(true)
    }
  })

  it('stays deterministic with recording on: greedy twice, and seeded twice, give identical ids and logprobs', async () => {
    for (const params of [greedy(64), sampled(64, 31)]) {
      const a = await generate(runtime, CHAT, params)
      const b = await generate(runtime, CHAT, params)
      expect(b.ids).to.deep.equal(a.ids)
      expect(b.logprobs).to.deep.equal(a.logprobs)
    }
  })

  it('re-scores on a free slot while another task generates, and frees it after', async () => {
    const prompt = runtime.tokenizeInput(KING)
    const honest = await generate(runtime, KING, greedy(48))
    const [busy, rescored] = await Promise.all([generate(runtime, CHAT, greedy(64)), runtime.rescore(prompt, honest.ids)])
    expect(busy.ids.length).to.be.greaterThan(0)
    // Batched with another sequence: not bitwise, but within the tolerance.
    expect(compareLogprobs(honest.logprobs, rescored).ok).to.equal(true)
    await until(() => runtime.stats().freeSlots === 2, 1000, 'both slots free again')
  })

  it('detokenizes ids to the streamed text', async () => {
    const out = await generate(runtime, CHAT, greedy(48))
    const prompt = runtime.tokenizeInput(CHAT)
    expect(runtime.detokenize(out.ids, prompt)).to.equal(out.text)
    expect(runtime.detokenize([])).to.equal('')
    expect(() => runtime.detokenize([-1])).to.throw(InvalidInputError)
  })

  it('builds records from llama.cpp logits: logprob = logit − max − ln(total weight)', () => {
    // Three tokens with logits 2, 1, 0: total weight 1 + e^-1 + e^-2.
    const weight = 1 + Math.exp(-1) + Math.exp(-2)
    const lp = tokenLogprobFrom(7, [5, 2, 6, 1, 7, 0], weight, 2)
    const logZ = 2 + Math.log(weight)
    expect(lp.token).to.equal(7)
    expect(lp.logprob).to.be.closeTo(0 - logZ, 1e-12)
    expect(lp.top).to.deep.equal([
      { token: 5, logprob: 2 - logZ },
      { token: 6, logprob: 1 - logZ }
    ])
    // Ties sort by token id, lowest first (as greedy picks).
    expect(
      tokenLogprobFrom(
        3,
        new Map([
          [9, 1],
          [3, 1]
        ]),
        2,
        2
      ).top.map(t => t.token)
    ).to.deep.equal([3, 9])
    expect(() => tokenLogprobFrom(4, [5, 2], 1, 2)).to.throw(/missing/)
  })
})
