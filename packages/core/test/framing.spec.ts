import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Stream } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { streamPair } from '@libp2p/utils'
import { expect } from 'chai'
import { createLibp2p, type Libp2p } from 'libp2p'
import { AbortedError, InvalidMessageError, MessageTooLargeError, TimeoutError } from '../src/errors.js'
import {
  createFramedStream,
  LIMITS,
  StreamEndedError,
  TASK_PROTOCOL,
  type TaskChunk,
  TaskChunkCodec,
  type TaskFrame,
  TaskFrameCodec,
  type TaskOpen,
  TaskOpenCodec,
  WIRE_VERSION,
  WireFinishReason
} from '../src/wire.js'

const open: TaskOpen = { version: WIRE_VERSION, taskId: new Uint8Array(16).fill(1), sealedRequest: new Uint8Array(500).fill(2) }
const frame = (i: number): TaskFrame => ({ sealed: new Uint8Array(10 + i).fill(i) })

function varint(value: number): Uint8Array {
  const out: number[] = []
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80)
    value = Math.floor(value / 0x80)
  }
  out.push(value)
  return Uint8Array.from(out)
}

async function rejectsWith<E extends Error>(promise: Promise<unknown>, type: abstract new (...args: never[]) => E): Promise<E> {
  try {
    await promise
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(type)
    return err as E
  }
  throw new Error(`expected ${type.name}`)
}

/** Sends raw bytes on a stream, bypassing the framing, optionally closing the write side. */
async function sendRaw(stream: Stream, bytes: Uint8Array, close = true): Promise<void> {
  stream.send(bytes)
  if (close) await stream.close()
}

