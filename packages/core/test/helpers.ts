import { Socket } from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createGcnNode, type GcnNode, type GcnNodeInit } from '../src/node.js'

/**
 * Started nodes of the local profile on 127.0.0.1 (a fresh key each unless given), all
 * stopped by `stopAll()` (call it in afterEach).
 */
export function localTestNodes(defaults: Partial<GcnNodeInit> = {}): {
  start(init?: Partial<GcnNodeInit>): Promise<GcnNode>
  stopAll(): Promise<void>
} {
  const nodes: GcnNode[] = []
  return {
    async start(init = {}) {
      const node = await createGcnNode({
        role: 'client',
        profile: 'local',
        listen: ['/ip4/127.0.0.1/tcp/0'],
        ...defaults,
        ...init,
        privateKey: init.privateKey ?? defaults.privateKey ?? (await generateKeyPair('Ed25519'))
      })
      await node.start()
      nodes.push(node)
      return node
    },
    async stopAll() {
      await Promise.all(nodes.splice(0).map(n => n.stop()))
    }
  }
}

/** Calls `seen` with every socket write of this process until the returned function restores `Socket.prototype.write`. */
export function spySocketWrites(seen: (socket: Socket, bytes: number) => void): () => void {
  const write = Socket.prototype.write
  Socket.prototype.write = function (this: Socket, chunk: Uint8Array, ...rest: unknown[]) {
    seen(this, chunk.byteLength)
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest)
  } as typeof write
  return () => {
    Socket.prototype.write = write
  }
}

/**
 * Opens a stream of `protocol` from `a` to `b` and sends it `count` messages of 100 bytes, each its
 * own batch (2 ms apart), with every socket write of this process passed to `seen` meanwhile.
 * Resolves with the bytes `b` received, once all arrived (or after 5 s).
 */
export async function sendSmallMessages(
  a: GcnNode,
  b: GcnNode,
  protocol: string,
  count: number,
  seen: (socket: Socket, bytes: number) => void
): Promise<number> {
  let received = 0
  await b.libp2p.handle(protocol, stream => {
    stream.addEventListener('message', event => {
      received += event.data.byteLength
    })
  })
  const stream = await a.libp2p.dialProtocol(b.libp2p.getMultiaddrs(), protocol)
  const restore = spySocketWrites(seen)
  try {
    for (let i = 0; i < count; i++) {
      stream.send(new Uint8Array(100).fill(i))
      // The next message is queued after this one was written.
      await new Promise(resolve => setTimeout(resolve, 2))
    }
    const deadline = Date.now() + 5_000
    while (received < count * 100 && Date.now() < deadline) await new Promise(r => setTimeout(r, 5))
  } finally {
    restore()
    stream.abort(new Error('done'))
  }
  return received
}
