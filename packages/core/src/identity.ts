/**
 * Persistent peer identity: one Ed25519 key per node, kept as libp2p protobuf
 * private-key bytes in a file only its owner can read.
 */
import { constants } from 'node:fs'
import { type FileHandle, link, mkdir, open, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { ed25519 } from '@noble/curves/ed25519.js'
import { equalBytes } from './bytes.js'
import { randomBytes } from './crypto.js'
import { GcnError, InsecureKeyFileError, InvalidKeyError } from './errors.js'

/** The key file does not exist and creating it was not allowed. */
export class KeyFileNotFoundError extends GcnError {
  static override readonly code = 'ERR_KEY_FILE_NOT_FOUND'
  override name = 'KeyFileNotFoundError'
}

export interface LoadIdentityOptions {
  /** Create a new key when the file is missing (default true). */
  create?: boolean
}

export interface Identity {
  privateKey: Ed25519PrivateKey
  peerId: PeerId
  /** True when this call generated the key. */
  created: boolean
}

// An Ed25519 key in protobuf form is 68 bytes; anything far larger is not a key file.
const MAX_KEY_FILE_BYTES = 4096

function hasCode(err: unknown, ...codes: string[]): boolean {
  return typeof err === 'object' && err !== null && codes.includes((err as { code?: unknown }).code as string)
}

/**
 * Loads the node's Ed25519 key from path, or creates it (mode 0600, parent
 * directory 0700) when missing and options.create is not false.
 */
export async function loadOrCreateIdentity(path: string, options: LoadIdentityOptions = {}): Promise<Identity> {
  if (typeof path !== 'string' || path.length === 0) throw new GcnError('identity key path must be a non-empty string')
  const { value: privateKey, created } = await loadOrCreateSecretFile(path, {
    what: 'identity key file',
    create: options.create !== false,
    generate: async () => privateKeyToProtobuf(await generateKeyPair('Ed25519')),
    decode: bytes => decodeKey(path, bytes)
  })
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey), created }
}

export interface SecretFileOptions<T> {
  /** How errors name the file, e.g. 'identity key file'. */
  what: string
  /** Create the file when it is missing (default true). */
  create?: boolean
  /** Bytes of a new secret. */
  generate(): Uint8Array | Promise<Uint8Array>
  /** Parses and checks the file's bytes; throws InvalidKeyError when they are not a valid secret. */
  decode(bytes: Uint8Array): T
}

/**
 * A secret kept in a file of its own (keys): read with the same checks as the
 * identity (regular file, mode 0600, bounded size), or created exclusively
 * (mode 0600, directory 0700, fsynced) when missing. Two processes creating
 * it at once end up with the same secret.
 */
export async function loadOrCreateSecretFile<T>(path: string, options: SecretFileOptions<T>): Promise<{ value: T; created: boolean }> {
  const existing = await readSecretFile(path, options.what)
  if (existing !== undefined) return { value: options.decode(existing), created: false }
  if (options.create === false) {
    throw new KeyFileNotFoundError(`${options.what} ${path} does not exist`, {
      hint: 'check the path, or allow creating a new one'
    })
  }
  const bytes = await options.generate()
  const value = options.decode(bytes)
  if (await writeKeyFileExclusive(path, bytes, options.what)) return { value, created: true }
  // Another process created the file between our read and write: use its secret.
  const raced = await readSecretFile(path, options.what)
  if (raced === undefined) throw new GcnError(`${options.what} ${path} vanished while being created`)
  return { value: options.decode(raced), created: false }
}

/** The bytes in path, or undefined when the file does not exist. */
async function readSecretFile(path: string, what: string): Promise<Uint8Array | undefined> {
  let handle: FileHandle
  try {
    // O_NONBLOCK so a FIFO at path is refused below instead of hanging the open.
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (err) {
    if (hasCode(err, 'ENOENT')) return undefined
    throw new InvalidKeyError(`cannot open ${what} ${path}`, { cause: err })
  }
  try {
    // fstat the opened file, so the checks apply to what is actually read.
    const stat = await handle.stat()
    if (!stat.isFile()) throw new InvalidKeyError(`${what} ${path} is not a regular file`)
    // POSIX permission bits mean nothing on Windows.
    if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
      throw new InsecureKeyFileError(
        `${what} ${path} is accessible by other users (mode ${(stat.mode & 0o777).toString(8).padStart(3, '0')})`,
        { hint: `chmod 600 ${path}` }
      )
    }
    if (stat.size > MAX_KEY_FILE_BYTES) throw new InvalidKeyError(`${what} ${path} is too large to be a key (${stat.size} bytes)`)
    return await handle.readFile()
  } catch (err) {
    if (err instanceof GcnError) throw err
    throw new InvalidKeyError(`cannot read ${what} ${path}`, { cause: err })
  } finally {
    await handle.close()
  }
}

function decodeKey(path: string, bytes: Uint8Array): Ed25519PrivateKey {
  let key: ReturnType<typeof privateKeyFromProtobuf>
  try {
    key = privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new InvalidKeyError(`identity key file ${path} is corrupt`, {
      cause: err,
      hint: 'restore it from a backup, or move it away to create a new identity (a new peer id)'
    })
  }
  if (key.type !== 'Ed25519') {
    throw new InvalidKeyError(`identity key file ${path} holds a ${key.type} key; gcn needs Ed25519`)
  }
  // The protobuf stores seed || public key; a mismatched half would sign as one peer and claim to be another.
  let derived: Uint8Array
  try {
    derived = ed25519.getPublicKey(key.raw.subarray(0, 32))
  } catch (err) {
    throw new InvalidKeyError(`identity key file ${path} is corrupt`, { cause: err })
  }
  if (!equalBytes(derived, key.publicKey.raw)) {
    throw new InvalidKeyError(`identity key file ${path} is corrupt: public key does not match private key`)
  }
  return key
}

/**
 * Writes bytes to path only if path does not exist yet; false when it does.
 * The key is written and fsynced under a temporary name, then hard-linked into
 * place: unlike rename, link never replaces a key another process just created.
 */
async function writeKeyFileExclusive(path: string, bytes: Uint8Array, what: string): Promise<boolean> {
  const dir = dirname(path)
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
  } catch (err) {
    throw new InvalidKeyError(`cannot create directory ${dir} for the ${what}`, { cause: err })
  }
  const tmp = join(dir, `.${basename(path)}.${Buffer.from(randomBytes(6)).toString('hex')}.tmp`)
  try {
    const handle = await open(tmp, 'wx', 0o600)
    try {
      await handle.writeFile(bytes)
      await handle.sync()
    } finally {
      await handle.close()
    }
    let placed: boolean
    try {
      await link(tmp, path)
      placed = true
    } catch (err) {
      if (hasCode(err, 'EEXIST')) {
        placed = false
      } else if (hasCode(err, 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK')) {
        // Filesystems without hard links: rename is still atomic, only not exclusive.
        await rename(tmp, path)
        placed = true
      } else {
        throw err
      }
    }
    await syncDir(dir)
    return placed
  } catch (err) {
    throw new InvalidKeyError(`cannot write ${what} ${path}`, { cause: err })
  } finally {
    await unlink(tmp).catch(() => {})
  }
}

// Makes the new directory entry durable; some platforms cannot fsync a directory.
async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined
  try {
    handle = await open(dir, 'r')
    await handle.sync()
  } catch {
    // best effort
  } finally {
    await handle?.close()
  }
}