describe('framed streams (in-memory stream pair)', () => {
  let a: Stream
  let b: Stream

  beforeEach(async () => {
    ;[a, b] = await streamPair()
  })

  afterEach(() => {
    a.abort(new Error('test over'))
    b.abort(new Error('test over'))
  })

  it('round-trips typed frames in both directions and ends cleanly', async () => {
    const left = createFramedStream(a)
    const right = createFramedStream(b)
    await left.write(TaskOpenCodec, open)
    expect(await right.read(TaskOpenCodec)).to.deep.equal(open)
    for (let i = 0; i < 5; i++) await right.write(TaskFrameCodec, frame(i))
    await right.close()
    const got: TaskFrame[] = []
    for await (const f of left.frames(TaskFrameCodec)) got.push(f)
    expect(got).to.deep.equal([0, 1, 2, 3, 4].map(frame))
    // a clean end is null from readOrEnd and a non-truncated StreamEndedError from read
    expect(await left.readOrEnd(TaskFrameCodec)).to.equal(null)
    const err = await rejectsWith(left.read(TaskFrameCodec), StreamEndedError)
    expect(err.truncated).to.equal(false)
  })

  it('carries a frame at exactly the codec limit and rejects one byte more before reading its body', async () => {
    const reader = createFramedStream(b)
    const body = new Uint8Array(LIMITS.taskFrame)
    await sendRaw(a, varint(LIMITS.taskFrame), false)
    await sendRaw(a, body, false)
    // exactly at the limit: the frame is read, then fails schema (all zero bytes is not a TaskFrame)
    await rejectsWith(reader.read(TaskFrameCodec), InvalidMessageError)
    // one byte over: only the prefix is sent, so this must not wait for a body
    await sendRaw(a, varint(LIMITS.taskFrame + 1), false)
    const err = await rejectsWith(reader.read(TaskFrameCodec), MessageTooLargeError)
    expect(err.message).to.include('TaskFrame')
    // the framing is now out of sync: the error sticks
    await rejectsWith(reader.read(TaskFrameCodec), MessageTooLargeError)
  })

  it('rejects an endless length prefix as too large', async () => {
    const reader = createFramedStream(b)
    await sendRaw(a, new Uint8Array(12).fill(0xff), false)
    await rejectsWith(reader.read(TaskFrameCodec), MessageTooLargeError)
  })

  it('rejects a non-minimal prefix longer than the limit needs', async () => {
    const reader = createFramedStream(b)
    await sendRaw(a, Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x00]), false)
    await rejectsWith(reader.read(TaskFrameCodec), MessageTooLargeError)
  })

  it('applies maxFrameBytes on both read and write', async () => {
    const writer = createFramedStream(a, { maxFrameBytes: 64 })
    const reader = createFramedStream(b, { maxFrameBytes: 64 })
    await rejectsWith(writer.write(TaskFrameCodec, { sealed: new Uint8Array(100).fill(1) }), MessageTooLargeError)
    await writer.write(TaskFrameCodec, frame(3))
    expect(await reader.read(TaskFrameCodec)).to.deep.equal(frame(3))
    await sendRaw(a, varint(65), false)
    await rejectsWith(reader.read(TaskFrameCodec), MessageTooLargeError)
  })

  it('reports a frame cut off inside its body as truncated', async () => {
    const reader = createFramedStream(b)
    await sendRaw(a, Uint8Array.from([...varint(100), ...new Uint8Array(10)]))
    const err = await rejectsWith(reader.readOrEnd(TaskFrameCodec), StreamEndedError)
    expect(err.truncated).to.equal(true)
  })

  it('reports a stream cut off inside the length prefix as truncated', async () => {
    const reader = createFramedStream(b)
    await sendRaw(a, Uint8Array.from([0x80]))
    const err = await rejectsWith(reader.readOrEnd(TaskFrameCodec), StreamEndedError)
    expect(err.truncated).to.equal(true)
  })

  it('rejects a garbage body with InvalidMessageError and keeps the framing usable', async () => {
    const writer = createFramedStream(a)
    const reader = createFramedStream(b)
    const garbage = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])
    await sendRaw(a, Uint8Array.from([...varint(garbage.length), ...garbage]), false)
    const err = await rejectsWith(reader.read(TaskOpenCodec), InvalidMessageError)
    expect(err.message).to.include('TaskOpen')
    await writer.write(TaskOpenCodec, open)
    expect(await reader.read(TaskOpenCodec)).to.deep.equal(open)
  })

  it('validates before writing: nothing is sent for an invalid message', async () => {
    const writer = createFramedStream(a)
    const reader = createFramedStream(b)
    const bad: TaskChunk = { seq: 1, text: '', tokenIds: [], finishReason: WireFinishReason.UNSPECIFIED, proof: new Uint8Array(0) }
    await rejectsWith(writer.write(TaskChunkCodec, bad), InvalidMessageError)
    await writer.close()
    expect(await reader.readOrEnd(TaskChunkCodec)).to.equal(null)
  })

  it('maps abort and timeout signals, and a read aborted before any byte leaves the stream usable', async () => {
    const reader = createFramedStream(b)
    const writer = createFramedStream(a)
    await rejectsWith(reader.read(TaskFrameCodec, { signal: AbortSignal.timeout(20) }), TimeoutError)
    const controller = new AbortController()
    const pending = reader.read(TaskFrameCodec, { signal: controller.signal })
    controller.abort(new Error('caller gave up'))
    await rejectsWith(pending, AbortedError)
    await rejectsWith(writer.write(TaskFrameCodec, frame(1), { signal: controller.signal }), AbortedError)
    await writer.write(TaskFrameCodec, frame(2))
    expect(await reader.read(TaskFrameCodec)).to.deep.equal(frame(2))
  })

  it('cuts frames out of any split of the bytes: one byte per message, or several frames in one', async () => {
    const reader = createFramedStream(b)
    const frames = [frame(1), frame(200), frame(3)]
    const bytes = frames.flatMap(f => {
      const body = TaskFrameCodec.encode(f)
      return [...varint(body.length), ...body]
    })
    for (const byte of bytes.slice(0, 150)) a.send(Uint8Array.of(byte))
    a.send(Uint8Array.from(bytes.slice(150)))
    await a.close()
    expect(await reader.read(TaskFrameCodec)).to.deep.equal(frames[0])
    expect(await reader.read(TaskFrameCodec)).to.deep.equal(frames[1])
    expect(await reader.read(TaskFrameCodec)).to.deep.equal(frames[2])
    expect(await reader.readOrEnd(TaskFrameCodec)).to.equal(null)
  })

  it('keeps a frame begun before a read was aborted for the next read', async () => {
    const reader = createFramedStream(b)
    const body = TaskFrameCodec.encode(frame(5))
    const bytes = Uint8Array.from([...varint(body.length), ...body])
    a.send(bytes.subarray(0, 4))
    const controller = new AbortController()
    const pending = reader.read(TaskFrameCodec, { signal: controller.signal })
    await new Promise(resolve => setTimeout(resolve, 10))
    controller.abort(new Error('caller gave up'))
    await rejectsWith(pending, AbortedError)
    a.send(bytes.subarray(4))
    expect(await reader.read(TaskFrameCodec)).to.deep.equal(frame(5))
  })

  it('aborts the stream when more unread bytes arrive than maxBufferBytes', async () => {
    const reader = createFramedStream(b, { maxBufferBytes: 1024 })
    const writer = createFramedStream(a)
    // The writer sees the reset once the reader's buffer overflowed.
    for (let i = 0; i < 20; i++)
      if (
        !(await writer.write(TaskFrameCodec, frame(100)).then(
          () => true,
          () => false
        ))
      )
        break
    await rejectsWith(reader.read(TaskFrameCodec), MessageTooLargeError)
    await rejectsWith(reader.read(TaskFrameCodec), MessageTooLargeError)
    expect(b.status).to.not.equal('open')
  })

  it('turns a remote reset into StreamEndedError', async () => {
    const reader = createFramedStream(b)
    const pending = reader.read(TaskFrameCodec)
    a.abort(new Error('remote blew up'))
    await rejectsWith(pending, StreamEndedError)
  })

  it('refuses concurrent reads', async () => {
    const reader = createFramedStream(b)
    const first = reader.read(TaskFrameCodec)
    await rejectsWith(reader.read(TaskFrameCodec), Error)
    await createFramedStream(a).write(TaskFrameCodec, frame(1))
    expect(await first).to.deep.equal(frame(1))
  })
})

