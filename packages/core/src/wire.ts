/**
 * The gcn wire format: protobuf (protons, generated into ./pb/gcn.ts) behind a
 * validation layer, explicit size caps, and length-prefixed framing over libp2p
 * v3 streams.
 *
 * Every message crosses the wire through a MessageCodec. decode() checks, in
 * order: total size (MessageTooLargeError, before any parsing), protobuf shape
 * (any parser exception becomes InvalidMessageError with the original as
 * cause; repeated fields are bounded while parsing), then the schema
 * (InvalidMessageError naming the field, e.g. `TaskRequest.params.topP`).
 * encode() runs the same schema and size checks, so we never send what a peer
 * would reject. Whatever decode() returns, encode() accepts.
 *
 * The generated protons codecs in ./pb/gcn.ts do none of these checks: use the
 * codecs exported here instead.
 */
// libp2p's streams need Promise.withResolvers, missing on Node 20: fill it even when the app forgot --import.
import './polyfill.js'
import type { AbortOptions, Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { DecodeOptions } from 'protons-runtime'
import { Uint8ArrayList } from 'uint8arraylist'
import { uvarint, varintLength } from './bytes.js'
import { SEAL_HEADER_LENGTH } from './crypto.js'
import { AbortedError, GcnError, type GcnErrorOptions, InvalidMessageError, MessageTooLargeError, TimeoutError } from './errors.js'
import {
  BlockConfirmation,
  BlockSummaries,
  type BlockSummary,
  CapacityAdvert,
  ChatMessage,
  ChatMessages,
  DayReportSignature,
  type ItemsQuery,
  ModelKeyRequest,
  ModelKeyResponse,
  ModelOffer,
  Receipt,
  ReceiptBatch,
  RegistryAck,
  RegistryWrite,
  SignedEnvelope,
  type SpanQuery,
  SyncRequest,
  SyncResponse,
  TaskChunk,
  TaskError,
  TaskFrame,
  TaskOpen,
  TaskParams,
  TaskRequest,
  Usage
} from './pb/gcn.js'
import { scanReceiptBatch } from './wire-receipts.js'

// ChatMessage and Usage are renamed: inference.ts owns those names for the engine-facing types.
export type {
  BlockConfirmation,
  BlockSummaries,
  BlockSummary,
  CapacityAdvert,
  ChatMessage as WireChatMessage,
  ChatMessages,
  DayReportSignature,
  ModelKeyRequest,
  ModelKeyResponse,
  ModelOffer,
  Receipt,
  ReceiptBatch,
  RegistryAck,
  RegistryWrite,
  SignedEnvelope,
  SyncRequest,
  SyncResponse,
  TaskChunk,
  TaskError,
  TaskFrame,
  TaskOpen,
  TaskParams,
  TaskRequest,
  Usage as WireUsage
} from './pb/gcn.js'
// Protocol ids and the gossip topic live in protocols.ts; re-exported so wire users need one import.
export { CAPACITY_TOPIC, DHT_PROTOCOL, TASK_PROTOCOL } from './protocols.js'

/** Why a task stream finished (TaskChunk.finishReason); `Wire` because inference.ts has its own FinishReason. */
export const WireFinishReason = TaskChunk.FinishReason
export type WireFinishReason = TaskChunk.FinishReason
/** Outcome of proof-of-inference checking recorded in a Receipt. */
export const ProofVerdict = Receipt.ProofVerdict
export type ProofVerdict = Receipt.ProofVerdict

/** TaskOpen.version spoken by this code; bump with incompatible TaskRequest/TaskChunk changes. */
export const WIRE_VERSION = 1
export const TASK_ID_BYTES = 16
export const NONCE_BYTES = 32
export const HASH_BYTES = 32
/** TaskRequest.response_key; equals task-cipher.ts RESPONSE_KEY_BYTES (not imported, to keep wire.ts free of crypto). */
const RESPONSE_KEY_LENGTH = 32

const KiB = 1024
const MiB = 1024 * KiB

/**
 * Maximum encoded size in bytes of each message, checked before parsing on
 * decode and after encoding on encode. Nested messages are only ever bounded
 * by their parent on the wire; their own entries exist for standalone use.
 */
export const LIMITS = Object.freeze({
  /** First frame on /gcn/task/1.0.0: header plus the sealed TaskRequest. */
  taskOpen: 256 * KiB,
  /** Plaintext TaskRequest: 1 KiB below taskOpen, leaving room for the TaskOpen header and sealing overhead (61 bytes). */
  taskRequest: 255 * KiB,
  /** One streamed TaskFrame on /gcn/task/1.0.0. */
  taskFrame: 64 * KiB,
  /** Plaintext TaskChunk: 1 KiB below taskFrame for the same reason. */
  taskChunk: 63 * KiB,
  /** CapacityAdvert payload (gossiped inside a SignedEnvelope). */
  capacityAdvert: 16 * KiB,
  receipt: 4 * KiB,
  /** 50,000 task ids at 18 bytes each (tag, length, 16 bytes) is ~879 KiB, plus the header. */
  blockConfirmation: 1 * MiB,
  /** SignedEnvelope fields other than the payload: type ≤ 64 chars, key and signature ≤ 128 bytes each, tags. */
  envelopeOverhead: 1 * KiB,
  /** Largest SignedEnvelope (its payload may be any signed message, the largest being a BlockConfirmation). */
  envelope: 1 * MiB + 1 * KiB,
  /** Largest gossip message on /gcn/capacity/1: an envelope around one CapacityAdvert. */
  advertEnvelope: 16 * KiB + 1 * KiB,
  modelOffer: 1 * KiB,
  chatMessage: 255 * KiB,
  chatMessages: 255 * KiB,
  taskParams: 64 * KiB,
  usage: 32,
  taskError: 4 * KiB,
  /** A distributor's signed batch: up to 1,024 receipts of ≤ 450 bytes each. */
  receiptBatch: 464 * KiB,
  /** A write on the registry protocols: one envelope (the largest is a BlockConfirmation) plus the id. */
  registryWrite: 1 * MiB + 2 * KiB,
  registryAck: 4 * KiB,
  /** One gossip message on /gcn/registry/blocks/1. */
  blockSummaries: 16 * KiB,
  /** 16,384 envelope ids of 34 bytes each, plus the header. */
  syncRequest: 576 * KiB,
  /** One response frame on /gcn/registry/sync/1.0.0 (several envelopes, or span digests); the largest frame of all. */
  syncResponse: 2 * MiB + 1 * KiB,
  dayReportSignature: 1 * KiB,
  modelKeyRequest: 256,
  modelKeyResponse: 2 * KiB,
  /** Largest frame any codec here accepts: the default frame cap of createFramedStream. */
  maxFrame: 2 * MiB + 1 * KiB
})

/**
 * Per-field caps enforced by the schemas. String caps count UTF-16 code units
 * (JS `length`); the byte caps in LIMITS bound the total regardless.
 */
export const FIELD_LIMITS = Object.freeze({
  /** game_id, session_id. */
  idChars: 128,
  roleChars: 32,
  /** A prompt, or all chat message contents together. */
  promptChars: 192 * KiB,
  chatMessages: 256,
  stopSequences: 4,
  stopChars: 64,
  jsonSchemaChars: 16 * KiB,
  maxTokens: 65_536,
  modelNameChars: 128,
  contextSize: 16 * MiB,
  multiaddrs: 16,
  multiaddrBytes: 256,
  models: 32,
  totalSlots: 4096,
  queueDepth: 1_000_000,
  tokensPerSecond: 1_000_000,
  ttftMs: 3_600_000,
  chunkTextChars: 16 * KiB,
  tokenIdsPerChunk: 4096,
  proofBytes: 16 * KiB,
  errorCodeChars: 64,
  errorMessageChars: 1024,
  /** TaskOpen.sealed_request; taskOpen minus room for version, task_id and tags. */
  sealedRequestBytes: 256 * KiB - 64,
  /** TaskFrame.sealed; taskFrame minus its tag and length prefix. */
  sealedChunkBytes: 64 * KiB - 16,
  taskIdsPerConfirmation: 50_000,
  payloadTypeChars: 64,
  publicKeyBytes: 128,
  signatureBytes: 128,
  peerIdChars: 128,
  receiptsPerBatch: 1024,
  blockSummariesPerMessage: 256,
  haveIdsPerSync: 16_384,
  spansPerResponse: 4096,
  envelopesPerResponse: 4096
})

/** Encoder/decoder for one message type with its size cap and schema. */
export interface MessageCodec<T> {
  readonly name: string
  /** Largest encoded size accepted by decode and produced by encode. */
  readonly maxBytes: number
  /** Validates, encodes, and enforces maxBytes (InvalidMessageError / MessageTooLargeError). */
  encode(msg: T): Uint8Array
  /**
   * Size cap, then parse, then schema; throws only InvalidMessageError or
   * MessageTooLargeError. Bytes fields of the result are views into the input
   * (e.g. SignedEnvelope.payload is exactly the signed bytes): copy before
   * reusing the input buffer.
   */
  decode(bytes: Uint8Array | Uint8ArrayList): T
  /** Schema check alone (e.g. before sealing a TaskRequest); throws InvalidMessageError. */
  validate(msg: T): void
  /**
   * The schema admits only ASCII strings and the message has no packed repeated
   * fields, so whatever decode() returns re-encodes to at most the input's size:
   * decode() needs no re-encoding to keep "whatever decode returns, encode accepts".
   */
  readonly asciiOnly: boolean
}

// ---------------------------------------------------------------------------
// Schema checks. A check throws FieldError; parents prepend their key or index
// while it unwinds, so the success path builds no path strings at all.

class FieldError extends Error {
  readonly path: string[] = []
}

type Check = (value: unknown) => void
type Schema<T> = { readonly [K in keyof T]-?: Check }

function fail(reason: string, ...path: string[]): never {
  const err = new FieldError(reason)
  err.path.push(...path)
  throw err
}

function within(min: number, max: number): string {
  return min === max ? `${min}` : `${min}..${max}`
}

const bytes =
  (min: number, max = min): Check =>
  v => {
    if (!(v instanceof Uint8Array)) fail('must be bytes')
    if (v.byteLength < min || v.byteLength > max) fail(`must be ${within(min, max)} bytes (got ${v.byteLength})`)
  }

const str =
  (min: number, max: number, pattern?: RegExp, shape?: string): Check =>
  v => {
    if (typeof v !== 'string') fail('must be a string')
    if (v.length < min || v.length > max) fail(`must be ${within(min, max)} characters (got ${v.length})`)
    if (!v.isWellFormed()) fail('must be well-formed Unicode')
    if (pattern !== undefined && !pattern.test(v)) fail(`must be ${shape ?? pattern.source}`)
  }

const int =
  (min: number, max: number): Check =>
  v => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(`must be an integer in [${min}, ${max}]`)
  }

