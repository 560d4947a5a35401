/// <reference types="node" />
/// <reference types="mocha" />
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { expect } from 'chai'
import {
  AbortedError,
  AuthenticationError,
  type ChatStream,
  ConnectionError,
  GcnApiError,
  GcnClient,
  type GcnClientOptions,
  InvalidRequestError,
  ModelNotFoundError,
  RateLimitError,
  ServiceUnavailableError,
  StreamError,
  TimeoutError
} from '../src/index.js'
import { rejection } from './helpers.js'

interface SeenRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  // biome-ignore lint/suspicious/noExplicitAny: request bodies are inspected loosely
  body: any
}

type Handler = (req: IncomingMessage, res: ServerResponse, attempt: number) => void | Promise<void>

interface FakeGateway {
  baseUrl: string
  requests: SeenRequest[]
  /** Resolves with true when a response's connection closed before it was finished. */
  closedEarly: Promise<boolean>[]
  close(): Promise<void>
}

/** A fake gcn gateway on 127.0.0.1: records requests and answers with `handler`. */
async function fakeGateway(handler: Handler): Promise<FakeGateway> {
  const requests: SeenRequest[] = []
  const closedEarly: Promise<boolean>[] = []
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const text = Buffer.concat(chunks).toString('utf8')
    requests.push({ method: req.method!, url: req.url!, headers: req.headers, body: text === '' ? undefined : JSON.parse(text) })
    closedEarly.push(new Promise(resolve => res.on('close', () => resolve(!res.writableFinished))))
    await handler(req, res, requests.length)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    closedEarly,
    close: async () => {
      server.closeAllConnections()
      await new Promise(resolve => server.close(resolve))
    }
  }
}

function sseHead(res: ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' })
}

