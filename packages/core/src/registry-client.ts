import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { AbortedError, ConfigError, GcnError, RegistryRejectedError, RegistryUnavailableError } from './errors.js'
import type { Logger } from './logger.js'
import type { GcnNode } from './node.js'
import type { RegistryAck, SignedEnvelope } from './pb/gcn.js'
import { REGISTRY_SUBMIT_PROTOCOL } from './protocols.js'
import { createFramedStream, type FramedStream, RegistryAckCodec, RegistryWriteCodec } from './wire.js'

/** A registry peer as configured: its id and where to dial it. */
export interface RegistryPeer {
  peerId: PeerId
  addrs: Multiaddr[]
}

/** Parses `/…/p2p/<id>` multiaddrs (several may name one peer) into peers. */
export function parseRegistryPeers(addrs: readonly string[], what = 'registry'): RegistryPeer[] {
  const peers = new Map<string, RegistryPeer>()
  for (const addr of addrs) {
    let ma: Multiaddr
    try {
      ma = multiaddr(addr)
    } catch (err) {
      throw new ConfigError(`invalid ${what} multiaddr ${JSON.stringify(addr)}`, { cause: err })
    }
    const id = ma.getComponents().find(c => c.name === 'p2p')?.value
    if (id === undefined) throw new ConfigError(`${what} multiaddr ${addr} has no /p2p/<peer id>`)
    const peerId = peerIdFromString(id)
    const entry = peers.get(id) ?? { peerId, addrs: [] }
    entry.addrs.push(ma)
    peers.set(id, entry)
  }
  return [...peers.values()]
}

interface Pending {
  resolve(ack: RegistryAck): void
  reject(err: Error): void
}

/**
 * One long-lived stream of pipelined RegistryWrites and their RegistryAcks,
 * matched by id (a registry may answer out of order). Any stream failure
 * rejects everything in flight with a retryable error; the owner then opens
 * a new one.
 */
export class AckedWriteStream {
  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  private closedWith?: Error

  private constructor(private readonly framed: FramedStream) {
    void this.readLoop()
  }

  static async open(node: GcnNode, peer: RegistryPeer, protocol: string, signal?: AbortSignal): Promise<AckedWriteStream> {
    const target = node.libp2p.getConnections(peer.peerId).length > 0 || peer.addrs.length === 0 ? peer.peerId : peer.addrs
    const stream = await node.libp2p.dialProtocol(target, protocol, { ...(signal === undefined ? {} : { signal }) })
    return new AckedWriteStream(createFramedStream(stream))
  }

  get closed(): boolean {
    return this.closedWith !== undefined
  }

  get inFlight(): number {
    return this.pending.size
  }

  private async readLoop(): Promise<void> {
    try {
      for await (const ack of this.framed.frames(RegistryAckCodec)) {
        const p = this.pending.get(ack.id)
        if (p === undefined) continue
        this.pending.delete(ack.id)
        p.resolve(ack)
      }
      this.fail(new RegistryUnavailableError('registry closed the stream'))
    } catch (err) {
      this.fail(new RegistryUnavailableError('registry stream broke', { cause: err }))
    }
  }

  private fail(err: Error): void {
    if (this.closedWith === undefined) this.closedWith = err
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
  }