describe('framed streams (two libp2p nodes over TCP + noise + yamux)', function () {
  this.timeout(30_000)
  let server: Libp2p
  let client: Libp2p
  const received: unknown[] = []

  before(async () => {
    const init = () => ({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()]
    })
    server = await createLibp2p(init())
    client = await createLibp2p(init())
    // a tiny task server: read the open frame, answer with frames, then close
    await server.handle(TASK_PROTOCOL, async stream => {
      const framed = createFramedStream(stream, { maxFrameBytes: LIMITS.taskOpen })
      try {
        received.push(await framed.read(TaskOpenCodec))
        for (let i = 0; i < 3; i++) await framed.write(TaskFrameCodec, frame(i))
        await framed.close()
      } catch (err) {
        received.push(err)
        framed.abort(err as Error)
      }
    })
  })

  after(async () => {
    await client?.stop()
    await server?.stop()
  })

  it('runs a request/response exchange', async () => {
    received.length = 0
    const stream = await client.dialProtocol(server.getMultiaddrs()[0], TASK_PROTOCOL)
    const framed = createFramedStream(stream)
    await framed.write(TaskOpenCodec, open)
    const frames: TaskFrame[] = []
    for await (const f of framed.frames(TaskFrameCodec)) frames.push(f)
    expect(frames).to.deep.equal([0, 1, 2].map(frame))
    expect(received).to.deep.equal([open])
  })

  it('the server rejects an oversized prefix and the client sees the stream end', async () => {
    received.length = 0
    const stream = await client.dialProtocol(server.getMultiaddrs()[0], TASK_PROTOCOL)
    stream.send(varint(LIMITS.taskOpen + 1))
    const framed = createFramedStream(stream)
    const err = await rejectsWith(framed.read(TaskFrameCodec, { signal: AbortSignal.timeout(10_000) }), StreamEndedError)
    expect(err.truncated).to.equal(false)
    expect(received).to.have.length(1)
    expect(received[0]).to.be.instanceOf(MessageTooLargeError)
  })
})
