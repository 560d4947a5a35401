/**
 * Calibrates the proof-of-inference tolerance: how far a raw logprob recorded while generating
 * can drift from the same value re-scored in one prefill by a verifier.
 *
 *   node --import tsx --import @gcn/core/polyfill scripts/calibrate-proof.ts [options]
 *
 *   --small         also the small preset (85M parameters, F16; slower)
 *   --presets LIST  comma-separated presets instead (e.g. small)
 *   --runs N        generations per mode (greedy, sampled) and setting; default 12 (small: N/3)
 *   --tokens N      maxTokens per generation; default 96
 *   --bench         instead: recording overhead, tok/s with and without (threads 1, one slot)
 *   --bench-runs N  generations per variant in --bench; default 30 (small: N/5)
 *   --quick         threads 1, one slot only (thread count and batching never changed a value here)
 *
 * Generates the test models with writeGguf in a temp dir, runs generations (greedy and sampled)
 * under several settings (threads 1/2; one slot, or two slots with two tasks at once; flash
 * attention on/off; F16 or F32 KV cache), then re-scores each output with a separate runtime
 * (threads 1, one slot; each numerics variant) and prints the distribution of |Δ logprob| as
 * markdown: for the chosen token, and for the top-K order statistics (i-th best logprob).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import {
  encodeProofSegment,
  type GenerationParams,
  type InferenceInput,
  LOGPROB_SCALE,
  PROOF_TOP_K,
  silentLogger,
  type TokenLogprob,
  toRecord
} from '@gcn/core'
import { type ModelPresetName, writeGguf } from '../packages/supplier/src/gguf-writer.js'
import { compareLogprobs, QUANTISED_RESCORE_TOLERANCE, RESCORE_TOLERANCE } from '../packages/supplier/src/rescore.js'
import { createModelRuntime, type GenerationChunk, type ModelRuntime, type ModelRuntimeInit } from '../packages/supplier/src/runtime.js'

const { values: args } = parseArgs({
  options: {
    small: { type: 'boolean', default: false },
    runs: { type: 'string', default: '12' },
    tokens: { type: 'string', default: '96' },
    bench: { type: 'boolean', default: false },
    'bench-runs': { type: 'string', default: '30' },
    quick: { type: 'boolean', default: false },
    presets: { type: 'string' }
  }
})
const RUNS = Number(args.runs)
const MAX_TOKENS = Number(args.tokens)
const BENCH_RUNS = Number(args['bench-runs'])

const PROMPTS: InferenceInput[] = [
  { kind: 'prompt', prompt: 'The king said' },
  { kind: 'prompt', prompt: 'Once upon a time, in a village by the sea, there lived' },
  { kind: 'prompt', prompt: 'The dragon attacks the castle and the knight' },
  { kind: 'chat', messages: [{ role: 'user', content: 'Hello! Can you make me a sword?' }] },
  {
    kind: 'chat',
    messages: [
      { role: 'system', content: 'You are the village blacksmith.' },
      { role: 'user', content: 'What do you sell, and how much for a shield?' }
    ]
  }
]

interface Generated {
  input: InferenceInput
  ids: number[]
  logprobs: TokenLogprob[]
}

async function generate(runtime: ModelRuntime, input: InferenceInput, params: GenerationParams): Promise<Generated> {
  const ids: number[] = []
  const logprobs: TokenLogprob[] = []
  for await (const chunk of runtime.generate(input, params) as AsyncIterable<GenerationChunk>) {
    if (chunk.type !== 'token') continue
    ids.push(...chunk.tokenIds)
    if (chunk.logprobs === undefined) throw new Error('no logprobs recorded')
    logprobs.push(...chunk.logprobs)
  }
  return { input, ids, logprobs }
}

function paramsFor(run: number, sampled: boolean): GenerationParams {
  return sampled ? { maxTokens: MAX_TOKENS, temperature: 0.8, topP: 0.95, seed: 1000 + run } : { maxTokens: MAX_TOKENS, temperature: 0 }
}

interface Numerics {
  flashAttention: boolean
  kvCacheType: 'f16' | 'f32'
}

interface Setting extends Numerics {
  threads: number
  slots: number
}

const NUMERICS: Numerics[] = [
  { flashAttention: true, kvCacheType: 'f16' },
  { flashAttention: false, kvCacheType: 'f16' },
  { flashAttention: false, kvCacheType: 'f32' }
]
const numericsLabel = (n: Numerics): string => `FA ${n.flashAttention ? 'on' : 'off'}${n.kvCacheType === 'f32' ? ', KV F32' : ''}`

/** Every numerics variant at threads 1/2 × one slot / two slots busy (quick: threads 1, one slot). */
const settings = (quick: boolean): Setting[] =>
  (quick ? [1] : [1, 2]).flatMap(threads => (quick ? [1] : [1, 2]).flatMap(slots => NUMERICS.map(n => ({ threads, slots, ...n }))))

