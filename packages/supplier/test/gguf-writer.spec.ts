import { createHash } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import {
  getLlama,
  type Llama,
  LlamaChatSession,
  type LlamaContext,
  type LlamaContextSequence,
  LlamaLogLevel,
  type LlamaModel,
  readGgufFileInfo,
  type Token
} from 'node-llama-cpp'
import {
  buildGguf,
  CHAT_TEMPLATE,
  GGUF_WRITER_VERSION,
  ggufByteLength,
  MODEL_PRESETS,
  TOKEN_TYPE,
  toFloat16Bits,
  VOCABULARY,
  writeGguf
} from '../src/gguf-writer.js'

const MB = 1024 * 1024
// Golden hash: if this changes, the bytes changed, so GGUF_WRITER_VERSION must be bumped too.
const TINY_SEED1_SHA256 = '190af79723880ca68d857f23066a4acb21156a2eb47f51bee21e2750a09f290c'

/** The slice of node-llama-cpp's parsed metadata this spec reads. */
interface GgufMeta {
  general: { architecture: string; name: string }
  llama: { embedding_length: number; block_count: number; attention: { head_count_kv: number } }
  tokenizer: { chat_template: string; ggml: { model: string; tokens: string[] } }
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

/** Greedy generation of `count` token ids; also returns the decode rate excluding prompt evaluation. */
async function greedy(sequence: LlamaContextSequence, prompt: Token[], count: number): Promise<{ tokens: Token[]; tokPerS: number }> {
  await sequence.clearHistory()
  const tokens: Token[] = []
  let firstAt = 0
  for await (const token of sequence.evaluate(prompt, { temperature: 0 })) {
    if (tokens.length === 0) firstAt = performance.now()
    tokens.push(token)
    if (tokens.length >= count) break
  }
  const tokPerS = ((tokens.length - 1) * 1000) / (performance.now() - firstAt)
  return { tokens, tokPerS }
}

describe('gguf-writer', () => {
  let dir: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gcn-gguf-'))
  })

  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  describe('bytes', () => {
    it('is deterministic for a seed and differs across seeds', () => {
      const a = buildGguf({ preset: 'tiny', seed: 1 })
      const b = buildGguf({ preset: 'tiny', seed: 1 })
      const c = buildGguf({ preset: 'tiny', seed: 2 })
      expect(sha256(a)).to.equal(sha256(b))
      expect(sha256(a)).to.not.equal(sha256(c))
      expect(a.length).to.equal(c.length)
      expect(sha256(a)).to.equal(
        TINY_SEED1_SHA256,
        `bytes changed: bump GGUF_WRITER_VERSION (now ${GGUF_WRITER_VERSION}) and the golden hash`
      )
    })

    it('keeps the default seed at 1 and the name only in metadata', () => {
      expect(sha256(buildGguf({ preset: 'tiny' }))).to.equal(TINY_SEED1_SHA256)
      expect(sha256(buildGguf({ preset: 'tiny', name: 'other' }))).to.not.equal(TINY_SEED1_SHA256)
    })

    it('sizes tiny between 0.2 and 1.5 MB and predicts sizes without generating', () => {
      const tiny = buildGguf({ preset: 'tiny' })
      expect(tiny.length).to.be.within(0.2 * MB, 1.5 * MB)
      expect(ggufByteLength({ preset: 'tiny' })).to.equal(tiny.length)
      expect(ggufByteLength({ preset: 'small' })).to.be.within(10 * MB, 100 * MB)
    })

    it('writes a GGUF v3 header with 32-byte aligned data', () => {
      const bytes = buildGguf({ preset: 'tiny' })
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      expect(new TextDecoder().decode(bytes.subarray(0, 4))).to.equal('GGUF')
      expect(view.getUint32(4, true)).to.equal(3)
      expect(bytes.length % 32).to.equal(0)
    })

    it('rejects unknown presets and bad seeds', () => {
      expect(() => buildGguf({ preset: 'huge' as 'tiny' })).to.throw(RangeError)
      expect(() => buildGguf({ preset: 'constructor' as 'tiny' })).to.throw(RangeError)
      expect(() => buildGguf({ preset: 'tiny', seed: -1 })).to.throw(RangeError)
      expect(() => buildGguf({ preset: 'tiny', seed: 1.5 })).to.throw(RangeError)
    })

    it('converts to float16 with round-to-nearest-even', () => {
      const cases: [number, number][] = [
        [0, 0x0000],
        [-0, 0x8000],
        [1, 0x3c00],
        [-2, 0xc000],
        [0.1, 0x2e66],
        [65504, 0x7bff],
        [65520, 0x7c00],
        [2 ** -24, 0x0001],
        [2 ** -14, 0x0400],
        [2 ** -25, 0x0000],
        [1 + 2 ** -11, 0x3c00],
        [1 + 3 * 2 ** -11, 0x3c02],
        [Number.POSITIVE_INFINITY, 0x7c00]
      ]
      for (const [value, bits] of cases) expect(toFloat16Bits(value), String(value)).to.equal(bits)
      expect(toFloat16Bits(Number.NaN) & 0x7c00).to.equal(0x7c00)
    })

    it('lays out the vocabulary as specials, 256 byte tokens, word pieces, chat markers', () => {
      const v = VOCABULARY
      expect(v.tokens.slice(0, 3)).to.deep.equal(['<unk>', '<s>', '</s>'])
      expect([v.unkId, v.bosId, v.eosId, v.byteBase]).to.deep.equal([0, 1, 2, 3])
      expect(v.tokens[v.byteBase]).to.equal('<0x00>')
      expect(v.tokens[v.byteBase + 255]).to.equal('<0xFF>')
      expect(v.types.slice(v.byteBase, v.byteBase + 256).every(t => t === TOKEN_TYPE.BYTE)).to.equal(true)
      const pieces = v.types.filter(t => t === TOKEN_TYPE.NORMAL).length
      expect(pieces).to.be.within(200, 1000)
      expect(new Set(v.tokens).size).to.equal(v.tokens.length)
      expect(v.tokens).to.include('\u2581the')
      expect(v.tokens[v.imEndId]).to.equal('<|im_end|>')
      const normalScores = v.scores.filter((_, i) => v.types[i] === TOKEN_TYPE.NORMAL)
      expect(normalScores.every((s, i) => i === 0 || s < normalScores[i - 1]!)).to.equal(true)
      expect(MODEL_PRESETS.tiny.vocabSize).to.equal(v.tokens.length)
    })
  })

