import {
  createFramedStream,
  createGcnNode,
  type GcnNode,
  prepareOpen,
  silentLogger,
  TASK_PROTOCOL,
  type TaskOpen,
  TaskOpenCodec
} from '@gcn/core'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { expect } from 'chai'
import type { SupplierEntry } from '../src/directory.js'
import { TaskStreams } from '../src/task-streams.js'

async function node(privateKey?: PrivateKey): Promise<GcnNode> {
  const n = await createGcnNode({
    role: 'supplier',
    privateKey: privateKey ?? (await generateKeyPair('Ed25519')),
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
  let supplierKey: PrivateKey
  let inbound = 0
  /** The first frame of each task stream the supplier saw one on. */
  const firstFrames: TaskOpen[] = []

  before(async () => {
    distributor = await node()
    supplierKey = await generateKeyPair('Ed25519')
    supplier = await node(supplierKey)
    await supplier.libp2p.handle(TASK_PROTOCOL, stream => {
      inbound++
      createFramedStream(stream)
        .read(TaskOpenCodec, { signal: AbortSignal.timeout(10_000) })
        .then(
          open => firstFrames.push(open),
          () => {}
        )
    })
    entry = {
      peerId: supplier.peerId,
      publicKey: supplierKey.publicKey,
      addrs: supplier.libp2p.getMultiaddrs()
    } as unknown as SupplierEntry
  })

  after(async () => {
    await distributor?.stop()
    await supplier?.stop()
  })

  it('hands out a ready spare for the next task once one was prepared', async () => {
    const streams = new TaskStreams({ spareTtlMs: 5_000 }, { node: distributor, logger: silentLogger })
    const first = await streams.take(entry, undefined, AbortSignal.timeout(5_000))
    expect(first.stream.protocol).to.equal(TASK_PROTOCOL)
    expect(streams.stats).to.include({ opened: 1, sparesUsed: 0 })
    // take() itself opens no spare: that would compete with the request it is for.
    await new Promise(resolve => setImmediate(resolve))
    expect(streams.stats.opened).to.equal(1)
    // The spare is negotiated in the background; a second prepare() while it is on its way opens nothing more.
    streams.prepare(entry)
    streams.prepare(entry)
    await until(() => streams.stats.opened === 2, 'the spare to open')
    streams.prepare(entry)
    const second = await streams.take(entry, undefined, AbortSignal.timeout(5_000))
    expect(second).to.not.equal(first)
    expect(streams.stats).to.include({ opened: 2, sparesUsed: 1 })
    streams.prepare(entry)
    await until(() => inbound >= 3, 'the supplier to see the next spare')
    streams.stop()
    first.stream.abort(new Error('done'))
    second.stream.abort(new Error('done'))
  })

  it('announces the next task on a spare for its model, so the supplier can prepare to open its request', async () => {
    const streams = new TaskStreams({ spareTtlMs: 5_000 }, { node: distributor, logger: silentLogger })
    const seen = firstFrames.length
    streams.prepare(entry, 'model-a')
    await until(() => streams.stats.sparesAnnounced === 1 && firstFrames.length === seen + 1, 'the spare to be announced')
    const announced = firstFrames[seen]!
    expect(announced.sealedRequest.byteLength).to.equal(0)
    const taken = await streams.take(entry, 'model-a', AbortSignal.timeout(5_000))
    expect(streams.stats).to.include({ opened: 1, sparesUsed: 1 })
    const kit = taken.kit!
    expect(kit.modelId).to.equal('model-a')
    expect(announced.taskId).to.deep.equal(kit.taskId)
    expect(announced.requestBoxHeader).to.deep.equal(kit.box.header)
    // What the supplier prepares from the announcement opens the request sealed with the kit.
    const prepared = prepareOpen(supplierKey, announced.requestBoxHeader!, { context: announced.taskId })
    const request = new TextEncoder().encode('the sealed request')
    expect(prepared.open(kit.box.seal(request))).to.deep.equal(request)

    // A task on another model gets the spare without the kit.
    streams.prepare(entry, 'model-a')
    await until(() => streams.stats.sparesAnnounced === 2, 'the next spare to be announced')
    const other = await streams.take(entry, 'model-b', AbortSignal.timeout(5_000))
    expect(other.kit).to.equal(undefined)
    expect(other.stream.status).to.equal('open')
    streams.stop()
    for (const s of [taken, other]) s.stream.abort(new Error('done'))
  })

  it('does not use a spare older than its time to live, nor one the supplier closed', async () => {
    const streams = new TaskStreams({ spareTtlMs: 100 }, { node: distributor, logger: silentLogger })
    const a = await streams.take(entry, undefined, AbortSignal.timeout(5_000))
    streams.prepare(entry)
    await until(() => streams.stats.opened === 2, 'the spare to open')
    await new Promise(resolve => setTimeout(resolve, 150))
    const b = await streams.take(entry, undefined, AbortSignal.timeout(5_000))
    expect(streams.stats).to.include({ sparesUsed: 0, sparesExpired: 1 })
    expect(b.stream.status).to.equal('open')
    streams.stop()
    // After stop no spare is kept, and its streams are aborted.
    const c = await streams.take(entry, undefined, AbortSignal.timeout(5_000))
    expect(c.stream.status).to.equal('open')
    for (const s of [a, b, c]) s.stream.abort(new Error('done'))
  })
})
