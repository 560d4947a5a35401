/**
 * The supplier's model runtime: one GGUF model loaded with node-llama-cpp, one context with
 * `slots` sequences, so several tasks generate at once (llama.cpp batches their tokens together).
 *
 * Design notes (the why):
 * - Generation drives `LlamaContextSequence.evaluate()` directly instead of LlamaCompletion/LlamaChat:
 *   those re-tokenize the text in front of a stop trigger (the emitted ids would then not be the
 *   sampled ones), apply a repeat penalty by default and trim whitespace. Proof of inference needs
 *   every streamed id to be exactly what was sampled and the streamed text to be its detokenization.
 * - Each task runs as a producer that pushes chunks into a buffer; the returned iterator drains it.
 *   So an abort frees the slot at once even while the consumer is not pulling (no backpressure:
 *   a task's output is bounded by maxTokens, and slot time is the scarce resource).
 * - Every task starts from an empty sequence (history cleared when the slot is released). Prefix
 *   reuse across tasks is deliberately not done: first-token latency would reveal whether another
 *   tenant recently sent the same prefix, and results would depend on the slot's previous task.
 * - Sampling uses only temperature/topP (topK and minP disabled, no repeat penalty), so the request
 *   parameters fully describe the sampler. Concurrent sequences are batched, so greedy output of
 *   a task is reproducible when it runs alone but may differ slightly under concurrency. A task
 *   without a seed gets a random one (llama.cpp would otherwise seed with the current second).
 * - Proof of inference records, per emitted token, the RAW logprob of the chosen id (log softmax
 *   of the logits, before temperature/top-p/grammar) and the top-K raw alternatives, so a verifier
 *   can re-score prompt + output (rescore.ts) without knowing the sampler. No public node-llama-cpp
 *   API gives that for a token sampled with temperature/top-p in the same decode step:
 *   evaluateWithMetadata's probabilities/confidence and controlledEvaluate's logits are read after
 *   the sampler chain (top-p truncated, divided by the temperature, grammar-masked), and
 *   controlledEvaluate makes a new sampler per call (a seeded RNG would restart every token, and it
 *   takes no grammar). So the decode loop (NativeDecoder) drives the sequence through the internals
 *   `LlamaContextSequence` itself uses in `evaluate()` (`_decodeTokens`, `_resolveSamplerConfig`,
 *   the native `sampleToken`): the task's sampler samples exactly as `evaluate()` would (same chain,
 *   same RNG stream, same ids), and extra samplers read the raw logits of the same batch position
 *   (see RecordMode). Re-scoring uses the same path. The internals are checked at load; without
 *   them (another node-llama-cpp version) generation falls back to `evaluate()` and records
 *   nothing, with a warning, and re-scoring to the public controlledEvaluate.
 */
import { randomInt } from 'node:crypto'
import { basename } from 'node:path'
import {
  AbortedError,
  type ChatMessage,
  type FinishReason,
  GcnError,
  type GenerationParams,
  type InferenceInput,
  type Logger,
  NotStartedError,
  REQUEST_LIMITS,
  type TokenLogprob,
  type Usage
} from '@gcn/core'
import {
  type ChatHistoryItem,
  type ChatWrapper,
  GeneralChatWrapper,
  getLlama,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaGrammar,
  LlamaGrammarEvaluationState,
  LlamaLogLevel,
  type LlamaModel,
  type LlamaText,
  resolveChatWrapper,
  type Token
} from 'node-llama-cpp'
import {
  GenerationError,
  GpuBackendUnusableError,
  InvalidGenerationParamsError,
  InvalidInputError,
  InvalidJsonSchemaError,
  ModelLoadError,
  PromptTooLongError,
  QueueFullError
} from './errors.js'
import { probeGpuBackend, stderrSummary } from './gpu-probe.js'
import { normaliseSha256, sha256File, verifyModelFile } from './model-file.js'
import {
  DEFAULT_PROOF_TOP_K,
  MAX_PROOF_TOP_K,
  type RescoreOptions,
  rescoreSequence,
  resolveRescoreOptions,
  tokenLogprobFrom
} from './rescore.js'

export type { TokenLogprob } from '@gcn/core'
export type { RescoreOptions } from './rescore.js'

export interface ModelRuntimeInit {
  /** Path of the GGUF file. */
  modelPath: string
  /** Refuse to load unless the file hashes to this (ModelHashMismatchError, checked before loading). */
  expectedSha256?: string
  /** Human name; defaults to GGUF `general.name`, else the file name without `.gguf`. */
  name?: string
  /** Concurrent sequences (tasks generating at once). Default 2. */
  slots?: number
  /** Tasks allowed to wait for a slot; one more → QueueFullError. Default 16. */
  maxQueue?: number
  /** Tokens per sequence (prompt + output). Default min(model train context, 2048). */
  contextSize?: number
  /** CPU threads for evaluation. Default 1: llama.cpp's all-cores default collapses under load. */
  threads?: number
  /** Prompt tokens accepted (after the chat template). Default: only the context bounds it. */
  maxPromptTokens?: number
  /** Cap on a task's maxTokens. Default REQUEST_LIMITS.maxTokens. */
  maxOutputTokens?: number
  /** Default false (CPU prebuilt). */
  gpu?: false | 'auto' | 'cuda'
  /**
   * With `gpu` 'cuda' or 'auto', first load the model and decode a few tokens on that backend in a
   * child process (probeGpuBackend): a backend that aborts the process at its first decode (e.g.
   * CUDA refusing the prebuilt's PTX) then fails start() with GpuBackendUnusableError ('cuda') or
   * falls back to the CPU with a warning ('auto'), instead of killing the supplier at its first
   * task. Costs one extra model load at start. Default true.
   */
  gpuProbe?: boolean
  /** Testing only: the script the GPU probe's child runs (see GpuProbeInit.probeScript). */
  gpuProbeScript?: string
  /**
   * Record each emitted token's raw logprob and top-K alternatives (GenerationTokenChunk.logprobs)
   * for proof of inference. Default true.
   */
  recordLogprobs?: boolean
  /** Alternatives recorded per token (K). Default 2, at most 32. */
  proofTopK?: number
  /**
   * Flash attention in the context. Default: node-llama-cpp's 'auto' (on where supported). Off
   * brings prefill re-scoring a little closer to token-by-token generation.
   */
  flashAttention?: boolean
  /**
   * Type of the KV cache. Default 'f16' (llama.cpp's default). 'f32' doubles its memory and keeps
   * prefill re-scoring closest to generation. Uses node-llama-cpp's experimental KV cache options.
   */
  kvCacheType?: 'f16' | 'f32'
  /** Testing only: decode with the public `sequence.evaluate()` (records no logprobs). */
  forcePublicDecoder?: boolean
  /**
   * Told how far loading the model's weights has got, from 0 to 1 (node-llama-cpp's
   * `onLoadProgress`), on every start. A throw is logged and ignored.
   */
  onLoadProgress?: (fraction: number) => void
}

export interface ModelRuntimeComponents {
  logger: Logger
}

export interface ModelRuntimeInfo {
  /** sha256 of the GGUF file (lowercase hex): the model id on the network. */
  id: string
  name: string
  /** Tokens per sequence (prompt + output) actually allocated. */
  contextSize: number
  trainContextSize: number
  /** node-llama-cpp's backend in use: false for the CPU, else e.g. 'cuda'. */
  gpu: false | string
  /** Model layers offloaded to the GPU (0 on the CPU backend). */
  gpuLayers: number
}

export interface ModelRuntimeStats {
  totalSlots: number
  freeSlots: number
  /** Tasks waiting for a slot. */
  queueDepth: number
  /** Tasks holding a slot (generating, or finishing their in-flight step after an abort). */
  active: number
  /** EWMA of per-task decode speed (tokens after the first / time since the first); 0 until measured. */
  tokensPerSecond: number
  /** EWMA of slot acquisition → first token (prompt evaluation; queue wait not included); 0 until measured. */
  ttftMs: number
  /** Tasks that held a slot and ended, whatever the reason. */
  completed: number
}

