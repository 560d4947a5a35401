import { createHash } from 'node:crypto'
import {
  AbortedError,
  GcnError,
  type GcnNode,
  type InferenceDone,
  type InferenceEvent,
  type InferenceRequest,
  type Logger,
  type ModelInfo,
  type ProofVerdictName,
  type Usage
} from '@gcn/core'
import type { InferenceBackend } from './backend.js'
import type { SupplierDirectory, SupplierEntry } from './directory.js'
import { InvalidRequestError, NoSupplierError, PromptTooLongError, TaskFailedError, UnknownModelError } from './errors.js'
import type { ProofReferee, RescoreJob, VerdictEvent } from './referee.js'
import { runTask, type TaskDone } from './task-client.js'
import { TaskKits } from './task-kits.js'
import { TASK_STREAMS_DEFAULTS, TaskStreams } from './task-streams.js'

/** Supplier refusals that are the request's fault: the client gets a 400, not a retry elsewhere. */
function clientErrorFor(err: TaskFailedError): GcnError | undefined {
  switch (err.supplierCode) {
    case 'ERR_PROMPT_TOO_LONG':
      return new PromptTooLongError('prompt and max_tokens do not fit in the model context', { cause: err })
    case 'ERR_INVALID_JSON_SCHEMA':
      return new InvalidRequestError('response_format JSON schema is not supported by the model runtime', {
        param: 'response_format',
        cause: err
      })
    case 'ERR_INVALID_GENERATION_PARAMS':
    case 'ERR_INVALID_INPUT':
      return new InvalidRequestError(err.message.replace(/^supplier error \S+: /, ''), { cause: err })
    default:
      return undefined
  }
}

/** Quality checks beyond the proof: a wrong finish reason for the length, or output breaking a requested JSON schema. */
function qualityProblem(request: InferenceRequest, done: InferenceDone, text: string): string | undefined {
  const { completionTokens } = done.usage
  if (done.finishReason === 'length' && completionTokens < request.params.maxTokens) {
    return `finish_reason length after ${completionTokens} of ${request.params.maxTokens} tokens (truncated output)`
  }
  if (done.finishReason === 'stop' && completionTokens > request.params.maxTokens) {
    return `${completionTokens} tokens for max_tokens ${request.params.maxTokens}`
  }
  if (request.params.jsonSchema !== undefined && done.finishReason === 'stop') {
    try {
      JSON.parse(text)
    } catch {
      return 'output is not the JSON the request asked for'
    }
  }
  return undefined
}

/** A task that finished and was delivered: everything its receipt needs, once its proof verdict is known. */
export interface CompletedTask {
  taskId: Uint8Array
  gameId: string
  supplier: string
  modelId: string
  usage: Usage
  pricePer1kTokens: bigint
  /** sha256 of the request input (the prompt never leaves the distributor). */
  promptHash: Uint8Array
  /** sha256 of the output token ids (uint32 little-endian). */
  outputHash: Uint8Array
  verdict: ProofVerdictName
  /** When the last chunk arrived (unix ms): decides the receipt's block. */
  completedAtMs: number
  /** Time to first token of the attempt that served it, as measured here (ms). */
  ttftMs: number
}

function promptHash(request: InferenceRequest): Uint8Array {
  return createHash('sha256').update(JSON.stringify(request.input)).digest()
}

function outputHash(tokenIds: readonly number[]): Uint8Array {
  const ids = Uint32Array.from(tokenIds)
  // Uint32Array uses the platform's byte order; every platform Node supports is little-endian.
  return createHash('sha256').update(new Uint8Array(ids.buffer)).digest()
}

export interface RouterInit {
  /** Attempts per request across different suppliers. */
  maxAttempts?: number
  /** With no first token by then, the attempt is abandoned and another supplier tried. */
  firstTokenTimeoutMs?: number
  /** Whole-task deadline sent to the supplier. */
  taskTimeoutMs?: number
  /** Tasks we put on one supplier beyond its advertised slots (they wait in its queue). */
  maxQueuedPerSupplier?: number
  /** Sessions remembered for supplier affinity. */
  maxSessions?: number
  /** Latency assumed for a supplier we have not measured and that advertises none. */
  defaultTtftMs?: number
  /** Share of tasks re-scored by the referee once a supplier is established. */
  proofSampleRate?: number
  /** Every task is re-scored until a supplier has this many verified ones (and again after a failure). */
  checkAllUntilVerified?: number
  /** Time the referee has to re-score one answer. */
  checkTimeoutMs?: number
  /** A spare task stream to a supplier is used within this long of opening; 0 dials a stream per task (see TaskStreams). */
  spareStreamTtlMs?: number
}

