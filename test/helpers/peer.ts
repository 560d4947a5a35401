/**
 * A test peer in its own process: builds a gcn node with only the given
 * bootstrap address, then takes JSON commands on stdin and answers (and
 * reports gossip messages) as JSON lines on stdout.
 */
import '@gcn/core/polyfill'
import { createInterface } from 'node:readline'
import { createGcnNode, type NodeRole } from '@gcn/core'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'

const [role, ...bootstrap] = process.argv.slice(2)
const node = await createGcnNode({ role: role as NodeRole, privateKey: await generateKeyPair('Ed25519'), profile: 'local', bootstrap })
const send = (msg: unknown): void => {
  process.stdout.write(`${JSON.stringify(msg)}\n`)
}
node.libp2p.services.pubsub.addEventListener('message', evt => {
  send({ event: 'message', topic: evt.detail.topic, data: new TextDecoder().decode(evt.detail.data) })
})
await node.start()
send({ event: 'ready', peerId: node.peerId.toString(), addrs: node.multiaddrs })

type Command = { id: number; cmd: string; [k: string]: unknown }
const handlers: Record<string, (c: Command) => Promise<unknown>> = {
  connections: async () => [...new Set(node.libp2p.getConnections().map(c => c.remotePeer.toString()))],
  findPeer: async c => {
    const info = await node.libp2p.peerRouting.findPeer(peerIdFromString(String(c.peerId)), {
      useCache: false,
      signal: AbortSignal.timeout(15_000)
    })
    return info.multiaddrs.map(ma => ma.toString())
  },
  dial: async c => {
    const conn = await node.libp2p.dial(
      (c.addrs as string[]).map(a => multiaddr(a)),
      { signal: AbortSignal.timeout(10_000) }
    )
    return conn.remoteAddr.toString()
  },
  subscribe: async c => node.libp2p.services.pubsub.subscribe(String(c.topic)),
  subscribers: async c => node.libp2p.services.pubsub.getSubscribers(String(c.topic)).map(p => p.toString()),
  publish: async c =>
    (await node.libp2p.services.pubsub.publish(String(c.topic), new TextEncoder().encode(String(c.data)))).recipients.length
}

createInterface({ input: process.stdin }).on('line', line => {
  const c = JSON.parse(line) as Command
  const handler = handlers[c.cmd]
  if (handler === undefined) {
    send({ id: c.id, error: `unknown command ${c.cmd}` })
    return
  }
  handler(c).then(
    result => send({ id: c.id, result: result ?? null }),
    (err: Error) => send({ id: c.id, error: `${err.name}: ${err.message}` })
  )
})

const stop = (): void => {
  node.stop().finally(() => process.exit(0))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
