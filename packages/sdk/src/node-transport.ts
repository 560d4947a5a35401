/**
 * The client's default transport in Node: a `fetch` built on node:http and
 * node:https with keep-alive agents. Node's own fetch (undici) costs ~0.5 ms
 * more per streamed request on loopback (measured on Node 20: time to the
 * first event 1.6 ms against 1.2 ms), which is a tenth of what gcn adds to a
 * completion's time to first token. The modules are looked up at run time
 * (`process.getBuiltinModule`), so browser bundles never import them; where
 * they are missing this returns undefined and the client uses the global fetch.
 *
 * It does what the client needs, not all of fetch: a string URL, a string
 * body, plain-object headers, an AbortSignal; redirects are not followed (the
 * gateway sends none) and the body is not decompressed (none is asked for).
 */

/** The parts of node:http's ClientRequest used here (the SDK has no Node types). */
interface NodeRequest {
  on(event: 'response', listener: (res: NodeResponse) => void): this
  on(event: 'error', listener: (err: Error & { code?: string }) => void): this
  on(event: 'socket', listener: (socket: { setNoDelay(noDelay: boolean): void }) => void): this
  end(body?: Uint8Array): void
  destroy(error?: unknown): void
}

/** The parts of node:http's IncomingMessage used here. */
interface NodeResponse {
  readonly statusCode?: number
  readonly statusMessage?: string
  readonly rawHeaders: string[]
  on(event: 'data', listener: (chunk: Uint8Array) => void): this
  on(event: 'end' | 'close', listener: () => void): this
  on(event: 'error', listener: (err: Error) => void): this
  pause(): void
  resume(): void
  destroy(error?: unknown): void
}

interface NodeHttpModule {
  request(url: string, options: { method: string; headers: Record<string, string>; agent: unknown }): NodeRequest
  Agent: new (options: { keepAlive: boolean; timeout: number }) => unknown
}

type FetchLike = (input: string, init: RequestInit) => Promise<Response>

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304])
/**
 * Idle pooled sockets are closed after this long, before the gateway's keep-alive timeout (5 s by
 * default) closes them: reusing a socket the server is closing fails the request. A request is
 * never resent here (it may have been processed); the client's retries decide, as with fetch.
 */
const IDLE_SOCKET_MS = 4_000

function builtin(id: string): NodeHttpModule | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
  try {
    return proc?.getBuiltinModule?.(id) as NodeHttpModule | undefined
  } catch {
    return undefined
  }
}

let shared: FetchLike | null | undefined

/** The node:http transport, or undefined outside Node (or on a Node without `process.getBuiltinModule`). */
export function nodeHttpFetch(): FetchLike | undefined {
  if (shared === undefined) {
    const http = builtin('node:http')
    const https = builtin('node:https')
    shared = http === undefined || https === undefined ? null : createNodeFetch(http, https)
  }
  return shared ?? undefined
}

function createNodeFetch(http: NodeHttpModule, https: NodeHttpModule): FetchLike {
  // Keep-alive agents: idle sockets are unref'd by Node, so they never keep a process alive.
  const agents = {
    http: new http.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS }),
    https: new https.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS })
  }
  const encoder = new TextEncoder()
  return (url, init) => {
    const signal = init.signal ?? undefined
    const body = typeof init.body === 'string' ? encoder.encode(init.body) : undefined
    if (init.body !== undefined && init.body !== null && body === undefined) {
      return Promise.reject(new TypeError('the node:http transport sends string bodies only'))
    }
    const headers: Record<string, string> = { ...(init.headers as Record<string, string> | undefined) }
    if (body !== undefined) headers['Content-Length'] = String(body.byteLength)
    const secure = url.startsWith('https:')
    const module = secure ? https : http
    const options = { method: init.method ?? 'GET', headers, agent: secure ? agents.https : agents.http }
    return new Promise<Response>((resolve, reject) => {
      if (signal?.aborted === true) return reject(signal.reason)
      const req = module.request(url, options)
      const onAbort = (): void => req.destroy(signal?.reason)
      signal?.addEventListener('abort', onAbort, { once: true })
      req.on('socket', socket => socket.setNoDelay(true))
      // After a response, errors reach its body stream instead (a promise settles once).
      req.on('error', err => {
        signal?.removeEventListener('abort', onAbort)
        reject(signal?.aborted === true ? signal.reason : err)
      })
      req.on('response', res => resolve(toResponse(res, signal, () => signal?.removeEventListener('abort', onAbort))))
      req.end(body)
    })
  }
}

function toResponse(res: NodeResponse, signal: AbortSignal | undefined, release: () => void): Response {
  const status = res.statusCode ?? 0
  const headers = new Headers()
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!)
  if (NULL_BODY_STATUSES.has(status)) {
    res.resume()
    res.on('close', release)
    return new Response(null, { status, headers })
  }
  let finished = false
  const body = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        /** Ends the body once: closed, or errored (with the abort reason when the signal fired). */
        const finish = (error?: Error): void => {
          if (finished) return
          finished = true
          if (error === undefined) controller.close()
          else controller.error(signal?.aborted === true ? signal.reason : error)
        }
        res.on('data', chunk => {
          if (finished) return
          controller.enqueue(chunk)
          if ((controller.desiredSize ?? 1) <= 0) res.pause()
        })
        res.on('end', () => finish())
        res.on('error', err => finish(err))
        res.on('close', () => {
          release()
          finish(new Error('the connection closed before the response ended'))
        })
      },
      pull() {
        res.resume()
      },
      cancel(reason) {
        finished = true
        res.destroy(reason)
      }
    },
    { highWaterMark: 16 }
  )
  return new Response(body, { status, ...(res.statusMessage === undefined ? {} : { statusText: res.statusMessage }), headers })
}
