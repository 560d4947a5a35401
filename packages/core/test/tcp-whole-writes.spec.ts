import { expect } from 'chai'
import { Uint8ArrayList } from 'uint8arraylist'
import { writeWhole } from '../src/tcp-whole-writes.js'
import { localTestNodes, spySocketWrites } from './helpers.js'

describe('tcpWholeWrites', function () {
  this.timeout(20_000)
  const nodes = localTestNodes({ role: 'supplier' })
  afterEach(() => nodes.stopAll())

  it('writes each libp2p message to the socket once, not its Noise length prefix apart', async () => {
    const [a, b] = [await nodes.start(), await nodes.start()]
    const received: number[] = []
    await b.libp2p.handle('/gcn/test-writes/1.0.0', stream => {
      stream.addEventListener('message', event => received.push(event.data.byteLength))
    })
    const stream = await a.libp2p.dialProtocol(b.libp2p.getMultiaddrs(), '/gcn/test-writes/1.0.0')
    const port = Number(b.libp2p.getMultiaddrs()[0]!.toString().split('/')[4])
    const writes: number[] = []
    const restore = spySocketWrites((socket, bytes) => {
      if (socket.remotePort === port) writes.push(bytes)
    })
    const messages = 20
    try {
      for (let i = 0; i < messages; i++) {
        stream.send(new Uint8Array(100).fill(i))
        // Each message its own batch: the next one is queued after this one was written.
        await new Promise(resolve => setTimeout(resolve, 2))
      }
      const deadline = Date.now() + 5_000
      while (received.reduce((s, n) => s + n, 0) < messages * 100 && Date.now() < deadline) await new Promise(r => setTimeout(r, 5))
    } finally {
      restore()
    }
    expect(received.reduce((s, n) => s + n, 0)).to.equal(messages * 100)
    // One write per message: 2 (Noise length) + 12 (yamux header) + 100 + 16 (tag) bytes. Without the fix
    // each message is two writes (2 bytes, then 128). Other writes are identify, pings and window updates.
    expect(
      writes.filter(n => n <= 2),
      JSON.stringify(writes)
    ).to.deep.equal([])
    expect(writes.filter(n => n === 130).length, JSON.stringify(writes)).to.equal(messages)
    stream.abort(new Error('done'))
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
