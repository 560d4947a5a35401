import { randomBytes } from 'node:crypto'
import {
  BlockConfirmationCodec,
  CONFIRMATION_PAYLOAD,
  ProofVerdict,
  plainBytes,
  RECEIPTS_PAYLOAD,
  type Receipt,
  ReceiptBatchCodec,
  ReceiptCodec,
  receiptCost,
  receiptHash,
  signEnvelope
} from '@gcn/core'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'chai'
import { verifyEnvelope } from '../src/verify.js'

const idOf = (key: PrivateKey): string => peerIdFromPrivateKey(key).toString()
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex')

function varint(n: number): number[] {
  const out: number[] = []
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  out.push(n)
  return out
}

function receipt(distributor: string, supplier: string, overrides: Partial<Receipt> = {}): Receipt {
  return {
    taskId: plainBytes(randomBytes(16)),
    gameId: 'game-a',
    supplierPeerId: supplier,
    distributorPeerId: distributor,
    modelId: 'ab'.repeat(32),
    promptTokens: 30,
    completionTokens: 12,
    pricePer1kTokens: 1500n,
    cost: receiptCost(30, 12, 1500n),
    blockHeight: 7,
    promptHash: plainBytes(randomBytes(32)),
    outputHash: plainBytes(randomBytes(32)),
    verdict: ProofVerdict.VERIFIED,
    timestampMs: Date.now(),
    ...overrides
  }
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  try {
    await promise
  } catch (err) {
    expect((err as { code?: string }).code, String(err)).to.equal(code)
    return
  }
  expect.fail(`expected ${code}`)
}

