import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'chai'
import fc from 'fast-check'
import { Uint8ArrayList } from 'uint8arraylist'
import { InvalidMessageError, MessageTooLargeError } from '../src/errors.js'
import {
  type BlockConfirmation,
  type BlockSummaries,
  type BlockSummary,
  type CapacityAdvert,
  type WireChatMessage as ChatMessage,
  type ChatMessages,
  CODECS,
  type DayReportSignature,
  type MessageCodec,
  type ModelOffer,
  ProofVerdict,
  type Receipt,
  type ReceiptBatch,
  type RegistryAck,
  type RegistryWrite,
  type SignedEnvelope,
  type SyncRequest,
  type SyncResponse,
  type TaskChunk,
  type TaskError,
  type TaskFrame,
  type TaskOpen,
  type TaskParams,
  type TaskRequest,
  type WireUsage as Usage,
  WIRE_VERSION,
  WireFinishReason
} from '../src/wire.js'

const RUNS = 10_000

// --- arbitraries for schema-valid messages (kept small so 10k runs stay fast) ---

const bytesOf = (min: number, max = min) => fc.uint8Array({ minLength: min, maxLength: max }) as fc.Arbitrary<Uint8Array<ArrayBuffer>>
const hex = (b: Uint8Array): string => Array.from(b, x => x.toString(16).padStart(2, '0')).join('')
const peerId = fc.constantFrom(
  '12D3KooWHgLCwFL2jz1E7U8PoeUw53ADp2bmXxbCx7BgTsGgLiWM',
  '12D3KooWQxCdwq33KW8WCRJLHenrbFwuKwvPCxoD86sWKU4aY8WU'
)
const modelId = bytesOf(32).map(hex)
const printable = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...'abcXYZ019-_.:/@'), minLength: min, maxLength: max })
const text = (max: number) => fc.string({ unit: 'binary', maxLength: max })
const u32 = fc.integer({ min: 0, max: 0xffff_ffff })
const safe = fc.maxSafeNat()
const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })
const f32 = (min: number, max: number) => fc.float({ min: Math.fround(min), max: Math.fround(max), noNaN: true, noDefaultInfinity: true })
const maBytes = fc.constantFrom(
  ...['/ip4/127.0.0.1/tcp/4001', '/ip6/::1/tcp/4002', '/dns4/example.com/tcp/443/wss'].map(
    s => multiaddr(s).bytes as Uint8Array<ArrayBuffer>
  )
)

const modelOffer: fc.Arbitrary<ModelOffer> = fc.record({
  id: modelId,
  name: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 12 }),
  contextSize: fc.integer({ min: 1, max: 1 << 20 }),
  pricePer1kTokens: u64
})

const capacityAdvert: fc.Arbitrary<CapacityAdvert> = fc
  .record({
    peerId,
    multiaddrs: fc.array(maBytes, { maxLength: 3 }),
    models: fc.uniqueArray(modelOffer, { maxLength: 3, selector: m => m.id }),
    freeSlots: fc.integer({ min: 0, max: 4096 }),
    totalSlots: fc.integer({ min: 1, max: 4096 }),
    queueDepth: fc.integer({ min: 0, max: 1000 }),
    tokensPerSecond: f32(0, 5000),
    ttftMs: fc.integer({ min: 0, max: 60_000 }),
    rewardAddress: bytesOf(20).map(b => `0x${hex(b)}`),
    timestampMs: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    seq: safe
  })
  .map(a => ({ ...a, freeSlots: Math.min(a.freeSlots, a.totalSlots) }))

const chatMessage: fc.Arbitrary<ChatMessage> = fc.record({
  role: fc.constantFrom('system', 'user', 'assistant', 'tool'),
  content: text(24)
})
const chatMessages: fc.Arbitrary<ChatMessages> = fc.record({ messages: fc.array(chatMessage, { minLength: 1, maxLength: 3 }) })

