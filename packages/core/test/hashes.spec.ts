import { randomBytes } from 'node:crypto'
import { expect } from 'chai'
import { hashes, nativeHashes, nobleHashes } from '../src/hashes.js'

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'))
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

describe('SHA-256, HMAC and HKDF implementations', () => {
  it('uses the native implementation on Node', () => {
    expect(hashes.name).to.equal('node')
    expect(nativeHashes).to.not.equal(undefined)
  })

  for (const impl of [nativeHashes!, nobleHashes]) {
    it(`${impl.name}: RFC 4231 HMAC-SHA256 case 2 and RFC 5869 HKDF-SHA256 case 1`, () => {
      const mac = impl.hmacSha256(new TextEncoder().encode('Jefe'), [
        new TextEncoder().encode('what do ya want '),
        new TextEncoder().encode('for nothing?')
      ])
      expect(toHex(mac)).to.equal('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843')
      const okm = impl.hkdfSha256(hex('0b'.repeat(22)), hex('000102030405060708090a0b0c'), hex('f0f1f2f3f4f5f6f7f8f9'), 42)
      expect(toHex(okm)).to.equal('3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865')
      expect(toHex(impl.sha256(new TextEncoder().encode('abc')))).to.equal(
        'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
      )
    })
  }

  it('native and @noble agree on random inputs, empty keys and parts, and info over 1 KiB', () => {
    const native = nativeHashes!
    for (const size of [0, 1, 31, 32, 33, 64, 65, 200, 1025, 4096]) {
      const key = randomBytes(size % 70)
      const parts = [randomBytes(size), randomBytes(0), randomBytes(size % 7)]
      expect(native.hmacSha256(key, parts)).to.deep.equal(nobleHashes.hmacSha256(key, parts))
      expect(native.sha256(parts[0]!)).to.deep.equal(nobleHashes.sha256(parts[0]!))
      const ikm = randomBytes(size % 48)
      const salt = randomBytes(size % 33)
      const info = randomBytes(size)
      for (const length of [16, 32, 64]) {
        expect(native.hkdfSha256(ikm, salt, info, length)).to.deep.equal(nobleHashes.hkdfSha256(ikm, salt, info, length))
      }
    }
  })
})
