/**
 * Deterministic GGUF (v3) writer for a llama-architecture model with seeded weights.
 *
 * gcn cannot download weights, so tests and benchmarks run on models generated here: the same
 * preset, seed and name always give byte-identical files (no clock, no Math.random; the PRNG is
 * xoshiro128** seeded per tensor through splitmix32). The output is noise, not a language model,
 * but it has a real SPM-style vocabulary, a chat template and llama.cpp-valid tensor shapes.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, rename, rm } from 'node:fs/promises'
import { dirname } from 'node:path'

/** Bump whenever the bytes produced for a given preset/seed/name change. */
export const GGUF_WRITER_VERSION = 1

export type ModelPresetName = 'micro' | 'tiny' | 'small'
export type WeightType = 'f32' | 'f16'

export interface ModelPreset {
  readonly name: ModelPresetName
  readonly nEmbd: number
  readonly nLayer: number
  readonly nHead: number
  readonly nHeadKv: number
  readonly nFf: number
  readonly contextLength: number
  /** Same vocabulary for every preset; see {@link VOCABULARY}. */
  readonly vocabSize: number
  readonly weightType: WeightType
  readonly ropeFreqBase: number
  readonly rmsEpsilon: number
}

export interface GgufOptions {
  preset: ModelPresetName
  /** Non-negative safe integer; defaults to 1. */
  seed?: number
  /** `general.name`; defaults to `gcn-<preset>-s<seed>`. */
  name?: string
}

export interface WriteGgufHooks {
  onProgress?(done: number, total: number): void
  signal?: AbortSignal
}

export interface WrittenGguf {
  path: string
  bytes: number
  sha256: string
}

/** Token types as llama.cpp's `llama_token_type` numbers them. */
export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const

export interface Vocabulary {
  readonly tokens: readonly string[]
  readonly scores: readonly number[]
  readonly types: readonly number[]
  readonly unkId: number
  readonly bosId: number
  readonly eosId: number
  /** First of the 256 `<0xNN>` byte tokens. */
  readonly byteBase: number
  readonly imStartId: number
  readonly imEndId: number
}

/** ChatML, so node-llama-cpp resolves it to its ChatML wrapper; the markers are CONTROL tokens. */
export const CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

const SPACE = '\u2581'

// Plain word list; pieces are derived from it, so editing it changes the bytes (bump the version).
const WORDS = (
  'the of and to a in is it you that he was for on are with as I his they be at one have this from or had by ' +
  'word but what some we can out other were all there when up use your how said an each she which do their time ' +
  'if will way about many then them write would like so these her long make thing see him two has look more day ' +
  'could go come did number sound no most people my over know water than call first who may down side been now ' +
  'find any new work part take get place made live where after back little only round man year came show every ' +
  'good me give our under name very through just form sentence great think say help low line differ turn cause ' +
  'much mean before move right boy old too same tell does set three want air well also play small end put home ' +
  'read hand port large spell add even land here must big high such follow act why ask men change went light kind ' +
  'off need house picture try us again animal point mother world near build self earth father game player level ' +
  'quest sword magic gold enemy attack health village king dragon hello yes thank please story'
).split(' ')
const CAPITALISED = [
  'The',
  'I',
  'You',
  'He',
  'She',
  'We',
  'They',
  'It',
  'What',
  'Hello',
  'Yes',
  'No',
  'This',
  'A',
  'In',
  'User',
  'Assistant'
]
const SUFFIXES = ['s', 'ed', 'ing', 'er', 'ly', 'es', 'ion', 'est', "'s", "n't"]
const PUNCTUATION = ['.', ',', '!', '?', "'", '"', '-', ':', ';', '(', ')']