export interface GenerationTokenChunk {
  type: 'token'
  /** Detokenization of `tokenIds` (in the context of the preceding tokens). */
  text: string
  /** Sampled token ids, in order, exactly as generated. */
  tokenIds: number[]
  /**
   * Proof-of-inference data, one entry per id of `tokenIds`, in order: the raw logprob (natural
   * log of the model's probability, temperature/top-p/grammar not applied) of the id and the
   * top-K raw alternatives, sorted descending. Absent when recording is off or unavailable.
   */
  logprobs?: TokenLogprob[]
}

export interface GenerationDoneChunk {
  type: 'done'
  finishReason: FinishReason
  usage: Usage
}

export type GenerationChunk = GenerationTokenChunk | GenerationDoneChunk

export interface GenerateOptions {
  signal?: AbortSignal
}

export type ModelRuntimeState = 'stopped' | 'starting' | 'started' | 'stopping'

export type ModelRuntimeChangeListener = (stats: ModelRuntimeStats) => void

export interface ModelRuntime {
  readonly [Symbol.toStringTag]: string
  readonly state: ModelRuntimeState
  /** Throws NotStartedError before start(). */
  readonly info: ModelRuntimeInfo
  start(): Promise<void>
  stop(): Promise<void>
  stats(): ModelRuntimeStats
  /** Called (coalesced per microtask) whenever stats change; returns an unsubscribe function. */
  onChange(listener: ModelRuntimeChangeListener): () => void
  /**
   * Streams token chunks then one `done` chunk. The task is submitted at once (it queues for a
   * slot before the first `next()`); errors (PromptTooLongError, QueueFullError, …) surface from
   * the iterator. Abort while waiting → AbortedError; abort once generating → `done` with
   * finishReason 'aborted'. Breaking out of the loop (iterator `return()`) aborts the task too.
   */
  generate(input: InferenceInput, params: GenerationParams, options?: GenerateOptions): AsyncIterableIterator<GenerationChunk>
  /**
   * The exact prompt token ids a task with this input is evaluated on (BOS and chat template
   * included): what a verifier needs to re-evaluate prompt + output.
   */
  tokenizeInput(input: InferenceInput): number[]
  /**
   * Text of `tokens` as the runtime streams it (control tokens render as ''); `preceding` (e.g. the
   * prompt and earlier output) lets the detokenizer resolve leading spaces, as for chunk texts.
   */
  detokenize(tokens: readonly number[], preceding?: readonly number[]): string
  /**
   * Re-scores prompt + output in one prefill on a free slot (queued like a task, released after):
   * for each requested output position i the raw logprob of outputTokens[i] given everything
   * before it, and the top-K raw alternatives. See rescore.ts.
   */
  rescore(promptTokens: readonly number[], outputTokens: readonly number[], options?: RescoreOptions): Promise<TokenLogprob[]>
}

const DEFAULT_SLOTS = 2
const DEFAULT_MAX_QUEUE = 16
const DEFAULT_MAX_CONTEXT = 2048
/** Weight of the newest sample in the speed/latency EWMAs. */
const EWMA_ALPHA = 0.2
/** Longest the next decode waits for the consumer to take the first text (see generateOn). */
const FIRST_TOKEN_HANDOFF_MS = 5
const GRAMMAR_CACHE_SIZE = 16
const NATIVE_LOG_LINES = 20
/** Enough preceding tokens for the detokenizer to resolve leading spaces. */
const DETOKENIZE_CONTEXT = 16
const REPLACEMENT_CHAR = '\uFFFD'

const positiveInt = (value: number | undefined, fallback: number, what: string, min = 1): number => {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < min) throw new RangeError(`${what} must be an integer >= ${min}, got ${value}`)
  return value
}

interface Slot {
  readonly index: number
  readonly sequence: LlamaContextSequence
}

interface Waiter {
  resolve(slot: Slot): void
  reject(err: unknown): void
  readonly signal: AbortSignal
  readonly onAbort: () => void
}

interface Loaded {
  llama: Llama
  model: LlamaModel
  context: LlamaContext
  chatWrapper: ChatWrapper
  info: ModelRuntimeInfo
  /** Tokens in the vocabulary, from the GGUF metadata (undefined if it does not say). */
  vocabSize: number | undefined
  /** node-llama-cpp internals for the native decode loop; undefined → public evaluate(), no recording. */
  native: NativeAccess | undefined
  /** Single control tokens that end a chat turn besides EOG (from the chat wrapper). */
  stopTokens: Set<number>
  /** Text triggers of the chat wrapper (e.g. a literal `<|im_end|>`). */
  chatStopStrings: string[]
}

interface PreparedTask {
  promptTokens: Token[]
  maxTokens: number
  temperature: number
  topP: number
  seed: number
  stopStrings: string[]
  grammar: LlamaGrammar | undefined
}

// ---------------------------------------------------------------------------------------------
// decoding

/** One sampled token and, when recording, its proof-of-inference data. */
interface DecodeStep {
  token: Token
  logprob?: TokenLogprob
}

/** Where a task's tokens come from. `close()` only after the last `next()` has settled. */
interface TokenSource {
  /** The next sampled token; undefined when the source has nothing more. */
  next(): Promise<DecodeStep | undefined>
  close(): Promise<void>
}

/** The native sampler object of node-llama-cpp's addon (AddonSampler). */
interface NativeSampler {
  applyConfig(config: object): unknown
  dispose(): void
}

/** [tokens, includeMax, includeMin, includeSelected, includeTop] as the addon takes it. */
type NativeLogitsFilter = [tokens: number[], includeMax: boolean, includeMin: boolean, includeSelected: boolean, includeTop: number]

/** [token (-1: none), probabilities, confidence, logits as flat [id, logit, …], total logit weight] */
type NativeSampleArray = [token: number, probabilities?: unknown, confidence?: number, logits?: number[], totalLogitWeight?: number]

interface NativeContext {
  sampleToken(batchLogitIndex: number, sampler: NativeSampler): Promise<number>
  sampleToken(
    batchLogitIndex: number,
    sampler: NativeSampler,
    probabilities: boolean,
    confidence: boolean,
    logits: NativeLogitsFilter,
    totalLogitWeight: boolean
  ): Promise<NativeSampleArray>
}

/** The LlamaContextSequence internals its own `evaluate()` is built from (node-llama-cpp 3.22). */
interface SequenceInternals {
  _decodeTokens<T>(
    tokens: Token[],
    logits: (true | undefined)[],
    evaluationPriority: number,
    tokenMeter: unknown,
    contextShiftOptions: unknown,
    logitDataMapper: (batchLogitIndex: number, tokenIndex: number) => Promise<T>,
    afterBatchAction?: unknown
  ): Promise<(T | undefined)[]>
  _resolveSamplerConfig(options: {
    temperature: number
    minP: number
    topK: number
    topP: number
    seed: number
    grammarEvaluationState?: LlamaGrammarEvaluationState
  }): object
  readonly _tokenMeter: unknown
  readonly _contextShift: unknown
  readonly _takeIntervalCheckpointIfNeededAfterBatch?: unknown
  readonly _context: { readonly _ctx: NativeContext }
}

interface NativeAccess {
  createSampler(): NativeSampler
  sequence(sequence: LlamaContextSequence): SequenceInternals
}

type SamplerConfig = Parameters<SequenceInternals['_resolveSamplerConfig']>[0]

/** Creates native samplers configured as `evaluate()` would, collecting them for disposal. */
function samplerFactory(access: NativeAccess, seq: SequenceInternals, into: NativeSampler[]): (config: SamplerConfig) => NativeSampler {
  return config => {
    const created = access.createSampler()
    into.push(created)
    created.applyConfig(seq._resolveSamplerConfig(config))
    return created
  }
}

/** Same priority `evaluate()` uses. */
const EVALUATION_PRIORITY = 5

/** Finds the internals NativeDecoder needs, or undefined when this node-llama-cpp lacks them. */
function nativeAccess(model: LlamaModel, context: LlamaContext, probe: LlamaContextSequence): NativeAccess | undefined {
  const internals = model as unknown as { _llama?: { _bindings?: { AddonSampler?: unknown } }; _model?: unknown }
  const Sampler = internals._llama?._bindings?.AddonSampler as (new (model: unknown) => NativeSampler) | undefined
  const seq = probe as unknown as Partial<SequenceInternals>
  const ctx = (context as unknown as { _ctx?: Partial<NativeContext> })._ctx
  if (
    typeof Sampler !== 'function' ||
    internals._model == null ||
    typeof seq._decodeTokens !== 'function' ||
    typeof seq._resolveSamplerConfig !== 'function' ||
    seq._context?._ctx !== ctx ||
    typeof ctx?.sampleToken !== 'function' ||
    typeof (Sampler.prototype as Partial<NativeSampler>).applyConfig !== 'function'
  ) {
    return undefined
  }
  return {
    createSampler: () => new Sampler(internals._model),
    sequence: sequence => sequence as unknown as SequenceInternals
  }
}

