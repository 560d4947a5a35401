import { AbortedError, type GcnNode, type Logger, TASK_PROTOCOL } from '@gcn/core'
import type { Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { SupplierEntry } from './directory.js'

export interface TaskStreamsInit {
  /**
   * A spare stream older than this is not used (a supplier drops a task stream
   * that brings no request within its open timeout, 5 s by default).
   */
  spareTtlMs?: number
  /** Suppliers a spare is kept for at once (one spare each). */
  maxSpares?: number
}

export const TASK_STREAMS_DEFAULTS = Object.freeze({ spareTtlMs: 3_000, maxSpares: 256 })

interface Spare {
  stream: Stream
  openedAt: number
}

/**
 * Opens `/gcn/task/1.0.0` streams to suppliers and keeps one negotiated spare
 * per supplier in use, opened once a task there is under way, so the next task there skips
 * the protocol negotiation: libp2p v3's multistream-select always waits for the
 * remote's answer (no optimistic select), which measured 1.5 ms idle and ~3 ms
 * under load on loopback, a third of the path's added time to first token. A
 * spare is used only while fresh (TaskStreamsInit.spareTtlMs) and open; a
 * supplier that sees no request on it closes it after its open timeout.
 *
 * The spare is opened by `prepare()`, which the task calls once the supplier
 * has answered (or the task ended), not by `take()`: opening it while the
 * request is on its way put the new stream's negotiation ahead of the request
 * on both peers, ~0.3–0.5 ms of the time to first token.
 */
export class TaskStreams {
  private readonly init: Required<TaskStreamsInit>
  private readonly spares = new Map<string, Spare>()
  private readonly opening = new Set<string>()
  private readonly log: Logger
  private stopped = false
  readonly stats = { opened: 0, sparesUsed: 0, sparesExpired: 0 }

  constructor(
    init: TaskStreamsInit,
    private readonly components: { node: GcnNode; logger: Logger }
  ) {
    this.init = { ...TASK_STREAMS_DEFAULTS, ...init }
    this.log = components.logger.child('task-streams')
  }

  /** A negotiated task stream to `supplier`: its fresh spare, or a new one. Call `prepare()` later for the next task's spare. */
  async take(supplier: SupplierEntry, signal: AbortSignal): Promise<Stream> {
    const key = supplier.peerId.toString()
    const spare = this.spares.get(key)
    this.spares.delete(key)
    let stream: Stream | undefined
    if (spare !== undefined) {
      if (Date.now() - spare.openedAt < this.init.spareTtlMs && usable(spare.stream)) {
        stream = spare.stream
        this.stats.sparesUsed++
      } else {
        this.stats.sparesExpired++
        spare.stream.abort(new AbortedError('spare task stream expired'))
      }
    }
    stream ??= await this.open(supplier, signal)
    return stream
  }

  /** Aborts every spare; later `take`s open streams without keeping spares. */
  stop(): void {
    this.stopped = true
    for (const { stream } of this.spares.values()) stream.abort(new AbortedError('distributor stopping'))
    this.spares.clear()
  }

  private async open(supplier: SupplierEntry, signal: AbortSignal): Promise<Stream> {
    const target: Multiaddr[] | SupplierEntry['peerId'] = supplier.addrs.length > 0 ? supplier.addrs : supplier.peerId
    const stream = await this.components.node.libp2p.dialProtocol(target, TASK_PROTOCOL, { signal })
    this.stats.opened++
    return stream
  }

  /** Opens a spare for `supplier` in the background unless one is ready or on its way. */
  prepare(supplier: SupplierEntry): void {
    const key = supplier.peerId.toString()
    if (this.stopped || this.opening.has(key) || this.spares.has(key)) return
    if (this.spares.size + this.opening.size >= this.init.maxSpares) this.prune()
    if (this.spares.size + this.opening.size >= this.init.maxSpares) return
    this.opening.add(key)
    this.open(supplier, AbortSignal.timeout(this.init.spareTtlMs))
      .then(
        stream => {
          if (this.stopped || this.spares.has(key)) stream.abort(new AbortedError('spare task stream not needed'))
          else this.spares.set(key, { stream, openedAt: Date.now() })
        },
        err => this.log.debug('could not open a spare task stream', { peer: key, err })
      )
      .finally(() => this.opening.delete(key))
  }

  /** Drops expired or closed spares. */
  private prune(): void {
    const now = Date.now()
    for (const [key, spare] of this.spares) {
      if (now - spare.openedAt >= this.init.spareTtlMs || !usable(spare.stream)) {
        this.spares.delete(key)
        spare.stream.abort(new AbortedError('spare task stream expired'))
      }
    }
  }
}

function usable(stream: Stream): boolean {
  return stream.status === 'open' && stream.writeStatus === 'writable' && stream.readStatus !== 'closed'
}
