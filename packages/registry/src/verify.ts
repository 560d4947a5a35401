import {
  BlockConfirmationCodec,
  CONFIRMATION_PAYLOAD,
  decodeReceiptBatch,
  envelopeId,
  GcnError,
  openEnvelope,
  RECEIPTS_PAYLOAD,
  receiptCost,
  receiptHashes,
  type SignedEnvelope,
  SignedEnvelopeCodec,
  verdictFromWire
} from '@gcn/core'
import { CostMismatchError, SignerMismatchError, UnknownSignerError, UnsupportedPayloadError } from './errors.js'
import type { LedgerItem, ReceiptRow } from './ledger.js'

/** Largest cost a ledger row holds (SQLite INTEGER is a signed 64-bit value). */
const MAX_COST = 2n ** 63n - 1n

export interface VerifyPolicy {
  /** Distributor peer ids whose receipts are accepted. */
  distributors: ReadonlySet<string>
}

/**
 * Decodes and verifies one stored-to-be envelope: schema, signature, signer
 * (an accepted distributor for receipts, the supplier itself for
 * confirmations) and every receipt's cost. Block range checks are the
 * caller's, since replicated and synced writes may be old.
 */
export async function verifyEnvelope(envelope: SignedEnvelope, policy: VerifyPolicy): Promise<LedgerItem> {
  // Re-encoding makes the stored bytes (and the id) canonical whatever the sender's encoder did.
  const encoded = SignedEnvelopeCodec.encode(envelope)
  const id = envelopeId(encoded)
  if (envelope.payloadType === RECEIPTS_PAYLOAD) {
    const opened = await openEnvelope(envelope, RECEIPTS_PAYLOAD)
    const signer = opened.signer.toString()
    const decoded = decodeReceiptBatch(opened.payload)
    const { batch } = decoded
    if (batch.distributorPeerId !== signer) {
      throw new SignerMismatchError(`receipt batch names distributor ${batch.distributorPeerId} but was signed by ${signer}`)
    }
    if (!policy.distributors.has(signer)) {
      throw new UnknownSignerError(`distributor ${signer} is not accepted by this registry`, {
        hint: 'registry operators list accepted distributors with --distributor PEER_ID'
      })
    }
    for (const r of batch.receipts) {
      const expected = receiptCost(r.promptTokens, r.completionTokens, r.pricePer1kTokens)
      if (r.cost !== expected || r.cost > MAX_COST) {
        throw new CostMismatchError(`receipt cost ${r.cost} is not ${expected} (tokens × price per 1k, rounded up)`)
      }
    }
    const hashes = receiptHashes(decoded)
    const receipts: ReceiptRow[] = batch.receipts.map((r, i) => {
      return {
        taskId: r.taskId,
        hash: hashes[i]!,
        gameId: r.gameId,
        supplier: r.supplierPeerId,
        distributor: r.distributorPeerId,
        modelId: r.modelId,
        promptTokens: r.promptTokens,
        completionTokens: r.completionTokens,
        pricePer1kTokens: r.pricePer1kTokens,
        cost: r.cost,
        blockHeight: r.blockHeight,
        verdict: verdictFromWire(r.verdict),
        timestampMs: r.timestampMs
      }
    })
    return { kind: 'receipts', id, blockHeight: batch.blockHeight, signer, envelope: encoded, receipts }
  }
  if (envelope.payloadType === CONFIRMATION_PAYLOAD) {
    const opened = await openEnvelope(envelope, CONFIRMATION_PAYLOAD)
    const signer = opened.signer.toString()
    const confirmation = BlockConfirmationCodec.decode(opened.payload)
    if (confirmation.supplierPeerId !== signer) {
      throw new SignerMismatchError(`confirmation names supplier ${confirmation.supplierPeerId} but was signed by ${signer}`)
    }
    return {
      kind: 'confirmation',
      id,
      blockHeight: confirmation.blockHeight,
      signer,
      envelope: encoded,
      taskIds: confirmation.taskIds,
      rewardAddress: confirmation.rewardAddress.toLowerCase()
    }
  }
  throw new UnsupportedPayloadError(
    `registries store ${RECEIPTS_PAYLOAD} and ${CONFIRMATION_PAYLOAD}, not ${JSON.stringify(envelope.payloadType)}`
  )
}

/** verifyEnvelope for envelope bytes fetched from a peer. */
export async function verifyEncodedEnvelope(encoded: Uint8Array, policy: VerifyPolicy): Promise<LedgerItem> {
  return verifyEnvelope(SignedEnvelopeCodec.decode(encoded), policy)
}

/** The stable error code of anything verifyEnvelope or the ledger threw. */
export function errorCode(err: unknown): string {
  return err instanceof GcnError ? err.code : 'ERR_INTERNAL'
}
