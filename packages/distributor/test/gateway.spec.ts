import {
  AbortedError,
  createLogger,
  type FinishReason,
  type InferenceEvent,
  type InferenceRequest,
  type ModelInfo,
  REQUEST_LIMITS,
  recordTaskSteps,
  type Usage
} from '@gcn/core'
import { expect } from 'chai'
import OpenAI from 'openai'
import type { InferenceBackend } from '../src/backend.js'
import { NoSupplierError, TaskFailedError, UnknownModelError } from '../src/errors.js'
import { ApiKeyStore, createGateway, type Gateway, type GatewayLimits, hashApiKey } from '../src/gateway.js'

const MODEL_ID = 'ab'.repeat(32)
const TASK_ID = 'cd'.repeat(16)
const MODEL: ModelInfo = { id: MODEL_ID, name: 'tiny-chat', contextSize: 2048, pricePer1kTokens: 12_345_678_901_234_567_890n, suppliers: 3 }
const KEY = 'sk-gcn-test-key-game-1'
const PROMPT_MARKER = 'SECRET-PROMPT-TEXT'

interface Script {
  deltas?: string[]
  finishReason?: FinishReason
  usage?: Usage
  /** Thrown before any event. */
  throwBefore?: Error
  /** Thrown after this many deltas were yielded. */
  throwAfter?: { deltas: number; error: Error }
  /** After this many deltas, wait until the signal is aborted (then reject with AbortedError). */
  hangAfter?: number
}

function waitForAbort(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => {
    if (signal === undefined) return
    const fail = (): void => reject(new AbortedError('fake backend aborted', { cause: signal.reason }))
    if (signal.aborted) fail()
    else signal.addEventListener('abort', fail, { once: true })
  })
}

/** A fake InferenceBackend: yields scripted deltas, throws on demand and records what it was given. */
class FakeBackend implements InferenceBackend {
  models: ModelInfo[] = [MODEL]
  script: Script = {}
  readonly requests: InferenceRequest[] = []
  readonly signals: AbortSignal[] = []

  listModels(): ModelInfo[] {
    return this.models
  }

  async *stream(request: InferenceRequest, options: { signal?: AbortSignal }): AsyncIterable<InferenceEvent> {
    this.requests.push(request)
    if (options.signal !== undefined) this.signals.push(options.signal)
    const s = this.script
    if (s.throwBefore !== undefined) throw s.throwBefore
    const deltas = s.deltas ?? ['Hello', ', ', 'world']
    for (let i = 0; i <= deltas.length; i++) {
      if (s.hangAfter === i) await waitForAbort(options.signal)
      if (s.throwAfter?.deltas === i) throw s.throwAfter.error
      if (i < deltas.length) yield { type: 'delta', text: deltas[i]!, tokenIds: [i] }
    }
    yield {
      type: 'done',
      finishReason: s.finishReason ?? 'stop',
      usage: s.usage ?? { promptTokens: 7, completionTokens: deltas.length },
      modelId: MODEL_ID,
      taskId: TASK_ID
    }
  }
}

async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

interface ErrorJson {
  error: { message: string; type: string; param: string | null; code: string | null }
}

/** One parsed SSE `data:` payload (a chunk or an error event). */
interface Chunk extends Partial<ErrorJson> {
  id: string
  object: string
  model: string
  usage?: unknown
  gcn?: { task_id: string }
  choices: { index: number; delta: { role?: string; content?: string }; text?: string; finish_reason: string | null }[]
}

interface SseEvent {
  data: string
  json?: Chunk
}

function parseSse(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .filter(block => block.trim().length > 0)
    .map(block => {
      const data = block
        .split('\n')
        .filter(line => line.startsWith('data: '))
        .map(line => line.slice(6))
        .join('\n')
      return data === '[DONE]' ? { data } : { data, json: JSON.parse(data) }
    })
}

/** Reads a streamed body until `marker` appears, leaving the stream open. */
async function readUntil(res: Response, marker: string): Promise<ReadableStreamDefaultReader<Uint8Array>> {
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  let text = ''
  while (!text.includes(marker)) {
    const { value, done } = await reader.read()
    if (done) throw new Error(`stream ended before ${marker}`)
    text += decoder.decode(value, { stream: true })
  }
  return reader
}