function event(res: ServerResponse, data: unknown): void {
  res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`)
}

function chatChunk(content: string | undefined, finishReason: string | null = null) {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    model: 'tiny',
    choices: [{ index: 0, delta: content === undefined ? {} : { content }, finish_reason: finishReason }]
  }
}

const USAGE = { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 }

/** A whole streamed chat answer of `pieces`, with usage and [DONE]. */
function streamChat(res: ServerResponse, pieces: string[]): void {
  sseHead(res)
  res.write(': ping\n\n')
  event(res, { ...chatChunk(undefined), choices: [{ index: 0, delta: { role: 'assistant' }, finish_reason: null }] })
  for (const p of pieces) event(res, chatChunk(p))
  event(res, { ...chatChunk(undefined, 'stop'), gcn: { task_id: 'feed01' } })
  event(res, { id: 'chatcmpl-1', object: 'chat.completion.chunk', model: 'tiny', choices: [], usage: USAGE })
  event(res, '[DONE]')
  res.end()
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers })
  res.end(JSON.stringify(body))
}

function apiError(res: ServerResponse, status: number, type: string, headers: Record<string, string> = {}, param: string | null = null) {
  sendJson(res, status, { error: { message: `failed with ${status}`, type, param, code: `code_${status}` } }, headers)
}

async function collect(stream: ChatStream): Promise<{ texts: string[]; error: unknown }> {
  const texts: string[] = []
  try {
    for await (const delta of stream) texts.push(delta.text)
    return { texts, error: undefined }
  } catch (error) {
    return { texts, error }
  }
}

const messages = [{ role: 'user' as const, content: 'Hello' }]

// Every test runs over both transports: Node's default (node:http) and fetch, which browsers use.
for (const transport of ['node:http', 'fetch'] as const)
  describe(`GcnClient (${transport} transport)`, () => {
    let gw: FakeGateway | undefined

    afterEach(async () => {
      await gw?.close()
      gw = undefined
    })

    function client(options: Partial<GcnClientOptions> = {}): GcnClient {
      return new GcnClient({
        baseUrl: gw!.baseUrl + '/',
        apiKey: 'sk-test',
        defaultModel: 'tiny',
        retryBaseDelayMs: 5,
        ...(transport === 'fetch' ? { fetch: globalThis.fetch } : {}),
        ...options
      })
    }

    describe('requests', () => {
      it('lists models with the bearer key', async () => {
        gw = await fakeGateway((_req, res) =>
          sendJson(res, 200, { object: 'list', data: [{ id: 'tiny', object: 'model', created: 1, owned_by: 'gcn', context_size: 2048 }] })
        )
        const models = await client().models()
        expect(models).to.deep.equal([{ id: 'tiny', object: 'model', created: 1, owned_by: 'gcn', context_size: 2048 }])
        expect(gw.requests[0]).to.deep.include({ method: 'GET', url: '/v1/models' })
        expect(gw.requests[0]!.headers.authorization).to.equal('Bearer sk-test')
      })

      it('streams a chat reply and resolves done with text, finish reason, usage, model and id', async () => {
        gw = await fakeGateway((_req, res) => streamChat(res, ['Hel', 'lo ', '🧙‍♂️']))
        const reply = client({ sessionId: 'game-1' }).chat({ messages, temperature: 0.5, seed: 7, stop: ['\n'] })
        const { texts, error } = await collect(reply)
        expect(error).to.equal(undefined)
        expect(texts).to.deep.equal(['Hel', 'lo ', '🧙‍♂️'])
        expect(await reply.done).to.deep.equal({
          text: 'Hello 🧙‍♂️',
          finishReason: 'stop',
          usage: { promptTokens: 5, completionTokens: 3, totalTokens: 8 },
          model: 'tiny',
          id: 'chatcmpl-1',
          taskId: 'feed01'
        })
        const seen = gw.requests[0]!
        expect(seen).to.deep.include({ method: 'POST', url: '/v1/chat/completions' })
        expect(seen.headers).to.include({
          authorization: 'Bearer sk-test',
          'x-gcn-session': 'game-1',
          accept: 'text/event-stream',
          'content-type': 'application/json'
        })
        expect(seen.body).to.deep.equal({
          messages,
          model: 'tiny',
          temperature: 0.5,
          seed: 7,
          stop: ['\n'],
          stream: true,
          stream_options: { include_usage: true }
        })
      })

      it('resolves done without iterating, and a per-call sessionId overrides the client one', async () => {
        gw = await fakeGateway((_req, res) => streamChat(res, ['a', 'b']))
        const result = await client({ sessionId: 'game-1' }).chat({ messages, model: 'other' }, { sessionId: 'npc-7' }).done
        expect(result.text).to.equal('ab')
        expect(gw.requests[0]!.headers['x-gcn-session']).to.equal('npc-7')
        expect(gw.requests[0]!.body.model).to.equal('other')
      })

      it('chatText sends a non-streaming request', async () => {
        gw = await fakeGateway((_req, res) =>
          sendJson(res, 200, {
            id: 'chatcmpl-2',
            object: 'chat.completion',
            model: 'tiny',
            choices: [{ index: 0, message: { role: 'assistant', content: '{"mood":"happy"}' }, finish_reason: 'stop' }],
            usage: USAGE,
            gcn: { task_id: '0a1b2c' }
          })
        )
        const response_format = {
          type: 'json_schema' as const,
          json_schema: { name: 'mood', schema: { type: 'object', properties: { mood: { type: 'string' } } } }
        }
        const result = await client().chatText({ messages, max_tokens: 16, response_format })
        expect(result).to.deep.equal({
          text: '{"mood":"happy"}',
          finishReason: 'stop',
          usage: { promptTokens: 5, completionTokens: 3, totalTokens: 8 },
          model: 'tiny',
          id: 'chatcmpl-2',
          taskId: '0a1b2c'
        })
        expect(gw.requests[0]!.body).to.deep.equal({ messages, model: 'tiny', max_tokens: 16, response_format, stream: false })
        expect(gw.requests[0]!.headers.accept).to.equal('application/json')
        expect(gw.requests[0]!.headers).to.not.have.property('x-gcn-session')
      })

      it('streams and fetches raw-prompt completions', async () => {
        gw = await fakeGateway((req, res) => {
          if (req.headers.accept === 'text/event-stream') {
            sseHead(res)
            for (const text of ['Once', ' upon'])
              event(res, { id: 'cmpl-1', model: 'tiny', choices: [{ index: 0, text, finish_reason: null }] })
            event(res, { id: 'cmpl-1', model: 'tiny', choices: [{ index: 0, text: '', finish_reason: 'length' }] })
            event(res, '[DONE]')
            res.end()
          } else {
            sendJson(res, 200, { id: 'cmpl-2', model: 'tiny', choices: [{ index: 0, text: 'The Prancing Pony', finish_reason: 'stop' }] })
          }
        })
        const c = client()
        const stream = c.complete({ prompt: 'Once', max_tokens: 2 })
        expect((await collect(stream)).texts).to.deep.equal(['Once', ' upon'])
        expect(await stream.done).to.deep.include({ text: 'Once upon', finishReason: 'length', usage: null, id: 'cmpl-1' })
        expect(await c.completeText({ prompt: 'Tavern:' })).to.deep.include({ text: 'The Prancing Pony', id: 'cmpl-2' })
        expect(gw.requests.map(r => r.url)).to.deep.equal(['/v1/completions', '/v1/completions'])
        expect(gw.requests[0]!.body).to.deep.include({ prompt: 'Once', stream: true })
        expect(gw.requests[1]!.body).to.deep.include({ prompt: 'Tavern:', stream: false })
      })

      it('assembles a stream that arrives one byte per chunk (custom fetch)', async () => {
        const sse =
          `data: ${JSON.stringify(chatChunk('Grüße '))}\r\n\r\n` +
          `data: ${JSON.stringify(chatChunk('🐉🔥'))}\r\n\r\n` +
          `data: ${JSON.stringify(chatChunk(undefined, 'stop'))}\r\n\r\n` +
          'data: [DONE]\r\n\r\n'
        const bytes = new TextEncoder().encode(sse)
        const fetch: typeof globalThis.fetch = async () => {
          let i = 0
          const body = new ReadableStream<Uint8Array>({
            pull(controller) {
              if (i < bytes.length) controller.enqueue(bytes.subarray(i, ++i))
              else controller.close()
            }
          })
          return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } })
        }
        const c = new GcnClient({ baseUrl: 'http://gateway.invalid/v1', apiKey: 'k', defaultModel: 'tiny', fetch })
        const stream = c.chat({ messages })
        expect((await collect(stream)).texts).to.deep.equal(['Grüße ', '🐉🔥'])
        expect((await stream.done).text).to.equal('Grüße 🐉🔥')
      })

      it('rejects a request without a model before sending anything', async () => {
        gw = await fakeGateway((_req, res) => streamChat(res, ['x']))
        const error = await rejection(client({ defaultModel: undefined }).chat({ messages }).done)
        expect(error).to.be.instanceOf(InvalidRequestError)
        expect((error as InvalidRequestError).param).to.equal('model')
        expect(gw.requests).to.have.length(0)
      })
    })

    describe('retries', () => {
      it('retries 503 then succeeds, counting attempts', async () => {
        gw = await fakeGateway((_req, res, attempt) => (attempt === 1 ? apiError(res, 503, 'server_error') : streamChat(res, ['ok'])))
        const stream = client().chat({ messages })
        expect((await collect(stream)).texts).to.deep.equal(['ok'])
        expect(gw.requests).to.have.length(2)
      })

      it('gives up after maxRetries with ServiceUnavailableError', async () => {
        gw = await fakeGateway((_req, res) => apiError(res, 502, 'server_error'))
        const error = await rejection(client({ maxRetries: 2 }).chatText({ messages }))
        expect(error).to.be.instanceOf(ServiceUnavailableError)
        expect(error).to.include({ name: 'ServiceUnavailableError', code: 'ERR_SERVICE_UNAVAILABLE', status: 502, retryable: true })
        expect(gw.requests).to.have.length(3)
      })

      it('waits out Retry-After on 429', async () => {
        gw = await fakeGateway((_req, res, attempt) =>
          attempt === 1 ? apiError(res, 429, 'rate_limit_error', { 'Retry-After': '1' }) : streamChat(res, ['ok'])
        )
        const started = Date.now()
        const result = await client({ retryBaseDelayMs: 1 }).chat({ messages }).done
        expect(result.text).to.equal('ok')
        expect(Date.now() - started).to.be.at.least(950)
        expect(gw.requests).to.have.length(2)
      })

      it('reports retryAfterMs on RateLimitError when no retries are left', async () => {
        gw = await fakeGateway((_req, res) => apiError(res, 429, 'rate_limit_error', { 'Retry-After': '3' }))
        const error = await rejection(client({ maxRetries: 0 }).chatText({ messages }))
        expect(error).to.be.instanceOf(RateLimitError)
        expect(error).to.include({
          code: 'ERR_RATE_LIMITED',
          status: 429,
          retryAfterMs: 3000,
          type: 'rate_limit_error',
          apiCode: 'code_429'
        })
        expect(gw.requests).to.have.length(1)
      })

      it('reads Retry-After as an HTTP date and retry-after-ms too', async () => {
        const inTenSeconds = new Date(Date.now() + 10_000).toUTCString()
        gw = await fakeGateway((_req, res, attempt) =>
          attempt === 1
            ? apiError(res, 503, 'server_error', { 'Retry-After': inTenSeconds })
            : apiError(res, 429, 'rate_limit_error', { 'retry-after-ms': '40', 'Retry-After': '9' })
        )
        const first = await rejection(client({ maxRetries: 0 }).chatText({ messages }))
        expect((first as ServiceUnavailableError).retryAfterMs).to.be.within(8_000, 10_000)
        const second = await rejection(client({ maxRetries: 0 }).chatText({ messages }))
        expect((second as RateLimitError).retryAfterMs).to.equal(40)
      })

      it('does not wait for a Retry-After that ends past the timeout', async () => {
        gw = await fakeGateway((_req, res) => apiError(res, 503, 'server_error', { 'Retry-After': '30' }))
        const started = Date.now()
        const error = await rejection(client({ timeoutMs: 5_000 }).chatText({ messages }))
        expect(error).to.be.instanceOf(ServiceUnavailableError)
        expect((error as ServiceUnavailableError).retryAfterMs).to.equal(30_000)
        expect(Date.now() - started).to.be.below(1_000)
        expect(gw.requests).to.have.length(1)
      })

      const notRetried = [
        { status: 400, type: 'invalid_request_error', param: 'temperature', cls: InvalidRequestError, code: 'ERR_INVALID_REQUEST' },
        { status: 401, type: 'authentication_error', param: null, cls: AuthenticationError, code: 'ERR_AUTHENTICATION' },
        { status: 404, type: 'invalid_request_error', param: 'model', cls: ModelNotFoundError, code: 'ERR_MODEL_NOT_FOUND' },
        { status: 413, type: 'invalid_request_error', param: 'messages', cls: InvalidRequestError, code: 'ERR_INVALID_REQUEST' }
      ]
      for (const { status, type, param, cls, code } of notRetried) {
        it(`does not retry ${status} and maps it to ${cls.name}`, async () => {
          gw = await fakeGateway((_req, res) => apiError(res, status, type, {}, param))
          const error = await rejection(client({ maxRetries: 3 }).chat({ messages }).done)
          expect(error).to.be.instanceOf(cls)
          expect(error).to.be.instanceOf(GcnApiError)
          expect(error).to.include({
            name: cls.name,
            code,
            status,
            type,
            retryable: false,
            message: `failed with ${status}`,
            apiCode: `code_${status}`
          })
          expect((error as GcnApiError).param).to.equal(param ?? undefined)
          expect(gw.requests).to.have.length(1)
        })
      }

      it('retries a connection dropped before any data', async () => {
        gw = await fakeGateway((req, res, attempt) => {
          if (attempt === 1) req.socket.destroy()
          else streamChat(res, ['back'])
        })
        const result = await client().chat({ messages }).done
        expect(result.text).to.equal('back')
        expect(gw.requests).to.have.length(2)
      })

      it('retries an unreachable gateway and then reports ConnectionError', async () => {
        gw = await fakeGateway(() => {})
        const deadUrl = gw.baseUrl
        await gw.close()
        gw = undefined
        let calls = 0
        const fetch: typeof globalThis.fetch = (input, init) => {
          calls++
          return globalThis.fetch(input, init)
        }
        const c = new GcnClient({ baseUrl: deadUrl, apiKey: 'k', defaultModel: 'tiny', fetch, retryBaseDelayMs: 1, maxRetries: 2 })
        const error = await rejection(c.chatText({ messages }))
        expect(error).to.be.instanceOf(ConnectionError)
        expect(error).to.include({ code: 'ERR_CONNECTION', retryable: true })
        expect((error as ConnectionError).cause).to.be.instanceOf(Error)
        expect(calls).to.equal(3)
      })

      it('never retries once stream data was yielded', async () => {
        gw = await fakeGateway((_req, res) => {
          sseHead(res)
          event(res, chatChunk('partial'))
          setTimeout(() => res.destroy(), 50)
        })
        const stream = client({ maxRetries: 3 }).chat({ messages })
        const { texts, error } = await collect(stream)
        expect(texts).to.deep.equal(['partial'])
        expect(error).to.be.instanceOf(ConnectionError)
        expect(await rejection(stream.done)).to.equal(error)
        expect(gw.requests).to.have.length(1)
      })
    })

    describe('stream failures', () => {
      it('turns a mid-stream error event into StreamError, keeping the type and code, without retrying', async () => {
        gw = await fakeGateway((_req, res) => {
          sseHead(res)
          event(res, chatChunk('Once'))
          event(res, { error: { message: 'supplier went away', type: 'server_error', code: 'task_failed' } })
          res.end()
        })
        const stream = client().chat({ messages })
        const { texts, error } = await collect(stream)
        expect(texts).to.deep.equal(['Once'])
        expect(error).to.be.instanceOf(StreamError)
        expect(error).to.include({
          name: 'StreamError',
          code: 'ERR_STREAM',
          message: 'supplier went away',
          type: 'server_error',
          apiCode: 'task_failed',
          // The caller may send it again; the client itself did not (text was already delivered).
          retryable: true
        })
        expect(gw.requests).to.have.length(1)
      })

      it('a mid-stream error that is not a server error is not retryable', async () => {
        gw = await fakeGateway((_req, res) => {
          sseHead(res)
          event(res, chatChunk('Once'))
          event(res, { error: { message: 'output broke the schema', type: 'invalid_request_error', code: 'bad_output' } })
          res.end()
        })
        const { error } = await collect(client().chat({ messages }))
        expect(error).to.be.instanceOf(StreamError)
        expect((error as StreamError).retryable).to.equal(false)
      })

      it('turns malformed JSON in an event into StreamError', async () => {
        gw = await fakeGateway((_req, res) => {
          sseHead(res)
          res.write('data: {"choices": [\n\n')
          res.end()
        })
        const error = await rejection(client().chat({ messages }).done)
        expect(error).to.be.instanceOf(StreamError)
        expect((error as StreamError).cause).to.be.instanceOf(SyntaxError)
        expect(gw.requests).to.have.length(1)
      })
    })

    describe('abort and timeout', () => {
      it('aborting mid-stream rejects with AbortedError and closes the connection', async () => {
        gw = await fakeGateway((_req, res) => {
          sseHead(res)
          event(res, chatChunk('first'))
          // never ends: only the client can finish this
        })
        const ac = new AbortController()
        const stream = client().chat({ messages }, { signal: ac.signal })
        const texts: string[] = []
        let error: unknown
        try {
          for await (const delta of stream) {
            texts.push(delta.text)
            ac.abort(new Error('player skipped'))
          }
        } catch (e) {
          error = e
        }
        expect(texts).to.deep.equal(['first'])
        expect(error).to.be.instanceOf(AbortedError)
        expect(error).to.include({ code: 'ERR_ABORTED', retryable: false })
        expect((error as AbortedError).cause).to.deep.equal(new Error('player skipped'))
        expect(await rejection(stream.done)).to.be.instanceOf(AbortedError)
        expect(await gw.closedEarly[0]).to.equal(true)
      })

      it('leaving the loop early cancels the request', async () => {
        gw = await fakeGateway((_req, res) => {
          sseHead(res)
          event(res, chatChunk('first'))
        })
        const stream = client().chat({ messages })
        for await (const _ of stream) break
        expect(await rejection(stream.done)).to.be.instanceOf(AbortedError)
        expect(await gw.closedEarly[0]).to.equal(true)
      })

      it('an already-aborted signal sends nothing', async () => {
        gw = await fakeGateway((_req, res) => streamChat(res, ['x']))
        const error = await rejection(client().chatText({ messages }, { signal: AbortSignal.abort() }))
        expect(error).to.be.instanceOf(AbortedError)
        expect(gw.requests).to.have.length(0)
      })

      it('aborting during the retry backoff rejects with AbortedError', async () => {
        gw = await fakeGateway((_req, res) => apiError(res, 503, 'server_error', { 'Retry-After': '10' }))
        const ac = new AbortController()
        const pending = client().chatText({ messages }, { signal: ac.signal })
        setTimeout(() => ac.abort(), 100)
        expect(await rejection(pending)).to.be.instanceOf(AbortedError)
        expect(gw.requests).to.have.length(1)
      })

      it('times out a stalled stream with TimeoutError', async () => {
        gw = await fakeGateway((_req, res) => {
          sseHead(res)
          event(res, chatChunk('slow'))
        })
        const started = Date.now()
        const stream = client({ timeoutMs: 300 }).chat({ messages })
        const { texts, error } = await collect(stream)
        expect(texts).to.deep.equal(['slow'])
        expect(error).to.be.instanceOf(TimeoutError)
        expect(error).to.include({ name: 'TimeoutError', code: 'ERR_TIMEOUT' })
        expect(Date.now() - started).to.be.within(250, 3_000)
        expect(await gw.closedEarly[0]).to.equal(true)
      })

      it('times out a request with no answer, per call', async () => {
        gw = await fakeGateway(() => {})
        const error = await rejection(client().chatText({ messages }, { timeoutMs: 200 }))
        expect(error).to.be.instanceOf(TimeoutError)
        expect(gw.requests).to.have.length(1)
      })
    })

    describe('errors', () => {
      it('have stable names and codes and serialise without the cause', () => {
        const error = new RateLimitError('slow down', { status: 429, retryAfterMs: 1000, cause: new Error('inner') })
        expect(error.toJSON()).to.deep.equal({
          name: 'RateLimitError',
          code: 'ERR_RATE_LIMITED',
          message: 'slow down',
          retryable: true,
          status: 429,
          retryAfterMs: 1000
        })
        expect(RateLimitError.code).to.equal('ERR_RATE_LIMITED')
        expect(error.cause).to.deep.equal(new Error('inner'))
        expect(error).to.be.instanceOf(Error)
      })
    })
  })

describe('GcnClient transport choice', () => {
  it('uses node:http by default in Node and fetch when given, with the same request on the wire', async () => {
    const gw = await fakeGateway((_req, res) => streamChat(res, ['ok']))
    try {
      const nonAscii = [{ role: 'user' as const, content: 'Grüße, 龍 🐉' }]
      const viaNode = new GcnClient({ baseUrl: `${gw.baseUrl}/v1`, apiKey: 'k', defaultModel: 'tiny' })
      const viaFetch = new GcnClient({ baseUrl: `${gw.baseUrl}/v1`, apiKey: 'k', defaultModel: 'tiny', fetch: globalThis.fetch })
      expect((await viaNode.chat({ messages: nonAscii }).done).text).to.equal('ok')
      expect((await viaFetch.chat({ messages: nonAscii }).done).text).to.equal('ok')
      const [node, fetch] = gw.requests
      // undici's fetch announces itself with fetch-only headers; node:http sends just ours.
      expect(fetch!.headers['sec-fetch-mode']).to.equal('cors')
      expect(node!.headers['sec-fetch-mode']).to.equal(undefined)
      for (const seen of [node!, fetch!]) {
        expect(seen.body.messages).to.deep.equal(nonAscii)
        expect(seen.headers.authorization).to.equal('Bearer k')
        expect(Number(seen.headers['content-length'])).to.equal(Buffer.byteLength(JSON.stringify(seen.body)))
      }
    } finally {
      await gw.close()
    }
  })
})
