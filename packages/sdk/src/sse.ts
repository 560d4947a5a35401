/**
 * Server-sent events parser (the WHATWG event-stream format), written for
 * fetch bodies: bytes may be split anywhere, including inside a multi-byte
 * UTF-8 sequence or between the `\r` and `\n` of a line break.
 */
import { StreamError } from './errors.js'
import { readerChunks } from './transport.js'

/**
 * One dispatched event.
 *
 * @example
 * ```ts
 * const event: SseEvent = { type: 'message', data: '{"choices":[]}', id: '' }
 * ```
 */
export interface SseEvent {
  /** The `event:` field, `message` when absent. */
  type: string
  /** All `data:` lines of the event joined with `\n`. */
  data: string
  /** The last `id:` seen so far in the stream (empty when none). */
  id: string
}

/**
 * Default cap on one event: 1 MiB, counted in characters (UTF-16 code units)
 * of the pending line plus the event's data.
 *
 * @example
 * ```ts
 * new SseParser({ maxEventSize: DEFAULT_MAX_EVENT_SIZE / 4 })
 * ```
 */
export const DEFAULT_MAX_EVENT_SIZE = 1024 * 1024

/**
 * Options of {@link SseParser} and {@link readSse}.
 *
 * @example
 * ```ts
 * const options: SseOptions = { maxEventSize: 64 * 1024 }
 * ```
 */
export interface SseOptions {
  /** Characters one event (data plus the line being read) may hold; beyond it a StreamError is thrown. */
  maxEventSize?: number
}

const LF = 10
const CR = 13
const COLON = 58
const SPACE = 32
const BOM = 0xfeff

/**
 * Decodes chunks that end on a UTF-8 character boundary, with no state kept
 * between calls: in Node a streaming TextDecoder goes through ICU, several
 * times slower than this one-shot path. Shared, since it holds no state.
 */
let wholeDecoder: TextDecoder | undefined

/** Whether `bytes` ends on a UTF-8 character boundary; false when that is not certain. */
function endsOnBoundary(bytes: Uint8Array): boolean {
  const n = bytes.length
  for (let i = n - 1; i >= 0 && i >= n - 4; i--) {
    const b = bytes[i]!
    // ASCII or a lead byte: the end is a boundary if its whole sequence is here.
    if ((b & 0xc0) !== 0x80) return n - i >= (b < 0xc0 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4)
  }
  return false
}

/**
 * Incremental parser: feed it byte chunks, get back the events they complete.
 * An event cut off by the end of the stream is discarded, as the format
 * requires.
 *
 * @example
 * ```ts
 * const parser = new SseParser()
 * parser.push(new TextEncoder().encode('data: hel'))  // []
 * parser.push(new TextEncoder().encode('lo\n\n'))     // [{ type: 'message', data: 'hello', id: '' }]
 * ```
 */
export class SseParser {
  /** Decodes from a chunk that ends inside a character until one ends on a boundary. */
  #streamDecoder: TextDecoder | undefined
  /** #streamDecoder holds the start of a character. */
  #pending = false
  /** Some text was decoded: a byte-order mark is dropped only at the very start. */
  #started = false
  readonly #maxEventSize: number
  /** Text of the line not yet terminated. */
  #line = ''
  /** Data lines of the current event, each followed by `\n`. */
  #data = ''
  #type = ''
  #lastId = ''
  /** The previous chunk ended with `\r`: a leading `\n` in the next one belongs to that line break. */
  #afterCR = false

  constructor(options: SseOptions = {}) {
    this.#maxEventSize = options.maxEventSize ?? DEFAULT_MAX_EVENT_SIZE
  }

  /** Feeds the next bytes; throws StreamError when an event grows past the cap. */
  push(chunk: Uint8Array): SseEvent[] {
    let text: string
    if (!this.#pending && endsOnBoundary(chunk)) {
      wholeDecoder ??= new TextDecoder('utf-8', { ignoreBOM: true })
      text = wholeDecoder.decode(chunk)
    } else {
      this.#streamDecoder ??= new TextDecoder('utf-8', { ignoreBOM: true })
      text = this.#streamDecoder.decode(chunk, { stream: true })
      // An empty chunk leaves the decoder as it was.
      if (chunk.length > 0) this.#pending = !endsOnBoundary(chunk)
    }
    if (!this.#started && text.length > 0) {
      this.#started = true
      if (text.charCodeAt(0) === BOM) text = text.slice(1)
    }
    return this.#feed(text)
  }

