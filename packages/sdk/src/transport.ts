/**
 * What the client needs from HTTP: one request in, a light response out. Two
 * transports provide it: node-transport.ts over node:http (no WHATWG Response,
 * Headers or ReadableStream on the way to the first token) and
 * {@link fromFetch} over any fetch (browsers, or a `fetch` option). Internal:
 * not exported from index.ts.
 */

/**
 * A request as the client sends it.
 *
 * @example
 * ```ts
 * const request: HttpRequest = { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' }
 * ```
 */
export interface HttpRequest {
  method: string
  /** Header names as the client writes them; no duplicates. */
  headers: Record<string, string>
  /** Sent as UTF-8 with its byte length as `Content-Length`. */
  body?: string
  /**
   * Aborting it cancels the request or, once it answered, its body: reads then reject (with the
   * signal's reason over node:http, with fetch's error over fetch) or end; callers check `signal.aborted`.
   */
  signal?: AbortSignal
}

/**
 * A response: status, headers by name, and a body that can be read once
 * (with {@link HttpResponse.chunks} or {@link HttpResponse.text}).
 *
 * @example
 * ```ts
 * const response = await transport(url, { method: 'GET', headers: {} })
 * if (response.ok) for await (const chunk of response.chunks()) parser.push(chunk)
 * ```
 */
export interface HttpResponse {
  readonly status: number
  /** `status` is 2xx. */
  readonly ok: boolean
  /** The reason phrase, `''` when there is none (HTTP/2, some fetch implementations). */
  readonly statusText: string
  /** A header's value by case-insensitive name (repeated headers joined with `, `), or null. */
  header(name: string): string | null
  /**
   * The body's chunks until its end. A failure (the connection closed before
   * the response ended, the signal aborted) rejects; leaving the loop early
   * cancels the body. Empty for a response without a body.
   */
  chunks(): AsyncIterable<Uint8Array>
  /** The whole body as UTF-8 text. */
  text(): Promise<string>
  /**
   * Stops reading: the rest of the body is discarded and, unless it had
   * already arrived whole, the connection closed. Later and pending reads end
   * as if the body had ended. Safe to call more than once.
   */
  cancel(reason?: unknown): void
}

/**
 * Sends one request; resolves once the response's status and headers arrived,
 * rejects on a network failure or with the signal's reason.
 *
 * @example
 * ```ts
 * const transport: Transport = fromFetch(globalThis.fetch)
 * const response = await transport('http://127.0.0.1:8080/v1/models', { method: 'GET', headers: {} })
 * ```
 */
export type Transport = (url: string, request: HttpRequest) => Promise<HttpResponse>

/**
 * A {@link Transport} over a fetch implementation. `fetch` is called as a plain
 * function, so a browser's `window.fetch` works unbound.
 *
 * @example
 * ```ts
 * const transport = fromFetch(globalThis.fetch)
 * ```
 */
export function fromFetch(fetch: typeof globalThis.fetch): Transport {
  return async (url, request) => {
    const init: RequestInit = { method: request.method, headers: request.headers }
    if (request.body !== undefined) init.body = request.body
    if (request.signal !== undefined) init.signal = request.signal
    return new FetchResponse(await fetch(url, init), request.signal)
  }
}

/**
 * The chunks of a stream reader as an async iterator. Returning early (a
 * `break`) cancels the reader, and so does `signal` aborting (a pending read
 * then ends as if the body had ended).
 *
 * @example
 * ```ts
 * for await (const chunk of readerChunks(response.body!.getReader(), signal)) parser.push(chunk)
 * ```
 */
export function readerChunks(reader: ReadableStreamDefaultReader<Uint8Array>, signal?: AbortSignal): AsyncIterableIterator<Uint8Array> {
  const onAbort = (): void => {
    reader.cancel(signal?.reason).catch(() => {})
  }
  signal?.addEventListener('abort', onAbort, { once: true })
  const detach = (): void => signal?.removeEventListener('abort', onAbort)
  const iterator: AsyncIterableIterator<Uint8Array> = {
    next: async () => {
      try {
        const result = await reader.read()
        if (result.done) detach()
        return result as IteratorResult<Uint8Array>
      } catch (error) {
        detach()
        throw error
      }
    },
    return: () => {
      detach()
      reader.cancel().catch(() => {})
      return Promise.resolve({ done: true, value: undefined })
    },
    [Symbol.asyncIterator]: () => iterator
  }
  return iterator
}

/** An async iterable of nothing (a response without a body). */
const NO_CHUNKS: AsyncIterable<Uint8Array> = {
  [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true, value: undefined }) })
}

/** {@link HttpResponse} over a WHATWG Response. */
class FetchResponse implements HttpResponse {
  readonly #response: Response
  readonly #signal: AbortSignal | undefined
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined

  constructor(response: Response, signal: AbortSignal | undefined) {
    this.#response = response
    this.#signal = signal
  }

  get status(): number {
    return this.#response.status
  }

  get ok(): boolean {
    return this.#response.ok
  }

  get statusText(): string {
    return this.#response.statusText
  }

  header(name: string): string | null {
    return this.#response.headers.get(name)
  }

  chunks(): AsyncIterable<Uint8Array> {
    const body = this.#response.body
    if (body === null) return NO_CHUNKS
    // getReader throws if the body was already read, as a second read of a Response does.
    this.#reader = body.getReader()
    // fetch errors the body when the signal aborts; a custom fetch may not, so the reader is cancelled too.
    return readerChunks(this.#reader, this.#signal)
  }

  text(): Promise<string> {
    return this.#response.text()
  }

  cancel(reason?: unknown): void {
    const body = this.#response.body
    if (this.#reader !== undefined) this.#reader.cancel(reason).catch(() => {})
    else if (body !== null && !body.locked) body.cancel(reason).catch(() => {})
  }
}
