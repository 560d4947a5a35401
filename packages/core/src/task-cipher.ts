import { aead } from './aead.js'
import { DecryptionError, InvalidKeyError } from './errors.js'

/**
 * Symmetric sealing of a task's streamed chunks. The distributor puts a fresh
 * 32-byte `response_key` inside the TaskRequest it seals to the supplier, so
 * only that supplier learns it; the supplier seals every chunk with it.
 * One X25519 agreement per task instead of one per token keeps per-token cost
 * to a ChaCha20-Poly1305 call. The nonce is the chunk's sequence number, so a
 * replayed, dropped or reordered chunk fails to open; the task id is bound as
 * associated data so chunks cannot be moved between tasks.
 */
export const RESPONSE_KEY_BYTES = 32
/** Bytes a sealed chunk adds to its plaintext (the Poly1305 tag). */
export const CHUNK_SEAL_OVERHEAD = 16

function nonceFor(seq: number): Uint8Array {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new DecryptionError(`invalid chunk sequence number ${seq}`)
  const nonce = new Uint8Array(12)
  new DataView(nonce.buffer).setBigUint64(4, BigInt(seq))
  return nonce
}

export class ChunkCipher {
  private readonly key: Uint8Array
  private readonly taskId: Uint8Array

  constructor(key: Uint8Array, taskId: Uint8Array) {
    if (key.byteLength !== RESPONSE_KEY_BYTES)
      throw new InvalidKeyError(`response key must be ${RESPONSE_KEY_BYTES} bytes, got ${key.byteLength}`)
    this.key = key
    this.taskId = taskId
  }

  seal(seq: number, plaintext: Uint8Array): Uint8Array {
    return aead.encrypt(this.key, nonceFor(seq), this.taskId, plaintext)
  }

  /** Throws DecryptionError on any tampering, wrong key, wrong task or wrong sequence number. */
  open(seq: number, sealed: Uint8Array): Uint8Array {
    try {
      return aead.decrypt(this.key, nonceFor(seq), this.taskId, sealed)
    } catch (err) {
      throw new DecryptionError(`chunk ${seq} failed to open`, {
        cause: err,
        hint: 'the chunk was tampered with, replayed, reordered or sealed for another task'
      })
    }
  }
}
