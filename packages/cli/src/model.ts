import { formatHelp, loadConfig } from '@gcn/core'
import { MODEL_PRESETS, writeGguf } from '@gcn/supplier'
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

export const modelHelp = formatHelp(
  'gcn model make --out FILE [--seed N] [--preset tiny|small]',
  "Write a deterministic llama-architecture GGUF test model (seeded weights, byte-fallback vocabulary, ChatML template).\nPrints the file's sha256, which is its model id on the network.",
  schema
)

export async function runModel(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv
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