const taskParams: fc.Arbitrary<TaskParams> = fc.record(
  {
    maxTokens: fc.integer({ min: 1, max: 65_536 }),
    temperature: f32(0, 2),
    topP: f32(0, 1),
    seed: safe,
    stop: fc.array(
      text(8).filter(s => s.length >= 1 && s.length <= 64),
      { maxLength: 4 }
    ),
    jsonSchema: fc.string({ minLength: 1, maxLength: 16 })
  },
  { requiredKeys: ['maxTokens', 'stop'] }
)

const requestBase = {
  taskId: bytesOf(16),
  modelId,
  gameId: printable(1, 16),
  sessionId: printable(0, 16),
  params: taskParams,
  nonce: bytesOf(32),
  responseKey: bytesOf(32),
  deadlineMs: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })
}
const taskRequest: fc.Arbitrary<TaskRequest> = fc.oneof(
  fc.record({ ...requestBase, chat: chatMessages }),
  fc.record({ ...requestBase, prompt: text(32).filter(s => s.length >= 1) })
)

const taskOpen: fc.Arbitrary<TaskOpen> = fc.record({
  version: fc.constant(WIRE_VERSION),
  taskId: bytesOf(16),
  sealedRequest: bytesOf(1, 64)
})
const usage: fc.Arbitrary<Usage> = fc.record({ promptTokens: u32, completionTokens: u32 })
const taskError: fc.Arbitrary<TaskError> = fc.record({
  code: printable(1, 12).filter(s => !s.includes('/') && !s.includes('@')),
  message: text(24),
  retryable: fc.boolean()
})
const finishReason = fc.constantFrom(WireFinishReason.STOP, WireFinishReason.LENGTH, WireFinishReason.ABORTED, WireFinishReason.ERROR)
const taskChunk: fc.Arbitrary<TaskChunk> = fc
  .record(
    { seq: safe, text: text(24), tokenIds: fc.array(u32, { maxLength: 8 }), finishReason, usage, error: taskError, proof: bytesOf(0, 16) },
    { requiredKeys: ['seq', 'text', 'tokenIds', 'proof'] }
  )
  .map(c => (c.error === undefined ? c : { ...c, finishReason: WireFinishReason.ERROR }))
const taskFrame: fc.Arbitrary<TaskFrame> = fc.record({ sealed: bytesOf(1, 64) })
const receipt: fc.Arbitrary<Receipt> = fc.record({
  taskId: bytesOf(16),
  gameId: printable(1, 16),
  supplierPeerId: peerId,
  distributorPeerId: peerId,
  modelId,
  promptTokens: u32,
  completionTokens: u32,
  pricePer1kTokens: u64,
  cost: u64,
  blockHeight: safe,
  promptHash: bytesOf(32),
  outputHash: bytesOf(32),
  verdict: fc.constantFrom(ProofVerdict.UNCHECKED, ProofVerdict.VERIFIED, ProofVerdict.FAILED),
  timestampMs: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })
})
const blockConfirmation: fc.Arbitrary<BlockConfirmation> = fc.record({
  supplierPeerId: peerId,
  blockHeight: safe,
  taskIds: fc.array(bytesOf(16), { maxLength: 4 }),
  timestampMs: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  rewardAddress: bytesOf(20).map(b => `0x${hex(b)}`)
})
const envelope: fc.Arbitrary<SignedEnvelope> = fc.record({
  payloadType: printable(1, 16),
  payload: bytesOf(1, 64),
  publicKey: bytesOf(1, 40),
  signature: bytesOf(1, 72)
})

const receiptBatch: fc.Arbitrary<ReceiptBatch> = fc
  .record({
    distributorPeerId: peerId,
    blockHeight: safe,
    receipts: fc.array(receipt, { minLength: 1, maxLength: 3 }),
    timestampMs: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })
  })
  .map(b => ({ ...b, receipts: b.receipts.map(r => ({ ...r, distributorPeerId: b.distributorPeerId, blockHeight: b.blockHeight })) }))