function buildVocabulary(): Vocabulary {
  const tokens: string[] = ['<unk>', '<s>', '</s>']
  const types: number[] = [TOKEN_TYPE.UNKNOWN, TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL]
  const byteBase = tokens.length
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)
    types.push(TOKEN_TYPE.BYTE)
  }
  // llama.cpp's SPM tokenizer only merges adjacent symbols whose concatenation is a token, so every
  // prefix of a word piece is included: that keeps each word reachable by left-to-right merges.
  const pieces = new Set<string>([SPACE])
  for (let c = 0; c < 26; c++) pieces.add(String.fromCharCode(97 + c))
  for (let c = 0; c < 26; c++) pieces.add(String.fromCharCode(65 + c))
  for (let d = 0; d < 10; d++) pieces.add(String(d))
  for (const p of PUNCTUATION) pieces.add(p)
  const addWithPrefixes = (piece: string): void => {
    for (let end = 2; end <= piece.length; end++) pieces.add(piece.slice(0, end))
  }
  for (const word of [...WORDS, ...CAPITALISED]) addWithPrefixes(SPACE + word)
  for (const suffix of SUFFIXES) addWithPrefixes(suffix)
  const pieceBase = tokens.length
  for (const piece of pieces) {
    tokens.push(piece)
    types.push(TOKEN_TYPE.NORMAL)
  }
  const imStartId = tokens.push('<|im_start|>') - 1
  types.push(TOKEN_TYPE.CONTROL)
  const imEndId = tokens.push('<|im_end|>') - 1
  types.push(TOKEN_TYPE.CONTROL)
  // Specials and bytes score 0 like real SPM vocabularies; pieces descend by position, which sets merge priority.
  const scores = tokens.map((_, i) => (types[i] === TOKEN_TYPE.NORMAL ? -(i - pieceBase + 1) : 0))
  return { tokens, scores, types, unkId: 0, bosId: 1, eosId: 2, byteBase, imStartId, imEndId }
}

export const VOCABULARY: Vocabulary = buildVocabulary()

export const MODEL_PRESETS: Readonly<Record<ModelPresetName, ModelPreset>> = {
  /** A smaller model with the same vocabulary: what a cheating supplier might serve instead of tiny. */
  micro: {
    name: 'micro',
    nEmbd: 32,
    nLayer: 1,
    nHead: 2,
    nHeadKv: 1,
    nFf: 64,
    contextLength: 512,
    vocabSize: VOCABULARY.tokens.length,
    weightType: 'f32',
    ropeFreqBase: 10000,
    rmsEpsilon: 1e-5
  },
  tiny: {
    name: 'tiny',
    nEmbd: 64,
    nLayer: 2,
    nHead: 4,
    nHeadKv: 2,
    nFf: 128,
    contextLength: 512,
    vocabSize: VOCABULARY.tokens.length,
    weightType: 'f32',
    ropeFreqBase: 10000,
    rmsEpsilon: 1e-5
  },
  small: {
    name: 'small',
    nEmbd: 768,
    nLayer: 6,
    nHead: 12,
    nHeadKv: 4,
    nFf: 2048,
    contextLength: 2048,
    vocabSize: VOCABULARY.tokens.length,
    weightType: 'f16',
    ropeFreqBase: 10000,
    rmsEpsilon: 1e-5
  }
}

// ---------------------------------------------------------------------------------------------
// PRNG

/** splitmix32 step: used only to expand a 32-bit seed into xoshiro state. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0
  let z = state.s
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  return (z ^ (z >>> 16)) >>> 0
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k))

class Xoshiro128StarStar {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(seed32: number) {
    const sm = { s: seed32 | 0 }
    this.a = splitmix32(sm)
    this.b = splitmix32(sm)
    this.c = splitmix32(sm)
    this.d = splitmix32(sm)
    // An all-zero state would emit zeros forever.
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0
    const t = this.b << 9
    this.c ^= this.a
    this.d ^= this.b
    this.b ^= this.c
    this.a ^= this.d
    this.c ^= t
    this.d = rotl(this.d, 11)
    return result
  }

  /** Uniform in (-1, 1), symmetric, from 24 random bits. */
  nextSigned(): number {
    return (((this.nextUint32() >>> 8) + 0.5) / 16777216) * 2 - 1
  }
}

