import {
  ADVERT_PROTOCOL,
  AdvertEnvelopeCodec,
  CAPACITY_TOPIC,
  type CapacityAdvert,
  CapacityAdvertCodec,
  ChunkCipher,
  createFramedStream,
  encodeProofSegment,
  WireFinishReason as FinishReason,
  type FramedStream,
  GcnError,
  type GcnNode,
  type GenerationParams,
  type InferenceInput,
  type Logger,
  modelCid,
  open as openSealed,
  type PreparedOpen,
  type ProofSegment,
  ProofWriter,
  plainBytes,
  prepareOpen,
  type SignedEnvelope,
  signEnvelope,
  TASK_PROTOCOL,
  type TaskChunk,
  TaskChunkCodec,
  TaskFrameCodec,
  TaskOpenCodec,
  type TaskRequest,
  TaskRequestCodec,
  type TokenLogprob,
  traceTaskStep,
  WIRE_VERSION
} from '@gcn/core'
import type { Connection, PrivateKey, Stream } from '@libp2p/interface'
import type { GenerationEngine } from './engine.js'

export interface SupplierInit {
  /** Price in micro-units of the payment token per 1,000 tokens. */
  pricePer1kTokens: bigint
  /** EVM address (0x + 40 hex) credited in settlement. */
  rewardAddress: string
  /** Re-advertise at least this often; changes are advertised at once (debounced). */
  advertIntervalMs?: number
  /**
   * Minimum gap between two adverts caused by changes. Default 1 s: slots change twice per task,
   * and every advert costs each distributor a signature check (and the network its gossip); at
   * 100 ms a busy supplier sent up to 10 a second, each landing on the decode of a task in flight.
   */
  advertDebounceMs?: number
  /**
   * An advert due while a task waits for its first token waits for that token, at most this long.
   * Signing and gossiping an advert (and every distributor checking its signature) took CPU from
   * the prompt's prefill: +1 to +5 ms of time to first token in the 5–12 % of tasks an advert met
   * (traced on the 2-core dev VM). Default 1 s; 0: never wait.
   */
  advertMaxWaitMs?: number
  /** How long a new task stream may take to deliver its TaskOpen frame. */
  openTimeoutMs?: number
  /** Task streams served at once (beyond the engine's slots they queue in the engine). */
  maxTaskStreams?: number
  /**
   * Tokens generated within this many ms of the last chunk sent wait and go out together with the
   * first token made after it (or, if the decoder stalls, one interval after they were due); the
   * first token always goes out at once. Every chunk costs each hop a sealed frame, a proof segment,
   * a socket write and a wake-up (the game's process included), and people read what a game shows:
   * the default, two display frames at 60 Hz (one at 30 Hz), takes ~11 ms of CPU per 64-token answer
   * off the devnet's processes against one frame, which the model gets back where it shares their
   * cores (BENCHMARKS.md, tenth session). 0: one chunk per token.
   */
  frameIntervalMs?: number
  /**
   * Fault injection for tests only: wait this long (abortable) before starting
   * each generation, so a test can kill a supplier before its first token.
   */
  testStallBeforeGenerateMs?: number
  /**
   * Test doubles only (a supplier lying about its capacity): advertise this many
   * total and free slots whatever the engine has. 0: the truth.
   */
  testAdvertisedSlots?: number
  /**
   * Test doubles only (adversarial suppliers): sees each chunk just before it
   * is sealed and sent, and may replace it, or drop it by returning undefined.
   */
  testTamperChunk?: (chunk: TaskChunk, task: { taskId: Uint8Array; index: number }) => TaskChunk | undefined
}

export const SUPPLIER_DEFAULTS = Object.freeze({
  advertIntervalMs: 2_000,
  advertDebounceMs: 1_000,
  advertMaxWaitMs: 1_000,
  openTimeoutMs: 5_000,
  maxTaskStreams: 64,
  frameIntervalMs: 33,
  testStallBeforeGenerateMs: 0,
  testAdvertisedSlots: 0,
  /** Re-provide model ids in the DHT this often. */
  provideIntervalMs: 60_000,
  /** Retry a failed provide (e.g. no DHT peers yet at start) this soon. */
  provideRetryMs: 2_000
})

