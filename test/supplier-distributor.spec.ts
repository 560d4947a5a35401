import {
  AbortedError,
  CAPACITY_TOPIC,
  ChunkCipher,
  createFramedStream,
  createGcnNode,
  type FinishReason,
  type FramedStream,
  type GcnNode,
  type GenerationParams,
  type InferenceEvent,
  type InferenceInput,
  type InferenceRequest,
  plainBytes,
  prepareSeal,
  RESPONSE_KEY_BYTES,
  randomBytes,
  recordTaskSteps,
  StreamEndedError,
  seal,
  silentLogger,
  TASK_PROTOCOL,
  TASK_STEPS,
  type TaskChunk,
  TaskChunkCodec,
  TaskFrameCodec,
  TaskOpenCodec,
  type TaskRequest,
  TaskRequestCodec,
  WIRE_VERSION,
  WireFinishReason
} from '@gcn/core'
// The supplier's counterpart; resolved through the workspace (packages/distributor/dist).
import { InvalidRequestError, type RouterInit, SupplierDirectory, TaskFailedError, TaskRouter } from '@gcn/distributor'
import {
  type EngineStats,
  type GenerationChunk,
  type GenerationEngine,
  InvalidGenerationParamsError,
  QueueFullError,
  Supplier,
  type SupplierInit
} from '@gcn/supplier'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { expect } from 'chai'

const MODEL_ID = 'ee'.repeat(32)
const OTHER_MODEL_ID = 'ff'.repeat(32)
const MODEL_NAME = 'fake-chat'
const REWARD = `0x${'34'.repeat(20)}`

// ---------------------------------------------------------------------------
// FakeEngine: a scripted stand-in for ModelRuntime. It never runs a model.

interface FakeScript {
  /** Token texts yielded in order (token ids are 1, 2, 3, …). */
  chunks?: string[]
  /** Wait before the first chunk (abortable). */
  firstDelayMs?: number
  /** Wait between chunks (abortable). */
  delayMs?: number
  /** Wait before each chunk (abortable), by index; overrides delayMs. */
  delaysMs?: number[]
  /** Thrown before any chunk. */
  throwBefore?: Error
  /** Thrown after this many chunks. */
  throwAfter?: { chunks: number; error: Error }
  /** After this many chunks, wait until the signal aborts. */
  hangAfter?: number
  finishReason?: FinishReason
  promptTokens?: number
}

interface FakeRun {
  input: InferenceInput
  params: GenerationParams
  signal?: AbortSignal
  /** The signal fired while this run was in progress. */
  aborted: boolean
  /** The generator finished (normally, by throwing, or by being returned early). */
  ended: boolean
  yielded: number
}

class AbortableWaitAborted extends AbortedError {}