/**
 * How a NativeDecoder reads raw logits, cheapest first (each native sampleToken call costs a
 * thread-pool round trip, ~35 µs here; a full sort of the vocabulary, which node-llama-cpp's
 * `includeTop` does on unsorted candidates, costs O(V log V) and is never asked for):
 * - 'greedy' (temperature 0, no grammar): the task's greedy sampler leaves the logits raw, so its
 *   own call returns the chosen token (= the maximum) and the total logit weight; the top-K come
 *   from a top-K sampler (llama.cpp's partial sort, O(V log K)).
 * - 'sampled' (temperature > 0, no grammar): the task's chain (top-k over the whole vocabulary,
 *   top-p, temperature, dist) sorts the candidates by raw logit, so its first K are the raw top-K
 *   ids (values divided by the temperature); one greedy probe then reads the raw logits of the
 *   chosen token and those ids plus the total weight. When top-p kept fewer than K candidates, the
 *   top-K sampler fills in.
 * - 'grammar': the task's candidates are grammar-masked: the chosen token and the weight come
 *   from the greedy probe, the top-K from the top-K sampler.
 */
type RecordMode = 'greedy' | 'sampled' | 'grammar'

/**
 * The decode loop of `LlamaContextSequence.evaluate()` (prompt, then one token at a time, logits
 * for the last position only), sampling with the task's own sampler exactly as `evaluate()` does,
 * plus the raw logits read for proof of inference (see the notes at the top of the file).
 */
class NativeDecoder implements TokenSource {
  private input: Token[]
  private readonly sampler: NativeSampler
  private readonly mode: RecordMode
  /** Greedy, no grammar: reads raw logits of given tokens, the maximum and the total weight. */
  private readonly probe: NativeSampler | undefined
  /** top-k = K then temperature 1: its candidates are the raw top-K, sorted. */
  private readonly topSampler: NativeSampler | undefined

  constructor(
    private readonly seq: SequenceInternals,
    access: NativeAccess,
    task: PreparedTask,
    grammarEvaluationState: LlamaGrammarEvaluationState | undefined,
    /** Alternatives to record; undefined: record nothing. */
    private readonly topK: number | undefined
  ) {
    this.input = task.promptTokens
    this.mode = grammarEvaluationState !== undefined ? 'grammar' : task.temperature <= 0 ? 'greedy' : 'sampled'
    const samplers: NativeSampler[] = []
    const sampler = samplerFactory(access, seq, samplers)
    try {
      const { temperature, topP, seed } = task
      this.sampler = sampler({ temperature, topP, topK: 0, minP: 0, seed, grammarEvaluationState })
      if (topK !== undefined && this.mode !== 'greedy') this.probe = sampler({ temperature: 0, topP: 1, topK: 0, minP: 0, seed: 0 })
      if (topK !== undefined && topK > 1) this.topSampler = sampler({ temperature: 1, topP: 1, topK, minP: 0, seed: 0 })
    } catch (err) {
      for (const created of samplers) created.dispose()
      throw err
    }
  }

  async next(): Promise<DecodeStep> {
    const tokens = this.input
    const logits: (true | undefined)[] = []
    logits[tokens.length - 1] = true
    const results = await this.seq._decodeTokens(
      tokens,
      logits,
      EVALUATION_PRIORITY,
      this.seq._tokenMeter,
      this.seq._contextShift,
      batchLogitIndex => this.sample(batchLogitIndex),
      this.seq._takeIntervalCheckpointIfNeededAfterBatch
    )
    const step = results[tokens.length - 1]
    if (step === undefined) throw new Error('the decoder returned no token')
    this.input = [step.token]
    return step
  }

  async close(): Promise<void> {
    this.sampler.dispose()
    this.probe?.dispose()
    this.topSampler?.dispose()
  }

  private async sample(batchLogitIndex: number): Promise<DecodeStep> {
    const ctx = this.seq._context._ctx
    const topK = this.topK
    if (topK === undefined) return { token: sampled(await ctx.sampleToken(batchLogitIndex, this.sampler)) }
    /** Raw logits of the true top-K, sorted (top-K sampler); empty when K ≤ 1. */
    const rawTop = async (): Promise<number[]> =>
      this.topSampler === undefined
        ? []
        : ((await ctx.sampleToken(batchLogitIndex, this.topSampler, false, false, [[], false, false, false, topK], false))[3] ?? [])
    let token: Token
    let raw: number[] | undefined
    let weight: number | undefined
    let top: number[] = []
    if (this.mode === 'greedy') {
      // includeSelected: the chosen token, which greedy makes the maximum.
      ;[token, , , raw, weight] = await this.call(batchLogitIndex, this.sampler, [[], false, false, true, 0], true)
      top = await rawTop()
    } else {
      let ids: number[] = []
      if (this.mode === 'sampled' && topK > 0) {
        const [chosen, , , scaled] = await this.call(batchLogitIndex, this.sampler, [[], false, false, false, topK], false)
        token = chosen
        for (let i = 0; i < (scaled?.length ?? 0); i += 2) ids.push(scaled![i]!)
        if (ids.length < topK) {
          top = await rawTop()
          ids = []
        }
      } else {
        token = sampled(await ctx.sampleToken(batchLogitIndex, this.sampler))
        top = await rawTop()
      }
      // includeSelected: the greedy probe's choice is the maximum, needed with the total weight.
      ;[, , , raw, weight] = await this.call(batchLogitIndex, this.probe!, [[token, ...ids], false, false, true, 0], true)
    }
    if (raw === undefined || weight === undefined) throw new Error('the sampler returned no logits')
    return { token, logprob: tokenLogprobFrom(token, top.length === 0 ? raw : raw.concat(top), weight, topK) }
  }

  private async call(
    batchLogitIndex: number,
    sampler: NativeSampler,
    filter: NativeLogitsFilter,
    totalLogitWeight: boolean
  ): Promise<[Token, unknown, unknown, number[] | undefined, number | undefined]> {
    const [token, probabilities, confidence, logits, weight] = await this.seq._context._ctx.sampleToken(
      batchLogitIndex,
      sampler,
      false,
      false,
      filter,
      totalLogitWeight
    )
    return [sampled(token), probabilities, confidence, logits, weight]
  }
}

/**
 * Re-scoring through the same internals as NativeDecoder: one `_decodeTokens` over prompt + output
 * (logits only at the requested positions), and per position a greedy probe (the emitted token's
 * raw logit, the maximum, the total weight) plus the top-K sampler. Same numbers as
 * rescoreSequence (public controlledEvaluate) but without its O(V log V) sort per position
 * (`includeTop` on unsorted candidates), which dominates for large vocabularies.
 */
async function rescoreNative(
  access: NativeAccess,
  sequence: LlamaContextSequence,
  promptTokens: readonly number[],
  outputTokens: readonly number[],
  options: RescoreOptions
): Promise<TokenLogprob[]> {
  const { positions, topK } = resolveRescoreOptions(outputTokens.length, options)
  if (positions.length === 0) return []
  const seq = access.sequence(sequence)
  const offset = promptTokens.length - 1
  const last = positions.reduce((a, b) => Math.max(a, b), 0)
  const tokens = [...promptTokens, ...outputTokens.slice(0, last)] as Token[]
  const logits: (true | undefined)[] = []
  for (const position of positions) logits[offset + position] = true
  const samplers: NativeSampler[] = []
  const sampler = samplerFactory(access, seq, samplers)
  try {
    const probe = sampler({ temperature: 0, topP: 1, topK: 0, minP: 0, seed: 0 })
    const topSampler = topK > 1 ? sampler({ temperature: 1, topP: 1, topK, minP: 0, seed: 0 }) : undefined
    const ctx = seq._context._ctx
    const results = await seq._decodeTokens(
      tokens,
      logits,
      EVALUATION_PRIORITY,
      seq._tokenMeter,
      seq._contextShift,
      async (batchLogitIndex, tokenIndex) => {
        const token = outputTokens[tokenIndex - offset]!
        const [, , , raw, weight] = await ctx.sampleToken(batchLogitIndex, probe, false, false, [[token], false, false, true, 0], true)
        const top =
          topSampler === undefined
            ? []
            : ((await ctx.sampleToken(batchLogitIndex, topSampler, false, false, [[], false, false, false, topK], false))[3] ?? [])
        if (raw === undefined || weight === undefined) throw new Error('the sampler returned no logits')
        return tokenLogprobFrom(token, top.length === 0 ? raw : raw.concat(top), weight, topK)
      },
      seq._takeIntervalCheckpointIfNeededAfterBatch
    )
    return positions.map(position => {
      const result = results[offset + position]
      if (result === undefined) throw new Error(`no logits came back for output position ${position}`)
      return result
    })
  } finally {
    for (const created of samplers) created.dispose()
  }
}

