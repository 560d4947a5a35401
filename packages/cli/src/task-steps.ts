import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { recordTaskSteps } from '@gcn/core'

/**
 * BENCHMARKS ONLY: when GCN_TASK_STEPS_DIR names a directory, the task steps this process
 * publishes (`traceTaskStep` in @gcn/core: times only, no content) are kept and written there as
 * `<role>-<pid>.json` when it exits. The latency benchmark sets it for its devnet to report where
 * the added time to first token goes.
 */
export function recordTaskStepsFromEnv(role: string, env: NodeJS.ProcessEnv = process.env): void {
  const dir = env.GCN_TASK_STEPS_DIR
  if (dir === undefined || dir === '') return
  const recording = recordTaskSteps()
  process.once('exit', () => {
    recording.stop()
    writeFileSync(join(dir, `${role}-${process.pid}.json`), JSON.stringify({ events: recording.events, dropped: recording.dropped }))
  })
}
