/**
 * Encrypted model files ("obfuscated models"): a GGUF is distributed as
 * AES-256-GCM chunks under a 32-byte model key, pinned by the sha256 of the
 * plaintext (the model id, unchanged). The supplier receives the key from a
 * distributor over the Noise channel and decrypts into a RAM-backed file that
 * is unlinked as soon as it is opened; node-llama-cpp loads it through
 * /proc/self/fd/N, so no decrypted copy ever has a name on any filesystem.
 *
 * File layout (all integers big-endian):
 *   magic "GCNMENC1" (8) | chunk size u32 | plaintext size u64 | plaintext sha256 (32) | nonce prefix (8)
 *   then ceil(size / chunk) chunks: ciphertext ‖ 16-byte tag
 * Chunk i uses nonce = prefix ‖ u32(i) and AAD = header ‖ u64(i) ‖ u8(last), so chunks cannot be
 * reordered, dropped, truncated or moved between files without the tag failing.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { closeSync, constants, fstatSync, openSync, unlinkSync, writeSync } from 'node:fs'
import { type FileHandle, open as openFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AbortedError, GcnError, throwIfAborted } from '@gcn/core'
import { ModelFileError } from './errors.js'

export const MODEL_KEY_BYTES = 32
const MAGIC = Buffer.from('GCNMENC1')
const HEADER_BYTES = 8 + 4 + 8 + 32 + 8
const TAG_BYTES = 16
export const DEFAULT_MODEL_CHUNK_BYTES = 4 * 1024 * 1024

/** The encrypted model could not be decrypted: wrong key, or the file was altered. */
export class ModelDecryptionError extends GcnError {
  static override readonly code = 'ERR_MODEL_DECRYPTION'
  override name = 'ModelDecryptionError'
}

export interface EncryptedModelHeader {
  chunkBytes: number
  plaintextBytes: number
  /** sha256 of the plaintext GGUF (the model id). */
  modelId: string
}

export interface CryptoProgress {
  signal?: AbortSignal
  onProgress?(done: number, total: number): void
}

function parseHeader(header: Buffer, path: string): EncryptedModelHeader & { noncePrefix: Buffer } {
  if (header.length < HEADER_BYTES || !header.subarray(0, 8).equals(MAGIC)) {
    throw new ModelFileError(`${path} is not an encrypted gcn model`, { hint: 'encrypt it with `gcn model encrypt`' })
  }
  const chunkBytes = header.readUInt32BE(8)
  const plaintextBytes = Number(header.readBigUInt64BE(12))
  if (chunkBytes < 1024 || chunkBytes > 64 * 1024 * 1024 || !Number.isSafeInteger(plaintextBytes)) {
    throw new ModelFileError(`${path} has a corrupt header`)
  }
  return { chunkBytes, plaintextBytes, modelId: header.subarray(20, 52).toString('hex'), noncePrefix: header.subarray(52, 60) }
}

/** Whether `path` starts with the encrypted-model magic. */
export async function isEncryptedModel(path: string): Promise<boolean> {
  const file = await openFile(path, 'r')
  try {
    const head = Buffer.alloc(8)
    const { bytesRead } = await file.read(head, 0, 8, 0)
    return bytesRead === 8 && head.equals(MAGIC)
  } finally {
    await file.close()
  }
}

/** Reads the header of an encrypted model (its model id, sizes) without the key. */
export async function readEncryptedModelHeader(path: string): Promise<EncryptedModelHeader> {
  const file = await openFile(path, 'r')
  try {
    const header = Buffer.alloc(HEADER_BYTES)
    await file.read(header, 0, HEADER_BYTES, 0)
    const { noncePrefix: _, ...rest } = parseHeader(header, path)
    return rest
  } finally {
    await file.close()
  }
}

function chunkAad(header: Buffer, index: number, last: boolean): Buffer {
  const aad = Buffer.alloc(header.length + 9)
  header.copy(aad)
  aad.writeBigUInt64BE(BigInt(index), header.length)
  aad[header.length + 8] = last ? 1 : 0
  return aad
}

function chunkNonce(prefix: Buffer, index: number): Buffer {
  const nonce = Buffer.alloc(12)
  prefix.copy(nonce)
  nonce.writeUInt32BE(index, 8)
  return nonce
}

async function readFully(file: FileHandle, buffer: Buffer, position: number): Promise<number> {
  let read = 0
  while (read < buffer.length) {
    const { bytesRead } = await file.read(buffer, read, buffer.length - read, position + read)
    if (bytesRead === 0) break
    read += bytesRead
  }
  return read
}

