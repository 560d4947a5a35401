import type { InferenceEvent, InferenceRequest, ModelInfo } from '@gcn/core'

/**
 * What the HTTP gateway needs from the distributor. The real implementation
 * routes to supplier peers; tests may pass a fake (named as such).
 *
 * `stream` yields deltas and ends with exactly one `done` event. It throws
 * UnknownModelError, NoSupplierError, PromptTooLongError, InvalidRequestError
 * or TaskFailedError (see errors.ts); aborting `signal` cancels the supplier's
 * generation and rejects with AbortedError.
 */
export interface InferenceBackend {
  listModels(): ModelInfo[]
  /** `whole`: the caller delivers the answer only once complete, so it may be held back until checked (and re-run if it fails). */
  stream(request: InferenceRequest, options: { signal?: AbortSignal; whole?: boolean }): AsyncIterable<InferenceEvent>
}
