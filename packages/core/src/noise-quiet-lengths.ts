import type { Uint8ArrayList } from 'uint8arraylist'
import { type EncrypterFactory, onSecured } from './encrypter-hooks.js'

type LengthDecoder = (data: Uint8Array | Uint8ArrayList) => number

/** The fields of @libp2p/utils' LengthPrefixedDecoder that are used here. */
interface FrameDecoder {
  lengthDecoder?: unknown
  encodingLength?: unknown
}

const QUIET = Symbol.for('gcn.quietNoiseLength')

/**
 * @chainsafe/libp2p-noise 17 cuts its messages out of the stream with
 * @libp2p/utils' LengthPrefixedDecoder, whose loop learns that a batch of
 * received bytes is used up when the 2-byte length decoder throws a
 * RangeError. That is one Error, with its stack trace, at the end of every
 * batch a connection receives: every streamed chunk of an answer. In a CPU
 * profile of a distributor streaming answers it took 3–5 % of the process's
 * time, on the path of every chunk.
 *
 * Here each secured connection's decoder gets a length decoder that reports
 * a length of 0 while fewer than 2 bytes are buffered: the loop then needs 2
 * bytes for the (empty) message, has fewer, and waits for more, exactly where
 * the RangeError would have stopped it. With 2 bytes or more it is Noise's own
 * decoder. A connection without the expected decoder is left as it is.
 */
export function quietNoiseLengths(inner: EncrypterFactory): EncrypterFactory {
  return onSecured(inner, secured => quietenDecoder((secured.connection as { decoder?: FrameDecoder }).decoder))
}

/** Exported for tests: installs the quiet length decoder on one LengthPrefixedDecoder with a 2-byte length. */
export function quietenDecoder(decoder: FrameDecoder | undefined): boolean {
  const original = decoder?.lengthDecoder as (LengthDecoder & { [QUIET]?: true }) | undefined
  if (typeof original !== 'function' || typeof decoder?.encodingLength !== 'function') return false
  if (original[QUIET] === true) return true
  const quiet: LengthDecoder & { [QUIET]?: true } = data => (data.byteLength < 2 ? 0 : original(data))
  quiet[QUIET] = true
  decoder.lengthDecoder = quiet
  return true
}
