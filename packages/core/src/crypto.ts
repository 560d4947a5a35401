/**
 * Envelope encryption and domain-separated signatures with libp2p peer keys.
 *
 * Why seal to the Ed25519 peer key: a peer's libp2p identity is already an
 * Ed25519 key that every other peer learns from its PeerId, so converting it to
 * X25519 lets anyone encrypt to a peer without a second key to publish, rotate
 * or authenticate. The public key is moved to Curve25519 with the standard
 * birational map u = (1 + y) / (1 - y) and the secret scalar is the clamped
 * first half of SHA-512(seed) — the same conversion as libsodium's
 * crypto_sign_ed25519_pk_to_curve25519 / crypto_sign_ed25519_sk_to_curve25519.
 * Using one key for both Ed25519 signatures and X25519 ECDH this way is safe:
 * the signature scheme and the Diffie-Hellman function never produce values
 * the other would accept (see Thormarker, "On using the same key pair for
 * Ed25519 and an X25519 based KEM", 2021), and every derived key below is bound
 * to a gcn-specific label.
 *
 * Sealed format (SEAL_OVERHEAD = 61 bytes on top of the plaintext):
 *   0x01 || ephemeral X25519 public key (32) || nonce (12) || ChaCha20-Poly1305 ciphertext || tag (16)
 * key = HKDF-SHA256(ikm = X25519(eph, recipientX), salt = ephPub || recipientX, info = 'gcn/seal/1' || context)
 * AEAD additional data = header (version || ephPub || nonce) || context.
 * The header is authenticated as bytes, not only through the derived key: X25519
 * ignores the top bit of u and accepts non-canonical encodings, so two different
 * ephemeral-key encodings can give the same shared secret.
 *
 * A sealed box is anonymous: it proves nothing about the sender. Sign the
 * plaintext (or the sealed bytes) with signPayload when the sender matters.
 */
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { ed25519 } from '@noble/curves/ed25519.js'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js'
import { aead } from './aead.js'
import { equalBytes, uvarint } from './bytes.js'
import { DecryptionError, GcnError, InvalidKeyError, InvalidSignatureError } from './errors.js'
import { x25519 } from './x25519.js'

const SEAL_VERSION = 0x01
const X25519_KEY_LENGTH = 32
const ED25519_PUBLIC_KEY_LENGTH = 32
const ED25519_SIGNATURE_LENGTH = 64
const NONCE_LENGTH = 12
const TAG_LENGTH = 16
const HEADER_LENGTH = 1 + X25519_KEY_LENGTH + NONCE_LENGTH

/** Bytes of a sealed box's header (version, ephemeral key, nonce): PreparedSeal.header. */
export const SEAL_HEADER_LENGTH = HEADER_LENGTH
/** Bytes seal() adds to the plaintext: version, ephemeral key, nonce and tag. */
export const SEAL_OVERHEAD = HEADER_LENGTH + TAG_LENGTH

const encoder = new TextEncoder()
const SEAL_INFO = encoder.encode('gcn/seal/1')
const SIG_PREFIX = encoder.encode('gcn-sig/1')
const EMPTY = new Uint8Array(0)

export interface SealOptions {
  /**
   * Bytes the box is bound to without being sent (e.g. a request id or the
   * message kind); open() must be given the same bytes.
   */
  context?: Uint8Array
}

export function sha256(bytes: Uint8Array): Uint8Array {
  return nobleSha256(bytes)
}

export function randomBytes(length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new GcnError(`randomBytes length must be a non-negative integer, got ${length}`)
  }
  const out = new Uint8Array(length)
  // getRandomValues fills at most 65536 bytes per call.
  for (let offset = 0; offset < length; offset += 65536) {
    crypto.getRandomValues(out.subarray(offset, Math.min(length, offset + 65536)))
  }
  return out
}

function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0
  for (const part of parts) length += part.length
  const out = new Uint8Array(length)
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array
}

function contextOf(options: SealOptions | undefined, onError: (message: string) => Error): Uint8Array {
  const context = options?.context
  if (context === undefined) return EMPTY
  if (!isBytes(context)) throw onError('context must be a Uint8Array')
  return context
}

function ed25519PublicBytes(pub: PublicKey | Uint8Array): Uint8Array {
  if (isBytes(pub)) {
    if (pub.length !== ED25519_PUBLIC_KEY_LENGTH) {
      throw new InvalidKeyError(`Ed25519 public key must be ${ED25519_PUBLIC_KEY_LENGTH} bytes, got ${pub.length}`)
    }
    return pub
  }
  if (pub == null || typeof pub !== 'object') throw new InvalidKeyError('expected an Ed25519 public key')
  if (pub.type !== 'Ed25519') {
    throw new InvalidKeyError(`unsupported key type ${String(pub.type)}: only Ed25519 keys are accepted`, {
      hint: 'gcn peers use Ed25519 identities'
    })
  }
  return pub.raw
}

