import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TASK_STEPS } from '@gcn/core'
import { GcnClient } from '@gcn/sdk'
import { expect } from 'chai'
import OpenAI from 'openai'
import { makeTestModel, type Network, type SupplierHandle, startNetwork, type TestModel } from './helpers/network.js'
import { gcn, killAll, waitFor } from './helpers/procs.js'

// ---- helpers -------------------------------------------------------------------

interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null }
}

interface StreamResult {
  status: number
  headers: Headers
  /** Parsed JSON body of a non-200 answer. */
  errorBody?: OpenAiErrorBody
  /** An `error` event inside the SSE stream. */
  streamError?: unknown
  text: string
  deltas: number
  finishReason: string | null
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null
  sawDone: boolean
  /** performance.now() when the first content delta arrived. */
  firstDeltaAt?: number
}

/**
 * POST /chat/completions with stream: true over plain fetch, parsing the SSE
 * events. `onDelta` runs for every content delta (the abort test uses it).
 */
async function streamChat(
  net: { gatewayUrl: string; apiKey: string },
  body: Record<string, unknown>,
  options: { signal?: AbortSignal; onDelta?: (text: string) => void } = {}
): Promise<StreamResult> {
  const res = await fetch(`${net.gatewayUrl}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${net.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
    ...(options.signal === undefined ? {} : { signal: options.signal })
  })
  const result: StreamResult = {
    status: res.status,
    headers: res.headers,
    text: '',
    deltas: 0,
    finishReason: null,
    usage: null,
    sawDone: false
  }
  if (res.status !== 200) {
    result.errorBody = (await res.json()) as OpenAiErrorBody
    return result
  }
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  let buffered = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) break
    buffered += decoder.decode(value, { stream: true })
    for (let end = buffered.indexOf('\n\n'); end >= 0; end = buffered.indexOf('\n\n')) {
      const event = buffered.slice(0, end)
      buffered = buffered.slice(end + 2)
      for (const line of event.split('\n')) {
        if (!line.startsWith('data: ')) continue
        const data = line.slice('data: '.length)
        if (data === '[DONE]') {
          result.sawDone = true
          continue
        }
        const json = JSON.parse(data) as {
          error?: unknown
          choices?: Array<{ delta?: { content?: string }; finish_reason?: string | null }>
          usage?: StreamResult['usage']
        }
        if (json.error !== undefined) result.streamError = json.error
        const choice = json.choices?.[0]
        const content = choice?.delta?.content
        if (content !== undefined && content !== '') {
          result.firstDeltaAt ??= performance.now()
          result.text += content
          result.deltas++
          options.onDelta?.(content)
        }
        if (choice?.finish_reason != null) result.finishReason = choice.finish_reason
        if (json.usage != null) result.usage = json.usage
      }
    }
  }
  return result
}

async function postJson(
  net: { gatewayUrl: string },
  path: string,
  apiKey: string,
  body: Record<string, unknown>
): Promise<{ status: number; headers: Headers; body: unknown }> {
  const res = await fetch(`${net.gatewayUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  return { status: res.status, headers: res.headers, body: await res.json() }
}

function expectOpenAiError(body: unknown, code: string): OpenAiErrorBody['error'] {
  expect(body).to.be.an('object').with.property('error')
  const error = (body as OpenAiErrorBody).error
  expect(error).to.have.all.keys('message', 'type', 'param', 'code')
  expect(error.message).to.be.a('string').that.is.not.empty
  expect(error.type).to.be.a('string').that.is.not.empty
  expect(error.code).to.equal(code)
  return error
}

function readCapture(file: string): Buffer {
  return existsSync(file) ? readFileSync(file) : Buffer.alloc(0)
}

function occurrences(haystack: Buffer, needle: string | Buffer): number {
  let count = 0
  for (let i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + 1)) count++
  return count
}

/**
 * What a listener reads when a dialer proposes the task protocol in
 * multistream-select: the varint length (16) and the id with its newline. An
 * identify message listing the protocol encodes it differently, so this counts
 * the task streams opened to a node.
 */
const TASK_PROPOSAL = Buffer.concat([Buffer.from([0x10]), Buffer.from('/gcn/task/1.0.0\n')])

/** Processes (other than zombies) whose command line contains `needle`. */
function processesMentioning(needle: string): Array<{ pid: number; cmdline: string }> {
  const found: Array<{ pid: number; cmdline: string }> = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ')
      if (cmdline.includes(needle)) found.push({ pid: Number(entry), cmdline })
    } catch {
      // The process went away while we looked.
    }
  }
  return found
}

