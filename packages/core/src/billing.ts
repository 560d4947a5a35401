import { createHash } from 'node:crypto'
import type { ProofVerdictName } from './inference.js'
import { Receipt } from './pb/gcn.js'

/**
 * What one finished task costs: (prompt + completion tokens) × price per
 * 1,000 tokens, rounded up to a whole micro-unit. Registries recompute it and
 * refuse a receipt whose cost disagrees.
 */
export function receiptCost(promptTokens: number, completionTokens: number, pricePer1kTokens: bigint): bigint {
  const tokens = BigInt(promptTokens) + BigInt(completionTokens)
  return (tokens * pricePer1kTokens + 999n) / 1000n
}

/**
 * A receipt's identity in the ledger: sha256 of its protobuf encoding. protons
 * writes fields in a fixed order, so every peer that decoded the same receipt
 * computes the same hash whichever batch carried it.
 */
export function receiptHash(receipt: Receipt): Uint8Array {
  return createHash('sha256').update(Receipt.encode(receipt)).digest()
}

/** The wire enum of a proof verdict and back. */
export function verdictToWire(verdict: ProofVerdictName): Receipt.ProofVerdict {
  switch (verdict) {
    case 'verified':
      return Receipt.ProofVerdict.VERIFIED
    case 'failed':
      return Receipt.ProofVerdict.FAILED
    default:
      return Receipt.ProofVerdict.UNCHECKED
  }
}

export function verdictFromWire(verdict: Receipt.ProofVerdict): ProofVerdictName {
  if (verdict === Receipt.ProofVerdict.VERIFIED) return 'verified'
  if (verdict === Receipt.ProofVerdict.FAILED) return 'failed'
  return 'unchecked'
}

/** Id of a stored envelope: sha256 of its encoded bytes (what replication and sync compare). */
export function envelopeId(encodedEnvelope: Uint8Array): Uint8Array {
  return createHash('sha256').update(encodedEnvelope).digest()
}
