import type { GenerationParams, InferenceInput } from '@gcn/core'

import type { GenerationChunk } from './runtime.js'

export interface EngineStats {
  totalSlots: number
  freeSlots: number
  queueDepth: number
  /** EWMA of measured decode speed. */
  tokensPerSecond: number
  /** EWMA of time to first token. */
  ttftMs: number
}

/**
 * What the supplier's network side needs from a model runtime. The real one
 * is ModelRuntime (node-llama-cpp); tests may pass a fake named as such.
 */
export interface GenerationEngine {
  readonly info: { id: string; name: string; contextSize: number }
  stats(): EngineStats
  generate(input: InferenceInput, params: GenerationParams, options: { signal?: AbortSignal }): AsyncIterable<GenerationChunk>
  /** Called on every change of stats that should be re-advertised; returns an unsubscribe function. */
  onChange(listener: () => void): () => void
}