/** Resolves after ms (never, for Infinity) or rejects when signal aborts. */
function wait(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new AbortableWaitAborted('fake engine aborted', { cause: signal.reason }))
      return
    }
    const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined
    function done(): void {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }
    function onAbort(): void {
      clearTimeout(timer)
      reject(new AbortableWaitAborted('fake engine aborted', { cause: signal?.reason }))
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

class FakeEngine implements GenerationEngine {
  readonly info = { id: MODEL_ID, name: MODEL_NAME, contextSize: 2048 }
  readonly runs: FakeRun[] = []
  private readonly listeners = new Set<() => void>()

  constructor(
    public script: FakeScript = {},
    private readonly engineStats: EngineStats = { totalSlots: 2, freeSlots: 2, queueDepth: 0, tokensPerSecond: 100, ttftMs: 50 }
  ) {}

  stats(): EngineStats {
    return { ...this.engineStats }
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  get abortedRuns(): number {
    return this.runs.filter(r => r.aborted).length
  }

  async *generate(input: InferenceInput, params: GenerationParams, options: { signal?: AbortSignal }): AsyncIterable<GenerationChunk> {
    const run: FakeRun = { input, params, aborted: false, ended: false, yielded: 0 }
    if (options.signal !== undefined) run.signal = options.signal
    this.runs.push(run)
    const signal = options.signal
    const onAbort = (): void => {
      run.aborted = true
    }
    if (signal?.aborted === true) run.aborted = true
    signal?.addEventListener('abort', onAbort, { once: true })
    const s = this.script
    const chunks = s.chunks ?? ['Hello', ', ', 'world', '!']
    try {
      if (s.firstDelayMs !== undefined) await wait(s.firstDelayMs, signal)
      if (s.throwBefore !== undefined) throw s.throwBefore
      for (let i = 0; i < chunks.length; i++) {
        if (s.hangAfter === i) await wait(Number.POSITIVE_INFINITY, signal)
        if (s.throwAfter?.chunks === i) throw s.throwAfter.error
        const delay = s.delaysMs?.[i] ?? (i > 0 ? s.delayMs : undefined)
        if (delay !== undefined) await wait(delay, signal)
        run.yielded++
        // Plausible proof data: each token is the most likely one.
        const logprobs = [
          {
            token: i + 1,
            logprob: -0.5,
            top: [
              { token: i + 1, logprob: -0.5 },
              { token: i + 2, logprob: -1.5 }
            ]
          }
        ]
        yield { type: 'token', text: chunks[i]!, tokenIds: [i + 1], logprobs }
      }
      if (s.hangAfter === chunks.length) await wait(Number.POSITIVE_INFINITY, signal)
      yield {
        type: 'done',
        finishReason: s.finishReason ?? 'stop',
        usage: { promptTokens: s.promptTokens ?? 3, completionTokens: chunks.length }
      }
    } finally {
      run.ended = true
      signal?.removeEventListener('abort', onAbort)
    }
  }
}

// ---------------------------------------------------------------------------
// Helpers

async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

function request(overrides: Partial<InferenceRequest> = {}): InferenceRequest {
  return {
    model: MODEL_NAME,
    gameId: 'game-1',
    input: { kind: 'prompt', prompt: 'Say hello' },
    params: { maxTokens: 16 },
    ...overrides
  }
}

interface Collected {
  deltas: Array<{ text: string; tokenIds: number[] }>
  text: string
  done?: Extract<InferenceEvent, { type: 'done' }>
  error?: unknown
}

async function collect(stream: AsyncIterable<InferenceEvent>, onDelta?: (count: number) => void | Promise<void>): Promise<Collected> {
  const out: Collected = { deltas: [], text: '' }
  try {
    for await (const event of stream) {
      expect(out.done, 'nothing may follow done').to.equal(undefined)
      if (event.type === 'delta') {
        out.deltas.push({ text: event.text, tokenIds: event.tokenIds })
        out.text += event.text
        await onDelta?.(out.deltas.length)
      } else {
        out.done = event
      }
    }
  } catch (err) {
    out.error = err
  }
  return out
}

/** collect(), plus each delta's arrival in ms since the call. */
async function collectTimed(stream: AsyncIterable<InferenceEvent>): Promise<{ result: Collected; arrivals: number[] }> {
  const arrivals: number[] = []
  const started = performance.now()
  const result = await collect(stream, () => {
    arrivals.push(performance.now() - started)
  })
  return { result, arrivals }
}

interface SupplierHandle {
  node: GcnNode
  key: PrivateKey
  engine: FakeEngine
  supplier: Supplier
  addrs: Multiaddr[]
}

interface DistributorHandle {
  node: GcnNode
  directory: SupplierDirectory
  router: TaskRouter
}

const suppliers: SupplierHandle[] = []
const distributors: DistributorHandle[] = []

async function startSupplier(engine: FakeEngine, init: Partial<SupplierInit> = {}): Promise<SupplierHandle> {
  const key = await generateKeyPair('Ed25519')
  const node = await createGcnNode({ role: 'supplier', privateKey: key, profile: 'local', listen: ['/ip4/127.0.0.1/tcp/0'] })
  await node.start()
  const supplier = new Supplier(
    { pricePer1kTokens: 25n, rewardAddress: REWARD, advertIntervalMs: 200, ...init },
    { node, privateKey: key, engine, logger: silentLogger }
  )
  await supplier.start()
  const handle = { node, key, engine, supplier, addrs: node.libp2p.getMultiaddrs() }
  suppliers.push(handle)
  return handle
}

async function startDistributor(routerInit: RouterInit = {}): Promise<DistributorHandle> {
  const node = await createGcnNode({
    role: 'distributor',
    privateKey: await generateKeyPair('Ed25519'),
    profile: 'local',
    listen: ['/ip4/127.0.0.1/tcp/0']
  })
  await node.start()
  const directory = new SupplierDirectory({}, { node, logger: silentLogger })
  directory.start()
  // select() with two candidates compares both, so the fixed draw only orders the sample.
  const router = new TaskRouter(routerInit, { node, directory, logger: silentLogger, random: () => 0 })
  const handle = { node, directory, router }
  distributors.push(handle)
  return handle
}

/** A distributor that knows the given suppliers (asked directly, not waiting on gossip). */
async function network(
  engines: FakeEngine[],
  options: { supplier?: Partial<SupplierInit>; router?: RouterInit } = {}
): Promise<{ dist: DistributorHandle; sups: SupplierHandle[] }> {
  const dist = await startDistributor(options.router)
  const sups: SupplierHandle[] = []
  for (const engine of engines) {
    const sup = await startSupplier(engine, options.supplier)
    await dist.directory.query(sup.addrs)
    sups.push(sup)
  }
  return { dist, sups }
}

/** Everything the raw client needs to run a task by hand. */
function buildTask(modelId = MODEL_ID): { taskId: Uint8Array; responseKey: Uint8Array; request: TaskRequest } {
  const taskId = randomBytes(16)
  const responseKey = randomBytes(RESPONSE_KEY_BYTES)
  const request = {
    taskId: plainBytes(taskId),
    modelId,
    gameId: 'game-raw',
    sessionId: '',
    prompt: 'raw prompt',
    params: { maxTokens: 8, stop: [] },
    nonce: plainBytes(randomBytes(32)),
    deadlineMs: Date.now() + 30_000,
    responseKey: plainBytes(responseKey)
  } as unknown as TaskRequest
  return { taskId, responseKey, request }
}

/** Opens /gcn/task/1.0.0 on the supplier from the distributor node. */
async function openTaskStream(dist: DistributorHandle, sup: SupplierHandle): Promise<Stream> {
  return dist.node.libp2p.dialProtocol(sup.addrs, TASK_PROTOCOL, { signal: AbortSignal.timeout(5_000) })
}

/** Runs one task over a raw stream and returns the opened chunks. */
async function rawTask(dist: DistributorHandle, sup: SupplierHandle, modelId = MODEL_ID): Promise<TaskChunk[]> {
  const { taskId, responseKey, request: req } = buildTask(modelId)
  const stream = await openTaskStream(dist, sup)
  const framed = createFramedStream(stream)
  const sealedRequest = seal(sup.key.publicKey, TaskRequestCodec.encode(req), { context: taskId })
  await framed.write(TaskOpenCodec, { version: WIRE_VERSION, taskId: plainBytes(taskId), sealedRequest: plainBytes(sealedRequest) })
  const cipher = new ChunkCipher(responseKey, taskId)
  const chunks: TaskChunk[] = []
  for await (const frame of framed.frames(TaskFrameCodec, { signal: AbortSignal.timeout(5_000) })) {
    chunks.push(TaskChunkCodec.decode(cipher.open(chunks.length, frame.sealed)))
  }
  await framed.close().catch(() => undefined)
  return chunks
}

/**
 * Reads from a stream the supplier should abort: resolves with the read error
 * (a reset), and fails the test if a frame or a clean end arrives instead.
 */
async function expectAborted(stream: Stream, timeoutMs = 5_000): Promise<Error> {
  const framed = createFramedStream(stream)
  let result: unknown
  try {
    result = await framed.readOrEnd(TaskFrameCodec, { signal: AbortSignal.timeout(timeoutMs) })
  } catch (err) {
    // A reset, not our own timeout: StreamEndedError ("stream closed while reading TaskFrame: … reset").
    expect(err, `the supplier should reset the stream, got ${String(err)}`).to.be.instanceOf(StreamEndedError)
    return err as Error
  }
  throw new Error(result === null ? 'the supplier closed the stream cleanly instead of aborting it' : 'the supplier sent a frame')
}

function varint(n: number): Uint8Array {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return Uint8Array.from(out)
}

function frame(body: Uint8Array): Uint8Array {
  const prefix = varint(body.byteLength)
  const out = new Uint8Array(prefix.byteLength + body.byteLength)
  out.set(prefix)
  out.set(body, prefix.byteLength)
  return out
}

// ---------------------------------------------------------------------------

describe('Supplier (in-process, with a FakeEngine)', function () {
  this.timeout(30_000)

  afterEach(async () => {
    for (const d of distributors.splice(0)) {
      d.directory.stop()
      await d.node.stop()
    }
    for (const s of suppliers.splice(0)) {
      await s.supplier.stop().catch(() => undefined)
      await s.node.stop().catch(() => undefined)
    }
  })

  it('is found through the DHT by a distributor that never heard its advert', async () => {
    // A bootstrap node (DHT server) that both sides know; the distributor's directory is not
    // started, so it cannot learn the supplier from gossip.
    const boot = await createGcnNode({
      role: 'bootstrap',
      privateKey: await generateKeyPair('Ed25519'),
      profile: 'local',
      listen: ['/ip4/127.0.0.1/tcp/0']
    })
    await boot.start()
    const bootAddr = boot.multiaddrs[0]!
    try {
      const key = await generateKeyPair('Ed25519')
      const supNode = await createGcnNode({
        role: 'supplier',
        privateKey: key,
        profile: 'local',
        listen: ['/ip4/127.0.0.1/tcp/0'],
        bootstrap: [bootAddr]
      })
      await supNode.start()
      const supplier = new Supplier(
        { pricePer1kTokens: 25n, rewardAddress: REWARD },
        { node: supNode, privateKey: key, engine: new FakeEngine({ chunks: ['x'] }), logger: silentLogger }
      )
      await supplier.start()
      suppliers.push({ node: supNode, key, engine: new FakeEngine({ chunks: [] }), supplier, addrs: supNode.libp2p.getMultiaddrs() })
      const distNode = await createGcnNode({
        role: 'distributor',
        privateKey: await generateKeyPair('Ed25519'),
        profile: 'local',
        listen: ['/ip4/127.0.0.1/tcp/0'],
        bootstrap: [bootAddr]
      })
      await distNode.start()
      const directory = new SupplierDirectory({}, { node: distNode, logger: silentLogger })
      distributors.push({ node: distNode, directory, router: new TaskRouter({}, { node: distNode, directory, logger: silentLogger }) })
      await until(() => supplier.provided, 'the supplier to provide its model in the DHT', 15_000)
      expect(directory.suppliers()).to.have.length(0)
      const found = await directory.discover(MODEL_ID, { signal: AbortSignal.timeout(10_000) })
      expect(found.map(e => e.peerId.toString())).to.deep.equal([supNode.peerId.toString()])
      expect(directory.models().map(m => m.id)).to.deep.equal([MODEL_ID])
    } finally {
      await boot.stop()
    }
  })

  it('is learned by the directory from its gossiped advert and by a direct query', async () => {
    const engine = new FakeEngine({}, { totalSlots: 3, freeSlots: 2, queueDepth: 1, tokensPerSecond: 42.5, ttftMs: 70 })
    const dist = await startDistributor()
    const sup = await startSupplier(engine)
    await dist.node.libp2p.dial(sup.addrs[0]!)
    await until(() => dist.directory.suppliers().length === 1, 'the gossiped advert')
    const entry = dist.directory.get(sup.node.peerId.toString())!
    expect(entry.peerId.equals(sup.node.peerId)).to.equal(true)
    expect(entry.publicKey.equals(sup.key.publicKey)).to.equal(true)
    expect(entry.addrs.map(a => a.toString())).to.deep.equal(sup.addrs.map(a => a.toString()))
    expect(entry.advert).to.include({
      totalSlots: 3,
      freeSlots: 2,
      queueDepth: 1,
      tokensPerSecond: 42.5,
      ttftMs: 70,
      rewardAddress: REWARD
    })
    expect(dist.directory.models()).to.deep.equal([
      { id: MODEL_ID, name: MODEL_NAME, contextSize: 2048, pricePer1kTokens: 25n, suppliers: 1 }
    ])
    expect(dist.router.listModels().map(m => m.name)).to.deep.equal([MODEL_NAME])

    // The same supplier through /gcn/advert/1.0.0, from a distributor that has not heard its gossip.
    const other = await startDistributor()
    const queried = await other.directory.query(sup.addrs)
    expect(queried.peerId.equals(sup.node.peerId)).to.equal(true)
    expect(other.directory.suppliers(MODEL_ID)).to.have.length(1)
    // The advert it serves is the signed one it gossips.
    const current = await sup.supplier.currentAdvert()
    expect(current.payloadType).to.equal(CAPACITY_TOPIC)
  })

  it('streams the deltas in order and a done with usage through router.stream()', async () => {
    const engine = new FakeEngine({ chunks: ['Hel', 'lo', ', ', 'world'], delayMs: 5, promptTokens: 7 })
    // A chunk per token, to check each one's way through.
    const { dist, sups } = await network([engine], { supplier: { frameIntervalMs: 0 } })
    const result = await collect(
      dist.router.stream(
        request({
          input: { kind: 'chat', messages: [{ role: 'user', content: 'hi' }] },
          params: { maxTokens: 9, temperature: 0, stop: ['\n'] }
        })
      )
    )
    expect(result.error).to.equal(undefined)
    expect(result.deltas).to.deep.equal([
      { text: 'Hel', tokenIds: [1] },
      { text: 'lo', tokenIds: [2] },
      { text: ', ', tokenIds: [3] },
      { text: 'world', tokenIds: [4] }
    ])
    expect(result.done).to.deep.include({
      type: 'done',
      finishReason: 'stop',
      usage: { promptTokens: 7, completionTokens: 4 },
      modelId: MODEL_ID,
      verdict: 'unchecked'
    })
    expect(engine.runs).to.have.length(1)
    const run = engine.runs[0]!
    expect(run.input).to.deep.equal({ kind: 'chat', messages: [{ role: 'user', content: 'hi' }] })
    expect(run.params).to.deep.equal({ maxTokens: 9, temperature: 0, stop: ['\n'] })
    expect(run.aborted, 'a finished task is not aborted').to.equal(false)
    await until(() => sups[0]!.supplier.completedTasks === 1, 'completedTasks')
    const entry = dist.directory.get(sups[0]!.node.peerId.toString())!
    expect(entry.successes).to.equal(1)
    expect(entry.outstanding).to.equal(0)
    expect(entry.ewmaTtftMs).to.be.a('number')
  })

  it("publishes the distributor's and the supplier's task steps once each, in order, for a task's first token", async () => {
    const engine = new FakeEngine({ chunks: ['a', 'b', 'c'], delayMs: 2 })
    const { dist } = await network([engine], { supplier: { frameIntervalMs: 0 } })
    const recording = recordTaskSteps()
    let result: Collected
    try {
      result = await collect(dist.router.stream(request()))
    } finally {
      recording.stop()
    }
    expect(result.text).to.equal('abc')
    // The gateway's steps are the gateway's (this task went straight to the router).
    expect(recording.events.map(e => e.step)).to.deep.equal(TASK_STEPS.filter(s => !s.startsWith('gateway.')))
    const times = recording.events.map(e => e.atMs)
    expect(times).to.deep.equal([...times].sort((a, b) => a - b))
  })

  it("sends the next task on the spare stream that announced it: the supplier agreed on the request's key ahead", async () => {
    const engine = new FakeEngine({ chunks: ['a', 'b', 'c'], delayMs: 2 })
    const { dist, sups } = await network([engine])
    const first = await collect(dist.router.stream(request()))
    expect(first.text).to.equal('abc')
    await until(() => dist.router.streamStats?.sparesAnnounced === 1, 'the spare to be announced')
    expect(sups[0]!.supplier.requestsOpenedAhead).to.equal(0)
    const second = await collect(dist.router.stream(request()))
    expect(second.error).to.equal(undefined)
    expect(second.text).to.equal('abc')
    expect(dist.router.streamStats).to.include({ sparesUsed: 1 })
    expect(sups[0]!.supplier.requestsOpenedAhead).to.equal(1)
  })

  it('holds adverts due while a task waits for its first token until that token is sent, or at most advertMaxWaitMs', async () => {
    /** Tasks awaiting their first token when each advert of `sup` went out. */
    const advertsOf = (sup: SupplierHandle): number[] => {
      const awaiting: number[] = []
      const pubsub = sup.node.libp2p.services.pubsub
      const publish = pubsub.publish.bind(pubsub)
      pubsub.publish = (...args: Parameters<typeof publish>) => {
        awaiting.push(sup.supplier.tasksAwaitingFirstToken)
        return publish(...args)
      }
      return awaiting
    }
    const prefillMs = 600
    const engine = new FakeEngine({ chunks: ['a', 'b'], firstDelayMs: prefillMs, delayMs: 2 })
    const { dist, sups } = await network([engine], { supplier: { advertIntervalMs: 50, advertMaxWaitMs: 5_000 } })
    const adverts = advertsOf(sups[0]!)
    const result = await collect(dist.router.stream(request()))
    expect(result.text).to.equal('ab')
    await until(() => adverts.length > 2, 'adverts after the task')
    expect(adverts, 'no advert while the task waited for its first token').to.not.include(1)
    expect(sups[0]!.supplier.tasksAwaitingFirstToken).to.equal(0)

    // A prefill longer than advertMaxWaitMs: the held advert goes out when it has waited that long.
    const impatient = await network([new FakeEngine({ chunks: ['a'], firstDelayMs: prefillMs })], {
      supplier: { advertIntervalMs: 50, advertMaxWaitMs: 100 }
    })
    const held = advertsOf(impatient.sups[0]!)
    expect((await collect(impatient.dist.router.stream(request()))).text).to.equal('a')
    expect(held.filter(n => n === 1).length, 'adverts that waited advertMaxWaitMs').to.be.within(2, 6)
  })

  it('sends the first token at once and tokens made within frameIntervalMs of a chunk together in the next, proof intact', async () => {
    const words = Array.from({ length: 24 }, (_, i) => `w${i} `)
    const engine = new FakeEngine({ chunks: words, delayMs: 4 })
    const { dist } = await network([engine], { supplier: { frameIntervalMs: 30 } })
    const { result, arrivals } = await collectTimed(dist.router.stream(request()))
    expect(result.error).to.equal(undefined)
    expect(result.text).to.equal(words.join(''))
    expect(result.deltas.flatMap(d => d.tokenIds)).to.deep.equal(words.map((_, i) => i + 1))
    expect(result.deltas[0], 'the first token alone, at once').to.deep.equal({ text: 'w0 ', tokenIds: [1] })
    // 23 more tokens 4 ms apart (≥ 92 ms) in chunks at least 30 ms apart: a handful of chunks, not 23.
    expect(result.deltas.length).to.be.within(3, 8)
    // Chunks in between leave at their interval; the last one leaves with the end of the answer, whenever that is.
    for (let i = 1; i < arrivals.length - 1; i++) expect(arrivals[i]! - arrivals[i - 1]!, `gap before chunk ${i}`).to.be.greaterThan(15)
    // Every token's proof record arrived and checked out: the task is done with all of them.
    expect(result.done).to.deep.include({ finishReason: 'stop', usage: { promptTokens: 3, completionTokens: 24 } })
  })

  it('sends held tokens with the first token made after the interval, and after one more interval if the decoder stalls', async () => {
    // Interval 100 ms. 'b ' (at 5 ms) is due at 100 and leaves with 'c ' (at 150); 'd ' (at 160, due
    // at 250) has no follower until 860, so the backstop sends it alone at ~350.
    const engine = new FakeEngine({ chunks: ['a ', 'b ', 'c ', 'd ', 'e '], delaysMs: [0, 5, 145, 10, 700] })
    const { dist } = await network([engine], { supplier: { frameIntervalMs: 100 } })
    const { result, arrivals } = await collectTimed(dist.router.stream(request()))
    expect(result.error).to.equal(undefined)
    expect(result.deltas.map(d => d.text)).to.deep.equal(['a ', 'b c ', 'd ', 'e '])
    expect(result.deltas.map(d => d.tokenIds)).to.deep.equal([[1], [2, 3], [4], [5]])
    expect(arrivals[2]! - arrivals[1]!, 'the stalled token waits about an interval past its due time').to.be.within(120, 450)
    expect(arrivals[3]! - arrivals[2]!, 'and not for the next token').to.be.greaterThan(250)
    expect(result.done).to.deep.include({ finishReason: 'stop', usage: { promptTokens: 3, completionTokens: 5 } })
  })

  it('sends the tokens still held at the end of the answer in its finishing chunk, proof intact', async () => {
    const words = ['a ', 'b ', 'c ', 'd ', 'e ']
    const engine = new FakeEngine({ chunks: words, delayMs: 0 })
    const { dist, sups } = await network([engine], { supplier: { frameIntervalMs: 10_000 } })
    const chunks = await rawTask(dist, sups[0]!)
    expect(
      chunks.map(c => c.text),
      'the first token alone, then the rest with the finish'
    ).to.deep.equal(['a ', 'b c d e '])
    expect(chunks[1]!.finishReason).to.equal(WireFinishReason.STOP)
    expect(chunks[1]!.usage?.completionTokens).to.equal(5)
    // Through the distributor the proof (the last records and the final code in one segment) checks out.
    const result = await collect(dist.router.stream(request()), () => {})
    expect(result.error).to.equal(undefined)
    expect(result.deltas.map(d => d.text)).to.deep.equal(['a ', 'b c d e '])
    expect(result.done).to.deep.include({ finishReason: 'stop' })
  })

  it('releases every task stream: more tasks than the per-connection stream limit, consumers stopping at done', async () => {
    const engine = new FakeEngine({ chunks: ['x'], delayMs: 0, promptTokens: 1 })
    const { dist, sups } = await network([engine])
    // libp2p allows 64 outbound streams per protocol per connection; a leak would stall at the 65th.
    for (let i = 0; i < 150; i++) {
      for await (const event of dist.router.stream(request())) {
        if (event.type === 'done') break
      }
    }
    expect(engine.runs).to.have.length(150)
    // The last task's spare stays open on the supplier until its openTimeoutMs (5 s).
    await until(() => sups[0]!.supplier.openTaskStreams === 0, 'the supplier to hold no task streams', 8_000)
    const taskStreams = () =>
      dist.node.libp2p
        .getConnections()
        .flatMap(c => c.streams)
        .filter(st => st.protocol === '/gcn/task/1.0.0').length
    await until(() => taskStreams() === 0, 'the distributor to hold no task streams')
  })

  it('aborting the request signal mid-stream aborts the engine', async () => {
    const engine = new FakeEngine({ chunks: ['one ', 'two ', 'three'], hangAfter: 2 })
    const { dist } = await network([engine])
    const controller = new AbortController()
    const result = await collect(dist.router.stream(request(), { signal: controller.signal }), count => {
      if (count === 2) controller.abort(new Error('player left'))
    })
    expect(result.text).to.equal('one two ')
    expect(result.error).to.be.instanceOf(AbortedError)
    await until(() => engine.abortedRuns === 1, 'the engine signal to abort')
    await until(() => engine.runs[0]!.ended, 'the engine generator to end')
  })

  it('a consumer that stops reading early cancels the supplier too', async () => {
    const engine = new FakeEngine({ chunks: ['a', 'b', 'c'], hangAfter: 1 })
    const { dist } = await network([engine])
    for await (const event of dist.router.stream(request())) {
      expect(event).to.deep.include({ type: 'delta', text: 'a' })
      break
    }
    await until(() => engine.abortedRuns === 1, 'the engine signal to abort')
    expect(dist.directory.suppliers()[0]!.outstanding).to.equal(0)
  })

  it('fails over to a second supplier on a retryable engine error (ERR_QUEUE_FULL)', async () => {
    // The busy one advertises the lower TTFT, so it is tried first.
    const busy = new FakeEngine(
      { throwBefore: new QueueFullError('all slots busy and the queue is full') },
      { totalSlots: 1, freeSlots: 1, queueDepth: 0, tokensPerSecond: 100, ttftMs: 1 }
    )
    const good = new FakeEngine(
      { chunks: ['from ', 'the ', 'other'] },
      { totalSlots: 1, freeSlots: 1, queueDepth: 0, tokensPerSecond: 100, ttftMs: 500 }
    )
    const { dist, sups } = await network([busy, good])
    const result = await collect(dist.router.stream(request()))
    expect(result.error).to.equal(undefined)
    expect(result.text).to.equal('from the other')
    expect(result.done?.finishReason).to.equal('stop')
    expect(busy.runs).to.have.length(1)
    expect(good.runs).to.have.length(1)
    expect(dist.router.counters.failovers).to.equal(1)
    expect(dist.directory.get(sups[0]!.node.peerId.toString())!.failures).to.equal(1)
    expect(dist.directory.get(sups[1]!.node.peerId.toString())!.successes).to.equal(1)
  })

  it('does not fail over on a request the supplier refuses as invalid: the client gets InvalidRequestError', async () => {
    const bad = new FakeEngine(
      { throwBefore: new InvalidGenerationParamsError('topP out of range') },
      {
        totalSlots: 1,
        freeSlots: 1,
        queueDepth: 0,
        tokensPerSecond: 100,
        ttftMs: 1
      }
    )
    const good = new FakeEngine({}, { totalSlots: 1, freeSlots: 1, queueDepth: 0, tokensPerSecond: 100, ttftMs: 500 })
    const { dist } = await network([bad, good])
    const result = await collect(dist.router.stream(request()))
    expect(result.error).to.be.instanceOf(InvalidRequestError)
    expect((result.error as Error).message).to.include('topP out of range')
    expect(((result.error as Error).cause as TaskFailedError).supplierCode).to.equal('ERR_INVALID_GENERATION_PARAMS')
    expect(good.runs).to.have.length(0)
  })

  it('abandons a supplier that stalls past firstTokenTimeoutMs for the other one', async () => {
    const stalled = new FakeEngine(
      { firstDelayMs: 20_000 },
      { totalSlots: 1, freeSlots: 1, queueDepth: 0, tokensPerSecond: 100, ttftMs: 1 }
    )
    const good = new FakeEngine({ chunks: ['quick'] }, { totalSlots: 1, freeSlots: 1, queueDepth: 0, tokensPerSecond: 100, ttftMs: 500 })
    const { dist } = await network([stalled, good], { router: { firstTokenTimeoutMs: 300 } })
    const started = Date.now()
    const result = await collect(dist.router.stream(request()))
    const elapsed = Date.now() - started
    expect(result.error).to.equal(undefined)
    expect(result.text).to.equal('quick')
    expect(elapsed).to.be.within(250, 5_000)
    expect(stalled.runs).to.have.length(1)
    expect(dist.router.counters.failovers).to.equal(1)
    // The abandoned supplier was told to stop.
    await until(() => stalled.abortedRuns === 1, 'the stalled engine to be aborted')
  })

  it('a supplier dying mid-answer gives a retryable TaskFailedError and no duplicated text', async () => {
    const dying = new FakeEngine(
      { chunks: ['partial ', 'answer ', 'never sent'], hangAfter: 2 },
      {
        totalSlots: 1,
        freeSlots: 1,
        queueDepth: 0,
        tokensPerSecond: 100,
        ttftMs: 1
      }
    )
    const spare = new FakeEngine(
      { chunks: ['spare answer'] },
      { totalSlots: 1, freeSlots: 1, queueDepth: 0, tokensPerSecond: 100, ttftMs: 500 }
    )
    const { dist, sups } = await network([dying, spare])
    const result = await collect(dist.router.stream(request()), async count => {
      if (count === 2) await sups[0]!.node.stop()
    })
    expect(result.error).to.be.instanceOf(TaskFailedError)
    expect((result.error as TaskFailedError).retryable).to.equal(true)
    expect(result.text).to.equal('partial answer ')
    expect(result.done).to.equal(undefined)
    expect(spare.runs, 'restarting elsewhere would duplicate text').to.have.length(0)
  })

  it('refuses a task for a model it does not serve', async () => {
    const engine = new FakeEngine()
    const { dist, sups } = await network([engine])
    const chunks = await rawTask(dist, sups[0]!, OTHER_MODEL_ID)
    expect(chunks).to.have.length(1)
    expect(chunks[0]!.finishReason).to.equal(WireFinishReason.ERROR)
    expect(chunks[0]!.error?.code).to.equal('ERR_UNKNOWN_MODEL')
    expect(chunks[0]!.text).to.equal('')
    expect(engine.runs).to.have.length(0)
    // The right model on the same supplier works.
    const ok = await rawTask(dist, sups[0]!)
    expect(ok.map(c => c.text).join('')).to.equal('Hello, world!')
    expect(ok.at(-1)!.finishReason).to.equal(WireFinishReason.STOP)
    expect(ok.map(c => c.seq)).to.deep.equal(ok.map((_, i) => i))
  })

  describe('testStallBeforeGenerateMs', () => {
    it('delays generation by the configured time', async () => {
      const engine = new FakeEngine({ chunks: ['late'] })
      const { dist } = await network([engine], { supplier: { testStallBeforeGenerateMs: 600 } })
      let firstAt = 0
      const started = Date.now()
      const result = await collect(dist.router.stream(request()), () => {
        firstAt = Date.now()
      })
      expect(result.error).to.equal(undefined)
      expect(result.text).to.equal('late')
      expect(firstAt - started).to.be.at.least(550)
    })

    it('is abortable: a cancelled task never reaches the engine', async () => {
      const engine = new FakeEngine({ chunks: ['never'] })
      const { dist } = await network([engine], { supplier: { testStallBeforeGenerateMs: 800 } })
      const controller = new AbortController()
      setTimeout(() => controller.abort(new Error('cancel during stall')), 150)
      const started = Date.now()
      const result = await collect(dist.router.stream(request(), { signal: controller.signal }))
      expect(result.error).to.be.instanceOf(AbortedError)
      expect(Date.now() - started).to.be.below(700)
      // Past the stall: had the stall ignored the abort, generation would have started by now.
      await sleep(1_000)
      expect(engine.runs).to.have.length(0)
    })

    it('a supplier stalled past firstTokenTimeoutMs is left for another', async () => {
      const stalled = new FakeEngine(
        { chunks: ['stalled'] },
        { totalSlots: 1, freeSlots: 1, queueDepth: 0, tokensPerSecond: 100, ttftMs: 1 }
      )
      const dist = await startDistributor({ firstTokenTimeoutMs: 300 })
      const a = await startSupplier(stalled, { testStallBeforeGenerateMs: 5_000 })
      const good = new FakeEngine({ chunks: ['fine'] }, { totalSlots: 1, freeSlots: 1, queueDepth: 0, tokensPerSecond: 100, ttftMs: 500 })
      const b = await startSupplier(good)
      await dist.directory.query(a.addrs)
      await dist.directory.query(b.addrs)
      const result = await collect(dist.router.stream(request()))
      expect(result.error).to.equal(undefined)
      expect(result.text).to.equal('fine')
      await sleep(300)
      expect(stalled.runs, 'the abandoned task must not start generating').to.have.length(0)
    })
  })

  describe('at the wire level', () => {
    let dist: DistributorHandle
    let sup: SupplierHandle
    let engine: FakeEngine

    beforeEach(async () => {
      engine = new FakeEngine({ chunks: ['still ', 'serving'] })
      ;({
        dist,
        sups: [sup]
      } = (await network([engine], { supplier: { openTimeoutMs: 500 } })) as { dist: DistributorHandle; sups: [SupplierHandle] })
    })

    async function stillServes(): Promise<void> {
      const result = await collect(dist.router.stream(request()))
      expect(result.error).to.equal(undefined)
      expect(result.text).to.equal('still serving')
    }

    it('aborts a stream that sends a garbage frame, and keeps serving', async () => {
      const stream = await openTaskStream(dist, sup)
      stream.send(frame(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02])))
      await expectAborted(stream)
      await stillServes()
    })

    it('aborts a stream whose TaskOpen is well-framed but not a TaskOpen, and keeps serving', async () => {
      const stream = await openTaskStream(dist, sup)
      stream.send(frame(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: supplier\r\n\r\n')))
      await expectAborted(stream)
      await stillServes()
    })

    it('aborts a stream with an oversized length prefix before reading the body, and keeps serving', async () => {
      const stream = await openTaskStream(dist, sup)
      // Claims a 100 MiB TaskOpen (limit 256 KiB); only the prefix is sent.
      stream.send(varint(100 * 1024 * 1024))
      await expectAborted(stream, 2_000)
      await stillServes()
    })

    it('aborts a stream whose TaskOpen is sealed to another key, and keeps serving', async () => {
      const stranger = await generateKeyPair('Ed25519')
      const { taskId, request: req } = buildTask()
      const stream = await openTaskStream(dist, sup)
      const framed = createFramedStream(stream)
      await framed.write(TaskOpenCodec, {
        version: WIRE_VERSION,
        taskId: plainBytes(taskId),
        sealedRequest: plainBytes(seal(stranger.publicKey, TaskRequestCodec.encode(req), { context: taskId }))
      })
      await expectAborted(stream)
      expect(engine.runs).to.have.length(0)
      await stillServes()
    })

    it('aborts a stream whose sealed request names another task id than its frame, and keeps serving', async () => {
      const { taskId, request: req } = buildTask()
      const frameTaskId = randomBytes(16)
      const stream = await openTaskStream(dist, sup)
      const framed = createFramedStream(stream)
      // Sealed under the frame's task id (so it opens), but the request inside names another task.
      await framed.write(TaskOpenCodec, {
        version: WIRE_VERSION,
        taskId: plainBytes(frameTaskId),
        sealedRequest: plainBytes(
          seal(sup.key.publicKey, TaskRequestCodec.encode({ ...req, taskId: plainBytes(taskId) }), { context: frameTaskId })
        )
      })
      await expectAborted(stream)
      expect(engine.runs).to.have.length(0)
      await stillServes()
    })

    it('opens a request announced ahead with the key it prepared, and a request for another task as usual', async () => {
      const announce = async (framed: FramedStream, taskId: Uint8Array, header: Uint8Array): Promise<void> =>
        framed.write(TaskOpenCodec, {
          version: WIRE_VERSION,
          taskId: plainBytes(taskId),
          sealedRequest: new Uint8Array(0),
          requestBoxHeader: plainBytes(header)
        })
      const send = async (framed: FramedStream, taskId: Uint8Array, sealedRequest: Uint8Array): Promise<void> =>
        framed.write(TaskOpenCodec, { version: WIRE_VERSION, taskId: plainBytes(taskId), sealedRequest: plainBytes(sealedRequest) })
      const answered = async (framed: FramedStream, taskId: Uint8Array, responseKey: Uint8Array): Promise<string> => {
        const cipher = new ChunkCipher(responseKey, taskId)
        let text = ''
        let seq = 0
        for await (const frame of framed.frames(TaskFrameCodec, { signal: AbortSignal.timeout(5_000) })) {
          text += TaskChunkCodec.decode(cipher.open(seq++, frame.sealed)).text
        }
        await framed.close().catch(() => undefined)
        return text
      }

      // Announced, then sent with the announced box.
      const first = buildTask()
      const box = prepareSeal(sup.key.publicKey, { context: first.taskId })
      const framed = createFramedStream(await openTaskStream(dist, sup))
      await announce(framed, first.taskId, box.header)
      await send(framed, first.taskId, box.seal(TaskRequestCodec.encode(first.request)))
      expect(await answered(framed, first.taskId, first.responseKey)).to.equal('still serving')
      expect(sup.supplier.requestsOpenedAhead).to.equal(1)

      // Announced, then another task sent instead: opened as usual.
      const unused = buildTask()
      const second = buildTask()
      const other = createFramedStream(await openTaskStream(dist, sup))
      await announce(other, unused.taskId, prepareSeal(sup.key.publicKey, { context: unused.taskId }).header)
      await send(other, second.taskId, seal(sup.key.publicKey, TaskRequestCodec.encode(second.request), { context: second.taskId }))
      expect(await answered(other, second.taskId, second.responseKey)).to.equal('still serving')
      expect(sup.supplier.requestsOpenedAhead).to.equal(1)
      expect(engine.runs).to.have.length(2)
    })

    it('aborts a stream whose request is not in the announced box, or that announces twice, and keeps serving', async () => {
      const { taskId, request: req } = buildTask()
      const announcement = {
        version: WIRE_VERSION,
        taskId: plainBytes(taskId),
        sealedRequest: new Uint8Array(0),
        requestBoxHeader: plainBytes(prepareSeal(sup.key.publicKey, { context: taskId }).header)
      }
      // Same task id, another box: it cannot be opened with the prepared key.
      const stream = await openTaskStream(dist, sup)
      const framed = createFramedStream(stream)
      await framed.write(TaskOpenCodec, announcement)
      await framed.write(TaskOpenCodec, {
        version: WIRE_VERSION,
        taskId: plainBytes(taskId),
        sealedRequest: plainBytes(seal(sup.key.publicKey, TaskRequestCodec.encode(req), { context: taskId }))
      })
      await expectAborted(stream)
      const twice = await openTaskStream(dist, sup)
      const framedTwice = createFramedStream(twice)
      await framedTwice.write(TaskOpenCodec, announcement)
      await framedTwice.write(TaskOpenCodec, announcement)
      await expectAborted(twice)
      expect(engine.runs).to.have.length(0)
      expect(sup.supplier.requestsOpenedAhead).to.equal(0)
      await stillServes()
    })

    it('aborts a stream that sends nothing within openTimeoutMs, and keeps serving', async () => {
      const stream = await openTaskStream(dist, sup)
      const started = Date.now()
      await expectAborted(stream, 3_000)
      expect(Date.now() - started).to.be.within(400, 2_500)
      await stillServes()
    })

    it('serves another task while a hostile stream is pending', async () => {
      const stream = await openTaskStream(dist, sup)
      // Half a length prefix: the supplier keeps waiting on this stream (until openTimeoutMs)…
      stream.send(Uint8Array.from([0x80]))
      // …and serves the next task meanwhile.
      await stillServes()
      await expectAborted(stream)
    })
  })
})
