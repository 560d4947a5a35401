import { open, ProofError, ProofVerifier, ProofWriter, proofKey, RESPONSE_KEY_BYTES } from '@gcn/core'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { expect } from 'chai'
import { makeTaskKit, TaskKits } from '../src/task-kits.js'

const MODEL = 'ab'.repeat(32)
const nextTurn = (): Promise<void> => new Promise(resolve => setImmediate(resolve))
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')

describe('task kits', () => {
  let supplier: Ed25519PrivateKey
  before(async () => {
    supplier = await generateKeyPair('Ed25519')
  })

  it('a kit holds fresh ids and secrets, its proof key, and a request box the supplier opens under the task id', () => {
    const kit = makeTaskKit(supplier.publicKey, MODEL)
    expect(kit.taskId).to.have.length(16)
    expect(kit.responseKey).to.have.length(RESPONSE_KEY_BYTES)
    expect(kit.nonce).to.have.length(32)
    expect(hex(kit.proofKey)).to.equal(hex(proofKey(kit.nonce, kit.taskId, MODEL)))
    const box = kit.box.seal(new TextEncoder().encode('request'))
    expect(new TextDecoder().decode(open(supplier, box, { context: kit.taskId }))).to.equal('request')
    const other = makeTaskKit(supplier.publicKey, MODEL)
    expect(hex(other.taskId)).to.not.equal(hex(kit.taskId))
    expect(hex(other.nonce)).to.not.equal(hex(kit.nonce))
    expect(hex(other.responseKey)).to.not.equal(hex(kit.responseKey))
  })

  it('a verifier given the kit proof key checks the same chain as one that derives it', () => {
    const kit = makeTaskKit(supplier.publicKey, MODEL)
    const given = new ProofVerifier(kit.nonce, kit.taskId, MODEL, { greedy: true, key: kit.proofKey })
    const derived = new ProofVerifier(kit.nonce, kit.taskId, MODEL, { greedy: true })
    const segment = new ProofWriter(kit.nonce, kit.taskId, MODEL).finish()
    given.add(segment, [])
    derived.add(segment, [])
    expect(given.finish(0)).to.deep.equal(derived.finish(0))
    const wrongKey = new ProofVerifier(kit.nonce, kit.taskId, MODEL, { greedy: true, key: new Uint8Array(32) })
    expect(() => wrongKey.add(segment, [])).to.throw(ProofError)
  })

  it('keeps the next kit ready after each take, hands each out once, and makes one inline when none is ready', async () => {
    const kits = new TaskKits()
    const first = kits.take('supplier-a', supplier.publicKey, MODEL)
    expect(kits.readyCount).to.equal(0)
    await nextTurn()
    expect(kits.readyCount).to.equal(1)
    const second = kits.take('supplier-a', supplier.publicKey, MODEL)
    expect(kits.readyCount).to.equal(0)
    expect(hex(second.taskId)).to.not.equal(hex(first.taskId))
    // Another model of the same supplier has its own kit.
    kits.take('supplier-a', supplier.publicKey, 'cd'.repeat(32))
    await nextTurn()
    expect(kits.readyCount).to.equal(2)
    kits.stop()
  })

  it('wipes what it evicts and what is ready at stop, and makes no more after', async () => {
    const kits = new TaskKits({ maxReady: 1 })
    kits.take('supplier-a', supplier.publicKey, MODEL)
    await nextTurn()
    const held = (kits as unknown as { ready: Map<string, { nonce: Uint8Array; responseKey: Uint8Array }> }).ready
    const evicted = [...held.values()][0]!
    kits.take('supplier-b', supplier.publicKey, MODEL)
    await nextTurn()
    expect(kits.readyCount).to.equal(1)
    expect(evicted.nonce.every(b => b === 0) && evicted.responseKey.every(b => b === 0)).to.equal(true)
    const ready = [...held.values()][0]!
    kits.stop()
    expect(kits.readyCount).to.equal(0)
    expect(ready.nonce.every(b => b === 0)).to.equal(true)
    kits.take('supplier-a', supplier.publicKey, MODEL)
    await nextTurn()
    expect(kits.readyCount).to.equal(0)
  })
})
