/**
 * Proof of inference against adversarial suppliers that go through the real
 * protocol (in-process libp2p nodes, real sealing, real model runtimes): the
 * distributor's always-on checks and its re-scoring referee (a reference
 * runtime of the true model) must catch every attack and never fail an
 * honest supplier.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createGcnNode, type GcnNode, type InferenceRequest, silentLogger, type TaskChunk } from '@gcn/core'
import { SupplierDirectory, TaskFailedError, TaskRouter, type VerdictEvent } from '@gcn/distributor'
import {
  createModelRuntime,
  createRuntimeReferee,
  type GenerationChunk,
  type GenerationEngine,
  type ModelRuntime,
  Supplier,
  type SupplierInit,
  writeGguf
} from '@gcn/supplier'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { expect } from 'chai'

const REWARD = `0x${'12'.repeat(20)}`
const HONEST_TASKS = Number(process.env.GCN_PROOF_HONEST_TASKS ?? 1000)

interface Net {
  nodes: GcnNode[]
  runtimes: ModelRuntime[]
  suppliers: Supplier[]
}

describe('proof of inference against adversarial suppliers (real protocol, real models)', function () {
  this.timeout(300_000)
  let dir: string
  let trueModel: string
  let otherModel: string
  let smallerModel: string
  let reference: ModelRuntime
  const net: Net = { nodes: [], runtimes: [], suppliers: [] }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gcn-proof-'))
    trueModel = (await writeGguf(join(dir, 'true.gguf'), { preset: 'tiny', seed: 1 })).path
    otherModel = (await writeGguf(join(dir, 'other.gguf'), { preset: 'tiny', seed: 2, name: 'gcn-tiny-s1' })).path
    smallerModel = (await writeGguf(join(dir, 'smaller.gguf'), { preset: 'micro', seed: 1, name: 'gcn-tiny-s1' })).path
    reference = createModelRuntime({ modelPath: trueModel, slots: 1, threads: 1 }, { logger: silentLogger })
    await reference.start()
  })

  afterEach(async () => {
    for (const s of net.suppliers.splice(0)) await s.stop().catch(() => undefined)
    for (const n of net.nodes.splice(0)) await n.stop().catch(() => undefined)
    for (const r of net.runtimes.splice(0)) await r.stop().catch(() => undefined)
  })

  after(async () => {
    await reference?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  async function runtime(path: string, init: { slots?: number; threads?: number } = {}): Promise<ModelRuntime> {
    const rt = createModelRuntime({ modelPath: path, slots: init.slots ?? 1, threads: init.threads ?? 1 }, { logger: silentLogger })
    await rt.start()
    net.runtimes.push(rt)
    return rt
  }

  async function supplier(engine: GenerationEngine, init: Partial<SupplierInit> = {}): Promise<Supplier> {
    const key = await generateKeyPair('Ed25519')
    const node = await createGcnNode({ role: 'supplier', privateKey: key, profile: 'local', listen: ['/ip4/127.0.0.1/tcp/0'] })
    await node.start()
    net.nodes.push(node)
    const s = new Supplier(
      { pricePer1kTokens: 10n, rewardAddress: REWARD, ...init },
      { node, privateKey: key, engine, logger: silentLogger }
    )
    await s.start()
    net.suppliers.push(s)
    return s
  }

  async function distributor(
    suppliers: Supplier[]
  ): Promise<{ router: TaskRouter; directory: SupplierDirectory; verdicts: VerdictEvent[] }> {
    const node = await createGcnNode({
      role: 'distributor',
      privateKey: await generateKeyPair('Ed25519'),
      profile: 'local',
      listen: ['/ip4/127.0.0.1/tcp/0']
    })
    await node.start()
    net.nodes.push(node)
    const directory = new SupplierDirectory({}, { node, logger: silentLogger })
    for (const s of suppliers) await directory.query(s.node.libp2p.getMultiaddrs())
    const router = new TaskRouter({}, { node, directory, logger: silentLogger, referee: createRuntimeReferee(reference) })
    const verdicts: VerdictEvent[] = []
    router.onVerdict(v => verdicts.push(v))
    return { router, directory, verdicts }
  }

  function request(i: number, overrides: Partial<InferenceRequest['params']> = {}): InferenceRequest {
    return {
      model: reference.info.id,
      gameId: 'game',
      input:
        i % 2 === 0
          ? { kind: 'prompt', prompt: `Tell the tale of the ${i}th dragon` }
          : { kind: 'chat', messages: [{ role: 'user', content: `Hello innkeeper number ${i}` }] },
      params: { maxTokens: 8 + (i % 24), temperature: i % 3 === 0 ? 0 : 0.8, seed: i, ...overrides }
    }
  }

  async function run(
    router: TaskRouter,
    req: InferenceRequest,
    options: { whole?: boolean } = {}
  ): Promise<{ text: string; error?: unknown; verdict?: string }> {
    let text = ''
    try {
      let verdict: string | undefined
      for await (const e of router.stream(req, options)) {
        if (e.type === 'delta') text += e.text
        else verdict = e.verdict
      }
      return { text, ...(verdict === undefined ? {} : { verdict }) }
    } catch (error) {
      return { text, error }
    }
  }

  /** A runtime that claims another model's id: what a cheating supplier advertises. */
  function impersonate(rt: ModelRuntime, id: string, advertisedTtftMs?: number): GenerationEngine {
    return {
      get info() {
        return { ...rt.info, id }
      },
      stats: () => (advertisedTtftMs === undefined ? rt.stats() : { ...rt.stats(), ttftMs: advertisedTtftMs }),
      onChange: l => rt.onChange(() => l()),
      generate: (input, params, options) => rt.generate(input, params, options)
    }
  }

  /** Random tokens with self-consistent, plausible-looking proof data (codes are computed by the real Supplier). */
  function randomTokens(id: string): GenerationEngine {
    return {
      info: { id, name: 'gcn-tiny-s1', contextSize: 512 },
      stats: () => ({ totalSlots: 1, freeSlots: 1, queueDepth: 0, tokensPerSecond: 1000, ttftMs: 1 }),
      onChange: () => () => {},
      async *generate(_input, params): AsyncIterable<GenerationChunk> {
        const n = params.maxTokens
        for (let i = 0; i < n; i++) {
          const token = 300 + Math.floor(Math.random() * 600)
          yield {
            type: 'token',
            text: 'x',
            tokenIds: [token],
            logprobs: [
              {
                token,
                logprob: -0.2,
                top: [
                  { token, logprob: -0.2 },
                  { token: token + 1, logprob: -2 }
                ]
              }
            ]
          }
        }
        yield { type: 'done', finishReason: 'length', usage: { promptTokens: 5, completionTokens: n } }
      }
    }
  }

  it(`never fails an honest supplier across ${HONEST_TASKS} checked tasks (threads 1 and 2, slots 1 and 2 concurrent)`, async () => {
    const a = await supplier(await runtime(trueModel, { threads: 1, slots: 1 }))
    const b = await supplier(await runtime(trueModel, { threads: 2, slots: 2 }))
    const { router, verdicts } = await distributor([a, b])
    // Every task checked: the referee re-scores all of them.
    ;(router as unknown as { init: { checkAllUntilVerified: number } }).init.checkAllUntilVerified = Number.MAX_SAFE_INTEGER
    let i = 0
    const worker = async (): Promise<void> => {
      while (i < HONEST_TASKS) {
        const r = await run(router, request(i++))
        expect(r.error, String(r.error)).to.equal(undefined)
      }
    }
    await Promise.all([worker(), worker(), worker()])
    await router.settled()
    const failed = verdicts.filter(v => v.verdict === 'failed')
    expect(failed, JSON.stringify(failed.slice(0, 3))).to.have.length(0)
    expect(verdicts.filter(v => v.verdict === 'verified')).to.have.length(HONEST_TASKS)
  })

  it('never fails an honest greedy task under a JSON-schema grammar (the grammar, not the raw top-1, picks tokens)', async () => {
    const honest = await supplier(await runtime(trueModel))
    const { router, verdicts } = await distributor([honest])
    const schema = JSON.stringify({
      type: 'object',
      properties: { mood: { type: 'string', enum: ['calm', 'angry'] }, ok: { type: 'boolean' } },
      required: ['mood', 'ok']
    })
    for (let i = 0; i < 5; i++) {
      const r = await run(router, request(i, { temperature: 0, maxTokens: 40, jsonSchema: schema }))
      expect(r.error, String(r.error)).to.equal(undefined)
      expect(() => JSON.parse(r.text)).to.not.throw()
    }
    await router.settled()
    expect(verdicts.map(v => v.verdict)).to.deep.equal(['verified', 'verified', 'verified', 'verified', 'verified'])
  })

  for (const [label, path] of [
    ['(a) a supplier serving another model (other seed, same shape)', () => otherModel],
    ['(b) a supplier serving a smaller model', () => smallerModel]
  ] as const) {
    it(`${label} under the true id is caught by re-scoring on every checked task`, async () => {
      const cheat = await supplier(impersonate(await runtime(path()), reference.info.id))
      const { router, verdicts } = await distributor([cheat])
      for (let i = 0; i < 3; i++) {
        await run(router, request(i))
        await router.settled()
      }
      // Every checked task is caught (and the third failure bans the supplier).
      expect(verdicts.map(v => v.verdict)).to.deep.equal(['failed', 'failed', 'failed'])
      expect(verdicts[2]!.banned).to.equal(true)
    })
  }

  it('(c) random tokens with well-formed codes are caught by re-scoring, and (under greedy) by the always-on checks when implausible', async () => {
    const cheat = await supplier(randomTokens(reference.info.id))
    const { router, verdicts } = await distributor([cheat])
    await run(router, request(1))
    await router.settled()
    expect(verdicts[0]?.verdict).to.equal('failed')
  })

  it('(d) replaying the proof of an earlier task fails the always-on checks; nothing reaches the client', async () => {
    let recorded: TaskChunk[] | undefined
    const current: TaskChunk[] = []
    const cheat = await supplier(await runtime(trueModel), {
      testTamperChunk: chunk => {
        current.push(chunk)
        if (recorded === undefined) return chunk
        // Replay: the earlier task's chunk (same text, ids and proof) in place of this one.
        return recorded[Math.min(current.length - 1, recorded.length - 1)]
      }
    })
    const { router, verdicts } = await distributor([cheat])
    const req = request(0, { temperature: 0, maxTokens: 12 })
    expect((await run(router, req)).error).to.equal(undefined)
    recorded = [...current]
    current.length = 0
    const second = await run(router, req)
    expect(second.error).to.be.instanceOf(TaskFailedError)
    expect(second.text).to.equal('')
    const failed = verdicts.find(v => v.verdict === 'failed' && /proof/.test(v.reason ?? ''))
    expect(failed, 'a failed-proof verdict').to.not.equal(undefined)
    expect(failed!.taskId.length, 'the verdict names the task').to.be.greaterThan(0)
  })

  it('(e) altering one token of an honest output fails the always-on checks before the token reaches the client', async () => {
    // The second chunk: the first token goes alone, later ones in chunks of frameIntervalMs.
    const cheat = await supplier(await runtime(trueModel), {
      testTamperChunk: (chunk, task) =>
        task.index === 1 && chunk.tokenIds.length > 0 ? { ...chunk, tokenIds: [chunk.tokenIds[0]! + 1, ...chunk.tokenIds.slice(1)] } : chunk
    })
    const { router, verdicts } = await distributor([cheat])
    const r = await run(router, request(0, { maxTokens: 16 }))
    expect(r.error).to.be.instanceOf(TaskFailedError)
    expect(verdicts.some(v => v.verdict === 'failed')).to.equal(true)
  })

  it('(f) truncating the output fails the always-on checks', async () => {
    const cheat = await supplier(await runtime(trueModel), {
      // Drop every token after the first (the first token goes alone): chunks without the finish are
      // dropped, the finishing chunk (which carries the last tokens) arrives without its tokens.
      testTamperChunk: (chunk, task) => {
        if (task.index < 1) return chunk
        return chunk.finishReason === undefined ? undefined : { ...chunk, text: '', tokenIds: [] }
      }
    })
    const { router, verdicts } = await distributor([cheat])
    const r = await run(router, request(0, { maxTokens: 16, temperature: 0 }))
    expect(r.error).to.be.instanceOf(TaskFailedError)
    expect(verdicts.some(v => v.verdict === 'failed')).to.equal(true)
  })

  /** A supplier whose model says nothing: EOS first, every time. */
  function silent(id: string): GenerationEngine {
    return {
      info: { id, name: 'gcn-tiny-s1', contextSize: 512 },
      stats: () => ({ totalSlots: 1, freeSlots: 1, queueDepth: 0, tokensPerSecond: 1000, ttftMs: 1 }),
      onChange: () => () => {},
      async *generate(): AsyncIterable<GenerationChunk> {
        yield { type: 'done', finishReason: 'stop', usage: { promptTokens: 5, completionTokens: 0 } }
      }
    }
  }

  it('a whole (non-streamed) answer that fails re-scoring is not delivered but re-run elsewhere: the game gets a verified answer', async () => {
    // It advertises a faster first token, so the router tries it first.
    const cheat = await supplier(impersonate(await runtime(otherModel), reference.info.id, 1))
    const honest = await supplier(await runtime(trueModel))
    const { router, verdicts } = await distributor([cheat, honest])
    const cheatId = cheat.node.peerId.toString()
    const results = []
    for (let i = 0; i < 8; i++) results.push(await run(router, request(i), { whole: true }))
    await router.settled()
    for (const r of results) {
      expect(r.error, String(r.error)).to.equal(undefined)
      expect(r.verdict, 'verdict of every delivered answer').to.equal('verified')
    }
    const caught = verdicts.filter(v => v.supplier === cheatId && v.verdict === 'failed').length
    expect(caught, "the cheat's answers caught (and replaced)").to.be.greaterThan(0)
    expect(router.counters.rejectedAnswers).to.equal(caught)
  })

  it("an empty answer is re-run once on another supplier; a second empty answer is taken as the model's", async () => {
    const mute = await supplier(silent(reference.info.id))
    const honest = await supplier(await runtime(trueModel))
    const { router } = await distributor([mute, honest])
    for (let i = 0; i < 6; i++) {
      const r = await run(router, request(i, { temperature: 0 }))
      expect(r.error, String(r.error)).to.equal(undefined)
      expect(r.text, 'answer text').to.not.equal('')
    }
    expect(router.counters.emptyRetries, 'empty answers re-run').to.be.greaterThan(0)
    await router.settled()

    const two = await distributor([mute, await supplier(silent(reference.info.id))])
    const r = await run(two.router, request(0))
    expect(r.error, String(r.error)).to.equal(undefined)
    expect(r.text).to.equal('')
    expect(two.router.counters.emptyRetries).to.equal(1)
  })

  it('bans a persistent cheater after 3 failed tasks and ignores its adverts; an honest supplier keeps serving', async () => {
    const cheat = await supplier(randomTokens(reference.info.id))
    const honest = await supplier(await runtime(trueModel))
    const { router, directory, verdicts } = await distributor([cheat, honest])
    for (let i = 0; i < 12 && !directory.isBanned(cheat.node.peerId.toString()); i++) {
      await run(router, request(i))
      await router.settled()
    }
    const cheatId = cheat.node.peerId.toString()
    expect(directory.isBanned(cheatId)).to.equal(true)
    expect(verdicts.filter(v => v.supplier === cheatId && v.verdict === 'failed')).to.have.length(3)
    expect(directory.suppliers().map(e => e.peerId.toString())).to.not.include(cheatId)
    // Its fresh adverts are refused now.
    let refused = false
    try {
      await directory.ingest(await cheat.currentAdvert())
    } catch {
      refused = true
    }
    expect(refused).to.equal(true)
    expect((await run(router, request(99))).error).to.equal(undefined)
  })
})