function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state !== 'Z' && state !== 'X'
  } catch {
    return false
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

// ---- tests -----------------------------------------------------------------------

describe('inference path (real processes)', function () {
  this.timeout(120_000)
  let root: string
  let model: TestModel

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'gcn-inference-'))
    model = await makeTestModel(join(root, 'tiny.gguf'))
  })
  after(async () => {
    await killAll()
    rmSync(root, { recursive: true, force: true })
  })

  describe('gcn devnet (the npm start path)', () => {
    it('starts, streams a chat completion to the SDK, and SIGTERM stops it and every child', async () => {
      const dataDir = join(root, 'devnet')
      const key = `gcn-devnet-${randomBytes(6).toString('hex')}`
      const devnet = gcn(['devnet', '--gateway-port', '0', '--api-key', key, '--data-dir', dataDir, '--suppliers', '2'])
      await devnet.waitForLine(/^gcn devnet ready$/, 90_000)
      const [, gatewayUrl] = (await devnet.waitForLine(/^gateway: (http:\/\/127\.0\.0\.1:\d+\/v1)$/)) as RegExpMatchArray
      const [, printedKey] = (await devnet.waitForLine(/^api key: (\S+)$/)) as RegExpMatchArray
      expect(printedKey).to.equal(key)
      const [, modelName] = (await devnet.waitForLine(/^model: (\S+) \(sha256 [0-9a-f]{64}\)$/)) as RegExpMatchArray

      const registryUrls: string[] = []
      for (let i = 1; i <= 3; i++) registryUrls.push((await devnet.waitForLine(new RegExp(`^registry ${i}: (http://\\S+)$`)))[1]!)

      // bootstrap, three registries, distributor and two suppliers, each started with a path under the data dir.
      const children = processesMentioning(dataDir).filter(p => p.pid !== devnet.child.pid)
      expect(children, children.map(c => c.cmdline).join('\n')).to.have.length(7)
      // Suppliers keep the default priority; the other roles yield the cores to their model threads (--roles-nice 10).
      const niceOf = (pid: number): number => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16])
      for (const child of children) {
        expect(niceOf(child.pid), child.cmdline).to.equal(/ supplier /.test(child.cmdline) ? 0 : 10)
      }

      const client = new GcnClient({ baseUrl: gatewayUrl!, apiKey: key, maxRetries: 0 })
      const reply = client.chat({ model: modelName!, messages: [{ role: 'user', content: 'Hello, innkeeper!' }], max_tokens: 16 })
      const deltas: string[] = []
      for await (const delta of reply) deltas.push(delta.text)
      const result = await reply.done
      expect(deltas.length).to.be.greaterThanOrEqual(1)
      expect(result.text).to.equal(deltas.join(''))
      expect(result.text).to.not.equal('')
      expect(result.finishReason).to.be.oneOf(['length', 'stop'])
      expect(result.usage).to.not.equal(null)
      expect(result.usage!.completionTokens).to.be.within(1, 16)
      expect(result.usage!.promptTokens).to.be.greaterThan(0)
      expect(result.usage!.totalTokens).to.equal(result.usage!.promptTokens + result.usage!.completionTokens)

      // The distributor's receipt and the supplier's block confirmation reach every registry peer and agree.
      interface Totals {
        receipts: number
        promptTokens: number
        completionTokens: number
        cost: string
        billableReceipts: number
      }
      const totals = await Promise.all(
        registryUrls.map(url =>
          waitFor(
            `a billable receipt at ${url}`,
            async () => {
              const t = (await (await fetch(`${url}/totals?game=devnet`)).json()) as Totals
              return t.billableReceipts === 1 ? t : undefined
            },
            20_000
          )
        )
      )
      for (const t of totals) {
        expect(t).to.include({ receipts: 1, promptTokens: result.usage!.promptTokens, completionTokens: result.usage!.completionTokens })
        expect(t.cost).to.equal(totals[0]!.cost)
      }
      const roots = await Promise.all(
        registryUrls.map(async url => {
          const res = await fetch(`${url}/blocks?from=0&to=99999`)
          expect(res.status).to.equal(200)
          const body = (await res.json()) as { blocks: unknown[] }
          expect(body.blocks).to.have.length.greaterThan(0)
          return JSON.stringify(body)
        })
      )
      expect(new Set(roots).size, roots.join('\n')).to.equal(1)

      const code = await devnet.stop('SIGTERM', 30_000)
      expect(code, `devnet exit code; stderr: ${devnet.stderr}`).to.equal(0)
      // The devnet waits for its children before exiting: none may be left behind.
      expect(processesMentioning(dataDir).map(p => p.cmdline)).to.deep.equal([])
      for (const child of children) expect(isRunning(child.pid), `pid ${child.pid}: ${child.cmdline}`).to.equal(false)
    })
  })

  describe('gateway with two suppliers', () => {
    let net: Network
    let openai: OpenAI

    before(async () => {
      net = await startNetwork({ suppliers: 2, model, dir: join(root, 'net-basic') })
      openai = new OpenAI({ apiKey: net.apiKey, baseURL: net.gatewayUrl, maxRetries: 0 })
    })
    after(async () => {
      await net?.stop()
    })

    it('serves the official openai package: models.list()', async () => {
      const page = await openai.models.list()
      const ids = page.data.map(m => m.id)
      expect(ids).to.include(net.modelName)
      const entry = page.data.find(m => m.id === net.modelName) as unknown as { object: string; gcn: { suppliers: number; sha256: string } }
      expect(entry.object).to.equal('model')
      expect(entry.gcn.suppliers).to.equal(2)
      expect(entry.gcn.sha256).to.equal(net.modelSha256)
    })

    it('serves the official openai package: chat.completions.create, streaming', async () => {
      const stream = await openai.chat.completions.create({
        model: net.modelName,
        messages: [
          { role: 'system', content: 'You are a gruff blacksmith.' },
          { role: 'user', content: 'Can you fix my sword?' }
        ],
        max_tokens: 16,
        stream: true,
        stream_options: { include_usage: true }
      })
      let text = ''
      let chunks = 0
      let finish: string | null = null
      let usage: OpenAI.CompletionUsage | null | undefined
      for await (const chunk of stream) {
        expect(chunk.object).to.equal('chat.completion.chunk')
        const choice = chunk.choices[0]
        if (choice?.delta.content) {
          text += choice.delta.content
          chunks++
        }
        if (choice?.finish_reason) finish = choice.finish_reason
        if (chunk.usage) usage = chunk.usage
      }
      expect(chunks).to.be.greaterThanOrEqual(1)
      expect(text).to.not.equal('')
      expect(finish).to.be.oneOf(['length', 'stop'])
      expect(usage?.completion_tokens).to.be.within(1, 16)
    })

    it('serves the official openai package: chat.completions.create, non-streaming', async () => {
      const completion = await openai.chat.completions.create({
        model: net.modelName,
        messages: [{ role: 'user', content: 'Any rumours, barkeep?' }],
        max_tokens: 12
      })
      expect(completion.object).to.equal('chat.completion')
      expect(completion.model).to.equal(net.modelName)
      expect(completion.choices).to.have.length(1)
      expect(completion.choices[0]!.message.role).to.equal('assistant')
      expect(completion.choices[0]!.message.content).to.be.a('string').that.is.not.empty
      expect(completion.choices[0]!.finish_reason).to.be.oneOf(['length', 'stop'])
      expect(completion.usage!.completion_tokens).to.be.within(1, 12)
      expect(completion.usage!.total_tokens).to.equal(completion.usage!.prompt_tokens + completion.usage!.completion_tokens)
    })

    it('serves the official openai package: completions.create, non-streaming and streaming', async () => {
      const completion = await openai.completions.create({ model: net.modelName, prompt: 'The dragon said:', max_tokens: 10 })
      expect(completion.object).to.equal('text_completion')
      expect(completion.choices[0]!.text).to.be.a('string').that.is.not.empty
      expect(completion.choices[0]!.finish_reason).to.be.oneOf(['length', 'stop'])
      expect(completion.usage!.completion_tokens).to.be.within(1, 10)

      const stream = await openai.completions.create({ model: net.modelName, prompt: 'Once upon a time', max_tokens: 10, stream: true })
      let text = ''
      let finish: string | null = null
      for await (const chunk of stream) {
        text += chunk.choices[0]?.text ?? ''
        if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason
      }
      expect(text).to.not.equal('')
      expect(finish).to.be.oneOf(['length', 'stop'])
    })

    it('answers errors as OpenAI-shaped JSON: 401 bad key, 404 unknown model, 400 oversize prompt', async () => {
      const chat = (m: string, content: string) => ({ model: m, messages: [{ role: 'user', content }], max_tokens: 4 })

      const unauthorized = await postJson(net, '/chat/completions', 'not-a-valid-key', chat(net.modelName, 'hi'))
      expect(unauthorized.status).to.equal(401)
      expect(unauthorized.headers.get('content-type')).to.match(/^application\/json/)
      expectOpenAiError(unauthorized.body, 'invalid_api_key')

      const unknown = await postJson(net, '/chat/completions', net.apiKey, chat('no-such-model', 'hi'))
      expect(unknown.status).to.equal(404)
      expect(expectOpenAiError(unknown.body, 'model_not_found').param).to.equal('model')

      const oversize = await postJson(net, '/chat/completions', net.apiKey, chat(net.modelName, 'x'.repeat(33_000)))
      expect(oversize.status).to.equal(400)
      expect(expectOpenAiError(oversize.body, 'context_length_exceeded').type).to.equal('invalid_request_error')

      // The official client maps the same answers onto its typed errors.
      const badClient = new OpenAI({ apiKey: 'not-a-valid-key', baseURL: net.gatewayUrl, maxRetries: 0 })
      const err401 = await badClient.models.list().then(
        () => undefined,
        (e: unknown) => e
      )
      expect(err401).to.be.instanceOf(OpenAI.AuthenticationError)
      expect((err401 as InstanceType<typeof OpenAI.AuthenticationError>).code).to.equal('invalid_api_key')
      const err404 = await openai.chat.completions.create(chat('no-such-model', 'hi') as never).then(
        () => undefined,
        (e: unknown) => e
      )
      expect(err404).to.be.instanceOf(OpenAI.NotFoundError)
      expect((err404 as InstanceType<typeof OpenAI.NotFoundError>).code).to.equal('model_not_found')
    })

    it('frees the supplier slot within 100 ms of the client aborting a stream', async () => {
      const latencies: number[] = []
      // A round whose answer (~0.1-0.5 s of tiny-model tokens) finished before the abort reached the supplier proves
      // nothing either way (a loaded machine can delay the abort that long): it is repeated, up to 12 rounds for 5.
      let inconclusive = 0
      for (let round = 0; round < 12 && latencies.length < 5; round++) {
        // Every slot free before the round starts.
        for (const s of net.suppliers)
          await waitFor(`supplier ${s.index} idle`, async () => {
            const { stats } = await s.status()
            return stats.freeSlots === stats.totalSlots
          })
        const before = await Promise.all(net.suppliers.map(s => s.status()))
        const controller = new AbortController()
        let firstDelta!: () => void
        const gotDelta = new Promise<void>(resolve => {
          firstDelta = resolve
        })
        // A long answer (about half a second on this model) so the abort lands mid-generation.
        const request = streamChat(
          net,
          { model: net.modelName, messages: [{ role: 'user', content: 'Tell me a long story.' }], max_tokens: 400 },
          { signal: controller.signal, onDelta: () => firstDelta() }
        ).catch((err: unknown) => err)
        await Promise.race([gotDelta, request.then(r => Promise.reject(new Error(`stream ended before a delta: ${JSON.stringify(r)}`)))])

        // The serving supplier holds a slot now.
        const serving = await waitFor(
          'a supplier with an active task',
          async () => {
            for (const s of net.suppliers) if ((await s.status()).stats.active > 0) return s
            return undefined
          },
          2_000,
          1
        )
        const servingBefore = before[serving.index]!

        const abortedAt = performance.now()
        controller.abort()
        let freeAt: number | undefined
        let last = await serving.status()
        while (performance.now() - abortedAt < 5_000) {
          last = await serving.status()
          if (last.stats.freeSlots === last.stats.totalSlots) {
            freeAt = performance.now()
            break
          }
        }
        expect(freeAt, `slot never freed: ${JSON.stringify(last.stats)}`).to.not.equal(undefined)
        const result = await request
        if (last.completedTasks !== servingBefore.completedTasks) {
          // The supplier finished the answer before the abort arrived.
          inconclusive++
          continue
        }
        // The task was cut, not finished: the client saw an abort, not a whole answer.
        expect(result).to.be.instanceOf(Error)
        latencies.push(freeAt! - abortedAt)
      }
      expect(latencies.length, `conclusive rounds (${inconclusive} finished before the abort landed)`).to.be.at.least(3)
      const sorted = [...latencies].sort((a, b) => a - b)
      console.log(
        `      slot freed after abort (ms, ${sorted.length} rounds, ${inconclusive} inconclusive): ${latencies.map(l => l.toFixed(1)).join(', ')}; median ${percentile(sorted, 50).toFixed(1)}, max ${sorted.at(-1)!.toFixed(1)}`
      )
      for (const latency of latencies) expect(latency).to.be.at.most(100)
    })
  })

  describe('gateway with stalled suppliers (--test-stall-ms 4000)', () => {
    let net: Network
    const captures: string[] = []
    const taskStreams = (s: SupplierHandle): number => occurrences(readCapture(captures[s.index]!), TASK_PROPOSAL)

    before(async () => {
      const dir = join(root, 'net-stall')
      for (let i = 0; i < 2; i++) captures.push(join(root, `stall-supplier-${i + 1}.cap`))
      net = await startNetwork({
        suppliers: 2,
        model,
        dir,
        supplierArgs: ['--test-stall-ms', '4000'],
        // The warm-up uses the second key, so that its concurrency slots never count against the tests.
        apiKeys: [`gcn-test-${randomBytes(6).toString('hex')}`, `gcn-warmup-${randomBytes(6).toString('hex')}`],
        env: { supplier: i => ({ GCN_TEST_WIRE_CAPTURE: captures[i]! }) }
      })
      // Warm-up: open the distributor's connection to every supplier (aborted during the stall), so
      // the measured requests never include dialing.
      const controllers = Array.from({ length: 4 }, () => new AbortController())
      const inflight = controllers.map(c =>
        streamChat(
          { gatewayUrl: net.gatewayUrl, apiKey: net.apiKeys[1]! },
          { model: net.modelName, messages: [{ role: 'user', content: 'warm-up' }], max_tokens: 1 },
          { signal: c.signal }
        ).catch((err: unknown) => err)
      )
      try {
        await waitFor('a task stream to every supplier', () => net.suppliers.every(s => taskStreams(s) > 0), 15_000)
      } finally {
        for (const c of controllers) c.abort()
        await Promise.all(inflight)
      }
    })
    after(async () => {
      await net?.stop()
    })

    it('answers 429 with Retry-After (OpenAI JSON) to a key over its concurrency limit', async () => {
      const base = net.suppliers.map(taskStreams)
      const controllers = Array.from({ length: 4 }, () => new AbortController())
      const inflight = controllers.map(c =>
        streamChat(net, { model: net.modelName, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }, { signal: c.signal }).catch(
          (err: unknown) => err
        )
      )
      try {
        // All four hold a concurrency slot once their tasks reached the (stalling) suppliers.
        await waitFor(
          'four tasks to reach the suppliers',
          () => net.suppliers.reduce((sum, s, i) => sum + taskStreams(s) - base[i]!, 0) >= 4,
          15_000
        )
        const fifth = await streamChat(net, { model: net.modelName, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 })
        expect(fifth.status).to.equal(429)
        expect(fifth.headers.get('retry-after')).to.match(/^[1-9]\d*$/)
        expectOpenAiError(fifth.errorBody, 'rate_limit_exceeded')
      } finally {
        for (const c of controllers) c.abort()
        await Promise.all(inflight)
      }
    })

    it('fails over to the other supplier when the serving one is killed before its first token', async () => {
      const baseStreams = net.suppliers.map(taskStreams)
      const before = await Promise.all(net.suppliers.map(s => s.status()))
      const startedAt = performance.now()
      const answer = streamChat(net, {
        model: net.modelName,
        messages: [{ role: 'user', content: 'Which way to the castle?' }],
        max_tokens: 16
      })
      // The supplier whose wire capture shows the task stream is serving it (stalled for 4 s).
      const victim = await waitFor(
        'the task to reach a supplier',
        () => net.suppliers.find(s => taskStreams(s) > baseStreams[s.index]!),
        10_000,
        10
      )
      await victim.proc.stop('SIGKILL')
      const killedAt = performance.now()
      const survivor = net.suppliers.find(s => s !== victim)!

      const result = await answer
      const doneAt = performance.now()
      expect(result.status, JSON.stringify(result.errorBody)).to.equal(200)
      expect(result.streamError).to.equal(undefined)
      expect(result.firstDeltaAt!).to.be.greaterThan(killedAt)
      expect(result.text).to.not.equal('')
      expect(result.finishReason).to.be.oneOf(['length', 'stop'])
      expect(result.usage?.completion_tokens).to.be.within(1, 16)
      expect(result.sawDone).to.equal(true)
      // The survivor answered it.
      const after = await waitFor('the survivor to count the task', async () => {
        const s = await survivor.status()
        return s.completedTasks > before[survivor.index]!.completedTasks ? s : undefined
      })
      expect(after.completedTasks).to.equal(before[survivor.index]!.completedTasks + 1)
      expect(taskStreams(survivor)).to.be.greaterThan(baseStreams[survivor.index]!)
      console.log(
        `      failover: killed after ${(killedAt - startedAt).toFixed(0)} ms, answer complete after ${(doneAt - startedAt).toFixed(0)} ms`
      )
    })
  })

  describe('confidentiality on the wire', () => {
    let net: Network
    const cap = (name: string): string => join(root, `conf-${name}.cap`)

    before(async () => {
      net = await startNetwork({
        suppliers: 1,
        model,
        dir: join(root, 'net-conf'),
        env: {
          bootstrap: { GCN_TEST_WIRE_CAPTURE: cap('bootstrap') },
          distributor: { GCN_TEST_WIRE_CAPTURE: cap('distributor') },
          supplier: { GCN_TEST_WIRE_CAPTURE: cap('supplier-1') }
        }
      })
      await net.addSupplier({ env: { GCN_TEST_WIRE_CAPTURE: cap('supplier-2') } })
      await net.waitForSuppliers(2)
      // Warm-up without secrets until both suppliers have answered: the distributor then holds a
      // working connection to each, so the secret requests below can go to either.
      await waitFor(
        'both suppliers to answer a warm-up task',
        async () => {
          await Promise.all(
            [0, 1, 2, 3].map(() =>
              postJson(net, '/chat/completions', net.apiKey, {
                model: net.modelName,
                messages: [{ role: 'user', content: 'warm-up' }],
                max_tokens: 1
              })
            )
          )
          const statuses = await Promise.all(net.suppliers.map(s => s.status()))
          return statuses.every(s => s.completedTasks > 0)
        },
        60_000,
        0
      )
    })
    after(async () => {
      await net?.stop()
    })

    it('never shows a prompt in plaintext to the bootstrap, the distributor or any supplier after Noise', async () => {
      const requests: Array<{ marker: string; servedBy: number }> = []
      for (let i = 0; i < 4; i++) {
        const marker = `SECRET-PROMPT-${randomBytes(8).toString('hex')}`
        const before = await Promise.all(net.suppliers.map(s => s.status()))
        const messages = [
          { role: 'system', content: `The password is ${marker}.` },
          { role: 'user', content: `Repeat ${marker} to me.` }
        ]
        if (i === 0) {
          const r = await streamChat(net, { model: net.modelName, messages, max_tokens: 8 })
          expect(r.status).to.equal(200)
          expect(r.finishReason).to.be.oneOf(['length', 'stop'])
        } else if (i === 1) {
          const r = await postJson(net, '/chat/completions', net.apiKey, { model: net.modelName, messages, max_tokens: 8 })
          expect(r.status, JSON.stringify(r.body)).to.equal(200)
        } else {
          const r = await postJson(net, '/completions', net.apiKey, {
            model: net.modelName,
            prompt: `Whisper ${marker} twice.`,
            max_tokens: 8
          })
          expect(r.status, JSON.stringify(r.body)).to.equal(200)
        }
        const servedBy = await waitFor('a supplier to count the task', async () => {
          const now = await Promise.all(net.suppliers.map(s => s.status()))
          const served = now.map((s, j) => s.completedTasks - before[j]!.completedTasks)
          return served.some(n => n > 0) ? served.findIndex(n => n > 0) : undefined
        })
        requests.push({ marker, servedBy })
      }

      const files = {
        bootstrap: cap('bootstrap'),
        distributor: cap('distributor'),
        'supplier-1': cap('supplier-1'),
        'supplier-2': cap('supplier-2')
      }
      const data = Object.fromEntries(Object.entries(files).map(([name, file]) => [name, readCapture(file)])) as Record<string, Buffer>
      for (const { marker, servedBy } of requests) {
        const hex = marker.slice('SECRET-PROMPT-'.length)
        for (const [name, bytes] of Object.entries(data)) {
          const role = name === `supplier-${servedBy + 1}` ? 'the chosen supplier' : 'a peer that did not serve the request'
          expect(occurrences(bytes, marker), `${marker} in ${name} (${role})`).to.equal(0)
          expect(occurrences(bytes, hex), `${hex} in ${name} (${role})`).to.equal(0)
        }
      }

      // The captures hold real decrypted traffic, so the checks above could fail.
      for (const [name, bytes] of Object.entries(data)) {
        expect(bytes.length, `${name} capture size`).to.be.greaterThan(0)
        expect(occurrences(bytes, '/gcn/capacity/1'), `gossip topic in ${name}`).to.be.greaterThan(0)
      }
      // Application payloads are visible in clear after Noise (the signed capacity adverts name the model)…
      expect(occurrences(data.bootstrap!, net.modelName)).to.be.greaterThan(0)
      // …and each serving supplier did receive its task streams.
      for (const { servedBy } of requests) expect(occurrences(data[`supplier-${servedBy + 1}`]!, TASK_PROPOSAL)).to.be.greaterThan(0)
      console.log(`      requests served by: ${requests.map(r => `supplier-${r.servedBy + 1}`).join(', ')}`)
    })
  })

  describe('task steps for the latency benchmark (GCN_TASK_STEPS_DIR)', () => {
    it("writes each role's steps of a streamed request at exit: times only, in order, nothing of the prompt", async () => {
      const stepsDir = join(root, 'task-steps')
      mkdirSync(stepsDir)
      const env = { GCN_TASK_STEPS_DIR: stepsDir }
      const net = await startNetwork({ suppliers: 1, model, dir: join(root, 'net-steps'), env: { distributor: env, supplier: env } })
      const marker = `SECRET-PROMPT-${randomBytes(8).toString('hex')}`
      try {
        const r = await streamChat(net, { model: net.modelName, messages: [{ role: 'user', content: `Say ${marker}.` }], max_tokens: 4 })
        expect(r.status).to.equal(200)
      } finally {
        await net.stop()
      }
      const files = readdirSync(stepsDir).sort()
      expect(files.map(f => f.replace(/-\d+\.json$/, ''))).to.deep.equal(['distributor', 'supplier'])
      type StepsFile = { events: Array<{ step: string; atMs: number }>; dropped: number }
      const texts = files.map(f => readFileSync(join(stepsDir, f), 'utf8'))
      expect(texts.join('')).not.to.include(marker)
      const [distributor, supplier] = texts.map(t => JSON.parse(t) as StepsFile) as [StepsFile, StepsFile]
      expect(distributor.dropped + supplier.dropped).to.equal(0)
      // One request: its steps once each, and in the order the request passed them across both processes.
      const all = [...distributor.events, ...supplier.events].sort((a, b) => a.atMs - b.atMs).map(e => e.step)
      expect(all).to.deep.equal([...TASK_STEPS])
      expect(supplier.events.every(e => e.step.startsWith('supplier.'))).to.equal(true)
    })
  })
})
