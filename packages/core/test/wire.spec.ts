import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'chai'
import { Uint8ArrayList } from 'uint8arraylist'
import { SEAL_HEADER_LENGTH, SEAL_OVERHEAD } from '../src/crypto.js'
import { InvalidMessageError, MessageTooLargeError } from '../src/errors.js'
import * as pb from '../src/pb/gcn.js'
import { RECEIPTS_PAYLOAD } from '../src/protocols.js'
import {
  AdvertEnvelopeCodec,
  BlockConfirmationCodec,
  type BlockSummaries,
  BlockSummariesCodec,
  type CapacityAdvert,
  CapacityAdvertCodec,
  ChatMessageCodec,
  CODECS,
  createEnvelopeCodec,
  type DayReportSignature,
  DayReportSignatureCodec,
  FIELD_LIMITS,
  LIMITS,
  type MessageCodec,
  ModelOfferCodec,
  ProofVerdict,
  type Receipt,
  type ReceiptBatch,
  ReceiptBatchCodec,
  ReceiptCodec,
  type RegistryAck,
  RegistryAckCodec,
  type RegistryWrite,
  RegistryWriteCodec,
  type SignedEnvelope,
  SignedEnvelopeCodec,
  type SyncRequest,
  SyncRequestCodec,
  type SyncResponse,
  SyncResponseCodec,
  type TaskChunk,
  TaskChunkCodec,
  TaskErrorCodec,
  TaskFrameCodec,
  type TaskOpen,
  TaskOpenCodec,
  TaskParamsCodec,
  type TaskRequest,
  TaskRequestCodec,
  UsageCodec,
  WIRE_VERSION,
  WireFinishReason
} from '../src/wire.js'

const PEER_A = '12D3KooWHgLCwFL2jz1E7U8PoeUw53ADp2bmXxbCx7BgTsGgLiWM'
const PEER_B = '12D3KooWQxCdwq33KW8WCRJLHenrbFwuKwvPCxoD86sWKU4aY8WU'
const MODEL_ID = 'ab'.repeat(32)
const filled = (n: number, byte = 7): Uint8Array<ArrayBuffer> => new Uint8Array(n).fill(byte)

const advert = (): CapacityAdvert => ({
  peerId: PEER_A,
  multiaddrs: [
    multiaddr('/ip4/127.0.0.1/tcp/4001').bytes as Uint8Array<ArrayBuffer>,
    multiaddr('/ip6/::1/tcp/4002').bytes as Uint8Array<ArrayBuffer>
  ],
  models: [{ id: MODEL_ID, name: 'tiny-llama Q4_K_M', contextSize: 4096, pricePer1kTokens: 1_500n }],
  freeSlots: 2,
  totalSlots: 4,
  queueDepth: 1,
  tokensPerSecond: 42.5,
  ttftMs: 120,
  rewardAddress: `0x${'aB'.repeat(20)}`,
  timestampMs: 1_764_000_000_000,
  seq: 7
})

const request = (): TaskRequest => ({
  taskId: filled(16, 1),
  modelId: MODEL_ID,
  gameId: 'space-game',
  sessionId: 'session-1',
  chat: {
    messages: [
      { role: 'system', content: 'You are a shopkeeper.' },
      { role: 'user', content: 'Hello! ¿Qué tal? 🙂' }
    ]
  },
  params: { maxTokens: 128, temperature: 0.75, topP: 0.5, seed: 42, stop: ['\n\n', 'END'], jsonSchema: '{"type":"object"}' },
  nonce: filled(32, 2),
  deadlineMs: 1_764_000_030_000,
  responseKey: filled(32, 5)
})

const promptRequest = (): TaskRequest => {
  const { chat: _chat, ...rest } = request()
  return { ...rest, prompt: 'Once upon a time', params: { maxTokens: 16, stop: [] } }
}

const open = (): TaskOpen => ({ version: WIRE_VERSION, taskId: filled(16, 1), sealedRequest: filled(300, 9) })
/** A task announced ahead of its request: the header its sealed request will start with. */
const announcement = (): TaskOpen => ({
  version: WIRE_VERSION,
  taskId: filled(16, 1),
  sealedRequest: new Uint8Array(0),
  requestBoxHeader: filled(SEAL_HEADER_LENGTH, 1)
})

const chunk = (): TaskChunk => ({ seq: 3, text: ' world', tokenIds: [1, 2, 300000], proof: new Uint8Array(0) })

const finalChunk = (): TaskChunk => ({
  seq: 4,
  text: '',
  tokenIds: [],
  finishReason: WireFinishReason.ERROR,
  usage: { promptTokens: 10, completionTokens: 4 },
  error: { code: 'ERR_MODEL', message: 'model crashed', retryable: true },
  proof: filled(8)
})

const receipt = (): Receipt => ({
  taskId: filled(16, 1),
  gameId: 'space-game',
  supplierPeerId: PEER_A,
  distributorPeerId: PEER_B,
  modelId: MODEL_ID,
  promptTokens: 10,
  completionTokens: 20,
  pricePer1kTokens: 1_500n,
  cost: 45n,
  blockHeight: 12,
  promptHash: filled(32, 3),
  outputHash: filled(32, 4),
  verdict: ProofVerdict.UNCHECKED,
  timestampMs: 1_764_000_000_000
})

const envelope = (): SignedEnvelope => ({
  payloadType: 'gcn/offer/1',
  payload: CapacityAdvertCodec.encode(advert()) as Uint8Array<ArrayBuffer>,
  publicKey: filled(36, 8),
  signature: filled(64, 9)
})

const batch = (): ReceiptBatch => ({
  distributorPeerId: PEER_B,
  blockHeight: 12,
  receipts: [receipt(), { ...receipt(), taskId: filled(16, 2), supplierPeerId: PEER_B, verdict: ProofVerdict.VERIFIED }],
  timestampMs: 1_764_000_000_500
})

const write = (): RegistryWrite => ({
  id: 1,
  envelope: { ...envelope(), payloadType: RECEIPTS_PAYLOAD, payload: ReceiptBatchCodec.encode(batch()) as Uint8Array<ArrayBuffer> }
})

