import { expect } from 'chai'
import { AckedWriteStream, RegistryUnavailableError } from '../src/index.js'
import type { SignedEnvelope } from '../src/pb/gcn.js'
import type { FramedStream } from '../src/wire.js'

/** A framed stream whose incoming frames end, and whose pending write fails, when the test says so. */
function scriptedStream() {
  let endReads!: () => void
  const readsEnded = new Promise<void>(resolve => {
    endReads = resolve
  })
  let failWrite!: (err: Error) => void
  const framed = {
    // No acks ever: the frames end when the registry goes away.
    frames: () => ({
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          await readsEnded
          return { done: true, value: undefined }
        }
      })
    }),
    write: () =>
      new Promise<void>((_, reject) => {
        failWrite = reject
      }),
    abort: () => undefined
  } as unknown as FramedStream
  return { framed, endReads: () => endReads(), failWrite: (err: Error) => failWrite(err) }
}

const envelope = { payloadType: 'test', payload: new Uint8Array(1), publicKey: new Uint8Array(32), signature: new Uint8Array(64) }

describe('AckedWriteStream', () => {
  it('fails a write cleanly when the registry closes the stream while the frame is still being written (no unhandled rejection)', async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason)
    }
    process.on('unhandledRejection', onUnhandled)
    try {
      const s = scriptedStream()
      const stream = new (AckedWriteStream as unknown as new (framed: FramedStream) => AckedWriteStream)(s.framed)
      const write = stream.write(envelope as unknown as SignedEnvelope)
      // The registry goes away: the read side ends first, then the pending frame write fails.
      s.endReads()
      await new Promise(resolve => setImmediate(resolve))
      expect(stream.closed).to.equal(true)
      s.failWrite(new Error('stream reset'))
      const err = await write.then(
        () => undefined,
        (e: unknown) => e
      )
      expect(err).to.be.instanceOf(Error)
      await new Promise(resolve => setTimeout(resolve, 20))
      expect(unhandled).to.deep.equal([])
      // Later writes fail at once with the stream's error.
      const again = await stream.write(envelope as unknown as SignedEnvelope).then(
        () => undefined,
        (e: unknown) => e
      )
      expect(again).to.be.instanceOf(RegistryUnavailableError)
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })
})
