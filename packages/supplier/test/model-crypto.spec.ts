import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { silentLogger } from '@gcn/core'
import { expect } from 'chai'
import { writeGguf } from '../src/gguf-writer.js'
import {
  decryptModelToMemory,
  encryptModelFile,
  isEncryptedModel,
  MODEL_KEY_BYTES,
  ModelDecryptionError,
  readEncryptedModelHeader
} from '../src/model-crypto.js'
import { createModelRuntime } from '../src/runtime.js'

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')
const ramLeftovers = (): string[] => readdirSync('/dev/shm').filter(f => f.startsWith('.gcn-model-'))

describe('encrypted models', function () {
  this.timeout(120_000)
  let dir: string
  let plainPath: string
  let encPath: string
  let key: Uint8Array
  let modelId: string

  before(async function () {
    if (process.platform !== 'linux') this.skip()
    dir = mkdtempSync(join(tmpdir(), 'gcn-model-crypto-'))
    plainPath = join(dir, 'tiny.gguf')
    encPath = join(dir, 'tiny.gguf.enc')
    await writeGguf(plainPath, { preset: 'tiny', seed: 1 })
    key = randomBytes(MODEL_KEY_BYTES)
    // Small chunks so the test crosses many chunk boundaries.
    modelId = await encryptModelFile(plainPath, encPath, key, { chunkBytes: 64 * 1024 })
  })

  after(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  it('pins the model by the sha256 of the plaintext and hides the content', async () => {
    const plain = readFileSync(plainPath)
    expect(modelId).to.equal(sha256(plain))
    expect(await isEncryptedModel(encPath)).to.equal(true)
    expect(await isEncryptedModel(plainPath)).to.equal(false)
    expect(await readEncryptedModelHeader(encPath)).to.deep.equal({ chunkBytes: 64 * 1024, plaintextBytes: plain.length, modelId })
    const enc = readFileSync(encPath)
    // The GGUF magic and any 32-byte run of the plaintext must not appear in the encrypted file.
    expect(enc.includes(Buffer.from('GGUF'))).to.equal(false)
    expect(enc.includes(plain.subarray(4096, 4128))).to.equal(false)
  })

  it('decrypts into an unlinked RAM file that node-llama-cpp loads and that vanishes on close', async () => {
    const before = ramLeftovers()
    const decrypted = await decryptModelToMemory(encPath, key, { expectedModelId: modelId })
    expect(decrypted.path).to.match(/^\/proc\/self\/fd\/\d+$/)
    expect(ramLeftovers()).to.deep.equal(before)
    expect(sha256(readFileSync(decrypted.path))).to.equal(modelId)
    const runtime = createModelRuntime(
      { modelPath: decrypted.path, expectedSha256: modelId, slots: 1, threads: 1 },
      { logger: silentLogger }
    )
    try {
      await runtime.start()
      expect(runtime.info.id).to.equal(modelId)
      let tokens = 0
      for await (const chunk of runtime.generate({ kind: 'prompt', prompt: 'Hello' }, { maxTokens: 4, temperature: 0 })) {
        if (chunk.type === 'token') tokens += chunk.tokenIds.length
      }
      expect(tokens).to.be.greaterThan(0)
    } finally {
      await runtime.stop()
      decrypted.close()
    }
    expect(() => readFileSync(decrypted.path)).to.throw()
  })

  it('refuses a wrong key, an altered byte and a truncated file, leaving nothing behind', async () => {
    const before = ramLeftovers()
    const attempt = async (path: string, k: Uint8Array): Promise<unknown> => {
      try {
        await decryptModelToMemory(path, k)
      } catch (err) {
        return err
      }
      return undefined
    }
    expect(await attempt(encPath, randomBytes(MODEL_KEY_BYTES))).to.be.instanceOf(ModelDecryptionError)
    const enc = readFileSync(encPath)
    const altered = Buffer.from(enc)
    altered[altered.length - 100]! ^= 1
    writeFileSync(join(dir, 'altered.enc'), altered)
    expect(await attempt(join(dir, 'altered.enc'), key)).to.be.instanceOf(ModelDecryptionError)
    writeFileSync(join(dir, 'short.enc'), enc.subarray(0, enc.length - 1))
    expect(await attempt(join(dir, 'short.enc'), key)).to.be.instanceOf(ModelDecryptionError)
    expect(ramLeftovers()).to.deep.equal(before)
  })
})