const ack = (): RegistryAck => ({ id: 1, ok: true, replicas: 3, duplicate: false, errorCode: '', errorMessage: '', retryable: false })

const summaries = (): BlockSummaries => ({
  registryPeerId: PEER_A,
  blocks: [
    { blockHeight: 12, count: 2, root: filled(32, 6) },
    { blockHeight: 13, count: 0, root: new Uint8Array(0) }
  ],
  timestampMs: 1_764_000_001_000
})

const spansRequest = (): SyncRequest => ({ spans: { fromBlock: 0, toBlock: 100, span: 16 } })

const itemsRequest = (): SyncRequest => ({ items: { blockHeight: 12, have: [filled(32, 1), filled(32, 2)] } })

const dayReportSignature = (): DayReportSignature => ({
  registryPeerId: PEER_A,
  day: 3,
  root: filled(32, 1),
  totalDebit: filled(32, 0),
  signer: `0x${'ab'.repeat(20)}`,
  signature: filled(65, 2)
})
const syncResponse = (): SyncResponse => ({
  spans: [{ blockHeight: 0, count: 5, root: filled(32, 6) }],
  envelopes: [SignedEnvelopeCodec.encode(envelope()) as Uint8Array<ArrayBuffer>]
})

/** Valid sample(s) for every codec in CODECS. */
const SAMPLES: Record<keyof typeof CODECS, unknown[]> = {
  SignedEnvelope: [envelope()],
  AdvertEnvelope: [envelope()],
  ModelOffer: [advert().models[0]],
  CapacityAdvert: [advert(), { ...advert(), multiaddrs: [], models: [], tokensPerSecond: 0, seq: 0 }],
  ChatMessage: [{ role: 'assistant', content: '' }],
  ChatMessages: [request().chat],
  TaskParams: [request().params, { maxTokens: 1, stop: [] }],
  TaskRequest: [request(), promptRequest()],
  TaskOpen: [open(), announcement()],
  Usage: [{ promptTokens: 0, completionTokens: 0 }],
  TaskError: [{ code: 'x', message: '', retryable: false }],
  TaskChunk: [chunk(), finalChunk(), { ...chunk(), finishReason: WireFinishReason.STOP }],
  TaskFrame: [{ sealed: filled(100) }],
  Receipt: [receipt(), { ...receipt(), verdict: ProofVerdict.FAILED, blockHeight: 0, cost: 2n ** 64n - 1n }],
  BlockConfirmation: [
    {
      supplierPeerId: PEER_A,
      blockHeight: 5,
      taskIds: [filled(16, 1), filled(16, 2)],
      timestampMs: 1,
      rewardAddress: `0x${'cd'.repeat(20)}`
    }
  ],
  ReceiptBatch: [batch(), { ...batch(), blockHeight: 0, receipts: [{ ...receipt(), blockHeight: 0 }] }],
  RegistryWrite: [write(), { id: Number.MAX_SAFE_INTEGER, envelope: envelope() }],
  RegistryAck: [
    ack(),
    { id: 2, ok: false, replicas: 0, duplicate: false, errorCode: 'ERR_QUORUM', errorMessage: 'only 1 of 3 replicas', retryable: true },
    { ...ack(), duplicate: true }
  ],
  BlockSummaries: [summaries(), { ...summaries(), blocks: [] }],
  SyncRequest: [spansRequest(), itemsRequest(), { items: { blockHeight: 0, have: [] } }, { spans: { fromBlock: 7, toBlock: 7, span: 1 } }],
  SyncResponse: [syncResponse(), { spans: [], envelopes: [] }],
  DayReportSignature: [dayReportSignature()],
  ModelKeyRequest: [{ modelId: 'ab'.repeat(32) }],
  ModelKeyResponse: [
    { key: filled(32, 9), errorCode: '', errorMessage: '' },
    { key: new Uint8Array(0), errorCode: 'ERR_UNKNOWN_MODEL', errorMessage: 'no key for this model' }
  ]
}

function expectInvalid(fn: () => unknown, field: string): InvalidMessageError {
  try {
    fn()
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(InvalidMessageError)
    expect((err as Error).message).to.include(field)
    return err as InvalidMessageError
  }
  throw new Error(`expected InvalidMessageError naming ${field}`)
}

function expectTooLarge(fn: () => unknown): MessageTooLargeError {
  try {
    fn()
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(MessageTooLargeError)
    return err as MessageTooLargeError
  }
  throw new Error('expected MessageTooLargeError')
}

interface Generated {
  encode(obj: never): Uint8Array
}

/**
 * A rule: mutate a valid sample; the codec must reject it naming `field`, on
 * encode and, when the bad value survives the wire (`wire`), on decode of the
 * raw protons encoding as well.
 */
interface Rule<T> {
  name: string
  field: string
  mutate(msg: T): unknown
  wire?: boolean
}

function rules<T>(codec: MessageCodec<T>, generated: Generated, sample: () => T, list: Array<Rule<T>>): void {
  describe(`${codec.name} schema`, () => {
    for (const rule of list) {
      it(`rejects ${rule.name}`, () => {
        const bad = rule.mutate(sample()) as T
        expectInvalid(() => codec.encode(bad), `${codec.name}${rule.field}`)
        expectInvalid(() => codec.validate(bad), `${codec.name}${rule.field}`)
        if (rule.wire !== false) {
          // repeated-field caps trip while parsing, where only the field's own name is known
          const raw = generated.encode(bad as never)
          expectInvalid(
            () => codec.decode(raw),
            rule.field
              .split('.')
              .pop()!
              .replace(/\[\d+\]$/, '')
          )
        }
      })
    }
  })
}

const set =
  <T, K extends keyof T>(key: K, value: unknown) =>
  (msg: T): T => ({ ...msg, [key]: value })