/**
 * The X25519 public key for an Ed25519 public key (birational map). Throws
 * InvalidKeyError for bytes that are not a point or that map to a low-order
 * point, since nobody could open a box sealed to those.
 */
export function x25519PublicKeyFromEd25519(pub: PublicKey | Uint8Array): Uint8Array {
  const raw = ed25519PublicBytes(pub)
  // Decompressing the point costs about as much as a key agreement; a distributor seals to the same few suppliers.
  const cacheKey = bytesToHexKey(raw)
  const cached = montgomeryCache.get(cacheKey)
  if (cached !== undefined) return cached.slice()
  let small: boolean
  let u: Uint8Array
  try {
    small = ed25519.Point.fromBytes(raw).isSmallOrder()
    u = ed25519.utils.toMontgomery(raw)
  } catch (err) {
    throw new InvalidKeyError('Ed25519 public key is not a valid curve point', { cause: err })
  }
  if (small) throw new InvalidKeyError('Ed25519 public key is a low-order point')
  if (montgomeryCache.size >= MONTGOMERY_CACHE_SIZE) montgomeryCache.delete(montgomeryCache.keys().next().value!)
  montgomeryCache.set(cacheKey, u.slice())
  return u
}

const MONTGOMERY_CACHE_SIZE = 1024
const montgomeryCache = new Map<string, Uint8Array>()
const bytesToHexKey = (bytes: Uint8Array): string => Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('')

/**
 * Ephemeral key pairs generated ahead of time, off the request's critical path
 * (each costs one scalar multiplication, ~1 ms in JS). Each pair is used once.
 */
const EPHEMERAL_POOL_SIZE = 4
const ephemeralPool: Array<{ secretKey: Uint8Array; publicKey: Uint8Array }> = []
let refillScheduled = false

function takeEphemeral(): { secretKey: Uint8Array; publicKey: Uint8Array } {
  const pair = ephemeralPool.pop() ?? x25519.keygen()
  if (!refillScheduled && typeof setImmediate === 'function') {
    refillScheduled = true
    setImmediate(() => {
      refillScheduled = false
      while (ephemeralPool.length < EPHEMERAL_POOL_SIZE) ephemeralPool.push(x25519.keygen())
    }).unref?.()
  }
  return pair
}

function agree(recipientX: Uint8Array): { publicKey: Uint8Array; shared: Uint8Array } {
  const eph = takeEphemeral()
  try {
    return { publicKey: eph.publicKey, shared: x25519.getSharedSecret(eph.secretKey, recipientX, { reusedPublicKey: true }) }
  } finally {
    eph.secretKey.fill(0)
  }
}

/** X25519 secret and public key of our own Ed25519 identity, derived once per key object. */
const ownKeys = new WeakMap<PrivateKey, { secret: Uint8Array; publicKey: Uint8Array }>()

function x25519KeysOf(recipient: PrivateKey): { secret: Uint8Array; publicKey: Uint8Array } {
  let keys = ownKeys.get(recipient)
  if (keys === undefined) {
    const raw = recipient.raw
    if (!isBytes(raw) || raw.length < 32) throw new Error(`private key has ${raw?.length} bytes`)
    const secret = ed25519.utils.toMontgomerySecret(raw.subarray(0, 32))
    keys = { secret, publicKey: x25519.getPublicKey(secret) }
    ownKeys.set(recipient, keys)
  }
  return keys
}

function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0
  for (const b of bytes) acc |= b
  return acc === 0
}

function deriveKey(shared: Uint8Array, ephPub: Uint8Array, recipientX: Uint8Array, context: Uint8Array): Uint8Array {
  return hkdf(nobleSha256, shared, concat(ephPub, recipientX), concat(SEAL_INFO, context), 32)
}

/**
 * Encrypts plaintext so only the holder of the recipient's Ed25519 private key
 * can read it. A fresh ephemeral key per call makes two seals of the same
 * plaintext unlinkable.
 */
export function seal(recipient: PublicKey | Uint8Array, plaintext: Uint8Array, options?: SealOptions): Uint8Array {
  if (!isBytes(plaintext)) throw new GcnError('plaintext must be a Uint8Array')
  return prepareSeal(recipient, options).seal(plaintext)
}