export const ROUTER_DEFAULTS = Object.freeze({
  maxAttempts: 3,
  firstTokenTimeoutMs: 10_000,
  taskTimeoutMs: 120_000,
  maxQueuedPerSupplier: 4,
  maxSessions: 10_000,
  defaultTtftMs: 50,
  proofSampleRate: 0.1,
  checkAllUntilVerified: 20,
  checkTimeoutMs: 60_000,
  spareStreamTtlMs: TASK_STREAMS_DEFAULTS.spareTtlMs
})

export interface RouterComponents {
  node: GcnNode
  directory: SupplierDirectory
  logger: Logger
  /** Randomness for selection and proof sampling (tests pass a seeded one). */
  random?: () => number
  /** Re-scores sampled outputs with a reference model; without one, verdicts stay 'unchecked'. */
  referee?: ProofReferee
}

/**
 * Picks suppliers and runs tasks with failover; the real InferenceBackend.
 *
 * Selection is "power of two choices" (Mitzenmacher, IEEE TPDS 2001): sample
 * two eligible suppliers at random and take the cheaper, which avoids the herd
 * behaviour of always picking the global best from slightly stale data. The
 * cost is Finagle's peak-EWMA load metric: measured latency (our own EWMA of
 * time to first token, falling back to the advertised figure) times
 * (outstanding tasks + 1), plus the supplier's advertised queue.
 */
export class TaskRouter implements InferenceBackend {
  private readonly init: Required<RouterInit>
  private readonly log: Logger
  private readonly random: () => number
  private readonly streams?: TaskStreams
  /** Each supplier's next task kit (ids, secrets, request box key), made ahead. */
  private readonly kits = new TaskKits()
  /** sessionId → supplier peer id, in insertion order for LRU eviction. */
  private readonly sessions = new Map<string, string>()
  /** Counters for metrics and the dashboard. */
  readonly counters = { tasks: 0, failovers: 0, failures: 0, verified: 0, proofFailures: 0, rejectedAnswers: 0, emptyRetries: 0 }
  private readonly verdictListeners = new Set<(event: VerdictEvent) => void>()
  private readonly completedListeners = new Set<(task: CompletedTask) => void>()
  private readonly pendingChecks = new Set<Promise<void>>()

  constructor(
    init: RouterInit,
    private readonly components: RouterComponents
  ) {
    this.init = { ...ROUTER_DEFAULTS, ...init }
    this.log = components.logger.child('router')
    this.random = components.random ?? Math.random
    if (this.init.spareStreamTtlMs > 0) {
      this.streams = new TaskStreams({ spareTtlMs: this.init.spareStreamTtlMs }, { node: components.node, logger: components.logger })
    }
  }

  /** Task streams opened and spares used, expired or announced; undefined when each task dials its own stream. */
  get streamStats(): Readonly<TaskStreams['stats']> | undefined {
    return this.streams?.stats
  }

  /** Drops the spare task streams and wipes the ready task kits (the node closes everything else). */
  stop(): void {
    this.streams?.stop()
    this.kits.stop()
  }

  /** Called for every proof verdict (re-scoring and always-on failures). */
  onVerdict(listener: (event: VerdictEvent) => void): () => void {
    this.verdictListeners.add(listener)
    return () => this.verdictListeners.delete(listener)
  }

  /** Called once per delivered task, after its re-scoring if it was sampled (receipts). */
  onCompleted(listener: (task: CompletedTask) => void): () => void {
    this.completedListeners.add(listener)
    return () => this.completedListeners.delete(listener)
  }

  private completed(task: CompletedTask): void {
    for (const l of this.completedListeners) {
      try {
        l(task)
      } catch (err) {
        this.log.error('completed-task listener failed', { err })
      }
    }
  }

  /** Resolves when every re-scoring started so far has finished (shutdown, tests). */
  async settled(): Promise<void> {
    while (this.pendingChecks.size > 0) await Promise.all([...this.pendingChecks])
  }