const U32 = 0xffff_ffff
const U64 = 2n ** 64n - 1n
const uint32 = (min = 0, max = U32): Check => int(min, max)
/** uint64 fields kept as JS numbers (times, heights, counters). */
const safeUint = (min = 0): Check => int(min, Number.MAX_SAFE_INTEGER)

/** uint64 money amounts kept as bigint. */
const amount: Check = v => {
  if (typeof v !== 'bigint' || v < 0n || v > U64) fail('must be a bigint in [0, 2^64-1]')
}

const float =
  (min: number, max: number): Check =>
  v => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) fail(`must be a finite number in [${min}, ${max}]`)
  }

const bool: Check = v => {
  if (typeof v !== 'boolean') fail('must be a boolean')
}

/** Known values of a protons enum (its namespace also carries a codec function). */
function enumOf(values: object, ...excluded: string[]): Check {
  const allowed = new Set(Object.values(values).filter((v): v is string => typeof v === 'string' && !excluded.includes(v)))
  return v => {
    if (typeof v !== 'string' || !allowed.has(v)) fail(`must be one of ${[...allowed].join(', ')}`)
  }
}

const optional =
  (check: Check): Check =>
  v => {
    if (v != null) check(v)
  }

function list(item: Check, max: number, min = 0): Check {
  return v => {
    if (!Array.isArray(v)) fail('must be an array')
    if (v.length < min || v.length > max) fail(`must have ${within(min, max)} entries (got ${v.length})`)
    for (let i = 0; i < v.length; i++) {
      try {
        item(v[i])
      } catch (err) {
        if (err instanceof FieldError) err.path.unshift(`[${i}]`)
        throw err
      }
    }
  }
}

