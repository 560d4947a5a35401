/**
 * Re-scoring for proof of inference: evaluate prompt + output in one prefill and read, for each
 * output position, the raw log-probability of the token that was emitted there and the top-K
 * alternatives, to compare with what the supplier recorded while generating.
 *
 * "Raw" means log softmax of the model's logits, before temperature, top-p or a grammar: a verifier
 * can recompute it without knowing (or trusting) the sampler. A prefill evaluates the same maths
 * as token-by-token decoding but in other kernels and summation orders, so the numbers agree only
 * to a tolerance (see RESCORE_TOLERANCE and scripts/calibrate-proof.ts), never bit for bit.
 */
import type { Logprob, TokenLogprob } from '@gcn/core'
import type { ControlledEvaluateInputItem, LlamaContextSequence, Token } from 'node-llama-cpp'

export type { Logprob, TokenLogprob }

/** Alternatives recorded per token unless configured otherwise (matches PROOF_TOP_K in @gcn/core). */
export const DEFAULT_PROOF_TOP_K = 2
/** Upper bound for topK (recording and re-scoring). */
export const MAX_PROOF_TOP_K = 32

/**
 * Largest |Δ logprob| (nats) between a recorded and a re-scored value that still counts as
 * agreement. Calibrated with scripts/calibrate-proof.ts on the tiny (F32) and small (F16) test
 * models, ~104k positions, greedy and sampled, threads 1–2, one slot or two busy, flash attention
 * on/off, F16/F32 KV cache on either side: the largest difference seen was 0.017 nat (small, flash
 * attention on while generating); p99 ≤ 0.011. Thread count and batching never changed a value;
 * flash attention while generating is the main source (off: ≤ 0.006 small, ≤ 0.0012 tiny; F32
 * weights + F32 KV + no flash attention on both sides: ~4e-6). 0.05 nat is ~3× the worst case;
 * a model from another seed lands ≥ 0.7 nat away at 99 % of positions (median 9 nat).
 * Re-calibrate for real models: their kernels (quantised weights) differ.
 */
export const RESCORE_TOLERANCE = 0.05
/** RESCORE_TOLERANCE plus one quantisation step (1/256 nat) for records rounded to 1/256 nat. */
export const QUANTISED_RESCORE_TOLERANCE = RESCORE_TOLERANCE + 1 / 256

export interface RescoreOptions {
  /** Output positions (indices into outputTokens) to score, in the order wanted. Default: all. */
  positions?: readonly number[]
  /** Alternatives per position. Default DEFAULT_PROOF_TOP_K. */
  topK?: number
  signal?: AbortSignal
}

/** Anything that can re-score (a started ModelRuntime does, on a free slot). */
export interface Rescorer {
  rescore(promptTokens: readonly number[], outputTokens: readonly number[], options?: RescoreOptions): Promise<TokenLogprob[]>
}

/**
 * Raw logprob of `outputTokens[i]` given prompt and `outputTokens[0..i)` for every requested
 * position i, with the top-K alternatives, sorted descending. `target` is a ModelRuntime (a slot
 * is taken like a task and released afterwards) or an empty LlamaContextSequence the caller owns.
 */
export function rescore(
  target: Rescorer | LlamaContextSequence,
  promptTokens: readonly number[],
  outputTokens: readonly number[],
  options: RescoreOptions = {}
): Promise<TokenLogprob[]> {
  if (isRescorer(target)) return target.rescore(promptTokens, outputTokens, options)
  return rescoreSequence(target, promptTokens, outputTokens, options)
}

function isRescorer(target: Rescorer | LlamaContextSequence): target is Rescorer {
  return typeof (target as Partial<Rescorer>).rescore === 'function'
}

/** Checks topK and positions; returns the positions to score (default all) and topK. */
export function resolveRescoreOptions(outputLength: number, options: RescoreOptions): { positions: number[]; topK: number } {
  const topK = options.topK ?? DEFAULT_PROOF_TOP_K
  if (!Number.isSafeInteger(topK) || topK < 0 || topK > MAX_PROOF_TOP_K) {
    throw new RangeError(`topK must be an integer in 0..${MAX_PROOF_TOP_K}, got ${topK}`)
  }
  const positions = options.positions === undefined ? Array.from({ length: outputLength }, (_, i) => i) : [...options.positions]
  for (const position of positions) {
    if (!Number.isSafeInteger(position) || position < 0 || position >= outputLength) {
      throw new RangeError(`position ${position} is outside the output (0..${outputLength - 1})`)
    }
  }
  return { positions, topK }
}

/**
 * The re-scoring itself, on a sequence the caller owns and that holds no tokens yet: one
 * controlledEvaluate over prompt + output up to the last requested position, asking for logits
 * (the emitted token's and the top-K, plus the total logit weight) only where they are needed.
 * The sampler it uses is greedy with no grammar, which leaves the logits untouched (raw).
 * The sequence is left holding the evaluated tokens: clear it before reuse.
 */
