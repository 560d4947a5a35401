/**
 * The OpenAI-compatible HTTP gateway of a distributor (node:http, no
 * framework). Games call it with an API key; it validates the request, asks
 * the InferenceBackend for a stream of events and answers as OpenAI's
 * `/v1/chat/completions` and `/v1/completions` do, streamed (SSE) or not.
 *
 * Protocol notes for clients:
 * - Session affinity: the `X-GCN-Session` header (1..128 printable ASCII
 *   characters) names the session; without it the OpenAI `user` field is
 *   used (hashed to sha256 hex when longer than 128 characters). Requests of
 *   one game and session prefer the same supplier (prompt-cache reuse).
 * - Errors before the first byte of an answer get a proper HTTP status and
 *   OpenAI's error JSON. An error after a stream has started cannot change the
 *   status any more: the gateway sends one `data: {"error":{...}}` event and
 *   ends the stream without `data: [DONE]`, which OpenAI's SDKs raise as an
 *   APIError.
 * - A client that disconnects cancels its request: the backend's signal is
 *   aborted, which stops the supplier.
 * - The failed-auth limiter keys on the TCP peer address (IPv6 by /64);
 *   X-Forwarded-For is not trusted.
 */
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setImmediate as nextTurn } from 'node:timers/promises'
import {
  AbortedError,
  GcnError,
  type InferenceDone,
  type InferenceRequest,
  type Logger,
  type ModelInfo,
  NotStartedError,
  REQUEST_LIMITS,
  TimeoutError,
  traceTaskStep
} from '@gcn/core'
import type { InferenceBackend } from './backend.js'
import { InvalidRequestError, NoSupplierError, PromptTooLongError, TaskFailedError, UnknownModelError } from './errors.js'
import type { ApiKeyRecord, ApiKeyStore } from './gateway-keys.js'
import { BucketMap, ConcurrencyLimiter, GATEWAY_DEFAULTS, type GatewayLimits, resolveLimits, retryAfterSeconds } from './gateway-limits.js'
import {
  chatCompletion,
  type Endpoint,
  errorBody,
  modelList,
  modelObject,
  type ParsedRequest,
  parseChatRequest,
  parseCompletionRequest,
  type ResponseMeta,
  streamChunk,
  textCompletion,
  toOpenAiFinishReason,
  UnsupportedParameterError,
  usageChunk
} from './openai-schema.js'

export { type ApiKeyRecord, ApiKeyStore, hashApiKey, type PlainApiKey } from './gateway-keys.js'
export { GATEWAY_DEFAULTS, type GatewayLimits } from './gateway-limits.js'
export { UnsupportedParameterError } from './openai-schema.js'

export interface GatewayInit {
  /** Interface to listen on; default 127.0.0.1 (put a TLS proxy in front for public access). */
  host?: string
  /** TCP port; 0 lets the OS choose (read it back from `gateway.port`). */
  port?: number
  apiKeys: ApiKeyStore
  limits?: Partial<GatewayLimits>
  /** Largest accepted request body in bytes (413 beyond); default 1 MiB. */
  maxBodyBytes?: number
  /** Base URL clients should use when the gateway sits behind a proxy, e.g. https://gcn.example/v1. */
  publicBaseUrl?: string
}

export interface GatewayComponents {
  backend: InferenceBackend
  logger: Logger
  /**
   * Whether a game may be served: false for a game whose settlement deposit did
   * not cover its debit (delinquent on the rollup); it gets HTTP 402 until it tops up.
   */
  gameInGoodStanding?: (gameId: string) => boolean
}

/** Counters for a dashboard; a snapshot, not live. */
export interface GatewayStats {
  requestsTotal: number
  /** Finished requests by HTTP status; 499 = the client closed the connection first. */
  requestsByStatus: Record<string, number>
  /** Inference requests in flight (body reading included). */
  activeRequests: number
  /** SSE responses currently open. */
  activeStreams: number
  /** Streams that ended with an SSE error event. */
  streamErrors: number
  promptTokens: number
  completionTokens: number
}