const registryWrite: fc.Arbitrary<RegistryWrite> = fc.record({ id: safe, envelope })
const registryAck: fc.Arbitrary<RegistryAck> = fc.record({
  id: safe,
  ok: fc.boolean(),
  replicas: fc.integer({ min: 0, max: 1024 }),
  duplicate: fc.boolean(),
  errorCode: fc.stringMatching(/^[A-Za-z0-9_.:-]{0,16}$/),
  errorMessage: text(24),
  retryable: fc.boolean()
})
const blockSummary: fc.Arbitrary<BlockSummary> = fc.oneof(
  fc.record({ blockHeight: safe, count: fc.constant(0), root: bytesOf(0) }),
  fc.record({ blockHeight: safe, count: fc.integer({ min: 1, max: 0xffff_ffff }), root: bytesOf(32) })
)
const blockSummaries: fc.Arbitrary<BlockSummaries> = fc.record({
  registryPeerId: peerId,
  blocks: fc.array(blockSummary, { maxLength: 4 }),
  timestampMs: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })
})
const spanQuery: fc.Arbitrary<NonNullable<SyncRequest['spans']>> = fc
  .record({ a: safe, b: safe, span: fc.integer({ min: 1, max: 1_000_000 }) })
  .map(({ a, b, span }) => ({ fromBlock: Math.min(a, b), toBlock: Math.max(a, b), span }))
const itemsQuery: fc.Arbitrary<NonNullable<SyncRequest['items']>> = fc.record({
  blockHeight: safe,
  have: fc.array(bytesOf(32), { maxLength: 3 })
})
const syncRequest: fc.Arbitrary<SyncRequest> = fc.oneof(fc.record({ spans: spanQuery }), fc.record({ items: itemsQuery }))
const dayReportSignature: fc.Arbitrary<DayReportSignature> = fc.record({
  registryPeerId: peerId,
  day: safe,
  root: bytesOf(32),
  totalDebit: bytesOf(32),
  signer: bytesOf(20).map(b => `0x${hex(b)}`),
  signature: bytesOf(65)
})
const syncResponse: fc.Arbitrary<SyncResponse> = fc.record({
  spans: fc.array(blockSummary, { maxLength: 4 }),
  envelopes: fc.array(
    fc.oneof(
      envelope.map(e => CODECS.SignedEnvelope.encode(e) as Uint8Array<ArrayBuffer>),
      bytesOf(1, 64)
    ),
    { maxLength: 3 }
  )
})

const VALID: { [K in keyof typeof CODECS]: fc.Arbitrary<unknown> } = {
  SignedEnvelope: envelope,
  AdvertEnvelope: envelope,
  ModelOffer: modelOffer,
  CapacityAdvert: capacityAdvert,
  ChatMessage: chatMessage,
  ChatMessages: chatMessages,
  TaskParams: taskParams,
  TaskRequest: taskRequest,
  TaskOpen: taskOpen,
  Usage: usage,
  TaskError: taskError,
  TaskChunk: taskChunk,
  TaskFrame: taskFrame,
  Receipt: receipt,
  BlockConfirmation: blockConfirmation,
  ReceiptBatch: receiptBatch,
  RegistryWrite: registryWrite,
  RegistryAck: registryAck,
  BlockSummaries: blockSummaries,
  SyncRequest: syncRequest,
  SyncResponse: syncResponse,
  DayReportSignature: dayReportSignature,
  ModelKeyRequest: fc.record({ modelId: bytesOf(32).map(b => hex(b)) }),
  ModelKeyResponse: fc.oneof(
    fc.record({ key: bytesOf(32), errorCode: fc.constant(''), errorMessage: fc.constant('') }),
    fc.record({ key: bytesOf(0), errorCode: fc.stringMatching(/^[A-Z_]{1,16}$/), errorMessage: text(24) })
  )
}

// --- mutations ---

type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'insert'; at: number; byte: number }
  | { op: 'delete'; at: number }
  | { op: 'truncate'; at: number }
  | { op: 'extend'; tail: Uint8Array }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('extend' as const), tail: fc.uint8Array({ minLength: 1, maxLength: 16 }) })
)

