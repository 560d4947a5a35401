/**
 * The OpenAI-compatible HTTP surface: validation of chat/completions request
 * bodies into gcn's InferenceRequest parts, and the response, chunk, model
 * and error shapes OpenAI clients expect. Pure functions, no I/O.
 *
 * Fields that would change the output but that gcn cannot honour are
 * rejected (400 naming the field) rather than silently ignored; harmless
 * fields and fields unknown to this version are accepted, because official
 * clients start sending new fields before servers know them.
 */
import {
  type ChatMessage,
  type ChatRole,
  type FinishReason,
  type GenerationParams,
  type InferenceInput,
  type ModelInfo,
  REQUEST_LIMITS,
  type Usage
} from '@gcn/core'
import { InvalidRequestError, PromptTooLongError } from './errors.js'

/**
 * A field gcn understands but cannot honour (HTTP 400, OpenAI code
 * `unsupported_parameter`); keeps InvalidRequestError's `code`.
 */
export class UnsupportedParameterError extends InvalidRequestError {
  override name = 'UnsupportedParameterError'
}

export type Endpoint = 'chat' | 'completion'

/** A validated request, still without the game and session ids (those come from the HTTP layer). */
export interface ParsedRequest {
  endpoint: Endpoint
  model: string
  input: InferenceInput
  params: GenerationParams
  stream: boolean
  includeUsage: boolean
  /** OpenAI's end-user id, when given. */
  user?: string
  /** Characters of prompt text, for the size check and logs. */
  promptChars: number
}

export interface ParseOptions {
  defaultMaxTokens: number
  maxModelChars: number
}

type JsonObject = Record<string, unknown>

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Own properties only: a body carrying `__proto__` or `constructor` keys changes nothing. */
function field(obj: JsonObject, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined
}

/** OpenAI accepts `null` for every optional field and means "not set". */
function absent(v: unknown): v is undefined | null {
  return v === undefined || v === null
}

function invalid(param: string | undefined, message: string): never {
  throw new InvalidRequestError(message, param === undefined ? {} : { param })
}

function unsupported(param: string, what = `'${param}' is not supported`): never {
  throw new UnsupportedParameterError(what, { param })
}

function integerIn(param: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    invalid(param, `'${param}' must be an integer from ${min} to ${max}`)
  }
  return v
}

function numberIn(param: string, v: unknown, min: number, max: number, minExclusive = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v > max || (minExclusive ? v <= min : v < min)) {
    invalid(param, `'${param}' must be a number ${minExclusive ? 'above' : 'from'} ${min} ${minExclusive ? 'up ' : ''}to ${max}`)
  }
  return v
}

function booleanField(param: string, v: unknown): boolean | undefined {
  if (absent(v)) return undefined
  if (typeof v !== 'boolean') invalid(param, `'${param}' must be a boolean`)
  return v
}

/** Rejects every field that would change the output in a way gcn cannot provide. */
function rejectUnsupported(body: JsonObject): void {
  const n = field(body, 'n')
  if (!absent(n) && n !== 1) {
    if (typeof n === 'number' && Number.isSafeInteger(n) && n > 1) unsupported('n', "'n' > 1 is not supported; send separate requests")
    invalid('n', "'n' must be 1")
  }
  const bestOf = field(body, 'best_of')
  if (!absent(bestOf) && bestOf !== 1) {
    if (typeof bestOf === 'number' && Number.isSafeInteger(bestOf) && bestOf > 1) unsupported('best_of', "'best_of' > 1 is not supported")
    invalid('best_of', "'best_of' must be 1")
  }
  const tools = field(body, 'tools')
  if (!absent(tools) && !(Array.isArray(tools) && tools.length === 0)) unsupported('tools', 'tool calling is not supported')
  const toolChoice = field(body, 'tool_choice')
  if (!absent(toolChoice) && toolChoice !== 'none') unsupported('tool_choice', "'tool_choice' other than 'none' is not supported")
  const functions = field(body, 'functions')
  if (!absent(functions) && !(Array.isArray(functions) && functions.length === 0))
    unsupported('functions', 'function calling is not supported')
  const functionCall = field(body, 'function_call')
  if (!absent(functionCall) && functionCall !== 'none') unsupported('function_call', 'function calling is not supported')
  const logprobs = field(body, 'logprobs')
  if (!absent(logprobs) && logprobs !== false) unsupported('logprobs', 'log probabilities are not supported')
  const topLogprobs = field(body, 'top_logprobs')
  if (!absent(topLogprobs) && topLogprobs !== 0) unsupported('top_logprobs', 'log probabilities are not supported')
  const logitBias = field(body, 'logit_bias')
  if (!absent(logitBias)) {
    if (!isObject(logitBias)) invalid('logit_bias', "'logit_bias' must be an object")
    if (Object.keys(logitBias).length > 0) unsupported('logit_bias')
  }
  for (const param of ['presence_penalty', 'frequency_penalty']) {
    const v = field(body, param)
    if (absent(v)) continue
    numberIn(param, v, -2, 2)
    if (v !== 0) unsupported(param, `non-zero '${param}' is not supported`)
  }
  const echo = field(body, 'echo')
  if (booleanField('echo', echo) === true) unsupported('echo')
  const suffix = field(body, 'suffix')
  if (!absent(suffix) && suffix !== '') unsupported('suffix')
}