export interface Gateway {
  start(): Promise<void>
  /** Closes the server and every open connection; in-flight requests are aborted. */
  stop(): Promise<void>
  /** Base URL for OpenAI clients, e.g. http://127.0.0.1:8080/v1 (publicBaseUrl when set). */
  readonly url: string
  readonly port: number
  readonly stats: GatewayStats
}

export function createGateway(init: GatewayInit, components: GatewayComponents): Gateway {
  return new HttpGateway(init, components)
}

/** An error with its final HTTP shape. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly code: string | null,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {}
  ) {
    super(message)
  }
}

/** Abort reasons, so that the handler knows why its signal fired. */
class ClientClosedError extends AbortedError {
  override name = 'ClientClosedError'
}
class GatewayStoppingError extends AbortedError {
  override name = 'GatewayStoppingError'
}

function rateLimited(message: string, waitMs: number): HttpError {
  return new HttpError(429, 'requests', 'rate_limit_exceeded', message, null, { 'Retry-After': String(retryAfterSeconds(waitMs)) })
}

function unavailable(message: string): HttpError {
  return new HttpError(503, 'server_error', 'service_unavailable', message, null, { 'Retry-After': '1' })
}

const SSE_HEADERS = {
  'Content-Type': 'text/event-stream',
  'Cache-Control': 'no-cache',
  Connection: 'keep-alive',
  // Tells nginx-style proxies not to buffer the stream.
  'X-Accel-Buffering': 'no'
}

/** Per-request facts for the access log: identifiers and numbers only. */
interface RequestContext {
  method: string
  path: string
  endpoint?: Endpoint
  gameId?: string
  model?: string
  stream?: boolean
  promptTokens?: number
  completionTokens?: number
  /** OpenAI error code sent, as JSON or as an SSE error event. */
  error?: string
}

function pathOf(url: string | undefined): string {
  let path = (url ?? '/').split('?', 1)[0] ?? '/'
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1)
  return path
}

/** The limiter key of a client: the IPv4 address, or the /64 of an IPv6 address. */
function clientKey(address: string | undefined): string {
  if (address === undefined) return 'unknown'
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7)
  if (!address.includes(':')) return address
  const bare = address.split('%', 1)[0] ?? address
  const [head = '', tail] = bare.split('::', 2)
  const left = head === '' ? [] : head.split(':')
  const right = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
  return `${groups
    .slice(0, 4)
    .map(g => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`
}

function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
  return match?.[1]
}

const SESSION_HEADER = 'x-gcn-session'
const SESSION_RE = /^[\x21-\x7e]+$/

function randomId(prefix: string): string {
  return `${prefix}-${randomBytes(12).toString('base64url')}`
}

/** Reads a request body of at most `maxBytes`, never buffering more than that. */
function readBody(req: IncomingMessage, maxBytes: number, signal: AbortSignal): Promise<Buffer> {
  // Made only when needed: an Error captures a stack, which every request would otherwise pay for
  // on the way to its first token.
  const tooLarge = (): HttpError =>
    new HttpError(413, 'invalid_request_error', 'request_too_large', `the request body exceeds ${maxBytes} bytes`, null, {
      Connection: 'close'
    })
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.reject(tooLarge())
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const cleanup = (): void => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      signal.removeEventListener('abort', onAbort)
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > maxBytes) {
        // The rest is discarded (the stream keeps flowing) so the 413 can still be delivered.
        cleanup()
        chunks.length = 0
        reject(tooLarge())
        return
      }
      chunks.push(chunk)
    }
    const onEnd = (): void => {
      cleanup()
      resolve(Buffer.concat(chunks, size))
    }
    const onError = (err: Error): void => {
      cleanup()
      reject(err)
    }
    const onAbort = (): void => {
      cleanup()
      reject(signal.reason)
    }
    if (signal.aborted) {
      reject(signal.reason)
      return
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(utf8.decode(body))
  } catch {
    throw new HttpError(400, 'invalid_request_error', 'invalid_json', 'the request body is not valid UTF-8 JSON')
  }
}

