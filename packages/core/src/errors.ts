/**
 * Shared error classes. Every failure gcn reports is one of these (or a
 * subclass in another package): a stable `name` and `code` callers can switch
 * on, a short message, an optional `hint` for the operator, and `cause` kept.
 */
export interface GcnErrorOptions {
  cause?: unknown
  hint?: string
}

export class GcnError extends Error {
  static readonly code: string = 'ERR_GCN'
  override name = 'GcnError'
  readonly code: string
  readonly hint?: string

  constructor(message: string, options: GcnErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = (this.constructor as typeof GcnError).code
    if (options.hint !== undefined) this.hint = options.hint
  }

  toJSON(): { name: string; code: string; message: string; hint?: string } {
    return { name: this.name, code: this.code, message: this.message, ...(this.hint === undefined ? {} : { hint: this.hint }) }
  }
}

/** A wire message was truncated, garbage, of the wrong type or failed schema validation. */
export class InvalidMessageError extends GcnError {
  static override readonly code = 'ERR_INVALID_MESSAGE'
  override name = 'InvalidMessageError'
}

/** A frame or field exceeded its explicit size limit. */
export class MessageTooLargeError extends GcnError {
  static override readonly code = 'ERR_MESSAGE_TOO_LARGE'
  override name = 'MessageTooLargeError'
}

/** A signature did not verify over the bytes received. */
export class InvalidSignatureError extends GcnError {
  static override readonly code = 'ERR_INVALID_SIGNATURE'
  override name = 'InvalidSignatureError'
}

/** Sealed bytes could not be opened: wrong recipient, tampered ciphertext, nonce or sender key. */
export class DecryptionError extends GcnError {
  static override readonly code = 'ERR_DECRYPTION_FAILED'
  override name = 'DecryptionError'
}

/** A public or private key was malformed or of an unsupported type. */
export class InvalidKeyError extends GcnError {
  static override readonly code = 'ERR_INVALID_KEY'
  override name = 'InvalidKeyError'
}

/** A key file is readable by other users and is refused. */
export class InsecureKeyFileError extends GcnError {
  static override readonly code = 'ERR_INSECURE_KEY_FILE'
  override name = 'InsecureKeyFileError'
}

/** Configuration (file, env or flags) failed validation. */
export class ConfigError extends GcnError {
  static override readonly code = 'ERR_CONFIG'
  override name = 'ConfigError'
}

/** An operation was aborted through its AbortSignal. */
export class AbortedError extends GcnError {
  static override readonly code = 'ERR_ABORTED'
  override name = 'AbortedError'
}

/** An operation did not finish before its deadline. */
export class TimeoutError extends GcnError {
  static override readonly code = 'ERR_TIMEOUT'
  override name = 'TimeoutError'
}

/** A service method was called before start() or after stop(). */
export class NotStartedError extends GcnError {
  static override readonly code = 'ERR_NOT_STARTED'
  override name = 'NotStartedError'
}

/** A block height or time outside the clock's domain (before genesis, negative, not an integer). */
export class InvalidBlockError extends GcnError {
  static override readonly code = 'ERR_INVALID_BLOCK'
  override name = 'InvalidBlockError'
}

/** Throws AbortedError (keeping the signal's reason as cause) when the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what = 'operation'): void {
  if (signal?.aborted === true) {
    throw new AbortedError(`${what} aborted`, { cause: signal.reason })
  }
}

/** A registry peer refused a write (bad signature, unknown signer, block out of range, ...); `registryCode` says which. */
export class RegistryRejectedError extends GcnError {
  static override readonly code = 'ERR_REGISTRY_REJECTED'
  override name = 'RegistryRejectedError'
  readonly registryCode: string
  readonly retryable: boolean

  constructor(message: string, options: GcnErrorOptions & { registryCode: string; retryable: boolean }) {
    super(message, options)
    this.registryCode = options.registryCode
    this.retryable = options.retryable
  }
}

/** No registry peer could be reached or none acknowledged in time. */
export class RegistryUnavailableError extends GcnError {
  static override readonly code = 'ERR_REGISTRY_UNAVAILABLE'
  override name = 'RegistryUnavailableError'
}
