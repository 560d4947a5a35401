import { dequantiseLogprob, type GenerationParams, type InferenceInput, LOGPROB_SCALE, type TokenRecord } from '@gcn/core'
import type { Rescorer } from './rescore.js'

/**
 * A proof referee over a reference copy of the model (a ModelRuntime): it
 * re-scores prompt + output in one prefill batch and compares every committed
 * log-probability with its own. Structurally matches the distributor's
 * ProofReferee, so the distributor can use it without depending on this package.
 */
export interface RuntimeRefereeInit {
  /**
   * Largest accepted |Δ logprob| in nats between the supplier's claim and the
   * re-scored value (on top of the 1/256-nat quantisation step). Calibrated
   * with scripts/calibrate-proof.ts; see BENCHMARKS.md.
   */
  toleranceNats?: number
}

export const REFEREE_DEFAULTS = Object.freeze({ toleranceNats: 0.05 })

export interface RefereeRuntime extends Rescorer {
  readonly info: { id: string }
  tokenizeInput(input: InferenceInput): number[]
}

export function createRuntimeReferee(runtime: RefereeRuntime, init: RuntimeRefereeInit = {}) {
  const tolerance = (init.toleranceNats ?? REFEREE_DEFAULTS.toleranceNats) + 1 / LOGPROB_SCALE
  return {
    serves: (modelId: string): boolean => modelId === runtime.info.id,
    async check(
      job: { modelId: string; input: InferenceInput; params: GenerationParams; outputTokenIds: number[]; records: TokenRecord[] },
      options: { signal?: AbortSignal } = {}
    ): Promise<{ ok: boolean; reason?: string; maxDeltaNats?: number }> {
      if (job.modelId !== runtime.info.id) return { ok: false, reason: 'referee does not hold this model' }
      if (job.records.length !== job.outputTokenIds.length) return { ok: false, reason: 'records do not cover the output' }
      if (job.outputTokenIds.length === 0) return { ok: true, maxDeltaNats: 0 }
      const prompt = runtime.tokenizeInput(job.input)
      const scored = await runtime.rescore(prompt, job.outputTokenIds, {
        ...(options.signal === undefined ? {} : { signal: options.signal })
      })
      let maxDelta = 0
      for (let i = 0; i < scored.length; i++) {
        const ref = scored[i]!
        const claim = job.records[i]!
        const delta = Math.abs(ref.logprob - dequantiseLogprob(claim.lp))
        maxDelta = Math.max(maxDelta, delta)
        if (delta > tolerance) {
          return {
            ok: false,
            maxDeltaNats: delta,
            reason: `token ${i}: committed logprob ${dequantiseLogprob(claim.lp).toFixed(3)}, reference ${ref.logprob.toFixed(3)}`
          }
        }
        // The claimed top alternatives must be as likely under the reference model as claimed.
        for (const alt of claim.top) {
          const refAlt = ref.top.find(a => a.token === alt.token)
          if (refAlt !== undefined && Math.abs(refAlt.logprob - dequantiseLogprob(alt.lp)) > tolerance) {
            return {
              ok: false,
              maxDeltaNats: Math.abs(refAlt.logprob - dequantiseLogprob(alt.lp)),
              reason: `token ${i}: alternative ${alt.token} misreported`
            }
          }
        }
        // A much likelier token the supplier left out of its top-K would mean a forged distribution.
        const refBest = ref.top[0]
        const claimBest = claim.top[0]
        if (refBest !== undefined && claimBest !== undefined && refBest.logprob - dequantiseLogprob(claimBest.lp) > tolerance) {
          return { ok: false, maxDeltaNats: refBest.logprob - dequantiseLogprob(claimBest.lp), reason: `token ${i}: top-1 under-reported` }
        }
      }
      return { ok: true, maxDeltaNats: maxDelta }
    }
  }
}