describe('wire codecs', () => {
  describe('round trip', () => {
    for (const [name, codec] of Object.entries(CODECS) as Array<[keyof typeof CODECS, MessageCodec<unknown>]>) {
      it(`${name}: decode(encode(x)) deep-equals x`, () => {
        for (const sample of SAMPLES[name]) {
          const bytes = codec.encode(sample)
          expect(bytes.byteLength).to.be.at.most(codec.maxBytes)
          expect(codec.decode(bytes)).to.deep.equal(sample)
          // Uint8ArrayList input (what lpStream hands out) decodes the same
          const split = new Uint8ArrayList(bytes.subarray(0, 3), bytes.subarray(3))
          expect(codec.decode(split)).to.deep.equal(sample)
        }
      })
    }
  })

  rules(TaskRequestCodec, pb.TaskRequest, request, [
    { name: 'a 15-byte task id', field: '.taskId', mutate: set('taskId', filled(15)) },
    { name: 'a missing task id', field: '.taskId', mutate: set('taskId', new Uint8Array(0)) },
    { name: 'a 31-byte nonce', field: '.nonce', mutate: set('nonce', filled(31)) },
    { name: 'a missing response key', field: '.responseKey', mutate: set('responseKey', new Uint8Array(0)) },
    { name: 'a 33-byte response key', field: '.responseKey', mutate: set('responseKey', filled(33)) },
    { name: 'an uppercase model id', field: '.modelId', mutate: set('modelId', MODEL_ID.toUpperCase()) },
    { name: 'a 63-char model id', field: '.modelId', mutate: set('modelId', MODEL_ID.slice(1)) },
    { name: 'an empty game id', field: '.gameId', mutate: set('gameId', '') },
    { name: 'a 129-char game id', field: '.gameId', mutate: set('gameId', 'g'.repeat(129)) },
    { name: 'a session id with spaces', field: '.sessionId', mutate: set('sessionId', 'a b') },
    { name: 'a 129-char session id', field: '.sessionId', mutate: set('sessionId', 's'.repeat(129)) },
    { name: 'neither chat nor prompt', field: '.chat', mutate: set('chat', undefined) },
    { name: 'both chat and prompt', field: '.chat', mutate: set('prompt', 'hi'), wire: false },
    { name: 'an empty prompt', field: '.prompt', mutate: m => ({ ...m, chat: undefined, prompt: '' }) },
    {
      name: 'a prompt over the character cap',
      field: '.prompt',
      mutate: m => ({ ...m, chat: undefined, prompt: 'x'.repeat(FIELD_LIMITS.promptChars + 1) })
    },
    { name: 'an empty chat', field: '.chat.messages', mutate: set('chat', { messages: [] }) },
    {
      name: 'too many chat messages',
      field: '.chat.messages',
      mutate: set('chat', { messages: Array.from({ length: FIELD_LIMITS.chatMessages + 1 }, () => ({ role: 'user', content: 'x' })) })
    },
    { name: 'an uppercase role', field: '.chat.messages[0].role', mutate: set('chat', { messages: [{ role: 'User', content: 'x' }] }) },
    {
      name: 'a 33-char role',
      field: '.chat.messages[0].role',
      mutate: set('chat', { messages: [{ role: 'r'.repeat(33), content: 'x' }] })
    },
    {
      name: 'chat contents over the total cap',
      field: '.chat.messages',
      mutate: set('chat', {
        messages: [
          { role: 'user', content: 'x'.repeat(FIELD_LIMITS.promptChars / 2) },
          { role: 'user', content: 'x'.repeat(FIELD_LIMITS.promptChars / 2 + 1) }
        ]
      })
    },
    {
      name: 'a lone surrogate',
      field: '.chat.messages[1].content',
      mutate: set('chat', {
        messages: [
          { role: 'a', content: '' },
          { role: 'a', content: '\ud800' }
        ]
      })
    },
    { name: 'missing params', field: '.params', mutate: set('params', undefined) },
    { name: 'maxTokens 0', field: '.params.maxTokens', mutate: m => ({ ...m, params: { ...m.params, maxTokens: 0 } }) },
    {
      name: 'maxTokens over the cap',
      field: '.params.maxTokens',
      mutate: m => ({ ...m, params: { ...m.params, maxTokens: FIELD_LIMITS.maxTokens + 1 } })
    },
    { name: 'temperature NaN', field: '.params.temperature', mutate: m => ({ ...m, params: { ...m.params, temperature: Number.NaN } }) },
    { name: 'temperature 2.5', field: '.params.temperature', mutate: m => ({ ...m, params: { ...m.params, temperature: 2.5 } }) },
    { name: 'temperature -0.5', field: '.params.temperature', mutate: m => ({ ...m, params: { ...m.params, temperature: -0.5 } }) },
    { name: 'topP 1.5', field: '.params.topP', mutate: m => ({ ...m, params: { ...m.params, topP: 1.5 } }) },
    { name: 'topP Infinity', field: '.params.topP', mutate: m => ({ ...m, params: { ...m.params, topP: Number.POSITIVE_INFINITY } }) },
    { name: 'an unsafe seed', field: '.params.seed', mutate: m => ({ ...m, params: { ...m.params, seed: 2 ** 54 } }), wire: false },
    { name: 'five stop strings', field: '.params.stop', mutate: m => ({ ...m, params: { ...m.params, stop: ['a', 'b', 'c', 'd', 'e'] } }) },
    {
      name: 'a 65-char stop string',
      field: '.params.stop[1]',
      mutate: m => ({ ...m, params: { ...m.params, stop: ['a', 'b'.repeat(65)] } })
    },
    { name: 'an empty stop string', field: '.params.stop[0]', mutate: m => ({ ...m, params: { ...m.params, stop: [''] } }) },
    {
      name: 'an oversized json schema',
      field: '.params.jsonSchema',
      mutate: m => ({ ...m, params: { ...m.params, jsonSchema: '{'.repeat(FIELD_LIMITS.jsonSchemaChars + 1) } })
    },
    { name: 'deadline 0', field: '.deadlineMs', mutate: set('deadlineMs', 0) },
    { name: 'an unsafe deadline', field: '.deadlineMs', mutate: set('deadlineMs', 2 ** 53), wire: false },
    { name: 'a fractional deadline', field: '.deadlineMs', mutate: set('deadlineMs', 1.5), wire: false },
    { name: 'a string deadline', field: '.deadlineMs', mutate: set('deadlineMs', '5'), wire: false }
  ])

  rules(CapacityAdvertCodec, pb.CapacityAdvert, advert, [
    { name: 'a garbage peer id', field: '.peerId', mutate: set('peerId', 'not-a-peer') },
    { name: 'a missing peer id', field: '.peerId', mutate: set('peerId', '') },
    {
      name: 'a non-multiaddr',
      field: '.multiaddrs[1]',
      mutate: m => ({ ...m, multiaddrs: [m.multiaddrs[0], new Uint8Array([0xff, 0xff, 3])] })
    },
    { name: 'an empty multiaddr', field: '.multiaddrs[0]', mutate: set('multiaddrs', [new Uint8Array(0)]) },
    {
      name: '17 multiaddrs',
      field: '.multiaddrs',
      mutate: m => ({ ...m, multiaddrs: Array.from({ length: 17 }, () => m.multiaddrs[0]) })
    },
    {
      name: '33 models',
      field: '.models',
      mutate: m => ({ ...m, models: Array.from({ length: 33 }, (_, i) => ({ ...m.models[0], id: i.toString(16).padStart(64, '0') })) })
    },
    { name: 'a bad model id', field: '.models[0].id', mutate: m => ({ ...m, models: [{ ...m.models[0], id: 'zz' }] }) },
    { name: 'a duplicate model id', field: '.models[1].id', mutate: m => ({ ...m, models: [m.models[0], m.models[0]] }) },
    { name: 'an empty model name', field: '.models[0].name', mutate: m => ({ ...m, models: [{ ...m.models[0], name: '' }] }) },
    { name: 'a model name with a newline', field: '.models[0].name', mutate: m => ({ ...m, models: [{ ...m.models[0], name: 'a\nb' }] }) },
    { name: 'context size 0', field: '.models[0].contextSize', mutate: m => ({ ...m, models: [{ ...m.models[0], contextSize: 0 }] }) },
    {
      name: 'a negative price',
      field: '.models[0].pricePer1kTokens',
      mutate: m => ({ ...m, models: [{ ...m.models[0], pricePer1kTokens: -1n }] }),
      wire: false
    },
    {
      name: 'a number price',
      field: '.models[0].pricePer1kTokens',
      mutate: m => ({ ...m, models: [{ ...m.models[0], pricePer1kTokens: 5 }] }),
      wire: false
    },
    { name: 'free slots above total', field: '.freeSlots', mutate: set('freeSlots', 5) },
    { name: 'zero total slots', field: '.totalSlots', mutate: m => ({ ...m, totalSlots: 0, freeSlots: 0 }) },
    { name: 'NaN tokens/s', field: '.tokensPerSecond', mutate: set('tokensPerSecond', Number.NaN) },
    { name: 'negative tokens/s', field: '.tokensPerSecond', mutate: set('tokensPerSecond', -1) },
    { name: 'a short reward address', field: '.rewardAddress', mutate: set('rewardAddress', '0x1234') },
    { name: 'a reward address without 0x', field: '.rewardAddress', mutate: set('rewardAddress', 'ab'.repeat(21)) },
    { name: 'timestamp 0', field: '.timestampMs', mutate: set('timestampMs', 0) }
  ])

  rules(TaskOpenCodec, pb.TaskOpen, open, [
    { name: 'version 2', field: '.version', mutate: set('version', 2) },
    { name: 'version 0 (absent)', field: '.version', mutate: set('version', 0) },
    { name: 'an empty task id', field: '.taskId', mutate: set('taskId', new Uint8Array(0)) },
    { name: 'an empty sealed request', field: '.sealedRequest', mutate: set('sealedRequest', new Uint8Array(0)) },
    {
      name: 'an oversized sealed request',
      field: '.sealedRequest',
      mutate: set('sealedRequest', filled(FIELD_LIMITS.sealedRequestBytes + 1))
    },
    { name: 'both a sealed request and a box header', field: '.sealedRequest', mutate: set('requestBoxHeader', filled(SEAL_HEADER_LENGTH)) }
  ])

  rules(TaskOpenCodec, pb.TaskOpen, announcement, [
    { name: 'a short box header', field: '.requestBoxHeader', mutate: set('requestBoxHeader', filled(SEAL_HEADER_LENGTH - 1)) },
    { name: 'an empty box header', field: '.requestBoxHeader', mutate: set('requestBoxHeader', new Uint8Array(0)) }
  ])

  rules(TaskChunkCodec, pb.TaskChunk, chunk, [
    { name: 'too many token ids', field: '.tokenIds', mutate: set('tokenIds', new Array(FIELD_LIMITS.tokenIdsPerChunk + 1).fill(1)) },
    { name: 'a negative token id', field: '.tokenIds[0]', mutate: set('tokenIds', [-1]), wire: false },
    { name: 'text over the cap', field: '.text', mutate: set('text', 'x'.repeat(FIELD_LIMITS.chunkTextChars + 1)) },
    { name: 'finish reason UNSPECIFIED', field: '.finishReason', mutate: set('finishReason', WireFinishReason.UNSPECIFIED) },
    { name: 'an unknown finish reason', field: '.finishReason', mutate: set('finishReason', 'DONE'), wire: false },
    {
      name: 'an error without finish reason ERROR',
      field: '.finishReason',
      mutate: m => ({ ...m, error: { code: 'E', message: '', retryable: false } })
    },
    {
      name: 'a bad error code',
      field: '.error.code',
      mutate: m => ({ ...m, finishReason: WireFinishReason.ERROR, error: { code: 'has space', message: '', retryable: false } })
    },
    {
      name: 'an oversized error message',
      field: '.error.message',
      mutate: m => ({ ...m, finishReason: WireFinishReason.ERROR, error: { code: 'E', message: 'm'.repeat(1025), retryable: false } })
    },
    { name: 'an oversized proof', field: '.proof', mutate: set('proof', filled(FIELD_LIMITS.proofBytes + 1)) },
    { name: 'a fractional seq', field: '.seq', mutate: set('seq', 0.5), wire: false }
  ])

  rules(TaskFrameCodec, pb.TaskFrame, () => ({ sealed: filled(10) }), [
    { name: 'an empty frame', field: '.sealed', mutate: set('sealed', new Uint8Array(0)) },
    { name: 'an oversized frame', field: '.sealed', mutate: set('sealed', filled(FIELD_LIMITS.sealedChunkBytes + 1)) }
  ])

  rules(ReceiptCodec, pb.Receipt, receipt, [
    { name: 'a 31-byte prompt hash', field: '.promptHash', mutate: set('promptHash', filled(31)) },
    { name: 'a 33-byte output hash', field: '.outputHash', mutate: set('outputHash', filled(33)) },
    { name: 'verdict UNSPECIFIED', field: '.verdict', mutate: set('verdict', ProofVerdict.UNSPECIFIED) },
    { name: 'a garbage supplier', field: '.supplierPeerId', mutate: set('supplierPeerId', 'Qm123') },
    { name: 'a missing distributor', field: '.distributorPeerId', mutate: set('distributorPeerId', '') },
    { name: 'a bad model id', field: '.modelId', mutate: set('modelId', 'x') },
    { name: 'a cost above 2^64-1', field: '.cost', mutate: set('cost', 2n ** 64n), wire: false },
    { name: 'a number cost', field: '.cost', mutate: set('cost', 45), wire: false },
    { name: 'timestamp 0', field: '.timestampMs', mutate: set('timestampMs', 0) }
  ])

  rules(
    BlockConfirmationCodec,
    pb.BlockConfirmation,
    () => ({ supplierPeerId: PEER_A, blockHeight: 5, taskIds: [filled(16)], timestampMs: 1, rewardAddress: `0x${'cd'.repeat(20)}` }),
    [
      { name: 'a 15-byte task id', field: '.taskIds[1]', mutate: m => ({ ...m, taskIds: [filled(16), filled(15)] }) },
      { name: 'a missing supplier', field: '.supplierPeerId', mutate: set('supplierPeerId', '') },
      { name: 'an unsafe block height', field: '.blockHeight', mutate: set('blockHeight', 2 ** 53 + 2), wire: false }
    ]
  )

  rules(ReceiptBatchCodec, pb.ReceiptBatch, batch, [
    { name: 'no receipts', field: '.receipts', mutate: set('receipts', []) },
    {
      name: 'too many receipts',
      field: '.receipts',
      mutate: m => ({ ...m, receipts: Array.from({ length: FIELD_LIMITS.receiptsPerBatch + 1 }, () => m.receipts[0]) })
    },
    {
      name: 'a receipt naming another distributor',
      field: '.receipts[1].distributorPeerId',
      mutate: m => ({ ...m, receipts: [m.receipts[0], { ...m.receipts[1], distributorPeerId: PEER_A }] })
    },
    {
      name: 'a receipt from another block',
      field: '.receipts[0].blockHeight',
      mutate: m => ({ ...m, receipts: [{ ...m.receipts[0], blockHeight: 13 }, m.receipts[1]] })
    },
    {
      name: 'a batch for another block than its receipts',
      field: '.receipts[0].blockHeight',
      mutate: set('blockHeight', 11)
    },
    {
      name: 'an invalid receipt',
      field: '.receipts[1].promptHash',
      mutate: m => ({ ...m, receipts: [m.receipts[0], { ...m.receipts[1], promptHash: filled(31) }] })
    },
    { name: 'a garbage distributor', field: '.distributorPeerId', mutate: set('distributorPeerId', 'Qm123') },
    { name: 'timestamp 0', field: '.timestampMs', mutate: set('timestampMs', 0) }
  ])

  rules(RegistryWriteCodec, pb.RegistryWrite, write, [
    { name: 'a missing envelope', field: '.envelope', mutate: set('envelope', undefined) },
    {
      name: 'an empty envelope payload',
      field: '.envelope.payload',
      mutate: m => ({ ...m, envelope: { ...m.envelope!, payload: new Uint8Array(0) } })
    },
    {
      name: 'an envelope payload larger than a block confirmation',
      field: '.envelope.payload',
      mutate: m => ({ ...m, envelope: { ...m.envelope!, payload: filled(LIMITS.blockConfirmation + 1) } })
    },
    {
      name: 'an empty envelope signature',
      field: '.envelope.signature',
      mutate: m => ({ ...m, envelope: { ...m.envelope!, signature: new Uint8Array(0) } })
    },
    {
      name: 'an envelope payload type with spaces',
      field: '.envelope.payloadType',
      mutate: m => ({ ...m, envelope: { ...m.envelope!, payloadType: 'gcn receipts' } })
    },
    { name: 'an unsafe id', field: '.id', mutate: set('id', 2 ** 53), wire: false }
  ])

  rules(RegistryAckCodec, pb.RegistryAck, ack, [
    { name: 'over 1024 replicas', field: '.replicas', mutate: set('replicas', 1025) },
    { name: 'a 65-char error code', field: '.errorCode', mutate: set('errorCode', 'E'.repeat(65)) },
    {
      name: 'an oversized error message',
      field: '.errorMessage',
      mutate: set('errorMessage', 'm'.repeat(FIELD_LIMITS.errorMessageChars + 1))
    },
    { name: 'a non-boolean ok', field: '.ok', mutate: set('ok', 1), wire: false },
    { name: 'a negative id', field: '.id', mutate: set('id', -1), wire: false }
  ])

  rules(BlockSummariesCodec, pb.BlockSummaries, summaries, [
    {
      name: 'a count without a root',
      field: '.blocks[1].root',
      mutate: m => ({ ...m, blocks: [m.blocks[0], { ...m.blocks[1], count: 3 }] })
    },
    { name: 'a 5-byte root', field: '.blocks[0].root', mutate: m => ({ ...m, blocks: [{ ...m.blocks[0], root: filled(5) }] }) },
    {
      name: 'a 33-byte root',
      field: '.blocks[1].root',
      mutate: m => ({ ...m, blocks: [m.blocks[0], { ...m.blocks[1], root: filled(33) }] })
    },
    {
      name: 'too many blocks',
      field: '.blocks',
      mutate: m => ({ ...m, blocks: Array.from({ length: FIELD_LIMITS.blockSummariesPerMessage + 1 }, () => m.blocks[0]) })
    },
    {
      name: 'a count above uint32',
      field: '.blocks[0].count',
      mutate: m => ({ ...m, blocks: [{ ...m.blocks[0], count: 2 ** 32 }] }),
      wire: false
    },
    { name: 'a garbage registry peer id', field: '.registryPeerId', mutate: set('registryPeerId', 'not-a-peer') },
    { name: 'timestamp 0', field: '.timestampMs', mutate: set('timestampMs', 0) }
  ])

  rules(SyncRequestCodec, pb.SyncRequest, spansRequest, [
    { name: 'neither spans nor items', field: '.spans', mutate: set('spans', undefined) },
    { name: 'both spans and items', field: '.spans', mutate: m => ({ ...m, items: itemsRequest().items }) },
    { name: 'toBlock below fromBlock', field: '.spans.toBlock', mutate: () => ({ spans: { fromBlock: 10, toBlock: 9, span: 16 } }) },
    { name: 'span 0', field: '.spans.span', mutate: () => ({ spans: { fromBlock: 0, toBlock: 9, span: 0 } }) },
    { name: 'span over the cap', field: '.spans.span', mutate: () => ({ spans: { fromBlock: 0, toBlock: 9, span: 1_000_001 } }) },
    { name: 'a 31-byte have id', field: '.items.have[1]', mutate: () => ({ items: { blockHeight: 1, have: [filled(32), filled(31)] } }) },
    {
      name: 'too many have ids',
      field: '.items.have',
      mutate: () => ({ items: { blockHeight: 1, have: new Array(FIELD_LIMITS.haveIdsPerSync + 1).fill(filled(32)) } })
    }
  ])

  rules(DayReportSignatureCodec, pb.DayReportSignature, dayReportSignature, [
    { name: 'a 31-byte root', field: '.root', mutate: set('root', filled(31)) },
    { name: 'a 64-byte signature', field: '.signature', mutate: set('signature', filled(64)) },
    { name: 'a signer that is not an address', field: '.signer', mutate: set('signer', '0x1234') },
    { name: 'a short total', field: '.totalDebit', mutate: set('totalDebit', filled(8)) }
  ])

  rules(SyncResponseCodec, pb.SyncResponse, syncResponse, [
    { name: 'an empty envelope', field: '.envelopes[0]', mutate: set('envelopes', [new Uint8Array(0)]) },
    { name: 'a 5-byte span root', field: '.spans[0].root', mutate: m => ({ ...m, spans: [{ ...m.spans[0], root: filled(5) }] }) },
    {
      name: 'too many spans',
      field: '.spans',
      mutate: m => ({ ...m, spans: new Array(FIELD_LIMITS.spansPerResponse + 1).fill(m.spans[0]) })
    },
    {
      name: 'too many envelopes',
      field: '.envelopes',
      mutate: m => ({ ...m, envelopes: new Array(FIELD_LIMITS.envelopesPerResponse + 1).fill(filled(1)) })
    }
  ])

  rules(SignedEnvelopeCodec, pb.SignedEnvelope, envelope, [
    { name: 'an empty payload type', field: '.payloadType', mutate: set('payloadType', '') },
    { name: 'a payload type with spaces', field: '.payloadType', mutate: set('payloadType', 'gcn offer') },
    { name: 'a 65-char payload type', field: '.payloadType', mutate: set('payloadType', 'p'.repeat(65)) },
    { name: 'an empty payload', field: '.payload', mutate: set('payload', new Uint8Array(0)) },
    { name: 'an oversized public key', field: '.publicKey', mutate: set('publicKey', filled(FIELD_LIMITS.publicKeyBytes + 1)) },
    { name: 'an empty signature', field: '.signature', mutate: set('signature', new Uint8Array(0)) }
  ])

  rules(AdvertEnvelopeCodec, pb.SignedEnvelope, envelope, [
    { name: 'a payload larger than an advert', field: '.payload', mutate: set('payload', filled(LIMITS.capacityAdvert + 1)) }
  ])

  describe('nested codecs standalone', () => {
    it('validate the same rules as inside their parents', () => {
      expectInvalid(() => ModelOfferCodec.encode({ ...advert().models[0], id: 'x' }), 'ModelOffer.id')
      expectInvalid(() => ChatMessageCodec.encode({ role: '', content: 'x' }), 'ChatMessage.role')
      expectInvalid(() => TaskParamsCodec.encode({ maxTokens: 1, stop: [], topP: -1 }), 'TaskParams.topP')
      expectInvalid(() => UsageCodec.encode({ promptTokens: 2 ** 32, completionTokens: 0 }), 'Usage.promptTokens')
      expectInvalid(() => TaskErrorCodec.encode({ code: 'E', message: '', retryable: 1 as unknown as boolean }), 'TaskError.retryable')
    })
  })

  describe('envelope codec factory', () => {
    it('pins the payload type when asked', () => {
      const codec = createEnvelopeCodec({ name: 'OfferEnvelope', maxPayloadBytes: 100, payloadType: 'gcn/offer/1' })
      expect(codec.maxBytes).to.equal(100 + LIMITS.envelopeOverhead)
      const env = { ...envelope(), payload: filled(50) }
      expect(codec.decode(codec.encode(env))).to.deep.equal(env)
      expectInvalid(() => codec.encode({ ...env, payloadType: 'gcn/receipt/1' }), 'OfferEnvelope.payloadType')
      expectInvalid(() => codec.decode(pb.SignedEnvelope.encode({ ...env, payloadType: 'gcn/receipt/1' })), 'payloadType')
    })
  })

  describe('malformed input', () => {
    it('wraps every parser failure in InvalidMessageError with the cause kept', () => {
      const garbage = [
        new Uint8Array([0x0a, 0x05, 0x61]), // string field longer than the buffer
        new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // endless varint tag
        new Uint8Array([0x0f]), // wire type 7
        new Uint8Array(4000).fill(0x7b) // deeply nested groups of unknown field 15
      ]
      for (const codec of Object.values(CODECS) as Array<MessageCodec<unknown>>) {
        for (const bytes of garbage) {
          if (bytes.byteLength > codec.maxBytes) continue
          const err = expectInvalid(() => codec.decode(bytes), codec.name)
          expect(err.cause).to.not.equal(undefined)
        }
      }
    })

    it('rejects uint64 values above MAX_SAFE_INTEGER on the wire', () => {
      // protons cannot encode these from numbers, so append the varint by hand (the last occurrence wins);
      // its reader refuses them while parsing, and the schema would refuse them after
      const withVarint = (bytes: Uint8Array, tag: number, value: bigint): Uint8Array => {
        const out = [...bytes, tag]
        while (value >= 0x80n) {
          out.push(Number(value & 0x7fn) | 0x80)
          value >>= 7n
        }
        out.push(Number(value))
        return Uint8Array.from(out)
      }
      expectInvalid(() => TaskRequestCodec.decode(withVarint(TaskRequestCodec.encode(request()), 0x48, 2n ** 53n)), 'TaskRequest')
      const conf = { supplierPeerId: PEER_A, blockHeight: 1, taskIds: [], timestampMs: 1, rewardAddress: `0x${'00'.repeat(20)}` }
      expectInvalid(
        () => BlockConfirmationCodec.decode(withVarint(BlockConfirmationCodec.encode(conf), 0x10, 2n ** 55n)),
        'BlockConfirmation'
      )
      expectInvalid(
        () => BlockConfirmationCodec.decode(withVarint(BlockConfirmationCodec.encode(conf), 0x10, 2n ** 63n)),
        'BlockConfirmation'
      )
    })

    it('rejects an unknown enum value on the wire', () => {
      const bytes = Uint8Array.from([...TaskChunkCodec.encode(chunk()), 0x20, 0x09]) // finish_reason = 9
      expectInvalid(() => TaskChunkCodec.decode(bytes), 'TaskChunk')
      const r = Uint8Array.from([...ReceiptCodec.encode(receipt()), 0x68, 0x07]) // verdict = 7
      expectInvalid(() => ReceiptCodec.decode(r), 'Receipt')
    })

    it('rejects an empty buffer as missing required fields', () => {
      expectInvalid(() => TaskRequestCodec.decode(new Uint8Array(0)), 'TaskRequest.taskId')
      expectInvalid(() => TaskOpenCodec.decode(new Uint8Array(0)), 'TaskOpen.version')
    })

    it('rejects non-bytes input', () => {
      expectInvalid(() => TaskFrameCodec.decode(null as unknown as Uint8Array), 'TaskFrame')
      expectInvalid(() => TaskFrameCodec.decode('abc' as unknown as Uint8Array), 'TaskFrame')
    })

    it('rejects a non-object message on encode', () => {
      expectInvalid(() => TaskFrameCodec.encode(null as never), 'TaskFrame')
      expectInvalid(() => TaskRequestCodec.encode({ ...request(), params: 5 as never }), 'TaskRequest.params')
    })

    it('ignores unknown fields (forward compatibility)', () => {
      const bytes = Uint8Array.from([...TaskFrameCodec.encode({ sealed: filled(4) }), 0xa0, 0x06, 0x01]) // field 100 varint
      expect(TaskFrameCodec.decode(bytes)).to.deep.equal({ sealed: filled(4) })
    })
  })

  describe('size caps', () => {
    it('rejects oversized input with MessageTooLargeError before parsing', () => {
      for (const codec of Object.values(CODECS) as Array<MessageCodec<unknown>>) {
        expectTooLarge(() => codec.decode(new Uint8Array(codec.maxBytes + 1)))
        expectTooLarge(() => codec.decode(new Uint8ArrayList(new Uint8Array(codec.maxBytes), new Uint8Array(1))))
      }
    })

    it('rejects a schema-valid frame that is over the size cap on the wire', () => {
      const big = {
        ...advert(),
        models: Array.from({ length: 32 }, (_, i) => ({
          ...advert().models[0],
          id: i.toString(16).padStart(64, '0'),
          name: '中'.repeat(128)
        }))
      }
      big.multiaddrs = Array.from(
        { length: 16 },
        () => multiaddr(`/dns4/${'a'.repeat(200)}.example/tcp/4001`).bytes as Uint8Array<ArrayBuffer>
      )
      expectTooLarge(() => CapacityAdvertCodec.encode(big))
      expectTooLarge(() => CapacityAdvertCodec.decode(pb.CapacityAdvert.encode(big)))
    })

    it('rejects encodes over maxBytes with MessageTooLargeError', () => {
      const emoji = '🙂'.repeat(FIELD_LIMITS.chunkTextChars / 2)
      const big: TaskChunk = {
        ...chunk(),
        text: emoji,
        tokenIds: new Array(4096).fill(0xffff_ffff),
        proof: filled(FIELD_LIMITS.proofBytes)
      }
      expectTooLarge(() => TaskChunkCodec.encode(big))
      const prompt = 'é'.repeat(FIELD_LIMITS.promptChars)
      expectTooLarge(() => TaskRequestCodec.encode({ ...promptRequest(), prompt }))
    })

    it('keeps the limits consistent with each other and with sealing', () => {
      expect(Object.isFrozen(LIMITS)).to.equal(true)
      expect(Object.isFrozen(FIELD_LIMITS)).to.equal(true)
      expect(LIMITS.taskRequest + SEAL_OVERHEAD).to.be.at.most(FIELD_LIMITS.sealedRequestBytes)
      expect(LIMITS.taskChunk + SEAL_OVERHEAD).to.be.at.most(FIELD_LIMITS.sealedChunkBytes)
      const maxOpen = TaskOpenCodec.encode({ ...open(), sealedRequest: filled(FIELD_LIMITS.sealedRequestBytes) })
      expect(maxOpen.byteLength).to.be.at.most(LIMITS.taskOpen)
      const maxFrame = TaskFrameCodec.encode({ sealed: filled(FIELD_LIMITS.sealedChunkBytes) })
      expect(maxFrame.byteLength).to.be.at.most(LIMITS.taskFrame)
      expect(LIMITS.envelope).to.equal(LIMITS.blockConfirmation + LIMITS.envelopeOverhead)
      expect(LIMITS.advertEnvelope).to.equal(LIMITS.capacityAdvert + LIMITS.envelopeOverhead)
      expect(SignedEnvelopeCodec.maxBytes).to.equal(LIMITS.envelope)
      expect(AdvertEnvelopeCodec.maxBytes).to.equal(LIMITS.advertEnvelope)
      const maxBytes = (Object.values(CODECS) as Array<MessageCodec<unknown>>).map(c => c.maxBytes)
      expect(LIMITS.maxFrame).to.equal(Math.max(...maxBytes))
    })

    it('fits the largest schema-valid ASCII advert in an advert envelope', () => {
      const models = Array.from({ length: FIELD_LIMITS.models }, (_, i) => ({
        id: i.toString(16).padStart(64, '0'),
        name: 'n'.repeat(FIELD_LIMITS.modelNameChars),
        contextSize: FIELD_LIMITS.contextSize,
        pricePer1kTokens: 2n ** 64n - 1n
      }))
      const ma = multiaddr(`/ip6/2001:db8::1/tcp/65535/p2p/${PEER_A}`).bytes as Uint8Array<ArrayBuffer>
      const big: CapacityAdvert = {
        ...advert(),
        models,
        multiaddrs: new Array(FIELD_LIMITS.multiaddrs).fill(ma),
        queueDepth: FIELD_LIMITS.queueDepth,
        seq: Number.MAX_SAFE_INTEGER,
        timestampMs: Number.MAX_SAFE_INTEGER
      }
      const payload = CapacityAdvertCodec.encode(big) as Uint8Array<ArrayBuffer>
      const env = AdvertEnvelopeCodec.encode({ payloadType: 'p'.repeat(64), payload, publicKey: filled(128), signature: filled(128) })
      expect(AdvertEnvelopeCodec.decode(env).payload).to.deep.equal(payload)
    })

    it('fits the largest SignedEnvelope in a RegistryWrite', () => {
      const env = { payloadType: 'p'.repeat(64), payload: filled(LIMITS.blockConfirmation), publicKey: filled(128), signature: filled(128) }
      const bytes = RegistryWriteCodec.encode({ id: Number.MAX_SAFE_INTEGER, envelope: env })
      expect(bytes.byteLength).to.be.at.most(LIMITS.registryWrite)
      expect(RegistryWriteCodec.decode(bytes).envelope?.payload.byteLength).to.equal(LIMITS.blockConfirmation)
    })

    it('fits a full ReceiptBatch of typical receipts, also inside an envelope', () => {
      const height = Number.MAX_SAFE_INTEGER
      const receipts = Array.from({ length: FIELD_LIMITS.receiptsPerBatch }, (_, i) => {
        const taskId = new Uint8Array(16)
        new DataView(taskId.buffer).setUint32(0, i)
        const max = 2n ** 64n - 1n
        return {
          ...receipt(),
          taskId,
          blockHeight: height,
          promptTokens: 0xffff_ffff,
          completionTokens: 0xffff_ffff,
          pricePer1kTokens: max,
          cost: max
        }
      })
      const payload = ReceiptBatchCodec.encode({ distributorPeerId: PEER_B, blockHeight: height, receipts, timestampMs: height })
      expect(payload.byteLength).to.be.at.most(LIMITS.receiptBatch)
      expect(ReceiptBatchCodec.decode(payload).receipts).to.have.length(FIELD_LIMITS.receiptsPerBatch)
      const env = {
        payloadType: RECEIPTS_PAYLOAD,
        payload: payload as Uint8Array<ArrayBuffer>,
        publicKey: filled(128),
        signature: filled(128)
      }
      expect(SignedEnvelopeCodec.decode(SignedEnvelopeCodec.encode(env)).payload.byteLength).to.equal(payload.byteLength)
    })

    it('fits the largest SyncRequest and a full BlockSummaries gossip message', () => {
      const have = Array.from({ length: FIELD_LIMITS.haveIdsPerSync }, () => filled(32))
      const req = SyncRequestCodec.encode({ items: { blockHeight: Number.MAX_SAFE_INTEGER, have } })
      expect(SyncRequestCodec.decode(req).items?.have).to.have.length(FIELD_LIMITS.haveIdsPerSync)
      const blocks = Array.from({ length: FIELD_LIMITS.blockSummariesPerMessage }, () => ({
        blockHeight: Number.MAX_SAFE_INTEGER,
        count: 0xffff_ffff,
        root: filled(32)
      }))
      const gossip = BlockSummariesCodec.encode({ registryPeerId: PEER_A, blocks, timestampMs: Number.MAX_SAFE_INTEGER })
      expect(BlockSummariesCodec.decode(gossip).blocks).to.have.length(FIELD_LIMITS.blockSummariesPerMessage)
    })

    it('fits a BlockConfirmation with the maximum number of task ids, also inside an envelope', function () {
      this.timeout(20_000)
      const taskIds = Array.from({ length: FIELD_LIMITS.taskIdsPerConfirmation }, (_, i) => {
        const id = new Uint8Array(16)
        new DataView(id.buffer).setUint32(0, i)
        return id
      })
      const msg = {
        supplierPeerId: PEER_A,
        blockHeight: Number.MAX_SAFE_INTEGER,
        taskIds,
        timestampMs: Number.MAX_SAFE_INTEGER,
        rewardAddress: `0x${'ff'.repeat(20)}`
      }
      const bytes = BlockConfirmationCodec.encode(msg) as Uint8Array<ArrayBuffer>
      expect(BlockConfirmationCodec.decode(bytes).taskIds).to.have.length(taskIds.length)
      const env = SignedEnvelopeCodec.encode({
        payloadType: 'p'.repeat(64),
        payload: bytes,
        publicKey: filled(128),
        signature: filled(128)
      })
      expect(SignedEnvelopeCodec.decode(env).payload.byteLength).to.equal(bytes.byteLength)
      // one more id is refused while parsing
      const over = pb.BlockConfirmation.encode({ ...msg, taskIds: [...taskIds, filled(16)] })
      expectInvalid(() => BlockConfirmationCodec.decode(over), 'taskIds')
    })
  })
})

describe('wire codecs: 64-bit money fields', () => {
  // protons-runtime 7 wrote bigint uint64 values in [2^31, 2^32) as zeros (see src/pb/uint64.ts).
  const values = [0n, 1n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n]
  it('round-trips every magnitude of price and cost in receipts', () => {
    for (const v of values) {
      const decoded = ReceiptCodec.decode(ReceiptCodec.encode({ ...receipt(), pricePer1kTokens: v, cost: v }))
      expect(decoded.pricePer1kTokens, String(v)).to.equal(v)
      expect(decoded.cost, String(v)).to.equal(v)
    }
  })
})
