import { newInstance as newWasmInstance, ChaCha20Poly1305 as WasmChaCha } from '@chainsafe/as-chacha20poly1305'
import { chacha20poly1305 as nobleChaCha } from '@noble/ciphers/chacha.js'
import { type NodeCrypto, nodeCrypto } from './node-crypto.js'

/**
 * ChaCha20-Poly1305 (RFC 8439, 16-byte tag appended): WebAssembly for small
 * messages with short associated data (a task's chunks), else node:crypto
 * (OpenSSL) where it exists and @noble/ciphers elsewhere (browsers). A task
 * seals its request once and every streamed chunk once on each side; measured
 * on the 2-core dev VM, a 120-byte chunk takes ~7 µs natively against ~12 µs
 * with @noble when warm, and ~0.08 against ~0.15 ms on an idle process's first
 * call (the case on the time-to-first-token path); see wasmAead for the small
 * messages. All give identical bytes (tested).
 */
export interface Aead {
  readonly name: 'node' | 'noble' | 'wasm' | 'wasm+node' | 'wasm+noble'
  encrypt(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array
  /** Throws on a wrong key, nonce, associated data or any altered byte. */
  decrypt(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array
}

const TAG_BYTES = 16

export const nobleAead: Aead = {
  name: 'noble',
  encrypt: (key, nonce, aad, plaintext) => nobleChaCha(key, nonce, aad).encrypt(plaintext),
  decrypt: (key, nonce, aad, sealed) => nobleChaCha(key, nonce, aad).decrypt(sealed)
}

function nodeAead(c: NodeCrypto): Aead {
  const view = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength)
  return {
    name: 'node',
    encrypt(key, nonce, aad, plaintext) {
      const cipher = c.createCipheriv('chacha20-poly1305', view(key), view(nonce), { authTagLength: TAG_BYTES })
      cipher.setAAD(view(aad), { plaintextLength: plaintext.byteLength })
      const body = cipher.update(view(plaintext))
      cipher.final()
      const out = new Uint8Array(body.byteLength + TAG_BYTES)
      out.set(body, 0)
      out.set(cipher.getAuthTag(), body.byteLength)
      return out
    },
    decrypt(key, nonce, aad, sealed) {
      if (sealed.byteLength < TAG_BYTES) throw new Error('sealed data is shorter than its tag')
      const split = sealed.byteLength - TAG_BYTES
      const decipher = c.createDecipheriv('chacha20-poly1305', view(key), view(nonce), { authTagLength: TAG_BYTES })
      decipher.setAuthTag(view(sealed.subarray(split)))
      decipher.setAAD(view(aad), { plaintextLength: split })
      const body = decipher.update(view(sealed.subarray(0, split)))
      decipher.final() // throws when the tag does not verify
      return new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
    }
  }
}

/** The native implementation where node:crypto exists (exposed for the cross-check test). */
export const nativeAead: Aead | undefined = nodeCrypto === undefined ? undefined : nodeAead(nodeCrypto)

/** What the WebAssembly implementation takes: its associated-data buffer is 32 bytes. */
export const WASM_MAX_AAD_BYTES = 32
/** libp2p-noise's measured crossover: native is faster from here up (warm). */
export const WASM_MAX_PLAINTEXT_BYTES = 1200

let wasm: WasmChaCha | undefined
const wasmCipher = (): WasmChaCha => {
  wasm ??= new WasmChaCha(newWasmInstance())
  return wasm
}

/**
 * @chainsafe/as-chacha20poly1305 (WebAssembly; what libp2p-noise uses for messages under
 * 1,200 bytes): associated data of at most 32 bytes. A task's chunks are small and carry the
 * 16-byte task id as associated data; measured on the 2-core dev VM 3 ms after the last call
 * (as between a task's chunks), 60–200-byte messages took 12–25 µs here against 41–61 µs through
 * node:crypto, whose per-call cipher setup dominates at these sizes.
 */
export const wasmAead: Aead = {
  name: 'wasm',
  encrypt: (key, nonce, aad, plaintext) => wasmCipher().seal(key, nonce, plaintext, aad),
  decrypt(key, nonce, aad, sealed) {
    if (sealed.byteLength < TAG_BYTES) throw new Error('sealed data is shorter than its tag')
    const plaintext = wasmCipher().open(key, nonce, sealed, aad)
    if (plaintext === null) throw new Error('invalid authentication tag')
    return plaintext
  }
}

const base = nativeAead ?? nobleAead
const smallEnough = (aad: Uint8Array, size: number): boolean => aad.byteLength <= WASM_MAX_AAD_BYTES && size < WASM_MAX_PLAINTEXT_BYTES

/** The implementation in use: WebAssembly for small messages, else native on Node and @noble elsewhere. */
export const aead: Aead = {
  name: base === nativeAead ? 'wasm+node' : 'wasm+noble',
  encrypt: (key, nonce, aad, plaintext) => (smallEnough(aad, plaintext.byteLength) ? wasmAead : base).encrypt(key, nonce, aad, plaintext),
  decrypt: (key, nonce, aad, sealed) => (smallEnough(aad, sealed.byteLength - TAG_BYTES) ? wasmAead : base).decrypt(key, nonce, aad, sealed)
}