function parseModel(body: JsonObject, opts: ParseOptions): string {
  const model = field(body, 'model')
  if (absent(model)) invalid('model', "'model' is required")
  if (typeof model !== 'string' || model.length === 0 || model.length > opts.maxModelChars) {
    invalid('model', `'model' must be a string of 1 to ${opts.maxModelChars} characters`)
  }
  return model
}

function parseStop(v: unknown): string[] | undefined {
  if (absent(v)) return undefined
  const list = typeof v === 'string' ? [v] : v
  if (!Array.isArray(list)) invalid('stop', "'stop' must be a string or an array of strings")
  if (list.length > REQUEST_LIMITS.maxStopStrings) invalid('stop', `'stop' may hold at most ${REQUEST_LIMITS.maxStopStrings} strings`)
  for (const s of list) {
    if (typeof s !== 'string' || s.length === 0 || s.length > REQUEST_LIMITS.maxStopChars) {
      invalid('stop', `each stop string must have 1 to ${REQUEST_LIMITS.maxStopChars} characters`)
    }
  }
  return list.length === 0 ? undefined : (list as string[])
}

const PERMISSIVE_OBJECT_SCHEMA = JSON.stringify({ type: 'object' })

/** `response_format` → a JSON schema string for the grammar, or undefined for plain text. */
function parseResponseFormat(v: unknown): string | undefined {
  if (absent(v)) return undefined
  if (!isObject(v)) invalid('response_format', "'response_format' must be an object")
  const type = field(v, 'type')
  if (type === 'text') return undefined
  if (type === 'json_object') return PERMISSIVE_OBJECT_SCHEMA
  if (type !== 'json_schema') invalid('response_format.type', "'response_format.type' must be 'text', 'json_object' or 'json_schema'")
  const spec = field(v, 'json_schema')
  if (!isObject(spec)) invalid('response_format.json_schema', "'response_format.json_schema' must be an object")
  const name = field(spec, 'name')
  if (typeof name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
    invalid('response_format.json_schema.name', "'response_format.json_schema.name' must be 1 to 64 of a-z, A-Z, 0-9, _ and -")
  }
  booleanField('response_format.json_schema.strict', field(spec, 'strict'))
  const schema = field(spec, 'schema')
  if (!isObject(schema)) invalid('response_format.json_schema.schema', "'response_format.json_schema.schema' must be a JSON schema object")
  let text: string
  try {
    text = JSON.stringify(schema)
  } catch {
    // Only a pathologically deep schema fails to serialise (stack overflow).
    invalid('response_format.json_schema.schema', 'the JSON schema is too deeply nested')
  }
  if (text.length > REQUEST_LIMITS.maxJsonSchemaChars) {
    invalid('response_format.json_schema.schema', `the JSON schema must be at most ${REQUEST_LIMITS.maxJsonSchemaChars} characters`)
  }
  return text
}

function parseParams(body: JsonObject, opts: ParseOptions): GenerationParams {
  let maxTokens = opts.defaultMaxTokens
  const maxTokensField = field(body, 'max_tokens')
  if (!absent(maxTokensField)) maxTokens = integerIn('max_tokens', maxTokensField, 1, REQUEST_LIMITS.maxTokens)
  // The newer name wins when a client sends both.
  const maxCompletionTokens = field(body, 'max_completion_tokens')
  if (!absent(maxCompletionTokens)) maxTokens = integerIn('max_completion_tokens', maxCompletionTokens, 1, REQUEST_LIMITS.maxTokens)

  const params: GenerationParams = { maxTokens }
  const temperature = field(body, 'temperature')
  if (!absent(temperature)) params.temperature = numberIn('temperature', temperature, 0, 2)
  const topP = field(body, 'top_p')
  if (!absent(topP)) params.topP = numberIn('top_p', topP, 0, 1, true)
  const seed = field(body, 'seed')
  if (!absent(seed)) params.seed = integerIn('seed', seed, 0, Number.MAX_SAFE_INTEGER)
  const stop = parseStop(field(body, 'stop'))
  if (stop !== undefined) params.stop = stop
  const jsonSchema = parseResponseFormat(field(body, 'response_format'))
  if (jsonSchema !== undefined) params.jsonSchema = jsonSchema
  return params
}