function message<T>(schema: Schema<T>, refine?: (msg: T) => void): Check {
  const fields = Object.entries(schema) as Array<[string, Check]>
  return v => {
    if (v == null || typeof v !== 'object') fail('must be a message object')
    const record = v as Record<string, unknown>
    for (const [key, check] of fields) {
      try {
        check(record[key])
      } catch (err) {
        if (err instanceof FieldError) err.path.unshift(`.${key}`)
        throw err
      }
    }
    refine?.(v as T)
  }
}

const also =
  (...checks: Check[]): Check =>
  v => {
    for (const check of checks) check(v)
  }

const PRINTABLE = /^[\x21-\x7e]*$/
const NO_CONTROL = /^[^\p{Cc}]*$/u
const HEX64 = /^[0-9a-f]{64}$/
const ETH_ADDRESS = /^0x[0-9a-fA-F]{40}$/
const ROLE = /^[a-z][a-z0-9_-]*$/
const ERROR_CODE = /^[A-Za-z0-9_.:-]+$/

const L = FIELD_LIMITS
const identifier = (min: number, max: number = L.idChars): Check => str(min, max, PRINTABLE, 'printable ASCII without spaces')
const modelId: Check = str(64, 64, HEX64, '64 lowercase hex characters (sha256 of the GGUF file)')
const taskId: Check = bytes(TASK_ID_BYTES)

/** PeerId strings already found canonical: receipts repeat a few ids thousands of times, and parsing one costs ~10 µs. */
const canonicalPeerIds = new Set<string>()

/** Canonical base58btc PeerId string (what PeerId.toString() prints). */
const peerId: Check = also(str(1, L.peerIdChars, PRINTABLE, 'a PeerId'), v => {
  if (canonicalPeerIds.has(v as string)) return
  let canonical: string
  try {
    canonical = peerIdFromString(v as string).toString()
  } catch {
    fail('must be a PeerId')
  }
  if (canonical !== v) fail('must be a PeerId in canonical form')
  if (canonicalPeerIds.size >= 4096) canonicalPeerIds.clear()
  canonicalPeerIds.add(canonical)
})

const multiaddrBytes: Check = also(bytes(1, L.multiaddrBytes), v => {
  try {
    multiaddr(v as Uint8Array)
  } catch {
    fail('must be a binary multiaddr')
  }
})

// ---------------------------------------------------------------------------
// Schemas, one per message.

const modelOffer = message<ModelOffer>({
  id: modelId,
  name: str(1, L.modelNameChars, NO_CONTROL, 'free of control characters'),
  contextSize: uint32(1, L.contextSize),
  pricePer1kTokens: amount
})

const capacityAdvert = message<CapacityAdvert>(
  {
    peerId,
    multiaddrs: list(multiaddrBytes, L.multiaddrs),
    models: list(modelOffer, L.models),
    freeSlots: uint32(0, L.totalSlots),
    totalSlots: uint32(1, L.totalSlots),
    queueDepth: uint32(0, L.queueDepth),
    tokensPerSecond: float(0, L.tokensPerSecond),
    ttftMs: uint32(0, L.ttftMs),
    rewardAddress: str(42, 42, ETH_ADDRESS, '0x followed by 40 hex characters'),
    timestampMs: safeUint(1),
    seq: safeUint()
  },
  advert => {
    if (advert.freeSlots > advert.totalSlots) fail('must not exceed totalSlots', '.freeSlots')
    const seen = new Set<string>()
    advert.models.forEach((model, i) => {
      if (seen.has(model.id)) fail('duplicates an earlier model id', `.models[${i}]`, '.id')
      seen.add(model.id)
    })
  }
)

const chatMessage = message<ChatMessage>({
  role: str(1, L.roleChars, ROLE, 'a lowercase role name (e.g. system, user, assistant)'),
  content: str(0, L.promptChars)
})

const chatMessages = message<ChatMessages>({ messages: list(chatMessage, L.chatMessages, 1) }, chat => {
  let total = 0
  for (const m of chat.messages) total += m.content.length
  if (total > L.promptChars) fail(`contents must total at most ${L.promptChars} characters (got ${total})`, '.messages')
})

const taskParams = message<TaskParams>({
  maxTokens: uint32(1, L.maxTokens),
  temperature: optional(float(0, 2)),
  topP: optional(float(0, 1)),
  seed: optional(safeUint()),
  stop: list(str(1, L.stopChars), L.stopSequences),
  jsonSchema: optional(str(1, L.jsonSchemaChars))
})

const taskRequest = message<TaskRequest>(
  {
    taskId,
    modelId,
    gameId: identifier(1),
    sessionId: identifier(0),
    chat: optional(chatMessages),
    prompt: optional(str(1, L.promptChars)),
    params: taskParams,
    nonce: bytes(NONCE_BYTES),
    deadlineMs: safeUint(1),
    responseKey: bytes(RESPONSE_KEY_LENGTH)
  },
  req => {
    if ((req.chat == null) === (req.prompt == null)) fail('exactly one of chat or prompt must be set', '.chat')
  }
)