/** A seal() whose key agreement, nonce and key are made ahead; see prepareSeal. */
export interface PreparedSeal {
  /** The first bytes of the box (version, ephemeral key, nonce): public, what prepareOpen() needs. */
  readonly header: Uint8Array
  /** Encrypts `plaintext` into a box for open(); once only. */
  seal(plaintext: Uint8Array): Uint8Array
  /** Wipes the key without using it. */
  discard(): void
}

/**
 * Does all of a seal() to `recipient` under `options.context` that does not
 * need the plaintext (key agreement, nonce, key derivation), so that sealing
 * later only encrypts: a distributor prepares its next task's request box
 * while it is idle. The box is the one seal() makes; the key is used once and
 * then wiped (a second seal() throws).
 */
export function prepareSeal(recipient: PublicKey | Uint8Array, options?: SealOptions): PreparedSeal {
  const context = contextOf(options, message => new GcnError(message))
  const recipientX = x25519PublicKeyFromEd25519(recipient)

  let eph: { publicKey: Uint8Array; shared: Uint8Array }
  try {
    eph = agree(recipientX)
  } catch (err) {
    throw new InvalidKeyError('recipient key cannot be used for key agreement', { cause: err })
  }
  const nonce = randomBytes(NONCE_LENGTH)
  const header = concat(Uint8Array.of(SEAL_VERSION), eph.publicKey, nonce)
  const key = deriveKey(eph.shared, eph.publicKey, recipientX, context)
  eph.shared.fill(0)
  let used = false
  return {
    header: header.slice(),
    seal(plaintext) {
      if (!isBytes(plaintext)) throw new GcnError('plaintext must be a Uint8Array')
      if (used) throw new GcnError('a prepared seal is used once')
      used = true
      try {
        return concat(header, aead.encrypt(key, nonce, concat(header, context), plaintext))
      } finally {
        key.fill(0)
      }
    },
    discard() {
      used = true
      key.fill(0)
    }
  }
}

const OPEN_HINT = 'the box was sealed to another peer, under another context, or altered in transit'

/**
 * Decrypts a box from seal() with the recipient's libp2p Ed25519 private key.
 * Throws DecryptionError for any malformed, altered or misaddressed box and
 * InvalidKeyError for a key that is not Ed25519; nothing else.
 */
export function open(recipient: PrivateKey, sealed: Uint8Array, options?: SealOptions): Uint8Array {
  checkOpener(recipient)
  contextOf(options, message => new DecryptionError(message))
  if (!isBytes(sealed)) throw new DecryptionError('sealed box must be a Uint8Array')
  if (sealed.length < SEAL_OVERHEAD) {
    throw new DecryptionError(`sealed box too short: ${sealed.length} < ${SEAL_OVERHEAD} bytes`, { hint: OPEN_HINT })
  }
  return prepareOpen(recipient, sealed.subarray(0, HEADER_LENGTH), options).open(sealed)
}

function checkOpener(recipient: PrivateKey): void {
  if (recipient == null || typeof recipient !== 'object' || recipient.type !== 'Ed25519') {
    throw new InvalidKeyError(`unsupported key type ${String(recipient?.type)}: only Ed25519 keys can open sealed boxes`)
  }
}

/** An open() whose key agreement and key derivation are done; see prepareOpen. */
export interface PreparedOpen {
  /** The header every box this opens starts with (version, ephemeral key, nonce). */
  readonly header: Uint8Array
  /** Opens a box that starts with `header`; once only. Throws DecryptionError as open() does. */
  open(sealed: Uint8Array): Uint8Array
  /** Wipes the key without using it. */
  discard(): void
}

/**
 * Does all of an open() that needs only the box's header (PreparedSeal.header)
 * and context: the key agreement and key derivation, so that opening the box
 * later only decrypts. A supplier told a task's header ahead of its request
 * (TaskOpen.request_box_header) prepares while it waits: ~0.3 ms of a process
 * that was idle, measured on the 2-core dev VM. The key is used once and then
 * wiped. Throws as open() does for a malformed header or a key that is not Ed25519.
 */