describe('gateway', () => {
  let backend: FakeBackend
  let gateway: Gateway
  let logLines: string[]

  async function start(
    options: { limits?: Partial<GatewayLimits>; ratePerMinute?: number; maxConcurrent?: number; maxBodyBytes?: number } = {}
  ): Promise<void> {
    backend = new FakeBackend()
    logLines = []
    const apiKeys = ApiKeyStore.fromPlainKeys([
      { key: KEY, gameId: 'game-1', ratePerMinute: options.ratePerMinute ?? 10_000, maxConcurrent: options.maxConcurrent ?? 16 }
    ])
    gateway = createGateway(
      {
        port: 0,
        apiKeys,
        ...(options.limits === undefined ? {} : { limits: options.limits }),
        ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes })
      },
      { backend, logger: createLogger({ level: 'debug', sink: line => logLines.push(line) }) }
    )
    await gateway.start()
  }

  function call(
    path: string,
    init: { method?: string; body?: unknown; key?: string | null; headers?: Record<string, string>; signal?: AbortSignal } = {}
  ) {
    const headers: Record<string, string> = { ...init.headers }
    if (init.key !== null) headers.authorization = `Bearer ${init.key ?? KEY}`
    if (init.body !== undefined) headers['content-type'] = 'application/json'
    const base = gateway.url.replace(/\/v1$/, '')
    return fetch(`${base}${path}`, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers,
      ...(init.body === undefined ? {} : { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) }),
      ...(init.signal === undefined ? {} : { signal: init.signal })
    })
  }

  const chat = (extra: Record<string, unknown> = {}) => ({
    model: 'tiny-chat',
    messages: [
      { role: 'system', content: 'You are a shopkeeper.' },
      { role: 'user', content: `Hello ${PROMPT_MARKER}` }
    ],
    ...extra
  })

  async function expectError(res: Response, status: number, code: string | null, param?: string | null): Promise<ErrorJson> {
    expect(res.status).to.equal(status)
    expect(res.headers.get('content-type')).to.equal('application/json')
    const body = await res.json()
    expect(body.error).to.have.all.keys('message', 'type', 'param', 'code')
    expect(body.error.message).to.be.a('string').and.not.empty
    expect(body.error.code).to.equal(code)
    if (param !== undefined) expect(body.error.param).to.equal(param)
    return body
  }

  afterEach(async () => {
    await gateway?.stop()
  })

  it('serves /health without a key and lists models in OpenAI shape', async () => {
    await start()
    expect(gateway.url).to.equal(`http://127.0.0.1:${gateway.port}/v1`)
    const health = await call('/health', { key: null })
    expect(health.status).to.equal(200)
    expect(await health.json()).to.deep.equal({ status: 'ok' })

    const res = await call('/v1/models')
    expect(res.status).to.equal(200)
    expect(await res.json()).to.deep.equal({
      object: 'list',
      data: [
        {
          id: 'tiny-chat',
          object: 'model',
          created: 0,
          owned_by: 'gcn',
          gcn: { sha256: MODEL_ID, context_size: 2048, price_per_1k_tokens: '12345678901234567890', suppliers: 3 }
        }
      ]
    })
    const one = await call(`/v1/models/${MODEL_ID}`)
    expect((await one.json()).id).to.equal('tiny-chat')
    await expectError(await call('/v1/models/nope'), 404, 'model_not_found', 'model')
    await expectError(await call('/v1/models', { key: null }), 401, 'invalid_api_key')
  })

  it('answers a non-streamed chat completion and maps the request', async () => {
    await start()
    const res = await call('/v1/chat/completions', {
      body: chat({
        model: MODEL_ID,
        max_tokens: 32,
        temperature: 0.5,
        top_p: 0.9,
        seed: 42,
        stop: ['\n', 'END'],
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'npc', schema: { type: 'object', properties: { a: { type: 'string' } } } }
        }
      }),
      headers: { 'X-GCN-Session': 'player-7' }
    })
    expect(res.status).to.equal(200)
    const body = await res.json()
    expect(body.id).to.match(/^chatcmpl-/)
    expect(body).to.deep.include({ object: 'chat.completion', model: 'tiny-chat', system_fingerprint: `fp_${MODEL_ID.slice(0, 16)}` })
    expect(body.created).to.be.a('number')
    expect(body.choices).to.deep.equal([
      { index: 0, message: { role: 'assistant', content: 'Hello, world', refusal: null }, finish_reason: 'stop', logprobs: null }
    ])
    expect(body.usage).to.deep.equal({ prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 })
    expect(body.gcn).to.deep.equal({ task_id: TASK_ID })

    const req = backend.requests[0]!
    expect(req).to.deep.include({ model: MODEL_ID, gameId: 'game-1', sessionId: 'player-7' })
    expect(req.input).to.deep.equal({
      kind: 'chat',
      messages: [
        { role: 'system', content: 'You are a shopkeeper.' },
        { role: 'user', content: `Hello ${PROMPT_MARKER}` }
      ]
    })
    expect(req.params).to.deep.equal({
      maxTokens: 32,
      temperature: 0.5,
      topP: 0.9,
      seed: 42,
      stop: ['\n', 'END'],
      jsonSchema: '{"type":"object","properties":{"a":{"type":"string"}}}'
    })
  })

  it('maps defaults, json_object, text parts, the user field and harmless fields', async () => {
    await start()
    const res = await call('/v1/chat/completions', {
      body: {
        model: 'tiny-chat',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'a' },
              { type: 'text', text: 'b' }
            ]
          }
        ],
        max_completion_tokens: 5,
        response_format: { type: 'json_object' },
        user: 'player-9',
        n: 1,
        presence_penalty: 0,
        frequency_penalty: 0,
        metadata: { x: '1' },
        store: false,
        service_tier: 'auto',
        parallel_tool_calls: true,
        tool_choice: 'none',
        some_future_field: { anything: true },
        temperature: null
      }
    })
    expect(res.status).to.equal(200)
    const req = backend.requests[0]!
    expect(req.sessionId).to.equal('player-9')
    expect(req.input).to.deep.equal({ kind: 'chat', messages: [{ role: 'user', content: 'a\nb' }] })
    expect(req.params).to.deep.equal({ maxTokens: 5, jsonSchema: '{"type":"object"}' })

    await call('/v1/chat/completions', { body: chat() })
    expect(backend.requests[1]!.params).to.deep.equal({ maxTokens: 256 })
    expect(backend.requests[1]!.sessionId).to.equal(undefined)
  })

  it('streams a chat completion as SSE: role first, content, finish_reason, usage, [DONE]', async () => {
    await start()
    const res = await call('/v1/chat/completions', { body: chat({ stream: true, stream_options: { include_usage: true } }) })
    expect(res.status).to.equal(200)
    expect(res.headers.get('content-type')).to.equal('text/event-stream')
    expect(res.headers.get('cache-control')).to.equal('no-cache')
    const events = parseSse(await res.text())
    expect(events.at(-1)!.data).to.equal('[DONE]')
    const chunks = events.slice(0, -1).map(e => e.json!)
    const id = chunks[0].id
    expect(id).to.match(/^chatcmpl-/)
    for (const c of chunks) expect(c).to.deep.include({ id, object: 'chat.completion.chunk', model: 'tiny-chat' })
    expect(chunks[0].choices).to.deep.equal([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }])
    expect(chunks.slice(1, 4).map(c => c.choices[0].delta.content)).to.deep.equal(['Hello', ', ', 'world'])
    expect(chunks.slice(0, 4).every(c => c.choices[0].finish_reason === null && c.usage === null)).to.equal(true)
    expect(chunks[4].choices).to.deep.equal([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }])
    // The task id the receipt carries comes once, with the finish.
    expect(chunks[4].gcn).to.deep.equal({ task_id: TASK_ID })
    expect(chunks.filter(c => 'gcn' in c)).to.have.length(1)
    expect(chunks[5].choices).to.deep.equal([])
    expect(chunks[5].usage).to.deep.equal({ prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 })
    expect(chunks).to.have.length(6)
    expect(gateway.stats.activeStreams).to.equal(0)
  })

  it("publishes the gateway's task steps once each, in order, for a streamed request", async () => {
    await start()
    const recording = recordTaskSteps()
    try {
      const res = await call('/v1/chat/completions', { body: chat({ stream: true }) })
      expect(parseSse(await res.text()).at(-1)!.data).to.equal('[DONE]')
    } finally {
      recording.stop()
    }
    // The fake backend stands in for the router and the supplier, whose steps are theirs.
    expect(recording.events.map(e => e.step)).to.deep.equal(['gateway.request', 'gateway.parsed', 'gateway.firstWrite'])
  })

  it('streams without a usage chunk unless asked, and reports length', async () => {
    await start()
    backend.script = { deltas: ['a', 'b'], finishReason: 'length' }
    const events = parseSse(await (await call('/v1/chat/completions', { body: chat({ stream: true }) })).text())
    const chunks = events.slice(0, -1).map(e => e.json!)
    expect(events.at(-1)!.data).to.equal('[DONE]')
    expect(chunks.at(-1)!.choices[0].finish_reason).to.equal('length')
    expect(chunks.every(c => !('usage' in c))).to.equal(true)
  })

  it('serves /v1/completions streamed and not', async () => {
    await start()
    const res = await call('/v1/completions', { body: { model: 'tiny-chat', prompt: ['Once upon'], max_tokens: 8 } })
    expect(res.status).to.equal(200)
    const body = await res.json()
    expect(body.id).to.match(/^cmpl-/)
    expect(body).to.deep.include({ object: 'text_completion', model: 'tiny-chat' })
    expect(body.choices).to.deep.equal([{ index: 0, text: 'Hello, world', finish_reason: 'stop', logprobs: null }])
    expect(backend.requests[0]!.input).to.deep.equal({ kind: 'prompt', prompt: 'Once upon' })

    const stream = await call('/v1/completions', {
      body: { model: 'tiny-chat', prompt: 'Once upon', stream: true, stream_options: { include_usage: true } }
    })
    const events = parseSse(await stream.text())
    expect(events.at(-1)!.data).to.equal('[DONE]')
    const chunks = events.slice(0, -1).map(e => e.json!)
    for (const c of chunks) expect(c.object).to.equal('text_completion')
    expect(chunks.slice(0, 3).map(c => c.choices[0].text)).to.deep.equal(['Hello', ', ', 'world'])
    expect(chunks[3].choices[0]).to.deep.include({ text: '', finish_reason: 'stop' })
    expect(chunks[4]).to.deep.include({ choices: [], usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } })
  })

  it('rejects a missing or wrong key with 401 in OpenAI shape', async () => {
    await start()
    const missing = await call('/v1/chat/completions', { body: chat(), key: null })
    const body = await expectError(missing, 401, 'invalid_api_key', null)
    expect(body.error.type).to.equal('invalid_request_error')
    expect(missing.headers.get('www-authenticate')).to.equal('Bearer')
    await expectError(await call('/v1/chat/completions', { body: chat(), key: 'sk-wrong' }), 401, 'invalid_api_key')
    await expectError(
      await call('/v1/chat/completions', { body: chat(), headers: { authorization: KEY }, key: null }),
      401,
      'invalid_api_key'
    )
    expect(backend.requests).to.have.length(0)
  })

  it('limits failed authentications per client address', async () => {
    await start({ limits: { authFailuresPerMinute: 3 } })
    for (let i = 0; i < 3; i++) await expectError(await call('/v1/models', { key: 'sk-guess' }), 401, 'invalid_api_key')
    const blocked = await call('/v1/models')
    await expectError(blocked, 429, 'rate_limit_exceeded')
    expect(Number(blocked.headers.get('retry-after'))).to.be.at.least(1)
  })

  it('answers unknown routes with 404, wrong methods with 405 and unknown models with 404', async () => {
    await start()
    await expectError(await call('/v1/nothing'), 404, 'unknown_url')
    const wrong = await call('/v1/chat/completions', { method: 'GET' })
    await expectError(wrong, 405, 'method_not_allowed')
    expect(wrong.headers.get('allow')).to.equal('POST')
    backend.script = { throwBefore: new UnknownModelError('unknown model') }
    await expectError(await call('/v1/chat/completions', { body: chat({ model: 'nope' }) }), 404, 'model_not_found', 'model')
    await expectError(await call('/v1/chat/completions', { body: chat({ model: 'nope', stream: true }) }), 404, 'model_not_found', 'model')
  })

  it('rejects unsupported fields with 400 naming them', async () => {
    await start()
    const cases: [Record<string, unknown>, string][] = [
      [{ n: 2 }, 'n'],
      [{ tools: [{ type: 'function', function: { name: 'f' } }] }, 'tools'],
      [{ tool_choice: 'auto' }, 'tool_choice'],
      [{ functions: [{ name: 'f' }] }, 'functions'],
      [{ function_call: 'auto' }, 'function_call'],
      [{ logprobs: true }, 'logprobs'],
      [{ top_logprobs: 3 }, 'top_logprobs'],
      [{ logit_bias: { '50256': -100 } }, 'logit_bias'],
      [{ presence_penalty: 0.5 }, 'presence_penalty'],
      [{ frequency_penalty: -1 }, 'frequency_penalty']
    ]
    for (const [extra, param] of cases) {
      const body = await expectError(await call('/v1/chat/completions', { body: chat(extra) }), 400, 'unsupported_parameter', param)
      expect(body.error.type).to.equal('invalid_request_error')
    }
    for (const [extra, param] of [
      [{ best_of: 2 }, 'best_of'],
      [{ echo: true }, 'echo'],
      [{ suffix: 'x' }, 'suffix']
    ] as const) {
      await expectError(
        await call('/v1/completions', { body: { model: 'tiny-chat', prompt: 'p', ...extra } }),
        400,
        'unsupported_parameter',
        param
      )
    }
    await expectError(
      await call('/v1/chat/completions', {
        body: chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] })
      }),
      400,
      'unsupported_parameter',
      'messages[0].content[0].type'
    )
    expect(backend.requests).to.have.length(0)
  })

  it('rejects invalid fields with 400 naming them', async () => {
    await start()
    const cases: [unknown, string | null][] = [
      [{ messages: [{ role: 'user', content: 'x' }] }, 'model'],
      [chat({ model: 5 }), 'model'],
      [chat({ messages: [] }), 'messages'],
      [chat({ messages: [{ role: 'wizard', content: 'x' }] }), 'messages[0].role'],
      [chat({ messages: [{ role: 'user', content: null }] }), 'messages[0].content'],
      [chat({ max_tokens: 0 }), 'max_tokens'],
      [chat({ max_tokens: REQUEST_LIMITS.maxTokens + 1 }), 'max_tokens'],
      [chat({ max_completion_tokens: 1.5 }), 'max_completion_tokens'],
      [chat({ temperature: 2.5 }), 'temperature'],
      [chat({ top_p: 0 }), 'top_p'],
      [chat({ seed: 'x' }), 'seed'],
      [chat({ stop: ['a', 'b', 'c', 'd', 'e'] }), 'stop'],
      [chat({ stream: 'yes' }), 'stream'],
      [chat({ stream_options: { include_usage: 1 } }), 'stream_options.include_usage'],
      [chat({ response_format: { type: 'xml' } }), 'response_format.type'],
      [chat({ response_format: { type: 'json_schema', json_schema: { name: 'a b', schema: {} } } }), 'response_format.json_schema.name'],
      [chat({ response_format: { type: 'json_schema', json_schema: { name: 'ok' } } }), 'response_format.json_schema.schema'],
      [[1, 2], null]
    ]
    for (const [body, param] of cases) {
      const res = await call('/v1/chat/completions', { body })
      const err = await expectError(res, 400, 'invalid_value', param)
      expect(err.error.type).to.equal('invalid_request_error')
    }
    await expectError(await call('/v1/completions', { body: { model: 'tiny-chat' } }), 400, 'invalid_value', 'prompt')
    await expectError(await call('/v1/chat/completions', { body: '{"model": ' }), 400, 'invalid_json', null)
    await expectError(
      await call('/v1/chat/completions', { body: chat(), headers: { 'X-GCN-Session': 'x'.repeat(200) } }),
      400,
      'invalid_value',
      'X-GCN-Session'
    )
    expect(backend.requests).to.have.length(0)
  })

  it('rejects an oversize prompt with context_length_exceeded', async () => {
    await start()
    const big = 'x'.repeat(REQUEST_LIMITS.maxPromptChars)
    await expectError(
      await call('/v1/chat/completions', {
        body: chat({
          messages: [
            { role: 'system', content: 'y' },
            { role: 'user', content: big }
          ]
        })
      }),
      400,
      'context_length_exceeded',
      'messages'
    )
    await expectError(
      await call('/v1/completions', { body: { model: 'tiny-chat', prompt: `${big}x` } }),
      400,
      'context_length_exceeded',
      'prompt'
    )
    expect(backend.requests).to.have.length(0)
  })

  it('rejects an oversize body with 413, declared or streamed', async () => {
    await start({ maxBodyBytes: 64 * 1024 })
    const body = JSON.stringify(chat({ filler: 'z'.repeat(100 * 1024) }))
    await expectError(await call('/v1/chat/completions', { body }), 413, 'request_too_large')
    // Without Content-Length (chunked upload) the cap applies while reading.
    const encoded = new TextEncoder().encode(body)
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < encoded.length; i += 8192) controller.enqueue(encoded.subarray(i, i + 8192))
        controller.close()
      }
    })
    const res = await fetch(`${gateway.url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: chunked,
      duplex: 'half'
    } as RequestInit)
    await expectError(res, 413, 'request_too_large')
    expect(backend.requests).to.have.length(0)
    // The gateway still serves normal requests afterwards.
    expect((await call('/v1/chat/completions', { body: chat() })).status).to.equal(200)
  })

  it('limits the request rate per key with 429 and Retry-After', async () => {
    await start({ ratePerMinute: 2 })
    expect((await call('/v1/chat/completions', { body: chat() })).status).to.equal(200)
    expect((await call('/v1/chat/completions', { body: chat() })).status).to.equal(200)
    const limited = await call('/v1/chat/completions', { body: chat() })
    const body = await expectError(limited, 429, 'rate_limit_exceeded', null)
    expect(body.error.type).to.equal('requests')
    const retryAfter = Number(limited.headers.get('retry-after'))
    expect(retryAfter).to.be.within(1, 30)
    expect(backend.requests).to.have.length(2)
  })

  it('limits concurrent requests per key with 429', async () => {
    await start({ maxConcurrent: 1 })
    backend.script = { hangAfter: 0 }
    const first = new AbortController()
    const pending = call('/v1/chat/completions', { body: chat({ stream: true }), signal: first.signal }).catch(err => err)
    await until(() => backend.requests.length === 1, 'the first request to reach the backend')
    const limited = await call('/v1/chat/completions', { body: chat() })
    await expectError(limited, 429, 'rate_limit_exceeded')
    expect(limited.headers.get('retry-after')).to.equal('1')
    first.abort()
    await pending
    await until(() => gateway.stats.activeRequests === 0, 'the slot to be released')
    backend.script = {}
    expect((await call('/v1/chat/completions', { body: chat() })).status).to.equal(200)
  })

  it('answers 503 with Retry-After when no supplier is available, 502 when the task failed before output', async () => {
    await start()
    backend.script = { throwBefore: new NoSupplierError('no supplier for tiny-chat') }
    for (const stream of [false, true]) {
      const res = await call('/v1/chat/completions', { body: chat({ stream }) })
      const body = await expectError(res, 503, 'service_unavailable')
      expect(body.error.type).to.equal('server_error')
      expect(res.headers.get('retry-after')).to.equal('1')
    }
    backend.script = { throwBefore: new TaskFailedError('every attempt failed', { retryable: true }) }
    await expectError(await call('/v1/chat/completions', { body: chat({ stream: true }) }), 502, 'task_failed')
    backend.script = { finishReason: 'error', deltas: [] }
    await expectError(await call('/v1/chat/completions', { body: chat() }), 502, 'task_failed')
    backend.script = { throwBefore: new Error('bug with secret detail') }
    const internal = await expectError(await call('/v1/chat/completions', { body: chat() }), 500, 'internal_error')
    expect(internal.error.message).to.equal('internal server error')
  })

  it('ends a stream that fails midway with one SSE error event and no [DONE]', async () => {
    await start()
    backend.script = { throwAfter: { deltas: 2, error: new TaskFailedError('supplier went away', { retryable: true }) } }
    const res = await call('/v1/chat/completions', { body: chat({ stream: true }) })
    expect(res.status).to.equal(200)
    const events = parseSse(await res.text())
    expect(events.map(e => e.data)).to.not.include('[DONE]')
    expect(events.slice(1, 3).map(e => e.json!.choices[0]!.delta.content)).to.deep.equal(['Hello', ', '])
    const last = events.at(-1)!.json
    expect(last).to.deep.equal({ error: { message: 'supplier went away', type: 'server_error', param: null, code: 'task_failed' } })
    expect(gateway.stats.streamErrors).to.equal(1)
  })

  it('aborts the backend when the client disconnects', async () => {
    await start()
    backend.script = { hangAfter: 1 }
    const controller = new AbortController()
    const res = await call('/v1/chat/completions', { body: chat({ stream: true }), signal: controller.signal })
    await readUntil(res, 'Hello')
    expect(backend.signals[0]!.aborted).to.equal(false)
    controller.abort()
    await until(() => backend.signals[0]!.aborted, 'the backend signal to abort')
    await until(() => gateway.stats.activeStreams === 0 && gateway.stats.activeRequests === 0, 'the stream to close')
    await until(() => gateway.stats.requestsByStatus['499'] === 1, 'the request to be counted')
  })

  it('times out a request that runs too long', async () => {
    await start({ limits: { requestTimeoutMs: 200 } })
    backend.script = { hangAfter: 0 }
    await expectError(await call('/v1/chat/completions', { body: chat() }), 504, 'timeout')
    expect(backend.signals[0]!.aborted).to.equal(true)
    backend.script = { hangAfter: 1 }
    const events = parseSse(await (await call('/v1/chat/completions', { body: chat({ stream: true }) })).text())
    expect(events.at(-1)!.json!.error!.code).to.equal('timeout')
  })

  it('stop() aborts in-flight streams and closes every connection', async () => {
    await start()
    backend.script = { hangAfter: 1 }
    const res = await call('/v1/chat/completions', { body: chat({ stream: true }) })
    const reader = await readUntil(res, 'Hello')
    const url = gateway.url
    await gateway.stop()
    expect(backend.signals[0]!.aborted).to.equal(true)
    let rest = ''
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        rest += new TextDecoder().decode(value)
      }
    } catch {
      // The connection was cut: also fine.
    }
    expect(rest).to.not.include('[DONE]')
    let refused = false
    await fetch(`${url}/models`).catch(() => {
      refused = true
    })
    expect(refused).to.equal(true)
    expect(() => gateway.port).to.throw()
  })

  it('logs one line per request without prompts, outputs or keys', async () => {
    await start()
    await (await call('/v1/chat/completions', { body: chat() })).text()
    await (await call('/v1/chat/completions', { body: chat({ stream: true }) })).text()
    const requests = logLines.map(l => JSON.parse(l)).filter(l => l.msg === 'request')
    expect(requests).to.have.length(2)
    expect(requests[0]).to.include({ method: 'POST', path: '/v1/chat/completions', status: 200, gameId: 'game-1', model: 'tiny-chat' })
    expect(requests[0]).to.include({ promptTokens: 7, completionTokens: 3 })
    const all = logLines.join('\n')
    for (const secret of [PROMPT_MARKER, 'Hello, world', 'world', KEY, hashApiKey(KEY)]) expect(all).to.not.include(secret)
    expect(gateway.stats.requestsByStatus['200']).to.equal(2)
  })

  it('works with the official openai client, streamed and not', async () => {
    await start()
    const client = new OpenAI({ apiKey: KEY, baseURL: gateway.url, maxRetries: 0 })
    const models = await client.models.list()
    expect(models.data.map(m => m.id)).to.deep.equal(['tiny-chat'])

    const completion = await client.chat.completions.create({
      model: 'tiny-chat',
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 16
    })
    expect(completion.choices[0]?.message.content).to.equal('Hello, world')
    expect(completion.choices[0]?.finish_reason).to.equal('stop')
    expect(completion.usage?.total_tokens).to.equal(10)

    const stream = await client.chat.completions.create({
      model: 'tiny-chat',
      messages: [{ role: 'user', content: 'Hi' }],
      stream: true,
      stream_options: { include_usage: true }
    })
    let text = ''
    let finish: string | null | undefined
    let total: number | undefined
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? ''
      finish = chunk.choices[0]?.finish_reason ?? finish
      if (chunk.usage) total = chunk.usage.total_tokens
    }
    expect(text).to.equal('Hello, world')
    expect(finish).to.equal('stop')
    expect(total).to.equal(10)

    // A mid-stream failure surfaces as an APIError from the SDK's iterator.
    backend.script = { throwAfter: { deltas: 1, error: new TaskFailedError('supplier went away', { retryable: true }) } }
    const failing = await client.chat.completions.create({ model: 'tiny-chat', messages: [{ role: 'user', content: 'Hi' }], stream: true })
    let caught: unknown
    try {
      for await (const _ of failing) {
        // drain
      }
    } catch (err) {
      caught = err
    }
    expect(caught).to.be.instanceOf(OpenAI.APIError)

    const bad = new OpenAI({ apiKey: 'sk-wrong', baseURL: gateway.url, maxRetries: 0 })
    let authError: unknown
    await bad.models.list().catch(err => {
      authError = err
    })
    expect(authError).to.be.instanceOf(OpenAI.AuthenticationError)
  })
})
