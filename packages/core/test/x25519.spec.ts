import { expect } from 'chai'
import { nativeX25519, nobleImpl, x25519 } from '../src/x25519.js'

describe('x25519 implementations', () => {
  it('uses the native implementation on Node', () => {
    expect(x25519.name).to.equal('node')
    expect(nativeX25519).to.not.equal(undefined)
  })

  it('native and @noble agree on public keys and shared secrets for random keys', () => {
    const native = nativeX25519!
    for (let i = 0; i < 50; i++) {
      const a = i % 2 === 0 ? native.keygen() : nobleImpl.keygen()
      const b = i % 2 === 0 ? nobleImpl.keygen() : native.keygen()
      expect(native.getPublicKey(a.secretKey)).to.deep.equal(nobleImpl.getPublicKey(a.secretKey))
      expect(native.getPublicKey(a.secretKey)).to.deep.equal(a.publicKey)
      const s1 = native.getSharedSecret(a.secretKey, b.publicKey)
      expect(s1).to.deep.equal(nobleImpl.getSharedSecret(a.secretKey, b.publicKey))
      expect(s1).to.deep.equal(native.getSharedSecret(b.secretKey, a.publicKey))
    }
  })

  it('both refuse or zero out low-order public keys, and reject wrong sizes', () => {
    const { secretKey } = nobleImpl.keygen()
    const lowOrder = [new Uint8Array(32), Uint8Array.from([1, ...new Array(31).fill(0)])]
    for (const impl of [nativeX25519!, nobleImpl]) {
      for (const point of lowOrder) {
        let shared: Uint8Array | undefined
        try {
          shared = impl.getSharedSecret(secretKey, point)
        } catch {
          shared = undefined
        }
        if (shared !== undefined)
          expect(
            shared.every(b => b === 0),
            `${impl.name} must not derive a usable secret`
          ).to.equal(true)
      }
      expect(() => impl.getSharedSecret(secretKey, new Uint8Array(31))).to.throw()
    }
  })
})