export interface SupplierComponents {
  node: GcnNode
  privateKey: PrivateKey
  engine: GenerationEngine
  logger: Logger
  /** Told of every task served to the end (block confirmations to the registries). */
  confirmations?: { completed(taskId: Uint8Array): void }
}

const FINISH: Record<string, FinishReason> = {
  stop: FinishReason.STOP,
  length: FinishReason.LENGTH,
  aborted: FinishReason.ABORTED,
  error: FinishReason.ERROR
}

/** Reasons a task fails that another supplier might not hit. */
const RETRYABLE_CODES = new Set(['ERR_QUEUE_FULL', 'ERR_NOT_STARTED', 'ERR_MODEL_LOAD'])

/**
 * The supplier's network side: serves /gcn/task/1.0.0 (sealed request in,
 * sealed chunks out, generation stops the moment the stream closes), answers
 * /gcn/advert/1.0.0, gossips signed capacity adverts and provides its model
 * id in the DHT.
 */
export class Supplier {
  private readonly init: Required<Omit<SupplierInit, 'testTamperChunk'>> & Pick<SupplierInit, 'testTamperChunk'>
  private readonly log: Logger
  private advertTimer?: ReturnType<typeof setInterval>
  private provideTimer?: ReturnType<typeof setTimeout>
  private debounceTimer?: ReturnType<typeof setTimeout>
  /** Set while an advert waits for first tokens; fires when it has waited advertMaxWaitMs. */
  private advertWaitTimer?: ReturnType<typeof setTimeout>
  /** Tasks generating that have not sent their first token yet. */
  private prefilling = 0
  private unsubscribe?: () => void
  private seq = 0
  private current?: SignedEnvelope
  private readonly openStreams = new Set<Stream>()
  private started = false
  /** Completed tasks (for the operator and later for block confirmations). */
  completedTasks = 0
  /** Requests opened with a key agreed before they arrived (announced on a spare stream). */
  requestsOpenedAhead = 0

  constructor(
    init: SupplierInit,
    private readonly components: SupplierComponents
  ) {
    this.init = { ...SUPPLIER_DEFAULTS, ...init }
    this.log = components.logger.child('supplier')
  }

  get node(): GcnNode {
    return this.components.node
  }

  async start(): Promise<void> {
    const { libp2p } = this.components.node
    await libp2p.handle(TASK_PROTOCOL, (stream, connection) => this.handleTask(stream, connection), {
      maxInboundStreams: this.init.maxTaskStreams
    })
    await libp2p.handle(ADVERT_PROTOCOL, stream => this.handleAdvertQuery(stream))
    this.started = true
    this.unsubscribe = this.components.engine.onChange(() => this.scheduleAdvert())
    this.advertTimer = setInterval(() => void this.publishAdvert(), this.init.advertIntervalMs)
    await this.publishAdvert()
    void this.provide()
  }