export function prepareOpen(recipient: PrivateKey, header: Uint8Array, options?: SealOptions): PreparedOpen {
  checkOpener(recipient)
  const context = contextOf(options, message => new DecryptionError(message))
  if (!isBytes(header)) throw new DecryptionError('sealed box header must be a Uint8Array')
  if (header.length !== HEADER_LENGTH) {
    throw new DecryptionError(`sealed box header must be ${HEADER_LENGTH} bytes, got ${header.length}`, { hint: OPEN_HINT })
  }
  if (header[0] !== SEAL_VERSION) {
    throw new DecryptionError(`unknown sealed box version ${header[0]}`, { hint: 'the sender runs an incompatible gcn version' })
  }
  const ephPub = header.subarray(1, 1 + X25519_KEY_LENGTH)
  const nonce = header.slice(1 + X25519_KEY_LENGTH, HEADER_LENGTH)

  let secret: Uint8Array
  let recipientX: Uint8Array
  try {
    ;({ secret, publicKey: recipientX } = x25519KeysOf(recipient))
  } catch (err) {
    throw new InvalidKeyError('malformed Ed25519 private key', { cause: err })
  }

  let shared: Uint8Array
  try {
    shared = x25519.getSharedSecret(secret, ephPub)
  } catch (err) {
    // noble rejects low-order points before running the ladder.
    throw new DecryptionError('sealed box has an invalid ephemeral key', { hint: OPEN_HINT, cause: err })
  }
  if (isAllZero(shared)) throw new DecryptionError('sealed box has a low-order ephemeral key', { hint: OPEN_HINT })

  const key = deriveKey(shared, ephPub, recipientX, context)
  shared.fill(0)
  const aad = concat(header, context)
  let used = false
  return {
    header: header.slice(),
    open(sealed) {
      if (used) throw new DecryptionError('a prepared open is used once')
      used = true
      try {
        if (!isBytes(sealed)) throw new DecryptionError('sealed box must be a Uint8Array')
        if (sealed.length < SEAL_OVERHEAD) {
          throw new DecryptionError(`sealed box too short: ${sealed.length} < ${SEAL_OVERHEAD} bytes`, { hint: OPEN_HINT })
        }
        if (!equalBytes(sealed.subarray(0, HEADER_LENGTH), aad.subarray(0, HEADER_LENGTH))) {
          throw new DecryptionError('sealed box has another header than the one prepared', { hint: OPEN_HINT })
        }
        try {
          return aead.decrypt(key, nonce, aad, sealed.subarray(HEADER_LENGTH))
        } catch (err) {
          throw new DecryptionError('sealed box failed authentication', { hint: OPEN_HINT, cause: err })
        }
      } finally {
        key.fill(0)
      }
    },
    discard() {
      used = true
      key.fill(0)
    }
  }
}

function domainBytes(domain: string): Uint8Array {
  // Lone surrogates encode to U+FFFD, so two different strings could share bytes.
  if (typeof domain !== 'string' || domain.length === 0 || !domain.isWellFormed()) {
    throw new GcnError('signature domain must be a non-empty, well-formed string')
  }
  return encoder.encode(domain)
}

/**
 * The bytes actually signed. The domain is length-prefixed so no (domain,
 * payload) pair can collide with another. The payload is the exact bytes sent
 * on the wire, so a verifier checks what it received and never re-encodes.
 */
function signedBytes(domain: string, payload: Uint8Array): Uint8Array {
  if (!isBytes(payload)) throw new GcnError('signed payload must be a Uint8Array')
  const d = domainBytes(domain)
  return concat(SIG_PREFIX, uvarint(d.length), d, payload)
}

function requireEd25519<K extends PrivateKey | PublicKey>(key: K, what: string): void {
  if (key == null || typeof key !== 'object' || key.type !== 'Ed25519') {
    throw new InvalidKeyError(`unsupported ${what} key type ${String(key?.type)}: only Ed25519 keys are accepted`, {
      hint: 'gcn peers use Ed25519 identities'
    })
  }
}

/** Signs payload under domain (e.g. 'gcn/offer/1'); the signature is valid for that domain only. */
export async function signPayload(key: PrivateKey, domain: string, payload: Uint8Array): Promise<Uint8Array> {
  requireEd25519(key, 'signing')
  return await key.sign(signedBytes(domain, payload))
}

/**
 * True when signature is key's signature of payload under domain. A malformed
 * signature or public key yields false; a non-Ed25519 key throws InvalidKeyError.
 */
export async function verifyPayload(key: PublicKey, domain: string, payload: Uint8Array, signature: Uint8Array): Promise<boolean> {
  requireEd25519(key, 'verification')
  const data = signedBytes(domain, payload)
  if (!isBytes(signature) || signature.length !== ED25519_SIGNATURE_LENGTH) return false
  try {
    return (await key.verify(data, signature)) === true
  } catch {
    return false
  }
}

/** Like verifyPayload, but throws InvalidSignatureError instead of returning false. */
export async function assertValidSignature(key: PublicKey, domain: string, payload: Uint8Array, signature: Uint8Array): Promise<void> {
  if (!(await verifyPayload(key, domain, payload, signature))) {
    throw new InvalidSignatureError(`invalid signature for ${domain}`, {
      hint: 'the payload was altered, signed for another message kind, or signed by another peer'
    })
  }
}
