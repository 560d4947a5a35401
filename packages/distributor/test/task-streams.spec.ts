import { createGcnNode, type GcnNode, silentLogger, TASK_PROTOCOL } from '@gcn/core'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { expect } from 'chai'
import type { SupplierEntry } from '../src/directory.js'
import { TaskStreams } from '../src/task-streams.js'

async function node(): Promise<GcnNode> {
  const n = await createGcnNode({
    role: 'supplier',
    privateKey: await generateKeyPair('Ed25519'),
    profile: 'local',
    listen: ['/ip4/127.0.0.1/tcp/0']
  })
  await n.start()
  return n
}

async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

describe('TaskStreams', function () {
  this.timeout(20_000)
  let distributor: GcnNode
  let supplier: GcnNode
  let entry: SupplierEntry
  let inbound = 0

  before(async () => {
    distributor = await node()
    supplier = await node()
    await supplier.libp2p.handle(TASK_PROTOCOL, stream => {
      inbound++
      stream.addEventListener('message', () => undefined)
    })
    entry = { peerId: supplier.peerId, addrs: supplier.libp2p.getMultiaddrs() } as unknown as SupplierEntry
  })

  after(async () => {
    await distributor?.stop()
    await supplier?.stop()
  })

  it('hands out a ready spare for the next task once one was prepared', async () => {
    const streams = new TaskStreams({ spareTtlMs: 5_000 }, { node: distributor, logger: silentLogger })
    const first = await streams.take(entry, AbortSignal.timeout(5_000))
    expect(first.protocol).to.equal(TASK_PROTOCOL)
    expect(streams.stats).to.include({ opened: 1, sparesUsed: 0 })
    // take() itself opens no spare: that would compete with the request it is for.
    await new Promise(resolve => setImmediate(resolve))
    expect(streams.stats.opened).to.equal(1)
    // The spare is negotiated in the background; a second prepare() while it is on its way opens nothing more.
    streams.prepare(entry)
    streams.prepare(entry)
    await until(() => streams.stats.opened === 2, 'the spare to open')
    streams.prepare(entry)
    const second = await streams.take(entry, AbortSignal.timeout(5_000))
    expect(second).to.not.equal(first)
    expect(streams.stats).to.include({ opened: 2, sparesUsed: 1 })
    streams.prepare(entry)
    await until(() => inbound >= 3, 'the supplier to see the next spare')
    streams.stop()
    first.abort(new Error('done'))
    second.abort(new Error('done'))
  })

  it('does not use a spare older than its time to live, nor one the supplier closed', async () => {
    const streams = new TaskStreams({ spareTtlMs: 100 }, { node: distributor, logger: silentLogger })
    const a = await streams.take(entry, AbortSignal.timeout(5_000))
    streams.prepare(entry)
    await until(() => streams.stats.opened === 2, 'the spare to open')
    await new Promise(resolve => setTimeout(resolve, 150))
    const b = await streams.take(entry, AbortSignal.timeout(5_000))
    expect(streams.stats).to.include({ sparesUsed: 0, sparesExpired: 1 })
    expect(b.status).to.equal('open')
    streams.stop()
    // After stop no spare is kept, and its streams are aborted.
    const c = await streams.take(entry, AbortSignal.timeout(5_000))
    expect(c.status).to.equal('open')
    for (const s of [a, b, c]) s.abort(new Error('done'))
  })
})
