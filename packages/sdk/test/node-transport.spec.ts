/// <reference types="node" />
/// <reference types="mocha" />
import { EventEmitter, once } from 'node:events'
import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { expect } from 'chai'
import { ConnectionError, GcnClient, RateLimitError } from '../src/index.js'
import { MAX_QUEUED_CHUNKS, NodeHttpResponse, type NodeResponse, nodeHttpTransport } from '../src/node-transport.js'
import { fromFetch, type HttpResponse, type Transport } from '../src/transport.js'
import { rejection } from './helpers.js'

/** Rejects when `promise` has not settled within `ms`: a deadline, never a wait. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** One event-loop turn: lets node:http hand a finished socket back to its agent. */
function nextTurn(): Promise<void> {
  return new Promise(resolve => setImmediate(resolve))
}

interface TestServer {
  url: string
  /** TCP connections accepted so far. */
  readonly connections: number
  /** Requests received so far. */
  readonly requests: number
  close(): Promise<void>
}

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => unknown): Promise<TestServer> {
  const counts = { connections: 0, requests: 0 }
  const server = createServer((req, res) => {
    counts.requests++
    void handler(req, res)
  })
  server.on('connection', () => counts.connections++)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return counts.connections
    },
    get requests() {
      return counts.requests
    },
    close: async () => {
      server.closeAllConnections()
      await new Promise(resolve => server.close(resolve))
    }
  }
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

const messages = [{ role: 'user' as const, content: 'Hello' }]

function transport(): Transport {
  const t = nodeHttpTransport()
  if (t === undefined) throw new Error('node:http transport unavailable')
  return t
}