function fnv1a32(text: string): number {
  let h = 0x811c9dc5
  for (const byte of new TextEncoder().encode(text)) h = Math.imul(h ^ byte, 0x01000193)
  return h >>> 0
}

/** Per-tensor seed, so a tensor's values do not depend on which tensors precede it. */
function tensorSeed(seed: number, tensorName: string): number {
  const lo = seed >>> 0
  const hi = Math.floor(seed / 4294967296) >>> 0
  const sm = { s: lo ^ Math.imul(hi, 0x27d4eb2d) }
  return (splitmix32(sm) ^ fnv1a32(tensorName)) >>> 0
}

// ---------------------------------------------------------------------------------------------
// Float16

const f32Scratch = new Float32Array(1)
const u32Scratch = new Uint32Array(f32Scratch.buffer)

/** IEEE half from a double, rounding to nearest even (via float32, as ggml does). */
export function toFloat16Bits(value: number): number {
  f32Scratch[0] = value
  const x = u32Scratch[0]!
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  const mant = x & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0)
  const e = exp - 112
  if (e >= 0x1f) return sign | 0x7c00
  if (e <= 0) {
    const shift = 14 - e
    if (shift > 24) return sign
    const full = mant | 0x800000
    let m = full >>> shift
    const rem = full & ((1 << shift) - 1)
    const halfway = 1 << (shift - 1)
    if (rem > halfway || (rem === halfway && (m & 1) === 1)) m++
    return sign | m
  }
  let h = sign | (e << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++
  return h
}

// ---------------------------------------------------------------------------------------------
// Layout

const GGML_TYPE = { f32: 0, f16: 1 } as const
const BYTES_PER_ELEMENT = { f32: 4, f16: 2 } as const
const ALIGNMENT = 32
/** Elements generated per chunk: bounds memory and sets the progress/abort granularity. */
const CHUNK_ELEMENTS = 1 << 18

interface TensorPlan {
  name: string
  /** Innermost dimension first, as GGUF stores them. */
  dims: number[]
  type: WeightType
  /** 0 means constant 1.0 (norm weights); otherwise uniform in (-scale, scale). */
  scale: number
  offset: number
  bytes: number
}

interface Plan {
  preset: ModelPreset
  seed: number
  header: Uint8Array
  tensors: TensorPlan[]
  /** Absolute file offset where tensor data starts. */
  dataStart: number
  total: number
}

const alignUp = (n: number): number => Math.ceil(n / ALIGNMENT) * ALIGNMENT

function planTensors(p: ModelPreset): Omit<TensorPlan, 'offset' | 'bytes'>[] {
  const headDim = p.nEmbd / p.nHead
  const qDim = p.nHead * headDim
  const kvDim = p.nHeadKv * headDim
  const w = p.weightType
  // Uniform(-s, s) has variance s²/3: s = sqrt(3 / fanIn) keeps projections variance-preserving.
  const keep = (fanIn: number): number => Math.sqrt(3 / fanIn)
  const tensors: Omit<TensorPlan, 'offset' | 'bytes'>[] = [{ name: 'token_embd.weight', dims: [p.nEmbd, p.vocabSize], type: w, scale: 1 }]
  for (let i = 0; i < p.nLayer; i++) {
    const blk = `blk.${i}`
    tensors.push(
      { name: `${blk}.attn_norm.weight`, dims: [p.nEmbd], type: 'f32', scale: 0 },
      { name: `${blk}.attn_q.weight`, dims: [p.nEmbd, qDim], type: w, scale: keep(p.nEmbd) },
      { name: `${blk}.attn_k.weight`, dims: [p.nEmbd, kvDim], type: w, scale: keep(p.nEmbd) },
      { name: `${blk}.attn_v.weight`, dims: [p.nEmbd, kvDim], type: w, scale: keep(p.nEmbd) },
      { name: `${blk}.attn_output.weight`, dims: [qDim, p.nEmbd], type: w, scale: keep(qDim) },
      { name: `${blk}.ffn_norm.weight`, dims: [p.nEmbd], type: 'f32', scale: 0 },
      { name: `${blk}.ffn_gate.weight`, dims: [p.nEmbd, p.nFf], type: w, scale: keep(p.nEmbd) },
      { name: `${blk}.ffn_up.weight`, dims: [p.nEmbd, p.nFf], type: w, scale: keep(p.nEmbd) },
      { name: `${blk}.ffn_down.weight`, dims: [p.nFf, p.nEmbd], type: w, scale: keep(p.nFf) }
    )
  }
  tensors.push(
    { name: 'output_norm.weight', dims: [p.nEmbd], type: 'f32', scale: 0 },
    // Logit std ≈ 3 after the RMS norm: peaked enough to be non-uniform, flat enough to vary.
    { name: 'output.weight', dims: [p.nEmbd, p.vocabSize], type: w, scale: 3 * keep(p.nEmbd) }
  )
  return tensors
}

