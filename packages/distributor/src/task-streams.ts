import {
  AbortedError,
  createFramedStream,
  type FramedStream,
  type GcnNode,
  type Logger,
  plainBytes,
  TASK_PROTOCOL,
  TaskOpenCodec,
  WIRE_VERSION
} from '@gcn/core'
import type { Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { SupplierEntry } from './directory.js'
import { makeTaskKit, type TaskKit, wipeTaskKit } from './task-kits.js'

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

/** A negotiated task stream, ready for a task's TaskOpen. */
export interface TaskStream {
  stream: Stream
  framed: FramedStream
  /**
   * The kit this stream's task was announced with (a spare opened for the same model): its
   * request must be sealed with this kit's box, which the supplier has prepared to open.
   */
  kit?: TaskKit
}

interface Spare extends TaskStream {
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
 *
 * Given the model, `prepare()` also makes the next task's kit and announces it
 * on the spare (a TaskOpen with the request box's header), so the supplier does
 * the request's key agreement while it waits instead of when the request
 * arrives (~0.3 ms of an idle process). A task for another model wipes that kit.
 */
export class TaskStreams {
  private readonly init: Required<TaskStreamsInit>
  private readonly spares = new Map<string, Spare>()
  private readonly opening = new Set<string>()
  private readonly log: Logger
  private stopped = false
  /** Streams opened; spares used, expired, and announced with a task's kit. */
  readonly stats = { opened: 0, sparesUsed: 0, sparesExpired: 0, sparesAnnounced: 0 }

  constructor(
    init: TaskStreamsInit,
    private readonly components: { node: GcnNode; logger: Logger }
  ) {
    this.init = { ...TASK_STREAMS_DEFAULTS, ...init }
    this.log = components.logger.child('task-streams')
  }

  /**
   * A negotiated task stream to `supplier` for a task on `modelId`: its fresh spare (with the kit
   * it was announced with, if for that model), or a new one. Call `prepare()` later for the next
   * task's spare.
   */
  async take(supplier: SupplierEntry, modelId: string | undefined, signal: AbortSignal): Promise<TaskStream> {
    const key = supplier.peerId.toString()
    const spare = this.spares.get(key)
    this.spares.delete(key)
    if (spare !== undefined) {
      if (Date.now() - spare.openedAt < this.init.spareTtlMs && usable(spare.stream)) {
        this.stats.sparesUsed++
        const { stream, framed, kit } = spare
        if (kit === undefined || kit.modelId === modelId) return { stream, framed, ...(kit === undefined ? {} : { kit }) }
        // The supplier prepared for a request this task will not send: it opens ours as usual.
        wipeTaskKit(kit)
        return { stream, framed }
      }
      this.stats.sparesExpired++
      drop(spare, 'spare task stream expired')
    }
    const stream = await this.open(supplier, signal)
    return { stream, framed: createFramedStream(stream) }
  }

  /** Aborts every spare; later `take`s open streams without keeping spares. */
  stop(): void {
    this.stopped = true
    for (const spare of this.spares.values()) drop(spare, 'distributor stopping')
    this.spares.clear()
  }

  private async open(supplier: SupplierEntry, signal: AbortSignal): Promise<Stream> {
    const target: Multiaddr[] | SupplierEntry['peerId'] = supplier.addrs.length > 0 ? supplier.addrs : supplier.peerId
    const stream = await this.components.node.libp2p.dialProtocol(target, TASK_PROTOCOL, { signal })
    this.stats.opened++
    return stream
  }

  /**
   * Opens a spare for `supplier` in the background unless one is ready or on its way; with
   * `modelId`, announces the next task's kit for that model on it.
   */
  prepare(supplier: SupplierEntry, modelId?: string): void {
    const key = supplier.peerId.toString()
    if (this.stopped || this.opening.has(key) || this.spares.has(key)) return
    if (this.spares.size + this.opening.size >= this.init.maxSpares) this.prune()
    if (this.spares.size + this.opening.size >= this.init.maxSpares) return
    this.opening.add(key)
    const signal = AbortSignal.timeout(this.init.spareTtlMs)
    this.open(supplier, signal)
      .then(async stream => {
        const spare: Spare = { stream, framed: createFramedStream(stream), openedAt: Date.now() }
        try {
          if (modelId !== undefined && !this.stopped) {
            spare.kit = makeTaskKit(supplier.publicKey, modelId)
            await spare.framed.write(
              TaskOpenCodec,
              {
                version: WIRE_VERSION,
                taskId: plainBytes(spare.kit.taskId),
                sealedRequest: new Uint8Array(0),
                requestBoxHeader: plainBytes(spare.kit.box.header)
              },
              { signal }
            )
            this.stats.sparesAnnounced++
          }
        } catch (err) {
          drop(spare, 'spare task stream not announced')
          throw err
        }
        if (this.stopped || this.spares.has(key)) drop(spare, 'spare task stream not needed')
        else this.spares.set(key, spare)
      })
      .catch(err => this.log.debug('could not open a spare task stream', { peer: key, err }))
      .finally(() => this.opening.delete(key))
  }

  /** Drops expired or closed spares. */
  private prune(): void {
    const now = Date.now()
    for (const [key, spare] of this.spares) {
      if (now - spare.openedAt >= this.init.spareTtlMs || !usable(spare.stream)) {
        this.spares.delete(key)
        drop(spare, 'spare task stream expired')
      }
    }
  }
}

function drop(spare: Spare, why: string): void {
  spare.stream.abort(new AbortedError(why))
  if (spare.kit !== undefined) wipeTaskKit(spare.kit)
}

function usable(stream: Stream): boolean {
  return stream.status === 'open' && stream.writeStatus === 'writable' && stream.readStatus !== 'closed'
}