  describe('writeGguf', () => {
    it('streams the same bytes as buildGguf, reports progress and renames into place', async () => {
      const path = join(dir, 'tiny-1.gguf')
      const progress: [number, number][] = []
      const result = await writeGguf(path, { preset: 'tiny', seed: 1 }, { onProgress: (done, total) => progress.push([done, total]) })
      const onDisk = await readFile(path)
      expect(result).to.deep.equal({ path, bytes: onDisk.length, sha256: TINY_SEED1_SHA256 })
      expect(sha256(onDisk)).to.equal(TINY_SEED1_SHA256)
      expect(progress.length).to.be.greaterThan(1)
      expect(progress.at(-1)).to.deep.equal([onDisk.length, onDisk.length])
      expect((await readdir(dir)).filter(f => f.endsWith('.tmp'))).to.deep.equal([])
    })

    it('aborts cleanly without leaving a partial or temp file', async () => {
      const path = join(dir, 'aborted.gguf')
      const controller = new AbortController()
      const pending = writeGguf(path, { preset: 'tiny', seed: 3 }, { signal: controller.signal, onProgress: () => controller.abort() })
      let error: unknown
      await pending.catch(err => {
        error = err
      })
      expect((error as Error | undefined)?.name).to.equal('AbortError')
      const names = await readdir(dir)
      expect(names).to.not.include('aborted.gguf')
      expect(names.filter(f => f.startsWith('aborted.gguf'))).to.deep.equal([])
    })

    it('exposes llama metadata that node-llama-cpp parses', async () => {
      const path = join(dir, 'tiny-meta.gguf')
      await writeGguf(path, { preset: 'tiny', seed: 1, name: 'meta-check' })
      const info = await readGgufFileInfo(path, { logWarnings: false })
      const meta = info.metadata as unknown as GgufMeta
      const p = MODEL_PRESETS.tiny
      expect(info.version).to.equal(3)
      expect(meta.general.architecture).to.equal('llama')
      expect(meta.general.name).to.equal('meta-check')
      expect(meta.llama.embedding_length).to.equal(p.nEmbd)
      expect(meta.llama.block_count).to.equal(p.nLayer)
      expect(meta.llama.attention.head_count_kv).to.equal(p.nHeadKv)
      expect(meta.tokenizer.ggml.model).to.equal('llama')
      expect(meta.tokenizer.ggml.tokens.length).to.equal(p.vocabSize)
      expect(meta.tokenizer.chat_template).to.equal(CHAT_TEMPLATE)
      expect(info.tensorInfo?.length).to.equal(3 + 9 * p.nLayer)
    })
  })