class HeaderWriter {
  private buf = new Uint8Array(1 << 16)
  private view = new DataView(this.buf.buffer)
  private len = 0
  private readonly encoder = new TextEncoder()

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n))
    next.set(this.buf.subarray(0, this.len))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  u32(v: number): void {
    this.reserve(4)
    this.view.setUint32(this.len, v, true)
    this.len += 4
  }

  i32(v: number): void {
    this.reserve(4)
    this.view.setInt32(this.len, v, true)
    this.len += 4
  }

  u64(v: number | bigint): void {
    this.reserve(8)
    this.view.setBigUint64(this.len, BigInt(v), true)
    this.len += 8
  }

  f32(v: number): void {
    this.reserve(4)
    this.view.setFloat32(this.len, v, true)
    this.len += 4
  }

  u8(v: number): void {
    this.reserve(1)
    this.view.setUint8(this.len, v)
    this.len += 1
  }

  str(s: string): void {
    const bytes = this.encoder.encode(s)
    this.u64(bytes.length)
    this.reserve(bytes.length)
    this.buf.set(bytes, this.len)
    this.len += bytes.length
  }

  get length(): number {
    return this.len
  }

  finish(padTo: number): Uint8Array {
    this.reserve(padTo - this.len)
    this.len = padTo
    return this.buf.slice(0, padTo)
  }
}

const GGUF_VALUE = { UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9, UINT64: 10 } as const

type KvValue =
  | { t: 'u32'; v: number }
  | { t: 'u64'; v: number }
  | { t: 'f32'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'str'; v: string }
  | { t: 'str[]'; v: readonly string[] }
  | { t: 'f32[]'; v: readonly number[] }
  | { t: 'i32[]'; v: readonly number[] }

function writeKv(h: HeaderWriter, key: string, value: KvValue): void {
  h.str(key)
  switch (value.t) {
    case 'u32':
      h.u32(GGUF_VALUE.UINT32)
      h.u32(value.v)
      break
    case 'u64':
      h.u32(GGUF_VALUE.UINT64)
      h.u64(value.v)
      break
    case 'f32':
      h.u32(GGUF_VALUE.FLOAT32)
      h.f32(value.v)
      break
    case 'bool':
      h.u32(GGUF_VALUE.BOOL)
      h.u8(value.v ? 1 : 0)
      break
    case 'str':
      h.u32(GGUF_VALUE.STRING)
      h.str(value.v)
      break
    case 'str[]':
      h.u32(GGUF_VALUE.ARRAY)
      h.u32(GGUF_VALUE.STRING)
      h.u64(value.v.length)
      for (const s of value.v) h.str(s)
      break
    case 'f32[]':
      h.u32(GGUF_VALUE.ARRAY)
      h.u32(GGUF_VALUE.FLOAT32)
      h.u64(value.v.length)
      for (const f of value.v) h.f32(f)
      break
    case 'i32[]':
      h.u32(GGUF_VALUE.ARRAY)
      h.u32(GGUF_VALUE.INT32)
      h.u64(value.v.length)
      for (const n of value.v) h.i32(n)
      break
  }
}