class HttpGateway implements Gateway {
  private readonly host: string
  private readonly requestedPort: number
  private readonly maxBodyBytes: number
  private readonly limits: GatewayLimits
  private readonly publicBaseUrl?: string
  private readonly keys: ApiKeyStore
  private readonly log: Logger
  private server?: Server
  private boundPort?: number
  private readonly inflight = new Set<AbortController>()
  private readonly authFailures: BucketMap
  private readonly keyBuckets: BucketMap
  private readonly concurrency = new ConcurrencyLimiter()
  private readonly counters = {
    requestsTotal: 0,
    requestsByStatus: new Map<number, number>(),
    activeRequests: 0,
    activeStreams: 0,
    streamErrors: 0,
    promptTokens: 0,
    completionTokens: 0
  }

  constructor(
    init: GatewayInit,
    private readonly components: GatewayComponents
  ) {
    this.host = init.host ?? GATEWAY_DEFAULTS.host
    this.requestedPort = init.port ?? GATEWAY_DEFAULTS.port
    this.maxBodyBytes = init.maxBodyBytes ?? GATEWAY_DEFAULTS.maxBodyBytes
    this.limits = resolveLimits(init.limits)
    if (this.limits.defaultMaxTokens > REQUEST_LIMITS.maxTokens) {
      throw new GcnError(`gateway defaultMaxTokens exceeds ${REQUEST_LIMITS.maxTokens}`)
    }
    if (!Number.isSafeInteger(this.maxBodyBytes) || this.maxBodyBytes < 1)
      throw new GcnError('gateway maxBodyBytes must be a positive integer')
    if (!Number.isSafeInteger(this.requestedPort) || this.requestedPort < 0 || this.requestedPort > 65_535) {
      throw new GcnError('gateway port must be an integer from 0 to 65535')
    }
    if (init.publicBaseUrl !== undefined) this.publicBaseUrl = init.publicBaseUrl.replace(/\/+$/, '')
    this.keys = init.apiKeys
    this.log = components.logger.child('gateway')
    this.authFailures = new BucketMap(this.limits.maxTrackedClients)
    this.keyBuckets = new BucketMap(this.limits.maxTrackedClients)
  }

  get port(): number {
    if (this.boundPort === undefined) throw new NotStartedError('the gateway is not started')
    return this.boundPort
  }

