/**
 * The steps of a task on its way to the first token, published on a diagnostics channel for tools
 * that measure where the time goes (the latency benchmark's table of legs). Nothing is published or
 * computed unless something subscribes, so the calls cost a property read on the hot path.
 *
 * Times are CLOCK_MONOTONIC in milliseconds (`process.hrtime`): one clock for every process of a
 * machine, so the steps of one task in the gateway, the distributor and the supplier line up. The
 * events carry no task id and no content (never a prompt or a token): they are meant for tasks run
 * one at a time, as the benchmark does, and each step is published once per task.
 */
import { channel } from 'node:diagnostics_channel'

/** Name of the diagnostics channel the steps are published on. */
export const TASK_STEPS_CHANNEL = 'gcn:task-steps'

/** The steps, in the order a streamed request passes them. */
export const TASK_STEPS = [
  // Gateway: the HTTP request arrived (headers parsed).
  'gateway.request',
  // Gateway: key checked, body read and validated.
  'gateway.parsed',
  // Distributor: a supplier was chosen and the task starts on it.
  'task.dispatched',
  // Distributor: the request was encoded and sealed; writing it to the stream comes next.
  'task.requestSealed',
  // Supplier: the sealed request was read from the stream.
  'supplier.requestRead',
  // Supplier: the request was opened and checked; the model runtime starts it.
  'supplier.generating',
  // Supplier: the runtime gave the first token.
  'supplier.firstToken',
  // Supplier: the first chunk was encoded and sealed; writing it to the stream comes next.
  'supplier.firstChunkSealed',
  // Distributor: the first chunk was read, opened and its proof checked.
  'task.firstChunk',
  // Gateway: the first text was written to the HTTP response.
  'gateway.firstWrite'
] as const

export type TaskStep = (typeof TASK_STEPS)[number]

export interface TaskStepEvent {
  step: TaskStep
  /** CLOCK_MONOTONIC, ms. */
  atMs: number
}

const steps = channel(TASK_STEPS_CHANNEL)

/** The monotonic clock the steps use, in ms (for the tools that add their own steps). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6
}

/** Publishes `step` now, if anything listens. */
export function traceTaskStep(step: TaskStep): void {
  if (steps.hasSubscribers) steps.publish({ step, atMs: monotonicMs() } satisfies TaskStepEvent)
}

/** Steps a recording keeps before it drops the rest (a recording left on in a long-lived process). */
export const MAX_RECORDED_TASK_STEPS = 100_000

/**
 * Collects the steps published in this process until `stop()`, at most `maxEvents` of them
 * (later ones are counted in `dropped`).
 *
 * @example
 * ```ts
 * const recording = recordTaskSteps()
 * // ... run a task ...
 * recording.stop()
 * console.log(recording.events)
 * ```
 */
export function recordTaskSteps({ maxEvents = MAX_RECORDED_TASK_STEPS }: { maxEvents?: number } = {}): {
  readonly events: TaskStepEvent[]
  readonly dropped: number
  stop(): void
} {
  const events: TaskStepEvent[] = []
  let dropped = 0
  const onStep = (message: unknown): void => {
    if (events.length < maxEvents) events.push(message as TaskStepEvent)
    else dropped++
  }
  steps.subscribe(onStep)
  return {
    events,
    get dropped() {
      return dropped
    },
    stop: () => {
      steps.unsubscribe(onStep)
    }
  }
}
