/**
 * Typed errors. Every failure the SDK reports is a {@link GcnApiError}
 * subclass with a stable `name` and `code` to switch on, the HTTP `status`
 * when there was one, the gateway's OpenAI `type`/`param`/`code` kept as
 * `type`/`param`/`apiCode`, `retryable`, and the original `cause`.
 */

/**
 * Fields shared by every SDK error.
 *
 * @example
 * ```ts
 * const options: GcnApiErrorOptions = { status: 400, type: 'invalid_request_error', param: 'max_tokens' }
 * ```
 */
export interface GcnApiErrorOptions {
  /** HTTP status of the response, when the error came from one. */
  status?: number
  /** OpenAI error `type`, e.g. `invalid_request_error`. */
  type?: string
  /** OpenAI error `param`: the request field at fault. */
  param?: string
  /** OpenAI error `code` as sent by the gateway (kept apart from the SDK's own stable `code`). */
  apiCode?: string
  /** Overrides the class default. */
  retryable?: boolean
  /** How long the gateway asked the client to wait (from `Retry-After`). */
  retryAfterMs?: number
  cause?: unknown
}

/**
 * Base class of every SDK error.
 *
 * `retryable` says whether sending the same request again later may succeed;
 * the client itself retries only before any output was streamed (see README).
 *
 * @example
 * ```ts
 * try {
 *   await client.chatText({ messages: [{ role: 'user', content: 'Hi' }] })
 * } catch (err) {
 *   if (err instanceof GcnApiError && err.retryable) scheduleRetry()
 * }
 * ```
 */
export class GcnApiError extends Error {
  /** Stable machine-readable code of this class. */
  static readonly code: string = 'ERR_GCN_API'
  /** Whether errors of this class are retryable unless the constructor says otherwise. */
  static readonly retryable: boolean = false
  override name = 'GcnApiError'
  readonly code: string
  readonly status: number | undefined
  readonly type: string | undefined
  readonly param: string | undefined
  readonly apiCode: string | undefined
  readonly retryable: boolean
  readonly retryAfterMs: number | undefined

  constructor(message: string, options: GcnApiErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    const ctor = this.constructor as typeof GcnApiError
    this.code = ctor.code
    this.status = options.status
    this.type = options.type
    this.param = options.param
    this.apiCode = options.apiCode
    this.retryable = options.retryable ?? ctor.retryable
    this.retryAfterMs = options.retryAfterMs
  }

  /** A plain object for structured logs (no cause chain, no request content). */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { name: this.name, code: this.code, message: this.message, retryable: this.retryable }
    for (const key of ['status', 'type', 'param', 'apiCode', 'retryAfterMs'] as const) {
      if (this[key] !== undefined) out[key] = this[key]
    }
    return out
  }
}

/**
 * The API key was missing, wrong or revoked (HTTP 401/403). Never retried.
 *
 * @example
 * ```ts
 * if (err instanceof AuthenticationError) showSettingsScreen()
 * ```
 */
export class AuthenticationError extends GcnApiError {
  static override readonly code = 'ERR_AUTHENTICATION'
  override name = 'AuthenticationError'
}

/**
 * The gateway rejected the request itself (HTTP 400, or 413 when too large);
 * `param` names the field when known. Never retried: fix the request.
 *
 * @example
 * ```ts
 * if (err instanceof InvalidRequestError) console.warn(`bad field ${err.param}: ${err.message}`)
 * ```
 */
export class InvalidRequestError extends GcnApiError {
  static override readonly code = 'ERR_INVALID_REQUEST'
  override name = 'InvalidRequestError'
}

/**
 * No supplier serves the requested model (HTTP 404). Never retried.
 *
 * @example
 * ```ts
 * if (err instanceof ModelNotFoundError) pickAnotherModel(await client.models())
 * ```
 */
export class ModelNotFoundError extends GcnApiError {
  static override readonly code = 'ERR_MODEL_NOT_FOUND'
  override name = 'ModelNotFoundError'
}

/**
 * Too many requests (HTTP 429). `retryAfterMs` is the gateway's `Retry-After`
 * when it sent one; the client honours it while retries remain.
 *
 * @example
 * ```ts
 * if (err instanceof RateLimitError) await sleep(err.retryAfterMs ?? 1000)
 * ```
 */
export class RateLimitError extends GcnApiError {
  static override readonly code = 'ERR_RATE_LIMITED'
  static override readonly retryable = true
  override name = 'RateLimitError'
}

