import { createHash } from 'node:crypto'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AbortedError, ConfigError, silentLogger } from '@gcn/core'
import { expect } from 'chai'
import { ModelFileError, ModelHashMismatchError } from '../src/errors.js'
import { normaliseSha256, sha256File, verifyModelFile } from '../src/model-file.js'
import { createModelRuntime } from '../src/runtime.js'
import { rejection, tinyModelInTempDir } from './helpers.js'

describe('model-file', () => {
  let dir: string
  let modelPath: string
  let modelSha: string

  before(async () => {
    ;({ dir, modelPath, modelSha } = await tinyModelInTempDir('gcn-model-file-'))
  })

  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('hashes a file as lowercase hex sha256 and reports progress up to the size', async () => {
    const bytes = await readFile(modelPath)
    const progress: [number, number][] = []
    const hash = await sha256File(modelPath, { onProgress: (done, total) => progress.push([done, total]) })
    expect(hash).to.equal(createHash('sha256').update(bytes).digest('hex'))
    expect(hash).to.equal(modelSha)
    expect(hash).to.match(/^[0-9a-f]{64}$/)
    expect(progress.at(-1)).to.deep.equal([bytes.length, bytes.length])
  })

  it('hashes an empty file', async () => {
    const empty = join(dir, 'empty.bin')
    await writeFile(empty, new Uint8Array(0))
    expect(await sha256File(empty)).to.equal(createHash('sha256').digest('hex'))
  })

  it('fails with ModelFileError for a missing file or a directory', async () => {
    expect(await rejection(sha256File(join(dir, 'missing.gguf')))).to.be.instanceOf(ModelFileError)
    expect(await rejection(sha256File(dir))).to.be.instanceOf(ModelFileError)
  })

  it('aborts with AbortedError', async () => {
    const controller = new AbortController()
    controller.abort()
    expect(await rejection(sha256File(modelPath, { signal: controller.signal }))).to.be.instanceOf(AbortedError)
    // Several 4 MiB chunks, so the abort lands while reading.
    const big = join(dir, 'big.bin')
    await writeFile(big, new Uint8Array(12 * 1024 * 1024))
    const midway = new AbortController()
    const err = await rejection(sha256File(big, { signal: midway.signal, onProgress: () => midway.abort() }))
    expect(err).to.be.instanceOf(AbortedError)
  })

  it('verifies a matching hash (case-insensitive) and returns it', async () => {
    expect(await verifyModelFile(modelPath, modelSha)).to.equal(modelSha)
    expect(await verifyModelFile(modelPath, modelSha.toUpperCase())).to.equal(modelSha)
  })

  it('names both hashes when they differ', async () => {
    const wrong = 'ab'.repeat(32)
    const err = await rejection(verifyModelFile(modelPath, wrong))
    expect(err).to.be.instanceOf(ModelHashMismatchError)
    const mismatch = err as ModelHashMismatchError
    expect(mismatch.code).to.equal('ERR_MODEL_HASH_MISMATCH')
    expect(mismatch.message).to.include(wrong).and.include(modelSha)
    expect(mismatch.expected).to.equal(wrong)
    expect(mismatch.actual).to.equal(modelSha)
    expect(mismatch.hint).to.be.a('string')
  })

  it('rejects a malformed expected hash as a config error', async () => {
    expect(() => normaliseSha256('abc')).to.throw(ConfigError)
    expect(await rejection(verifyModelFile(modelPath, 'z'.repeat(64)))).to.be.instanceOf(ConfigError)
  })

  it('refuses to start a runtime on a mismatching file before loading it', async () => {
    // Not a GGUF at all: a load attempt would give ModelLoadError, so a mismatch proves the hash came first.
    const garbage = join(dir, 'garbage.gguf')
    await writeFile(garbage, 'not a model')
    const runtime = createModelRuntime({ modelPath: garbage, expectedSha256: modelSha }, { logger: silentLogger })
    try {
      const err = await rejection(runtime.start())
      expect(err).to.be.instanceOf(ModelHashMismatchError)
      expect(runtime.state).to.equal('stopped')
    } finally {
      await runtime.stop()
    }
  })
})