/** Encrypts a GGUF file; returns the model id (sha256 of the plaintext). */
export async function encryptModelFile(
  input: string,
  output: string,
  key: Uint8Array,
  options: CryptoProgress & { chunkBytes?: number } = {}
): Promise<string> {
  if (key.length !== MODEL_KEY_BYTES) throw new GcnError(`a model key is ${MODEL_KEY_BYTES} bytes, got ${key.length}`)
  const chunkBytes = options.chunkBytes ?? DEFAULT_MODEL_CHUNK_BYTES
  const source = await openFile(input, 'r')
  try {
    const total = (await source.stat()).size
    // The header carries the plaintext hash: one pass to hash, one to encrypt.
    const hash = createHash('sha256')
    const buffer = Buffer.alloc(chunkBytes)
    for (let pos = 0; pos < total; pos += chunkBytes) {
      throwIfAborted(options.signal, 'encrypting model')
      const n = await readFully(source, buffer, pos)
      hash.update(buffer.subarray(0, n))
      options.onProgress?.(pos + n, total * 2)
    }
    const modelId = hash.digest()
    const header = Buffer.alloc(HEADER_BYTES)
    MAGIC.copy(header)
    header.writeUInt32BE(chunkBytes, 8)
    header.writeBigUInt64BE(BigInt(total), 12)
    modelId.copy(header, 20)
    randomBytes(8).copy(header, 52)
    const target = await openFile(output, 'wx', 0o644)
    try {
      await target.write(header, 0, HEADER_BYTES, 0)
      let out = HEADER_BYTES
      const chunks = Math.max(1, Math.ceil(total / chunkBytes))
      for (let i = 0; i < chunks; i++) {
        throwIfAborted(options.signal, 'encrypting model')
        const n = await readFully(source, buffer, i * chunkBytes)
        const cipher = createCipheriv('aes-256-gcm', key, chunkNonce(header.subarray(52, 60), i))
        cipher.setAAD(chunkAad(header, i, i === chunks - 1))
        const sealed = Buffer.concat([cipher.update(buffer.subarray(0, n)), cipher.final(), cipher.getAuthTag()])
        await target.write(sealed, 0, sealed.length, out)
        out += sealed.length
        options.onProgress?.(total + i * chunkBytes + n, total * 2)
      }
      await target.sync()
    } finally {
      await target.close()
    }
    return modelId.toString('hex')
  } finally {
    await source.close()
  }
}

/** A decrypted model held in RAM: load it by `path`; `close()` frees it. */
export interface DecryptedModel {
  /** `/proc/self/fd/N` of the unlinked RAM-backed file. */
  path: string
  modelId: string
  close(): void
}

/** Where RAM-backed files can be made: /dev/shm (tmpfs) on Linux. */
const RAM_DIR = '/dev/shm'

/**
 * Decrypts an encrypted model into an unlinked RAM-backed file and checks its
 * sha256 against the header (and `expectedModelId` when given). Throws
 * ModelDecryptionError on a wrong key or an altered file; nothing is left behind.
 */
export async function decryptModelToMemory(
  path: string,
  key: Uint8Array,
  options: CryptoProgress & { expectedModelId?: string; ramDir?: string } = {}
): Promise<DecryptedModel> {
  if (process.platform !== 'linux') {
    throw new GcnError('encrypted models need Linux (/dev/shm and /proc/self/fd)', { hint: 'serve a plain GGUF on this platform' })
  }
  if (key.length !== MODEL_KEY_BYTES) throw new ModelDecryptionError(`a model key is ${MODEL_KEY_BYTES} bytes, got ${key.length}`)
  const source = await openFile(path, 'r')
  let fd: number | undefined
  try {
    const header = Buffer.alloc(HEADER_BYTES)
    await readFully(source, header, 0)
    const { chunkBytes, plaintextBytes, modelId, noncePrefix } = parseHeader(header, path)
    if (options.expectedModelId !== undefined && options.expectedModelId !== modelId) {
      throw new ModelFileError(`encrypted model ${path} holds model ${modelId}, not the expected ${options.expectedModelId}`)
    }
    const chunks = Math.max(1, Math.ceil(plaintextBytes / chunkBytes))
    const expectedSize = HEADER_BYTES + plaintextBytes + chunks * TAG_BYTES
    const actualSize = (await source.stat()).size
    if (actualSize !== expectedSize)
      throw new ModelDecryptionError(`encrypted model ${path} is ${actualSize} bytes, expected ${expectedSize} (truncated or altered)`)
    // Create, then unlink at once: the plaintext never has a name, and the kernel frees it when the last fd closes.
    const ramPath = join(options.ramDir ?? RAM_DIR, `.gcn-model-${randomBytes(12).toString('hex')}`)
    fd = openSync(ramPath, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600)
    unlinkSync(ramPath)
    const hash = createHash('sha256')
    const sealed = Buffer.alloc(chunkBytes + TAG_BYTES)
    let inPos = HEADER_BYTES
    let outPos = 0
    for (let i = 0; i < chunks; i++) {
      if (options.signal?.aborted === true) throw new AbortedError('decrypting model aborted', { cause: options.signal.reason })
      const plainLength = Math.min(chunkBytes, plaintextBytes - i * chunkBytes)
      const n = await readFully(source, sealed.subarray(0, plainLength + TAG_BYTES), inPos)
      if (n !== plainLength + TAG_BYTES) throw new ModelDecryptionError(`encrypted model ${path} is truncated`)
      inPos += n
      const decipher = createDecipheriv('aes-256-gcm', key, chunkNonce(noncePrefix, i))
      decipher.setAAD(chunkAad(header, i, i === chunks - 1))
      decipher.setAuthTag(sealed.subarray(plainLength, plainLength + TAG_BYTES))
      let plain: Buffer
      try {
        plain = Buffer.concat([decipher.update(sealed.subarray(0, plainLength)), decipher.final()])
      } catch (err) {
        throw new ModelDecryptionError(`cannot decrypt ${path}: wrong model key or altered file (chunk ${i})`, { cause: err })
      }
      hash.update(plain)
      for (let written = 0; written < plain.length; ) written += writeSync(fd, plain, written, plain.length - written, outPos + written)
      outPos += plain.length
      plain.fill(0)
      options.onProgress?.(outPos, plaintextBytes)
    }
    const actualId = hash.digest('hex')
    if (actualId !== modelId) throw new ModelDecryptionError(`decrypted model hash ${actualId} does not match its header ${modelId}`)
    if (fstatSync(fd).size !== plaintextBytes) throw new ModelDecryptionError('decrypted model has the wrong size')
    const held = fd
    fd = undefined
    let closed = false
    return {
      path: `/proc/self/fd/${held}`,
      modelId,
      close: () => {
        if (closed) return
        closed = true
        closeSync(held)
      }
    }
  } finally {
    if (fd !== undefined) closeSync(fd)
    await source.close()
  }
}