async function withRuntime<T>(init: ModelRuntimeInit, body: (runtime: ModelRuntime) => Promise<T>): Promise<T> {
  const runtime = createModelRuntime(init, { logger: silentLogger })
  await runtime.start()
  try {
    return await body(runtime)
  } finally {
    await runtime.stop()
  }
}

/** Generations under one setting: with two slots, tasks run two at a time (batched together). */
async function generateAll(modelPath: string, setting: Setting, runs: number): Promise<Generated[]> {
  return withRuntime(
    { modelPath, threads: setting.threads, slots: setting.slots, flashAttention: setting.flashAttention, kvCacheType: setting.kvCacheType },
    async runtime => {
      const jobs: Array<() => Promise<Generated>> = []
      for (let run = 0; run < runs; run++) {
        for (const sampled of [false, true]) jobs.push(() => generate(runtime, PROMPTS[run % PROMPTS.length]!, paramsFor(run, sampled)))
      }
      const out: Generated[] = []
      for (let i = 0; i < jobs.length; i += setting.slots)
        out.push(...(await Promise.all(jobs.slice(i, i + setting.slots).map(job => job()))))
      return out
    }
  )
}

interface Deltas {
  chosen: number[]
  top: number[]
  positions: number
  top1Differs: number
  topSetDiffers: number
}

