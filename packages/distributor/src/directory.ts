import {
  ADVERT_PROTOCOL,
  AdvertEnvelopeCodec,
  advertStaleness,
  CAPACITY_GOSSIP_DEFAULTS,
  CAPACITY_TOPIC,
  type CapacityAdvert,
  capacityTopicValidator,
  createFramedStream,
  type GcnNode,
  type Logger,
  type ModelInfo,
  modelCid,
  openCapacityAdvert,
  type SignedEnvelope,
  type VerifiedAdvert
} from '@gcn/core'
import type { PeerId, PublicKey } from '@libp2p/interface'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { InvalidAdvertError } from './errors.js'

export interface DirectoryInit {
  /** Adverts older than this (or this far in the future) are stale and rejected. */
  maxAdvertAgeMs?: number
  /** A supplier not heard from for this long is dropped. */
  expireAfterMs?: number
  /** Weight of the newest sample in the EWMAs of measured latency and speed. */
  ewmaAlpha?: number
  /** Failed proof-of-inference checks after which a supplier is banned from routing. */
  banAfterProofFailures?: number
  /** After a supplier refuses a task for lack of room: how long it gets nothing queued beyond its believed slots, and its believed slots do not grow. */
  refusalHoldMs?: number
}

export const DIRECTORY_DEFAULTS = Object.freeze({
  maxAdvertAgeMs: CAPACITY_GOSSIP_DEFAULTS.maxAdvertAgeMs,
  expireAfterMs: 15_000,
  ewmaAlpha: 0.3,
  banAfterProofFailures: 3,
  refusalHoldMs: 30_000
})

export interface DirectoryComponents {
  node: GcnNode
  logger: Logger
}

/** One supplier as the distributor knows it: what it claims and what we measured. */
export interface SupplierEntry {
  peerId: PeerId
  publicKey: PublicKey
  advert: CapacityAdvert
  addrs: Multiaddr[]
  lastSeenMs: number
  /** Tasks this distributor has in flight on it. */
  outstanding: number
  /** Measured by us; undefined until the first task. */
  ewmaTtftMs?: number
  ewmaTokensPerSecond?: number
  successes: number
  failures: number
  /** Proof-of-inference outcomes measured by us. */
  verified: number
  proofFailures: number
  /**
   * Slots we believe it has for us; undefined: its advertised totalSlots. When
   * it refuses a task for lack of room (ERR_QUEUE_FULL), this drops to what it
   * was running for us then, and grows back by one per `capacity` tasks it
   * accepts once the hold time has passed (additive increase, as TCP's
   * congestion window). Advertising slots it does not have wins a supplier
   * nothing but refusals.
   */
  capacity?: number
  capacityCredit: number
  /** Tasks it refused for lack of room, and when it last did. */
  refusals: number
  lastRefusalMs?: number
}

/**
 * The distributor's view of suppliers, fed by signed gossip adverts (checked
 * in a gossipsub validator that rejects — and so penalises the sender for —
 * unsigned, forged or malformed adverts, and ignores stale, replayed or banned
 * ones), by direct advert queries, and by DHT provider lookups for models not
 * heard of yet.
 */
export class SupplierDirectory {
  private readonly init: Required<DirectoryInit>
  private readonly log: Logger
  private readonly entries = new Map<string, SupplierEntry>()
  /** Highest advert seq seen per peer, kept after expiry so old adverts cannot be replayed. */
  private readonly lastSeq = new Map<string, number>()
  private readonly listeners = new Set<() => void>()
  /** Suppliers banned for failed proofs: never routed to, their adverts ignored. */
  private readonly banned = new Set<string>()
  /**
   * Adverts the topic validator accepted, by their message's bytes (gossipsub delivers the same
   * message object it validated): the message event records them without decoding the envelope
   * and verifying its signature again.
   */
  private readonly accepted = new WeakMap<Uint8Array, VerifiedAdvert>()
  /** Adverts recorded, and envelopes verified here (direct queries, or gossip the validator did not see). */
  readonly stats = { advertsRecorded: 0, advertsVerified: 0 }
  private onMessage = (evt: CustomEvent<{ topic: string; data: Uint8Array }>): void => {
    if (evt.detail.topic !== CAPACITY_TOPIC) return
    const advert = this.accepted.get(evt.detail.data)
    if (advert === undefined) {
      void this.ingest(evt.detail.data).catch(() => undefined)
      return
    }
    this.accepted.delete(evt.detail.data)
    try {
      this.record(advert)
    } catch {
      // A newer advert from the same supplier was recorded in between: this one is a replay now.
    }
  }

  constructor(
    init: DirectoryInit,
    private readonly components: DirectoryComponents
  ) {
    this.init = { ...DIRECTORY_DEFAULTS, ...init }
    this.log = components.logger.child('directory')
  }