function sampled(token: number): Token {
  if (token === -1 || !Number.isSafeInteger(token)) throw new Error('failed to sample the next token')
  return token as Token
}

/** Fallback: the public `evaluate()` iterator (no proof data). */
class PublicDecoder implements TokenSource {
  private readonly tokens: AsyncGenerator<Token, void, unknown>

  constructor(sequence: LlamaContextSequence, task: PreparedTask, grammarEvaluationState: LlamaGrammarEvaluationState | undefined) {
    this.tokens = sequence.evaluate(task.promptTokens, {
      temperature: task.temperature,
      topP: task.topP,
      topK: 0,
      minP: 0,
      seed: task.seed,
      grammarEvaluationState,
      yieldEogToken: true
    })
  }

  async next(): Promise<DecodeStep | undefined> {
    const step = await this.tokens.next()
    return step.done === true ? undefined : { token: step.value }
  }

  async close(): Promise<void> {
    await this.tokens.return()
  }
}

/**
 * Push-fed async iterator: the task pushes, the consumer pulls. `return()` from the consumer
 * (break / early exit) calls `onReturn` so the task is aborted and its slot freed.
 */
class ChunkStream implements AsyncIterableIterator<GenerationChunk> {
  private readonly buffer: GenerationChunk[] = []
  private waiter: { resolve(r: IteratorResult<GenerationChunk>): void; reject(err: unknown): void } | undefined
  private ended = false
  private closed = false
  private failure: { error: unknown } | undefined
  private pulled: (() => void) | undefined

  constructor(private readonly onReturn: () => void) {}

  /** Resolves once the consumer has taken everything pushed so far and asks for more (or has gone). */
  drained(): Promise<void> {
    if (this.closed || this.ended || (this.buffer.length === 0 && this.waiter !== undefined)) return Promise.resolve()
    return new Promise(resolve => {
      this.pulled = resolve
    })
  }

  push(chunk: GenerationChunk): void {
    if (this.ended || this.closed) return
    if (this.waiter !== undefined) {
      const { resolve } = this.waiter
      this.waiter = undefined
      resolve({ value: chunk, done: false })
    } else {
      this.buffer.push(chunk)
    }
  }

  end(error?: unknown): void {
    if (this.ended) return
    this.ended = true
    if (error !== undefined) this.failure = { error }
    if (this.waiter !== undefined) {
      const { resolve, reject } = this.waiter
      this.waiter = undefined
      if (this.failure !== undefined) {
        const { error: e } = this.failure
        this.failure = undefined
        reject(e)
      } else {
        resolve({ value: undefined, done: true })
      }
    }
  }

  next(): Promise<IteratorResult<GenerationChunk>> {
    const chunk = this.buffer.shift()
    if (chunk !== undefined) return Promise.resolve({ value: chunk, done: false })
    if (this.ended || this.closed) {
      if (this.failure !== undefined) {
        const { error } = this.failure
        this.failure = undefined
        return Promise.reject(error)
      }
      return Promise.resolve({ value: undefined, done: true })
    }
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject }
      const pulled = this.pulled
      this.pulled = undefined
      pulled?.()
    })
  }

  return(): Promise<IteratorResult<GenerationChunk>> {
    if (!this.closed) {
      this.closed = true
      this.buffer.length = 0
      this.failure = undefined
      this.onReturn()
    }
    const pulled = this.pulled
    this.pulled = undefined
    pulled?.()
    if (this.waiter !== undefined) {
      const { resolve } = this.waiter
      this.waiter = undefined
      resolve({ value: undefined, done: true })
    }
    return Promise.resolve({ value: undefined, done: true })
  }

  [Symbol.asyncIterator](): this {
    return this
  }
}

/**
 * Turns sampled tokens into chunks whose text is the detokenization of their ids. Tokens are held
 * back while their text ends in an incomplete UTF-8 character or could be the start of a stop
 * string. A stop string cuts at token granularity: the token in which it starts is dropped with
 * it (so text and ids always agree), even if part of that token's text came before the stop.
 */
class OutputAssembler {
  readonly emitted: Token[] = []
  private held: Token[] = []
  private recent: Token[]

  constructor(
    private readonly model: LlamaModel,
    promptTokens: readonly Token[],
    private readonly stopStrings: readonly string[]
  ) {
    this.recent = promptTokens.slice(-DETOKENIZE_CONTEXT)
  }

  /** Adds one sampled token; returns what can be emitted and whether a stop string was found. */
  add(token: Token): { chunk?: GenerationTokenChunk; stopped: boolean } {
    this.held.push(token)
    const text = this.detokenize(this.held)
    let stopAt = -1
    for (const stop of this.stopStrings) {
      const at = text.indexOf(stop)
      if (at >= 0 && (stopAt < 0 || at < stopAt)) stopAt = at
    }
    if (stopAt >= 0) {
      const chunk = this.takePrefix(text, stopAt, true)
      this.held = []
      return { chunk, stopped: true }
    }
    const safe = text.length - this.partialStopSuffix(text)
    return { chunk: this.takePrefix(text, safe, false), stopped: false }
  }

  /** Emits everything still held (end of generation: nothing more can complete it). */
  flush(): GenerationTokenChunk | undefined {
    if (this.held.length === 0) return undefined
    const ids = this.held
    this.held = []
    return this.emit(ids, this.detokenize(ids))
  }

  private detokenize(tokens: readonly Token[]): string {
    return this.model.detokenize(tokens, false, this.recent)
  }

  /** Longest suffix of `text` that is a proper prefix of some stop string. */
  private partialStopSuffix(text: string): number {
    let longest = 0
    for (const stop of this.stopStrings) {
      for (let len = Math.min(stop.length - 1, text.length); len > longest; len--) {
        if (text.endsWith(stop.slice(0, len))) {
          longest = len
          break
        }
      }
    }
    return longest
  }

  /**
   * Emits the longest run of held tokens whose text is a prefix of `text`, no longer than `limit`
   * and (unless `final`) not ending in an incomplete character.
   */
  private takePrefix(text: string, limit: number, final: boolean): GenerationTokenChunk | undefined {
    const acceptable = (prefix: string): boolean =>
      prefix.length <= limit && text.startsWith(prefix) && (final || !prefix.endsWith(REPLACEMENT_CHAR))
    if (acceptable(text)) {
      const ids = this.held
      this.held = []
      return ids.length === 0 ? undefined : this.emit(ids, text)
    }
    for (let count = this.held.length - 1; count > 0; count--) {
      const ids = this.held.slice(0, count)
      const prefix = this.detokenize(ids)
      if (acceptable(prefix)) {
        this.held = this.held.slice(count)
        return this.emit(ids, prefix)
      }
    }
    return undefined
  }

  private emit(ids: Token[], text: string): GenerationTokenChunk {
    for (const id of ids) this.emitted.push(id)
    this.recent = this.recent.concat(ids).slice(-DETOKENIZE_CONTEXT)
    return { type: 'token', text, tokenIds: ids.slice() as number[] }
  }
}

function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = messages.map(message => {
    if (message.role === 'system') return { type: 'system', text: message.content }
    if (message.role === 'user') return { type: 'user', text: message.content }
    return { type: 'model', response: [message.content] }
  })
  // An empty model turn at the end is how chat wrappers render "the assistant speaks next".
  history.push({ type: 'model', response: [] })
  return history
}

