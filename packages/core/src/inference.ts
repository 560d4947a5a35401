/**
 * The plaintext shape of an inference task as every role sees it, independent
 * of the wire encoding (pb/gcn.proto) and of the HTTP API (OpenAI-compatible).
 */
export type ChatRole = 'system' | 'user' | 'assistant'

export interface ChatMessage {
  role: ChatRole
  content: string
}

export type InferenceInput = { kind: 'chat'; messages: ChatMessage[] } | { kind: 'prompt'; prompt: string }

export interface GenerationParams {
  /** Upper bound on generated tokens. */
  maxTokens: number
  temperature?: number
  topP?: number
  /** Seed for sampling; with temperature 0 (greedy) output is deterministic anyway. */
  seed?: number
  /** Generation stops before any of these strings; they are not returned. */
  stop?: string[]
  /** JSON schema (as a JSON string) the output must match; enforced with a grammar. */
  jsonSchema?: string
}

export interface InferenceRequest {
  /** Model name or sha256 id. */
  model: string
  gameId: string
  /** Consecutive requests of one session prefer the same supplier (prompt-cache reuse). */
  sessionId?: string
  input: InferenceInput
  params: GenerationParams
}

export type FinishReason = 'stop' | 'length' | 'aborted' | 'error'

export interface Usage {
  promptTokens: number
  completionTokens: number
}

/** One streamed piece of an answer. */
export interface InferenceDelta {
  type: 'delta'
  text: string
  tokenIds: number[]
}

/** The last event of every successful stream. */
export interface InferenceDone {
  type: 'done'
  finishReason: FinishReason
  usage: Usage
  /** sha256 id of the model that served the request. */
  modelId: string
  /**
   * Proof-of-inference outcome: 'unchecked' when only the always-on checks ran
   * (a task failing those never completes), 'verified' or 'failed' after re-scoring.
   */
  verdict?: ProofVerdictName
  /** Hex id of the delivered task: the id its receipt (and the supplier's confirmation) carries. */
  taskId?: string
}

export type ProofVerdictName = 'unchecked' | 'verified' | 'failed'

export type InferenceEvent = InferenceDelta | InferenceDone

/** A model the network can serve, as the gateway lists it. */
export interface ModelInfo {
  /** sha256 of the GGUF file (lowercase hex). */
  id: string
  /** Human name used as the OpenAI `model` field. */
  name: string
  contextSize: number
  /** Micro-units of the payment token per 1,000 tokens (cheapest current offer). */
  pricePer1kTokens: bigint
  /** Suppliers currently offering it. */
  suppliers: number
}

/** Limits every role enforces on a request, in one place. */
export const REQUEST_LIMITS = Object.freeze({
  /** Characters of prompt text (all messages together) accepted by the gateway. */
  maxPromptChars: 32_768,
  /** Messages in one chat request. */
  maxMessages: 256,
  /** Tokens one request may ask to generate. */
  maxTokens: 4_096,
  /** Stop strings per request, and characters per stop string. */
  maxStopStrings: 4,
  maxStopChars: 64,
  /** Characters of a JSON schema. */
  maxJsonSchemaChars: 16_384,
  /** Characters of a game or session id. */
  maxIdChars: 128
})
