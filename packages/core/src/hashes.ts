import { hkdf as nobleHkdf } from '@noble/hashes/hkdf.js'
import { hmac as nobleHmac } from '@noble/hashes/hmac.js'
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js'
import { type NodeCrypto, nodeCrypto } from './node-crypto.js'

/**
 * SHA-256, HMAC-SHA256 and HKDF-SHA256 with node:crypto (OpenSSL) where it exists and
 * @noble/hashes elsewhere (browsers). Both sit on the time-to-first-token path
 * of every task: the proof chain's key (HKDF) and its codes (HMAC) on the
 * supplier and again on the distributor, and the sealed request's key (HKDF)
 * on both. Measured on the 2-core dev VM, warm: an HMAC of a 60-byte group
 * ~4 µs natively against ~25 µs with @noble, an HKDF ~12 against ~20 µs; the
 * gap is wider on an idle process's first call. Both give identical bytes
 * (tested).
 */
export interface Hashes {
  readonly name: 'node' | 'noble'
  sha256(bytes: Uint8Array): Uint8Array
  /** HMAC-SHA256 over the parts, in order, as if concatenated. */
  hmacSha256(key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array
  /** HKDF-SHA256 (RFC 5869): `length` bytes from `ikm`, `salt` and `info`. */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array
}

export const nobleHashes: Hashes = {
  name: 'noble',
  sha256: bytes => nobleSha256(bytes),
  hmacSha256(key, parts) {
    const mac = nobleHmac.create(nobleSha256, key)
    for (const part of parts) mac.update(part)
    return mac.digest()
  },
  hkdfSha256: (ikm, salt, info, length) => nobleHkdf(nobleSha256, ikm, salt, info, length)
}

/** OpenSSL's HKDF refuses an empty key and more than 1024 bytes of info; @noble takes those. */
const NODE_HKDF_MAX_INFO = 1024

function nodeHashes(c: NodeCrypto): Hashes {
  const view = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength)
  return {
    name: 'node',
    sha256(bytes) {
      const digest = c.createHash('sha256').update(view(bytes)).digest()
      return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength)
    },
    hmacSha256(key, parts) {
      const mac = c.createHmac('sha256', view(key))
      for (const part of parts) mac.update(view(part))
      const digest = mac.digest()
      return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength)
    },
    hkdfSha256(ikm, salt, info, length) {
      if (ikm.byteLength === 0 || info.byteLength > NODE_HKDF_MAX_INFO) return nobleHashes.hkdfSha256(ikm, salt, info, length)
      return new Uint8Array(c.hkdfSync('sha256', view(ikm), view(salt), view(info), length))
    }
  }
}

/** The native implementation where node:crypto exists (exposed for the cross-check test). */
export const nativeHashes: Hashes | undefined = nodeCrypto === undefined ? undefined : nodeHashes(nodeCrypto)
/** The implementation in use: native on Node, @noble elsewhere. */
export const hashes: Hashes = nativeHashes ?? nobleHashes
