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