function resolveOptions(options: GgufOptions): { preset: ModelPreset; seed: number; name: string } {
  // hasOwn: a name such as 'constructor' must not resolve through the prototype.
  if (!Object.hasOwn(MODEL_PRESETS, options.preset)) throw new RangeError(`unknown GGUF preset: ${String(options.preset)}`)
  const preset = MODEL_PRESETS[options.preset]
  const seed = options.seed ?? 1
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`GGUF seed must be a non-negative safe integer, got ${seed}`)
  return { preset, seed, name: options.name ?? `gcn-${preset.name}-s${seed}` }
}

function makePlan(options: GgufOptions): Plan {
  const { preset: p, seed, name } = resolveOptions(options)
  const headDim = p.nEmbd / p.nHead
  if (!Number.isInteger(headDim) || p.nHead % p.nHeadKv !== 0) throw new RangeError(`inconsistent head layout in preset ${p.name}`)

  let offset = 0
  const tensors: TensorPlan[] = planTensors(p).map(t => {
    const bytes = t.dims.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT[t.type]
    const plan = { ...t, offset, bytes }
    offset = alignUp(offset + bytes)
    return plan
  })

  const v = VOCABULARY
  const kvs: [string, KvValue][] = [
    ['general.architecture', { t: 'str', v: 'llama' }],
    ['general.name', { t: 'str', v: name }],
    ['general.alignment', { t: 'u32', v: ALIGNMENT }],
    // llama_ftype: 0 = ALL_F32, 1 = MOSTLY_F16.
    ['general.file_type', { t: 'u32', v: p.weightType === 'f16' ? 1 : 0 }],
    ['gcn.generator.version', { t: 'u32', v: GGUF_WRITER_VERSION }],
    ['gcn.generator.preset', { t: 'str', v: p.name }],
    ['gcn.generator.seed', { t: 'u64', v: seed }],
    ['llama.context_length', { t: 'u32', v: p.contextLength }],
    ['llama.embedding_length', { t: 'u32', v: p.nEmbd }],
    ['llama.block_count', { t: 'u32', v: p.nLayer }],
    ['llama.feed_forward_length', { t: 'u32', v: p.nFf }],
    ['llama.attention.head_count', { t: 'u32', v: p.nHead }],
    ['llama.attention.head_count_kv', { t: 'u32', v: p.nHeadKv }],
    ['llama.rope.dimension_count', { t: 'u32', v: headDim }],
    ['llama.rope.freq_base', { t: 'f32', v: p.ropeFreqBase }],
    ['llama.attention.layer_norm_rms_epsilon', { t: 'f32', v: p.rmsEpsilon }],
    ['llama.vocab_size', { t: 'u32', v: p.vocabSize }],
    ['tokenizer.ggml.model', { t: 'str', v: 'llama' }],
    ['tokenizer.ggml.tokens', { t: 'str[]', v: v.tokens }],
    ['tokenizer.ggml.scores', { t: 'f32[]', v: v.scores }],
    ['tokenizer.ggml.token_type', { t: 'i32[]', v: v.types }],
    ['tokenizer.ggml.bos_token_id', { t: 'u32', v: v.bosId }],
    ['tokenizer.ggml.eos_token_id', { t: 'u32', v: v.eosId }],
    ['tokenizer.ggml.unknown_token_id', { t: 'u32', v: v.unkId }],
    ['tokenizer.ggml.add_bos_token', { t: 'bool', v: true }],
    ['tokenizer.ggml.add_eos_token', { t: 'bool', v: false }],
    ['tokenizer.ggml.add_space_prefix', { t: 'bool', v: true }],
    ['tokenizer.chat_template', { t: 'str', v: CHAT_TEMPLATE }]
  ]

  const h = new HeaderWriter()
  for (const byte of [0x47, 0x47, 0x55, 0x46]) h.u8(byte) // "GGUF"
  h.u32(3)
  h.u64(tensors.length)
  h.u64(kvs.length)
  for (const [key, value] of kvs) writeKv(h, key, value)
  for (const t of tensors) {
    h.str(t.name)
    h.u32(t.dims.length)
    for (const d of t.dims) h.u64(d)
    h.u32(GGML_TYPE[t.type])
    h.u64(t.offset)
  }
  const dataStart = alignUp(h.length)
  return { preset: p, seed, header: h.finish(dataStart), tensors, dataStart, total: dataStart + offset }
}