const taskOpen = message<TaskOpen>(
  {
    version: int(WIRE_VERSION, WIRE_VERSION),
    taskId,
    sealedRequest: bytes(0, L.sealedRequestBytes),
    requestBoxHeader: optional(bytes(SEAL_HEADER_LENGTH))
  },
  open => {
    // Either the request, or (an announcement ahead of it) the header of its sealed box.
    if ((open.sealedRequest.byteLength === 0) === (open.requestBoxHeader == null)) {
      fail('exactly one of sealedRequest or requestBoxHeader must be set', '.sealedRequest')
    }
  }
)

const usage = message<Usage>({ promptTokens: uint32(), completionTokens: uint32() })

const taskError = message<TaskError>({
  code: str(1, L.errorCodeChars, ERROR_CODE, 'letters, digits and _ . : -'),
  message: str(0, L.errorMessageChars),
  retryable: bool
})

const taskChunk = message<TaskChunk>(
  {
    seq: safeUint(),
    text: str(0, L.chunkTextChars),
    tokenIds: list(uint32(), L.tokenIdsPerChunk),
    finishReason: optional(enumOf(TaskChunk.FinishReason, TaskChunk.FinishReason.UNSPECIFIED)),
    usage: optional(usage),
    error: optional(taskError),
    proof: bytes(0, L.proofBytes)
  },
  chunk => {
    // An error always ends the stream, so it must say so.
    if (chunk.error != null && chunk.finishReason !== TaskChunk.FinishReason.ERROR) {
      fail('must be ERROR when error is set', '.finishReason')
    }
  }
)

const taskFrame = message<TaskFrame>({ sealed: bytes(1, L.sealedChunkBytes) })

const receipt = message<Receipt>({
  taskId,
  gameId: identifier(1),
  supplierPeerId: peerId,
  distributorPeerId: peerId,
  modelId,
  promptTokens: uint32(),
  completionTokens: uint32(),
  pricePer1kTokens: amount,
  cost: amount,
  blockHeight: safeUint(),
  promptHash: bytes(HASH_BYTES),
  outputHash: bytes(HASH_BYTES),
  verdict: enumOf(Receipt.ProofVerdict, Receipt.ProofVerdict.UNSPECIFIED),
  timestampMs: safeUint(1)
})

const blockConfirmation = message<BlockConfirmation>({
  supplierPeerId: peerId,
  blockHeight: safeUint(),
  taskIds: list(taskId, L.taskIdsPerConfirmation),
  timestampMs: safeUint(1),
  rewardAddress: str(42, 42, ETH_ADDRESS, '0x followed by 40 hex characters')
})

const receiptBatch = message<ReceiptBatch>(
  {
    distributorPeerId: peerId,
    blockHeight: safeUint(),
    receipts: list(receipt, L.receiptsPerBatch, 1),
    timestampMs: safeUint(1)
  },
  batch => {
    for (let i = 0; i < batch.receipts.length; i++) {
      const r = batch.receipts[i]!
      if (r.distributorPeerId !== batch.distributorPeerId) fail('must equal the batch distributor', `.receipts[${i}]`, '.distributorPeerId')
      if (r.blockHeight !== batch.blockHeight) fail('must equal the batch block height', `.receipts[${i}]`, '.blockHeight')
    }
  }
)

const envelopeShape = message<SignedEnvelope>({
  payloadType: identifier(1, L.payloadTypeChars),
  payload: bytes(1, LIMITS.blockConfirmation),
  publicKey: bytes(1, L.publicKeyBytes),
  signature: bytes(1, L.signatureBytes)
})

const registryWrite = message<RegistryWrite>({ id: safeUint(), envelope: envelopeShape })

const registryAck = message<RegistryAck>({
  id: safeUint(),
  ok: bool,
  replicas: uint32(0, 1024),
  duplicate: bool,
  errorCode: str(0, L.errorCodeChars, /^[A-Za-z0-9_.:-]*$/, 'letters, digits and _ . : -'),
  errorMessage: str(0, L.errorMessageChars),
  retryable: bool
})

const rootBytes: Check = v => {
  if (!(v instanceof Uint8Array)) fail('must be bytes')
  if (v.byteLength !== 0 && v.byteLength !== HASH_BYTES) fail(`must be empty or ${HASH_BYTES} bytes (got ${v.byteLength})`)
}

const blockSummary = message<BlockSummary>({ blockHeight: safeUint(), count: uint32(), root: rootBytes }, s => {
  if ((s.count === 0) !== (s.root.byteLength === 0)) fail('must be empty exactly when count is 0', '.root')
})

const blockSummaries = message<BlockSummaries>({
  registryPeerId: peerId,
  blocks: list(blockSummary, L.blockSummariesPerMessage),
  timestampMs: safeUint(1)
})

const spanQuery = message<SpanQuery>({ fromBlock: safeUint(), toBlock: safeUint(), span: uint32(1, 1_000_000) }, q => {
  if (q.toBlock < q.fromBlock) fail('must be >= fromBlock', '.toBlock')
})
const itemsQuery = message<ItemsQuery>({ blockHeight: safeUint(), have: list(bytes(HASH_BYTES), L.haveIdsPerSync) })

const syncRequest = message<SyncRequest>({ spans: optional(spanQuery), items: optional(itemsQuery) }, req => {
  if ((req.spans == null) === (req.items == null)) fail('exactly one of spans or items must be set', '.spans')
})

const syncResponse = message<SyncResponse>({
  spans: list(blockSummary, L.spansPerResponse),
  envelopes: list(bytes(1, LIMITS.envelope), L.envelopesPerResponse)
})

const dayReportSignature = message<DayReportSignature>({
  registryPeerId: peerId,
  day: safeUint(),
  root: bytes(HASH_BYTES),
  totalDebit: bytes(32),
  signer: str(42, 42, ETH_ADDRESS, '0x followed by 40 hex characters'),
  signature: bytes(65)
})