function compare(generated: Generated[], rescored: TokenLogprob[][], into: Deltas): void {
  for (const [g, gen] of generated.entries()) {
    const ref = rescored[g]!
    for (const [i, a] of gen.logprobs.entries()) {
      const b = ref[i]!
      if (a.token !== b.token) throw new Error('re-scored a different token')
      into.positions++
      into.chosen.push(Math.abs(a.logprob - b.logprob))
      for (let k = 0; k < Math.min(a.top.length, b.top.length); k++) into.top.push(Math.abs(a.top[k]!.logprob - b.top[k]!.logprob))
      if (a.top[0]?.token !== b.top[0]?.token) into.top1Differs++
      const ids = (t: TokenLogprob): string =>
        t.top
          .map(x => x.token)
          .sort((x, y) => x - y)
          .join(',')
      if (ids(a) !== ids(b)) into.topSetDiffers++
    }
  }
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

const fmt = (x: number): string => (x === 0 ? '0' : x.toExponential(1))

function row(label: string, d: Deltas): string {
  const c = d.chosen.slice().sort((x, y) => x - y)
  const t = d.top.slice().sort((x, y) => x - y)
  return `| ${label} | ${d.positions} | ${fmt(c.at(-1) ?? Number.NaN)} | ${fmt(quantile(c, 0.99))} | ${fmt(quantile(c, 0.999))} | ${fmt(t.at(-1) ?? Number.NaN)} | ${fmt(quantile(t, 0.99))} | ${fmt(quantile(t, 0.999))} | ${d.top1Differs} | ${d.topSetDiffers} |`
}

const HEADER =
  '| generation → re-score (threads 1, one slot) | positions | chosen max | chosen p99 | chosen p999 | top-K max | top-K p99 | top-K p999 | top-1 id differs | top-K set differs |'

const emptyDeltas = (): Deltas => ({ chosen: [], top: [], positions: 0, top1Differs: 0, topSetDiffers: 0 })

/** Wire size of the records (core's proof segment encoding, quantised to 1/256 nat, K = PROOF_TOP_K). */
function recordBytes(generated: Generated[]): { perToken: number; chosenInTop: number } {
  let bytes = 0
  let tokens = 0
  let chosenInTop = 0
  for (const g of generated) {
    const records = g.logprobs.map(lp => toRecord(lp, PROOF_TOP_K))
    // Minus the segment's own framing (version, count, code count, final flag).
    bytes +=
      encodeProofSegment({ records, codes: [], final: false }).length - encodeProofSegment({ records: [], codes: [], final: false }).length
    tokens += records.length
    chosenInTop += g.logprobs.filter(lp => lp.top.some(alt => alt.token === lp.token)).length
  }
  return { perToken: bytes / tokens, chosenInTop: chosenInTop / tokens }
}

/** The same outputs re-scored by a model from another seed: how far a wrong model lands. */
async function wrongModel(otherPath: string, generated: Generated[]): Promise<void> {
  const deltas: number[] = []
  let flagged = 0
  let positions = 0
  await withRuntime({ modelPath: otherPath, threads: 1, slots: 1 }, async other => {
    for (const g of generated) {
      const rescored = await other.rescore(other.tokenizeInput(g.input), g.ids)
      for (const [i, lp] of g.logprobs.entries()) deltas.push(Math.abs(lp.logprob - rescored[i]!.logprob))
      const comparison = compareLogprobs(g.logprobs, rescored)
      flagged += new Set(comparison.mismatches.map(m => m.index)).size
      positions += g.logprobs.length
    }
  })
  const d = sorted(deltas)
  console.log(
    `\nWrong model (same preset, seed 2) re-scoring ${positions} positions: chosen |Δ| p1 ${fmt(quantile(d, 0.01))}, ` +
      `p10 ${fmt(quantile(d, 0.1))}, median ${fmt(quantile(d, 0.5))}; positions outside RESCORE_TOLERANCE: ${((flagged / positions) * 100).toFixed(1)} %`
  )
}

async function calibrate(preset: ModelPresetName, modelPath: string, otherPath: string, runs: number): Promise<number> {
  console.log(`\n### ${preset} model: ${runs} greedy + ${runs} sampled generations per setting, maxTokens ${MAX_TOKENS}\n`)
  console.log(HEADER)
  console.log('|---|---|---|---|---|---|---|---|---|---|')
  const all = emptyDeltas()
  const byNumerics = new Map<string, Deltas>()
  for (const setting of settings(args.quick)) {
    const generated = await generateAll(modelPath, setting, runs)
    for (const ref of NUMERICS) {
      const rescored = await withRuntime({ modelPath, threads: 1, slots: 1, ...ref }, async reference => {
        const out: TokenLogprob[][] = []
        for (const g of generated) out.push(await reference.rescore(reference.tokenizeInput(g.input), g.ids))
        return out
      })
      const d = emptyDeltas()
      compare(generated, rescored, d)
      compare(generated, rescored, all)
      const pair = `${numericsLabel(setting)} → ${numericsLabel(ref)}`
      if (!byNumerics.has(pair)) byNumerics.set(pair, emptyDeltas())
      compare(generated, rescored, byNumerics.get(pair)!)
      console.log(row(`threads ${setting.threads}, ${setting.slots === 1 ? '1 slot' : '2 slots busy'}, ${pair}`, d))
    }
  }
  console.log(row('**all**', all))
  console.log('\nBy numerics (generation → re-score), thread/slot settings pooled:\n')
  console.log(HEADER.replace('generation → re-score (threads 1, one slot)', 'numerics'))
  console.log('|---|---|---|---|---|---|---|---|---|---|')
  for (const [pair, d] of byNumerics) console.log(row(pair, d))
  const sample = await generateAll(modelPath, { threads: 1, slots: 1, flashAttention: true, kvCacheType: 'f16' }, runs)
  await wrongModel(otherPath, sample)
  const size = recordBytes(sample)
  console.log(
    `Record size at 1/${LOGPROB_SCALE} nat, K = ${PROOF_TOP_K}: ${size.perToken.toFixed(2)} bytes/token (chosen token among the top-K: ${(size.chosenInTop * 100).toFixed(0)} %)`
  )
  return all.chosen.concat(all.top).reduce((a, b) => Math.max(a, b), 0)
}

// ---------------------------------------------------------------------------------------------
// --bench: recording overhead

interface Speed {
  tokens: number
  ms: number
}

/** Decode speed of one generation: tokens after the first / time since the first (as the runtime's EWMA). */
async function timed(runtime: ModelRuntime, input: InferenceInput, params: GenerationParams): Promise<Speed> {
  let first = 0
  let last = 0
  let tokens = 0
  for await (const chunk of runtime.generate(input, params) as AsyncIterable<GenerationChunk>) {
    if (chunk.type !== 'token') continue
    last = performance.now()
    if (tokens === 0) first = last
    tokens += chunk.tokenIds.length
  }
  return { tokens: tokens - 1, ms: last - first }
}

const sorted = (xs: number[]): number[] => xs.slice().sort((a, b) => a - b)

const median = (xs: number[]): number => {
  const s = xs.slice().sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

async function bench(preset: ModelPresetName, modelPath: string, runs: number): Promise<void> {
  const variants: Array<{ label: string; init: Partial<ModelRuntimeInit> }> = [
    { label: 'recording on', init: { recordLogprobs: true } },
    { label: 'recording off', init: { recordLogprobs: false } },
    { label: 'public evaluate() (previous loop)', init: { forcePublicDecoder: true } },
    { label: 'recording on, flash attention off', init: { recordLogprobs: true, flashAttention: false } }
  ]
  const maxTokens = preset === 'tiny' ? 400 : 160
  const input: InferenceInput = { kind: 'prompt', prompt: 'The king said' }
  const runtimes = await Promise.all(
    variants.map(async v => {
      const runtime = createModelRuntime({ modelPath, threads: 1, slots: 1, ...v.init }, { logger: silentLogger })
      await runtime.start()
      return runtime
    })
  )
  try {
    for (const mode of ['greedy', 'sampled'] as const) {
      const params: GenerationParams =
        mode === 'greedy' ? { maxTokens, temperature: 0 } : { maxTokens, temperature: 0.8, topP: 0.95, seed: 7 }
      const rates: number[][] = variants.map(() => [])
      const totals: Speed[] = variants.map(() => ({ tokens: 0, ms: 0 }))
      await timed(runtimes[0]!, input, params) // warm-up
      for (let run = 0; run < runs; run++) {
        // Interleaved, in a rotating order, so drift in machine load hits every variant alike.
        for (let j = 0; j < variants.length; j++) {
          const v = (run + j) % variants.length
          const speed = await timed(runtimes[v]!, input, { ...params, ...(mode === 'sampled' ? { seed: 7 + run } : {}) })
          rates[v]!.push((speed.tokens * 1000) / speed.ms)
          totals[v]!.tokens += speed.tokens
          totals[v]!.ms += speed.ms
        }
      }
      for (const [v, variant] of variants.entries()) {
        const overall = (totals[v]!.tokens * 1000) / totals[v]!.ms
        // Paired: each round's rate over the same round's recording-off rate.
        const ratios = rates[v]!.map((rate, run) => rate / rates[1]![run]! - 1)
        const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`
        const vsOff =
          v === 1 ? '—' : `${pct(median(ratios))} (${pct(quantile(sorted(ratios), 0.25))} … ${pct(quantile(sorted(ratios), 0.75))})`
        console.log(`| ${preset} | ${mode} | ${variant.label} | ${median(rates[v]!).toFixed(0)} | ${overall.toFixed(0)} | ${vsOff} |`)
      }
    }
  } finally {
    await Promise.all(runtimes.map(r => r.stop()))
  }
}

const dir = await mkdtemp(join(tmpdir(), 'gcn-calibrate-'))
try {
  const presets = (args.presets?.split(',') ?? (args.small ? ['tiny', 'small'] : ['tiny'])) as ModelPresetName[]
  const paths = new Map<ModelPresetName, string>()
  for (const preset of presets) {
    const path = join(dir, `${preset}.gguf`)
    await writeGguf(path, { preset, seed: 1 })
    paths.set(preset, path)
    if (!args.bench) await writeGguf(join(dir, `${preset}-other.gguf`), { preset, seed: 2 })
  }
  if (args.bench) {
    console.log('\n| model | mode | variant | median tok/s | overall tok/s | vs recording off, paired per round: median (p25 … p75) |')
    console.log('|---|---|---|---|---|---|')
    for (const preset of presets)
      await bench(preset, paths.get(preset)!, preset === 'tiny' ? BENCH_RUNS : Math.max(3, Math.round(BENCH_RUNS / 5)))
  } else {
    let worst = 0
    for (const preset of presets) {
      const runs = preset === 'tiny' ? RUNS : Math.max(2, Math.round(RUNS / 3))
      worst = Math.max(worst, await calibrate(preset, paths.get(preset)!, join(dir, `${preset}-other.gguf`), runs))
    }
    console.log(`\nLargest |Δ| observed: ${fmt(worst)} nat; × 3 safety factor: ${fmt(worst * 3)} nat.`)
    console.log(
      `RESCORE_TOLERANCE: ${RESCORE_TOLERANCE} nat (${(RESCORE_TOLERANCE / Math.max(worst, 1e-12)).toFixed(1)}× the largest |Δ|); ` +
        `for records quantised to 1/${LOGPROB_SCALE} nat: ${QUANTISED_RESCORE_TOLERANCE.toFixed(4)} nat.`
    )
  }
} finally {
  await rm(dir, { recursive: true, force: true })
}