class DefaultModelRuntime implements ModelRuntime {
  readonly [Symbol.toStringTag] = '@gcn/supplier/model-runtime'
  private readonly log: Logger
  private readonly slotCount: number
  private readonly maxQueue: number
  private readonly threads: number
  private readonly maxOutputTokens: number
  private readonly maxPromptTokens: number | undefined
  private readonly requestedContextSize: number | undefined
  /** Alternatives recorded per token; undefined: recording off. */
  private readonly recordTopK: number | undefined
  private current: ModelRuntimeState = 'stopped'
  private loaded: Loaded | undefined
  private starting: Promise<void> | undefined
  private stopping: Promise<void> | undefined
  private slots: Slot[] = []
  private free: Slot[] = []
  private readonly waiters: Waiter[] = []
  private readonly tasks = new Set<Promise<void>>()
  private readonly controllers = new Set<AbortController>()
  private readonly listeners = new Set<ModelRuntimeChangeListener>()
  private readonly grammars = new Map<string, LlamaGrammar>()
  private readonly nativeLog: string[] = []
  private notifyQueued = false
  private tokensPerSecond = 0
  private ttftMs = 0
  private completed = 0

  constructor(
    private readonly init: ModelRuntimeInit,
    components: ModelRuntimeComponents
  ) {
    this.log = components.logger.child('model-runtime')
    this.slotCount = positiveInt(init.slots, DEFAULT_SLOTS, 'slots')
    this.maxQueue = positiveInt(init.maxQueue, DEFAULT_MAX_QUEUE, 'maxQueue', 0)
    this.threads = positiveInt(init.threads, 1, 'threads')
    this.maxOutputTokens = positiveInt(init.maxOutputTokens, REQUEST_LIMITS.maxTokens, 'maxOutputTokens')
    this.maxPromptTokens = init.maxPromptTokens === undefined ? undefined : positiveInt(init.maxPromptTokens, 0, 'maxPromptTokens')
    this.requestedContextSize = init.contextSize === undefined ? undefined : positiveInt(init.contextSize, 0, 'contextSize', 16)
    const topK = positiveInt(init.proofTopK, DEFAULT_PROOF_TOP_K, 'proofTopK', 0)
    if (topK > MAX_PROOF_TOP_K) throw new RangeError(`proofTopK must be at most ${MAX_PROOF_TOP_K}, got ${topK}`)
    this.recordTopK = init.recordLogprobs === false ? undefined : topK
    if (init.kvCacheType !== undefined && init.kvCacheType !== 'f16' && init.kvCacheType !== 'f32') {
      throw new RangeError(`kvCacheType must be 'f16' or 'f32', got ${String(init.kvCacheType)}`)
    }
    if (init.expectedSha256 !== undefined) normaliseSha256(init.expectedSha256)
  }

  get state(): ModelRuntimeState {
    return this.current
  }

  get info(): ModelRuntimeInfo {
    if (this.loaded === undefined) throw new NotStartedError('model runtime is not started')
    return { ...this.loaded.info }
  }

  async start(): Promise<void> {
    if (this.current === 'started') return
    if (this.stopping !== undefined) await this.stopping
    this.starting ??= this.load().finally(() => {
      this.starting = undefined
    })
    return this.starting
  }

  async stop(): Promise<void> {
    if (this.starting !== undefined) await this.starting.catch(() => {})
    if (this.current === 'stopped') return
    this.stopping ??= this.unload().finally(() => {
      this.stopping = undefined
    })
    return this.stopping
  }

  stats(): ModelRuntimeStats {
    const totalSlots = this.slots.length
    return {
      totalSlots,
      freeSlots: this.free.length,
      queueDepth: this.waiters.length,
      active: totalSlots - this.free.length,
      tokensPerSecond: this.tokensPerSecond,
      ttftMs: this.ttftMs,
      completed: this.completed
    }
  }

  onChange(listener: ModelRuntimeChangeListener): () => void {
    this.listeners.add(listener)
    return () => {
      this.listeners.delete(listener)
    }
  }

  tokenizeInput(input: InferenceInput): number[] {
    return this.render(this.requireLoaded(), input).tokens as number[]
  }

  detokenize(tokens: readonly number[], preceding: readonly number[] = []): string {
    const loaded = this.requireLoaded()
    this.checkTokens(loaded, tokens, 'tokens')
    this.checkTokens(loaded, preceding, 'preceding')
    return loaded.model.detokenize(tokens as Token[], false, preceding.slice(-DETOKENIZE_CONTEXT) as Token[])
  }

  rescore(promptTokens: readonly number[], outputTokens: readonly number[], options: RescoreOptions = {}): Promise<TokenLogprob[]> {
    let loaded: Loaded
    try {
      loaded = this.requireLoaded()
      this.checkTokens(loaded, promptTokens, 'promptTokens')
      this.checkTokens(loaded, outputTokens, 'outputTokens')
      if (promptTokens.length === 0) throw new InvalidInputError('the prompt is empty')
      resolveRescoreOptions(outputTokens.length, options)
      // Evaluated: the prompt and the output up to its last token (whose successor is not needed).
      const evaluated = promptTokens.length + outputTokens.length - 1
      if (evaluated > loaded.info.contextSize - 1) throw new PromptTooLongError(evaluated, loaded.info.contextSize - 1)
    } catch (err) {
      return Promise.reject(err)
    }
    const controller = new AbortController()
    const external = options.signal
    if (external?.aborted === true) return Promise.reject(new AbortedError('re-scoring aborted', { cause: external.reason }))
    const forward = (): void => controller.abort(external?.reason)
    external?.addEventListener('abort', forward, { once: true })
    this.controllers.add(controller)
    const run = async (): Promise<TokenLogprob[]> => {
      const slot = await this.acquire(controller.signal)
      try {
        const result =
          loaded.native === undefined
            ? await rescoreSequence(slot.sequence, promptTokens, outputTokens, { ...options, signal: undefined })
            : await rescoreNative(loaded.native, slot.sequence, promptTokens, outputTokens, options)
        if (controller.signal.aborted) throw new AbortedError('re-scoring aborted', { cause: controller.signal.reason })
        return result
      } finally {
        await slot.sequence.clearHistory().catch(err => this.log.warn('clearing sequence failed', { slot: slot.index, err }))
        this.release(slot)
      }
    }
    const result = run()
    const task = result
      .then(
        () => {},
        () => {}
      )
      .finally(() => {
        external?.removeEventListener('abort', forward)
        this.controllers.delete(controller)
        this.tasks.delete(task)
      })
    this.tasks.add(task)
    return result
  }

  generate(input: InferenceInput, params: GenerationParams, options: GenerateOptions = {}): AsyncIterableIterator<GenerationChunk> {
    const controller = new AbortController()
    const stream = new ChunkStream(() => controller.abort(new AbortedError('generation stopped by its consumer')))
    const external = options.signal
    if (external?.aborted === true) {
      stream.end(new AbortedError('generation aborted', { cause: external.reason }))
      return stream
    }
    const forward = (): void => controller.abort(external?.reason)
    external?.addEventListener('abort', forward, { once: true })
    this.controllers.add(controller)
    const task = this.runTask(input, params, controller.signal, stream).finally(() => {
      external?.removeEventListener('abort', forward)
      this.controllers.delete(controller)
      this.tasks.delete(task)
    })
    this.tasks.add(task)
    return stream
  }

  // -------------------------------------------------------------------------------------------
  // lifecycle