  start(): void {
    const pubsub = this.components.node.libp2p.services.pubsub
    // Malformed, forged or re-authored adverts are Rejected (their sender penalised);
    // stale, replayed and banned ones are Ignored (a relay need not know of them).
    pubsub.topicValidators.set(
      CAPACITY_TOPIC,
      capacityTopicValidator({
        maxAdvertAgeMs: this.init.maxAdvertAgeMs,
        admit: advert => this.excluded(advert),
        onAccept: (message, advert) => this.accepted.set(message.data, advert),
        logger: this.log
      })
    )
    pubsub.addEventListener('message', this.onMessage as never)
    pubsub.subscribe(CAPACITY_TOPIC)
  }

  stop(): void {
    const pubsub = this.components.node.libp2p.services.pubsub
    pubsub.topicValidators.delete(CAPACITY_TOPIC)
    pubsub.removeEventListener('message', this.onMessage as never)
    pubsub.unsubscribe(CAPACITY_TOPIC)
  }

  /** Called after every directory change (new supplier, new advert). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Decodes and checks an advert envelope without storing it; throws on anything wrong. */
  async verify(data: Uint8Array): Promise<VerifiedAdvert> {
    this.stats.advertsVerified++
    const advert = await openCapacityAdvert(data)
    const excluded = advertStaleness(advert, this.init.maxAdvertAgeMs) ?? this.excluded(advert)
    if (excluded !== undefined) throw new InvalidAdvertError(excluded)
    return advert
  }

  /** Why this directory does not take an otherwise valid advert (banned supplier, replay), or undefined. */
  private excluded(advert: CapacityAdvert): string | undefined {
    if (this.banned.has(advert.peerId)) return 'advert from a supplier banned for failed proofs'
    return this.replayed(advert.peerId, advert.seq)
  }

  private replayed(peerId: string, seq: number): string | undefined {
    const last = this.lastSeq.get(peerId)
    return last !== undefined && seq < last ? 'replayed advert (sequence number went back)' : undefined
  }

  private assertNotReplayed(peerId: string, seq: number): void {
    const replayed = this.replayed(peerId, seq)
    if (replayed !== undefined) throw new InvalidAdvertError(replayed)
  }

  /** Verifies and records an advert envelope (gossip or direct query). */
  async ingest(data: Uint8Array | SignedEnvelope): Promise<SupplierEntry> {
    const bytes = data instanceof Uint8Array ? data : AdvertEnvelopeCodec.encode(data)
    return this.record(await this.verify(bytes))
  }

  /** Records a verified advert; throws InvalidAdvertError when a newer one from its supplier is known. */
  private record(advert: VerifiedAdvert): SupplierEntry {
    const key = advert.peerId
    // Checked again: a newer advert may have been recorded since this one was verified.
    this.assertNotReplayed(key, advert.seq)
    const last = this.lastSeq.get(key)
    const existing = this.entries.get(key)
    if (last !== undefined && advert.seq === last && existing !== undefined) {
      existing.lastSeenMs = Date.now()
      return existing
    }
    this.lastSeq.set(key, advert.seq)
    this.stats.advertsRecorded++
    const { publicKey, signer, ...plain } = advert
    const entry: SupplierEntry = existing ?? {
      peerId: signer,
      publicKey,
      advert: plain,
      addrs: [],
      lastSeenMs: 0,
      outstanding: 0,
      successes: 0,
      failures: 0,
      verified: 0,
      proofFailures: 0,
      capacityCredit: 0,
      refusals: 0
    }
    entry.advert = plain
    entry.addrs = plain.multiaddrs.flatMap(bytes => {
      try {
        return [multiaddr(bytes)]
      } catch {
        return []
      }
    })
    entry.lastSeenMs = Date.now()
    if (existing === undefined) {
      this.entries.set(key, entry)
      this.log.info('supplier joined', { peer: key, models: plain.models.map(m => m.name) })
    }
    for (const l of this.listeners) l()
    return entry
  }

  private expire(): void {
    const cutoff = Date.now() - this.init.expireAfterMs
    for (const [key, entry] of this.entries) {
      if (entry.lastSeenMs < cutoff && entry.outstanding === 0) {
        this.entries.delete(key)
        this.log.info('supplier expired', { peer: key })
      }
    }
  }

  /** Live suppliers, optionally only those offering `modelId`. */
  suppliers(modelId?: string): SupplierEntry[] {
    this.expire()
    const all = [...this.entries.values()]
    return modelId === undefined ? all : all.filter(e => e.advert.models.some(m => m.id === modelId))
  }

  get(peerId: string): SupplierEntry | undefined {
    return this.entries.get(peerId)
  }

  /** Models on offer, one entry per model id, with the cheapest price. */
  models(): ModelInfo[] {
    const byId = new Map<string, ModelInfo>()
    for (const entry of this.suppliers()) {
      for (const m of entry.advert.models) {
        const known = byId.get(m.id)
        if (known === undefined) {
          byId.set(m.id, { id: m.id, name: m.name, contextSize: m.contextSize, pricePer1kTokens: m.pricePer1kTokens, suppliers: 1 })
        } else {
          known.suppliers++
          if (m.pricePer1kTokens < known.pricePer1kTokens) known.pricePer1kTokens = m.pricePer1kTokens
        }
      }
    }
    return [...byId.values()].sort((a, b) => a.name.localeCompare(b.name))
  }

