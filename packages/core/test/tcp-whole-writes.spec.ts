import { expect } from 'chai'
import { Uint8ArrayList } from 'uint8arraylist'
import { writeWhole } from '../src/tcp-whole-writes.js'
import { localTestNodes, sendSmallMessages } from './helpers.js'

describe('tcpWholeWrites', function () {
  this.timeout(20_000)
  const nodes = localTestNodes({ role: 'supplier' })
  afterEach(() => nodes.stopAll())

  it('writes each libp2p message to the socket once, not its Noise length prefix apart', async () => {
    const [a, b] = [await nodes.start(), await nodes.start()]
    const port = Number(b.libp2p.getMultiaddrs()[0]!.toString().split('/')[4])
    const writes: number[] = []
    const messages = 20
    const received = await sendSmallMessages(a, b, '/gcn/test-writes/1.0.0', messages, (socket, bytes) => {
      if (socket.remotePort === port) writes.push(bytes)
    })
    expect(received).to.equal(messages * 100)
    // One write per message: 2 (Noise length) + 12 (yamux header) + 100 + 16 (tag) bytes. Without the fix
    // each message is two writes (2 bytes, then 128). Other writes are identify, pings and window updates.
    expect(
      writes.filter(n => n <= 2),
      JSON.stringify(writes)
    ).to.deep.equal([])
    expect(writes.filter(n => n === 130).length, JSON.stringify(writes)).to.equal(messages)
  })

  it('leaves a connection without the expected method as it is, joins a batch of several parts, passes anything else on', () => {
    const plain = { other: 1 }
    expect(writeWhole(plain)).to.equal(plain)
    const seen: number[][] = []
    const conn = writeWhole({
      sendData(data: Iterable<Uint8Array>) {
        seen.push([...data].map(b => b.byteLength))
        return { sentBytes: 0, canSendMore: true }
      }
    })
    conn.sendData(new Uint8ArrayList(new Uint8Array(2), new Uint8Array(30)))
    conn.sendData(new Uint8ArrayList(new Uint8Array(7)))
    // Not a list of parts: passed on as it came.
    conn.sendData([new Uint8Array(3), new Uint8Array(4)])
    expect(seen).to.deep.equal([[32], [7], [3, 4]])
  })
})
