/// <reference types="node" />
/// <reference types="mocha" />
import { expect } from 'chai'
import { StreamError } from '../src/errors.js'
import { readSse, type SseEvent, SseParser, sseEvents } from '../src/sse.js'

// Mixed line endings (\r\n, \n, lone \r), a comment, multi-line data, an id,
// a field without a colon, and multi-byte UTF-8 (a ZWJ emoji sequence, CJK).
const SAMPLE =
  ': keep-alive\r\n' +
  '\r\n' +
  'data: {"choices":[{"delta":{"content":"Hi 🧙‍♂️!"}}]}\r\n' +
  '\r\n' +
  'event: custom\n' +
  'id: 7\n' +
  'data: line one\n' +
  'data:line two ü 日本\n' +
  'retry: 1000\n' +
  '\n' +
  'data\r' +
  '\r' +
  'data: [DONE]\n\n'

const EXPECTED: SseEvent[] = [
  { type: 'message', data: '{"choices":[{"delta":{"content":"Hi 🧙‍♂️!"}}]}', id: '' },
  { type: 'custom', data: 'line one\nline two ü 日本', id: '7' },
  { type: 'message', data: '', id: '7' },
  { type: 'message', data: '[DONE]', id: '7' }
]

const bytes = new TextEncoder().encode(SAMPLE)

function parseChunks(chunks: Uint8Array[]): SseEvent[] {
  const parser = new SseParser()
  const events: SseEvent[] = []
  for (const chunk of chunks) events.push(...parser.push(chunk))
  events.push(...parser.end())
  return events
}

function streamOf(chunks: Uint8Array[], onCancel?: () => void): ReadableStream<Uint8Array> {
  let i = 0
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]!)
      else controller.close()
    },
    cancel() {
      onCancel?.()
    }
  })
}

