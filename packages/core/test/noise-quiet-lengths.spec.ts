import { noise } from '@chainsafe/libp2p-noise'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { LengthPrefixedDecoder, multiaddrConnectionPair } from '@libp2p/utils'
import { expect } from 'chai'
import { Uint8ArrayList } from 'uint8arraylist'
import { quietenDecoder, quietNoiseLengths } from '../src/noise-quiet-lengths.js'

/** Noise's 2-byte big-endian length, counting the RangeErrors it throws on short input. */
function countingUint16(): { decode: (data: Uint8Array | Uint8ArrayList) => number; throws: () => number } {
  let throws = 0
  return {
    decode: data => {
      if (data.byteLength < 2) {
        throws++
        throw new RangeError('Could not decode int16BE')
      }
      return data instanceof Uint8Array ? (data[0]! << 8) | data[1]! : data.getUint16(0)
    },
    throws: () => throws
  }
}

function frame(body: number[]): number[] {
  return [body.length >> 8, body.length & 0xff, ...body]
}

/** Feeds `bytes` to a 2-byte-length decoder in pieces of `step` bytes; returns the frames it cut and how often its length decoder threw. */
function feed(bytes: number[], step: number, quiet: boolean): { frames: number[][]; throws: number } {
  const length = countingUint16()
  const decoder = new LengthPrefixedDecoder({ lengthDecoder: length.decode, encodingLength: () => 2 })
  if (quiet) expect(quietenDecoder(decoder as never)).to.equal(true)
  const frames: number[][] = []
  for (let i = 0; i < bytes.length; i += step) {
    for (const buf of decoder.decode(Uint8Array.from(bytes.slice(i, i + step)))) frames.push([...buf.subarray()])
  }
  return { frames, throws: length.throws() }
}

describe('quietNoiseLengths', () => {
  const stream = [...frame([1, 2, 3]), ...frame([]), ...frame(Array.from({ length: 300 }, (_, i) => i & 0xff)), ...frame([9])]
  const expected = [[1, 2, 3], Array.from({ length: 300 }, (_, i) => i & 0xff), [9]]

  it('cuts the same frames as the throwing decoder, at every split, without a RangeError', () => {
    for (const step of [1, 2, 3, 5, 301, stream.length]) {
      const loud = feed(stream, step, false)
      const quiet = feed(stream, step, true)
      expect(quiet.frames, `step ${step}`).to.deep.equal(expected)
      expect(loud.frames, `step ${step}`).to.deep.equal(expected)
      expect(quiet.throws, `step ${step}`).to.equal(0)
      // The library's own decoder throws at the end of every batch that leaves under 2 bytes.
      expect(loud.throws, `step ${step}`).to.be.greaterThan(0)
    }
  })

  it('leaves a decoder of another shape as it is, and quietens one only once', () => {
    expect(quietenDecoder(undefined)).to.equal(false)
    expect(quietenDecoder({ lengthDecoder: 'no' })).to.equal(false)
    const length = countingUint16()
    const decoder = { lengthDecoder: length.decode, encodingLength: () => 2 }
    expect(quietenDecoder(decoder)).to.equal(true)
    const installed = decoder.lengthDecoder
    expect(quietenDecoder(decoder)).to.equal(true)
    expect(decoder.lengthDecoder).to.equal(installed)
    expect(installed(new Uint8ArrayList(Uint8Array.of(7)))).to.equal(0)
    expect(installed(Uint8Array.of(1, 2))).to.equal(258)
    expect(length.throws()).to.equal(0)
  })

  it('secures a real Noise connection whose decoder no longer throws, and carries messages both ways', async () => {
    const [keyA, keyB] = [await generateKeyPair('Ed25519'), await generateKeyPair('Ed25519')]
    const [outbound, inbound] = multiaddrConnectionPair()
    const encrypter = (privateKey: typeof keyA) =>
      quietNoiseLengths(noise())({
        privateKey,
        peerId: peerIdFromPrivateKey(privateKey),
        logger: { forComponent: () => outbound.log }
      } as never)
    const [a, b] = await Promise.all([
      encrypter(keyA).secureOutbound(outbound, { remotePeer: peerIdFromPrivateKey(keyB), skipStreamMuxerNegotiation: true }),
      encrypter(keyB).secureInbound(inbound, { skipStreamMuxerNegotiation: true })
    ])
    for (const side of [a, b]) {
      const decoder = (side.connection as unknown as { decoder: { lengthDecoder: (d: Uint8ArrayList) => number } }).decoder
      expect(decoder.lengthDecoder(new Uint8ArrayList(Uint8Array.of(1)))).to.equal(0)
    }
    const received = (side: typeof a, count: number) =>
      new Promise<number[]>(resolve => {
        const seen: number[] = []
        side.connection.addEventListener('message', event => {
          seen.push(...event.data.subarray())
          if (seen.length >= count) resolve(seen)
        })
      })
    const atB = received(b, 3 + 70_000)
    a.connection.send(Uint8Array.of(1, 2, 3))
    a.connection.send(new Uint8Array(70_000).fill(5))
    const bytes = await atB
    expect(bytes.slice(0, 3)).to.deep.equal([1, 2, 3])
    expect(bytes.slice(3).every(x => x === 5)).to.equal(true)
    const atA = received(a, 2)
    b.connection.send(Uint8Array.of(8, 9))
    expect(await atA).to.deep.equal([8, 9])
    a.connection.abort(new Error('done'))
    b.connection.abort(new Error('done'))
  })
})