const ROLES: Record<string, ChatRole> = {
  system: 'system',
  // Newer OpenAI clients send 'developer' where older ones send 'system'.
  developer: 'system',
  user: 'user',
  assistant: 'assistant'
}

function parseMessages(v: unknown): ChatMessage[] {
  if (absent(v)) invalid('messages', "'messages' is required")
  if (!Array.isArray(v) || v.length === 0) invalid('messages', "'messages' must be a non-empty array")
  if (v.length > REQUEST_LIMITS.maxMessages) invalid('messages', `'messages' may hold at most ${REQUEST_LIMITS.maxMessages} messages`)
  return v.map((m: unknown, i): ChatMessage => {
    const at = `messages[${i}]`
    if (!isObject(m)) invalid(at, `'${at}' must be an object`)
    const roleField = field(m, 'role')
    const role = typeof roleField === 'string' && Object.hasOwn(ROLES, roleField) ? ROLES[roleField] : undefined
    if (role === undefined) {
      if (roleField === 'tool' || roleField === 'function') unsupported(`${at}.role`, 'tool and function messages are not supported')
      invalid(`${at}.role`, `'${at}.role' must be 'system', 'user' or 'assistant'`)
    }
    const toolCalls = field(m, 'tool_calls')
    if (!absent(toolCalls) && !(Array.isArray(toolCalls) && toolCalls.length === 0))
      unsupported(`${at}.tool_calls`, 'tool calls are not supported')
    return { role, content: parseContent(field(m, 'content'), `${at}.content`) }
  })
}

function parseContent(v: unknown, at: string): string {
  if (typeof v === 'string') return v
  if (!Array.isArray(v)) invalid(at, `'${at}' must be a string or an array of text parts`)
  const parts = v.map((part: unknown, j) => {
    const partAt = `${at}[${j}]`
    if (!isObject(part)) invalid(partAt, `'${partAt}' must be an object`)
    const type = field(part, 'type')
    if (type !== 'text') {
      if (typeof type === 'string') unsupported(`${partAt}.type`, `content parts of type '${type.slice(0, 32)}' are not supported`)
      invalid(`${partAt}.type`, `'${partAt}.type' must be 'text'`)
    }
    const text = field(part, 'text')
    if (typeof text !== 'string') invalid(`${partAt}.text`, `'${partAt}.text' must be a string`)
    return text
  })
  return parts.join('\n')
}

function parsePrompt(v: unknown): string {
  if (absent(v)) invalid('prompt', "'prompt' is required")
  if (typeof v === 'string') return v
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'string') return v[0]
  if (Array.isArray(v) && v.length > 1) unsupported('prompt', 'batched prompts are not supported; send one prompt per request')
  invalid('prompt', "'prompt' must be a string (or an array of exactly one string)")
}

function parseRequest(body: unknown, endpoint: Endpoint, opts: ParseOptions): ParsedRequest {
  if (!isObject(body)) invalid(undefined, 'the request body must be a JSON object')
  const model = parseModel(body, opts)
  rejectUnsupported(body)
  const params = parseParams(body, opts)
  const stream = booleanField('stream', field(body, 'stream')) ?? false
  const streamOptions = field(body, 'stream_options')
  let includeUsage = false
  if (!absent(streamOptions)) {
    if (!isObject(streamOptions)) invalid('stream_options', "'stream_options' must be an object")
    includeUsage = booleanField('stream_options.include_usage', field(streamOptions, 'include_usage')) ?? false
  }
  const user = field(body, 'user')
  if (!absent(user) && typeof user !== 'string') invalid('user', "'user' must be a string")

  let input: InferenceInput
  let promptChars: number
  if (endpoint === 'chat') {
    const messages = parseMessages(field(body, 'messages'))
    input = { kind: 'chat', messages }
    promptChars = messages.reduce((sum, m) => sum + m.content.length, 0)
  } else {
    const prompt = parsePrompt(field(body, 'prompt'))
    input = { kind: 'prompt', prompt }
    promptChars = prompt.length
  }
  if (promptChars > REQUEST_LIMITS.maxPromptChars) {
    throw new PromptTooLongError(`the prompt has ${promptChars} characters; the limit is ${REQUEST_LIMITS.maxPromptChars}`)
  }
  const parsed: ParsedRequest = { endpoint, model, input, params, stream, includeUsage, promptChars }
  if (typeof user === 'string' && user.length > 0) parsed.user = user
  return parsed
}

/** Validates a `POST /v1/chat/completions` body; throws InvalidRequestError (with `param`) or PromptTooLongError. */
export function parseChatRequest(body: unknown, opts: ParseOptions): ParsedRequest {
  return parseRequest(body, 'chat', opts)
}