const modelKeyRequest = message<ModelKeyRequest>({ modelId })
const modelKeyResponse = message<ModelKeyResponse>(
  {
    key: v => {
      if (!(v instanceof Uint8Array) || (v.byteLength !== 0 && v.byteLength !== 32)) fail('must be empty or 32 bytes')
    },
    errorCode: str(0, L.errorCodeChars, /^[A-Za-z0-9_.:-]*$/, 'letters, digits and _ . : -'),
    errorMessage: str(0, L.errorMessageChars)
  },
  r => {
    if ((r.key.byteLength === 0) === (r.errorCode === '')) fail('exactly one of key or error_code must be set', '.key')
  }
)

// ---------------------------------------------------------------------------
// Codecs.

/** The encode/decode pair protons generates for each message. */
interface Generated<T> {
  encode(obj: Partial<T>): Uint8Array
  decode(buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<T>): T
}

function errorText(err: unknown): string {
  const message = (err as { message?: unknown } | null)?.message
  return typeof message === 'string' ? message : String(err)
}

function runCheck(name: string, check: Check, msg: unknown): void {
  try {
    check(msg)
  } catch (err) {
    if (err instanceof FieldError) throw new InvalidMessageError(`${name}${err.path.join('')}: ${err.message}`)
    throw new InvalidMessageError(`${name}: validation failed`, { cause: err })
  }
}

interface CodecOptions {
  /** See MessageCodec.asciiOnly; the wire fuzz spec checks it for every codec that sets it. */
  asciiOnly?: boolean
}

function defineCodec<T>(
  name: string,
  maxBytes: number,
  generated: Generated<T>,
  check: Check,
  limits?: DecodeOptions<T>['limits'],
  options: CodecOptions = {}
): MessageCodec<T> {
  const { asciiOnly = false } = options
  const decodeOptions = limits === undefined ? undefined : { limits }
  const encodeChecked = (msg: T): Uint8Array => {
    runCheck(name, check, msg)
    const out = generated.encode(msg)
    if (out.byteLength > maxBytes) {
      throw new MessageTooLargeError(`${name} encodes to ${out.byteLength} bytes, over its ${maxBytes}-byte limit`, {
        hint: 'shorten the content or split it across messages'
      })
    }
    return out
  }
  return Object.freeze({
    name,
    maxBytes,
    asciiOnly,
    encode: encodeChecked,
    validate(msg: T): void {
      runCheck(name, check, msg)
    },
    decode(input: Uint8Array | Uint8ArrayList): T {
      const size = (input as { byteLength?: unknown } | null)?.byteLength
      if (typeof size !== 'number') throw new InvalidMessageError(`${name}: expected bytes`)
      if (size > maxBytes) throw new MessageTooLargeError(`${name} is ${size} bytes, over its ${maxBytes}-byte limit`)
      let msg: T
      try {
        msg = generated.decode(input, decodeOptions)
      } catch (err) {
        throw new InvalidMessageError(`${name}: malformed protobuf (${errorText(err)})`, { cause: err })
      }
      runCheck(name, check, msg)
      // protons' lenient UTF-8 reader can turn one stray byte into a 3-byte character,
      // so only an input above a third of the cap can re-encode past it; check those
      // by encoding, which keeps "whatever decode returns, encode accepts" true. Where
      // the schema admits only ASCII, each character decoded came from at least one
      // input byte and every other field re-encodes no larger (defaults are omitted,
      // varints minimal, unknown fields dropped): nothing to check.
      if (!asciiOnly && size * 3 + 64 > maxBytes) {
        const reencoded = generated.encode(msg).byteLength
        if (reencoded > maxBytes) throw new InvalidMessageError(`${name}: re-encodes to ${reencoded} bytes (invalid UTF-8?)`)
      }
      return msg
    }
  })
}

export const ModelOfferCodec = defineCodec<ModelOffer>('ModelOffer', LIMITS.modelOffer, ModelOffer, modelOffer)
export const CapacityAdvertCodec = defineCodec<CapacityAdvert>('CapacityAdvert', LIMITS.capacityAdvert, CapacityAdvert, capacityAdvert, {
  multiaddrs: L.multiaddrs,
  models: L.models
})
export const ChatMessageCodec = defineCodec<ChatMessage>('ChatMessage', LIMITS.chatMessage, ChatMessage, chatMessage)
export const ChatMessagesCodec = defineCodec<ChatMessages>('ChatMessages', LIMITS.chatMessages, ChatMessages, chatMessages, {
  messages: L.chatMessages
})
export const TaskParamsCodec = defineCodec<TaskParams>('TaskParams', LIMITS.taskParams, TaskParams, taskParams, {
  stop: L.stopSequences
})
export const TaskRequestCodec = defineCodec<TaskRequest>('TaskRequest', LIMITS.taskRequest, TaskRequest, taskRequest, {
  chat: { messages: L.chatMessages },
  params: { stop: L.stopSequences }
})
export const TaskOpenCodec = defineCodec<TaskOpen>('TaskOpen', LIMITS.taskOpen, TaskOpen, taskOpen)
export const UsageCodec = defineCodec<Usage>('Usage', LIMITS.usage, Usage, usage)
export const TaskErrorCodec = defineCodec<TaskError>('TaskError', LIMITS.taskError, TaskError, taskError)
export const TaskChunkCodec = defineCodec<TaskChunk>('TaskChunk', LIMITS.taskChunk, TaskChunk, taskChunk, {
  tokenIds: L.tokenIdsPerChunk
})
export const TaskFrameCodec = defineCodec<TaskFrame>('TaskFrame', LIMITS.taskFrame, TaskFrame, taskFrame)
export const ReceiptCodec = defineCodec<Receipt>('Receipt', LIMITS.receipt, Receipt, receipt, undefined, { asciiOnly: true })
export const BlockConfirmationCodec = defineCodec<BlockConfirmation>(
  'BlockConfirmation',
  LIMITS.blockConfirmation,
  BlockConfirmation,
  blockConfirmation,
  { taskIds: L.taskIdsPerConfirmation },
  { asciiOnly: true }
)