  /**
   * Stops taking tasks (new task streams are refused, so distributors fail over before any text was sent),
   * lets the tasks in flight finish for up to `drainMs`, then aborts what is left.
   */
  async stop(options: { drainMs?: number } = {}): Promise<void> {
    this.started = false
    clearInterval(this.advertTimer)
    clearTimeout(this.provideTimer)
    clearTimeout(this.debounceTimer)
    clearTimeout(this.advertWaitTimer)
    this.unsubscribe?.()
    const { libp2p } = this.components.node
    await libp2p.unhandle(TASK_PROTOCOL)
    await libp2p.unhandle(ADVERT_PROTOCOL)
    const deadline = Date.now() + (options.drainMs ?? 0)
    if (this.openStreams.size > 0 && Date.now() < deadline) {
      this.log.info('draining tasks in flight before stopping', { tasks: this.openStreams.size, drainMs: options.drainMs })
      while (this.openStreams.size > 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
    }
    if (this.openStreams.size > 0) this.log.warn('aborting tasks still in flight', { tasks: this.openStreams.size })
    for (const stream of this.openStreams) stream.abort(new GcnError('supplier stopping'))
  }

  /** Task streams open right now (including ones stalled or queued before generating). */
  get openTaskStreams(): number {
    return this.openStreams.size
  }

  /** Tasks generating that have not sent their first token yet (adverts wait for them). */
  get tasksAwaitingFirstToken(): number {
    return this.prefilling
  }

  /** The advert as last signed (for tests and the health endpoint). */
  async currentAdvert(): Promise<SignedEnvelope> {
    return this.current ?? (await this.signAdvert())
  }

  /** One of the tasks waiting for its first token has sent it (or ended without one). */
  private firstTokenSent(): void {
    this.prefilling--
    // After the token's chunk is on its way (setImmediate): that write comes first.
    if (this.prefilling === 0 && this.advertWaitTimer !== undefined) setImmediate(() => void this.publishAdvert())
  }

  /** Provides the model id, then again every provideIntervalMs; a failure (no DHT peers yet) retries soon. */
  private async provide(): Promise<void> {
    let next: number = SUPPLIER_DEFAULTS.provideIntervalMs
    try {
      await this.components.node.libp2p.contentRouting.provide(modelCid(this.components.engine.info.id), {
        signal: AbortSignal.timeout(30_000)
      })
      this.provided = true
    } catch (err) {
      next = SUPPLIER_DEFAULTS.provideRetryMs
      this.log.debug('provide failed', { err })
    }
    if (this.started) {
      this.provideTimer = setTimeout(() => void this.provide(), next)
      this.provideTimer.unref?.()
    }
  }

  /** True once the model id was provided in the DHT at least once. */
  provided = false

  private scheduleAdvert(): void {
    if (!this.started || this.debounceTimer !== undefined) return
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined
      void this.publishAdvert()
    }, this.init.advertDebounceMs)
  }

  private async signAdvert(): Promise<SignedEnvelope> {
    const { engine, node, privateKey } = this.components
    const stats = engine.stats()
    // seq never repeats across restarts: it starts from the clock.
    this.seq = Math.max(this.seq + 1, Date.now())
    const advert: CapacityAdvert = {
      peerId: node.peerId.toString(),
      multiaddrs: node.libp2p
        .getMultiaddrs()
        .slice(0, 16)
        .map(ma => plainBytes(ma.bytes)),
      models: [
        { id: engine.info.id, name: engine.info.name, contextSize: engine.info.contextSize, pricePer1kTokens: this.init.pricePer1kTokens }
      ],
      freeSlots: this.init.testAdvertisedSlots > 0 ? this.init.testAdvertisedSlots : stats.freeSlots,
      totalSlots: this.init.testAdvertisedSlots > 0 ? this.init.testAdvertisedSlots : stats.totalSlots,
      queueDepth: stats.queueDepth,
      tokensPerSecond: stats.tokensPerSecond,
      ttftMs: Math.round(stats.ttftMs),
      rewardAddress: this.init.rewardAddress,
      timestampMs: Date.now(),
      seq: this.seq
    }
    this.current = await signEnvelope(privateKey, CAPACITY_TOPIC, CapacityAdvertCodec.encode(advert))
    return this.current
  }

  private async publishAdvert(options: { waited?: boolean } = {}): Promise<void> {
    if (!this.started) return
    // Due during a prefill: it goes out after the first token (firstTokenSent), or once it waited too long.
    if (this.prefilling > 0 && options.waited !== true && this.init.advertMaxWaitMs > 0) {
      this.advertWaitTimer ??= setTimeout(() => void this.publishAdvert({ waited: true }), this.init.advertMaxWaitMs)
      return
    }
    clearTimeout(this.advertWaitTimer)
    this.advertWaitTimer = undefined
    try {
      const envelope = await this.signAdvert()
      await this.components.node.libp2p.services.pubsub.publish(CAPACITY_TOPIC, AdvertEnvelopeCodec.encode(envelope))
    } catch (err) {
      this.log.warn('advert publish failed', { err })
    }
  }

  private async handleAdvertQuery(stream: Stream): Promise<void> {
    const framed = createFramedStream(stream)
    try {
      await framed.write(AdvertEnvelopeCodec, await this.currentAdvert(), { signal: AbortSignal.timeout(5_000) })
      await framed.close({ signal: AbortSignal.timeout(5_000) })
      // Only our side is closed: a peer that never closes its side would hold the stream forever.
      // A function, so TS does not narrow the status across the await.
      const closed = (): boolean => stream.status === 'closed'
      if (!closed()) {
        await new Promise<void>(resolve => {
          const timer = setTimeout(resolve, 5_000)
          stream.addEventListener(
            'close',
            () => {
              clearTimeout(timer)
              resolve()
            },
            { once: true }
          )
        })
        if (!closed()) stream.abort(new GcnError('advert query: peer did not close its side'))
      }
    } catch (err) {
      framed.abort(err instanceof Error ? err : new GcnError('advert query failed'))
    }
  }

  private async handleTask(stream: Stream, connection: Connection): Promise<void> {
    this.openStreams.add(stream)
    const framed = createFramedStream(stream)
    const peer = connection.remotePeer.toString()
    const timing = { streamAt: performance.now(), requestAt: 0, firstTokenAt: 0, firstSentAt: 0, tokens: 0 }
    try {
      const request = await this.readRequest(framed)
      if (request === undefined) return
      timing.requestAt = performance.now()
      await this.serve(framed, stream, request, timing)
      const ms = (t: number): number => (t === 0 ? -1 : Math.round((t - timing.streamAt) * 100) / 100)
      this.log.debug('task served', {
        peer,
        requestMs: ms(timing.requestAt),
        firstTokenMs: ms(timing.firstTokenAt),
        firstSentMs: ms(timing.firstSentAt),
        tokens: timing.tokens
      })
    } catch (err) {
      this.log.debug('task stream failed', { peer, err })
      framed.abort(err instanceof Error ? err : new GcnError('task failed'))
    } finally {
      this.openStreams.delete(stream)
    }
  }

  /**
   * Reads and opens the sealed request; a stream that cannot even be answered is aborted. A spare
   * stream announces its task first (TaskOpen with the request's box header): the key agreement
   * and derivation are done while it waits, not when the request arrives (~0.3 ms of time to
   * first token on the 2-core dev VM).
   */
  private async readRequest(framed: FramedStream): Promise<TaskRequest | undefined> {
    const signal = AbortSignal.timeout(this.init.openTimeoutMs)
    let open = await framed.read(TaskOpenCodec, { signal })
    let prepared: PreparedOpen | undefined
    if (open.requestBoxHeader !== undefined) {
      const announced = open
      prepared = prepareOpen(this.components.privateKey, announced.requestBoxHeader!, { context: announced.taskId })
      try {
        open = await framed.read(TaskOpenCodec, { signal })
        if (open.requestBoxHeader !== undefined) throw new GcnError('task announced twice on one stream')
      } catch (err) {
        prepared.discard()
        throw err
      }
      // Another task than the one announced (the distributor had no use for its keys): opened as usual.
      if (!equalBytes(open.taskId, announced.taskId)) {
        prepared.discard()
        prepared = undefined
      }
    }
    traceTaskStep('supplier.requestRead')
    if (open.version !== WIRE_VERSION) throw new GcnError(`unsupported task wire version ${open.version}`)
    const plaintext =
      prepared === undefined
        ? openSealed(this.components.privateKey, open.sealedRequest, { context: open.taskId })
        : prepared.open(open.sealedRequest)
    if (prepared !== undefined) this.requestsOpenedAhead++
    const request = TaskRequestCodec.decode(plaintext)
    if (!equalBytes(request.taskId, open.taskId)) throw new GcnError('task id in the sealed request differs from the frame')
    return request
  }

  private async serve(
    framed: FramedStream,
    stream: Stream,
    request: TaskRequest,
    timing: { firstTokenAt: number; firstSentAt: number; tokens: number }
  ): Promise<void> {
    const cipher = new ChunkCipher(request.responseKey, request.taskId)
    let seq = 0
    // Proof of inference: every token's logprob record, chained under the task's secret nonce. The
    // chain's key (an HKDF, ~0.15 ms of a process that was idle) is derived while the model reads the
    // prompt (keyTimer below), or at the first token if that comes first.
    let proofWriter: ProofWriter | undefined
    const proof = (): ProofWriter => (proofWriter ??= new ProofWriter(request.nonce, request.taskId, request.modelId))
    let keyTimer: ReturnType<typeof setTimeout> | undefined
    let awaitingFirstToken = false
    const send = async (chunk: Omit<TaskChunk, 'seq' | 'proof'>, segment?: ProofSegment): Promise<void> => {
      const proofBytes = segment === undefined ? new Uint8Array(0) : encodeProofSegment(segment)
      let wire: TaskChunk | undefined = { ...chunk, seq, proof: plainBytes(proofBytes) } as TaskChunk
      if (this.init.testTamperChunk !== undefined) {
        wire = this.init.testTamperChunk(wire, { taskId: request.taskId, index: seq })
        if (wire === undefined) return
        wire = { ...wire, seq }
      }
      const sealed = cipher.seal(seq, TaskChunkCodec.encode(wire))
      // Before the write: the distributor it wakes may read the chunk before this process goes on.
      if (seq === 0) traceTaskStep('supplier.firstChunkSealed')
      await framed.write(TaskFrameCodec, { sealed: plainBytes(sealed) })
      seq++
    }
    // Tokens held for the next chunk (frameIntervalMs), sent in order through one chain of writes.
    let held: { text: string; tokenIds: number[]; logprobs: TokenLogprob[] | undefined } | undefined
    let lastSentAt = 0
    let flushTimer: ReturnType<typeof setTimeout> | undefined
    let sending: Promise<void> = Promise.resolve()
    const flush = (): Promise<void> => {
      if (flushTimer !== undefined) clearTimeout(flushTimer)
      flushTimer = undefined
      const batch = held
      held = undefined
      if (batch === undefined) return sending
      lastSentAt = performance.now()
      sending = sending.then(() =>
        send({ text: batch.text, tokenIds: batch.tokenIds }, batch.logprobs === undefined ? undefined : proof().segment(batch.logprobs))
      )
      return sending
    }
    const controller = new AbortController()
    // The distributor closing or aborting the stream stops generation at once.
    const onClose = (): void => controller.abort(new GcnError('task stream closed'))
    stream.addEventListener('close', onClose)
    stream.addEventListener('remoteCloseWrite', onClose)
    const signals = [controller.signal]
    if (request.deadlineMs > 0) signals.push(AbortSignal.timeout(Math.max(1, request.deadlineMs - Date.now())))
    try {
      if (request.modelId !== this.components.engine.info.id) {
        await send({
          text: '',
          tokenIds: [],
          finishReason: FinishReason.ERROR,
          error: { code: 'ERR_UNKNOWN_MODEL', message: 'model not served here', retryable: true }
        })
        await framed.close()
        return
      }
      if (this.init.testStallBeforeGenerateMs > 0) await sleep(this.init.testStallBeforeGenerateMs, AbortSignal.any(signals))
      const input = toInput(request)
      const params = toParams(request)
      const interval = this.init.frameIntervalMs
      traceTaskStep('supplier.generating')
      const chunks = this.components.engine.generate(input, params, { signal: AbortSignal.any(signals) })
      awaitingFirstToken = true
      this.prefilling++
      // A timer, not setImmediate: the runtime may queue its first decode with setImmediate itself. A
      // failure here is left for the first chunk's proof() to report.
      keyTimer = setTimeout(() => {
        try {
          proof()
        } catch {}
      }, 1)
      for await (const chunk of chunks) {
        if (chunk.type === 'token') {
          const first = timing.tokens++ === 0
          if (first) {
            timing.firstTokenAt = performance.now()
            traceTaskStep('supplier.firstToken')
          }
          if (held === undefined) held = { text: chunk.text, tokenIds: [...chunk.tokenIds], logprobs: chunk.logprobs?.slice() }
          else {
            held.text += chunk.text
            held.tokenIds.push(...chunk.tokenIds)
            if (held.logprobs !== undefined && chunk.logprobs !== undefined) held.logprobs.push(...chunk.logprobs)
            else held.logprobs = undefined
          }
          const dueInMs = lastSentAt + interval - performance.now()
          if (first || dueInMs <= 0) {
            // After the first token (sent at once: time to first token matters most), let the
            // runtime queue the next decode step before we spend CPU on encoding, sealing and
            // writing this one: the model runs meanwhile.
            if (!first) await new Promise<void>(resolve => setImmediate(resolve))
            await flush()
            if (timing.firstSentAt === 0) timing.firstSentAt = performance.now()
            if (awaitingFirstToken) {
              awaitingFirstToken = false
              this.firstTokenSent()
            }
          } else if (flushTimer === undefined) {
            // Held tokens leave with the first token made after the interval, just after the runtime
            // has queued its next decode step, not from a timer at a moment of its own: that flush took
            // the main thread while the decoder needed it between its native calls (1.5 % of throughput,
            // two A/B sittings on the 2-core VM). The timer is a backstop for a decoder that stalls:
            // a held token waits at most one interval past its due time. A failed write rejects
            // `sending`, which the loop awaits next.
            flushTimer = setTimeout(() => void flush().catch(() => {}), dueInMs + interval)
          }
        } else {
          const end = {
            finishReason: FINISH[chunk.finishReason] ?? FinishReason.ERROR,
            usage: { promptTokens: chunk.usage.promptTokens, completionTokens: chunk.usage.completionTokens }
          }
          // Tokens still held go out with the end of the answer: one chunk (one seal, one write, one
          // wake-up of each hop) instead of two.
          const last = held?.logprobs === undefined ? undefined : held
          if (last !== undefined) held = undefined
          await flush()
          await send({ text: last?.text ?? '', tokenIds: last?.tokenIds ?? [], ...end }, proof().finishWith(last?.logprobs ?? []))
          // Only a whole answer is a completed task (and confirmed for payment); an aborted one is not.
          if (chunk.finishReason === 'stop' || chunk.finishReason === 'length') {
            this.completedTasks++
            this.components.confirmations?.completed(request.taskId)
          }
        }
      }
      await framed.close({ signal: AbortSignal.timeout(5_000) })
    } catch (err) {
      if (controller.signal.aborted) return
      const code = err instanceof GcnError ? err.code : 'ERR_INTERNAL'
      const message = err instanceof GcnError ? err.message : 'internal error'
      this.log.warn('task failed', { code })
      // Held tokens are dropped (a pending flush then sends nothing): the error chunk ends the answer
      // (the distributor fails over or reports it).
      held = undefined
      await sending.catch(() => {})
      await send({
        text: '',
        tokenIds: [],
        finishReason: FinishReason.ERROR,
        error: { code, message, retryable: RETRYABLE_CODES.has(code) }
      })
      await framed.close({ signal: AbortSignal.timeout(5_000) })
    } finally {
      if (awaitingFirstToken) this.firstTokenSent()
      clearTimeout(keyTimer)
      if (flushTimer !== undefined) clearTimeout(flushTimer)
      stream.removeEventListener('close', onClose)
      stream.removeEventListener('remoteCloseWrite', onClose)
    }
  }
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts (also when already aborted). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason)
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((v, i) => v === b[i])
}

function toInput(request: TaskRequest): InferenceInput {
  if (request.chat !== undefined) {
    return {
      kind: 'chat',
      messages: request.chat.messages.map(m => ({ role: m.role as 'system' | 'user' | 'assistant', content: m.content }))
    }
  }
  return { kind: 'prompt', prompt: request.prompt ?? '' }
}

function toParams(request: TaskRequest): GenerationParams {
  const p = request.params
  const params: GenerationParams = { maxTokens: p?.maxTokens ?? 256 }
  if (p?.temperature !== undefined) params.temperature = p.temperature
  if (p?.topP !== undefined) params.topP = p.topP
  if (p?.seed !== undefined) params.seed = p.seed
  if (p?.stop !== undefined && p.stop.length > 0) params.stop = p.stop
  if (p?.jsonSchema !== undefined) params.jsonSchema = p.jsonSchema
  return params
}