/** Validates a `POST /v1/completions` body; throws InvalidRequestError (with `param`) or PromptTooLongError. */
export function parseCompletionRequest(body: unknown, opts: ParseOptions): ParsedRequest {
  return parseRequest(body, 'completion', opts)
}

// ---- responses -------------------------------------------------------------

export type OpenAiFinishReason = 'stop' | 'length'

export interface OpenAiUsage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
}

export function toOpenAiUsage(usage: Usage): OpenAiUsage {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens
  }
}

/** Only 'stop' and 'length' reach clients: 'aborted' and 'error' are turned into errors by the gateway. */
export function toOpenAiFinishReason(reason: FinishReason): OpenAiFinishReason {
  return reason === 'length' ? 'length' : 'stop'
}

/** What every response and chunk of one request shares. */
export interface ResponseMeta {
  id: string
  created: number
  model: string
}

/** OpenAI's `system_fingerprint`: identifies the exact weights that served the answer. */
export function systemFingerprint(modelId: string): string {
  return `fp_${modelId.slice(0, 16)}`
}

export function chatCompletion(
  meta: ResponseMeta,
  content: string,
  finish: OpenAiFinishReason,
  usage: Usage,
  modelId: string,
  taskId?: string
) {
  return {
    id: meta.id,
    object: 'chat.completion' as const,
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, message: { role: 'assistant' as const, content, refusal: null }, finish_reason: finish, logprobs: null }],
    usage: toOpenAiUsage(usage),
    system_fingerprint: systemFingerprint(modelId),
    ...gcnExtension(taskId)
  }
}

export function textCompletion(
  meta: ResponseMeta,
  text: string,
  finish: OpenAiFinishReason,
  usage: Usage,
  modelId: string,
  taskId?: string
) {
  return {
    id: meta.id,
    object: 'text_completion' as const,
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, text, finish_reason: finish, logprobs: null }],
    usage: toOpenAiUsage(usage),
    system_fingerprint: systemFingerprint(modelId),
    ...gcnExtension(taskId)
  }
}

/**
 * gcn's own field on a finished answer (OpenAI clients ignore unknown fields):
 * the task id the answer's receipt carries, so a game can match what it was
 * billed for to its requests.
 */
function gcnExtension(taskId: string | undefined): { gcn?: { task_id: string } } {
  return taskId === undefined ? {} : { gcn: { task_id: taskId } }
}

/**
 * One streamed chunk. `delta`/`text` carries the piece, `finish` is set on
 * the last content chunk only. With include_usage every chunk carries
 * `usage: null` and a final chunk with no choices carries the totals, as in
 * OpenAI's API.
 */
export function streamChunk(
  endpoint: Endpoint,
  meta: ResponseMeta,
  piece: { role?: 'assistant'; content?: string; finish?: OpenAiFinishReason; modelId?: string; taskId?: string },
  includeUsage: boolean
): Record<string, unknown> {
  const finishReason = piece.finish ?? null
  const choice =
    endpoint === 'chat'
      ? {
          index: 0,
          delta: {
            ...(piece.role === undefined ? {} : { role: piece.role }),
            ...(piece.content === undefined ? {} : { content: piece.content })
          },
          logprobs: null,
          finish_reason: finishReason
        }
      : { index: 0, text: piece.content ?? '', logprobs: null, finish_reason: finishReason }
  return {
    id: meta.id,
    object: endpoint === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    created: meta.created,
    model: meta.model,
    ...(piece.modelId === undefined ? {} : { system_fingerprint: systemFingerprint(piece.modelId) }),
    choices: [choice],
    ...(includeUsage ? { usage: null } : {}),
    ...gcnExtension(piece.taskId)
  }
}

/** The closing usage chunk of a stream with include_usage. */
export function usageChunk(endpoint: Endpoint, meta: ResponseMeta, usage: Usage, modelId: string): Record<string, unknown> {
  return {
    id: meta.id,
    object: endpoint === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    created: meta.created,
    model: meta.model,
    system_fingerprint: systemFingerprint(modelId),
    choices: [],
    usage: toOpenAiUsage(usage)
  }
}

export function modelObject(m: ModelInfo) {
  return {
    id: m.name,
    object: 'model' as const,
    created: 0,
    owned_by: 'gcn',
    gcn: {
      sha256: m.id,
      context_size: m.contextSize,
      // A string: the price is a bigint of micro-units and must not lose precision in JSON.
      price_per_1k_tokens: m.pricePer1kTokens.toString(),
      suppliers: m.suppliers
    }
  }
}

export function modelList(models: ModelInfo[]) {
  return { object: 'list' as const, data: models.map(modelObject) }
}

export interface OpenAiError {
  error: { message: string; type: string; param: string | null; code: string | null }
}

export function errorBody(message: string, type: string, code: string | null, param?: string | null): OpenAiError {
  return { error: { message, type, param: param ?? null, code } }
}