  private verdict(peer: string, taskId: Uint8Array, ok: boolean, reason?: string): void {
    if (ok) this.counters.verified++
    else this.counters.proofFailures++
    const banned = this.components.directory.recordProof(peer, ok)
    const event: VerdictEvent = {
      supplier: peer,
      taskId,
      verdict: ok ? 'verified' : 'failed',
      banned,
      ...(reason === undefined ? {} : { reason })
    }
    if (!ok) this.log.warn('proof check failed', { peer, reason, banned })
    for (const l of this.verdictListeners) l(event)
  }

  private shouldCheck(entry: SupplierEntry, modelId: string): boolean {
    const referee = this.components.referee
    if (referee === undefined || !referee.serves(modelId)) return false
    // New or recently failing suppliers are checked every time.
    if (entry.verified < this.init.checkAllUntilVerified || entry.proofFailures > 0) return true
    return this.random() < this.init.proofSampleRate
  }

  private checkInput(request: InferenceRequest, done: TaskDone): RescoreJob {
    return {
      modelId: done.modelId,
      input: request.input,
      params: request.params,
      outputTokenIds: done.proof.outputTokenIds,
      records: done.proof.records
    }
  }

  /** Re-scores a delivered answer in the background; its receipt waits for the verdict. */
  private startCheck(entry: SupplierEntry, request: InferenceRequest, done: TaskDone, task: CompletedTask): void {
    const referee = this.components.referee!
    const peer = entry.peerId.toString()
    const job = referee
      .check(this.checkInput(request, done), { signal: AbortSignal.timeout(this.init.checkTimeoutMs) })
      .then(
        result => {
          this.verdict(peer, done.proof.taskId, result.ok, result.reason)
          this.completed({ ...task, verdict: result.ok ? 'verified' : 'failed' })
        },
        err => {
          this.log.warn('re-scoring could not run', { peer, err })
          this.completed(task)
        }
      )
      .finally(() => this.pendingChecks.delete(job))
    this.pendingChecks.add(job)
  }

  /**
   * Re-scores a held answer before it is delivered: true verified, false failed,
   * undefined when the referee could not run (the answer is then delivered unchecked).
   */
  private async checkHeld(
    entry: SupplierEntry,
    request: InferenceRequest,
    done: TaskDone,
    task: CompletedTask,
    clientSignal: AbortSignal
  ): Promise<boolean | undefined> {
    const peer = entry.peerId.toString()
    try {
      const result = await this.components.referee!.check(this.checkInput(request, done), {
        signal: AbortSignal.any([clientSignal, AbortSignal.timeout(this.init.checkTimeoutMs)])
      })
      this.verdict(peer, done.proof.taskId, result.ok, result.reason)
      this.completed({ ...task, verdict: result.ok ? 'verified' : 'failed' })
      return result.ok
    } catch (err) {
      this.completed(task)
      if (clientSignal.aborted) throw new AbortedError('request aborted', { cause: clientSignal.reason })
      this.log.warn('re-scoring could not run', { peer, err })
      return undefined
    }
  }

  listModels(): ModelInfo[] {
    return this.components.directory.models()
  }

  private async resolveModel(model: string, signal: AbortSignal): Promise<ModelInfo> {
    const find = (): ModelInfo | undefined => this.listModels().find(m => m.id === model || m.name === model)
    let found = find()
    if (found === undefined && /^[0-9a-f]{64}$/.test(model)) {
      await this.components.directory.discover(model, { signal: AbortSignal.any([signal, AbortSignal.timeout(3_000)]) })
      found = find()
    }
    if (found === undefined)
      throw new UnknownModelError(`model ${JSON.stringify(model)} is not served by any known supplier`, {
        hint: 'GET /v1/models lists the models on offer'
      })
    return found
  }

  private cost(entry: SupplierEntry): number {
    const latency = entry.ewmaTtftMs ?? (entry.advert.ttftMs > 0 ? entry.advert.ttftMs : this.init.defaultTtftMs)
    const slots = this.components.directory.slotsOf(entry)
    const queued = entry.advert.queueDepth / slots
    // A failing supplier costs more until it proves itself again.
    const failurePenalty = 1 + entry.failures / (entry.successes + entry.failures + 1)
    return latency * (entry.outstanding + 1 + queued) * failurePenalty
  }

