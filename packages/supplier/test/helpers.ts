import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeGguf } from '../src/gguf-writer.js'

/** The generated tiny model (seed 1) in a new temp dir, which the caller removes. */
export async function tinyModelInTempDir(prefix: string): Promise<{ dir: string; modelPath: string; modelSha: string }> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  const modelPath = join(dir, 'tiny.gguf')
  const modelSha = (await writeGguf(modelPath, { preset: 'tiny', seed: 1 })).sha256
  return { dir, modelPath, modelSha }
}

/** What a promise rejected with; fails when it resolves instead. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection')
}
