import { expect } from 'chai'
import { RegistryRejectedError, RegistryUnavailableError } from '../src/errors.js'
import { silentLogger } from '../src/logger.js'
import { BlockBatcher, RegistryOutbox } from '../src/outbox.js'
import type { RegistryAck, SignedEnvelope } from '../src/pb/gcn.js'
import type { RegistryClient } from '../src/registry-client.js'

const envelope = (n: number): SignedEnvelope => ({
  payloadType: 'gcn/test/1',
  payload: new Uint8Array([n]),
  publicKey: new Uint8Array([1]),
  signature: new Uint8Array([2])
})
const ack = (): RegistryAck => ({ id: 1, ok: true, replicas: 2, duplicate: false, errorCode: '', errorMessage: '', retryable: false })

/** A registry client double: answers each submit with the next scripted outcome. */
function scriptedClient(script: Array<'ok' | 'unavailable' | 'rejected'>): { client: RegistryClient; seen: number[] } {
  const seen: number[] = []
  const client = {
    async submit(e: SignedEnvelope): Promise<RegistryAck> {
      seen.push(e.payload[0]!)
      const next = script.shift() ?? 'ok'
      if (next === 'unavailable') throw new RegistryUnavailableError('down')
      if (next === 'rejected') throw new RegistryRejectedError('bad', { registryCode: 'ERR_INVALID_SIGNATURE', retryable: false })
      return ack()
    }
  } as unknown as RegistryClient
  return { client, seen }
}

describe('RegistryOutbox', () => {
  it('retries a failed write until a registry acknowledges it', async () => {
    const { client, seen } = scriptedClient(['unavailable', 'unavailable', 'ok'])
    const outbox = new RegistryOutbox({ retryMinMs: 5, retryMaxMs: 10 }, { client, logger: silentLogger })
    outbox.start()
    outbox.enqueue(envelope(7), 'test')
    await outbox.idle({ signal: AbortSignal.timeout(5_000) })
    expect(seen).to.deep.equal([7, 7, 7])
    expect(outbox.stats).to.include({ acked: 1, retries: 2, rejected: 0 })
    await outbox.stop()
  })

  it('drops a write the registry refuses for good, and counts it', async () => {
    const { client } = scriptedClient(['rejected'])
    const outbox = new RegistryOutbox({}, { client, logger: silentLogger })
    outbox.start()
    outbox.enqueue(envelope(1), 'test')
    await outbox.idle({ signal: AbortSignal.timeout(5_000) })
    expect(outbox.stats).to.include({ acked: 0, rejected: 1 })
    await outbox.stop()
  })

  it('refuses new writes beyond maxPending instead of growing without bound', async () => {
    const { client } = scriptedClient([])
    const outbox = new RegistryOutbox({ maxPending: 2 }, { client, logger: silentLogger })
    expect(outbox.enqueue(envelope(1), 'a')).to.equal(true)
    expect(outbox.enqueue(envelope(2), 'b')).to.equal(true)
    expect(outbox.enqueue(envelope(3), 'c')).to.equal(false)
    expect(outbox.stats.dropped).to.equal(1)
    outbox.start()
    await outbox.idle({ signal: AbortSignal.timeout(5_000) })
    expect(outbox.stats.acked).to.equal(2)
    await outbox.stop()
  })
})

describe('BlockBatcher', () => {
  it('groups by block, flushes full batches at once and the rest on flush()', () => {
    const flushed: Array<[number, number[]]> = []
    const batcher = new BlockBatcher<number>({ maxItems: 2, flushMs: 60_000, onFlush: (h, items) => flushed.push([h, items]) })
    batcher.add(5, 1)
    batcher.add(6, 2)
    batcher.add(5, 3)
    expect(flushed).to.deep.equal([[5, [1, 3]]])
    batcher.add(5, 4)
    batcher.flush()
    expect(flushed).to.deep.equal([
      [5, [1, 3]],
      [6, [2]],
      [5, [4]]
    ])
    batcher.flush()
    expect(flushed).to.have.length(3)
  })
})
