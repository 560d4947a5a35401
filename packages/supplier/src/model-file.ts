/**
 * A model is identified on the network by the sha256 of its GGUF file, so the hash is computed
 * by streaming the file (GGUFs are many GB; never read whole into memory).
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { AbortedError, ConfigError, throwIfAborted } from '@gcn/core'
import { ModelFileError, ModelHashMismatchError } from './errors.js'

export interface HashFileOptions {
  signal?: AbortSignal
  /** Called after each chunk with bytes hashed so far and the file size. */
  onProgress?(done: number, total: number): void
}

const SHA256_HEX = /^[0-9a-f]{64}$/

/** Lowercase hex sha256 or ConfigError; accepts upper case from hand-written configs. */
export function normaliseSha256(value: string): string {
  const lower = value.trim().toLowerCase()
  if (!SHA256_HEX.test(lower)) {
    throw new ConfigError(`expected sha256 must be 64 hex characters, got ${value.length} characters`, {
      hint: 'copy the model id (sha256 of the GGUF file) exactly'
    })
  }
  return lower
}

/** Streams `path` through sha256; resolves to lowercase hex. */
export async function sha256File(path: string, options: HashFileOptions = {}): Promise<string> {
  const { signal, onProgress } = options
  throwIfAborted(signal, 'hashing model file')
  let total: number
  try {
    const info = await stat(path)
    if (!info.isFile()) throw new Error('not a regular file')
    total = info.size
  } catch (err) {
    throw new ModelFileError(`cannot read model file ${path}`, { cause: err, hint: 'check the model path and its permissions' })
  }
  const hash = createHash('sha256')
  let done = 0
  try {
    // 4 MiB chunks: far fewer callbacks than the 64 KiB default on multi-GB files.
    for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024, signal })) {
      const bytes = chunk as Buffer
      hash.update(bytes)
      done += bytes.length
      onProgress?.(done, total)
    }
  } catch (err) {
    if (signal?.aborted === true) throw new AbortedError('hashing model file aborted', { cause: signal.reason })
    throw new ModelFileError(`cannot read model file ${path}`, { cause: err, hint: 'check the model path and its permissions' })
  }
  return hash.digest('hex')
}

/**
 * Hashes `path` and throws ModelHashMismatchError unless it equals `expectedSha256`.
 * Resolves to the (lowercase) hash, i.e. the model id.
 */
export async function verifyModelFile(path: string, expectedSha256: string, options: HashFileOptions = {}): Promise<string> {
  const expected = normaliseSha256(expectedSha256)
  const actual = await sha256File(path, options)
  if (actual !== expected) throw new ModelHashMismatchError(path, expected, actual)
  return actual
}