function mutate(input: Uint8Array, mutations: Mutation[]): Uint8Array {
  let bytes = Uint8Array.from(input)
  for (const m of mutations) {
    const at = bytes.length === 0 ? 0 : m.op === 'extend' ? 0 : m.at % (bytes.length + (m.op === 'insert' ? 1 : 0))
    switch (m.op) {
      case 'flip':
        if (bytes.length > 0) bytes[at] ^= 1 << m.bit
        break
      case 'insert':
        bytes = Uint8Array.from([...bytes.subarray(0, at), m.byte, ...bytes.subarray(at)])
        break
      case 'delete':
        if (bytes.length > 0) bytes = Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(at + 1)])
        break
      case 'truncate':
        bytes = bytes.slice(0, at)
        break
      case 'extend':
        bytes = Uint8Array.from([...bytes, ...m.tail])
        break
    }
  }
  return bytes
}

// --- the contract every decode must honour ---

const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i])

/** decode either yields a value encode accepts (and that survives another round trip), or throws one of the two wire errors. */
function checkDecode<T>(codec: MessageCodec<T>, input: Uint8Array | Uint8ArrayList): void {
  let value: T
  try {
    value = codec.decode(input)
  } catch (err) {
    if (err instanceof InvalidMessageError || err instanceof MessageTooLargeError) return
    throw err
  }
  const again = codec.encode(value)
  expect(again.byteLength).to.be.at.most(codec.maxBytes)
  // asciiOnly codecs skip decode's re-encoding check on this promise
  if (codec.asciiOnly) expect(again.byteLength, `${codec.name} re-encodes larger than its input`).to.be.at.most(input.byteLength)
  expect(bytesEqual(codec.encode(codec.decode(again)), again), `${codec.name} re-encode is not stable`).to.equal(true)
}

describe('wire codecs under fuzzing', function () {
  this.timeout(120_000)

  for (const [name, codec] of Object.entries(CODECS) as Array<[keyof typeof CODECS, MessageCodec<unknown>]>) {
    describe(name, () => {
      it('random bytes decode to a valid message or a wire error', () => {
        fc.assert(
          fc.property(fc.uint8Array({ maxLength: 96 }), bytes => checkDecode(codec, bytes)),
          { numRuns: RUNS }
        )
      })

      it('mutated valid encodings decode to a valid message or a wire error', () => {
        fc.assert(
          fc.property(VALID[name], fc.array(mutation, { minLength: 1, maxLength: 4 }), (msg, mutations) => {
            const bytes = codec.encode(msg)
            expect(bytesEqual(codec.encode(codec.decode(bytes)), bytes)).to.equal(true)
            checkDecode(codec, mutate(bytes, mutations))
          }),
          { numRuns: RUNS }
        )
      })

      it('oversized inputs are MessageTooLargeError', () => {
        // one shared buffer per codec keeps 10k runs of up to 2 MiB cheap
        const big = new Uint8Array(codec.maxBytes + 256)
        fc.assert(
          fc.property(VALID[name], fc.integer({ min: 1, max: 256 }), fc.boolean(), (msg, extra, asList) => {
            const head = codec.encode(msg)
            big.set(head)
            const input = asList
              ? new Uint8ArrayList(big.subarray(0, head.length), big.subarray(head.length, codec.maxBytes + extra))
              : big.subarray(0, codec.maxBytes + extra)
            expect(() => codec.decode(input)).to.throw(MessageTooLargeError)
          }),
          { numRuns: RUNS }
        )
      })

      it('every truncation and every single bit flip of a valid encoding is handled', () => {
        for (const msg of fc.sample(VALID[name], { numRuns: 5, seed: 42 })) {
          const bytes = codec.encode(msg)
          for (let at = 0; at < bytes.length; at++) {
            checkDecode(codec, bytes.subarray(0, at))
            for (let bit = 0; bit < 8; bit++) {
              const flipped = Uint8Array.from(bytes)
              flipped[at] ^= 1 << bit
              checkDecode(codec, flipped)
            }
          }
        }
      })
    })
  }
})