  private eligible(entry: SupplierEntry): boolean {
    const { directory } = this.components
    // A supplier that recently refused work for lack of room gets nothing queued beyond its believed slots.
    const queue = directory.refusedRecently(entry) ? 0 : this.init.maxQueuedPerSupplier
    return entry.outstanding < directory.slotsOf(entry) + queue
  }

  /** Chooses a supplier for `modelId`, skipping `exclude`; undefined when none can take it. */
  select(modelId: string, sessionId: string | undefined, exclude: ReadonlySet<string>): SupplierEntry | undefined {
    const candidates = this.components.directory.suppliers(modelId).filter(e => !exclude.has(e.peerId.toString()) && this.eligible(e))
    if (candidates.length === 0) return undefined
    if (sessionId !== undefined) {
      const pinned = candidates.find(e => e.peerId.toString() === this.sessions.get(sessionId))
      // Load guard: stay for prompt-cache reuse only while it has a free slot.
      if (pinned !== undefined && pinned.outstanding < this.components.directory.slotsOf(pinned)) return pinned
    }
    if (candidates.length === 1) return candidates[0]
    const i = Math.floor(this.random() * candidates.length)
    let j = Math.floor(this.random() * (candidates.length - 1))
    if (j >= i) j++
    const a = candidates[i]!
    const b = candidates[j]!
    return this.cost(a) <= this.cost(b) ? a : b
  }

  private remember(sessionId: string | undefined, peerId: string): void {
    if (sessionId === undefined || sessionId === '') return
    this.sessions.delete(sessionId)
    this.sessions.set(sessionId, peerId)
    if (this.sessions.size > this.init.maxSessions) this.sessions.delete(this.sessions.keys().next().value!)
  }