/** protons' ReceiptBatch with the canonical-encoding fast path of wire-receipts.ts in front of its decoder. */
const receiptBatchParser: Generated<ReceiptBatch> = {
  encode: ReceiptBatch.encode,
  decode: (input, opts) =>
    (input instanceof Uint8Array ? scanReceiptBatch(input, L.receiptsPerBatch)?.batch : undefined) ?? ReceiptBatch.decode(input, opts)
}

export const ReceiptBatchCodec = defineCodec<ReceiptBatch>(
  'ReceiptBatch',
  LIMITS.receiptBatch,
  receiptBatchParser,
  receiptBatch,
  { receipts: L.receiptsPerBatch },
  { asciiOnly: true }
)

export interface DecodedReceiptBatch {
  batch: ReceiptBatch
  /**
   * When the input was a canonical encoding (what protons writes): each
   * receipt's bytes within it, equal to `Receipt.encode(receipt)`, as views into
   * the input. Undefined otherwise.
   */
  encodings?: Uint8Array[]
}

/**
 * ReceiptBatchCodec.decode (same size cap, parse and schema, same errors) that
 * also hands back each receipt's encoding when it is at hand, so a registry can
 * hash receipts (billing.ts receiptHash) without encoding them again.
 */
export function decodeReceiptBatch(input: Uint8Array): DecodedReceiptBatch {
  if (input.byteLength <= ReceiptBatchCodec.maxBytes) {
    const scanned = scanReceiptBatch(input, L.receiptsPerBatch)
    if (scanned !== undefined) {
      // A canonical input re-encodes to itself, so the size cap holds for the re-encoding too.
      ReceiptBatchCodec.validate(scanned.batch)
      return scanned
    }
  }
  return { batch: ReceiptBatchCodec.decode(input) }
}

export const RegistryWriteCodec = defineCodec<RegistryWrite>(
  'RegistryWrite',
  LIMITS.registryWrite,
  RegistryWrite,
  registryWrite,
  undefined,
  { asciiOnly: true }
)
export const RegistryAckCodec = defineCodec<RegistryAck>('RegistryAck', LIMITS.registryAck, RegistryAck, registryAck)
export const BlockSummariesCodec = defineCodec<BlockSummaries>(
  'BlockSummaries',
  LIMITS.blockSummaries,
  BlockSummaries,
  blockSummaries,
  { blocks: L.blockSummariesPerMessage },
  { asciiOnly: true }
)
export const SyncRequestCodec = defineCodec<SyncRequest>(
  'SyncRequest',
  LIMITS.syncRequest,
  SyncRequest,
  syncRequest,
  { items: { have: L.haveIdsPerSync } },
  { asciiOnly: true }
)
export const SyncResponseCodec = defineCodec<SyncResponse>(
  'SyncResponse',
  LIMITS.syncResponse,
  SyncResponse,
  syncResponse,
  { spans: L.spansPerResponse, envelopes: L.envelopesPerResponse },
  { asciiOnly: true }
)

export const DayReportSignatureCodec = defineCodec<DayReportSignature>(
  'DayReportSignature',
  LIMITS.dayReportSignature,
  DayReportSignature,
  dayReportSignature
)

export const ModelKeyRequestCodec = defineCodec<ModelKeyRequest>(
  'ModelKeyRequest',
  LIMITS.modelKeyRequest,
  ModelKeyRequest,
  modelKeyRequest
)
export const ModelKeyResponseCodec = defineCodec<ModelKeyResponse>(
  'ModelKeyResponse',
  LIMITS.modelKeyResponse,
  ModelKeyResponse,
  modelKeyResponse
)

export interface EnvelopeCodecOptions {
  /** Codec name used in error messages. */
  name?: string
  /** Largest payload accepted; the codec's maxBytes is this plus LIMITS.envelopeOverhead. */
  maxPayloadBytes: number
  /** When set, any other payload_type is rejected. */
  payloadType?: string
}

/**
 * A SignedEnvelope codec bounded for one use, e.g. gossip adverts:
 * `createEnvelopeCodec({ maxPayloadBytes: LIMITS.capacityAdvert, payloadType })`.
 * The signature itself is checked elsewhere (crypto.ts), over envelope.payload.
 */
export function createEnvelopeCodec(options: EnvelopeCodecOptions): MessageCodec<SignedEnvelope> {
  const { maxPayloadBytes, payloadType } = options
  if (!Number.isSafeInteger(maxPayloadBytes) || maxPayloadBytes < 1) {
    throw new GcnError(`maxPayloadBytes must be a positive integer (got ${maxPayloadBytes})`)
  }
  const typeCheck =
    payloadType === undefined
      ? identifier(1, L.payloadTypeChars)
      : also(identifier(1, L.payloadTypeChars), v => {
          if (v !== payloadType) fail(`must be ${payloadType}`)
        })
  const schema = message<SignedEnvelope>({
    payloadType: typeCheck,
    payload: bytes(1, maxPayloadBytes),
    publicKey: bytes(1, L.publicKeyBytes),
    signature: bytes(1, L.signatureBytes)
  })
  return defineCodec<SignedEnvelope>(
    options.name ?? 'SignedEnvelope',
    maxPayloadBytes + LIMITS.envelopeOverhead,
    SignedEnvelope,
    schema,
    undefined,
    { asciiOnly: true }
  )
}

/** Any signed payload up to a BlockConfirmation. */
export const SignedEnvelopeCodec = createEnvelopeCodec({ maxPayloadBytes: LIMITS.blockConfirmation })
/** Gossip messages on CAPACITY_TOPIC: an envelope no larger than LIMITS.advertEnvelope. */
export const AdvertEnvelopeCodec = createEnvelopeCodec({ name: 'AdvertEnvelope', maxPayloadBytes: LIMITS.capacityAdvert })