/** Total file size in bytes for these options, without generating any weights. */
export function ggufByteLength(options: GgufOptions): number {
  return makePlan(options).total
}

// Typed arrays below are written as raw bytes, which GGUF defines as little-endian.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** Yields the file as consecutive chunks; the single source of bytes for both writers. */
function* ggufChunks(plan: Plan): Generator<Uint8Array> {
  if (!LITTLE_ENDIAN) throw new Error('GGUF writer requires a little-endian host')
  yield plan.header
  let position = plan.dataStart
  for (const t of plan.tensors) {
    const padding = plan.dataStart + t.offset - position
    if (padding > 0) yield new Uint8Array(padding)
    const count = t.bytes / BYTES_PER_ELEMENT[t.type]
    const rng = t.scale === 0 ? undefined : new Xoshiro128StarStar(tensorSeed(plan.seed, t.name))
    for (let start = 0; start < count; start += CHUNK_ELEMENTS) {
      const n = Math.min(CHUNK_ELEMENTS, count - start)
      const out = t.type === 'f32' ? new Float32Array(n) : new Uint16Array(n)
      if (rng === undefined) out.fill(t.type === 'f32' ? 1 : 0x3c00)
      else if (out instanceof Float32Array) for (let i = 0; i < n; i++) out[i] = rng.nextSigned() * t.scale
      else for (let i = 0; i < n; i++) out[i] = toFloat16Bits(rng.nextSigned() * t.scale)
      yield new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
    }
    position = plan.dataStart + t.offset + t.bytes
  }
  if (position < plan.total) yield new Uint8Array(plan.total - position)
}

/** Builds the whole file in memory. Fine for `tiny`; prefer {@link writeGguf} for `small`. */
export function buildGguf(options: GgufOptions): Uint8Array {
  const plan = makePlan(options)
  const out = new Uint8Array(plan.total)
  let at = 0
  for (const chunk of ggufChunks(plan)) {
    out.set(chunk, at)
    at += chunk.length
  }
  return out
}

/**
 * Streams the file to `<path>.<random>.tmp` and renames it into place, so readers never see a
 * partial model. Bytes are identical to {@link buildGguf}. On abort or error the temp file is removed.
 */
export async function writeGguf(path: string, options: GgufOptions, hooks: WriteGgufHooks = {}): Promise<WrittenGguf> {
  const plan = makePlan(options)
  const { signal, onProgress } = hooks
  signal?.throwIfAborted()
  await mkdir(dirname(path), { recursive: true })
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
  const hash = createHash('sha256')
  const file = await open(tmp, 'wx', 0o644)
  let done = 0
  try {
    for (const chunk of ggufChunks(plan)) {
      signal?.throwIfAborted()
      let written = 0
      while (written < chunk.length) {
        const { bytesWritten } = await file.write(chunk, written, chunk.length - written)
        written += bytesWritten
      }
      hash.update(chunk)
      done += chunk.length
      onProgress?.(done, plan.total)
    }
    await file.sync()
    await file.close()
    await rename(tmp, path)
  } catch (err) {
    await file.close().catch(() => {})
    await rm(tmp, { force: true })
    throw err
  }
  return { path, bytes: done, sha256: hash.digest('hex') }
}
