import type { GenerationParams, InferenceInput, TokenRecord } from '@gcn/core'

/** One finished task, as a referee needs it to re-score the output. */
export interface RescoreJob {
  modelId: string
  input: InferenceInput
  params: GenerationParams
  outputTokenIds: number[]
  /** The supplier's committed records (verified against its proof chain already). */
  records: TokenRecord[]
}

export interface RescoreResult {
  ok: boolean
  /** Why it failed (first disagreeing position and by how much). */
  reason?: string
  /** Largest |Δ logprob| seen, in nats. */
  maxDeltaNats?: number
}

/**
 * Re-scores prompt + output with a reference copy of the model in one
 * prefill batch and compares the committed log-probabilities within a
 * calibrated tolerance. Implemented over a model runtime outside this package
 * (the distributor never depends on the supplier package).
 */
export interface ProofReferee {
  /** Whether this referee holds the model. */
  serves(modelId: string): boolean
  check(job: RescoreJob, options?: { signal?: AbortSignal }): Promise<RescoreResult>
}

/** A checked task's outcome, reported to listeners (metrics, receipts, tests). */
export interface VerdictEvent {
  supplier: string
  taskId: Uint8Array
  verdict: 'verified' | 'failed'
  reason?: string
  banned: boolean
}