  /** Flushes the decoder at the end of the stream; any unterminated event is dropped. */
  end(): SseEvent[] {
    // A character cut off by the end decodes to U+FFFD.
    const events = this.#pending ? this.#feed(this.#streamDecoder!.decode()) : []
    this.#pending = false
    this.#line = ''
    this.#data = ''
    this.#type = ''
    return events
  }

  #feed(text: string): SseEvent[] {
    const events: SseEvent[] = []
    const n = text.length
    let i = 0
    if (this.#afterCR && n > 0) {
      if (text.charCodeAt(0) === LF) i = 1
      this.#afterCR = false
    }
    let start = i
    for (; i < n; i++) {
      const c = text.charCodeAt(i)
      if (c !== LF && c !== CR) continue
      const line = this.#line + text.slice(start, i)
      this.#line = ''
      this.#processLine(line, events)
      if (c === CR) {
        if (i + 1 < n) {
          if (text.charCodeAt(i + 1) === LF) i++
        } else {
          this.#afterCR = true
        }
      }
      start = i + 1
    }
    this.#line += text.slice(start)
    this.#checkSize()
    return events
  }

  #processLine(line: string, events: SseEvent[]): void {
    if (line.length === 0) {
      this.#dispatch(events)
      return
    }
    if (line.charCodeAt(0) === COLON) return // comment, e.g. a keep-alive
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.charCodeAt(0) === SPACE) value = value.slice(1)
    switch (field) {
      case 'data':
        this.#data += value + '\n'
        this.#checkSize()
        break
      case 'event':
        this.#type = value
        break
      case 'id':
        if (!value.includes('\0')) this.#lastId = value
        break
      default:
        // `retry` and unknown fields carry nothing the SDK uses.
        break
    }
  }

  #dispatch(events: SseEvent[]): void {
    const type = this.#type
    const data = this.#data
    this.#type = ''
    this.#data = ''
    if (data.length === 0) return
    events.push({ type: type || 'message', data: data.slice(0, -1), id: this.#lastId })
  }

  #checkSize(): void {
    if (this.#line.length + this.#data.length > this.#maxEventSize) {
      throw new StreamError(`server-sent event larger than ${this.#maxEventSize} characters`)
    }
  }
}

/**
 * Reads a fetch body as server-sent events. Returning early (break), an error
 * or `signal` aborting cancels the body, which closes the connection.
 *
 * @example
 * ```ts
 * const res = await fetch(url, { headers: { Accept: 'text/event-stream' } })
 * for await (const event of readSse(res.body!)) {
 *   if (event.data === '[DONE]') break
 * }
 * ```
 */
export async function* readSse(
  body: ReadableStream<Uint8Array>,
  options: SseOptions & { signal?: AbortSignal } = {}
): AsyncGenerator<SseEvent, void, undefined> {
  // fetch already errors the body when its signal aborts; cancelling the reader
  // too covers custom fetch implementations and bodies not tied to a signal.
  yield* sseEvents(readerChunks(body.getReader(), options.signal), options)
}

/**
 * Parses body chunks as server-sent events: the client's path, with no
 * ReadableStream. Returning early (break) or an error calls the chunks'
 * `return`, which should cancel the body. `signal` is checked around every
 * read, which throws its reason once it aborted; the chunks must end or reject
 * when it aborts (the transports and {@link readerChunks} see to it).
 *
 * @example
 * ```ts
 * for await (const event of sseEvents(response.chunks(), { signal })) {
 *   if (event.data === '[DONE]') break
 * }
 * ```
 */
export async function* sseEvents(
  chunks: AsyncIterable<Uint8Array>,
  options: SseOptions & { signal?: AbortSignal } = {}
): AsyncGenerator<SseEvent, void, undefined> {
  const { signal } = options
  const parser = new SseParser(options)
  const iterator = chunks[Symbol.asyncIterator]()
  let finished = false
  try {
    for (;;) {
      if (signal?.aborted) throw signal.reason
      const { done, value } = await iterator.next()
      if (signal?.aborted) throw signal.reason
      if (done) {
        finished = true
        for (const event of parser.end()) yield event
        return
      }
      for (const event of parser.push(value)) yield event
    }
  } finally {
    if (!finished) {
      try {
        iterator.return?.()?.catch(() => {})
      } catch {
        // A failing return() must not hide the error that ended the loop.
      }
    }
  }
}