describe('sse parser', () => {
  it('parses a whole stream', () => {
    expect(parseChunks([bytes])).to.deep.equal(EXPECTED)
  })

  it('gives the same events when split at every byte offset (UTF-8 and \\r\\n included)', () => {
    for (let i = 0; i <= bytes.length; i++) {
      const events = parseChunks([bytes.subarray(0, i), bytes.subarray(i)])
      expect(events, `split at ${i}`).to.deep.equal(EXPECTED)
    }
  })

  it('gives the same events when split at every pair of offsets', () => {
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j++) {
        const events = parseChunks([bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)])
        if (events.length !== EXPECTED.length || JSON.stringify(events) !== JSON.stringify(EXPECTED)) {
          expect(events, `split at ${i} and ${j}`).to.deep.equal(EXPECTED)
        }
      }
    }
  })

  it('gives the same events fed one byte at a time', () => {
    const chunks = Array.from(bytes, b => Uint8Array.of(b))
    expect(parseChunks(chunks)).to.deep.equal(EXPECTED)
  })

  it('drops an event cut off by the end of the stream', () => {
    const parser = new SseParser()
    expect(parser.push(new TextEncoder().encode('data: a\n\ndata: half'))).to.deep.equal([{ type: 'message', data: 'a', id: '' }])
    expect(parser.end()).to.deep.equal([])
  })

  it('strips a leading byte-order mark', () => {
    const withBom = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('data: x\n\n')])
    expect(parseChunks([withBom.subarray(0, 2), withBom.subarray(2)])).to.deep.equal([{ type: 'message', data: 'x', id: '' }])
  })

  it('throws StreamError when one event exceeds the cap, across data lines or within one unterminated line', () => {
    const parser = new SseParser({ maxEventSize: 100 })
    expect(parser.push(new TextEncoder().encode(`data: ${'a'.repeat(90)}\n\n`))).to.have.length(1)
    expect(() => parser.push(new TextEncoder().encode(`data: ${'b'.repeat(60)}\ndata: ${'c'.repeat(60)}\n`))).to.throw(StreamError)

    const endless = new SseParser({ maxEventSize: 100 })
    endless.push(new TextEncoder().encode('data: '))
    let error: unknown
    try {
      for (let i = 0; i < 20; i++) endless.push(new TextEncoder().encode('x'.repeat(10)))
    } catch (e) {
      error = e
    }
    expect(error).to.be.instanceOf(StreamError)
    expect((error as StreamError).code).to.equal('ERR_STREAM')
  })

  it('readSse yields events from a ReadableStream and cancels it when the consumer stops', async () => {
    let cancelled = false
    const chunks = [bytes.subarray(0, 30), bytes.subarray(30), new TextEncoder().encode('data: never read\n\n')]
    const seen: SseEvent[] = []
    for await (const event of readSse(streamOf(chunks, () => (cancelled = true)))) {
      seen.push(event)
      if (event.data === '[DONE]') break
    }
    expect(seen).to.deep.equal(EXPECTED)
    expect(cancelled).to.equal(true)
  })

  it('readSse stops with the abort reason when its signal fires', async () => {
    const ac = new AbortController()
    const never = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('data: 1\n\n'))
      }
    })
    const reason = new Error('stop')
    const iterator = readSse(never, { signal: ac.signal })
    expect((await iterator.next()).value).to.deep.include({ data: '1' })
    const pending = iterator.next()
    ac.abort(reason)
    let error: unknown
    try {
      await pending
    } catch (e) {
      error = e
    }
    expect(error).to.equal(reason)
  })

  it('keeps a U+FEFF that does not start the stream, whole chunks or split', () => {
    const first = new TextEncoder().encode('data: a')
    const second = new TextEncoder().encode('\uFEFF\n\n')
    expect(parseChunks([first, second])).to.deep.equal([{ type: 'message', data: 'a\uFEFF', id: '' }])
    expect(parseChunks([first, second.subarray(0, 1), second.subarray(1)])).to.deep.equal([{ type: 'message', data: 'a\uFEFF', id: '' }])
  })

  it('decodes invalid UTF-8 to U+FFFD the same wherever the chunks are cut', () => {
    const invalid = Uint8Array.from([
      ...new TextEncoder().encode('data: a'),
      0xff,
      0xe2,
      0x82,
      0x62,
      0xf0,
      0x9f,
      ...new TextEncoder().encode('\n\n')
    ])
    const whole = parseChunks([invalid])
    expect(whole).to.have.length(1)
    expect(whole[0]!.data).to.equal(new TextDecoder().decode(invalid.subarray(6, -2)))
    for (let i = 0; i <= invalid.length; i++) {
      expect(parseChunks([invalid.subarray(0, i), invalid.subarray(i)]), `split at ${i}`).to.deep.equal(whole)
    }
  })

  it('sseEvents parses any async iterable of chunks and returns it when the consumer stops', async () => {
    let returned = false
    const chunks = [bytes.subarray(0, 17), bytes.subarray(17, 18), bytes.subarray(18), new TextEncoder().encode('data: never read\n\n')]
    const source: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => {
        let i = 0
        return {
          next: async () => (i < chunks.length ? { done: false, value: chunks[i++]! } : { done: true, value: undefined }),
          return: async () => {
            returned = true
            return { done: true, value: undefined }
          }
        }
      }
    }
    const seen: SseEvent[] = []
    for await (const event of sseEvents(source)) {
      seen.push(event)
      if (event.data === '[DONE]') break
    }
    expect(seen).to.deep.equal(EXPECTED)
    expect(returned).to.equal(true)
  })

  it('sseEvents throws the abort reason once its signal aborted', async () => {
    const ac = new AbortController()
    const reason = new Error('stop')
    async function* source() {
      yield new TextEncoder().encode('data: 1\n\ndata: 2\n\n')
      ac.abort(reason)
      yield new TextEncoder().encode('data: 3\n\n')
    }
    const seen: string[] = []
    let error: unknown
    try {
      for await (const event of sseEvents(source(), { signal: ac.signal })) seen.push(event.data)
    } catch (e) {
      error = e
    }
    expect(seen).to.deep.equal(['1', '2'])
    expect(error).to.equal(reason)
  })
})
