import { randomBytes } from 'node:crypto'
import { InvalidKeyError, KeyFileNotFoundError, loadOrCreateSecretFile } from '@gcn/core'
import { MODEL_KEY_BYTES } from '@gcn/supplier'

/** A model key file: JSON {"modelId", "key"} (hex), mode 0600, written by `gcn model encrypt`. */
export interface ModelKeyFile {
  modelId: string
  key: Uint8Array
}

function decode(path: string, bytes: Uint8Array): ModelKeyFile {
  let parsed: { modelId?: unknown; key?: unknown }
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8')) as typeof parsed
  } catch (err) {
    throw new InvalidKeyError(`model key file ${path} is not JSON`, { cause: err })
  }
  if (typeof parsed.modelId !== 'string' || !/^[0-9a-f]{64}$/.test(parsed.modelId)) {
    throw new InvalidKeyError(`model key file ${path} has no valid modelId`)
  }
  if (typeof parsed.key !== 'string' || !/^[0-9a-f]{64}$/.test(parsed.key))
    throw new InvalidKeyError(`model key file ${path} has no valid key`)
  return { modelId: parsed.modelId, key: Buffer.from(parsed.key, 'hex') }
}

/** Reads a model key file (refused when readable by others). */
export async function readModelKeyFile(path: string): Promise<ModelKeyFile> {
  const { value } = await loadOrCreateSecretFile(path, {
    what: 'model key file',
    create: false,
    generate: () => new Uint8Array(0),
    decode: bytes => decode(path, bytes)
  })
  return value
}

/** The key in `path` when it exists, else a fresh random key (written by `writeModelKeyFile` once the model id is known). */
export async function existingOrNewModelKey(path: string): Promise<{ key: Uint8Array; modelId?: string }> {
  try {
    const file = await readModelKeyFile(path)
    return { key: file.key, modelId: file.modelId }
  } catch (err) {
    if (err instanceof KeyFileNotFoundError) return { key: randomBytes(MODEL_KEY_BYTES) }
    throw err
  }
}

/** Creates the key file (0600, exclusive); an existing file must already hold the same model and key. */
export async function writeModelKeyFile(path: string, file: ModelKeyFile): Promise<void> {
  const json = JSON.stringify({ modelId: file.modelId, key: Buffer.from(file.key).toString('hex') })
  const { value } = await loadOrCreateSecretFile(path, {
    what: 'model key file',
    generate: () => Buffer.from(`${json}\n`),
    decode: bytes => decode(path, bytes)
  })
  if (value.modelId !== file.modelId || Buffer.compare(Buffer.from(value.key), Buffer.from(file.key)) !== 0) {
    throw new InvalidKeyError(`model key file ${path} already holds the key of another model (${value.modelId})`)
  }
}
