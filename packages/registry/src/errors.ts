import { GcnError } from '@gcn/core'

/** The envelope's signer is not an accepted distributor, or not a registry peer on a peer-only protocol. */
export class UnknownSignerError extends GcnError {
  static override readonly code = 'ERR_UNKNOWN_SIGNER'
  override name = 'UnknownSignerError'
}

/** The envelope was signed by someone other than the peer its content names. */
export class SignerMismatchError extends GcnError {
  static override readonly code = 'ERR_SIGNER_MISMATCH'
  override name = 'SignerMismatchError'
}

/** The write is for a block in the future or older than the registry still accepts. */
export class BlockOutOfRangeError extends GcnError {
  static override readonly code = 'ERR_BLOCK_OUT_OF_RANGE'
  override name = 'BlockOutOfRangeError'
}

/** A receipt's cost is not its tokens times its price. */
export class CostMismatchError extends GcnError {
  static override readonly code = 'ERR_COST_MISMATCH'
  override name = 'CostMismatchError'
}

/** The envelope carries a payload type registries do not store. */
export class UnsupportedPayloadError extends GcnError {
  static override readonly code = 'ERR_UNSUPPORTED_PAYLOAD'
  override name = 'UnsupportedPayloadError'
}

/** The write is durable here but fewer registry peers than the quorum confirmed it in time (retry). */
export class QuorumNotReachedError extends GcnError {
  static override readonly code = 'ERR_QUORUM'
  override name = 'QuorumNotReachedError'
}

/** A query parameter is malformed (HTTP 400). */
export class InvalidQueryError extends GcnError {
  static override readonly code = 'ERR_INVALID_QUERY'
  override name = 'InvalidQueryError'
}