describe('node:http transport', () => {
  let srv: TestServer | undefined

  afterEach(async () => {
    await srv?.close()
    srv = undefined
  })

  it('sends a non-ASCII body with its UTF-8 byte length and reads non-ASCII text back', async () => {
    const body = JSON.stringify({ prompt: 'Grüße, 龍 🐉 — “quoted”' })
    let seen: { length: string | undefined; encoding: string | undefined; body: string } | undefined
    srv = await serve(async (req, res) => {
      const bytes = await readAll(req)
      seen = { length: req.headers['content-length'], encoding: req.headers['transfer-encoding'], body: bytes.toString('utf8') }
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' })
      // Two writes cut inside the dragon's four-byte sequence.
      const cut = bytes.indexOf(0xf0) + 2
      res.write(bytes.subarray(0, cut))
      res.end(bytes.subarray(cut))
    })
    const response = await transport()(srv.url + '/echo', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body })
    expect(response).to.include({ status: 200, ok: true, statusText: 'OK' })
    expect(await response.text()).to.equal(body)
    expect(seen).to.deep.equal({ length: String(Buffer.byteLength(body)), encoding: undefined, body })
  })

  it('the client sends a non-ASCII prompt intact', async () => {
    let received: unknown
    srv = await serve(async (req, res) => {
      received = JSON.parse((await readAll(req)).toString('utf8'))
      res.writeHead(200, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify({ id: 'c', model: 'tiny', choices: [{ index: 0, text: 'Hallo, Drache 🐲', finish_reason: 'stop' }] }))
    })
    const client = new GcnClient({ baseUrl: srv.url + '/v1', apiKey: 'k', defaultModel: 'tiny' })
    const prompt = 'Übersetze: „Hello, dragon“ 🐉 龍'
    expect((await client.completeText({ prompt })).text).to.equal('Hallo, Drache 🐲')
    expect(received).to.deep.include({ prompt, stream: false })
  })

  it('sends to the same path, host and credentials as node:http given the URL string', async () => {
    const seen: { url: string | undefined; host: string | undefined; authorization: string | undefined }[] = []
    srv = await serve((req, res) => {
      seen.push({ url: req.url, host: req.headers.host, authorization: req.headers.authorization })
      res.end()
    })
    const port = new URL(srv.url).port
    const url = `http://us%40er:p%3Ass@127.0.0.1:${port}/v1/a b/ü?x=1&y=ü#fragment`
    await new Promise((resolve, reject) =>
      request(url, res => res.resume().on('end', resolve))
        .on('error', reject)
        .end()
    )
    await (await transport()(url, { method: 'GET', headers: {} })).text()
    // Served from the parsed-URL cache.
    await (await transport()(url, { method: 'GET', headers: {} })).text()
    expect(seen).to.have.length(3)
    expect(seen[0]).to.deep.equal({
      url: '/v1/a%20b/%C3%BC?x=1&y=%C3%BC',
      host: `127.0.0.1:${port}`,
      authorization: `Basic ${Buffer.from('us@er:p:ss').toString('base64')}`
    })
    expect(seen[1]).to.deep.equal(seen[0])
    expect(seen[2]).to.deep.equal(seen[0])
  })

  it('reaches an IPv6 literal host', async function () {
    const server = createServer((req, res) => res.end(req.headers.host))
    try {
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '::1', resolve))
    } catch {
      this.skip()
    }
    try {
      const { port } = server.address() as AddressInfo
      const response = await transport()(`http://[::1]:${port}/`, { method: 'GET', headers: {} })
      expect(await response.text()).to.equal(`[::1]:${port}`)
    } finally {
      server.closeAllConnections()
      await new Promise(resolve => server.close(resolve))
    }
  })

  it('rejects the body when the server closes the connection mid-body', async () => {
    srv = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '1000' })
      res.write('{"id":"chatcmpl-1","choi', () => res.socket?.destroy())
    })
    const response = await transport()(srv.url, { method: 'GET', headers: {} })
    const error = await within(rejection(response.text()), 5_000, 'body error')
    expect(error).to.be.instanceOf(Error)
  })

  it('the client turns a body cut mid-way into ConnectionError and retries it (nothing was yielded)', async () => {
    srv = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' })
      res.write('data: {"choices":[{"delta":{"content":"Hel', () => res.socket?.destroy())
    })
    const client = new GcnClient({ baseUrl: srv.url + '/v1', apiKey: 'k', defaultModel: 'tiny', maxRetries: 1, retryBaseDelayMs: 1 })
    const error = await within(rejection(client.chat({ messages }).done), 5_000, 'stream error')
    expect(error).to.be.instanceOf(ConnectionError)
    expect(srv.requests).to.equal(2)
  })

  it('aborting mid-body rejects the pending read at once with the reason and closes the socket', async () => {
    let serverSocketClosed: Promise<unknown> | undefined
    srv = await serve((req, res) => {
      serverSocketClosed = once(req.socket, 'close')
      res.writeHead(200, { 'Content-Type': 'text/event-stream' })
      res.write('data: 1\n\n')
    })
    const ac = new AbortController()
    const response = await transport()(srv.url, { method: 'GET', headers: {}, signal: ac.signal })
    const chunks = response.chunks()[Symbol.asyncIterator]()
    const first = await within(chunks.next(), 5_000, 'first chunk')
    expect(Buffer.from(first.value as Uint8Array).toString()).to.equal('data: 1\n\n')
    const pending = chunks.next()
    const reason = new Error('player skipped')
    ac.abort(reason)
    expect(await within(rejection(pending), 1_000, 'read after abort')).to.equal(reason)
    expect(await rejection(chunks.next())).to.equal(reason)
    await within(serverSocketClosed!, 5_000, 'server socket close')
  })

  it('an already-aborted signal sends nothing', async () => {
    srv = await serve((_req, res) => res.end())
    const reason = new Error('too late')
    const error = await rejection(transport()(srv.url, { method: 'GET', headers: {}, signal: AbortSignal.abort(reason) }))
    expect(error).to.equal(reason)
    expect(srv.requests).to.equal(0)
  })

  it('204 and 304 have empty bodies and leave the connection reusable', async () => {
    srv = await serve((req, res) => {
      if (req.url === '/204') res.writeHead(204, { 'X-Seen': 'yes' }).end()
      else if (req.url === '/304') res.writeHead(304, { ETag: '"v1"' }).end()
      else res.end('ok')
    })
    const noContent = await transport()(srv.url + '/204', { method: 'DELETE', headers: {} })
    expect(noContent).to.include({ status: 204, ok: true })
    expect(noContent.header('x-seen')).to.equal('yes')
    const seen: Uint8Array[] = []
    for await (const chunk of noContent.chunks()) seen.push(chunk)
    expect(seen).to.deep.equal([])
    await nextTurn()
    const notModified = await transport()(srv.url + '/304', { method: 'GET', headers: { 'If-None-Match': '"v1"' } })
    expect(notModified).to.include({ status: 304, ok: false, statusText: 'Not Modified' })
    expect(await notModified.text()).to.equal('')
    await nextTurn()
    expect(await (await transport()(srv.url + '/ok', { method: 'GET', headers: {} })).text()).to.equal('ok')
    expect(srv.connections).to.equal(1)
  })

  it('looks headers up by case-insensitive name, as fetch does', async () => {
    srv = await serve((_req, res) => {
      res.setHeader('X-Gcn-Thing', 'Value')
      res.setHeader('X-Multi', ['a', 'b'])
      res.setHeader('Retry-After', '2')
      res.end('{}')
    })
    const viaNode = await transport()(srv.url, { method: 'GET', headers: {} })
    const viaFetch = await fromFetch(globalThis.fetch)(srv.url, { method: 'GET', headers: {} })
    for (const response of [viaNode, viaFetch]) {
      expect(response.header('x-gcn-thing')).to.equal('Value')
      expect(response.header('X-GCN-THING')).to.equal('Value')
      expect(response.header('Retry-After')).to.equal('2')
      expect(response.header('x-multi')).to.equal('a, b')
      expect(response.header('x-missing')).to.equal(null)
      expect(await response.text()).to.equal('{}')
    }
  })

  it('a body is read once', async () => {
    srv = await serve((_req, res) => res.end('once'))
    const response = await transport()(srv.url, { method: 'GET', headers: {} })
    expect(await response.text()).to.equal('once')
    expect(() => response.chunks()).to.throw(TypeError)
  })

  it('pauses the message while a slow reader lags and still delivers every byte in order', async () => {
    const total = 4 * 1024 * 1024
    srv = await serve(async (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' })
      const block = Buffer.alloc(16 * 1024)
      for (let sent = 0; sent < total; sent += block.length) {
        for (let i = 0; i < block.length; i++) block[i] = (sent + i) % 251
        if (!res.write(Buffer.from(block))) await once(res, 'drain')
      }
      res.end()
    })
    // Built by hand around a real IncomingMessage, to watch its pause/resume events.
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      request(srv!.url, resolve).on('error', reject).end()
    })
    const paused = once(res, 'pause')
    const response: HttpResponse = new NodeHttpResponse(res as unknown as NodeResponse, undefined, () => {})
    // Nothing is read yet: the queue fills and the message is paused.
    await within(paused, 5_000, 'pause')
    expect(res.isPaused()).to.equal(true)
    let received = 0
    let pauses = 1
    res.on('pause', () => pauses++)
    for await (const chunk of response.chunks()) {
      for (let i = 0; i < chunk.length; i++) {
        if (chunk[i] !== (received + i) % 251) throw new Error(`byte ${received + i} is wrong`)
      }
      received += chunk.length
      // A slow reader: one event-loop turn per chunk.
      await nextTurn()
    }
    expect(received).to.equal(total)
    expect(pauses).to.be.at.least(2)
  })

  it('a user-supplied fetch is called unbound, as browsers require, and its answers are read', async () => {
    srv = await serve(async (req, res) => {
      await readAll(req)
      if (req.url === '/v1/completions') {
        res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '7' })
        res.end(JSON.stringify({ error: { message: 'slow down', type: 'rate_limit_error' } }))
        return
      }
      res.writeHead(200, { 'Content-Type': 'text/event-stream' })
      res.write(`data: ${JSON.stringify({ id: 'c', model: 'tiny', choices: [{ index: 0, delta: { content: 'Grüß dich' } }] })}\n\n`)
      res.end('data: [DONE]\n\n')
    })
    let calls = 0
    const fetch = function (this: unknown, input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
      // A browser's fetch throws "Illegal invocation" when called on another object.
      if (this !== undefined && this !== globalThis) throw new TypeError('Illegal invocation')
      calls++
      return globalThis.fetch(input, init)
    }
    const client = new GcnClient({ baseUrl: srv.url + '/v1', apiKey: 'k', defaultModel: 'tiny', fetch, maxRetries: 0 })
    expect((await client.chat({ messages }).done).text).to.equal('Grüß dich')
    const error = await rejection(client.completeText({ prompt: 'x' }))
    expect(error).to.be.instanceOf(RateLimitError)
    expect((error as RateLimitError).retryAfterMs).to.equal(7_000)
    expect(calls).to.equal(2)
  })
})

