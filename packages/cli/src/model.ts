import { ConfigError, formatHelp, loadConfig } from '@gcn/core'
import { encryptModelFile, MODEL_PRESETS, writeGguf } from '@gcn/supplier'
import { existingOrNewModelKey, writeModelKeyFile } from './model-keys.js'
import { progressBar } from './progress.js'

const schema = {
  out: { type: 'string', valueName: 'FILE', required: true, description: 'where to write the GGUF file' },
  seed: { type: 'integer', min: 0, default: 1, description: 'weights seed; the same seed and preset give a byte-identical file' },
  preset: {
    type: 'string',
    choices: Object.keys(MODEL_PRESETS),
    default: 'tiny',
    description: 'tiny (~0.8 MB, tests) or small (~75 MB, benchmarks)'
  },
  name: { type: 'string', description: 'general.name stored in the file (default gcn-<preset>-s<seed>)' }
} as const

const encryptSchema = {
  in: { type: 'string', valueName: 'FILE', required: true, description: 'the GGUF model to encrypt' },
  out: { type: 'string', valueName: 'FILE', required: true, description: 'where to write the encrypted model (must not exist)' },
  keyFile: {
    type: 'string',
    valueName: 'FILE',
    required: true,
    description: 'model key file (JSON {modelId, key}, 0600): reused when it exists, created otherwise; give it to the distributor'
  }
} as const

export const modelEncryptHelp = formatHelp(
  'gcn model encrypt --in MODEL.gguf --out MODEL.gguf.enc --key-file MODEL.key',
  'Encrypt a GGUF model (AES-256-GCM, 4 MiB chunks) for distribution. Its model id stays the sha256 of the plain file;\nsuppliers get the key from a distributor holding the key file (gcn distributor --model-key FILE).',
  encryptSchema
)

async function runModelEncrypt(argv: string[]): Promise<number> {
  const { values, help } = loadConfig(encryptSchema, { argv })
  if (help) {
    process.stdout.write(modelEncryptHelp)
    return 0
  }
  const { key, modelId: knownId } = await existingOrNewModelKey(values.keyFile)
  const bar = progressBar('encrypting model')
  const modelId = await encryptModelFile(values.in, values.out, key, { onProgress: (done, total) => bar.update(done, total) })
  bar.done()
  if (knownId !== undefined && knownId !== modelId) {
    throw new ConfigError(`key file ${values.keyFile} belongs to model ${knownId}, not ${modelId}`, {
      hint: 'use a new key file per model'
    })
  }
  await writeModelKeyFile(values.keyFile, { modelId, key })
  process.stdout.write(`encrypted: ${values.out}
model id (sha256 of the plain file): ${modelId}
key file: ${values.keyFile}
`)
  return 0
}

export const modelHelp = formatHelp(
  'gcn model make --out FILE [--seed N] [--preset tiny|small]\n       gcn model encrypt --in FILE --out FILE --key-file FILE',
  "Write a deterministic llama-architecture GGUF test model (seeded weights, byte-fallback vocabulary, ChatML template).\nPrints the file's sha256, which is its model id on the network.",
  schema
)

export async function runModel(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv
  if (sub === 'encrypt') return runModelEncrypt(rest)
  if (sub !== 'make') {
    process.stdout.write(modelHelp)
    return sub === undefined || sub === '--help' || sub === '-h' ? 0 : 2
  }
  const { values, help } = loadConfig(schema, { argv: rest })
  if (help) {
    process.stdout.write(modelHelp)
    return 0
  }
  const bar = progressBar(`writing ${values.preset} model`)
  const written = await writeGguf(
    values.out,
    { preset: values.preset as 'tiny' | 'small', seed: values.seed, ...(values.name === undefined ? {} : { name: values.name }) },
    { onProgress: (done, total) => bar.update(done, total) }
  )
  bar.done()
  process.stdout.write(`model: ${written.path}\nbytes: ${written.bytes}\nsha256: ${written.sha256}\n`)
  return 0
}
