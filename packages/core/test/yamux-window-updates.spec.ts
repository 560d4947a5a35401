import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import { expect } from 'chai'
import { installYamuxHalfWindowUpdates } from '../src/yamux-window-updates.js'
import { localTestNodes, sendSmallMessages } from './helpers.js'

/** Yamux's WINDOW_UPDATE frame type (its FrameType enum value). */
const WINDOW_UPDATE = 1
const WINDOW = 256 * 1024

interface SentFrame {
  type: number
  flag: number
  length: number
}

/** A stream object with the fields sendWindowUpdate reads, its frames recorded. */
function fakeStream(state: StreamState, consumed: number): { stream: YamuxStream; frames: SentFrame[] } {
  const frames: SentFrame[] = []
  const stream = Object.assign(Object.create(YamuxStream.prototype) as object, {
    state,
    recvWindow: WINDOW,
    recvWindowCapacity: WINDOW - consumed,
    maxStreamWindowSize: 16 * 1024 * 1024,
    epochStart: Date.now(),
    getRTT: () => -1,
    sendFrame: (header: SentFrame) => frames.push(header)
  }) as unknown as YamuxStream
  return { stream, frames }
}

describe('yamux half-window updates', function () {
  this.timeout(20_000)
  const nodes = localTestNodes({ role: 'supplier' })
  afterEach(() => nodes.stopAll())

  before(() => installYamuxHalfWindowUpdates())

  it('sends no update while less than half of the window is consumed, the library update once half is', () => {
    const small = fakeStream(StreamState.Established, 100)
    small.stream.sendWindowUpdate()
    expect(small.frames).to.deep.equal([])

    const half = fakeStream(StreamState.Established, WINDOW / 2)
    half.stream.sendWindowUpdate()
    expect(half.frames).to.have.length(1)
    expect(half.frames[0]).to.include({ type: WINDOW_UPDATE, flag: 0, length: WINDOW / 2 })
  })

  it('still acknowledges a new stream at once (the update carries the ACK flag)', () => {
    const opening = fakeStream(StreamState.SYNReceived, 0)
    opening.stream.sendWindowUpdate()
    expect(opening.frames).to.have.length(1)
    expect(opening.frames[0]!.type).to.equal(WINDOW_UPDATE)
    expect(opening.frames[0]!.flag).to.not.equal(0)
  })

  it('installs once', () => {
    const before = YamuxStream.prototype.sendWindowUpdate
    installYamuxHalfWindowUpdates()
    expect(YamuxStream.prototype.sendWindowUpdate).to.equal(before)
  })

  it('a receiver of many small messages does not answer each with a window update (the library did)', async () => {
    const [a, b] = [await nodes.start(), await nodes.start()]
    // Header-only yamux frames (window updates, yamux pings) are 2 (Noise length) + 12 + 16 (tag) bytes on the socket.
    let headerOnlyWrites = 0
    const messages = 20
    const received = await sendSmallMessages(a, b, '/gcn/test-window/1.0.0', messages, (_socket, bytes) => {
      if (bytes === 30) headerOnlyWrites++
    })
    expect(received).to.equal(messages * 100)
    // Unpatched, the receiver wrote one update per message (20 or more); what is left are the SYN/ACKs of the
    // streams identify and ping open on a new connection (5–6 here).
    expect(headerOnlyWrites).to.be.below(messages / 2)
  })
})