/** Every codec by message name (handy for tests and tooling). */
export const CODECS = Object.freeze({
  SignedEnvelope: SignedEnvelopeCodec,
  AdvertEnvelope: AdvertEnvelopeCodec,
  ModelOffer: ModelOfferCodec,
  CapacityAdvert: CapacityAdvertCodec,
  ChatMessage: ChatMessageCodec,
  ChatMessages: ChatMessagesCodec,
  TaskParams: TaskParamsCodec,
  TaskRequest: TaskRequestCodec,
  TaskOpen: TaskOpenCodec,
  Usage: UsageCodec,
  TaskError: TaskErrorCodec,
  TaskChunk: TaskChunkCodec,
  TaskFrame: TaskFrameCodec,
  Receipt: ReceiptCodec,
  BlockConfirmation: BlockConfirmationCodec,
  ReceiptBatch: ReceiptBatchCodec,
  RegistryWrite: RegistryWriteCodec,
  RegistryAck: RegistryAckCodec,
  BlockSummaries: BlockSummariesCodec,
  SyncRequest: SyncRequestCodec,
  SyncResponse: SyncResponseCodec,
  DayReportSignature: DayReportSignatureCodec,
  ModelKeyRequest: ModelKeyRequestCodec,
  ModelKeyResponse: ModelKeyResponseCodec
})

// ---------------------------------------------------------------------------
// Framing: unsigned-varint length prefix + one encoded message, over a libp2p v3 stream.

/**
 * The stream ended or broke while a frame was expected. `truncated` is true when
 * it ended inside a frame (after part of a length prefix or body); false when it
 * ended cleanly between frames (only read() throws that: readOrEnd() returns
 * null) or was reset/closed before a frame started.
 */
export class StreamEndedError extends GcnError {
  static override readonly code = 'ERR_STREAM_ENDED'
  override name = 'StreamEndedError'
  readonly truncated: boolean

  constructor(message: string, options: GcnErrorOptions & { truncated?: boolean } = {}) {
    super(message, options)
    this.truncated = options.truncated ?? false
  }
}

export interface FramedStreamOptions {
  /**
   * Largest frame read or written, in bytes; each read is further capped by
   * its codec's maxBytes. An oversized length prefix is rejected before the
   * body is buffered. Default LIMITS.maxFrame.
   */
  maxFrameBytes?: number
  /** Unread bytes buffered from the peer before the stream is aborted. Default max(4 MiB, 2 × maxFrameBytes). */
  maxBufferBytes?: number
}

/**
 * Typed frames over one stream. Not safe for concurrent reads (or concurrent
 * writes): each side of the task protocol has one reader and one writer.
 *
 * End of stream: readOrEnd() resolves null when the remote closed its write side
 * cleanly on a frame boundary; read() throws StreamEndedError (truncated:
 * false) in that case; frames() simply finishes. An end inside a frame is
 * always StreamEndedError with truncated: true.
 *
 * After a read fails with MessageTooLargeError, StreamEndedError or a
 * malformed length prefix, the framing is out of sync: further reads rethrow
 * that error, and the caller should abort() the stream. A frame that arrived
 * whole but failed decoding (InvalidMessageError) leaves the framing intact,
 * and so does a read aborted through its signal (a frame it had begun stays
 * buffered for the next read).
 */
export interface FramedStream {
  readonly stream: Stream
  /** Next frame decoded with codec; throws StreamEndedError at end of stream. */
  read<T>(codec: MessageCodec<T>, options?: AbortOptions): Promise<T>
  /** Next frame decoded with codec, or null when the peer closed cleanly between frames. */
  readOrEnd<T>(codec: MessageCodec<T>, options?: AbortOptions): Promise<T | null>
  /** Frames until a clean end of stream. */
  frames<T>(codec: MessageCodec<T>, options?: AbortOptions): AsyncGenerator<T, void, undefined>
  /** Validates, encodes and writes msg as one frame, waiting for drain under backpressure. */
  write<T>(codec: MessageCodec<T>, msg: T, options?: AbortOptions): Promise<void>
  /** Closes our write side (the peer's readOrEnd then returns null); reading stays possible. */
  close(options?: AbortOptions): Promise<void>
  /** Tears the stream down in both directions; the peer sees a reset. */
  abort(err: Error): void
}

const DEFAULT_BUFFER_BYTES = 4 * MiB

function abortError(signal: AbortSignal, what: string): GcnError {
  const reason: unknown = signal.reason
  if ((reason as { name?: unknown } | null)?.name === 'TimeoutError') return new TimeoutError(`${what} timed out`, { cause: reason })
  return new AbortedError(`${what} aborted`, { cause: reason })
}

// A function, not an inline test, so TS does not narrow `aborted` across awaits.
function isAborted(signal: AbortSignal | undefined): signal is AbortSignal {
  return signal?.aborted === true
}

/**
 * Resolves when the stream can take more data; rejects if it closes or `signal` aborts first. Not
 * `stream.onDrain()`: @libp2p/utils 7 keeps the promise of the first drain, so once a stream has
 * drained, every later wait on it resolves at once and the writer no longer waits for room.
 */
function drained(stream: Stream, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
    }
    const onDrain = (): void => {
      done()
      resolve()
    }
    const onClose = (): void => {
      done()
      reject(new GcnError('stream closed while waiting for it to drain'))
    }
    const onAbort = (): void => {
      done()
      reject(signal!.reason)
    }
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
    signal?.addEventListener('abort', onAbort)
  })
}