  get url(): string {
    if (this.publicBaseUrl !== undefined) return this.publicBaseUrl
    let host = this.host
    if (host === '0.0.0.0') host = '127.0.0.1'
    else if (host === '::') host = '::1'
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.port}/v1`
  }

  get stats(): GatewayStats {
    const c = this.counters
    return {
      requestsTotal: c.requestsTotal,
      requestsByStatus: Object.fromEntries([...c.requestsByStatus].map(([k, v]) => [String(k), v])),
      activeRequests: c.activeRequests,
      activeStreams: c.activeStreams,
      streamErrors: c.streamErrors,
      promptTokens: c.promptTokens,
      completionTokens: c.completionTokens
    }
  }

  async start(): Promise<void> {
    if (this.server !== undefined) return
    const server = createServer(
      {
        noDelay: true,
        requestTimeout: this.limits.bodyTimeoutMs,
        headersTimeout: Math.min(this.limits.headersTimeoutMs, this.limits.bodyTimeoutMs),
        // Node checks the two timeouts above on this interval (default 30 s).
        connectionsCheckingInterval: 1_000
      },
      (req, res) => {
        void this.handle(req, res)
      }
    )
    server.keepAliveTimeout = this.limits.keepAliveTimeoutMs
    this.server = server
    try {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error): void => {
          server.off('listening', onListening)
          reject(err)
        }
        const onListening = (): void => {
          server.off('error', onError)
          resolve()
        }
        server.once('error', onError)
        server.once('listening', onListening)
        server.listen(this.requestedPort, this.host)
      })
    } catch (err) {
      this.server = undefined
      throw new GcnError(`the gateway could not listen on ${this.host}:${this.requestedPort}`, {
        cause: err,
        hint: 'is the port in use? choose another or 0 for any free port'
      })
    }
    server.on('error', err => this.log.error('server error', { err }))
    this.boundPort = (server.address() as AddressInfo).port
    this.log.info('gateway listening', { url: this.url })
  }

  async stop(): Promise<void> {
    const server = this.server
    if (server === undefined) return
    this.server = undefined
    const closed = new Promise<void>(resolve => server.close(() => resolve()))
    for (const controller of this.inflight) controller.abort(new GatewayStoppingError('the gateway is stopping'))
    // One turn for handlers to write their final error event, then cut every connection.
    await nextTurn()
    server.closeAllConnections()
    await closed
    this.boundPort = undefined
    this.log.info('gateway stopped')
  }

  // ---- request handling ------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now()
    const ctx: RequestContext = { method: req.method ?? '', path: pathOf(req.url) }
    res.once('close', () => this.finished(res, ctx, started))
    try {
      await this.route(req, res, ctx)
    } catch (err) {
      if (err instanceof ClientClosedError || res.destroyed) return
      const httpError = this.toHttpError(err, ctx)
      this.sendError(res, ctx, httpError)
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
    const { method, path } = ctx
    const allow = (m: string): void => {
      if (method !== m)
        throw new HttpError(405, 'invalid_request_error', 'method_not_allowed', `${method} is not allowed on ${path}`, null, { Allow: m })
    }
    if (path === '/health') {
      allow('GET')
      return this.sendJson(res, 200, { status: 'ok' })
    }
    if (path === '/v1/models') {
      allow('GET')
      this.authenticate(req, ctx)
      return this.sendJson(res, 200, modelList(this.components.backend.listModels()))
    }
    if (path.startsWith('/v1/models/')) {
      allow('GET')
      this.authenticate(req, ctx)
      let wanted: string
      try {
        wanted = decodeURIComponent(path.slice('/v1/models/'.length))
      } catch {
        throw new HttpError(404, 'invalid_request_error', 'model_not_found', 'the model does not exist', 'model')
      }
      const model = this.findModel(wanted)
      if (model === undefined) throw new HttpError(404, 'invalid_request_error', 'model_not_found', 'the model does not exist', 'model')
      return this.sendJson(res, 200, modelObject(model))
    }
    if (path === '/v1/chat/completions') {
      allow('POST')
      return this.inference(req, res, ctx, 'chat')
    }
    if (path === '/v1/completions') {
      allow('POST')
      return this.inference(req, res, ctx, 'completion')
    }
    throw new HttpError(404, 'invalid_request_error', 'unknown_url', `no such endpoint: ${method} ${path.slice(0, 200)}`)
  }

  private findModel(nameOrId: string): ModelInfo | undefined {
    const lower = nameOrId.toLowerCase()
    return this.components.backend.listModels().find(m => m.name === nameOrId || m.id === lower)
  }

  /** Checks the Bearer key; failed attempts are limited per client address. */
  private authenticate(req: IncomingMessage, ctx: RequestContext): ApiKeyRecord {
    const client = clientKey(req.socket.remoteAddress)
    const now = performance.now()
    const wait = this.authFailures.waitMs(client, now)
    if (wait > 0) throw rateLimited('too many failed authentication attempts from this address', wait)
    const key = bearerToken(req.headers.authorization)
    const record = key === undefined ? undefined : this.keys.lookup(key)
    if (record === undefined) {
      this.authFailures.get(client, this.limits.authFailuresPerMinute, now).take(now)
      const message = key === undefined ? 'missing API key: send it as "Authorization: Bearer <key>"' : 'incorrect API key provided'
      throw new HttpError(401, 'invalid_request_error', 'invalid_api_key', message, null, { 'WWW-Authenticate': 'Bearer' })
    }
    ctx.gameId = record.gameId
    return record
  }

  private async inference(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, endpoint: Endpoint): Promise<void> {
    traceTaskStep('gateway.request')
    ctx.endpoint = endpoint
    const key = this.authenticate(req, ctx)
    if (this.components.gameInGoodStanding?.(key.gameId) === false) {
      throw new HttpError(
        402,
        'insufficient_quota',
        'game_delinquent',
        `game ${key.gameId} is delinquent: its settlement deposit did not cover its last debit; top up the deposit to resume`
      )
    }
    if (this.server === undefined) throw unavailable('the gateway is stopping')
    if (this.counters.activeRequests >= this.limits.maxActiveRequests) throw unavailable('the gateway is at capacity; retry shortly')
    // Concurrency first: a request turned away for it should not also spend a rate token.
    if (!this.concurrency.tryAcquire(key.keyHash, key.maxConcurrent)) {
      throw rateLimited(`too many concurrent requests for this API key (limit ${key.maxConcurrent})`, 1_000)
    }
    const now = performance.now()
    const wait = this.keyBuckets.get(key.keyHash, key.ratePerMinute, now).take(now)
    if (wait > 0) {
      this.concurrency.release(key.keyHash)
      throw rateLimited(`rate limit of ${key.ratePerMinute} requests per minute exceeded for this API key`, wait)
    }

    const controller = new AbortController()
    const signal = controller.signal
    const onClose = (): void => {
      if (!res.writableFinished) controller.abort(new ClientClosedError('the client closed the connection'))
    }
    const timer = setTimeout(
      () => controller.abort(new TimeoutError(`the request did not finish within ${this.limits.requestTimeoutMs} ms`)),
      this.limits.requestTimeoutMs
    )
    res.on('close', onClose)
    this.inflight.add(controller)
    this.counters.activeRequests++
    try {
      const body = parseJson(await readBody(req, this.maxBodyBytes, signal))
      const opts = { defaultMaxTokens: this.limits.defaultMaxTokens, maxModelChars: GATEWAY_DEFAULTS.maxModelChars }
      const parsed = endpoint === 'chat' ? parseChatRequest(body, opts) : parseCompletionRequest(body, opts)
      ctx.model = parsed.model
      ctx.stream = parsed.stream
      traceTaskStep('gateway.parsed')
      const request: InferenceRequest = { model: parsed.model, gameId: key.gameId, input: parsed.input, params: parsed.params }
      const sessionId = this.sessionId(req, parsed)
      if (sessionId !== undefined) request.sessionId = sessionId
      const meta: ResponseMeta = {
        id: randomId(endpoint === 'chat' ? 'chatcmpl' : 'cmpl'),
        created: Math.floor(Date.now() / 1000),
        model: this.findModel(parsed.model)?.name ?? parsed.model
      }
      if (parsed.stream) await this.streamAnswer(req, res, ctx, parsed, request, meta, signal)
      else await this.jsonAnswer(res, ctx, parsed, request, meta, signal)
    } catch (err) {
      // Whatever the backend threw after an abort, the abort's reason is the real cause.
      throw signal.aborted ? signal.reason : err
    } finally {
      clearTimeout(timer)
      res.off('close', onClose)
      this.inflight.delete(controller)
      this.counters.activeRequests--
      this.concurrency.release(key.keyHash)
    }
  }

  /** `X-GCN-Session` header, else the OpenAI `user` field (hashed when too long to be an id). */
  private sessionId(req: IncomingMessage, parsed: ParsedRequest): string | undefined {
    const header = req.headers[SESSION_HEADER]
    if (header !== undefined) {
      const value = Array.isArray(header) ? header[0] : header
      if (value === undefined || value.length > REQUEST_LIMITS.maxIdChars || !SESSION_RE.test(value)) {
        throw new InvalidRequestError(`X-GCN-Session must be 1 to ${REQUEST_LIMITS.maxIdChars} printable ASCII characters`, {
          param: 'X-GCN-Session'
        })
      }
      return value
    }
    if (parsed.user === undefined) return undefined
    if (parsed.user.length <= REQUEST_LIMITS.maxIdChars) return parsed.user
    return createHash('sha256').update(parsed.user, 'utf8').digest('hex')
  }

  /** The done event, or an error when the backend reports a failure through it. */
  private checkDone(done: InferenceDone): InferenceDone {
    if (done.finishReason === 'error' || done.finishReason === 'aborted') {
      throw new TaskFailedError(`the task ended with finish reason '${done.finishReason}'`, { retryable: true })
    }
    return done
  }

  private account(ctx: RequestContext, done: InferenceDone): void {
    ctx.promptTokens = done.usage.promptTokens
    ctx.completionTokens = done.usage.completionTokens
    this.counters.promptTokens += done.usage.promptTokens
    this.counters.completionTokens += done.usage.completionTokens
  }

  private async jsonAnswer(
    res: ServerResponse,
    ctx: RequestContext,
    parsed: ParsedRequest,
    request: InferenceRequest,
    meta: ResponseMeta,
    signal: AbortSignal
  ): Promise<void> {
    const pieces: string[] = []
    for await (const event of this.components.backend.stream(request, { signal, whole: true })) {
      if (signal.aborted) throw signal.reason
      if (event.type === 'delta') {
        pieces.push(event.text)
        continue
      }
      const done = this.checkDone(event)
      this.account(ctx, done)
      const finish = toOpenAiFinishReason(done.finishReason)
      const text = pieces.join('')
      const body =
        parsed.endpoint === 'chat'
          ? chatCompletion(meta, text, finish, done.usage, done.modelId, done.taskId)
          : textCompletion(meta, text, finish, done.usage, done.modelId, done.taskId)
      this.sendJson(res, 200, body, { 'X-Request-Id': meta.id })
      return
    }
    throw new TaskFailedError('the backend ended without a result', { retryable: true })
  }

  private async streamAnswer(
    req: IncomingMessage,
    res: ServerResponse,
    ctx: RequestContext,
    parsed: ParsedRequest,
    request: InferenceRequest,
    meta: ResponseMeta,
    signal: AbortSignal
  ): Promise<void> {
    const { endpoint, includeUsage } = parsed
    let open = false
    /** Events waiting to go out with the next write (the opening role chunk rides with the first token). */
    const pending: unknown[] = []
    /** The first write was published as a task step. */
    let traced = false
    const send = async (data?: unknown): Promise<void> => {
      if (signal.aborted) throw signal.reason
      if (data !== undefined) pending.push(data)
      if (pending.length === 0) return
      const text = pending.map(d => `data: ${JSON.stringify(d)}\n\n`).join('')
      pending.length = 0
      // One write per event (or per first token with the role chunk), flushed at once (no Nagle);
      // wait only if the client reads slowly.
      const flushed = res.write(text)
      if (!traced) {
        traced = true
        traceTaskStep('gateway.firstWrite')
      }
      if (!flushed) await once(res, 'drain', { signal })
    }
    const openStream = (): void => {
      open = true
      this.counters.activeStreams++
      req.socket.setNoDelay(true)
      res.writeHead(200, { ...SSE_HEADERS, 'X-Request-Id': meta.id })
      if (endpoint === 'chat') pending.push(streamChunk(endpoint, meta, { role: 'assistant', content: '' }, includeUsage))
    }
    try {
      for await (const event of this.components.backend.stream(request, { signal })) {
        if (signal.aborted) throw signal.reason
        if (event.type === 'delta') {
          if (!open) openStream()
          if (event.text.length > 0) await send(streamChunk(endpoint, meta, { content: event.text }, includeUsage))
          continue
        }
        // Checked before the headers go out, so a failed task without output still gets an HTTP status.
        const done = this.checkDone(event)
        if (!open) openStream()
        this.account(ctx, done)
        const finish = toOpenAiFinishReason(done.finishReason)
        await send(
          streamChunk(
            endpoint,
            meta,
            {
              ...(endpoint === 'chat' ? {} : { content: '' }),
              finish,
              modelId: done.modelId,
              ...(done.taskId === undefined ? {} : { taskId: done.taskId })
            },
            includeUsage
          )
        )
        if (includeUsage) await send(usageChunk(endpoint, meta, done.usage, done.modelId))
        res.end('data: [DONE]\n\n')
        return
      }
      throw new TaskFailedError('the backend ended the stream without a result', { retryable: true })
    } catch (err) {
      if (!open) throw err
      const cause = signal.aborted ? signal.reason : err
      if (cause instanceof ClientClosedError || res.destroyed) return
      const httpError = this.toHttpError(cause, ctx)
      ctx.error = httpError.code ?? httpError.type
      this.counters.streamErrors++
      res.end(`data: ${JSON.stringify(errorBody(httpError.message, httpError.type, httpError.code, httpError.param))}\n\n`)
    } finally {
      if (open) this.counters.activeStreams--
    }
  }

  // ---- responses -------------------------------------------------------------

  private toHttpError(err: unknown, ctx: RequestContext): HttpError {
    if (err instanceof HttpError) return err
    if (err instanceof UnsupportedParameterError) {
      return new HttpError(400, 'invalid_request_error', 'unsupported_parameter', err.message, err.param ?? null)
    }
    if (err instanceof PromptTooLongError) {
      return new HttpError(
        400,
        'invalid_request_error',
        'context_length_exceeded',
        err.message,
        ctx.endpoint === 'completion' ? 'prompt' : 'messages'
      )
    }
    if (err instanceof InvalidRequestError)
      return new HttpError(400, 'invalid_request_error', 'invalid_value', err.message, err.param ?? null)
    if (err instanceof UnknownModelError) return new HttpError(404, 'invalid_request_error', 'model_not_found', err.message, 'model')
    if (err instanceof NoSupplierError) return unavailable(err.message)
    if (err instanceof TaskFailedError) {
      return new HttpError(502, 'server_error', 'task_failed', err.message, null, err.retryable ? { 'Retry-After': '1' } : {})
    }
    if (err instanceof TimeoutError) return new HttpError(504, 'server_error', 'timeout', err.message)
    if (err instanceof GatewayStoppingError) return unavailable(err.message)
    // Unexpected: log the error itself (name, message, code; never request data) and answer generically.
    this.log.error('unexpected error', { err, method: ctx.method, path: ctx.path, gameId: ctx.gameId, model: ctx.model })
    return new HttpError(500, 'server_error', 'internal_error', 'internal server error')
  }

  private sendError(res: ServerResponse, ctx: RequestContext, err: HttpError): void {
    ctx.error = err.code ?? err.type
    if (res.headersSent) {
      res.destroy()
      return
    }
    this.sendJson(res, err.status, errorBody(err.message, err.type, err.code, err.param), err.headers)
  }

  private sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (res.headersSent || res.destroyed) return
    const payload = JSON.stringify(body)
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'Content-Length': String(Buffer.byteLength(payload)),
      'Cache-Control': 'no-store',
      ...headers
    })
    res.end(payload)
  }

  /** Access log and counters, once per request when its response closes. */
  private finished(res: ServerResponse, ctx: RequestContext, started: number): void {
    const status = res.writableFinished ? res.statusCode : 499
    const c = this.counters
    c.requestsTotal++
    c.requestsByStatus.set(status, (c.requestsByStatus.get(status) ?? 0) + 1)
    const fields = {
      method: ctx.method,
      path: ctx.path.slice(0, 200),
      status,
      durationMs: Math.round(performance.now() - started),
      ...(ctx.gameId === undefined ? {} : { gameId: ctx.gameId }),
      ...(ctx.model === undefined ? {} : { model: ctx.model.slice(0, 100) }),
      ...(ctx.stream === undefined ? {} : { stream: ctx.stream }),
      ...(ctx.promptTokens === undefined ? {} : { promptTokens: ctx.promptTokens, completionTokens: ctx.completionTokens }),
      ...(ctx.error === undefined ? {} : { error: ctx.error })
    }
    if (status >= 500) this.log.warn('request', fields)
    else this.log.info('request', fields)
  }
}