  private async load(): Promise<void> {
    this.current = 'starting'
    this.nativeLog.length = 0
    const startedAt = performance.now()
    const { modelPath } = this.init
    let llama: Llama | undefined
    let model: LlamaModel | undefined
    let context: LlamaContext | undefined
    const hashAbort = new AbortController()
    try {
      // With an expected hash nothing is loaded before it matches; otherwise hash while loading.
      const hashed =
        this.init.expectedSha256 === undefined
          ? sha256File(modelPath, { signal: hashAbort.signal })
          : Promise.resolve(await verifyModelFile(modelPath, this.init.expectedSha256))
      hashed.catch(() => {})
      // A GPU backend is tried in a child process first: a crash there costs the child only.
      const requestedGpu = this.init.gpu ?? false
      let gpu: false | 'auto' | 'cuda' | 'vulkan' | 'metal' = requestedGpu
      if (requestedGpu !== false && this.init.gpuProbe !== false) {
        const probe = await probeGpuBackend({
          modelPath,
          gpu: requestedGpu,
          threads: this.threads,
          ...(this.init.gpuProbeScript === undefined ? {} : { probeScript: this.init.gpuProbeScript })
        })
        if (probe.ok) {
          this.log.info('GPU backend probed', { requested: requestedGpu, gpu: probe.gpu, gpuLayers: probe.gpuLayers, probeMs: probe.ms })
          // 'auto' loads in-process what the probe found working (false: no GPU, the CPU).
          if (requestedGpu === 'auto') {
            gpu = probe.gpu === false ? false : probe.gpu === 'cuda' || probe.gpu === 'vulkan' || probe.gpu === 'metal' ? probe.gpu : 'auto'
          }
        } else if (requestedGpu === 'cuda') {
          throw new GpuBackendUnusableError(requestedGpu, probe.reason, probe.stderrTail)
        } else {
          this.log.warn('GPU backend failed its probe: running on the CPU', {
            requested: requestedGpu,
            reason: probe.reason,
            exitCode: probe.exitCode,
            signal: probe.signal,
            native: stderrSummary(probe.stderrTail)
          })
          gpu = false
        }
      }
      try {
        llama = await getLlama({
          gpu,
          build: 'never',
          maxThreads: this.threads,
          logLevel: LlamaLogLevel.warn,
          logger: (level, message) => this.onNativeLog(level, message)
        })
        const onLoadProgress = this.init.onLoadProgress
        model = await llama.loadModel({
          modelPath,
          ...(onLoadProgress === undefined
            ? {}
            : {
                onLoadProgress: (fraction: number) => {
                  try {
                    onLoadProgress(fraction)
                  } catch (err) {
                    this.log.debug('onLoadProgress threw', { err })
                  }
                }
              })
        })
        const trainContextSize = model.trainContextSize
        const contextSize = this.requestedContextSize ?? Math.min(trainContextSize, DEFAULT_MAX_CONTEXT)
        context = await model.createContext({
          contextSize,
          sequences: this.slotCount,
          threads: this.threads,
          ...(this.init.flashAttention === undefined ? {} : { flashAttention: this.init.flashAttention }),
          ...(this.init.kvCacheType === 'f32' ? { experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' } : {})
        })
      } catch (err) {
        throw new ModelLoadError(`cannot load model ${basename(modelPath)}: ${(err as Error).message}`, {
          cause: err,
          hint: this.nativeLog.length > 0 ? `llama.cpp said: ${this.nativeLog.slice(-5).join(' | ')}` : 'is it a valid GGUF file?'
        })
      }
      const id = await hashed
      const chatWrapper = this.resolveChatWrapper(model)
      const { stopTokens, chatStopStrings } = this.chatStops(model, chatWrapper)
      const info: ModelRuntimeInfo = {
        id,
        name: this.init.name ?? this.ggufName(model) ?? basename(modelPath).replace(/\.gguf$/i, ''),
        contextSize: context.contextSize,
        trainContextSize: model.trainContextSize,
        gpu: llama.gpu,
        gpuLayers: model.gpuLayers
      }
      this.slots = Array.from({ length: this.slotCount }, (_, index) => ({ index, sequence: context!.getSequence() }))
      this.free = this.slots.slice()
      const native = this.init.forcePublicDecoder === true ? undefined : nativeAccess(model, context, this.slots[0]!.sequence)
      if (native === undefined && this.init.forcePublicDecoder !== true) {
        this.log.warn('node-llama-cpp internals for the native decoder are missing: decoding with evaluate(), no logprobs recorded')
      }
      this.loaded = { llama, model, context, chatWrapper, info, vocabSize: this.vocabSize(model), native, stopTokens, chatStopStrings }
      this.current = 'started'
      this.log.info('model loaded', {
        modelId: id,
        name: info.name,
        contextSize: info.contextSize,
        trainContextSize: info.trainContextSize,
        gpu: info.gpu,
        gpuLayers: info.gpuLayers,
        slots: this.slotCount,
        threads: this.threads,
        flashAttention: context.flashAttention,
        kvCacheType: this.init.kvCacheType ?? 'f16',
        recordLogprobs: this.recordTopK !== undefined && native !== undefined,
        chatWrapper: chatWrapper.wrapperName,
        loadMs: Math.round(performance.now() - startedAt)
      })
      this.changed()
    } catch (err) {
      hashAbort.abort()
      this.current = 'stopped'
      this.slots = []
      this.free = []
      await context?.dispose().catch(() => {})
      await model?.dispose().catch(() => {})
      await llama?.dispose().catch(() => {})
      throw err
    }
  }

  private async unload(): Promise<void> {
    this.current = 'stopping'
    for (const waiter of this.waiters.splice(0)) {
      waiter.signal.removeEventListener('abort', waiter.onAbort)
      waiter.reject(new AbortedError('model runtime stopped'))
    }
    for (const controller of this.controllers) controller.abort(new AbortedError('model runtime stopped'))
    await Promise.allSettled([...this.tasks])
    const loaded = this.loaded
    this.loaded = undefined
    this.grammars.clear()
    this.slots = []
    this.free = []
    if (loaded !== undefined) {
      await loaded.context.dispose().catch(err => this.log.warn('context dispose failed', { err }))
      await loaded.model.dispose().catch(err => this.log.warn('model dispose failed', { err }))
      await loaded.llama.dispose().catch(err => this.log.warn('llama dispose failed', { err }))
      this.log.info('model unloaded', { modelId: loaded.info.id })
    }
    this.current = 'stopped'
    this.changed()
  }

  private onNativeLog(level: LlamaLogLevel, message: string): void {
    // Kept for ModelLoadError hints; llama.cpp does not log prompt text at warn level.
    this.nativeLog.push(message.trim())
    if (this.nativeLog.length > NATIVE_LOG_LINES) this.nativeLog.shift()
    if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) this.log.warn('llama.cpp error', { native: message.trim() })
    else this.log.debug('llama.cpp', { native: message.trim() })
  }

  private vocabSize(model: LlamaModel): number | undefined {
    const metadata = model.fileInfo.metadata as unknown as Record<string, unknown> | undefined
    const tokens = (metadata?.tokenizer as { ggml?: { tokens?: unknown } } | undefined)?.ggml?.tokens
    if (Array.isArray(tokens) && tokens.length > 0) return tokens.length
    const arch = (metadata?.general as { architecture?: unknown } | undefined)?.architecture
    const size = typeof arch === 'string' ? (metadata?.[arch] as { vocab_size?: unknown } | undefined)?.vocab_size : undefined
    return typeof size === 'number' && Number.isSafeInteger(size) && size > 0 ? size : undefined
  }

  private checkTokens(loaded: Loaded, tokens: readonly number[], what: string): void {
    if (!Array.isArray(tokens)) throw new InvalidInputError(`${what} must be an array of token ids`)
    const limit = loaded.vocabSize ?? 0x7fff_ffff
    for (const token of tokens) {
      if (!Number.isSafeInteger(token) || token < 0 || token >= limit)
        throw new InvalidInputError(`${what}: ${token} is not a token id of this model`)
    }
  }

  private ggufName(model: LlamaModel): string | undefined {
    const name = model.fileInfo.metadata?.general?.name
    return typeof name === 'string' && name.trim() !== '' ? name.trim() : undefined
  }

  /** The model's own template when the GGUF has one; otherwise a plain, predictable format. */
  private resolveChatWrapper(model: LlamaModel): ChatWrapper {
    const template = (model.fileInfo.metadata?.tokenizer as { chat_template?: unknown } | undefined)?.chat_template
    if (typeof template === 'string' && template.trim() !== '') {
      return resolveChatWrapper(model, { warningLogs: false })
    }
    return new GeneralChatWrapper()
  }

  private chatStops(model: LlamaModel, wrapper: ChatWrapper): { stopTokens: Set<number>; chatStopStrings: string[] } {
    const stopTokens = new Set<number>()
    const chatStopStrings: string[] = []
    let triggers: LlamaText[] = []
    try {
      const sample: ChatHistoryItem[] = [
        { type: 'user', text: 'hi' },
        { type: 'model', response: [] }
      ]
      triggers = wrapper.generateContextState({ chatHistory: sample }).stopGenerationTriggers
    } catch (err) {
      // EOG tokens still end a turn; only the wrapper's extra triggers are lost.
      this.log.warn('chat wrapper gave no stop triggers', { chatWrapper: wrapper.wrapperName, err })
    }
    for (const trigger of triggers) this.addTrigger(model, trigger, stopTokens, chatStopStrings)
    return { stopTokens, chatStopStrings }
  }

  private addTrigger(model: LlamaModel, trigger: LlamaText, stopTokens: Set<number>, stopStrings: string[]): void {
    if (trigger.values.every(value => typeof value === 'string')) {
      const text = trigger.values.join('')
      if (text !== '' && !stopStrings.includes(text)) stopStrings.push(text)
      return
    }
    const tokens = trigger.tokenize(model.tokenizer)
    // Special tokens render as '' in output text, so only a single-token trigger can be matched.
    if (tokens.length === 1) stopTokens.add(tokens[0]!)
    else this.log.debug('chat stop trigger ignored', { tokens: tokens.length })
  }

  private requireLoaded(): Loaded {
    if (this.current !== 'started' || this.loaded === undefined) {
      throw new NotStartedError(`model runtime is ${this.current}`, { hint: 'call start() first' })
    }
    return this.loaded
  }

  // -------------------------------------------------------------------------------------------
  // tasks

  private render(loaded: Loaded, input: InferenceInput): { tokens: Token[]; stopStrings: string[] } {
    const { model } = loaded
    if (input.kind === 'prompt') {
      // Player text is never parsed for control tokens (specialTokens false).
      const bos = model.tokens.shouldPrependBosToken ? model.tokens.bos : null
      const body = model.tokenize(input.prompt, false)
      return { tokens: bos == null ? body : [bos, ...body], stopStrings: [] }
    }
    let contextText: LlamaText
    try {
      contextText = loaded.chatWrapper.generateContextState({ chatHistory: toChatHistory(input.messages) }).contextText
    } catch (err) {
      // Jinja templates may raise on conversations they do not accept (e.g. roles out of order).
      throw new InvalidInputError(`the model's chat template rejected the messages: ${(err as Error)?.message ?? String(err)}`, {
        cause: err
      })
    }
    return { tokens: contextText.tokenize(model.tokenizer), stopStrings: loaded.chatStopStrings }
  }

  private async prepare(loaded: Loaded, input: InferenceInput, params: GenerationParams): Promise<PreparedTask> {
    const { maxTokens: requested, temperature = 1, topP = 1, seed, stop = [], jsonSchema } = params
    if (!Number.isSafeInteger(requested) || requested < 1) {
      throw new InvalidGenerationParamsError(`maxTokens must be a positive integer, got ${requested}`)
    }
    if (!Number.isFinite(temperature) || temperature < 0)
      throw new InvalidGenerationParamsError(`temperature must be >= 0, got ${temperature}`)
    if (!Number.isFinite(topP) || topP <= 0 || topP > 1) throw new InvalidGenerationParamsError(`topP must be in (0, 1], got ${topP}`)
    if (seed !== undefined && (!Number.isSafeInteger(seed) || seed < 0)) {
      throw new InvalidGenerationParamsError(`seed must be a non-negative integer, got ${seed}`)
    }
    if (stop.length > REQUEST_LIMITS.maxStopStrings) {
      throw new InvalidGenerationParamsError(`at most ${REQUEST_LIMITS.maxStopStrings} stop strings, got ${stop.length}`)
    }
    for (const s of stop) {
      if (typeof s !== 'string' || s.length === 0 || s.length > REQUEST_LIMITS.maxStopChars) {
        throw new InvalidGenerationParamsError(`stop strings must be 1..${REQUEST_LIMITS.maxStopChars} characters`)
      }
    }
    const maxTokens = Math.min(requested, this.maxOutputTokens)
    const rendered = this.render(loaded, input)
    const promptTokens = rendered.tokens.length
    const contextLimit = loaded.info.contextSize - maxTokens
    if (this.maxPromptTokens !== undefined && promptTokens > this.maxPromptTokens) {
      throw new PromptTooLongError(promptTokens, this.maxPromptTokens)
    }
    if (promptTokens === 0) throw new InvalidInputError('the prompt is empty')
    if (promptTokens > contextLimit) {
      throw new PromptTooLongError(promptTokens, Math.max(0, contextLimit), {
        hint: `the context holds ${loaded.info.contextSize} tokens, prompt and maxTokens (${maxTokens}) together`
      })
    }
    const grammar = jsonSchema === undefined ? undefined : await this.grammarFor(loaded, jsonSchema)
    const stopStrings = [...new Set([...stop, ...rendered.stopStrings, ...(grammar?.stopGenerationTriggers ?? []).flatMap(textTrigger)])]
    return {
      promptTokens: rendered.tokens,
      maxTokens,
      temperature,
      topP,
      // llama.cpp seeds are 32-bit; unseeded tasks get a random one (not llama.cpp's current second).
      seed: seed === undefined ? randomInt(0x1_0000_0000) : seed % 0x1_0000_0000,
      stopStrings,
      grammar
    }
  }

  private async grammarFor(loaded: Loaded, jsonSchema: string): Promise<LlamaGrammar> {
    const cached = this.grammars.get(jsonSchema)
    if (cached !== undefined) {
      this.grammars.delete(jsonSchema)
      this.grammars.set(jsonSchema, cached)
      return cached
    }
    if (jsonSchema.length > REQUEST_LIMITS.maxJsonSchemaChars) {
      throw new InvalidJsonSchemaError(`jsonSchema is ${jsonSchema.length} characters, limit ${REQUEST_LIMITS.maxJsonSchemaChars}`)
    }
    let schema: unknown
    try {
      schema = JSON.parse(jsonSchema)
    } catch (err) {
      throw new InvalidJsonSchemaError('jsonSchema is not valid JSON', { cause: err })
    }
    checkSchema(schema, '$', 0)
    let grammar: LlamaGrammar
    try {
      grammar = await loaded.llama.createGrammarForJsonSchema(schema as Parameters<Llama['createGrammarForJsonSchema']>[0])
    } catch (err) {
      throw new InvalidJsonSchemaError(`unsupported jsonSchema: ${(err as Error).message}`, {
        cause: err,
        hint: 'use the JSON schema subset node-llama-cpp supports (type, properties, items, enum, const, oneOf, $defs/$ref)'
      })
    }
    this.grammars.set(jsonSchema, grammar)
    if (this.grammars.size > GRAMMAR_CACHE_SIZE) this.grammars.delete(this.grammars.keys().next().value!)
    return grammar
  }

  private acquire(signal: AbortSignal): Promise<Slot> {
    this.requireLoaded()
    if (signal.aborted) return Promise.reject(new AbortedError('generation aborted', { cause: signal.reason }))
    const slot = this.waiters.length === 0 ? this.free.shift() : undefined
    if (slot !== undefined) {
      this.changed()
      return Promise.resolve(slot)
    }
    if (this.waiters.length >= this.maxQueue) {
      return Promise.reject(
        new QueueFullError(`all ${this.slots.length} slots busy and ${this.waiters.length} tasks queued`, {
          hint: 'send the task to another supplier or retry later'
        })
      )
    }
    return new Promise<Slot>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const at = this.waiters.indexOf(waiter)
          if (at >= 0) this.waiters.splice(at, 1)
          reject(new AbortedError('generation aborted while queued', { cause: signal.reason }))
          this.changed()
        }
      }
      signal.addEventListener('abort', waiter.onAbort, { once: true })
      this.waiters.push(waiter)
      this.changed()
    })
  }

  /** Hands the slot to the oldest waiter, else back to the free list. */
  private release(slot: Slot): void {
    if (!this.slots.includes(slot)) return
    const waiter = this.current === 'started' ? this.waiters.shift() : undefined
    if (waiter !== undefined) {
      waiter.signal.removeEventListener('abort', waiter.onAbort)
      waiter.resolve(slot)
    } else {
      this.free.push(slot)
    }
    this.changed()
  }

  private async runTask(input: InferenceInput, params: GenerationParams, signal: AbortSignal, stream: ChunkStream): Promise<void> {
    let slot: Slot | undefined
    try {
      const loaded = this.requireLoaded()
      const task = await this.prepare(loaded, input, params)
      slot = await this.acquire(signal)
      await this.generateOn(loaded, slot, task, signal, stream)
      stream.end()
    } catch (err) {
      stream.end(
        err instanceof GcnError ? err : new GenerationError(`generation failed: ${(err as Error)?.message ?? String(err)}`, { cause: err })
      )
    } finally {
      if (slot !== undefined) {
        this.completed++
        this.release(slot)
      }
    }
  }

  private async generateOn(loaded: Loaded, slot: Slot, task: PreparedTask, signal: AbortSignal, stream: ChunkStream): Promise<void> {
    const { model } = loaded
    const { sequence } = slot
    const acquiredAt = performance.now()
    const assembler = new OutputAssembler(model, task.promptTokens, task.stopStrings)
    const aborted = new Promise<'aborted'>(resolve => {
      if (signal.aborted) resolve('aborted')
      else signal.addEventListener('abort', () => resolve('aborted'), { once: true })
    })
    const grammarState = task.grammar === undefined ? undefined : new LlamaGrammarEvaluationState({ model, grammar: task.grammar })
    const source: TokenSource =
      loaded.native === undefined
        ? new PublicDecoder(sequence, task, grammarState)
        : new NativeDecoder(loaded.native.sequence(sequence), loaded.native, task, grammarState, this.recordTopK)
    /** Logprobs of tokens given to the assembler and not yet emitted, in order. */
    const recorded: TokenLogprob[] = []
    const emit = (chunk: GenerationTokenChunk | undefined): void => {
      if (chunk === undefined) return
      if (recorded.length > 0) {
        const logprobs = recorded.splice(0, chunk.tokenIds.length)
        if (logprobs.length !== chunk.tokenIds.length || logprobs.some((lp, i) => lp.token !== chunk.tokenIds[i])) {
          throw new Error('recorded logprobs do not match the emitted tokens')
        }
        chunk.logprobs = logprobs
      }
      stream.push(chunk)
    }
    let inFlight: Promise<DecodeStep | undefined> | undefined
    let firstHandedOff = false
    let finishReason: FinishReason = 'stop'
    let sampled = 0
    let received = 0
    let firstAt = 0
    let lastAt = 0
    try {
      while (true) {
        const next = source.next()
        inFlight = next
        // Lost to an abort, it settles later: never leave it as an unhandled rejection.
        next.catch(() => {})
        const step = await Promise.race([next, aborted])
        if (step === 'aborted') {
          finishReason = 'aborted'
          break
        }
        inFlight = undefined
        if (step === undefined) break
        const { token } = step
        lastAt = performance.now()
        if (received++ === 0) firstAt = lastAt
        if (model.isEogToken(token) || loaded.stopTokens.has(token)) break
        sampled++
        if (step.logprob !== undefined) recorded.push(step.logprob)
        const { chunk, stopped } = assembler.add(token)
        emit(chunk)
        if (stopped) break
        // The first text goes out before the model takes the CPU again: decoding the next token
        // while the consumer sends this one made them compete (at most FIRST_TOKEN_HANDOFF_MS).
        if (chunk !== undefined && !firstHandedOff) {
          firstHandedOff = true
          let timer: ReturnType<typeof setTimeout> | undefined
          await Promise.race([stream.drained(), aborted, new Promise(resolve => (timer = setTimeout(resolve, FIRST_TOKEN_HANDOFF_MS)))])
          clearTimeout(timer)
        }
        if (sampled >= task.maxTokens) {
          finishReason = 'length'
          break
        }
      }
      emit(assembler.flush())
      stream.push({
        type: 'done',
        finishReason,
        usage: { promptTokens: task.promptTokens.length, completionTokens: assembler.emitted.length }
      })
      // End the stream before the cleanup below: the consumer should not wait for it.
      stream.end()
    } finally {
      // Waits for an in-flight decode step, then wipes the sequence so the next task starts clean.
      await inFlight?.catch(() => {})
      await source.close().catch(err => this.log.warn('closing the decoder failed', { slot: slot.index, err }))
      await sequence.clearHistory().catch(err => this.log.warn('clearing sequence failed', { slot: slot.index, err }))
      this.record(acquiredAt, firstAt, lastAt, received)
      this.log.debug('task finished', {
        slot: slot.index,
        finishReason,
        promptTokens: task.promptTokens.length,
        completionTokens: assembler.emitted.length
      })
    }
  }

  private record(acquiredAt: number, firstAt: number, lastAt: number, received: number): void {
    const ewma = (previous: number, sample: number): number => (previous === 0 ? sample : previous + EWMA_ALPHA * (sample - previous))
    if (received > 0) this.ttftMs = ewma(this.ttftMs, firstAt - acquiredAt)
    if (received >= 2 && lastAt > firstAt) this.tokensPerSecond = ewma(this.tokensPerSecond, ((received - 1) * 1000) / (lastAt - firstAt))
  }

  private changed(): void {
    if (this.notifyQueued || this.listeners.size === 0) return
    this.notifyQueued = true
    queueMicrotask(() => {
      this.notifyQueued = false
      const stats = this.stats()
      for (const listener of this.listeners) {
        try {
          listener(stats)
        } catch (err) {
          this.log.warn('change listener threw', { err })
        }
      }
    })
  }
}