describe('verifyEnvelope', () => {
  let distributorKey: PrivateKey
  let supplierKey: PrivateKey
  let strangerKey: PrivateKey
  let distributor: string
  let supplier: string
  let policy: { distributors: Set<string> }

  before(async () => {
    distributorKey = await generateKeyPair('Ed25519')
    supplierKey = await generateKeyPair('Ed25519')
    strangerKey = await generateKeyPair('Ed25519')
    distributor = idOf(distributorKey)
    supplier = idOf(supplierKey)
    policy = { distributors: new Set([distributor]) }
  })

  const batch = (receipts: Receipt[], distributorPeerId = distributor): Uint8Array =>
    ReceiptBatchCodec.encode({ distributorPeerId, blockHeight: 7, receipts, timestampMs: Date.now() })

  it('accepts a signed batch from an accepted distributor and maps every receipt', async () => {
    const receipts = [receipt(distributor, supplier), receipt(distributor, supplier, { verdict: ProofVerdict.FAILED })]
    const item = await verifyEnvelope(await signEnvelope(distributorKey, RECEIPTS_PAYLOAD, batch(receipts)), policy)
    expect(item.kind).to.equal('receipts')
    if (item.kind !== 'receipts') return
    expect(item.signer).to.equal(distributor)
    expect(item.blockHeight).to.equal(7)
    expect(item.id).to.have.length(32)
    expect(item.receipts.map(r => r.verdict)).to.deep.equal(['verified', 'failed'])
    expect(Buffer.from(item.receipts[0]!.hash).equals(Buffer.from(receiptHash(receipts[0]!)))).to.equal(true)
  })

  it('hashes every receipt as receiptHash does, whether the batch arrives in canonical form or not', async () => {
    const receipts = [receipt(distributor, supplier), receipt(distributor, supplier, { gameId: 'game-b' })]
    const canonical = batch(receipts)
    // The same batch as another encoder might write it: each receipt ends with promptTokens written
    // twice, 0 then its value (the last one counts), so the receipts' bytes are not Receipt.encode's.
    const parts: number[] = [0x0a, ...varint(distributor.length), ...Buffer.from(distributor), 0x10, 7]
    for (const r of receipts) {
      const body = [...ReceiptCodec.encode(r), 0x30, 0x00, 0x30, r.promptTokens]
      parts.push(0x1a, ...varint(body.length), ...body)
    }
    parts.push(0x20, 1)
    const other = Uint8Array.from(parts)
    expect(Buffer.compare(other, canonical)).to.not.equal(0)
    for (const payload of [canonical, other]) {
      const item = await verifyEnvelope(await signEnvelope(distributorKey, RECEIPTS_PAYLOAD, payload), policy)
      if (item.kind !== 'receipts') throw new Error('not receipts')
      expect(item.receipts.map(r => hexOf(r.hash))).to.deep.equal(receipts.map(r => hexOf(receiptHash(r))))
    }
  })

  it('gives the same id to the same envelope whatever the sender encoded', async () => {
    const envelope = await signEnvelope(distributorKey, RECEIPTS_PAYLOAD, batch([receipt(distributor, supplier)]))
    const a = await verifyEnvelope(envelope, policy)
    const b = await verifyEnvelope({ ...envelope }, policy)
    expect(Buffer.from(a.id).equals(Buffer.from(b.id))).to.equal(true)
  })

  it('refuses receipts from a distributor the registry does not accept', async () => {
    const other = idOf(strangerKey)
    const envelope = await signEnvelope(strangerKey, RECEIPTS_PAYLOAD, batch([receipt(other, supplier)], other))
    await expectCode(verifyEnvelope(envelope, policy), 'ERR_UNKNOWN_SIGNER')
  })

  it('refuses a batch signed by someone other than the distributor it names', async () => {
    const envelope = await signEnvelope(strangerKey, RECEIPTS_PAYLOAD, batch([receipt(distributor, supplier)]))
    await expectCode(verifyEnvelope(envelope, policy), 'ERR_SIGNER_MISMATCH')
  })

  it('refuses a receipt whose cost is not tokens × price', async () => {
    const envelope = await signEnvelope(distributorKey, RECEIPTS_PAYLOAD, batch([receipt(distributor, supplier, { cost: 1n })]))
    await expectCode(verifyEnvelope(envelope, policy), 'ERR_COST_MISMATCH')
  })

  it('refuses altered bytes and a flipped signature', async () => {
    const envelope = await signEnvelope(distributorKey, RECEIPTS_PAYLOAD, batch([receipt(distributor, supplier)]))
    const payload = Uint8Array.from(envelope.payload)
    payload[payload.length - 1]! ^= 1
    await expectCode(verifyEnvelope({ ...envelope, payload: plainBytes(payload) }, policy), 'ERR_INVALID_SIGNATURE')
    const signature = Uint8Array.from(envelope.signature)
    signature[0]! ^= 1
    await expectCode(verifyEnvelope({ ...envelope, signature: plainBytes(signature) }, policy), 'ERR_INVALID_SIGNATURE')
  })

  it('accepts a confirmation signed by the supplier it names, and only that', async () => {
    const payload = BlockConfirmationCodec.encode({
      supplierPeerId: supplier,
      blockHeight: 9,
      taskIds: [plainBytes(randomBytes(16))],
      timestampMs: Date.now(),
      rewardAddress: `0x${'12'.repeat(20)}`
    })
    const item = await verifyEnvelope(await signEnvelope(supplierKey, CONFIRMATION_PAYLOAD, payload), policy)
    expect(item).to.include({ kind: 'confirmation', blockHeight: 9, signer: supplier })
    await expectCode(verifyEnvelope(await signEnvelope(strangerKey, CONFIRMATION_PAYLOAD, payload), policy), 'ERR_SIGNER_MISMATCH')
  })

  it('refuses payload types registries do not store', async () => {
    const envelope = await signEnvelope(distributorKey, 'gcn/something/1', new Uint8Array([1, 2, 3]))
    await expectCode(verifyEnvelope(envelope, policy), 'ERR_UNSUPPORTED_PAYLOAD')
  })
})
