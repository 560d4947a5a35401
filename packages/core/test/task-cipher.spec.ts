import { expect } from 'chai'
import { randomBytes } from '../src/crypto.js'
import { DecryptionError, InvalidKeyError } from '../src/errors.js'
import { ChunkCipher } from '../src/task-cipher.js'

describe('ChunkCipher', () => {
  const key = randomBytes(32)
  const taskId = randomBytes(16)
  const cipher = new ChunkCipher(key, taskId)
  const text = new TextEncoder().encode('hello chunk')

  it('round-trips a chunk at its sequence number', () => {
    expect(cipher.open(7, cipher.seal(7, text))).to.deep.equal(text)
  })

  it('fails on a wrong sequence number, task id, key or any flipped bit', () => {
    const sealed = cipher.seal(1, text)
    expect(() => cipher.open(2, sealed)).to.throw(DecryptionError)
    expect(() => new ChunkCipher(key, randomBytes(16)).open(1, sealed)).to.throw(DecryptionError)
    expect(() => new ChunkCipher(randomBytes(32), taskId).open(1, sealed)).to.throw(DecryptionError)
    for (let bit = 0; bit < sealed.byteLength * 8; bit++) {
      const bad = sealed.slice()
      bad[bit >> 3]! ^= 1 << (bit & 7)
      expect(() => cipher.open(1, bad)).to.throw(DecryptionError)
    }
    expect(() => cipher.open(1, sealed.subarray(0, 10))).to.throw(DecryptionError)
  })

  it('rejects keys of the wrong size', () => {
    expect(() => new ChunkCipher(randomBytes(16), taskId)).to.throw(InvalidKeyError)
  })
})