/**
 * The gateway could not serve the request now: no supplier free or the
 * supplier failed (HTTP 502/503, `retryAfterMs` from `Retry-After` on 503).
 *
 * @example
 * ```ts
 * if (err instanceof ServiceUnavailableError) showBusyBubble()
 * ```
 */
export class ServiceUnavailableError extends GcnApiError {
  static override readonly code = 'ERR_SERVICE_UNAVAILABLE'
  static override readonly retryable = true
  override name = 'ServiceUnavailableError'
}

/**
 * The response failed after a 200 status: the gateway sent an error event
 * mid-stream (its `type`/`apiCode` kept), the SSE was malformed or an event
 * exceeded the size cap, or a JSON body could not be read. Not retried,
 * because output may already have been shown.
 *
 * @example
 * ```ts
 * if (err instanceof StreamError) npcBubble.append(' …')
 * ```
 */
export class StreamError extends GcnApiError {
  static override readonly code = 'ERR_STREAM'
  override name = 'StreamError'
}

/**
 * The network failed: the gateway was unreachable, or the connection dropped
 * before the response completed. Retried only if no output had been streamed.
 *
 * @example
 * ```ts
 * if (err instanceof ConnectionError) showOfflineBanner()
 * ```
 */
export class ConnectionError extends GcnApiError {
  static override readonly code = 'ERR_CONNECTION'
  static override readonly retryable = true
  override name = 'ConnectionError'
}

/**
 * The caller's AbortSignal fired (or the stream was closed early); `cause` is
 * the abort reason. Never retried.
 *
 * @example
 * ```ts
 * const ac = new AbortController()
 * const reply = client.chat(request, { signal: ac.signal })
 * ac.abort() // reply.done rejects with AbortedError
 * ```
 */
export class AbortedError extends GcnApiError {
  static override readonly code = 'ERR_ABORTED'
  override name = 'AbortedError'
}

/**
 * The whole request (all attempts and the stream) took longer than `timeoutMs`.
 *
 * @example
 * ```ts
 * await client.chatText(request, { timeoutMs: 5_000 }).catch(err => {
 *   if (err instanceof TimeoutError) return fallbackLine()
 *   throw err
 * })
 * ```
 */
export class TimeoutError extends GcnApiError {
  static override readonly code = 'ERR_TIMEOUT'
  static override readonly retryable = true
  override name = 'TimeoutError'
}

interface OpenAiErrorBody {
  message?: unknown
  type?: unknown
  param?: unknown
  code?: unknown
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : undefined
}

/**
 * The fields of an OpenAI-style `error` object, as GcnApiError options plus its message.
 *
 * @example
 * ```ts
 * openAiErrorFields({ message: 'bad', type: 'invalid_request_error', param: 'seed', code: null })
 * // { message: 'bad', type: 'invalid_request_error', param: 'seed' }
 * ```
 */
export function openAiErrorFields(error: unknown): { message: string | undefined; type?: string; param?: string; apiCode?: string } {
  if (typeof error !== 'object' || error === null) return { message: typeof error === 'string' ? error : undefined }
  const body = error as OpenAiErrorBody
  const out: { message: string | undefined; type?: string; param?: string; apiCode?: string } = { message: str(body.message) }
  const type = str(body.type)
  const param = str(body.param)
  const apiCode = str(body.code)
  if (type !== undefined) out.type = type
  if (param !== undefined) out.param = param
  if (apiCode !== undefined) out.apiCode = apiCode
  return out
}

/**
 * The typed error for a non-2xx gateway response.
 *
 * @example
 * ```ts
 * const err = errorFromResponse(429, { error: { message: 'slow down', type: 'rate_limit_error' } }, 2000)
 * err instanceof RateLimitError // true
 * ```
 */
export function errorFromResponse(status: number, body: unknown, retryAfterMs?: number): GcnApiError {
  const payload = typeof body === 'object' && body !== null && 'error' in body ? (body as { error: unknown }).error : body
  const { message, ...fields } = openAiErrorFields(payload)
  const options: GcnApiErrorOptions = { status, ...fields }
  if (retryAfterMs !== undefined) options.retryAfterMs = retryAfterMs
  const text = message ?? `gateway answered HTTP ${status}`
  switch (status) {
    case 400:
    case 413:
    case 422:
      return new InvalidRequestError(text, options)
    case 401:
    case 403:
      return new AuthenticationError(text, options)
    case 404:
      return new ModelNotFoundError(text, options)
    case 429:
      return new RateLimitError(text, options)
    case 502:
    case 503:
      return new ServiceUnavailableError(text, options)
    default:
      return new GcnApiError(text, options)
  }
}