/** A stand-in IncomingMessage that counts pause() and resume(). */
class FakeMessage extends EventEmitter {
  statusCode = 200
  statusMessage = 'OK'
  headers: Record<string, string> = { 'content-type': 'text/event-stream' }
  pauses = 0
  resumes = 0
  destroyed = 0
  pause(): void {
    this.pauses++
  }
  resume(): void {
    this.resumes++
  }
  destroy(): void {
    this.destroyed++
  }
}

describe('NodeHttpResponse', () => {
  function over(message: FakeMessage, signal?: AbortSignal): NodeHttpResponse {
    return new NodeHttpResponse(message as unknown as NodeResponse, signal, () => {})
  }

  it(`pauses at ${MAX_QUEUED_CHUNKS} unread chunks and resumes once they are read`, async () => {
    const message = new FakeMessage()
    const response = over(message)
    for (let i = 0; i < MAX_QUEUED_CHUNKS - 1; i++) message.emit('data', Uint8Array.of(i))
    expect(message.pauses).to.equal(0)
    message.emit('data', Uint8Array.of(MAX_QUEUED_CHUNKS - 1))
    expect(message.pauses).to.equal(1)
    // A chunk already on its way when the message paused is kept, without pausing again.
    message.emit('data', Uint8Array.of(MAX_QUEUED_CHUNKS))
    expect(message.pauses).to.equal(1)
    const chunks = response.chunks()[Symbol.asyncIterator]()
    for (let i = 0; i < MAX_QUEUED_CHUNKS; i++) {
      expect((await chunks.next()).value).to.deep.equal(Uint8Array.of(i))
      expect(message.resumes).to.equal(0)
    }
    expect((await chunks.next()).value).to.deep.equal(Uint8Array.of(MAX_QUEUED_CHUNKS))
    expect(message.resumes).to.equal(1)
    // A waiting reader gets the next chunk directly.
    const pending = chunks.next()
    message.emit('data', Uint8Array.of(99))
    expect((await pending).value).to.deep.equal(Uint8Array.of(99))
    message.emit('end')
    message.emit('close')
    expect(await chunks.next()).to.deep.equal({ done: true, value: undefined })
    expect(message.destroyed).to.equal(0)
  })

  it('chunks queued before the end are still read; a close without an end fails the body', async () => {
    const ended = new FakeMessage()
    const complete = over(ended)
    ended.emit('data', Uint8Array.of(1))
    ended.emit('end')
    ended.emit('close')
    const seen: number[] = []
    for await (const chunk of complete.chunks()) seen.push(...chunk)
    expect(seen).to.deep.equal([1])

    const cut = new FakeMessage()
    const partial = over(cut)
    const pending = partial.chunks()[Symbol.asyncIterator]().next()
    cut.emit('close')
    expect(await rejection(pending)).to.have.property('message', 'the connection closed before the response ended')
  })

  it('leaving the loop early destroys the message; cancelling after the end does not', async () => {
    const open = new FakeMessage()
    const response = over(open)
    open.emit('data', Uint8Array.of(1))
    open.emit('data', Uint8Array.of(2))
    for await (const _ of response.chunks()) break
    expect(open.destroyed).to.equal(1)
    response.cancel()
    expect(open.destroyed).to.equal(1)

    const ended = new FakeMessage()
    const complete = over(ended)
    ended.emit('data', Uint8Array.of(1))
    ended.emit('end')
    complete.cancel()
    expect(ended.destroyed).to.equal(0)
  })

  it('a pending read ends when the body is cancelled, and rejects with the reason when the signal aborted', async () => {
    const message = new FakeMessage()
    const response = over(message)
    const chunks = response.chunks()[Symbol.asyncIterator]()
    const pending = chunks.next()
    response.cancel(new Error('stop'))
    expect(await pending).to.deep.equal({ done: true, value: undefined })

    const ac = new AbortController()
    const aborted = new FakeMessage()
    const failing = over(aborted, ac.signal)
    const read = failing.chunks()[Symbol.asyncIterator]().next()
    ac.abort(new Error('player left'))
    // The message reports its own error once destroyed; the reader sees the signal's reason.
    aborted.emit('error', new Error('aborted'))
    expect(await rejection(read)).to.deep.equal(new Error('player left'))
  })
})
