import { decodeMessage, encodeMessage, enumeration, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { writeUint64 } from './uint64.js'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface SignedEnvelope {
  payloadType: string
  payload: Uint8Array<ArrayBuffer>
  publicKey: Uint8Array<ArrayBuffer>
  signature: Uint8Array<ArrayBuffer>
}

export namespace SignedEnvelope {
  let _codec: Codec<SignedEnvelope>

  export const codec = (): Codec<SignedEnvelope> => {
    if (_codec == null) {
      _codec = message<SignedEnvelope>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.payloadType != null && obj.payloadType !== '')) {
          w.uint32(10)
          w.string(obj.payloadType)
        }

        if ((obj.payload != null && obj.payload.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.payload)
        }

        if ((obj.publicKey != null && obj.publicKey.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.publicKey)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.signature)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          payloadType: '',
          payload: uint8ArrayAlloc(0),
          publicKey: uint8ArrayAlloc(0),
          signature: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.payloadType = reader.string()
              break
            }
            case 2: {
              obj.payload = reader.bytes()
              break
            }
            case 3: {
              obj.publicKey = reader.bytes()
              break
            }
            case 4: {
              obj.signature = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.payloadType`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.payload`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.publicKey`,
                value: reader.bytes()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.signature`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface SignedEnvelopePayloadTypeFieldEvent {
    field: '$.payloadType'
    value: string
  }

  export interface SignedEnvelopePayloadFieldEvent {
    field: '$.payload'
    value: Uint8Array<ArrayBuffer>
  }

  export interface SignedEnvelopePublicKeyFieldEvent {
    field: '$.publicKey'
    value: Uint8Array<ArrayBuffer>
  }

  export interface SignedEnvelopeSignatureFieldEvent {
    field: '$.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<SignedEnvelope>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, SignedEnvelope.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedEnvelope>): SignedEnvelope {
    return decodeMessage(buf, SignedEnvelope.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedEnvelope>): Generator<SignedEnvelopePayloadTypeFieldEvent | SignedEnvelopePayloadFieldEvent | SignedEnvelopePublicKeyFieldEvent | SignedEnvelopeSignatureFieldEvent> {
    return streamMessage(buf, SignedEnvelope.codec(), opts)
  }
}

export interface ModelOffer {
  id: string
  name: string
  contextSize: number
  pricePer1kTokens: bigint
}

export namespace ModelOffer {
  let _codec: Codec<ModelOffer>

  export const codec = (): Codec<ModelOffer> => {
    if (_codec == null) {
      _codec = message<ModelOffer>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.id != null && obj.id !== '')) {
          w.uint32(10)
          w.string(obj.id)
        }

        if ((obj.name != null && obj.name !== '')) {
          w.uint32(18)
          w.string(obj.name)
        }

        if ((obj.contextSize != null && obj.contextSize !== 0)) {
          w.uint32(24)
          w.uint32(obj.contextSize)
        }

        if ((obj.pricePer1kTokens != null && obj.pricePer1kTokens !== 0n)) {
          w.uint32(32)
          writeUint64(w, obj.pricePer1kTokens)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          id: '',
          name: '',
          contextSize: 0,
          pricePer1kTokens: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.id = reader.string()
              break
            }
            case 2: {
              obj.name = reader.string()
              break
            }
            case 3: {
              obj.contextSize = reader.uint32()
              break
            }
            case 4: {
              obj.pricePer1kTokens = reader.uint64()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.id`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.name`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.contextSize`,
                value: reader.uint32()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.pricePer1kTokens`,
                value: reader.uint64()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ModelOfferIdFieldEvent {
    field: '$.id'
    value: string
  }

  export interface ModelOfferNameFieldEvent {
    field: '$.name'
    value: string
  }

  export interface ModelOfferContextSizeFieldEvent {
    field: '$.contextSize'
    value: number
  }

  export interface ModelOfferPricePer1kTokensFieldEvent {
    field: '$.pricePer1kTokens'
    value: bigint
  }

  export function encode (obj: Partial<ModelOffer>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ModelOffer.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelOffer>): ModelOffer {
    return decodeMessage(buf, ModelOffer.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelOffer>): Generator<ModelOfferIdFieldEvent | ModelOfferNameFieldEvent | ModelOfferContextSizeFieldEvent | ModelOfferPricePer1kTokensFieldEvent> {
    return streamMessage(buf, ModelOffer.codec(), opts)
  }
}

export interface CapacityAdvert {
  peerId: string
  multiaddrs: Uint8Array<ArrayBuffer>[]
  models: ModelOffer[]
  freeSlots: number
  totalSlots: number
  queueDepth: number
  tokensPerSecond: number
  ttftMs: number
  rewardAddress: string
  timestampMs: number
  seq: number
}

export namespace CapacityAdvert {
  let _codec: Codec<CapacityAdvert>

  export const codec = (): Codec<CapacityAdvert> => {
    if (_codec == null) {
      _codec = message<CapacityAdvert>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.peerId != null && obj.peerId !== '')) {
          w.uint32(10)
          w.string(obj.peerId)
        }

        if (obj.multiaddrs != null && obj.multiaddrs.length > 0) {
          for (const value of obj.multiaddrs) {
            w.uint32(18)
            w.bytes(value)
          }
        }

        if (obj.models != null && obj.models.length > 0) {
          for (const value of obj.models) {
            w.uint32(26)
            ModelOffer.codec().encode(value, w)
          }
        }

        if ((obj.freeSlots != null && obj.freeSlots !== 0)) {
          w.uint32(32)
          w.uint32(obj.freeSlots)
        }

        if ((obj.totalSlots != null && obj.totalSlots !== 0)) {
          w.uint32(40)
          w.uint32(obj.totalSlots)
        }

        if ((obj.queueDepth != null && obj.queueDepth !== 0)) {
          w.uint32(48)
          w.uint32(obj.queueDepth)
        }

        if ((obj.tokensPerSecond != null && obj.tokensPerSecond !== 0)) {
          w.uint32(61)
          w.float(obj.tokensPerSecond)
        }

        if ((obj.ttftMs != null && obj.ttftMs !== 0)) {
          w.uint32(64)
          w.uint32(obj.ttftMs)
        }

        if ((obj.rewardAddress != null && obj.rewardAddress !== '')) {
          w.uint32(74)
          w.string(obj.rewardAddress)
        }

        if ((obj.timestampMs != null && obj.timestampMs !== 0)) {
          w.uint32(80)
          w.uint64Number(obj.timestampMs)
        }

        if ((obj.seq != null && obj.seq !== 0)) {
          w.uint32(88)
          w.uint64Number(obj.seq)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          peerId: '',
          multiaddrs: [],
          models: [],
          freeSlots: 0,
          totalSlots: 0,
          queueDepth: 0,
          tokensPerSecond: 0,
          ttftMs: 0,
          rewardAddress: '',
          timestampMs: 0,
          seq: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.peerId = reader.string()
              break
            }
            case 2: {
              if (opts.limits?.multiaddrs != null && obj.multiaddrs.length === opts.limits.multiaddrs) {
                throw new MaxLengthError('Decode error - repeated field "multiaddrs" had too many elements')
              }

              obj.multiaddrs.push(reader.bytes())
              break
            }
            case 3: {
              if (opts.limits?.models != null && obj.models.length === opts.limits.models) {
                throw new MaxLengthError('Decode error - repeated field "models" had too many elements')
              }

              obj.models.push(ModelOffer.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.models$
              }))
              break
            }
            case 4: {
              obj.freeSlots = reader.uint32()
              break
            }
            case 5: {
              obj.totalSlots = reader.uint32()
              break
            }
            case 6: {
              obj.queueDepth = reader.uint32()
              break
            }
            case 7: {
              obj.tokensPerSecond = reader.float()
              break
            }
            case 8: {
              obj.ttftMs = reader.uint32()
              break
            }
            case 9: {
              obj.rewardAddress = reader.string()
              break
            }
            case 10: {
              obj.timestampMs = reader.uint64Number()
              break
            }
            case 11: {
              obj.seq = reader.uint64Number()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          multiaddrs: 0,
          models: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.peerId`,
                value: reader.string()
              }
              break
            }
            case 2: {
              if (opts.limits?.multiaddrs != null && obj.multiaddrs === opts.limits.multiaddrs) {
                throw new MaxLengthError('Streaming decode error - repeated field "multiaddrs" had too many elements')
              }

              yield {
                field: `${prefix}.multiaddrs[]`,
                index: obj.multiaddrs,
                value: reader.bytes()
              }

              obj.multiaddrs++

              break
            }
            case 3: {
              if (opts.limits?.models != null && obj.models === opts.limits.models) {
                throw new MaxLengthError('Streaming decode error - repeated field "models" had too many elements')
              }

              for (const evt of ModelOffer.codec().stream(reader, reader.uint32(), `${prefix}.models[]`, {
                limits: opts.limits?.models$
              })) {
                yield {
                  ...evt,
                  index: obj.models
                }
              }

              obj.models++

              break
            }
            case 4: {
              yield {
                field: `${prefix}.freeSlots`,
                value: reader.uint32()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.totalSlots`,
                value: reader.uint32()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.queueDepth`,
                value: reader.uint32()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.tokensPerSecond`,
                value: reader.float()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.ttftMs`,
                value: reader.uint32()
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.rewardAddress`,
                value: reader.string()
              }
              break
            }
            case 10: {
              yield {
                field: `${prefix}.timestampMs`,
                value: reader.uint64Number()
              }
              break
            }
            case 11: {
              yield {
                field: `${prefix}.seq`,
                value: reader.uint64Number()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface CapacityAdvertPeerIdFieldEvent {
    field: '$.peerId'
    value: string
  }

  export interface CapacityAdvertMultiaddrsFieldEvent {
    field: '$.multiaddrs[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface CapacityAdvertModelsIdFieldEvent {
    field: '$.models[].id'
    value: string
    index: number
  }

  export interface CapacityAdvertModelsNameFieldEvent {
    field: '$.models[].name'
    value: string
    index: number
  }

  export interface CapacityAdvertModelsContextSizeFieldEvent {
    field: '$.models[].contextSize'
    value: number
    index: number
  }

  export interface CapacityAdvertModelsPricePer1kTokensFieldEvent {
    field: '$.models[].pricePer1kTokens'
    value: bigint
    index: number
  }

  export interface CapacityAdvertFreeSlotsFieldEvent {
    field: '$.freeSlots'
    value: number
  }

  export interface CapacityAdvertTotalSlotsFieldEvent {
    field: '$.totalSlots'
    value: number
  }

  export interface CapacityAdvertQueueDepthFieldEvent {
    field: '$.queueDepth'
    value: number
  }

  export interface CapacityAdvertTokensPerSecondFieldEvent {
    field: '$.tokensPerSecond'
    value: number
  }

  export interface CapacityAdvertTtftMsFieldEvent {
    field: '$.ttftMs'
    value: number
  }

  export interface CapacityAdvertRewardAddressFieldEvent {
    field: '$.rewardAddress'
    value: string
  }

  export interface CapacityAdvertTimestampMsFieldEvent {
    field: '$.timestampMs'
    value: number
  }

  export interface CapacityAdvertSeqFieldEvent {
    field: '$.seq'
    value: number
  }

  export function encode (obj: Partial<CapacityAdvert>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, CapacityAdvert.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<CapacityAdvert>): CapacityAdvert {
    return decodeMessage(buf, CapacityAdvert.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<CapacityAdvert>): Generator<CapacityAdvertPeerIdFieldEvent | CapacityAdvertMultiaddrsFieldEvent | CapacityAdvertModelsIdFieldEvent | CapacityAdvertModelsNameFieldEvent | CapacityAdvertModelsContextSizeFieldEvent | CapacityAdvertModelsPricePer1kTokensFieldEvent | CapacityAdvertFreeSlotsFieldEvent | CapacityAdvertTotalSlotsFieldEvent | CapacityAdvertQueueDepthFieldEvent | CapacityAdvertTokensPerSecondFieldEvent | CapacityAdvertTtftMsFieldEvent | CapacityAdvertRewardAddressFieldEvent | CapacityAdvertTimestampMsFieldEvent | CapacityAdvertSeqFieldEvent> {
    return streamMessage(buf, CapacityAdvert.codec(), opts)
  }
}

export interface ChatMessage {
  role: string
  content: string
}

export namespace ChatMessage {
  let _codec: Codec<ChatMessage>

  export const codec = (): Codec<ChatMessage> => {
    if (_codec == null) {
      _codec = message<ChatMessage>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.role != null && obj.role !== '')) {
          w.uint32(10)
          w.string(obj.role)
        }

        if ((obj.content != null && obj.content !== '')) {
          w.uint32(18)
          w.string(obj.content)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          role: '',
          content: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.role = reader.string()
              break
            }
            case 2: {
              obj.content = reader.string()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.role`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.content`,
                value: reader.string()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ChatMessageRoleFieldEvent {
    field: '$.role'
    value: string
  }

  export interface ChatMessageContentFieldEvent {
    field: '$.content'
    value: string
  }

  export function encode (obj: Partial<ChatMessage>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ChatMessage.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ChatMessage>): ChatMessage {
    return decodeMessage(buf, ChatMessage.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ChatMessage>): Generator<ChatMessageRoleFieldEvent | ChatMessageContentFieldEvent> {
    return streamMessage(buf, ChatMessage.codec(), opts)
  }
}

export interface ChatMessages {
  messages: ChatMessage[]
}

export namespace ChatMessages {
  let _codec: Codec<ChatMessages>

  export const codec = (): Codec<ChatMessages> => {
    if (_codec == null) {
      _codec = message<ChatMessages>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.messages != null && obj.messages.length > 0) {
          for (const value of obj.messages) {
            w.uint32(10)
            ChatMessage.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          messages: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.messages != null && obj.messages.length === opts.limits.messages) {
                throw new MaxLengthError('Decode error - repeated field "messages" had too many elements')
              }

              obj.messages.push(ChatMessage.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.messages$
              }))
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          messages: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.messages != null && obj.messages === opts.limits.messages) {
                throw new MaxLengthError('Streaming decode error - repeated field "messages" had too many elements')
              }

              for (const evt of ChatMessage.codec().stream(reader, reader.uint32(), `${prefix}.messages[]`, {
                limits: opts.limits?.messages$
              })) {
                yield {
                  ...evt,
                  index: obj.messages
                }
              }

              obj.messages++

              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ChatMessagesMessagesRoleFieldEvent {
    field: '$.messages[].role'
    value: string
    index: number
  }

  export interface ChatMessagesMessagesContentFieldEvent {
    field: '$.messages[].content'
    value: string
    index: number
  }

  export function encode (obj: Partial<ChatMessages>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ChatMessages.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ChatMessages>): ChatMessages {
    return decodeMessage(buf, ChatMessages.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ChatMessages>): Generator<ChatMessagesMessagesRoleFieldEvent | ChatMessagesMessagesContentFieldEvent> {
    return streamMessage(buf, ChatMessages.codec(), opts)
  }
}

export interface TaskParams {
  maxTokens: number
  temperature?: number
  topP?: number
  seed?: number
  stop: string[]
  jsonSchema?: string
}

export namespace TaskParams {
  let _codec: Codec<TaskParams>

  export const codec = (): Codec<TaskParams> => {
    if (_codec == null) {
      _codec = message<TaskParams>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.maxTokens != null && obj.maxTokens !== 0)) {
          w.uint32(8)
          w.uint32(obj.maxTokens)
        }

        if (obj.temperature != null) {
          w.uint32(21)
          w.float(obj.temperature)
        }

        if (obj.topP != null) {
          w.uint32(29)
          w.float(obj.topP)
        }

        if (obj.seed != null) {
          w.uint32(32)
          w.uint64Number(obj.seed)
        }

        if (obj.stop != null && obj.stop.length > 0) {
          for (const value of obj.stop) {
            w.uint32(42)
            w.string(value)
          }
        }

        if (obj.jsonSchema != null) {
          w.uint32(50)
          w.string(obj.jsonSchema)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          maxTokens: 0,
          stop: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.maxTokens = reader.uint32()
              break
            }
            case 2: {
              obj.temperature = reader.float()
              break
            }
            case 3: {
              obj.topP = reader.float()
              break
            }
            case 4: {
              obj.seed = reader.uint64Number()
              break
            }
            case 5: {
              if (opts.limits?.stop != null && obj.stop.length === opts.limits.stop) {
                throw new MaxLengthError('Decode error - repeated field "stop" had too many elements')
              }

              obj.stop.push(reader.string())
              break
            }
            case 6: {
              obj.jsonSchema = reader.string()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          stop: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.maxTokens`,
                value: reader.uint32()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.temperature`,
                value: reader.float()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.topP`,
                value: reader.float()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.seed`,
                value: reader.uint64Number()
              }
              break
            }
            case 5: {
              if (opts.limits?.stop != null && obj.stop === opts.limits.stop) {
                throw new MaxLengthError('Streaming decode error - repeated field "stop" had too many elements')
              }

              yield {
                field: `${prefix}.stop[]`,
                index: obj.stop,
                value: reader.string()
              }

              obj.stop++

              break
            }
            case 6: {
              yield {
                field: `${prefix}.jsonSchema`,
                value: reader.string()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface TaskParamsMaxTokensFieldEvent {
    field: '$.maxTokens'
    value: number
  }

  export interface TaskParamsTemperatureFieldEvent {
    field: '$.temperature'
    value: number
  }

  export interface TaskParamsTopPFieldEvent {
    field: '$.topP'
    value: number
  }

  export interface TaskParamsSeedFieldEvent {
    field: '$.seed'
    value: number
  }

  export interface TaskParamsStopFieldEvent {
    field: '$.stop[]'
    index: number
    value: string
  }

  export interface TaskParamsJsonSchemaFieldEvent {
    field: '$.jsonSchema'
    value: string
  }

  export function encode (obj: Partial<TaskParams>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TaskParams.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskParams>): TaskParams {
    return decodeMessage(buf, TaskParams.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskParams>): Generator<TaskParamsMaxTokensFieldEvent | TaskParamsTemperatureFieldEvent | TaskParamsTopPFieldEvent | TaskParamsSeedFieldEvent | TaskParamsStopFieldEvent | TaskParamsJsonSchemaFieldEvent> {
    return streamMessage(buf, TaskParams.codec(), opts)
  }
}

export interface TaskRequest {
  taskId: Uint8Array<ArrayBuffer>
  modelId: string
  gameId: string
  sessionId: string
  chat?: ChatMessages
  prompt?: string
  params?: TaskParams
  nonce: Uint8Array<ArrayBuffer>
  deadlineMs: number
  responseKey: Uint8Array<ArrayBuffer>
}

export namespace TaskRequest {
  let _codec: Codec<TaskRequest>

  export const codec = (): Codec<TaskRequest> => {
    if (_codec == null) {
      _codec = message<TaskRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        obj = { ...obj }

        if (obj.prompt != null) {
          obj.chat = undefined
        }

        if (obj.chat != null) {
          obj.prompt = undefined
        }

        if ((obj.taskId != null && obj.taskId.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.taskId)
        }

        if ((obj.modelId != null && obj.modelId !== '')) {
          w.uint32(18)
          w.string(obj.modelId)
        }

        if ((obj.gameId != null && obj.gameId !== '')) {
          w.uint32(26)
          w.string(obj.gameId)
        }

        if ((obj.sessionId != null && obj.sessionId !== '')) {
          w.uint32(34)
          w.string(obj.sessionId)
        }

        if (obj.chat != null) {
          w.uint32(42)
          ChatMessages.codec().encode(obj.chat, w)
        }

        if (obj.prompt != null) {
          w.uint32(50)
          w.string(obj.prompt)
        }

        if (obj.params != null) {
          w.uint32(58)
          TaskParams.codec().encode(obj.params, w)
        }

        if ((obj.nonce != null && obj.nonce.byteLength > 0)) {
          w.uint32(66)
          w.bytes(obj.nonce)
        }

        if ((obj.deadlineMs != null && obj.deadlineMs !== 0)) {
          w.uint32(72)
          w.uint64Number(obj.deadlineMs)
        }

        if ((obj.responseKey != null && obj.responseKey.byteLength > 0)) {
          w.uint32(82)
          w.bytes(obj.responseKey)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          taskId: uint8ArrayAlloc(0),
          modelId: '',
          gameId: '',
          sessionId: '',
          nonce: uint8ArrayAlloc(0),
          deadlineMs: 0,
          responseKey: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.taskId = reader.bytes()
              break
            }
            case 2: {
              obj.modelId = reader.string()
              break
            }
            case 3: {
              obj.gameId = reader.string()
              break
            }
            case 4: {
              obj.sessionId = reader.string()
              break
            }
            case 5: {
              obj.chat = ChatMessages.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.chat
              })
              break
            }
            case 6: {
              obj.prompt = reader.string()
              break
            }
            case 7: {
              obj.params = TaskParams.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.params
              })
              break
            }
            case 8: {
              obj.nonce = reader.bytes()
              break
            }
            case 9: {
              obj.deadlineMs = reader.uint64Number()
              break
            }
            case 10: {
              obj.responseKey = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        if (obj.prompt != null) {
          delete obj.chat
        }

        if (obj.chat != null) {
          delete obj.prompt
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.taskId`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.modelId`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.gameId`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.sessionId`,
                value: reader.string()
              }
              break
            }
            case 5: {
              yield * ChatMessages.codec().stream(reader, reader.uint32(), `${prefix}.chat`, {
                limits: opts.limits?.chat
              })

              break
            }
            case 6: {
              yield {
                field: `${prefix}.prompt`,
                value: reader.string()
              }
              break
            }
            case 7: {
              yield * TaskParams.codec().stream(reader, reader.uint32(), `${prefix}.params`, {
                limits: opts.limits?.params
              })

              break
            }
            case 8: {
              yield {
                field: `${prefix}.nonce`,
                value: reader.bytes()
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.deadlineMs`,
                value: reader.uint64Number()
              }
              break
            }
            case 10: {
              yield {
                field: `${prefix}.responseKey`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface TaskRequestTaskIdFieldEvent {
    field: '$.taskId'
    value: Uint8Array<ArrayBuffer>
  }

  export interface TaskRequestModelIdFieldEvent {
    field: '$.modelId'
    value: string
  }

  export interface TaskRequestGameIdFieldEvent {
    field: '$.gameId'
    value: string
  }

  export interface TaskRequestSessionIdFieldEvent {
    field: '$.sessionId'
    value: string
  }

  export interface TaskRequestChatMessagesRoleFieldEvent {
    field: '$.chat.messages[].role'
    value: string
    index: number
  }

  export interface TaskRequestChatMessagesContentFieldEvent {
    field: '$.chat.messages[].content'
    value: string
    index: number
  }

  export interface TaskRequestPromptFieldEvent {
    field: '$.prompt'
    value: string
  }

  export interface TaskRequestParamsMaxTokensFieldEvent {
    field: '$.params.maxTokens'
    value: number
  }

  export interface TaskRequestParamsTemperatureFieldEvent {
    field: '$.params.temperature'
    value: number
  }

  export interface TaskRequestParamsTopPFieldEvent {
    field: '$.params.topP'
    value: number
  }

  export interface TaskRequestParamsSeedFieldEvent {
    field: '$.params.seed'
    value: number
  }

  export interface TaskRequestParamsStopFieldEvent {
    field: '$.params.stop[]'
    index: number
    value: string
  }

  export interface TaskRequestParamsJsonSchemaFieldEvent {
    field: '$.params.jsonSchema'
    value: string
  }

  export interface TaskRequestNonceFieldEvent {
    field: '$.nonce'
    value: Uint8Array<ArrayBuffer>
  }

  export interface TaskRequestDeadlineMsFieldEvent {
    field: '$.deadlineMs'
    value: number
  }

  export interface TaskRequestResponseKeyFieldEvent {
    field: '$.responseKey'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<TaskRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TaskRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskRequest>): TaskRequest {
    return decodeMessage(buf, TaskRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskRequest>): Generator<TaskRequestTaskIdFieldEvent | TaskRequestModelIdFieldEvent | TaskRequestGameIdFieldEvent | TaskRequestSessionIdFieldEvent | TaskRequestChatMessagesRoleFieldEvent | TaskRequestChatMessagesContentFieldEvent | TaskRequestPromptFieldEvent | TaskRequestParamsMaxTokensFieldEvent | TaskRequestParamsTemperatureFieldEvent | TaskRequestParamsTopPFieldEvent | TaskRequestParamsSeedFieldEvent | TaskRequestParamsStopFieldEvent | TaskRequestParamsJsonSchemaFieldEvent | TaskRequestNonceFieldEvent | TaskRequestDeadlineMsFieldEvent | TaskRequestResponseKeyFieldEvent> {
    return streamMessage(buf, TaskRequest.codec(), opts)
  }
}

export interface TaskOpen {
  version: number
  taskId: Uint8Array<ArrayBuffer>
  sealedRequest: Uint8Array<ArrayBuffer>
  requestBoxHeader?: Uint8Array<ArrayBuffer>
}

export namespace TaskOpen {
  let _codec: Codec<TaskOpen>

  export const codec = (): Codec<TaskOpen> => {
    if (_codec == null) {
      _codec = message<TaskOpen>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.version != null && obj.version !== 0)) {
          w.uint32(8)
          w.uint32(obj.version)
        }

        if ((obj.taskId != null && obj.taskId.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.taskId)
        }

        if ((obj.sealedRequest != null && obj.sealedRequest.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.sealedRequest)
        }

        if (obj.requestBoxHeader != null) {
          w.uint32(34)
          w.bytes(obj.requestBoxHeader)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          version: 0,
          taskId: uint8ArrayAlloc(0),
          sealedRequest: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.version = reader.uint32()
              break
            }
            case 2: {
              obj.taskId = reader.bytes()
              break
            }
            case 3: {
              obj.sealedRequest = reader.bytes()
              break
            }
            case 4: {
              obj.requestBoxHeader = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.version`,
                value: reader.uint32()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.taskId`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.sealedRequest`,
                value: reader.bytes()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.requestBoxHeader`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface TaskOpenVersionFieldEvent {
    field: '$.version'
    value: number
  }

  export interface TaskOpenTaskIdFieldEvent {
    field: '$.taskId'
    value: Uint8Array<ArrayBuffer>
  }

  export interface TaskOpenSealedRequestFieldEvent {
    field: '$.sealedRequest'
    value: Uint8Array<ArrayBuffer>
  }

  export interface TaskOpenRequestBoxHeaderFieldEvent {
    field: '$.requestBoxHeader'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<TaskOpen>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TaskOpen.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskOpen>): TaskOpen {
    return decodeMessage(buf, TaskOpen.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskOpen>): Generator<TaskOpenVersionFieldEvent | TaskOpenTaskIdFieldEvent | TaskOpenSealedRequestFieldEvent | TaskOpenRequestBoxHeaderFieldEvent> {
    return streamMessage(buf, TaskOpen.codec(), opts)
  }
}

export interface Usage {
  promptTokens: number
  completionTokens: number
}

export namespace Usage {
  let _codec: Codec<Usage>

  export const codec = (): Codec<Usage> => {
    if (_codec == null) {
      _codec = message<Usage>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.promptTokens != null && obj.promptTokens !== 0)) {
          w.uint32(8)
          w.uint32(obj.promptTokens)
        }

        if ((obj.completionTokens != null && obj.completionTokens !== 0)) {
          w.uint32(16)
          w.uint32(obj.completionTokens)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          promptTokens: 0,
          completionTokens: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.promptTokens = reader.uint32()
              break
            }
            case 2: {
              obj.completionTokens = reader.uint32()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.promptTokens`,
                value: reader.uint32()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.completionTokens`,
                value: reader.uint32()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface UsagePromptTokensFieldEvent {
    field: '$.promptTokens'
    value: number
  }

  export interface UsageCompletionTokensFieldEvent {
    field: '$.completionTokens'
    value: number
  }

  export function encode (obj: Partial<Usage>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Usage.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Usage>): Usage {
    return decodeMessage(buf, Usage.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Usage>): Generator<UsagePromptTokensFieldEvent | UsageCompletionTokensFieldEvent> {
    return streamMessage(buf, Usage.codec(), opts)
  }
}

export interface TaskError {
  code: string
  message: string
  retryable: boolean
}

export namespace TaskError {
  let _codec: Codec<TaskError>

  export const codec = (): Codec<TaskError> => {
    if (_codec == null) {
      _codec = message<TaskError>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.code != null && obj.code !== '')) {
          w.uint32(10)
          w.string(obj.code)
        }

        if ((obj.message != null && obj.message !== '')) {
          w.uint32(18)
          w.string(obj.message)
        }

        if ((obj.retryable != null && obj.retryable !== false)) {
          w.uint32(24)
          w.bool(obj.retryable)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          code: '',
          message: '',
          retryable: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.code = reader.string()
              break
            }
            case 2: {
              obj.message = reader.string()
              break
            }
            case 3: {
              obj.retryable = reader.bool()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.code`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.message`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.retryable`,
                value: reader.bool()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface TaskErrorCodeFieldEvent {
    field: '$.code'
    value: string
  }

  export interface TaskErrorMessageFieldEvent {
    field: '$.message'
    value: string
  }

  export interface TaskErrorRetryableFieldEvent {
    field: '$.retryable'
    value: boolean
  }

  export function encode (obj: Partial<TaskError>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TaskError.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskError>): TaskError {
    return decodeMessage(buf, TaskError.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskError>): Generator<TaskErrorCodeFieldEvent | TaskErrorMessageFieldEvent | TaskErrorRetryableFieldEvent> {
    return streamMessage(buf, TaskError.codec(), opts)
  }
}

export interface TaskChunk {
  seq: number
  text: string
  tokenIds: number[]
  finishReason?: TaskChunk.FinishReason
  usage?: Usage
  error?: TaskError
  proof: Uint8Array<ArrayBuffer>
}

export namespace TaskChunk {
  export enum FinishReason {
    UNSPECIFIED = 'UNSPECIFIED',
    STOP = 'STOP',
    LENGTH = 'LENGTH',
    ABORTED = 'ABORTED',
    ERROR = 'ERROR'
  }

  enum __FinishReasonValues {
    UNSPECIFIED = 0,
    STOP = 1,
    LENGTH = 2,
    ABORTED = 3,
    ERROR = 4
  }

  export namespace FinishReason {
    export const codec = (): Codec<FinishReason> => {
      return enumeration<FinishReason>(__FinishReasonValues)
    }
  }

  let _codec: Codec<TaskChunk>

  export const codec = (): Codec<TaskChunk> => {
    if (_codec == null) {
      _codec = message<TaskChunk>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.seq != null && obj.seq !== 0)) {
          w.uint32(8)
          w.uint64Number(obj.seq)
        }

        if ((obj.text != null && obj.text !== '')) {
          w.uint32(18)
          w.string(obj.text)
        }

        if (obj.tokenIds != null && obj.tokenIds.length > 0) {
          for (const value of obj.tokenIds) {
            w.uint32(24)
            w.uint32(value)
          }
        }

        if (obj.finishReason != null) {
          w.uint32(32)
          TaskChunk.FinishReason.codec().encode(obj.finishReason, w)
        }

        if (obj.usage != null) {
          w.uint32(42)
          Usage.codec().encode(obj.usage, w)
        }

        if (obj.error != null) {
          w.uint32(50)
          TaskError.codec().encode(obj.error, w)
        }

        if ((obj.proof != null && obj.proof.byteLength > 0)) {
          w.uint32(58)
          w.bytes(obj.proof)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          seq: 0,
          text: '',
          tokenIds: [],
          proof: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.seq = reader.uint64Number()
              break
            }
            case 2: {
              obj.text = reader.string()
              break
            }
            case 3: {
              if (opts.limits?.tokenIds != null && obj.tokenIds.length === opts.limits.tokenIds) {
                throw new MaxLengthError('Decode error - repeated field "tokenIds" had too many elements')
              }

              obj.tokenIds.push(reader.uint32())
              break
            }
            case 4: {
              obj.finishReason = TaskChunk.FinishReason.codec().decode(reader)
              break
            }
            case 5: {
              obj.usage = Usage.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.usage
              })
              break
            }
            case 6: {
              obj.error = TaskError.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.error
              })
              break
            }
            case 7: {
              obj.proof = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          tokenIds: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.seq`,
                value: reader.uint64Number()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.text`,
                value: reader.string()
              }
              break
            }
            case 3: {
              if (opts.limits?.tokenIds != null && obj.tokenIds === opts.limits.tokenIds) {
                throw new MaxLengthError('Streaming decode error - repeated field "tokenIds" had too many elements')
              }

              yield {
                field: `${prefix}.tokenIds[]`,
                index: obj.tokenIds,
                value: reader.uint32()
              }

              obj.tokenIds++

              break
            }
            case 4: {
              yield {
                field: `${prefix}.finishReason`,
                value: TaskChunk.FinishReason.codec().decode(reader)
              }
              break
            }
            case 5: {
              yield * Usage.codec().stream(reader, reader.uint32(), `${prefix}.usage`, {
                limits: opts.limits?.usage
              })

              break
            }
            case 6: {
              yield * TaskError.codec().stream(reader, reader.uint32(), `${prefix}.error`, {
                limits: opts.limits?.error
              })

              break
            }
            case 7: {
              yield {
                field: `${prefix}.proof`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface TaskChunkSeqFieldEvent {
    field: '$.seq'
    value: number
  }

  export interface TaskChunkTextFieldEvent {
    field: '$.text'
    value: string
  }

  export interface TaskChunkTokenIdsFieldEvent {
    field: '$.tokenIds[]'
    index: number
    value: number
  }

  export interface TaskChunkFinishReasonFieldEvent {
    field: '$.finishReason'
    value: TaskChunk.FinishReason
  }

  export interface TaskChunkUsagePromptTokensFieldEvent {
    field: '$.usage.promptTokens'
    value: number
  }

  export interface TaskChunkUsageCompletionTokensFieldEvent {
    field: '$.usage.completionTokens'
    value: number
  }

  export interface TaskChunkErrorCodeFieldEvent {
    field: '$.error.code'
    value: string
  }

  export interface TaskChunkErrorMessageFieldEvent {
    field: '$.error.message'
    value: string
  }

  export interface TaskChunkErrorRetryableFieldEvent {
    field: '$.error.retryable'
    value: boolean
  }

  export interface TaskChunkProofFieldEvent {
    field: '$.proof'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<TaskChunk>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TaskChunk.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskChunk>): TaskChunk {
    return decodeMessage(buf, TaskChunk.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskChunk>): Generator<TaskChunkSeqFieldEvent | TaskChunkTextFieldEvent | TaskChunkTokenIdsFieldEvent | TaskChunkFinishReasonFieldEvent | TaskChunkUsagePromptTokensFieldEvent | TaskChunkUsageCompletionTokensFieldEvent | TaskChunkErrorCodeFieldEvent | TaskChunkErrorMessageFieldEvent | TaskChunkErrorRetryableFieldEvent | TaskChunkProofFieldEvent> {
    return streamMessage(buf, TaskChunk.codec(), opts)
  }
}

export interface TaskFrame {
  sealed: Uint8Array<ArrayBuffer>
}

export namespace TaskFrame {
  let _codec: Codec<TaskFrame>

  export const codec = (): Codec<TaskFrame> => {
    if (_codec == null) {
      _codec = message<TaskFrame>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.sealed != null && obj.sealed.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.sealed)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          sealed: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.sealed = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.sealed`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface TaskFrameSealedFieldEvent {
    field: '$.sealed'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<TaskFrame>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TaskFrame.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskFrame>): TaskFrame {
    return decodeMessage(buf, TaskFrame.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskFrame>): Generator<TaskFrameSealedFieldEvent> {
    return streamMessage(buf, TaskFrame.codec(), opts)
  }
}

export interface Receipt {
  taskId: Uint8Array<ArrayBuffer>
  gameId: string
  supplierPeerId: string
  distributorPeerId: string
  modelId: string
  promptTokens: number
  completionTokens: number
  pricePer1kTokens: bigint
  cost: bigint
  blockHeight: number
  promptHash: Uint8Array<ArrayBuffer>
  outputHash: Uint8Array<ArrayBuffer>
  verdict: Receipt.ProofVerdict
  timestampMs: number
}

export namespace Receipt {
  export enum ProofVerdict {
    UNSPECIFIED = 'UNSPECIFIED',
    UNCHECKED = 'UNCHECKED',
    VERIFIED = 'VERIFIED',
    FAILED = 'FAILED'
  }

  enum __ProofVerdictValues {
    UNSPECIFIED = 0,
    UNCHECKED = 1,
    VERIFIED = 2,
    FAILED = 3
  }

  export namespace ProofVerdict {
    export const codec = (): Codec<ProofVerdict> => {
      return enumeration<ProofVerdict>(__ProofVerdictValues)
    }
  }

  let _codec: Codec<Receipt>

  export const codec = (): Codec<Receipt> => {
    if (_codec == null) {
      _codec = message<Receipt>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.taskId != null && obj.taskId.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.taskId)
        }

        if ((obj.gameId != null && obj.gameId !== '')) {
          w.uint32(18)
          w.string(obj.gameId)
        }

        if ((obj.supplierPeerId != null && obj.supplierPeerId !== '')) {
          w.uint32(26)
          w.string(obj.supplierPeerId)
        }

        if ((obj.distributorPeerId != null && obj.distributorPeerId !== '')) {
          w.uint32(34)
          w.string(obj.distributorPeerId)
        }

        if ((obj.modelId != null && obj.modelId !== '')) {
          w.uint32(42)
          w.string(obj.modelId)
        }

        if ((obj.promptTokens != null && obj.promptTokens !== 0)) {
          w.uint32(48)
          w.uint32(obj.promptTokens)
        }

        if ((obj.completionTokens != null && obj.completionTokens !== 0)) {
          w.uint32(56)
          w.uint32(obj.completionTokens)
        }

        if ((obj.pricePer1kTokens != null && obj.pricePer1kTokens !== 0n)) {
          w.uint32(64)
          writeUint64(w, obj.pricePer1kTokens)
        }

        if ((obj.cost != null && obj.cost !== 0n)) {
          w.uint32(72)
          writeUint64(w, obj.cost)
        }

        if ((obj.blockHeight != null && obj.blockHeight !== 0)) {
          w.uint32(80)
          w.uint64Number(obj.blockHeight)
        }

        if ((obj.promptHash != null && obj.promptHash.byteLength > 0)) {
          w.uint32(90)
          w.bytes(obj.promptHash)
        }

        if ((obj.outputHash != null && obj.outputHash.byteLength > 0)) {
          w.uint32(98)
          w.bytes(obj.outputHash)
        }

        if (obj.verdict != null && __ProofVerdictValues[obj.verdict] !== 0) {
          w.uint32(104)
          Receipt.ProofVerdict.codec().encode(obj.verdict, w)
        }

        if ((obj.timestampMs != null && obj.timestampMs !== 0)) {
          w.uint32(112)
          w.uint64Number(obj.timestampMs)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          taskId: uint8ArrayAlloc(0),
          gameId: '',
          supplierPeerId: '',
          distributorPeerId: '',
          modelId: '',
          promptTokens: 0,
          completionTokens: 0,
          pricePer1kTokens: 0n,
          cost: 0n,
          blockHeight: 0,
          promptHash: uint8ArrayAlloc(0),
          outputHash: uint8ArrayAlloc(0),
          verdict: ProofVerdict.UNSPECIFIED,
          timestampMs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.taskId = reader.bytes()
              break
            }
            case 2: {
              obj.gameId = reader.string()
              break
            }
            case 3: {
              obj.supplierPeerId = reader.string()
              break
            }
            case 4: {
              obj.distributorPeerId = reader.string()
              break
            }
            case 5: {
              obj.modelId = reader.string()
              break
            }
            case 6: {
              obj.promptTokens = reader.uint32()
              break
            }
            case 7: {
              obj.completionTokens = reader.uint32()
              break
            }
            case 8: {
              obj.pricePer1kTokens = reader.uint64()
              break
            }
            case 9: {
              obj.cost = reader.uint64()
              break
            }
            case 10: {
              obj.blockHeight = reader.uint64Number()
              break
            }
            case 11: {
              obj.promptHash = reader.bytes()
              break
            }
            case 12: {
              obj.outputHash = reader.bytes()
              break
            }
            case 13: {
              obj.verdict = Receipt.ProofVerdict.codec().decode(reader)
              break
            }
            case 14: {
              obj.timestampMs = reader.uint64Number()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.taskId`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.gameId`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.supplierPeerId`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.distributorPeerId`,
                value: reader.string()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.modelId`,
                value: reader.string()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.promptTokens`,
                value: reader.uint32()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.completionTokens`,
                value: reader.uint32()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.pricePer1kTokens`,
                value: reader.uint64()
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.cost`,
                value: reader.uint64()
              }
              break
            }
            case 10: {
              yield {
                field: `${prefix}.blockHeight`,
                value: reader.uint64Number()
              }
              break
            }
            case 11: {
              yield {
                field: `${prefix}.promptHash`,
                value: reader.bytes()
              }
              break
            }
            case 12: {
              yield {
                field: `${prefix}.outputHash`,
                value: reader.bytes()
              }
              break
            }
            case 13: {
              yield {
                field: `${prefix}.verdict`,
                value: Receipt.ProofVerdict.codec().decode(reader)
              }
              break
            }
            case 14: {
              yield {
                field: `${prefix}.timestampMs`,
                value: reader.uint64Number()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ReceiptTaskIdFieldEvent {
    field: '$.taskId'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ReceiptGameIdFieldEvent {
    field: '$.gameId'
    value: string
  }

  export interface ReceiptSupplierPeerIdFieldEvent {
    field: '$.supplierPeerId'
    value: string
  }

  export interface ReceiptDistributorPeerIdFieldEvent {
    field: '$.distributorPeerId'
    value: string
  }

  export interface ReceiptModelIdFieldEvent {
    field: '$.modelId'
    value: string
  }

  export interface ReceiptPromptTokensFieldEvent {
    field: '$.promptTokens'
    value: number
  }

  export interface ReceiptCompletionTokensFieldEvent {
    field: '$.completionTokens'
    value: number
  }

  export interface ReceiptPricePer1kTokensFieldEvent {
    field: '$.pricePer1kTokens'
    value: bigint
  }

  export interface ReceiptCostFieldEvent {
    field: '$.cost'
    value: bigint
  }

  export interface ReceiptBlockHeightFieldEvent {
    field: '$.blockHeight'
    value: number
  }

  export interface ReceiptPromptHashFieldEvent {
    field: '$.promptHash'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ReceiptOutputHashFieldEvent {
    field: '$.outputHash'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ReceiptVerdictFieldEvent {
    field: '$.verdict'
    value: Receipt.ProofVerdict
  }

  export interface ReceiptTimestampMsFieldEvent {
    field: '$.timestampMs'
    value: number
  }

  export function encode (obj: Partial<Receipt>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Receipt.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Receipt>): Receipt {
    return decodeMessage(buf, Receipt.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Receipt>): Generator<ReceiptTaskIdFieldEvent | ReceiptGameIdFieldEvent | ReceiptSupplierPeerIdFieldEvent | ReceiptDistributorPeerIdFieldEvent | ReceiptModelIdFieldEvent | ReceiptPromptTokensFieldEvent | ReceiptCompletionTokensFieldEvent | ReceiptPricePer1kTokensFieldEvent | ReceiptCostFieldEvent | ReceiptBlockHeightFieldEvent | ReceiptPromptHashFieldEvent | ReceiptOutputHashFieldEvent | ReceiptVerdictFieldEvent | ReceiptTimestampMsFieldEvent> {
    return streamMessage(buf, Receipt.codec(), opts)
  }
}

export interface BlockConfirmation {
  supplierPeerId: string
  blockHeight: number
  taskIds: Uint8Array<ArrayBuffer>[]
  timestampMs: number
  rewardAddress: string
}

export namespace BlockConfirmation {
  let _codec: Codec<BlockConfirmation>

  export const codec = (): Codec<BlockConfirmation> => {
    if (_codec == null) {
      _codec = message<BlockConfirmation>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.supplierPeerId != null && obj.supplierPeerId !== '')) {
          w.uint32(10)
          w.string(obj.supplierPeerId)
        }

        if ((obj.blockHeight != null && obj.blockHeight !== 0)) {
          w.uint32(16)
          w.uint64Number(obj.blockHeight)
        }

        if (obj.taskIds != null && obj.taskIds.length > 0) {
          for (const value of obj.taskIds) {
            w.uint32(26)
            w.bytes(value)
          }
        }

        if ((obj.timestampMs != null && obj.timestampMs !== 0)) {
          w.uint32(32)
          w.uint64Number(obj.timestampMs)
        }

        if ((obj.rewardAddress != null && obj.rewardAddress !== '')) {
          w.uint32(42)
          w.string(obj.rewardAddress)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          supplierPeerId: '',
          blockHeight: 0,
          taskIds: [],
          timestampMs: 0,
          rewardAddress: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.supplierPeerId = reader.string()
              break
            }
            case 2: {
              obj.blockHeight = reader.uint64Number()
              break
            }
            case 3: {
              if (opts.limits?.taskIds != null && obj.taskIds.length === opts.limits.taskIds) {
                throw new MaxLengthError('Decode error - repeated field "taskIds" had too many elements')
              }

              obj.taskIds.push(reader.bytes())
              break
            }
            case 4: {
              obj.timestampMs = reader.uint64Number()
              break
            }
            case 5: {
              obj.rewardAddress = reader.string()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          taskIds: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.supplierPeerId`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.blockHeight`,
                value: reader.uint64Number()
              }
              break
            }
            case 3: {
              if (opts.limits?.taskIds != null && obj.taskIds === opts.limits.taskIds) {
                throw new MaxLengthError('Streaming decode error - repeated field "taskIds" had too many elements')
              }

              yield {
                field: `${prefix}.taskIds[]`,
                index: obj.taskIds,
                value: reader.bytes()
              }

              obj.taskIds++

              break
            }
            case 4: {
              yield {
                field: `${prefix}.timestampMs`,
                value: reader.uint64Number()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.rewardAddress`,
                value: reader.string()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface BlockConfirmationSupplierPeerIdFieldEvent {
    field: '$.supplierPeerId'
    value: string
  }

  export interface BlockConfirmationBlockHeightFieldEvent {
    field: '$.blockHeight'
    value: number
  }

  export interface BlockConfirmationTaskIdsFieldEvent {
    field: '$.taskIds[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface BlockConfirmationTimestampMsFieldEvent {
    field: '$.timestampMs'
    value: number
  }

  export interface BlockConfirmationRewardAddressFieldEvent {
    field: '$.rewardAddress'
    value: string
  }

  export function encode (obj: Partial<BlockConfirmation>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, BlockConfirmation.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BlockConfirmation>): BlockConfirmation {
    return decodeMessage(buf, BlockConfirmation.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BlockConfirmation>): Generator<BlockConfirmationSupplierPeerIdFieldEvent | BlockConfirmationBlockHeightFieldEvent | BlockConfirmationTaskIdsFieldEvent | BlockConfirmationTimestampMsFieldEvent | BlockConfirmationRewardAddressFieldEvent> {
    return streamMessage(buf, BlockConfirmation.codec(), opts)
  }
}

export interface ReceiptBatch {
  distributorPeerId: string
  blockHeight: number
  receipts: Receipt[]
  timestampMs: number
}

export namespace ReceiptBatch {
  let _codec: Codec<ReceiptBatch>

  export const codec = (): Codec<ReceiptBatch> => {
    if (_codec == null) {
      _codec = message<ReceiptBatch>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.distributorPeerId != null && obj.distributorPeerId !== '')) {
          w.uint32(10)
          w.string(obj.distributorPeerId)
        }

        if ((obj.blockHeight != null && obj.blockHeight !== 0)) {
          w.uint32(16)
          w.uint64Number(obj.blockHeight)
        }

        if (obj.receipts != null && obj.receipts.length > 0) {
          for (const value of obj.receipts) {
            w.uint32(26)
            Receipt.codec().encode(value, w)
          }
        }

        if ((obj.timestampMs != null && obj.timestampMs !== 0)) {
          w.uint32(32)
          w.uint64Number(obj.timestampMs)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          distributorPeerId: '',
          blockHeight: 0,
          receipts: [],
          timestampMs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.distributorPeerId = reader.string()
              break
            }
            case 2: {
              obj.blockHeight = reader.uint64Number()
              break
            }
            case 3: {
              if (opts.limits?.receipts != null && obj.receipts.length === opts.limits.receipts) {
                throw new MaxLengthError('Decode error - repeated field "receipts" had too many elements')
              }

              obj.receipts.push(Receipt.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.receipts$
              }))
              break
            }
            case 4: {
              obj.timestampMs = reader.uint64Number()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          receipts: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.distributorPeerId`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.blockHeight`,
                value: reader.uint64Number()
              }
              break
            }
            case 3: {
              if (opts.limits?.receipts != null && obj.receipts === opts.limits.receipts) {
                throw new MaxLengthError('Streaming decode error - repeated field "receipts" had too many elements')
              }

              for (const evt of Receipt.codec().stream(reader, reader.uint32(), `${prefix}.receipts[]`, {
                limits: opts.limits?.receipts$
              })) {
                yield {
                  ...evt,
                  index: obj.receipts
                }
              }

              obj.receipts++

              break
            }
            case 4: {
              yield {
                field: `${prefix}.timestampMs`,
                value: reader.uint64Number()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ReceiptBatchDistributorPeerIdFieldEvent {
    field: '$.distributorPeerId'
    value: string
  }

  export interface ReceiptBatchBlockHeightFieldEvent {
    field: '$.blockHeight'
    value: number
  }

  export interface ReceiptBatchReceiptsTaskIdFieldEvent {
    field: '$.receipts[].taskId'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface ReceiptBatchReceiptsGameIdFieldEvent {
    field: '$.receipts[].gameId'
    value: string
    index: number
  }

  export interface ReceiptBatchReceiptsSupplierPeerIdFieldEvent {
    field: '$.receipts[].supplierPeerId'
    value: string
    index: number
  }

  export interface ReceiptBatchReceiptsDistributorPeerIdFieldEvent {
    field: '$.receipts[].distributorPeerId'
    value: string
    index: number
  }

  export interface ReceiptBatchReceiptsModelIdFieldEvent {
    field: '$.receipts[].modelId'
    value: string
    index: number
  }

  export interface ReceiptBatchReceiptsPromptTokensFieldEvent {
    field: '$.receipts[].promptTokens'
    value: number
    index: number
  }

  export interface ReceiptBatchReceiptsCompletionTokensFieldEvent {
    field: '$.receipts[].completionTokens'
    value: number
    index: number
  }

  export interface ReceiptBatchReceiptsPricePer1kTokensFieldEvent {
    field: '$.receipts[].pricePer1kTokens'
    value: bigint
    index: number
  }

  export interface ReceiptBatchReceiptsCostFieldEvent {
    field: '$.receipts[].cost'
    value: bigint
    index: number
  }

  export interface ReceiptBatchReceiptsBlockHeightFieldEvent {
    field: '$.receipts[].blockHeight'
    value: number
    index: number
  }

  export interface ReceiptBatchReceiptsPromptHashFieldEvent {
    field: '$.receipts[].promptHash'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface ReceiptBatchReceiptsOutputHashFieldEvent {
    field: '$.receipts[].outputHash'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface ReceiptBatchReceiptsVerdictFieldEvent {
    field: '$.receipts[].verdict'
    value: Receipt.ProofVerdict
    index: number
  }

  export interface ReceiptBatchReceiptsTimestampMsFieldEvent {
    field: '$.receipts[].timestampMs'
    value: number
    index: number
  }

  export interface ReceiptBatchTimestampMsFieldEvent {
    field: '$.timestampMs'
    value: number
  }

  export function encode (obj: Partial<ReceiptBatch>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ReceiptBatch.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ReceiptBatch>): ReceiptBatch {
    return decodeMessage(buf, ReceiptBatch.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ReceiptBatch>): Generator<ReceiptBatchDistributorPeerIdFieldEvent | ReceiptBatchBlockHeightFieldEvent | ReceiptBatchReceiptsTaskIdFieldEvent | ReceiptBatchReceiptsGameIdFieldEvent | ReceiptBatchReceiptsSupplierPeerIdFieldEvent | ReceiptBatchReceiptsDistributorPeerIdFieldEvent | ReceiptBatchReceiptsModelIdFieldEvent | ReceiptBatchReceiptsPromptTokensFieldEvent | ReceiptBatchReceiptsCompletionTokensFieldEvent | ReceiptBatchReceiptsPricePer1kTokensFieldEvent | ReceiptBatchReceiptsCostFieldEvent | ReceiptBatchReceiptsBlockHeightFieldEvent | ReceiptBatchReceiptsPromptHashFieldEvent | ReceiptBatchReceiptsOutputHashFieldEvent | ReceiptBatchReceiptsVerdictFieldEvent | ReceiptBatchReceiptsTimestampMsFieldEvent | ReceiptBatchTimestampMsFieldEvent> {
    return streamMessage(buf, ReceiptBatch.codec(), opts)
  }
}

export interface RegistryWrite {
  id: number
  envelope?: SignedEnvelope
}

export namespace RegistryWrite {
  let _codec: Codec<RegistryWrite>

  export const codec = (): Codec<RegistryWrite> => {
    if (_codec == null) {
      _codec = message<RegistryWrite>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.id != null && obj.id !== 0)) {
          w.uint32(8)
          w.uint64Number(obj.id)
        }

        if (obj.envelope != null) {
          w.uint32(18)
          SignedEnvelope.codec().encode(obj.envelope, w)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          id: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.id = reader.uint64Number()
              break
            }
            case 2: {
              obj.envelope = SignedEnvelope.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.envelope
              })
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.id`,
                value: reader.uint64Number()
              }
              break
            }
            case 2: {
              yield * SignedEnvelope.codec().stream(reader, reader.uint32(), `${prefix}.envelope`, {
                limits: opts.limits?.envelope
              })

              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface RegistryWriteIdFieldEvent {
    field: '$.id'
    value: number
  }

  export interface RegistryWriteEnvelopePayloadTypeFieldEvent {
    field: '$.envelope.payloadType'
    value: string
  }

  export interface RegistryWriteEnvelopePayloadFieldEvent {
    field: '$.envelope.payload'
    value: Uint8Array<ArrayBuffer>
  }

  export interface RegistryWriteEnvelopePublicKeyFieldEvent {
    field: '$.envelope.publicKey'
    value: Uint8Array<ArrayBuffer>
  }

  export interface RegistryWriteEnvelopeSignatureFieldEvent {
    field: '$.envelope.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<RegistryWrite>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, RegistryWrite.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<RegistryWrite>): RegistryWrite {
    return decodeMessage(buf, RegistryWrite.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<RegistryWrite>): Generator<RegistryWriteIdFieldEvent | RegistryWriteEnvelopePayloadTypeFieldEvent | RegistryWriteEnvelopePayloadFieldEvent | RegistryWriteEnvelopePublicKeyFieldEvent | RegistryWriteEnvelopeSignatureFieldEvent> {
    return streamMessage(buf, RegistryWrite.codec(), opts)
  }
}

export interface RegistryAck {
  id: number
  ok: boolean
  replicas: number
  duplicate: boolean
  errorCode: string
  errorMessage: string
  retryable: boolean
}

export namespace RegistryAck {
  let _codec: Codec<RegistryAck>

  export const codec = (): Codec<RegistryAck> => {
    if (_codec == null) {
      _codec = message<RegistryAck>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.id != null && obj.id !== 0)) {
          w.uint32(8)
          w.uint64Number(obj.id)
        }

        if ((obj.ok != null && obj.ok !== false)) {
          w.uint32(16)
          w.bool(obj.ok)
        }

        if ((obj.replicas != null && obj.replicas !== 0)) {
          w.uint32(24)
          w.uint32(obj.replicas)
        }

        if ((obj.duplicate != null && obj.duplicate !== false)) {
          w.uint32(32)
          w.bool(obj.duplicate)
        }

        if ((obj.errorCode != null && obj.errorCode !== '')) {
          w.uint32(42)
          w.string(obj.errorCode)
        }

        if ((obj.errorMessage != null && obj.errorMessage !== '')) {
          w.uint32(50)
          w.string(obj.errorMessage)
        }

        if ((obj.retryable != null && obj.retryable !== false)) {
          w.uint32(56)
          w.bool(obj.retryable)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          id: 0,
          ok: false,
          replicas: 0,
          duplicate: false,
          errorCode: '',
          errorMessage: '',
          retryable: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.id = reader.uint64Number()
              break
            }
            case 2: {
              obj.ok = reader.bool()
              break
            }
            case 3: {
              obj.replicas = reader.uint32()
              break
            }
            case 4: {
              obj.duplicate = reader.bool()
              break
            }
            case 5: {
              obj.errorCode = reader.string()
              break
            }
            case 6: {
              obj.errorMessage = reader.string()
              break
            }
            case 7: {
              obj.retryable = reader.bool()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.id`,
                value: reader.uint64Number()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.ok`,
                value: reader.bool()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.replicas`,
                value: reader.uint32()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.duplicate`,
                value: reader.bool()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.errorCode`,
                value: reader.string()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.errorMessage`,
                value: reader.string()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.retryable`,
                value: reader.bool()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface RegistryAckIdFieldEvent {
    field: '$.id'
    value: number
  }

  export interface RegistryAckOkFieldEvent {
    field: '$.ok'
    value: boolean
  }

  export interface RegistryAckReplicasFieldEvent {
    field: '$.replicas'
    value: number
  }

  export interface RegistryAckDuplicateFieldEvent {
    field: '$.duplicate'
    value: boolean
  }

  export interface RegistryAckErrorCodeFieldEvent {
    field: '$.errorCode'
    value: string
  }

  export interface RegistryAckErrorMessageFieldEvent {
    field: '$.errorMessage'
    value: string
  }

  export interface RegistryAckRetryableFieldEvent {
    field: '$.retryable'
    value: boolean
  }

  export function encode (obj: Partial<RegistryAck>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, RegistryAck.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<RegistryAck>): RegistryAck {
    return decodeMessage(buf, RegistryAck.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<RegistryAck>): Generator<RegistryAckIdFieldEvent | RegistryAckOkFieldEvent | RegistryAckReplicasFieldEvent | RegistryAckDuplicateFieldEvent | RegistryAckErrorCodeFieldEvent | RegistryAckErrorMessageFieldEvent | RegistryAckRetryableFieldEvent> {
    return streamMessage(buf, RegistryAck.codec(), opts)
  }
}

export interface BlockSummary {
  blockHeight: number
  count: number
  root: Uint8Array<ArrayBuffer>
}

export namespace BlockSummary {
  let _codec: Codec<BlockSummary>

  export const codec = (): Codec<BlockSummary> => {
    if (_codec == null) {
      _codec = message<BlockSummary>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.blockHeight != null && obj.blockHeight !== 0)) {
          w.uint32(8)
          w.uint64Number(obj.blockHeight)
        }

        if ((obj.count != null && obj.count !== 0)) {
          w.uint32(16)
          w.uint32(obj.count)
        }

        if ((obj.root != null && obj.root.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.root)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          blockHeight: 0,
          count: 0,
          root: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.blockHeight = reader.uint64Number()
              break
            }
            case 2: {
              obj.count = reader.uint32()
              break
            }
            case 3: {
              obj.root = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.blockHeight`,
                value: reader.uint64Number()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.count`,
                value: reader.uint32()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.root`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface BlockSummaryBlockHeightFieldEvent {
    field: '$.blockHeight'
    value: number
  }

  export interface BlockSummaryCountFieldEvent {
    field: '$.count'
    value: number
  }

  export interface BlockSummaryRootFieldEvent {
    field: '$.root'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<BlockSummary>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, BlockSummary.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BlockSummary>): BlockSummary {
    return decodeMessage(buf, BlockSummary.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BlockSummary>): Generator<BlockSummaryBlockHeightFieldEvent | BlockSummaryCountFieldEvent | BlockSummaryRootFieldEvent> {
    return streamMessage(buf, BlockSummary.codec(), opts)
  }
}

export interface BlockSummaries {
  registryPeerId: string
  blocks: BlockSummary[]
  timestampMs: number
}

export namespace BlockSummaries {
  let _codec: Codec<BlockSummaries>

  export const codec = (): Codec<BlockSummaries> => {
    if (_codec == null) {
      _codec = message<BlockSummaries>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.registryPeerId != null && obj.registryPeerId !== '')) {
          w.uint32(10)
          w.string(obj.registryPeerId)
        }

        if (obj.blocks != null && obj.blocks.length > 0) {
          for (const value of obj.blocks) {
            w.uint32(18)
            BlockSummary.codec().encode(value, w)
          }
        }

        if ((obj.timestampMs != null && obj.timestampMs !== 0)) {
          w.uint32(24)
          w.uint64Number(obj.timestampMs)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          registryPeerId: '',
          blocks: [],
          timestampMs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.registryPeerId = reader.string()
              break
            }
            case 2: {
              if (opts.limits?.blocks != null && obj.blocks.length === opts.limits.blocks) {
                throw new MaxLengthError('Decode error - repeated field "blocks" had too many elements')
              }

              obj.blocks.push(BlockSummary.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.blocks$
              }))
              break
            }
            case 3: {
              obj.timestampMs = reader.uint64Number()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          blocks: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.registryPeerId`,
                value: reader.string()
              }
              break
            }
            case 2: {
              if (opts.limits?.blocks != null && obj.blocks === opts.limits.blocks) {
                throw new MaxLengthError('Streaming decode error - repeated field "blocks" had too many elements')
              }

              for (const evt of BlockSummary.codec().stream(reader, reader.uint32(), `${prefix}.blocks[]`, {
                limits: opts.limits?.blocks$
              })) {
                yield {
                  ...evt,
                  index: obj.blocks
                }
              }

              obj.blocks++

              break
            }
            case 3: {
              yield {
                field: `${prefix}.timestampMs`,
                value: reader.uint64Number()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface BlockSummariesRegistryPeerIdFieldEvent {
    field: '$.registryPeerId'
    value: string
  }

  export interface BlockSummariesBlocksBlockHeightFieldEvent {
    field: '$.blocks[].blockHeight'
    value: number
    index: number
  }

  export interface BlockSummariesBlocksCountFieldEvent {
    field: '$.blocks[].count'
    value: number
    index: number
  }

  export interface BlockSummariesBlocksRootFieldEvent {
    field: '$.blocks[].root'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface BlockSummariesTimestampMsFieldEvent {
    field: '$.timestampMs'
    value: number
  }

  export function encode (obj: Partial<BlockSummaries>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, BlockSummaries.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BlockSummaries>): BlockSummaries {
    return decodeMessage(buf, BlockSummaries.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BlockSummaries>): Generator<BlockSummariesRegistryPeerIdFieldEvent | BlockSummariesBlocksBlockHeightFieldEvent | BlockSummariesBlocksCountFieldEvent | BlockSummariesBlocksRootFieldEvent | BlockSummariesTimestampMsFieldEvent> {
    return streamMessage(buf, BlockSummaries.codec(), opts)
  }
}

export interface SyncRequest {
  spans?: SpanQuery
  items?: ItemsQuery
}

export namespace SyncRequest {
  let _codec: Codec<SyncRequest>

  export const codec = (): Codec<SyncRequest> => {
    if (_codec == null) {
      _codec = message<SyncRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.spans != null) {
          w.uint32(10)
          SpanQuery.codec().encode(obj.spans, w)
        }

        if (obj.items != null) {
          w.uint32(18)
          ItemsQuery.codec().encode(obj.items, w)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {}

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.spans = SpanQuery.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.spans
              })
              break
            }
            case 2: {
              obj.items = ItemsQuery.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.items
              })
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield * SpanQuery.codec().stream(reader, reader.uint32(), `${prefix}.spans`, {
                limits: opts.limits?.spans
              })

              break
            }
            case 2: {
              yield * ItemsQuery.codec().stream(reader, reader.uint32(), `${prefix}.items`, {
                limits: opts.limits?.items
              })

              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface SyncRequestSpansFromBlockFieldEvent {
    field: '$.spans.fromBlock'
    value: number
  }

  export interface SyncRequestSpansToBlockFieldEvent {
    field: '$.spans.toBlock'
    value: number
  }

  export interface SyncRequestSpansSpanFieldEvent {
    field: '$.spans.span'
    value: number
  }

  export interface SyncRequestItemsBlockHeightFieldEvent {
    field: '$.items.blockHeight'
    value: number
  }

  export interface SyncRequestItemsHaveFieldEvent {
    field: '$.items.have[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<SyncRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, SyncRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SyncRequest>): SyncRequest {
    return decodeMessage(buf, SyncRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SyncRequest>): Generator<SyncRequestSpansFromBlockFieldEvent | SyncRequestSpansToBlockFieldEvent | SyncRequestSpansSpanFieldEvent | SyncRequestItemsBlockHeightFieldEvent | SyncRequestItemsHaveFieldEvent> {
    return streamMessage(buf, SyncRequest.codec(), opts)
  }
}

export interface SpanQuery {
  fromBlock: number
  toBlock: number
  span: number
}

export namespace SpanQuery {
  let _codec: Codec<SpanQuery>

  export const codec = (): Codec<SpanQuery> => {
    if (_codec == null) {
      _codec = message<SpanQuery>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.fromBlock != null && obj.fromBlock !== 0)) {
          w.uint32(8)
          w.uint64Number(obj.fromBlock)
        }

        if ((obj.toBlock != null && obj.toBlock !== 0)) {
          w.uint32(16)
          w.uint64Number(obj.toBlock)
        }

        if ((obj.span != null && obj.span !== 0)) {
          w.uint32(24)
          w.uint32(obj.span)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          fromBlock: 0,
          toBlock: 0,
          span: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.fromBlock = reader.uint64Number()
              break
            }
            case 2: {
              obj.toBlock = reader.uint64Number()
              break
            }
            case 3: {
              obj.span = reader.uint32()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.fromBlock`,
                value: reader.uint64Number()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.toBlock`,
                value: reader.uint64Number()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.span`,
                value: reader.uint32()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface SpanQueryFromBlockFieldEvent {
    field: '$.fromBlock'
    value: number
  }

  export interface SpanQueryToBlockFieldEvent {
    field: '$.toBlock'
    value: number
  }

  export interface SpanQuerySpanFieldEvent {
    field: '$.span'
    value: number
  }

  export function encode (obj: Partial<SpanQuery>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, SpanQuery.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SpanQuery>): SpanQuery {
    return decodeMessage(buf, SpanQuery.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SpanQuery>): Generator<SpanQueryFromBlockFieldEvent | SpanQueryToBlockFieldEvent | SpanQuerySpanFieldEvent> {
    return streamMessage(buf, SpanQuery.codec(), opts)
  }
}

export interface ItemsQuery {
  blockHeight: number
  have: Uint8Array<ArrayBuffer>[]
}

export namespace ItemsQuery {
  let _codec: Codec<ItemsQuery>

  export const codec = (): Codec<ItemsQuery> => {
    if (_codec == null) {
      _codec = message<ItemsQuery>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.blockHeight != null && obj.blockHeight !== 0)) {
          w.uint32(8)
          w.uint64Number(obj.blockHeight)
        }

        if (obj.have != null && obj.have.length > 0) {
          for (const value of obj.have) {
            w.uint32(18)
            w.bytes(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          blockHeight: 0,
          have: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.blockHeight = reader.uint64Number()
              break
            }
            case 2: {
              if (opts.limits?.have != null && obj.have.length === opts.limits.have) {
                throw new MaxLengthError('Decode error - repeated field "have" had too many elements')
              }

              obj.have.push(reader.bytes())
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          have: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.blockHeight`,
                value: reader.uint64Number()
              }
              break
            }
            case 2: {
              if (opts.limits?.have != null && obj.have === opts.limits.have) {
                throw new MaxLengthError('Streaming decode error - repeated field "have" had too many elements')
              }

              yield {
                field: `${prefix}.have[]`,
                index: obj.have,
                value: reader.bytes()
              }

              obj.have++

              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ItemsQueryBlockHeightFieldEvent {
    field: '$.blockHeight'
    value: number
  }

  export interface ItemsQueryHaveFieldEvent {
    field: '$.have[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<ItemsQuery>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ItemsQuery.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ItemsQuery>): ItemsQuery {
    return decodeMessage(buf, ItemsQuery.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ItemsQuery>): Generator<ItemsQueryBlockHeightFieldEvent | ItemsQueryHaveFieldEvent> {
    return streamMessage(buf, ItemsQuery.codec(), opts)
  }
}

export interface SyncResponse {
  spans: BlockSummary[]
  envelopes: Uint8Array<ArrayBuffer>[]
}

export namespace SyncResponse {
  let _codec: Codec<SyncResponse>

  export const codec = (): Codec<SyncResponse> => {
    if (_codec == null) {
      _codec = message<SyncResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.spans != null && obj.spans.length > 0) {
          for (const value of obj.spans) {
            w.uint32(10)
            BlockSummary.codec().encode(value, w)
          }
        }

        if (obj.envelopes != null && obj.envelopes.length > 0) {
          for (const value of obj.envelopes) {
            w.uint32(18)
            w.bytes(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          spans: [],
          envelopes: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.spans != null && obj.spans.length === opts.limits.spans) {
                throw new MaxLengthError('Decode error - repeated field "spans" had too many elements')
              }

              obj.spans.push(BlockSummary.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.spans$
              }))
              break
            }
            case 2: {
              if (opts.limits?.envelopes != null && obj.envelopes.length === opts.limits.envelopes) {
                throw new MaxLengthError('Decode error - repeated field "envelopes" had too many elements')
              }

              obj.envelopes.push(reader.bytes())
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          spans: 0,
          envelopes: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.spans != null && obj.spans === opts.limits.spans) {
                throw new MaxLengthError('Streaming decode error - repeated field "spans" had too many elements')
              }

              for (const evt of BlockSummary.codec().stream(reader, reader.uint32(), `${prefix}.spans[]`, {
                limits: opts.limits?.spans$
              })) {
                yield {
                  ...evt,
                  index: obj.spans
                }
              }

              obj.spans++

              break
            }
            case 2: {
              if (opts.limits?.envelopes != null && obj.envelopes === opts.limits.envelopes) {
                throw new MaxLengthError('Streaming decode error - repeated field "envelopes" had too many elements')
              }

              yield {
                field: `${prefix}.envelopes[]`,
                index: obj.envelopes,
                value: reader.bytes()
              }

              obj.envelopes++

              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface SyncResponseSpansBlockHeightFieldEvent {
    field: '$.spans[].blockHeight'
    value: number
    index: number
  }

  export interface SyncResponseSpansCountFieldEvent {
    field: '$.spans[].count'
    value: number
    index: number
  }

  export interface SyncResponseSpansRootFieldEvent {
    field: '$.spans[].root'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface SyncResponseEnvelopesFieldEvent {
    field: '$.envelopes[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<SyncResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, SyncResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SyncResponse>): SyncResponse {
    return decodeMessage(buf, SyncResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SyncResponse>): Generator<SyncResponseSpansBlockHeightFieldEvent | SyncResponseSpansCountFieldEvent | SyncResponseSpansRootFieldEvent | SyncResponseEnvelopesFieldEvent> {
    return streamMessage(buf, SyncResponse.codec(), opts)
  }
}

export interface DayReportSignature {
  registryPeerId: string
  day: number
  root: Uint8Array<ArrayBuffer>
  totalDebit: Uint8Array<ArrayBuffer>
  signer: string
  signature: Uint8Array<ArrayBuffer>
}

export namespace DayReportSignature {
  let _codec: Codec<DayReportSignature>

  export const codec = (): Codec<DayReportSignature> => {
    if (_codec == null) {
      _codec = message<DayReportSignature>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.registryPeerId != null && obj.registryPeerId !== '')) {
          w.uint32(10)
          w.string(obj.registryPeerId)
        }

        if ((obj.day != null && obj.day !== 0)) {
          w.uint32(16)
          w.uint64Number(obj.day)
        }

        if ((obj.root != null && obj.root.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.root)
        }

        if ((obj.totalDebit != null && obj.totalDebit.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.totalDebit)
        }

        if ((obj.signer != null && obj.signer !== '')) {
          w.uint32(42)
          w.string(obj.signer)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(50)
          w.bytes(obj.signature)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          registryPeerId: '',
          day: 0,
          root: uint8ArrayAlloc(0),
          totalDebit: uint8ArrayAlloc(0),
          signer: '',
          signature: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.registryPeerId = reader.string()
              break
            }
            case 2: {
              obj.day = reader.uint64Number()
              break
            }
            case 3: {
              obj.root = reader.bytes()
              break
            }
            case 4: {
              obj.totalDebit = reader.bytes()
              break
            }
            case 5: {
              obj.signer = reader.string()
              break
            }
            case 6: {
              obj.signature = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.registryPeerId`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.day`,
                value: reader.uint64Number()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.root`,
                value: reader.bytes()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.totalDebit`,
                value: reader.bytes()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.signer`,
                value: reader.string()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.signature`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface DayReportSignatureRegistryPeerIdFieldEvent {
    field: '$.registryPeerId'
    value: string
  }

  export interface DayReportSignatureDayFieldEvent {
    field: '$.day'
    value: number
  }

  export interface DayReportSignatureRootFieldEvent {
    field: '$.root'
    value: Uint8Array<ArrayBuffer>
  }

  export interface DayReportSignatureTotalDebitFieldEvent {
    field: '$.totalDebit'
    value: Uint8Array<ArrayBuffer>
  }

  export interface DayReportSignatureSignerFieldEvent {
    field: '$.signer'
    value: string
  }

  export interface DayReportSignatureSignatureFieldEvent {
    field: '$.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<DayReportSignature>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, DayReportSignature.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<DayReportSignature>): DayReportSignature {
    return decodeMessage(buf, DayReportSignature.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<DayReportSignature>): Generator<DayReportSignatureRegistryPeerIdFieldEvent | DayReportSignatureDayFieldEvent | DayReportSignatureRootFieldEvent | DayReportSignatureTotalDebitFieldEvent | DayReportSignatureSignerFieldEvent | DayReportSignatureSignatureFieldEvent> {
    return streamMessage(buf, DayReportSignature.codec(), opts)
  }
}

export interface ModelKeyRequest {
  modelId: string
}

export namespace ModelKeyRequest {
  let _codec: Codec<ModelKeyRequest>

  export const codec = (): Codec<ModelKeyRequest> => {
    if (_codec == null) {
      _codec = message<ModelKeyRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.modelId != null && obj.modelId !== '')) {
          w.uint32(10)
          w.string(obj.modelId)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          modelId: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.modelId = reader.string()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.modelId`,
                value: reader.string()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ModelKeyRequestModelIdFieldEvent {
    field: '$.modelId'
    value: string
  }

  export function encode (obj: Partial<ModelKeyRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ModelKeyRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelKeyRequest>): ModelKeyRequest {
    return decodeMessage(buf, ModelKeyRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelKeyRequest>): Generator<ModelKeyRequestModelIdFieldEvent> {
    return streamMessage(buf, ModelKeyRequest.codec(), opts)
  }
}

export interface ModelKeyResponse {
  key: Uint8Array<ArrayBuffer>
  errorCode: string
  errorMessage: string
}

export namespace ModelKeyResponse {
  let _codec: Codec<ModelKeyResponse>

  export const codec = (): Codec<ModelKeyResponse> => {
    if (_codec == null) {
      _codec = message<ModelKeyResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.key != null && obj.key.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.key)
        }

        if ((obj.errorCode != null && obj.errorCode !== '')) {
          w.uint32(18)
          w.string(obj.errorCode)
        }

        if ((obj.errorMessage != null && obj.errorMessage !== '')) {
          w.uint32(26)
          w.string(obj.errorMessage)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          key: uint8ArrayAlloc(0),
          errorCode: '',
          errorMessage: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.key = reader.bytes()
              break
            }
            case 2: {
              obj.errorCode = reader.string()
              break
            }
            case 3: {
              obj.errorMessage = reader.string()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.key`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.errorCode`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.errorMessage`,
                value: reader.string()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ModelKeyResponseKeyFieldEvent {
    field: '$.key'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ModelKeyResponseErrorCodeFieldEvent {
    field: '$.errorCode'
    value: string
  }

  export interface ModelKeyResponseErrorMessageFieldEvent {
    field: '$.errorMessage'
    value: string
  }

  export function encode (obj: Partial<ModelKeyResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ModelKeyResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelKeyResponse>): ModelKeyResponse {
    return decodeMessage(buf, ModelKeyResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ModelKeyResponse>): Generator<ModelKeyResponseKeyFieldEvent | ModelKeyResponseErrorCodeFieldEvent | ModelKeyResponseErrorMessageFieldEvent> {
    return streamMessage(buf, ModelKeyResponse.codec(), opts)
  }
}
