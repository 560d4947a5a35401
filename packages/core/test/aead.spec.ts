import { randomBytes } from 'node:crypto'
import { expect } from 'chai'
import { aead, nativeAead, nobleAead, WASM_MAX_AAD_BYTES, WASM_MAX_PLAINTEXT_BYTES, wasmAead } from '../src/aead.js'

describe('ChaCha20-Poly1305 implementations', () => {
  it('uses WebAssembly for small messages and the native implementation for the rest on Node', () => {
    expect(aead.name).to.equal('wasm+node')
    expect(nativeAead).to.not.equal(undefined)
  })

  it('WebAssembly and @noble produce the same bytes and open each other; the mix picks by size and associated data', () => {
    for (const size of [0, 1, 15, 16, 17, 63, 64, 65, 120, 1000, WASM_MAX_PLAINTEXT_BYTES - 1, WASM_MAX_PLAINTEXT_BYTES, 70_000]) {
      for (const aadSize of [0, 16, WASM_MAX_AAD_BYTES, WASM_MAX_AAD_BYTES + 1, 61]) {
        const key = randomBytes(32)
        const nonce = randomBytes(12)
        const aad = randomBytes(aadSize)
        const plaintext = randomBytes(size)
        const sealed = nobleAead.encrypt(key, nonce, aad, plaintext)
        expect(aead.encrypt(key, nonce, aad, plaintext)).to.deep.equal(sealed)
        expect(aead.decrypt(key, nonce, aad, sealed)).to.deep.equal(new Uint8Array(plaintext))
        if (aadSize <= WASM_MAX_AAD_BYTES) {
          expect(wasmAead.encrypt(key, nonce, aad, plaintext)).to.deep.equal(sealed)
          expect(wasmAead.decrypt(key, nonce, aad, sealed)).to.deep.equal(new Uint8Array(plaintext))
        }
      }
    }
  })

  it('native and @noble produce the same bytes and open each other, for sizes 0 to 2 KiB', () => {
    const native = nativeAead!
    for (const size of [0, 1, 15, 16, 17, 63, 64, 65, 120, 1000, 2048]) {
      const key = randomBytes(32)
      const nonce = randomBytes(12)
      const aad = randomBytes(size % 40)
      const plaintext = randomBytes(size)
      const sealed = native.encrypt(key, nonce, aad, plaintext)
      expect(sealed).to.deep.equal(nobleAead.encrypt(key, nonce, aad, plaintext))
      expect(sealed.byteLength).to.equal(size + 16)
      expect(nobleAead.decrypt(key, nonce, aad, sealed)).to.deep.equal(new Uint8Array(plaintext))
      expect(native.decrypt(key, nonce, aad, sealed)).to.deep.equal(new Uint8Array(plaintext))
    }
  })

  it('all refuse any altered byte, a wrong nonce, wrong associated data and a truncated box', () => {
    const key = randomBytes(32)
    const nonce = randomBytes(12)
    const aad = randomBytes(16)
    const sealed = nobleAead.encrypt(key, nonce, aad, randomBytes(40))
    for (const impl of [nativeAead!, nobleAead, wasmAead, aead]) {
      for (const index of [0, 20, sealed.byteLength - 1]) {
        const altered = sealed.slice()
        altered[index]! ^= 1
        expect(() => impl.decrypt(key, nonce, aad, altered), `${impl.name} byte ${index}`).to.throw()
      }
      expect(() => impl.decrypt(key, randomBytes(12), aad, sealed), impl.name).to.throw()
      expect(() => impl.decrypt(key, nonce, randomBytes(16), sealed), impl.name).to.throw()
      expect(() => impl.decrypt(key, nonce, aad, sealed.subarray(0, 15)), impl.name).to.throw()
    }
  })
})
