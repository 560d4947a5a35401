/// <reference types="node" />
/// <reference types="mocha" />
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { expect } from 'chai'
import { AbortedError, type ChatMessage, estimateTokens, GcnClient, Npc, StreamError } from '../src/index.js'

interface SeenChat {
  headers: IncomingHttpHeaders
  messages: ChatMessage[]
  max_tokens: number
  model: string
}

/**
 * A fake gateway for NPC tests. Replies to the last user line: `fail` sends
 * an error event mid-stream, `hang` sends one delta and never ends, anything
 * else gets `reply(line)` in two deltas after `delayMs`.
 */
async function fakeGateway(reply: (line: string) => string, delayMs = 0) {
  const requests: SeenChat[] = []
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
    requests.push({ headers: req.headers, messages: body.messages, max_tokens: body.max_tokens, model: body.model })
    const line: string = body.messages.at(-1).content
    res.writeHead(200, { 'Content-Type': 'text/event-stream' })
    const send = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`)
    const delta = (content: string) =>
      send({ id: 'c', model: body.model, choices: [{ index: 0, delta: { content }, finish_reason: null }] })
    if (line === 'fail') {
      delta('I was about to')
      send({ error: { message: 'supplier lost', type: 'server_error', code: 'task_failed' } })
      res.end()
      return
    }
    if (line === 'hang') {
      delta('Well…')
      return
    }
    await new Promise(resolve => setTimeout(resolve, delayMs))
    const text = reply(line)
    delta(text.slice(0, 3))
    delta(text.slice(3))
    send({ id: 'c', model: body.model, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })
    res.end('data: [DONE]\n\n')
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    close: async () => {
      server.closeAllConnections()
      await new Promise(resolve => server.close(resolve))
    }
  }
}

type Gateway = Awaited<ReturnType<typeof fakeGateway>>

function tokens(messages: ChatMessage[]): number {
  return messages.reduce((sum, m) => sum + estimateTokens(m.content), 0)
}

// 40 characters = 10 estimated tokens; every line below is 20 characters = 5 tokens.
const PERSONA = 'You are Brom, a grumpy dwarf blacksmith.'
const line = (n: number) => `Player line number ${n}`.padEnd(20, '.')
const answer = (player: string) => `Brom answers ${player.slice(19 - 5, 19)}`.padEnd(20, '!')

describe('Npc', () => {
  let gw: Gateway | undefined

  afterEach(async () => {
    await gw?.close()
    gw = undefined
  })

  function client(): GcnClient {
    return new GcnClient({ baseUrl: gw!.baseUrl, apiKey: 'k', defaultModel: 'tiny', retryBaseDelayMs: 1 })
  }

  it('estimates tokens as ceil(characters / 4)', () => {
    expect(estimateTokens('')).to.equal(0)
    expect(estimateTokens('abcd')).to.equal(1)
    expect(estimateTokens('abcde')).to.equal(2)
    expect(PERSONA).to.have.length(40)
    expect(line(1)).to.have.length(20)
    expect(answer(line(1))).to.have.length(20)
  })

  it('keeps the persona and the newest turns within the budget', async () => {
    gw = await fakeGateway(answer)
    // Prompt budget = 60 - 20 = 40 tokens: persona 10 + new line 5 leaves 25, i.e. two 10-token turns.
    const npc = new Npc(client(), { persona: PERSONA, maxContextTokens: 60, maxReplyTokens: 20, params: { temperature: 0.2 } })
    for (let n = 1; n <= 5; n++) {
      const texts: string[] = []
      const reply = npc.say(line(n))
      for await (const { text } of reply) texts.push(text)
      expect(texts.join('')).to.equal(answer(line(n)))
      expect((await reply.done).text).to.equal(answer(line(n)))
    }
    const sent = gw.requests.map(r => r.messages)
    for (const messages of sent) {
      expect(messages[0]).to.deep.equal({ role: 'system', content: PERSONA })
      expect(tokens(messages)).to.be.at.most(40)
    }
    expect(sent[0]).to.have.length(2)
    expect(sent[1]).to.have.length(4)
    expect(sent[2]).to.have.length(6)
    expect(sent[4]).to.deep.equal([
      { role: 'system', content: PERSONA },
      { role: 'user', content: line(3) },
      { role: 'assistant', content: answer(line(3)) },
      { role: 'user', content: line(4) },
      { role: 'assistant', content: answer(line(4)) },
      { role: 'user', content: line(5) }
    ])
    // Memory keeps what a prompt could use (40 - persona 10 = 30 tokens: three turns).
    expect(npc.history.map(m => m.content)).to.deep.equal([line(3), answer(line(3)), line(4), answer(line(4)), line(5), answer(line(5))])
    for (const r of gw.requests) {
      expect(r.max_tokens).to.equal(20)
      expect(r.model).to.equal('tiny')
      expect(r.headers['x-gcn-session']).to.equal(npc.sessionId)
    }
    expect(npc.sessionId).to.match(/^npc-[0-9a-f]{32}$/)
  })

  it('does not record a turn whose reply failed mid-stream or was aborted', async () => {
    gw = await fakeGateway(answer)
    const npc = new Npc(client(), { persona: PERSONA, model: 'tiny-chat', sessionId: 'brom-1' })
    await npc.say(line(1)).done

    const failed = npc.say('fail')
    const texts: string[] = []
    let error: unknown
    try {
      for await (const { text } of failed) texts.push(text)
    } catch (e) {
      error = e
    }
    expect(texts).to.deep.equal(['I was about to'])
    expect(error).to.be.instanceOf(StreamError)

    const ac = new AbortController()
    const hanging = npc.say('hang', { signal: ac.signal })
    let aborted: unknown
    try {
      for await (const _ of hanging) ac.abort()
    } catch (e) {
      aborted = e
    }
    expect(aborted).to.be.instanceOf(AbortedError)
    expect(await hanging.done.catch(e => e)).to.equal(aborted)

    const broken = npc.say('hang')
    for await (const _ of broken) break
    expect(await broken.done.catch(e => e)).to.be.instanceOf(AbortedError)

    expect(npc.history).to.deep.equal([
      { role: 'user', content: line(1) },
      { role: 'assistant', content: answer(line(1)) }
    ])
    await npc.say(line(2)).done
    const last = gw.requests.at(-1)!
    expect(last.messages.map(m => m.content)).to.deep.equal([PERSONA, line(1), answer(line(1)), line(2)])
    expect(last.model).to.equal('tiny-chat')
    expect(last.headers['x-gcn-session']).to.equal('brom-1')
  })

  it('answers overlapping lines in order, each seeing the previous turn', async () => {
    gw = await fakeGateway(answer, 30)
    const npc = new Npc(client(), { persona: PERSONA })
    const first = npc.say(line(1))
    const second = npc.say(line(2))
    const [a, b] = await Promise.all([first.done, second.done])
    expect(a.text).to.equal(answer(line(1)))
    expect(b.text).to.equal(answer(line(2)))
    expect(gw.requests[1]!.messages.map(m => m.content)).to.deep.equal([PERSONA, line(1), answer(line(1)), line(2)])
    expect(npc.history).to.have.length(4)
  })

  it('reset() forgets turns, including one still in flight', async () => {
    gw = await fakeGateway(answer, 50)
    const npc = new Npc(client(), { persona: PERSONA })
    await npc.say(line(1)).done
    const inFlight = npc.say(line(2))
    npc.reset()
    await inFlight.done
    expect(npc.history).to.deep.equal([])
    await npc.say(line(3)).done
    expect(gw.requests.at(-1)!.messages.map(m => m.content)).to.deep.equal([PERSONA, line(3)])
  })

  it('validates its options', () => {
    const c = new GcnClient({ baseUrl: 'http://127.0.0.1:1/v1', apiKey: 'k' })
    expect(() => new Npc(c, { persona: ' ' })).to.throw(TypeError)
    expect(() => new Npc(c, { persona: 'p', maxContextTokens: 100, maxReplyTokens: 100 })).to.throw(RangeError)
  })
})
