import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  BlockClock,
  BlockConfirmationCodec,
  CONFIRMATION_PAYLOAD,
  openEnvelope,
  type RegistryOutbox,
  type SignedEnvelope,
  silentLogger
} from '@gcn/core'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'chai'
import { ConfirmationReporter } from '../src/confirmations.js'

/** Records what would go to the registries (a test double of RegistryOutbox: enqueue only). */
function fakeOutbox() {
  const sent: SignedEnvelope[] = []
  return { sent, outbox: { enqueue: (e: SignedEnvelope) => sent.push(e) > 0 } as unknown as RegistryOutbox }
}

async function confirmedIds(envelopes: SignedEnvelope[]): Promise<string[]> {
  const ids: string[] = []
  for (const e of envelopes) {
    const { payload } = await openEnvelope(e, CONFIRMATION_PAYLOAD)
    ids.push(...BlockConfirmationCodec.decode(payload).taskIds.map(t => Buffer.from(t).toString('hex')))
  }
  return ids.sort()
}

describe('ConfirmationReporter', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gcn-confirm-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('records every task as it completes and, after a crash, confirms what no confirmation covered and re-sends the rest as the same bytes', async () => {
    const privateKey = await generateKeyPair('Ed25519')
    const peerId = peerIdFromPrivateKey(privateKey).toString()
    // Long blocks: nothing is flushed by the timer during the test.
    const clock = new BlockClock({ genesisMs: Date.now() - 5_000, blockMs: 60_000, blocksPerDay: 100 })
    const recordFile = join(dir, 'completed-tasks.jsonl')
    const task = (n: number): Uint8Array => Uint8Array.from({ length: 16 }, (_, i) => (i === 0 ? n : 0))

    const first = fakeOutbox()
    const a = new ConfirmationReporter(
      { rewardAddress: `0x${'11'.repeat(20)}`, recordFile },
      { privateKey, peerId, clock, outbox: first.outbox, logger: silentLogger }
    )
    await a.start()
    a.completed(task(1))
    a.completed(task(2))
    await a.stop() // block end: tasks 1 and 2 confirmed
    expect(first.sent).to.have.length(1)
    // The process goes on, completes task 3 and is killed before its block ends (no stop, no flush).
    const b = new ConfirmationReporter(
      { rewardAddress: `0x${'11'.repeat(20)}`, recordFile },
      { privateKey, peerId, clock, outbox: fakeOutbox().outbox, logger: silentLogger }
    )
    await b.start()
    b.completed(task(3))
    await new Promise(resolve => setTimeout(resolve, 50))
    const lines = readFileSync(recordFile, 'utf8').trim().split('\n')
    expect(lines.filter(l => l.includes('"t":"task"'))).to.have.length(3)

    // Restart: the earlier confirmation again (identical bytes), and a new one for task 3.
    const after = fakeOutbox()
    const c = new ConfirmationReporter(
      { rewardAddress: `0x${'11'.repeat(20)}`, recordFile },
      { privateKey, peerId, clock, outbox: after.outbox, logger: silentLogger }
    )
    await c.start()
    await c.stop()
    expect(c.stats).to.include({ resent: 1, recovered: 1 })
    expect(Buffer.from(after.sent[0]!.signature).equals(Buffer.from(first.sent[0]!.signature))).to.equal(true)
    expect(await confirmedIds(after.sent)).to.deep.equal([task(1), task(2), task(3)].map(t => Buffer.from(t).toString('hex')).sort())
  })

  it('ignores records older than resendBlocks and lines cut short', async () => {
    const privateKey = await generateKeyPair('Ed25519')
    const peerId = peerIdFromPrivateKey(privateKey).toString()
    const clock = new BlockClock({ genesisMs: Date.now() - 100 * 1_000, blockMs: 1_000, blocksPerDay: 1000 })
    const recordFile = join(dir, 'completed-tasks.jsonl')
    const { writeFileSync } = await import('node:fs')
    writeFileSync(recordFile, `${JSON.stringify({ t: 'task', block: 10, id: 'aa'.repeat(16) })}\n{"t":"task","blo`)
    const out = fakeOutbox()
    const r = new ConfirmationReporter(
      { rewardAddress: `0x${'11'.repeat(20)}`, recordFile, resendBlocks: 20 },
      { privateKey, peerId, clock, outbox: out.outbox, logger: silentLogger }
    )
    await r.start()
    await r.stop()
    expect(out.sent).to.have.length(0)
    expect(r.stats.recovered).to.equal(0)
  })
})