  /** Sends one envelope and resolves with the registry's ack (ok or not); rejects on stream failure or abort. */
  async write(envelope: SignedEnvelope, signal?: AbortSignal): Promise<RegistryAck> {
    if (this.closedWith !== undefined) throw this.closedWith
    const id = this.nextId++
    const { promise, resolve, reject } = Promise.withResolvers<RegistryAck>()
    // The stream may fail (or the signal abort) while the frame is still being written: `promise` is then
    // rejected before anyone awaits it, and the write's own error is what the caller gets.
    promise.catch(() => undefined)
    this.pending.set(id, { resolve, reject })
    const onAbort = (): void => {
      this.pending.delete(id)
      reject(new AbortedError('registry write aborted', { cause: signal?.reason }))
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      await this.framed.write(RegistryWriteCodec, { id, envelope }, signal === undefined ? {} : { signal })
      return await promise
    } catch (err) {
      this.pending.delete(id)
      if (!(err instanceof GcnError)) this.fail(new RegistryUnavailableError('registry write failed', { cause: err }))
      throw err
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  close(): void {
    this.fail(new RegistryUnavailableError('stream closed'))
    this.framed.abort(new AbortedError('closed'))
  }
}

export interface RegistryClientInit {
  /** Registry peer multiaddrs, each ending in /p2p/<peer id>. */
  registries: string[]
  /** Time one registry has to acknowledge a write (durable and replicated) before the next is tried. */
  ackTimeoutMs?: number
}

export const REGISTRY_CLIENT_DEFAULTS = Object.freeze({ ackTimeoutMs: 10_000 })

export interface RegistryClientComponents {
  node: GcnNode
  logger: Logger
}

/**
 * Writes signed envelopes to the registry peers: one pipelined stream per
 * registry, rotating to the next registry when one fails or times out. A
 * write is done when a registry acknowledges it (durable there and held by a
 * quorum of registry peers). Registries refuse with a typed code; refusals
 * that another try cannot fix are thrown as non-retryable RegistryRejectedError.
 */
export class RegistryClient {
  private readonly peers: RegistryPeer[]
  private readonly streams = new Map<string, Promise<AckedWriteStream>>()
  private readonly ackTimeoutMs: number
  private readonly log: Logger
  private cursor = 0

  constructor(
    init: RegistryClientInit,
    private readonly components: RegistryClientComponents
  ) {
    this.peers = parseRegistryPeers(init.registries)
    if (this.peers.length === 0) throw new ConfigError('no registry peers configured', { hint: 'pass --registry MULTIADDR' })
    this.ackTimeoutMs = init.ackTimeoutMs ?? REGISTRY_CLIENT_DEFAULTS.ackTimeoutMs
    this.log = components.logger.child('registry-client')
    // Spread writers over the registries.
    this.cursor = Math.floor(Math.random() * this.peers.length)
  }

  get registries(): readonly RegistryPeer[] {
    return this.peers
  }

  private stream(peer: RegistryPeer, signal: AbortSignal): Promise<AckedWriteStream> {
    const key = peer.peerId.toString()
    let s = this.streams.get(key)
    if (s === undefined) {
      s = AckedWriteStream.open(this.components.node, peer, REGISTRY_SUBMIT_PROTOCOL, signal)
      this.streams.set(key, s)
      s.catch(() => this.streams.delete(key))
    }
    return s
  }

  private async writeTo(peer: RegistryPeer, envelope: SignedEnvelope, signal: AbortSignal): Promise<RegistryAck> {
    const key = peer.peerId.toString()
    const stream = await this.stream(peer, signal)
    if (stream.closed) {
      this.streams.delete(key)
      return this.writeTo(peer, envelope, signal)
    }
    try {
      return await stream.write(envelope, signal)
    } catch (err) {
      if (stream.closed) this.streams.delete(key)
      throw err
    }
  }

  /**
   * Writes one envelope, trying each registry at most once. Resolves with the
   * ack; throws RegistryRejectedError for a refusal (check `retryable`) or
   * RegistryUnavailableError when no registry acknowledged.
   */
  async submit(envelope: SignedEnvelope, options: { signal?: AbortSignal } = {}): Promise<RegistryAck> {
    let lastError: unknown
    const start = this.cursor
    for (let i = 0; i < this.peers.length; i++) {
      if (options.signal?.aborted === true) throw new AbortedError('registry submit aborted', { cause: options.signal.reason })
      const peer = this.peers[(start + i) % this.peers.length]!
      const signal = AbortSignal.any([AbortSignal.timeout(this.ackTimeoutMs), ...(options.signal === undefined ? [] : [options.signal])])
      try {
        const ack = await this.writeTo(peer, envelope, signal)
        if (ack.ok) return ack
        const rejected = new RegistryRejectedError(`registry refused the write: ${ack.errorCode} ${ack.errorMessage}`, {
          registryCode: ack.errorCode,
          retryable: ack.retryable
        })
        if (!ack.retryable) throw rejected
        lastError = rejected
      } catch (err) {
        if (err instanceof RegistryRejectedError && !err.retryable) throw err
        lastError = err
        this.log.debug('registry write failed, trying the next registry', { peer: peer.peerId.toString(), err })
        // Later writes start at the registry after the one that failed.
        this.cursor = (start + i + 1) % this.peers.length
      }
    }
    if (lastError instanceof RegistryRejectedError) throw lastError
    throw new RegistryUnavailableError(`no registry peer acknowledged the write (${this.peers.length} tried)`, {
      cause: lastError,
      hint: 'check that the registry peers are running and reachable'
    })
  }

  close(): void {
    for (const s of this.streams.values()) void s.then(x => x.close()).catch(() => undefined)
    this.streams.clear()
  }
}