export async function rescoreSequence(
  sequence: LlamaContextSequence,
  promptTokens: readonly number[],
  outputTokens: readonly number[],
  options: RescoreOptions = {}
): Promise<TokenLogprob[]> {
  const { positions, topK } = resolveRescoreOptions(outputTokens.length, options)
  if (promptTokens.length === 0) throw new RangeError('the prompt is empty: the first output token has nothing to be scored after')
  if (sequence.contextTokens.length !== 0) throw new Error('rescoreSequence needs an empty sequence')
  options.signal?.throwIfAborted()
  if (positions.length === 0) return []
  const last = Math.max(...positions)
  // Output position i is predicted by the logits after input index promptTokens.length - 1 + i.
  const input: ControlledEvaluateInputItem[] = [...promptTokens, ...outputTokens.slice(0, last)] as Token[]
  const wanted = Math.max(topK, 1)
  for (const position of new Set(positions)) {
    const at = promptTokens.length - 1 + position
    input[at] = [
      input[at] as Token,
      {
        generateNext: {
          logits: { filter: { tokens: [outputTokens[position] as Token], includeTop: wanted } },
          totalLogitWeight: true
        }
      }
    ]
  }
  if (input.length > sequence.contextSize - 1) {
    throw new RangeError(`prompt and output (${input.length} tokens evaluated) do not fit the context (${sequence.contextSize})`)
  }
  const results = await sequence.controlledEvaluate(input)
  options.signal?.throwIfAborted()
  return positions.map(position => {
    const next = results[promptTokens.length - 1 + position]?.next
    if (next?.logits === undefined || next.totalLogitWeight === undefined) {
      throw new Error(`no logits came back for output position ${position}`)
    }
    return tokenLogprobFrom(outputTokens[position]!, next.logits, next.totalLogitWeight, topK)
  })
}

/**
 * Builds a TokenLogprob from a partial logits list that holds the maximum logit (top-1) and the
 * chosen token's, plus llama.cpp's total logit weight Σ exp(logit − maxLogit) over the whole
 * vocabulary: logprob = logit − maxLogit − ln(totalLogitWeight). `logits` is a Map or a flat
 * [token, logit, token, logit, …] array as node-llama-cpp's native sampleToken returns it. Ties
 * sort by token id (lowest first, as greedy sampling picks), so equal inputs give equal records.
 */
export function tokenLogprobFrom(
  token: number,
  logits: ReadonlyMap<number, number> | readonly number[],
  totalLogitWeight: number,
  topK: number
): TokenLogprob {
  const entries: Array<[number, number]> = []
  if (Array.isArray(logits)) {
    for (let i = 0; i + 1 < logits.length; i += 2) entries.push([logits[i]!, logits[i + 1]!])
  } else {
    for (const entry of logits as ReadonlyMap<number, number>) entries.push(entry)
  }
  if (entries.length === 0 || !(totalLogitWeight >= 1)) throw new Error('incomplete logits: no maximum or total weight')
  let max = Number.NEGATIVE_INFINITY
  let chosen: number | undefined
  const seen = new Map<number, number>()
  for (const [id, logit] of entries) {
    if (logit > max) max = logit
    if (id === token) chosen = logit
    seen.set(id, logit)
  }
  if (chosen === undefined) throw new Error(`the logit of token ${token} is missing`)
  const logZ = max + Math.log(totalLogitWeight)
  const top: Logprob[] = [...seen]
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, topK)
    .map(([id, logit]) => ({ token: id, logprob: logit - logZ }))
  return { token, logprob: chosen - logZ, top }
}

export interface LogprobMismatch {
  /** Index into the compared arrays. */
  index: number
  reason: string
}

export interface LogprobComparison {
  /** True when every position agrees within the tolerance. */
  ok: boolean
  /** Largest |Δ| over chosen logprobs and top-K order statistics, in nats. */
  maxDelta: number
  mismatches: LogprobMismatch[]
}

/**
 * Compares claimed records (from generation) with re-scored ones, position by position:
 * same token; chosen logprob within `tolerance`; the i-th best logprob within `tolerance` (order
 * statistics are continuous in the logits, so near-ties do not matter); a claimed alternative
 * either matches the re-scored value of the same token or is not above the re-scored K-th best.
 */
export function compareLogprobs(
  claimed: readonly TokenLogprob[],
  rescored: readonly TokenLogprob[],
  tolerance: number = RESCORE_TOLERANCE
): LogprobComparison {
  const mismatches: LogprobMismatch[] = []
  let maxDelta = 0
  if (claimed.length !== rescored.length) {
    mismatches.push({
      index: Math.min(claimed.length, rescored.length),
      reason: `${claimed.length} claimed vs ${rescored.length} re-scored`
    })
  }
  const n = Math.min(claimed.length, rescored.length)
  for (let index = 0; index < n; index++) {
    const a = claimed[index]!
    const b = rescored[index]!
    const fail = (reason: string): void => {
      mismatches.push({ index, reason })
    }
    if (a.token !== b.token) {
      fail(`token ${a.token} claimed, ${b.token} re-scored`)
      continue
    }
    const chosen = Math.abs(a.logprob - b.logprob)
    maxDelta = Math.max(maxDelta, chosen)
    if (!(chosen <= tolerance)) fail(`logprob of token ${a.token}: ${a.logprob} claimed, ${b.logprob} re-scored`)
    const k = Math.min(a.top.length, b.top.length)
    if (a.top.length !== b.top.length) fail(`${a.top.length} alternatives claimed, ${b.top.length} re-scored`)
    for (let i = 0; i < k; i++) {
      const delta = Math.abs(a.top[i]!.logprob - b.top[i]!.logprob)
      maxDelta = Math.max(maxDelta, delta)
      if (!(delta <= tolerance)) fail(`top ${i + 1} logprob: ${a.top[i]!.logprob} claimed, ${b.top[i]!.logprob} re-scored`)
      const same = b.top.find(alt => alt.token === a.top[i]!.token)
      const floor = b.top[k - 1]!.logprob
      if (same !== undefined ? !(Math.abs(same.logprob - a.top[i]!.logprob) <= tolerance) : !(a.top[i]!.logprob <= floor + tolerance)) {
        fail(`alternative ${a.top[i]!.token} at ${a.top[i]!.logprob} does not match the re-scored distribution`)
      }
    }
  }
  return { ok: mismatches.length === 0, maxDelta, mismatches }
}
