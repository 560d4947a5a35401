import { GcnError, RegistryRejectedError } from './errors.js'
import type { Logger } from './logger.js'
import type { SignedEnvelope } from './pb/gcn.js'
import type { RegistryClient } from './registry-client.js'

export interface RegistryOutboxInit {
  /** Envelopes waiting for an ack; beyond it new ones are dropped (and counted), never silently. */
  maxPending?: number
  /** Writes in flight at once. */
  concurrency?: number
  /** Backoff between retries of one envelope after the registries failed it. */
  retryMinMs?: number
  retryMaxMs?: number
}

export const OUTBOX_DEFAULTS = Object.freeze({ maxPending: 10_000, concurrency: 8, retryMinMs: 200, retryMaxMs: 5_000 })

export interface RegistryOutboxComponents {
  client: RegistryClient
  logger: Logger
}

interface Entry {
  envelope: SignedEnvelope
  what: string
  attempts: number
}

/**
 * Delivers signed envelopes (receipt batches, block confirmations) to the
 * registries until one acknowledges each: retryable failures are retried with
 * exponential backoff for as long as the process runs; a refusal that cannot
 * succeed (bad signature, block too old) is logged and counted as rejected.
 */
export class RegistryOutbox {
  private readonly init: Required<RegistryOutboxInit>
  private readonly log: Logger
  private readonly queue: Entry[] = []
  private inFlight = 0
  private running = false
  private readonly idleWaiters = new Set<() => void>()
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  private stopController = new AbortController()
  readonly stats = { enqueued: 0, acked: 0, duplicates: 0, rejected: 0, dropped: 0, retries: 0 }

  constructor(
    init: RegistryOutboxInit,
    private readonly components: RegistryOutboxComponents
  ) {
    this.init = { ...OUTBOX_DEFAULTS, ...init }
    this.log = components.logger.child('outbox')
  }

  /** Envelopes not yet acknowledged (queued, in flight or waiting to retry). */
  get pending(): number {
    return this.queue.length + this.inFlight + this.timers.size
  }

  start(): void {
    this.running = true
    this.stopController = new AbortController()
    this.pump()
  }

  /** Stops sending; waits up to `flushMs` for what is pending to be acknowledged first. */
  async stop(options: { flushMs?: number } = {}): Promise<void> {
    if (this.pending > 0 && (options.flushMs ?? 0) > 0) {
      await this.idle({ signal: AbortSignal.timeout(options.flushMs!) }).catch(() => undefined)
    }
    this.running = false
    this.stopController.abort(new GcnError('outbox stopped'))
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    if (this.pending > 0) this.log.warn('outbox stopped with unacknowledged envelopes', { pending: this.pending })
  }

  /** Queues an envelope; false (and counted as dropped) when the outbox is full. */
  enqueue(envelope: SignedEnvelope, what: string): boolean {
    if (this.pending >= this.init.maxPending) {
      this.stats.dropped++
      this.log.error('outbox full: envelope dropped', { what, maxPending: this.init.maxPending })
      return false
    }
    this.stats.enqueued++
    this.queue.push({ envelope, what, attempts: 0 })
    this.pump()
    return true
  }

  /** Resolves once nothing is pending. */
  async idle(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.pending === 0) return
    const { promise, resolve, reject } = Promise.withResolvers<void>()
    const onAbort = (): void => {
      this.idleWaiters.delete(resolve)
      reject(new GcnError('waiting for the outbox to drain was aborted', { cause: options.signal?.reason }))
    }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    this.idleWaiters.add(resolve)
    try {
      await promise
    } finally {
      options.signal?.removeEventListener('abort', onAbort)
    }
  }

  private checkIdle(): void {
    if (this.pending > 0) return
    for (const w of this.idleWaiters) w()
    this.idleWaiters.clear()
  }

  private pump(): void {
    while (this.running && this.inFlight < this.init.concurrency && this.queue.length > 0) {
      const entry = this.queue.shift()!
      this.inFlight++
      void this.send(entry).finally(() => {
        this.inFlight--
        this.pump()
        this.checkIdle()
      })
    }
  }

  private async send(entry: Entry): Promise<void> {
    entry.attempts++
    try {
      const ack = await this.components.client.submit(entry.envelope, { signal: this.stopController.signal })
      this.stats.acked++
      if (ack.duplicate) this.stats.duplicates++
    } catch (err) {
      if (err instanceof RegistryRejectedError && !err.retryable) {
        this.stats.rejected++
        this.log.error('registry rejected an envelope', { what: entry.what, code: err.registryCode, err })
        return
      }
      if (!this.running) {
        this.queue.unshift(entry)
        return
      }
      this.stats.retries++
      const delay = Math.min(this.init.retryMaxMs, this.init.retryMinMs * 2 ** Math.min(entry.attempts - 1, 16))
      this.log.warn('registry write failed; will retry', { what: entry.what, attempts: entry.attempts, delayMs: delay, err })
      const timer = setTimeout(() => {
        this.timers.delete(timer)
        this.queue.push(entry)
        this.pump()
      }, delay)
      this.timers.add(timer)
    }
  }
}

export interface BlockBatcherInit<T> {
  /** Items per batch; a full batch is flushed at once. */
  maxItems: number
  /** Open batches are flushed this often. */
  flushMs: number
  /** Receives each batch (items of one block, in arrival order). */
  onFlush(blockHeight: number, items: T[]): void
}

/** Groups items by block height and hands them on in bounded batches, on a timer or when full. */
export class BlockBatcher<T> {
  private readonly open = new Map<number, T[]>()
  private timer?: ReturnType<typeof setInterval>

  constructor(private readonly init: BlockBatcherInit<T>) {}

  start(): void {
    this.timer ??= setInterval(() => this.flush(), this.init.flushMs)
    this.timer.unref?.()
  }

  /** Stops the timer after flushing what is open. */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    this.flush()
  }

  add(blockHeight: number, item: T): void {
    let items = this.open.get(blockHeight)
    if (items === undefined) {
      items = []
      this.open.set(blockHeight, items)
    }
    items.push(item)
    if (items.length >= this.init.maxItems) {
      this.open.delete(blockHeight)
      this.init.onFlush(blockHeight, items)
    }
  }

  flush(): void {
    const open = [...this.open]
    this.open.clear()
    for (const [height, items] of open) this.init.onFlush(height, items)
  }
}