  describe('with node-llama-cpp (CPU, 1 thread)', () => {
    const logs: string[] = []
    let llama: Llama
    let tiny: LlamaModel | undefined
    let tinyContext: LlamaContext | undefined
    let small: LlamaModel | undefined
    let smallContext: LlamaContext | undefined
    let tinyPath: string
    let smallPath: string

    before(async () => {
      tinyPath = join(dir, 'tiny-llama.gguf')
      await writeGguf(tinyPath, { preset: 'tiny', seed: 1 })
      llama = await getLlama({
        gpu: false,
        build: 'never',
        logLevel: LlamaLogLevel.warn,
        logger: (level, message) => logs.push(`${level}: ${message}`)
      })
    })

    after(async () => {
      await smallContext?.dispose()
      await small?.dispose()
      await tinyContext?.dispose()
      await tiny?.dispose()
      await llama?.dispose()
    })

    const load = async (modelPath: string): Promise<LlamaModel> => {
      try {
        return await llama.loadModel({ modelPath })
      } catch (err) {
        // JS only says "Failed to load model"; the reason (e.g. a wrong tensor shape) is in the native log.
        throw new Error(`${(err as Error).message}\n${logs.join('\n')}`)
      }
    }

    it('loads tiny and round-trips text through the tokenizer', async () => {
      tiny = await load(tinyPath)
      tinyContext = await tiny.createContext({ contextSize: 256, sequences: 1, threads: 1 })
      expect(tiny.tokens.bos).to.equal(VOCABULARY.bosId)
      expect(tiny.tokens.eos).to.equal(VOCABULARY.eosId)
      const text = 'Hello world, the dragon attacks the village! ünïcödé 123'
      const tokens = tiny.tokenize(text)
      expect(tiny.detokenize(tokens)).to.equal(text)
      // Word pieces are used: far fewer tokens than UTF-8 bytes, and non-ASCII falls back to byte tokens.
      expect(tokens.length).to.be.lessThan(new TextEncoder().encode(text).length / 2)
      expect(tokens.some(t => VOCABULARY.types[t] === TOKEN_TYPE.BYTE)).to.equal(true)
      expect(tiny.tokenize('<|im_start|>', true)).to.deep.equal([VOCABULARY.imStartId])
    })

    it('generates 16 tokens greedily, identically twice', async () => {
      const sequence = tinyContext!.getSequence()
      try {
        const prompt = [tiny!.tokens.bos!, ...tiny!.tokenize('The king said')]
        const first = await greedy(sequence, prompt, 16)
        const second = await greedy(sequence, prompt, 16)
        expect(first.tokens).to.have.length(16)
        expect(second.tokens).to.deep.equal(first.tokens)
        expect(new Set(first.tokens).size, 'greedy output should not be one token repeated').to.be.greaterThan(1)
        // Decode rate over 63 tokens gives a steadier figure than 16.
        const timed = await greedy(sequence, prompt, 64)
        console.log(`      tiny: ${timed.tokPerS.toFixed(0)} tok/s (threads 1), sample ${JSON.stringify(tiny!.detokenize(first.tokens))}`)
      } finally {
        sequence.dispose()
      }
    })

    it('answers a LlamaChatSession prompt through the ChatML template', async () => {
      const sequence = tinyContext!.getSequence()
      const session = new LlamaChatSession({ contextSequence: sequence })
      try {
        // node-llama-cpp matches our template to its ChatML wrapper; the generic Jinja wrapper is the clean fallback.
        expect(session.chatWrapper.wrapperName).to.be.oneOf(['ChatML', 'JinjaTemplate'])
        const answer = await session.prompt('Hello, who are you?', { maxTokens: 16, temperature: 0 })
        expect(answer).to.be.a('string')
        console.log(`      chat wrapper ${session.chatWrapper.wrapperName}, answer ${JSON.stringify(answer)}`)
      } finally {
        session.dispose()
      }
    })

    it('writes, loads and runs the small preset', async function () {
      this.timeout(120_000)
      smallPath = join(dir, 'small.gguf')
      const startedAt = performance.now()
      const written = await writeGguf(smallPath, { preset: 'small', seed: 1 })
      const writeMs = performance.now() - startedAt
      expect(written.bytes).to.equal((await stat(smallPath)).size)
      expect(written.bytes).to.be.within(10 * MB, 100 * MB)
      small = await load(smallPath)
      smallContext = await small.createContext({ contextSize: 256, sequences: 1, threads: 1 })
      const sequence = smallContext.getSequence()
      try {
        const prompt = [small.tokens.bos!, ...small.tokenize('The king said')]
        const { tokens, tokPerS } = await greedy(sequence, prompt, 24)
        expect(tokens).to.have.length(24)
        console.log(
          `      small: ${(written.bytes / MB).toFixed(1)} MiB written in ${(writeMs / 1000).toFixed(1)} s, ` +
            `${tokPerS.toFixed(0)} tok/s (threads 1), sample ${JSON.stringify(small.detokenize(tokens))}`
        )
      } finally {
        sequence.dispose()
      }
    })
  })
})