export function createFramedStream(stream: Stream, options: FramedStreamOptions = {}): FramedStream {
  const maxFrameBytes = options.maxFrameBytes ?? LIMITS.maxFrame
  if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < 1) {
    throw new GcnError(`maxFrameBytes must be a positive integer (got ${maxFrameBytes})`)
  }
  const maxBufferBytes = options.maxBufferBytes ?? Math.max(DEFAULT_BUFFER_BYTES, 2 * maxFrameBytes)
  let reading = false
  let broken: Error | undefined

  // Frames are cut straight from the stream's 'message' events, not through @libp2p/utils'
  // lpStream: that reads a length prefix one byte at a time, each read a promise raced with the
  // signal, and took 0.14–0.16 ms of an idle process from a message's arrival to its frame
  // (traced, 2-core dev VM): twice on the way to a first token (the request, the first chunk).
  const buffered = new Uint8ArrayList()
  /** Why no more bytes will come with an error (a reset or abort), or a buffer overflow. */
  let failure: Error | undefined
  /** True once the peer closed its write side. */
  let remoteEnded = false
  /** Wakes the read waiting for bytes. */
  let wake: (() => void) | undefined

  const onMessage = (evt: StreamMessageEvent): void => {
    if (failure !== undefined) return
    buffered.append(evt.data)
    if (buffered.byteLength > maxBufferBytes) {
      failure = new MessageTooLargeError(`read buffer overflow: ${buffered.byteLength} > ${maxBufferBytes} unread bytes`)
      buffered.consume(buffered.byteLength)
      const err = failure
      // Let the current dispatch finish first.
      queueMicrotask(() => stream.abort(err))
    }
    wake?.()
  }
  const onClose = (evt: StreamCloseEvent): void => {
    if (evt.error !== undefined) failure ??= evt.error
    remoteEnded = true
    wake?.()
  }
  const onRemoteCloseWrite = (): void => {
    remoteEnded = true
    wake?.()
  }
  stream.addEventListener('message', onMessage)
  stream.addEventListener('close', onClose)
  stream.addEventListener('remoteCloseWrite', onRemoteCloseWrite)
  const ended = (): boolean => remoteEnded || (stream.remoteWriteStatus !== 'writable' && stream.readBufferLength === 0)

  /**
   * The next whole frame from the buffer, or undefined until more bytes come. A length prefix over
   * `limit` (or longer than it needs) throws before the body is buffered.
   */
  function takeFrame(limit: number, name: string): Uint8Array | Uint8ArrayList | undefined {
    const available = buffered.byteLength
    const maxPrefix = varintLength(limit)
    let length = 0
    let prefix = 0
    while (true) {
      if (prefix >= available) return undefined
      const b = buffered.get(prefix)
      length += (b & 0x7f) * 2 ** (7 * prefix)
      prefix++
      if (b < 0x80) break
      if (prefix >= maxPrefix)
        throw new MessageTooLargeError(`${name} frame length prefix is longer than ${maxPrefix} bytes (limit ${limit} bytes)`)
    }
    if (length > limit) throw new MessageTooLargeError(`${name} frame of ${length} bytes is over the ${limit}-byte limit`)
    if (available < prefix + length) return undefined
    const frame = buffered.sublist(prefix, prefix + length)
    buffered.consume(prefix + length)
    return frame
  }

  /** The next frame, or null at a clean end between frames. */
  async function nextFrame(limit: number, name: string, signal: AbortSignal | undefined): Promise<Uint8Array | Uint8ArrayList | null> {
    while (true) {
      const frame = takeFrame(limit, name)
      if (frame !== undefined) return frame
      const midFrame = buffered.byteLength > 0
      if (failure !== undefined) {
        if (failure instanceof GcnError) throw failure
        throw new StreamEndedError(`stream closed while reading ${name}: ${errorText(failure)}`, { cause: failure, truncated: midFrame })
      }
      if (ended()) {
        if (!midFrame) return null
        throw new StreamEndedError(`stream ended inside a ${name} frame`, { truncated: true })
      }
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          wake = undefined
          reject(abortError(signal!, `reading ${name}`))
        }
        wake = () => {
          wake = undefined
          signal?.removeEventListener('abort', onAbort)
          resolve()
        }
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    }
  }

  async function readOrEnd<T>(codec: MessageCodec<T>, options?: AbortOptions): Promise<T | null> {
    if (broken !== undefined) throw broken
    if (reading) throw new GcnError('concurrent reads on one framed stream')
    if (isAborted(options?.signal)) throw abortError(options.signal, `reading ${codec.name}`)
    reading = true
    let frame: Uint8Array | Uint8ArrayList | null
    try {
      frame = await nextFrame(Math.min(maxFrameBytes, codec.maxBytes), codec.name, options?.signal)
    } catch (err) {
      // An aborted read leaves the framing as it was: a frame begun stays buffered for the next read.
      if (!isAborted(options?.signal)) broken = err as Error
      throw err
    } finally {
      reading = false
    }
    return frame === null ? null : codec.decode(frame)
  }

  async function read<T>(codec: MessageCodec<T>, options?: AbortOptions): Promise<T> {
    const msg = await readOrEnd(codec, options)
    if (msg === null) throw new StreamEndedError(`stream ended before a ${codec.name} frame`)
    return msg
  }

  async function* frames<T>(codec: MessageCodec<T>, options?: AbortOptions): AsyncGenerator<T, void, undefined> {
    while (true) {
      const msg = await readOrEnd(codec, options)
      if (msg === null) return
      yield msg
    }
  }

  async function write<T>(codec: MessageCodec<T>, msg: T, options?: AbortOptions): Promise<void> {
    if (isAborted(options?.signal)) throw abortError(options.signal, `writing ${codec.name}`)
    const bytes = codec.encode(msg)
    if (bytes.byteLength > maxFrameBytes) {
      throw new MessageTooLargeError(`${codec.name} frame of ${bytes.byteLength} bytes is over this stream's ${maxFrameBytes}-byte limit`)
    }
    try {
      if (!stream.send(new Uint8ArrayList(uvarint(bytes.byteLength), bytes))) await drained(stream, options?.signal)
    } catch (err) {
      if (isAborted(options?.signal)) throw abortError(options.signal, `writing ${codec.name}`)
      throw new StreamEndedError(`stream closed while writing ${codec.name}: ${errorText(err)}`, { cause: err })
    }
  }

  return {
    stream,
    read,
    readOrEnd,
    frames,
    write,
    close: async options => {
      await stream.close(options)
    },
    abort: err => {
      stream.abort(err)
    }
  }
}