const SCHEMA_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'null', 'object', 'array'])
const MAX_SCHEMA_DEPTH = 32

/**
 * Structural check of the schema subset the grammar builder understands. node-llama-cpp turns
 * what it does not recognise (e.g. an unknown `type`) into a `null` rule silently, which would
 * produce valid JSON that matches nothing the caller asked for.
 */
function checkSchema(schema: unknown, at: string, depth: number): void {
  const fail = (why: string): never => {
    throw new InvalidJsonSchemaError(`jsonSchema ${at}: ${why}`, {
      hint: 'use the subset node-llama-cpp supports: type, properties, items, enum, const, oneOf, $defs/$ref'
    })
  }
  if (depth > MAX_SCHEMA_DEPTH) fail(`nested deeper than ${MAX_SCHEMA_DEPTH}`)
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) fail('must be an object')
  const node = schema as Record<string, unknown>
  if (node.type !== undefined) {
    const types = Array.isArray(node.type) ? node.type : [node.type]
    if (types.length === 0 || types.some(t => typeof t !== 'string' || !SCHEMA_TYPES.has(t))) fail('unsupported type')
  } else if (node.enum === undefined && node.const === undefined && node.oneOf === undefined && node.$ref === undefined) {
    fail('needs type, enum, const, oneOf or $ref')
  }
  if (node.anyOf !== undefined || node.allOf !== undefined) fail('anyOf/allOf are not supported (oneOf is)')
  if (node.enum !== undefined && (!Array.isArray(node.enum) || node.enum.length === 0)) fail('enum must be a non-empty array')
  if (node.oneOf !== undefined) {
    if (!Array.isArray(node.oneOf) || node.oneOf.length === 0) fail('oneOf must be a non-empty array')
    for (const [i, item] of (node.oneOf as unknown[]).entries()) checkSchema(item, `${at}.oneOf[${i}]`, depth + 1)
  }
  for (const key of ['properties', '$defs'] as const) {
    const map = node[key]
    if (map === undefined) continue
    if (typeof map !== 'object' || map === null || Array.isArray(map)) fail(`${key} must be an object`)
    for (const [name, item] of Object.entries(map as object)) checkSchema(item, `${at}.${key}.${name}`, depth + 1)
  }
  if (node.items !== undefined) checkSchema(node.items, `${at}.items`, depth + 1)
  if (node.additionalProperties !== undefined && typeof node.additionalProperties !== 'boolean') {
    checkSchema(node.additionalProperties, `${at}.additionalProperties`, depth + 1)
  }
}

/** The text of a grammar stop trigger made of plain text only (others cannot match output text). */
function textTrigger(trigger: LlamaText | string | readonly (string | Token)[]): string[] {
  const values: readonly unknown[] =
    typeof trigger === 'string' ? [trigger] : Array.isArray(trigger) ? trigger : (trigger as LlamaText).values
  return values.every(value => typeof value === 'string') ? [values.join('')] : []
}

export function createModelRuntime(init: ModelRuntimeInit, components: ModelRuntimeComponents): ModelRuntime {
  return new DefaultModelRuntime(init, components)
}