  /** Records a measured outcome of a task on a supplier. */
  /** Slots the router may fill on `entry`: the advertised ones, capped by what it showed it has (see SupplierEntry.capacity). */
  slotsOf(entry: SupplierEntry): number {
    const advertised = Math.max(1, entry.advert.totalSlots)
    return entry.capacity === undefined ? advertised : Math.min(advertised, entry.capacity)
  }

  /** Whether `entry` refused work within the hold time: it then gets no work queued beyond its believed slots. */
  refusedRecently(entry: SupplierEntry, nowMs = Date.now()): boolean {
    return entry.lastRefusalMs !== undefined && nowMs - entry.lastRefusalMs < this.init.refusalHoldMs
  }

  /**
   * Records that a supplier refused a task for lack of room while `running` other
   * tasks of ours were in flight on it: we believe it has that many slots (at least 1).
   */
  recordRefusal(peerId: string, running: number): void {
    const entry = this.entries.get(peerId)
    if (entry === undefined) return
    entry.refusals++
    entry.lastRefusalMs = Date.now()
    entry.capacity = Math.max(1, Math.min(this.slotsOf(entry), running))
    entry.capacityCredit = 0
  }

  recordResult(peerId: string, result: { ok: boolean; ttftMs?: number; tokensPerSecond?: number }): void {
    const entry = this.entries.get(peerId)
    if (entry === undefined) return
    const a = this.init.ewmaAlpha
    if (result.ok) {
      entry.successes++
      if (entry.capacity !== undefined && !this.refusedRecently(entry)) {
        entry.capacityCredit += 1 / entry.capacity
        if (entry.capacityCredit >= 1) {
          entry.capacityCredit = 0
          entry.capacity++
          if (entry.capacity >= Math.max(1, entry.advert.totalSlots)) entry.capacity = undefined
        }
      }
    } else entry.failures++
    if (result.ttftMs !== undefined)
      entry.ewmaTtftMs = entry.ewmaTtftMs === undefined ? result.ttftMs : a * result.ttftMs + (1 - a) * entry.ewmaTtftMs
    if (result.tokensPerSecond !== undefined && Number.isFinite(result.tokensPerSecond)) {
      entry.ewmaTokensPerSecond =
        entry.ewmaTokensPerSecond === undefined ? result.tokensPerSecond : a * result.tokensPerSecond + (1 - a) * entry.ewmaTokensPerSecond
    }
  }

  /** Records a proof-of-inference outcome; returns true when the supplier is now banned. */
  recordProof(peerId: string, ok: boolean): boolean {
    const entry = this.entries.get(peerId)
    if (entry === undefined) return this.banned.has(peerId)
    if (ok) {
      entry.verified++
      return false
    }
    entry.proofFailures++
    if (entry.proofFailures >= this.init.banAfterProofFailures) {
      this.banned.add(peerId)
      this.entries.delete(peerId)
      this.log.warn('supplier banned for failed proofs', { peer: peerId, failures: entry.proofFailures })
      for (const l of this.listeners) l()
      return true
    }
    return false
  }

  isBanned(peerId: string): boolean {
    return this.banned.has(peerId)
  }

  /** Asks a peer directly for its current advert (used after DHT discovery). */
  async query(target: PeerId | Multiaddr[], options: { signal?: AbortSignal } = {}): Promise<SupplierEntry> {
    const signal = options.signal ?? AbortSignal.timeout(5_000)
    const stream = await this.components.node.libp2p.dialProtocol(target, ADVERT_PROTOCOL, { signal })
    const framed = createFramedStream(stream)
    try {
      const envelope = await framed.read(AdvertEnvelopeCodec, { signal })
      await framed.close({ signal }).catch(() => undefined)
      return await this.ingest(envelope)
    } catch (err) {
      framed.abort(err instanceof Error ? err : new Error('advert query failed'))
      throw err
    }
  }

  /** Finds suppliers of a model through the DHT and asks each for its advert. */
  async discover(modelId: string, options: { signal?: AbortSignal; max?: number } = {}): Promise<SupplierEntry[]> {
    const signal = options.signal ?? AbortSignal.timeout(5_000)
    const found: SupplierEntry[] = []
    const { libp2p } = this.components.node
    try {
      for await (const provider of libp2p.contentRouting.findProviders(modelCid(modelId), { signal })) {
        if (provider.id.equals(libp2p.peerId) || this.entries.has(provider.id.toString())) continue
        try {
          found.push(await this.query(provider.multiaddrs.length > 0 ? provider.multiaddrs : provider.id, { signal }))
        } catch (err) {
          this.log.debug('provider advert query failed', { peer: provider.id.toString(), err })
        }
        if (found.length >= (options.max ?? 8)) break
      }
    } catch (err) {
      this.log.debug('provider lookup ended', { err })
    }
    return found
  }
}
