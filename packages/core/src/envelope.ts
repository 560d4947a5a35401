import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PeerId, PrivateKey, PublicKey } from '@libp2p/interface'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { assertValidSignature, signPayload } from './crypto.js'
import { InvalidKeyError, InvalidMessageError } from './errors.js'
import type { SignedEnvelope } from './pb/gcn.js'

/** protons types want ArrayBuffer-backed arrays; gcn never uses SharedArrayBuffer. */
export const plainBytes = (bytes: Uint8Array): Uint8Array<ArrayBuffer> => bytes as Uint8Array<ArrayBuffer>

/**
 * Signed envelopes: the payload travels as the exact bytes that were signed
 * (domain = payload type), so verifying never re-encodes anything.
 */
export async function signEnvelope(privateKey: PrivateKey, payloadType: string, payload: Uint8Array): Promise<SignedEnvelope> {
  return {
    payloadType,
    payload: plainBytes(payload),
    publicKey: plainBytes(publicKeyToProtobuf(privateKey.publicKey)),
    signature: plainBytes(await signPayload(privateKey, payloadType, payload))
  }
}

export interface OpenedEnvelope {
  publicKey: PublicKey
  signer: PeerId
  payload: Uint8Array
}

/** Checks the payload type and the signature; throws InvalidMessageError, InvalidKeyError or InvalidSignatureError. */
export async function openEnvelope(envelope: SignedEnvelope, payloadType: string): Promise<OpenedEnvelope> {
  if (envelope.payloadType !== payloadType) {
    throw new InvalidMessageError(`envelope carries ${JSON.stringify(envelope.payloadType)}, expected ${JSON.stringify(payloadType)}`)
  }
  let publicKey: PublicKey
  try {
    publicKey = publicKeyFromProtobuf(envelope.publicKey)
  } catch (err) {
    throw new InvalidKeyError('envelope public key is malformed', { cause: err })
  }
  await assertValidSignature(publicKey, payloadType, envelope.payload, envelope.signature)
  return { publicKey, signer: peerIdFromPublicKey(publicKey), payload: envelope.payload }
}

const RAW_CODEC = 0x55
const SHA2_256 = 0x12

/** The DHT key under which suppliers `provide` a model: a CIDv1 (raw) of the GGUF file's sha256. */
export function modelCid(modelId: string): CID {
  if (!/^[0-9a-f]{64}$/.test(modelId))
    throw new InvalidMessageError(`model id must be 64 lowercase hex characters, got ${JSON.stringify(modelId)}`)
  const bytes = Uint8Array.from(modelId.match(/../g)!.map(h => Number.parseInt(h, 16)))
  return CID.createV1(RAW_CODEC, Digest.create(SHA2_256, bytes))
}
