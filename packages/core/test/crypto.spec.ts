import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { ed25519, x25519 } from '@noble/curves/ed25519.js'
import { expect } from 'chai'
import {
  assertValidSignature,
  open,
  prepareOpen,
  prepareSeal,
  randomBytes,
  SEAL_HEADER_LENGTH,
  SEAL_OVERHEAD,
  seal,
  sha256,
  signPayload,
  verifyPayload,
  x25519PublicKeyFromEd25519
} from '../src/crypto.js'
import { DecryptionError, GcnError, InvalidKeyError, InvalidSignatureError } from '../src/errors.js'

function expectThrows(fn: () => unknown, type: abstract new (...args: never[]) => Error): Error {
  try {
    fn()
  } catch (err) {
    expect(err).to.be.instanceOf(type)
    return err as Error
  }
  throw new Error(`expected ${type.name}`)
}

async function expectRejects(promise: Promise<unknown>, type: abstract new (...args: never[]) => Error): Promise<Error> {
  try {
    await promise
  } catch (err) {
    expect(err).to.be.instanceOf(type)
    return err as Error
  }
  throw new Error(`expected ${type.name}`)
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const copy = bytes.slice()
  copy[bit >> 3]! ^= 1 << (bit & 7)
  return copy
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('crypto: seal/open', () => {
  let alice: Ed25519PrivateKey
  let bob: Ed25519PrivateKey

  before(async () => {
    alice = await generateKeyPair('Ed25519')
    bob = await generateKeyPair('Ed25519')
  })

  it('has 61 bytes of overhead', () => {
    expect(SEAL_OVERHEAD).to.equal(61)
    expect(seal(alice.publicKey, new Uint8Array(10)).length).to.equal(10 + SEAL_OVERHEAD)
  })

  for (const size of [0, 1, 1024 * 1024]) {
    it(`round-trips ${size} bytes`, () => {
      const plaintext = randomBytes(size)
      const sealed = seal(alice.publicKey, plaintext)
      expect(sealed[0]).to.equal(0x01)
      expect(open(alice, sealed)).to.deep.equal(plaintext)
    })
  }

  it('accepts a raw 32-byte Ed25519 public key', () => {
    const sealed = seal(alice.publicKey.raw, utf8('hi'))
    expect(open(alice, sealed)).to.deep.equal(utf8('hi'))
  })

  it('round-trips with a context', () => {
    const context = utf8('request-42')
    expect(open(alice, seal(alice.publicKey, utf8('x'), { context }), { context })).to.deep.equal(utf8('x'))
  })

  it('converts keys like the secret-key map does', () => {
    const secret = ed25519.utils.toMontgomerySecret(alice.raw.subarray(0, 32))
    expect(x25519PublicKeyFromEd25519(alice.publicKey)).to.deep.equal(x25519.getPublicKey(secret))
  })

  it('two seals of the same plaintext differ', () => {
    const plaintext = utf8('same')
    const a = seal(alice.publicKey, plaintext)
    const b = seal(alice.publicKey, plaintext)
    expect(a).to.not.deep.equal(b)
    expect(a.subarray(1, 33)).to.not.deep.equal(b.subarray(1, 33))
  })

  it('uses every ephemeral key once, also across turns of the event loop (when the key pool refills)', async () => {
    const keys = new Set<string>()
    for (let i = 0; i < 12; i++) {
      // Alternate recipients, with and without a turn of the event loop.
      const recipient = i % 3 === 0 ? bob : alice
      const sealed = seal(recipient.publicKey, utf8(`m${i}`))
      expect(open(recipient, sealed)).to.deep.equal(utf8(`m${i}`))
      keys.add(Buffer.from(sealed.subarray(1, 33)).toString('hex'))
      if (i % 2 === 0) await new Promise(resolve => setImmediate(resolve))
    }
    expect(keys.size).to.equal(12)
  })

  it('fails for the wrong recipient', () => {
    const err = expectThrows(() => open(bob, seal(alice.publicKey, utf8('secret'))), DecryptionError)
    expect((err as DecryptionError).hint).to.be.a('string')
    expect(err.cause).to.not.equal(undefined)
  })

  it('fails for every single flipped bit', () => {
    const sealed = seal(alice.publicKey, utf8('hello'))
    let failures = 0
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      expectThrows(() => open(alice, flipBit(sealed, bit)), DecryptionError)
      failures++
    }
    expect(failures).to.equal((5 + SEAL_OVERHEAD) * 8)
  })

  it('fails for every truncation and for an appended byte', () => {
    const sealed = seal(alice.publicKey, utf8('hello'))
    for (let length = 0; length < sealed.length; length++) {
      expectThrows(() => open(alice, sealed.subarray(0, length)), DecryptionError)
    }
    expectThrows(() => open(alice, Uint8Array.of(...sealed, 0)), DecryptionError)
  })

  it('fails for an unknown version', () => {
    const sealed = seal(alice.publicKey, utf8('hello'))
    sealed[0] = 0x02
    expect(expectThrows(() => open(alice, sealed), DecryptionError).message).to.match(/version/)
  })

  it('fails for a different or missing context', () => {
    const sealed = seal(alice.publicKey, utf8('hello'), { context: utf8('a') })
    expectThrows(() => open(alice, sealed, { context: utf8('b') }), DecryptionError)
    expectThrows(() => open(alice, sealed), DecryptionError)
    expectThrows(() => open(alice, seal(alice.publicKey, utf8('hello')), { context: utf8('a') }), DecryptionError)
  })

  it('fails for low-order ephemeral keys', () => {
    const sealed = seal(alice.publicKey, utf8('hello'))
    const one = new Uint8Array(32)
    one[0] = 1
    // u = 0 (all zero), u = 1, and a point of order 8.
    const order8 = Uint8Array.from(Buffer.from('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'hex'))
    for (const eph of [new Uint8Array(32), one, order8]) {
      const bad = sealed.slice()
      bad.set(eph, 1)
      expect(expectThrows(() => open(alice, bad), DecryptionError).message).to.match(/ephemeral/)
    }
  })

  it('throws only DecryptionError for random garbage', () => {
    for (let i = 0; i < 200; i++) {
      const garbage = randomBytes(i % 120)
      if (garbage.length > 0) garbage[0] = 0x01
      expectThrows(() => open(alice, garbage), DecryptionError)
    }
    expectThrows(() => open(alice, 'nope' as unknown as Uint8Array), DecryptionError)
  })

  it('rejects non-Ed25519 and malformed keys with InvalidKeyError', async () => {
    const secp = await generateKeyPair('secp256k1')
    expectThrows(() => seal(secp.publicKey, utf8('x')), InvalidKeyError)
    expectThrows(() => open(secp, seal(alice.publicKey, utf8('x'))), InvalidKeyError)
    expectThrows(() => seal(new Uint8Array(31), utf8('x')), InvalidKeyError)
    // y = 1: the identity point, small order.
    const identity = new Uint8Array(32)
    identity[0] = 1
    expectThrows(() => seal(identity, utf8('x')), InvalidKeyError)
    // y = 2 is not on the curve.
    const offCurve = new Uint8Array(32)
    offCurve[0] = 2
    expectThrows(() => seal(offCurve, utf8('x')), InvalidKeyError)
  })

  it('a prepared seal makes a box open() reads under the same context, once, and can be discarded', () => {
    const context = utf8('task-1')
    const prepared = prepareSeal(alice.publicKey, { context })
    const box = prepared.seal(utf8('prepared'))
    expect(new TextDecoder().decode(open(alice, box, { context }))).to.equal('prepared')
    expectThrows(() => open(alice, box, { context: utf8('task-2') }), DecryptionError)
    expectThrows(() => prepared.seal(utf8('again')), GcnError)
    const dropped = prepareSeal(alice.publicKey, { context })
    dropped.discard()
    expectThrows(() => dropped.seal(utf8('x')), GcnError)
    // Two prepared seals of the same plaintext are unlinkable (fresh ephemeral key and nonce each).
    const [a, b] = [prepareSeal(bob.publicKey).seal(utf8('same')), prepareSeal(bob.publicKey).seal(utf8('same'))]
    expect(Buffer.from(a.subarray(1, 33)).equals(Buffer.from(b.subarray(1, 33)))).to.equal(false)
    expectThrows(() => prepareSeal(new Uint8Array(32).fill(0xff), { context }), InvalidKeyError)
  })

  it('a prepared open, made from the header alone, opens that box once and nothing else', () => {
    const context = utf8('task-1')
    const prepared = prepareSeal(alice.publicKey, { context })
    expect(prepared.header.length).to.equal(SEAL_HEADER_LENGTH)
    const opener = prepareOpen(alice, prepared.header, { context })
    const box = prepared.seal(utf8('ahead'))
    expect(Buffer.from(box.subarray(0, SEAL_HEADER_LENGTH)).equals(Buffer.from(opener.header))).to.equal(true)
    expect(new TextDecoder().decode(opener.open(box))).to.equal('ahead')
    // Once only: the key is wiped after use.
    expectThrows(() => opener.open(box), DecryptionError)

    // Another box (other header), another context, an altered box or another recipient: DecryptionError.
    const other = seal(alice.publicKey, utf8('other'), { context })
    expectThrows(() => prepareOpen(alice, prepared.header, { context }).open(other), DecryptionError)
    expectThrows(() => prepareOpen(alice, prepared.header, { context: utf8('task-2') }).open(box), DecryptionError)
    const altered = box.slice()
    altered[altered.length - 1]! ^= 1
    expectThrows(() => prepareOpen(alice, prepared.header, { context }).open(altered), DecryptionError)
    expectThrows(() => prepareOpen(bob, prepared.header, { context }).open(box), DecryptionError)
    expectThrows(() => prepareOpen(alice, prepared.header, { context }).open(box.subarray(0, SEAL_OVERHEAD - 1)), DecryptionError)

    // A discarded one opens nothing; malformed headers fail up front.
    const dropped = prepareOpen(alice, prepared.header, { context })
    dropped.discard()
    expectThrows(() => dropped.open(box), DecryptionError)
    expectThrows(() => prepareOpen(alice, prepared.header.subarray(1), { context }), DecryptionError)
    const wrongVersion = prepared.header.slice()
    wrongVersion[0] = 2
    expectThrows(() => prepareOpen(alice, wrongVersion, { context }), DecryptionError)
    const lowOrder = prepared.header.slice()
    lowOrder.fill(0, 1, 33)
    expectThrows(() => prepareOpen(alice, lowOrder, { context }), DecryptionError)
  })
})

describe('crypto: signatures', () => {
  let alice: Ed25519PrivateKey
  let bob: Ed25519PrivateKey
  const domain = 'gcn/test/1'
  const payload = utf8('pay me')

  before(async () => {
    alice = await generateKeyPair('Ed25519')
    bob = await generateKeyPair('Ed25519')
  })

  it('round-trips', async () => {
    const sig = await signPayload(alice, domain, payload)
    expect(sig.length).to.equal(64)
    expect(await verifyPayload(alice.publicKey, domain, payload, sig)).to.equal(true)
    await assertValidSignature(alice.publicKey, domain, payload, sig)
  })

  it('signs gcn-sig/1 || uvarint(len) || domain || payload', async () => {
    const longDomain = 'd'.repeat(200)
    const sig = await signPayload(alice, longDomain, payload)
    const expected = Uint8Array.of(...utf8('gcn-sig/1'), 0xc8, 0x01, ...utf8(longDomain), ...payload)
    expect(await alice.publicKey.verify(expected, sig)).to.equal(true)
    expect(await alice.publicKey.verify(payload, sig)).to.equal(false)
  })

  it('fails for every single flipped payload bit', async () => {
    const sig = await signPayload(alice, domain, payload)
    for (let bit = 0; bit < payload.length * 8; bit++) {
      const altered = flipBit(payload, bit)
      expect(await verifyPayload(alice.publicKey, domain, altered, sig)).to.equal(false)
      await expectRejects(assertValidSignature(alice.publicKey, domain, altered, sig), InvalidSignatureError)
    }
  })

  it('fails for every single flipped signature bit', async () => {
    const sig = await signPayload(alice, domain, payload)
    for (let bit = 0; bit < sig.length * 8; bit++) {
      expect(await verifyPayload(alice.publicKey, domain, payload, flipBit(sig, bit))).to.equal(false)
    }
  })

  it('fails for another domain, including a shifted domain/payload boundary', async () => {
    const sig = await signPayload(alice, domain, payload)
    expect(await verifyPayload(alice.publicKey, 'gcn/test/2', payload, sig)).to.equal(false)
    await expectRejects(assertValidSignature(alice.publicKey, 'gcn/test/2', payload, sig), InvalidSignatureError)
    const ab = await signPayload(alice, 'ab', utf8('c'))
    expect(await verifyPayload(alice.publicKey, 'a', utf8('bc'), ab)).to.equal(false)
  })

  it('fails for another key', async () => {
    const sig = await signPayload(alice, domain, payload)
    expect(await verifyPayload(bob.publicKey, domain, payload, sig)).to.equal(false)
    await expectRejects(assertValidSignature(bob.publicKey, domain, payload, sig), InvalidSignatureError)
  })

  it('returns false for truncated, extended or garbage signatures without crashing', async () => {
    const sig = await signPayload(alice, domain, payload)
    const bad = [
      new Uint8Array(0),
      sig.subarray(0, 63),
      sig.subarray(0, 1),
      Uint8Array.of(...sig, 0),
      new Uint8Array(64),
      new Uint8Array(64).fill(0xff),
      randomBytes(64),
      randomBytes(1000),
      'sig' as unknown as Uint8Array,
      undefined as unknown as Uint8Array
    ]
    for (const s of bad) {
      expect(await verifyPayload(alice.publicKey, domain, payload, s)).to.equal(false)
      await expectRejects(assertValidSignature(alice.publicKey, domain, payload, s), InvalidSignatureError)
    }
  })

  it('rejects non-Ed25519 keys with InvalidKeyError', async () => {
    const secp = await generateKeyPair('secp256k1')
    await expectRejects(signPayload(secp, domain, payload), InvalidKeyError)
    const sig = await signPayload(alice, domain, payload)
    await expectRejects(verifyPayload(secp.publicKey, domain, payload, sig), InvalidKeyError)
    await expectRejects(assertValidSignature(secp.publicKey, domain, payload, sig), InvalidKeyError)
  })
})

describe('crypto: helpers', () => {
  it('sha256 matches a known vector', () => {
    expect(Buffer.from(sha256(utf8('abc'))).toString('hex')).to.equal('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  })

  it('randomBytes returns n bytes, beyond the 64 KiB getRandomValues limit too', () => {
    expect(randomBytes(0).length).to.equal(0)
    const big = randomBytes(100_000)
    expect(big.length).to.equal(100_000)
    expect(big.subarray(99_000).some(b => b !== 0)).to.equal(true)
  })
})
