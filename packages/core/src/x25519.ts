import { x25519 as nobleX25519 } from '@noble/curves/ed25519.js'
import { type NodeCrypto, nodeCrypto } from './node-crypto.js'

/**
 * X25519 with node:crypto (OpenSSL) where it exists and @noble/curves
 * elsewhere (browsers). Measured on the 2-core dev VM: one agreement takes
 * ~1.0 ms with @noble and ~0.036 ms natively, and a task needs two (seal and
 * open) on its critical path. Both follow RFC 7748 (scalars clamped inside),
 * so they compute identical results; a test checks that.
 */

// DER header of the PKCS#8 encoding of a raw 32-byte X25519 secret key (OID 1.3.101.110).
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20])

const base64url = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')
/** Decodes into its own memory (Buffer.from would leave a secret in Node's shared pool). */
const fromBase64url = (text: string): Uint8Array => {
  const out = new Uint8Array(Buffer.byteLength(text, 'base64url'))
  Buffer.from(out.buffer).write(text, 'base64url')
  return out
}

function der(prefix: Uint8Array, raw: Uint8Array): Buffer {
  const out = Buffer.alloc(prefix.length + raw.length)
  out.set(prefix, 0)
  out.set(raw, prefix.length)
  return out
}

export interface X25519Impl {
  readonly name: 'node' | 'noble'
  keygen(): { secretKey: Uint8Array; publicKey: Uint8Array }
  getPublicKey(secretKey: Uint8Array): Uint8Array
  /**
   * Throws on invalid or low-order public keys (callers map it to a typed error).
   * `reusedPublicKey` marks a peer's long-lived key worth caching; a one-off
   * ephemeral key is not cached (it would only evict the useful entries).
   */
  getSharedSecret(secretKey: Uint8Array, publicKey: Uint8Array, options?: { reusedPublicKey?: boolean }): Uint8Array
}

export const nobleImpl: X25519Impl = {
  name: 'noble',
  keygen: () => nobleX25519.keygen(),
  getPublicKey: secretKey => nobleX25519.getPublicKey(secretKey),
  getSharedSecret: (secretKey, publicKey) => nobleX25519.getSharedSecret(secretKey, publicKey)
}

function nodeImpl(c: NodeCrypto): X25519Impl {
  type KeyObject = import('node:crypto').KeyObject
  // Building KeyObjects from DER costs up to ~10× the agreement itself, so keep the ones we reuse:
  // our own and ephemeral secrets (by array identity) and peers' reused public keys (by value).
  // Public keys and exports go through JWK, which skips OpenSSL 3's decoders and encoders:
  // importing a raw public key ~7 µs against ~77 µs from DER, exporting ~1 µs against ~40–70 µs.
  const privateKeys = new WeakMap<Uint8Array, KeyObject>()
  const publicKeys = new Map<string, KeyObject>()
  const privateKeyOf = (secretKey: Uint8Array): KeyObject => {
    let key = privateKeys.get(secretKey)
    if (key === undefined) {
      key = c.createPrivateKey({ key: der(PKCS8_PREFIX, secretKey), format: 'der', type: 'pkcs8' })
      privateKeys.set(secretKey, key)
    }
    return key
  }
  const publicKeyFromRaw = (raw: Uint8Array): KeyObject =>
    c.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: base64url(raw) }, format: 'jwk' })
  const cachedPublicKey = (raw: Uint8Array): KeyObject => {
    const id = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('hex')
    let key = publicKeys.get(id)
    if (key === undefined) {
      key = publicKeyFromRaw(raw)
      if (publicKeys.size >= 1024) publicKeys.delete(publicKeys.keys().next().value!)
      publicKeys.set(id, key)
    }
    return key
  }
  const publicRaw = (key: KeyObject): Uint8Array => fromBase64url(key.export({ format: 'jwk' }).x!)
  return {
    name: 'node',
    keygen() {
      const pair = c.generateKeyPairSync('x25519')
      const secretKey = fromBase64url(pair.privateKey.export({ format: 'jwk' }).d!)
      privateKeys.set(secretKey, pair.privateKey)
      return { secretKey, publicKey: publicRaw(pair.publicKey) }
    },
    getPublicKey: secretKey => publicRaw(c.createPublicKey(privateKeyOf(secretKey))),
    getSharedSecret(secretKey, publicKey, options) {
      if (publicKey.length !== 32) throw new Error(`X25519 public key must be 32 bytes, got ${publicKey.length}`)
      const peerKey = options?.reusedPublicKey === true ? cachedPublicKey(publicKey) : publicKeyFromRaw(publicKey)
      return new Uint8Array(c.diffieHellman({ privateKey: privateKeyOf(secretKey), publicKey: peerKey }))
    }
  }
}

/** The native implementation where node:crypto exists (exposed for the cross-check test). */
export const nativeX25519: X25519Impl | undefined = nodeCrypto === undefined ? undefined : nodeImpl(nodeCrypto)
/** The implementation in use: native on Node, @noble elsewhere (one set of key caches). */
export const x25519: X25519Impl = nativeX25519 ?? nobleImpl
