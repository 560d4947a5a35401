/**
 * @gcn/sdk: a typed client for the gcn gateway (OpenAI-compatible), for Node
 * ≥ 20 and browsers, with no dependencies.
 *
 * @example
 * ```ts
 * import { GcnClient, Npc } from '@gcn/sdk'
 * const client = new GcnClient({ baseUrl: 'http://127.0.0.1:8080/v1', apiKey: 'gcn_test_key', defaultModel: 'tiny' })
 * const guard = new Npc(client, { persona: 'You are a city guard. Be brief.' })
 * for await (const { text } of guard.say('Halt? Why?')) bubble.append(text)
 * ```
 */
export {
  type ChatMessage,
  type ChatProducer,
  type ChatRequest,
  type ChatResult,
  ChatStream,
  type CompletionRequest,
  type Delta,
  type FinishReason,
  GcnClient,
  type GcnClientOptions,
  type GenerationParams,
  type Model,
  type RequestOptions,
  type ResponseFormat,
  type Usage
} from './client.js'
export {
  AbortedError,
  AuthenticationError,
  ConnectionError,
  GcnApiError,
  type GcnApiErrorOptions,
  InvalidRequestError,
  ModelNotFoundError,
  RateLimitError,
  ServiceUnavailableError,
  StreamError,
  TimeoutError
} from './errors.js'
export { estimateTokens, Npc, type NpcOptions } from './npc.js'