  /**
   * Runs `request` on a supplier, failing over to others (bounded by maxAttempts)
   * while nothing has reached the caller. With `whole` (the caller delivers the
   * answer only once it is complete, e.g. a non-streaming request) the output is
   * held back until the always-on quality checks, and the re-scoring when the
   * task is sampled, have passed; an answer that fails them is not delivered but
   * re-run on another supplier. An empty answer (EOS first) is re-run once
   * elsewhere in either mode (nothing was sent yet); a second empty answer is
   * taken as the model's.
   */
  async *stream(
    request: InferenceRequest,
    options: { signal?: AbortSignal; whole?: boolean } = {}
  ): AsyncGenerator<InferenceEvent, void, undefined> {
    const clientSignal = options.signal ?? new AbortController().signal
    const whole = options.whole === true
    const model = await this.resolveModel(request.model, clientSignal)
    const tried = new Set<string>()
    let lastError: unknown
    let emptyAnswers = 0
    this.counters.tasks++
    for (let attempt = 0; attempt < this.init.maxAttempts; attempt++) {
      if (clientSignal.aborted) throw new AbortedError('request aborted', { cause: clientSignal.reason })
      const supplier = this.select(model.id, request.sessionId, tried)
      if (supplier === undefined) break
      const peer = supplier.peerId.toString()
      tried.add(peer)
      if (attempt > 0) this.counters.failovers++
      const attemptController = new AbortController()
      const signal = AbortSignal.any([clientSignal, attemptController.signal])
      const firstTokenTimer = setTimeout(
        () => attemptController.abort(new GcnError(`no first token within ${this.init.firstTokenTimeoutMs} ms`)),
        this.init.firstTokenTimeoutMs
      )
      const started = performance.now()
      const wantsJson = request.params.jsonSchema !== undefined
      let text = ''
      let firstAt: number | undefined
      let tokens = 0
      /** Whether anything of this attempt reached the caller (then it cannot be restarted). */
      let yielded = false
      /** Set when this attempt's answer is refused: the next attempt runs instead. */
      let rejection: string | undefined
      const held: InferenceEvent[] = []
      supplier.outstanding++
      try {
        for await (const event of runTask(this.components.node, supplier, model.id, request, {
          signal,
          deadlineMs: Date.now() + this.init.taskTimeoutMs,
          kits: this.kits,
          ...(this.streams === undefined ? {} : { streams: this.streams })
        })) {
          if (firstAt === undefined) {
            firstAt = performance.now()
            clearTimeout(firstTokenTimer)
          }
          if (event.type === 'delta') {
            tokens += event.tokenIds.length
            if (wantsJson) text += event.text
            if (whole) held.push(event)
            else {
              yielded = true
              yield event
            }
            continue
          }
          const done = event as TaskDone
          // A task the supplier cut short (its deadline) or failed is no answer: no receipt, and another supplier may try.
          if (done.finishReason === 'aborted' || done.finishReason === 'error') {
            throw new TaskFailedError(`the supplier ended the task with finish reason '${done.finishReason}'`, { retryable: true })
          }
          done.taskId = Buffer.from(done.proof.taskId).toString('hex')
          const task: CompletedTask = {
            taskId: done.proof.taskId,
            gameId: request.gameId,
            supplier: peer,
            modelId: done.modelId,
            usage: done.usage,
            pricePer1kTokens: supplier.advert.models.find(m => m.id === done.modelId)?.pricePer1kTokens ?? model.pricePer1kTokens,
            promptHash: promptHash(request),
            outputHash: outputHash(done.proof.outputTokenIds),
            verdict: 'unchecked',
            completedAtMs: Date.now(),
            ttftMs: firstAt - started
          }
          const decodeMs = performance.now() - firstAt
          this.components.directory.recordResult(peer, {
            ok: true,
            ttftMs: firstAt - started,
            ...(tokens > 1 && decodeMs > 0 ? { tokensPerSecond: ((tokens - 1) * 1000) / decodeMs } : {})
          })
          const problem = qualityProblem(request, event, text)
          const empty = done.usage.completionTokens === 0 && done.finishReason === 'stop'
          if (problem !== undefined) {
            // Not billed and counted towards a ban. Held back: re-run elsewhere; streamed: already delivered.
            this.verdict(peer, done.proof.taskId, false, problem)
            event.verdict = 'failed'
            this.completed({ ...task, verdict: 'failed' })
            if (whole) rejection = `the answer failed a quality check (${problem})`
          } else if (empty && !yielded && emptyAnswers === 0 && attempt + 1 < this.init.maxAttempts) {
            // Possibly honest (EOS first), so no ban; not billed, and another supplier answers instead.
            emptyAnswers++
            this.counters.emptyRetries++
            this.completed({ ...task, verdict: 'failed' })
            rejection = 'empty answer'
          } else if (this.shouldCheck(supplier, model.id)) {
            if (!whole) this.startCheck(supplier, request, done, task)
            else {
              const ok = await this.checkHeld(supplier, request, done, task, clientSignal)
              if (ok === false) rejection = 'the answer failed re-scoring'
              else if (ok === true) event.verdict = 'verified'
            }
          } else this.completed(task)
          if (rejection !== undefined) break
          this.remember(request.sessionId, peer)
          yielded = true
          for (const e of held) yield e
          yield event
        }
        if (rejection === undefined) return
        this.counters.rejectedAnswers++
        lastError = new TaskFailedError(rejection, { retryable: true })
        this.log.info('answer rejected, trying another supplier', { peer, attempt, reason: rejection })
      } catch (err) {
        lastError = err
        this.components.directory.recordResult(peer, { ok: false })
        // `outstanding` still counts this task: the supplier was running the others when it refused.
        if (err instanceof TaskFailedError && err.supplierCode === 'ERR_QUEUE_FULL')
          this.components.directory.recordRefusal(peer, supplier.outstanding - 1)
        if (err instanceof TaskFailedError && err.supplierCode === 'ERR_PROOF')
          this.verdict(peer, err.taskId ?? new Uint8Array(0), false, err.message)
        if (clientSignal.aborted) throw new AbortedError('request aborted', { cause: clientSignal.reason })
        const clientError = err instanceof TaskFailedError ? clientErrorFor(err) : undefined
        if (clientError !== undefined) throw clientError
        if (err instanceof TaskFailedError && !err.retryable) throw err
        if (yielded) {
          // Text already reached the client: restarting would duplicate it.
          this.counters.failures++
          throw new TaskFailedError('the supplier failed mid-answer; retry the request', { retryable: true, cause: err })
        }
        this.log.info('attempt failed, trying another supplier', { peer, attempt, err })
      } finally {
        clearTimeout(firstTokenTimer)
        supplier.outstanding--
      }
    }
    this.counters.failures++
    if (lastError === undefined) throw new NoSupplierError(`no supplier can take model ${model.name} now`, { hint: 'retry shortly' })
    throw new TaskFailedError(`all ${tried.size} attempted suppliers failed`, { retryable: true, cause: lastError })
  }
}
