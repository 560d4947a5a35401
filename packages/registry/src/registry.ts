import {
  AckedWriteStream,
  type BlockClock,
  BlockSummariesCodec,
  type BlockSummary,
  checkRegistryGossipSender,
  createFramedStream,
  GcnError,
  type GcnNode,
  gossipValidator,
  LIMITS,
  type Logger,
  parseRegistryPeers,
  plainBytes,
  REGISTRY_BLOCKS_TOPIC,
  REGISTRY_REPLICATE_PROTOCOL,
  REGISTRY_SUBMIT_PROTOCOL,
  REGISTRY_SYNC_PROTOCOL,
  type RegistryAck,
  RegistryAckCodec,
  type RegistryPeer,
  type RegistryWrite,
  RegistryWriteCodec,
  type SignedEnvelope,
  SyncRequestCodec,
  type SyncResponse,
  SyncResponseCodec
} from '@gcn/core'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { BlockOutOfRangeError, QuorumNotReachedError, UnknownSignerError } from './errors.js'
import type { BlockSummaryRow, InsertOutcome, Ledger, LedgerItem, SummaryStaleness } from './ledger.js'
import { errorCode, type VerifyPolicy, verifyEncodedEnvelope, verifyEnvelope } from './verify.js'

export interface RegistryInit {
  /** The other registry peers' multiaddrs (each ending in /p2p/<peer id>): replication targets and sync partners. */
  peers?: string[]
  /** Distributor peer ids whose receipts are accepted. */
  distributors: string[]
  /** Registry peers, this one included, that must hold a write durably before it is acknowledged. */
  quorum?: number
  /** How many blocks back a direct write may still be for (replication and sync accept any age); default max(150, blocks per day / 10). */
  acceptBlocksBehind?: number
  /** How many blocks ahead of our clock a write may be for (clock skew). */
  acceptBlocksAhead?: number
  /** Time the other registry peers have to confirm a replicated write. */
  replicateTimeoutMs?: number
  /** Full anti-entropy pass with one random registry peer this often. */
  syncIntervalMs?: number
  /** Writes one submit stream may have in flight before we stop reading it (backpressure). */
  maxInFlightPerStream?: number
  /** Inbound submit streams accepted per connection. */
  maxSubmitStreams?: number
  /**
   * Writes in flight to one registry peer; beyond it that peer is skipped (it
   * catches up by anti-entropy) so a slow peer never makes us buffer without bound.
   */
  maxReplicaInFlight?: number
}

export const REGISTRY_DEFAULTS = Object.freeze({
  acceptBlocksAhead: 1,
  replicateTimeoutMs: 5_000,
  syncIntervalMs: 2_000,
  maxInFlightPerStream: 256,
  maxSubmitStreams: 64,
  maxReplicaInFlight: 64
})

export interface RegistryComponents {
  node: GcnNode
  ledger: Ledger
  clock: BlockClock
  logger: Logger
}

/** Counters for /status, metrics and tests. */
export interface RegistryStats {
  writes: number
  duplicates: number
  rejected: Record<string, number>
  quorumFailures: number
  replicatedIn: number
  /** Writes not sent to a registry peer that had maxReplicaInFlight outstanding. */
  replicaSkips: number
  syncedIn: number
  syncRounds: number
}

/** What gossipsub hands to 'message' listeners (signed messages carry the author). */
interface GossipMessage {
  type: 'signed' | 'unsigned'
  topic: string
  data: Uint8Array
  from?: PeerId
}

interface PendingCommit {
  item: LedgerItem
  resolve(outcome: InsertOutcome): void
  reject(err: unknown): void
}

/** Blocks remembered as differing from a peer's gossip, and fetched per block tick. */
const MAX_SUSPECTS = 256
const FETCHES_PER_TICK = 8

/** Below this span, reconciliation asks for single blocks. */
const LEAF_SPAN = 64

/**
 * Anti-entropy compares, for blocks that still take direct writes, a summary
 * computed up to this long ago even if writes have changed the block since: a
 * block being written differs between peers anyway (writes in flight), and one
 * round asks for it at three levels, each of which would otherwise hash all its
 * leaves again, on both sides. Older blocks (those the settler compiles) are
 * always compared exactly.
 */
const SYNC_SUMMARY_MAX_STALE_MS = 1_000

/**
 * A registry peer: accepts signed receipt batches and block confirmations on
 * /gcn/registry/submit/1.0.0, stores them durably (group-committed SQLite
 * transactions), copies each write to the other registry peers before
 * acknowledging it (quorum), gossips per-block summaries, and runs
 * anti-entropy so a peer that crashed or was cut off converges.
 */
export class Registry {
  private readonly init: Required<Omit<RegistryInit, 'peers' | 'distributors'>>
  private readonly log: Logger
  private readonly policy: VerifyPolicy
  readonly peers: RegistryPeer[]
  private readonly peerIds: Set<string>
  private readonly replicaStreams = new Map<string, Promise<AckedWriteStream>>()
  private commitQueue: PendingCommit[] = []
  private commitScheduled = false
  /** Blocks changed since their summary was last gossiped → when they last changed (ms). */
  private readonly dirtyBlocks = new Map<number, number>()
  private lastWriteAt = 0
  private lastSyncAt = 0
  /** When the last anti-entropy round finished (ms; 0 = none yet): the settler compiles a day only after one. */
  lastSyncCompletedAt = 0
  /** Blocks a peer's gossip says differ from ours: block → peer to fetch from. */
  private readonly suspects = new Map<number, string>()
  /**
   * Block fetches in flight, by block. A gossip suspect already being fetched is skipped: both fetches
   * would ask for what is missing at their start, and be sent (and verify) the same envelopes twice.
   */
  private readonly blockFetches = new Map<number, number>()
  private readonly timers: Array<ReturnType<typeof setInterval>> = []
  private readonly openStreams = new Set<Stream>()
  private syncing = false
  private started = false
  readonly stats: RegistryStats = {
    writes: 0,
    duplicates: 0,
    rejected: {},
    quorumFailures: 0,
    replicatedIn: 0,
    replicaSkips: 0,
    syncedIn: 0,
    syncRounds: 0
  }
  private readonly onGossip = (evt: CustomEvent<GossipMessage>): void => this.handleGossip(evt.detail)

  constructor(
    init: RegistryInit,
    private readonly components: RegistryComponents
  ) {
    const self = components.node.peerId.toString()
    this.peers = parseRegistryPeers(init.peers ?? [], 'registry peer').filter(p => p.peerId.toString() !== self)
    this.peerIds = new Set(this.peers.map(p => p.peerId.toString()))
    const blocksPerDay = components.clock.blocksPerDay
    this.init = {
      ...REGISTRY_DEFAULTS,
      quorum: Math.min(2, this.peers.length + 1),
      acceptBlocksBehind: Math.max(150, Math.floor(blocksPerDay / 10)),
      ...Object.fromEntries(Object.entries(init).filter(([k, v]) => v !== undefined && k !== 'peers' && k !== 'distributors'))
    } as Required<Omit<RegistryInit, 'peers' | 'distributors'>>
    if (!Number.isInteger(this.init.quorum) || this.init.quorum < 1 || this.init.quorum > this.peers.length + 1) {
      throw new GcnError(`quorum ${this.init.quorum} needs ${this.init.quorum - 1} other registry peers, ${this.peers.length} configured`, {
        hint: 'list the other registry peers with --peer, or lower --quorum'
      })
    }
    this.policy = { distributors: new Set(init.distributors) }
    this.log = components.logger.child('registry')
  }

  get quorum(): number {
    return this.init.quorum
  }

  /** Blocks back a submitted write may be for; the settler waits this long after a day ends. */
  get acceptBlocksBehind(): number {
    return this.init.acceptBlocksBehind
  }

  async start(): Promise<void> {
    const { libp2p } = this.components.node
    await libp2p.handle(REGISTRY_SUBMIT_PROTOCOL, (stream, connection) => this.serveWrites(stream, connection, false), {
      maxInboundStreams: this.init.maxSubmitStreams
    })
    await libp2p.handle(REGISTRY_REPLICATE_PROTOCOL, (stream, connection) => this.serveWrites(stream, connection, true))
    await libp2p.handle(REGISTRY_SYNC_PROTOCOL, (stream, connection) => this.serveSync(stream, connection))
    // Only registry peers publish (and relay) block summaries, each naming itself: anything else is Rejected.
    libp2p.services.pubsub.topicValidators.set(
      REGISTRY_BLOCKS_TOPIC,
      gossipValidator(
        (from, message) => checkRegistryGossipSender(from, message, this.peerIds, BlockSummariesCodec.decode(message.data).registryPeerId),
        this.log
      )
    )
    libp2p.services.pubsub.subscribe(REGISTRY_BLOCKS_TOPIC)
    libp2p.services.pubsub.addEventListener('message', this.onGossip as never)
    for (const peer of this.peers) {
      for (const addr of peer.addrs) libp2p.peerStore.merge(peer.peerId, { multiaddrs: [addr] }).catch(() => undefined)
    }
    this.started = true
    const every = (ms: number, fn: () => void): void => {
      const t = setInterval(fn, ms)
      t.unref()
      this.timers.push(t)
    }
    every(this.components.clock.blockMs, () => this.onBlockTick())
    every(this.init.syncIntervalMs, () => void this.antiEntropy())
    void this.antiEntropy()
    this.log.info('registry started', { peers: this.peers.length, quorum: this.init.quorum, distributors: this.policy.distributors.size })
  }

  async stop(): Promise<void> {
    this.started = false
    for (const t of this.timers) clearInterval(t)
    this.timers.length = 0
    const { libp2p } = this.components.node
    libp2p.services.pubsub.removeEventListener('message', this.onGossip as never)
    libp2p.services.pubsub.topicValidators.delete(REGISTRY_BLOCKS_TOPIC)
    await libp2p.unhandle([REGISTRY_SUBMIT_PROTOCOL, REGISTRY_REPLICATE_PROTOCOL, REGISTRY_SYNC_PROTOCOL])
    for (const s of this.replicaStreams.values()) void s.then(x => x.close()).catch(() => undefined)
    this.replicaStreams.clear()
    for (const s of this.openStreams) s.abort(new GcnError('registry stopping'))
    this.flushCommits()
  }

  // -------------------------------------------------------------------------
  // Durable writes: every write in one event-loop turn shares one transaction.

  private commit(item: LedgerItem): Promise<InsertOutcome> {
    const { promise, resolve, reject } = Promise.withResolvers<InsertOutcome>()
    this.commitQueue.push({ item, resolve, reject })
    if (!this.commitScheduled) {
      this.commitScheduled = true
      setImmediate(() => this.flushCommits())
    }
    return promise
  }

  private flushCommits(): void {
    this.commitScheduled = false
    const batch = this.commitQueue
    if (batch.length === 0) return
    this.commitQueue = []
    let outcomes: InsertOutcome[]
    try {
      outcomes = this.components.ledger.insert(batch.map(p => p.item))
    } catch (err) {
      this.log.error('ledger write failed', { err, items: batch.length })
      for (const p of batch) p.reject(err)
      return
    }
    for (let i = 0; i < batch.length; i++) {
      const outcome = outcomes[i]!
      if (!outcome.duplicate) {
        this.dirtyBlocks.set(batch[i]!.item.blockHeight, Date.now())
        this.lastWriteAt = Date.now()
      }
      batch[i]!.resolve(outcome)
    }
  }

  // -------------------------------------------------------------------------
  // Submit and replicate.

  private checkBlock(height: number): void {
    const now = this.components.clock.blockHeight()
    if (height > now + this.init.acceptBlocksAhead) {
      throw new BlockOutOfRangeError(`block ${height} is in the future (current block ${now})`, {
        hint: 'check the clock and the genesis time'
      })
    }
    if (height < now - this.init.acceptBlocksBehind) {
      throw new BlockOutOfRangeError(
        `block ${height} is older than the ${this.init.acceptBlocksBehind} blocks this registry accepts (current ${now})`
      )
    }
  }

  private async serveWrites(stream: Stream, connection: Connection, fromRegistry: boolean): Promise<void> {
    const remote = connection.remotePeer.toString()
    const framed = createFramedStream(stream, { maxFrameBytes: LIMITS.registryWrite })
    if (fromRegistry && !this.peerIds.has(remote)) {
      this.log.debug('replication refused from a peer that is not a registry peer', { peer: remote })
      framed.abort(new UnknownSignerError('not a registry peer'))
      return
    }
    this.openStreams.add(stream)
    const inFlight = new Set<Promise<void>>()
    let ackChain: Promise<void> = Promise.resolve()
    const answer = (ack: RegistryAck): void => {
      ackChain = ackChain.then(() => framed.write(RegistryAckCodec, ack)).catch(err => framed.abort(err as Error))
    }
    try {
      // libp2p streams have no inactivity timeout: a peer that opens a stream and trickles or goes quiet
      // would hold it (and its buffers) for as long as the connection lives.
      for (let first = true; ; first = false) {
        const write = await framed.readOrEnd(RegistryWriteCodec, { signal: AbortSignal.timeout(first ? 10_000 : 60_000) })
        if (write === null) break
        const job: Promise<void> = this.handleWrite(write, fromRegistry)
          .then(answer)
          .finally(() => inFlight.delete(job))
        inFlight.add(job)
        if (inFlight.size >= this.init.maxInFlightPerStream) await Promise.race(inFlight)
      }
      await Promise.all(inFlight)
      await ackChain
      await framed.close({ signal: AbortSignal.timeout(5_000) })
    } catch (err) {
      this.log.debug('write stream ended with an error', { peer: remote, err })
      framed.abort(err instanceof Error ? err : new GcnError('write stream failed'))
    } finally {
      this.openStreams.delete(stream)
    }
  }

  private reject(id: number, err: unknown): RegistryAck {
    const code = errorCode(err)
    this.stats.rejected[code] = (this.stats.rejected[code] ?? 0) + 1
    const retryable = err instanceof QuorumNotReachedError || !(err instanceof GcnError)
    const message = err instanceof Error ? err.message.slice(0, 1000) : 'internal error'
    if (!retryable) this.log.info('write rejected', { code, message })
    else this.log.warn('write failed', { code, err })
    return { id, ok: false, replicas: 0, duplicate: false, errorCode: code, errorMessage: message, retryable }
  }

  private async handleWrite(write: RegistryWrite, fromRegistry: boolean): Promise<RegistryAck> {
    try {
      if (write.envelope === undefined) throw new GcnError('write without an envelope')
      const envelope = write.envelope
      const item = await verifyEnvelope(envelope, this.policy)
      if (!fromRegistry) this.checkBlock(item.blockHeight)
      const outcome = await this.commit(item)
      if (fromRegistry) this.stats.replicatedIn++
      else this.stats.writes++
      if (outcome.duplicate) this.stats.duplicates++
      let replicas = 1
      if (!fromRegistry && this.peers.length > 0) {
        replicas += await this.replicate(envelope, this.init.quorum - 1)
        if (replicas < this.init.quorum) {
          this.stats.quorumFailures++
          throw new QuorumNotReachedError(`held by ${replicas} of the ${this.init.quorum} registry peers required`, {
            hint: 'the write is stored here; retry once more registry peers are reachable'
          })
        }
      }
      return { id: write.id, ok: true, replicas, duplicate: outcome.duplicate, errorCode: '', errorMessage: '', retryable: false }
    } catch (err) {
      return this.reject(write.id, err)
    }
  }

  private replicaStream(peer: RegistryPeer): Promise<AckedWriteStream> {
    const key = peer.peerId.toString()
    let s = this.replicaStreams.get(key)
    if (s === undefined) {
      s = AckedWriteStream.open(this.components.node, peer, REGISTRY_REPLICATE_PROTOCOL, AbortSignal.timeout(this.init.replicateTimeoutMs))
      this.replicaStreams.set(key, s)
      s.then(
        x => {
          if (x.closed) this.replicaStreams.delete(key)
        },
        () => this.replicaStreams.delete(key)
      )
    }
    return s
  }

  private async replicateTo(peer: RegistryPeer, envelope: SignedEnvelope, signal: AbortSignal): Promise<boolean> {
    const key = peer.peerId.toString()
    try {
      let stream = await this.replicaStream(peer)
      if (stream.closed) {
        this.replicaStreams.delete(key)
        stream = await this.replicaStream(peer)
      }
      if (stream.inFlight >= this.init.maxReplicaInFlight) {
        this.stats.replicaSkips++
        return false
      }
      const ack = await stream.write(envelope, signal)
      if (!ack.ok) this.log.warn('registry peer refused a replicated write', { peer: key, code: ack.errorCode })
      return ack.ok
    } catch (err) {
      const s = this.replicaStreams.get(key)
      if (s !== undefined)
        void s.then(x => x.closed && this.replicaStreams.get(key) === s && this.replicaStreams.delete(key)).catch(() => undefined)
      this.log.debug('replication to a registry peer failed', { peer: key, err })
      return false
    }
  }

  /** Sends the write to every other registry peer; resolves with how many confirmed once `needed` did or all answered. */
  private async replicate(envelope: SignedEnvelope, needed: number): Promise<number> {
    if (needed <= 0) {
      for (const peer of this.peers) void this.replicateTo(peer, envelope, AbortSignal.timeout(this.init.replicateTimeoutMs))
      return 0
    }
    const signal = AbortSignal.timeout(this.init.replicateTimeoutMs)
    const { promise, resolve } = Promise.withResolvers<number>()
    let confirmed = 0
    let answered = 0
    for (const peer of this.peers) {
      void this.replicateTo(peer, envelope, signal).then(ok => {
        answered++
        if (ok) confirmed++
        if (confirmed >= needed || answered === this.peers.length) resolve(confirmed)
      })
    }
    return promise
  }

  // -------------------------------------------------------------------------
  // Gossip of block summaries.

  private onBlockTick(): void {
    if (!this.started) return
    this.publishSummaries()
    // An anti-entropy round in progress fetches every block that differs: the suspects wait for it to end
    // (fetching them alongside would have both fetches sent, and verify, the same envelopes).
    if (this.syncing) return
    // A few block fetches per tick; the rest wait (anti-entropy covers them too).
    const suspects = [...this.suspects].slice(0, FETCHES_PER_TICK)
    for (const [block] of suspects) this.suspects.delete(block)
    for (const [block, peer] of suspects) {
      // Still being fetched since an earlier tick: that fetch brings what we lack.
      if (this.blockFetches.has(block)) continue
      const target = this.peers.find(p => p.peerId.toString() === peer)
      if (target !== undefined) void this.fetchBlock(target, block).catch(err => this.log.debug('block fetch failed', { peer, block, err }))
    }
  }

  private publishSummaries(): void {
    if (this.dirtyBlocks.size === 0) return
    // A block still being written changes again before anyone could act on its summary, and
    // summarising it means hashing all its leaves: wait until it has been quiet for a block.
    const quietBefore = Date.now() - this.components.clock.blockMs
    const blocks = [...this.dirtyBlocks]
      .filter(([, changedAt]) => changedAt <= quietBefore)
      .map(([b]) => b)
      .sort((a, b) => a - b)
      .slice(-256)
    if (blocks.length === 0) return
    for (const b of blocks) this.dirtyBlocks.delete(b)
    const summaries: BlockSummary[] = blocks.map(b => this.summary(b))
    const message = BlockSummariesCodec.encode({
      registryPeerId: this.components.node.peerId.toString(),
      blocks: summaries,
      timestampMs: Date.now()
    })
    this.components.node.libp2p.services.pubsub
      .publish(REGISTRY_BLOCKS_TOPIC, message)
      .catch(err => this.log.debug('summary publish failed', { err }))
  }

  private summary(block: number): BlockSummary {
    const s: BlockSummaryRow = this.components.ledger.blockSummary(block)
    return { blockHeight: s.blockHeight, count: s.count, root: plainBytes(s.root) }
  }

  private handleGossip(message: GossipMessage): void {
    if (message.topic !== REGISTRY_BLOCKS_TOPIC || message.type !== 'signed' || message.from === undefined) return
    const from = message.from.toString()
    if (!this.peerIds.has(from)) return
    let decoded: ReturnType<typeof BlockSummariesCodec.decode>
    try {
      decoded = BlockSummariesCodec.decode(message.data)
    } catch (err) {
      this.log.debug('malformed block summaries', { peer: from, err })
      return
    }
    if (decoded.registryPeerId !== from) return
    const newest = this.components.clock.blockHeight() + this.init.acceptBlocksAhead
    for (const remote of decoded.blocks) {
      // Ours is still changing: its own summary goes out (and is compared) once it is quiet.
      if (this.dirtyBlocks.has(remote.blockHeight)) continue
      // Never a block from the future, and a bounded to-do list whatever a peer claims.
      if (remote.blockHeight > newest || this.suspects.size >= MAX_SUSPECTS) continue
      const local = this.components.ledger.blockSummary(remote.blockHeight)
      if (local.count < remote.count || (local.count === remote.count && !sameBytes(local.root, remote.root))) {
        this.suspects.set(remote.blockHeight, from)
      }
    }
  }

  // -------------------------------------------------------------------------
  // Anti-entropy.

  private async serveSync(stream: Stream, connection: Connection): Promise<void> {
    const remote = connection.remotePeer.toString()
    const framed = createFramedStream(stream, { maxFrameBytes: LIMITS.syncResponse })
    if (!this.peerIds.has(remote)) {
      framed.abort(new UnknownSignerError('sync is for registry peers only'))
      return
    }
    this.openStreams.add(stream)
    try {
      const request = await framed.read(SyncRequestCodec, { signal: AbortSignal.timeout(10_000) })
      const { ledger } = this.components
      if (request.spans !== undefined) {
        const { fromBlock, toBlock, span } = request.spans
        const to = Math.min(toBlock, fromBlock + span * 4096 - 1)
        const spans = ledger
          .spans(fromBlock, to, span, this.syncStaleness())
          .map(s => ({ blockHeight: s.blockHeight, count: s.count, root: plainBytes(s.root) }))
        await framed.write(SyncResponseCodec, { spans, envelopes: [] })
      } else if (request.items !== undefined) {
        const have = new Set(request.items.have.map(hex))
        const missing = ledger.envelopeIds(request.items.blockHeight).filter(id => !have.has(hex(id)))
        let frame: SyncResponse = { spans: [], envelopes: [] }
        let bytes = 0
        for (const envelope of ledger.envelopes(missing)) {
          if (frame.envelopes.length > 0 && (bytes + envelope.byteLength + 16 > LIMITS.syncResponse || frame.envelopes.length >= 4096)) {
            await framed.write(SyncResponseCodec, frame)
            frame = { spans: [], envelopes: [] }
            bytes = 0
          }
          frame.envelopes.push(plainBytes(envelope))
          bytes += envelope.byteLength + 16
        }
        if (frame.envelopes.length > 0) await framed.write(SyncResponseCodec, frame)
      }
      await framed.close({ signal: AbortSignal.timeout(10_000) })
    } catch (err) {
      this.log.debug('sync request failed', { peer: remote, err })
      framed.abort(err instanceof Error ? err : new GcnError('sync failed'))
    } finally {
      this.openStreams.delete(stream)
    }
  }

  private async openSync(peer: RegistryPeer, signal: AbortSignal): Promise<ReturnType<typeof createFramedStream>> {
    const { libp2p } = this.components.node
    const target = libp2p.getConnections(peer.peerId).length > 0 || peer.addrs.length === 0 ? peer.peerId : peer.addrs
    const stream = await libp2p.dialProtocol(target, REGISTRY_SYNC_PROTOCOL, { signal })
    return createFramedStream(stream, { maxFrameBytes: LIMITS.syncResponse })
  }

  private async remoteSpans(peer: RegistryPeer, fromBlock: number, toBlock: number, span: number): Promise<BlockSummary[]> {
    const signal = AbortSignal.timeout(15_000)
    const framed = await this.openSync(peer, signal)
    try {
      await framed.write(SyncRequestCodec, { spans: { fromBlock, toBlock, span } }, { signal })
      const response = await framed.read(SyncResponseCodec, { signal })
      return response.spans
    } finally {
      framed.abort(new GcnError('done'))
    }
  }

  /** Fetches and stores the envelopes of `block` that `peer` holds and we lack; returns how many were new. */
  async fetchBlock(peer: RegistryPeer, block: number): Promise<number> {
    this.blockFetches.set(block, (this.blockFetches.get(block) ?? 0) + 1)
    try {
      return await this.fetchMissing(peer, block)
    } finally {
      const left = (this.blockFetches.get(block) ?? 1) - 1
      if (left > 0) this.blockFetches.set(block, left)
      else this.blockFetches.delete(block)
    }
  }

  private async fetchMissing(peer: RegistryPeer, block: number): Promise<number> {
    const signal = AbortSignal.timeout(60_000)
    const framed = await this.openSync(peer, signal)
    let added = 0
    try {
      const have = this.components.ledger.envelopeIds(block).slice(0, 16_384)
      await framed.write(SyncRequestCodec, { items: { blockHeight: block, have: have.map(plainBytes) } }, { signal })
      for await (const response of framed.frames(SyncResponseCodec, { signal })) {
        const items = await Promise.all(
          response.envelopes.map(bytes =>
            verifyEncodedEnvelope(bytes, this.policy).catch(err => {
              this.log.warn('registry peer sent an envelope that does not verify', { peer: peer.peerId.toString(), err })
              return undefined
            })
          )
        )
        const outcomes = await Promise.all(items.filter(i => i !== undefined).map(i => this.commit(i)))
        for (const o of outcomes) if (!o.duplicate) added++
      }
    } finally {
      framed.abort(new GcnError('done'))
    }
    this.stats.syncedIn += added
    if (added > 0) this.log.info('synced missing writes', { peer: peer.peerId.toString(), block, added })
    return added
  }

  /** Blocks still open to direct writes may be compared by a slightly stale summary (SYNC_SUMMARY_MAX_STALE_MS). */
  private syncStaleness(): SummaryStaleness {
    return { fromBlock: this.components.clock.blockHeight() - this.init.acceptBlocksBehind, maxMs: SYNC_SUMMARY_MAX_STALE_MS }
  }

  /** Compares range digests with `peer`, narrowing down to the blocks that differ, and fetches what we lack. */
  async reconcile(peer: RegistryPeer, fromBlock: number, toBlock: number, span: number): Promise<number> {
    const remote = await this.remoteSpans(peer, fromBlock, toBlock, span)
    const local = new Map(this.components.ledger.spans(fromBlock, toBlock, span, this.syncStaleness()).map(s => [s.blockHeight, s]))
    let added = 0
    for (const r of remote) {
      const l = local.get(r.blockHeight)
      if (l !== undefined && l.count === r.count && sameBytes(l.root, r.root)) continue
      if (span === 1) {
        added += await this.fetchBlock(peer, r.blockHeight)
      } else {
        const end = Math.min(toBlock, r.blockHeight - (r.blockHeight % span) + span - 1)
        added += await this.reconcile(peer, r.blockHeight, end, span > LEAF_SPAN ? LEAF_SPAN : 1)
      }
    }
    return added
  }

  /** One anti-entropy round against a random registry peer over everything up to the current block. */
  async antiEntropy(target?: PeerId, options: { force?: boolean } = {}): Promise<number> {
    if (this.syncing || !this.started || this.peers.length === 0) return 0
    // Under sustained writes (replicated synchronously anyway) a full comparison re-hashes the busy
    // blocks every round: then run one every 5 intervals only, unless asked to (the settler before a day).
    const now = Date.now()
    if (
      options.force !== true &&
      target === undefined &&
      now - this.lastWriteAt < this.init.syncIntervalMs &&
      now - this.lastSyncAt < 5 * this.init.syncIntervalMs
    ) {
      return 0
    }
    this.lastSyncAt = now
    this.syncing = true
    try {
      const peer =
        target === undefined ? this.peers[Math.floor(Math.random() * this.peers.length)]! : this.peers.find(p => p.peerId.equals(target))
      if (peer === undefined) return 0
      const { clock } = this.components
      const now = clock.blockHeight() + this.init.acceptBlocksAhead
      const top = Math.max(clock.blocksPerDay, LEAF_SPAN)
      const from = Math.max(0, now - top * 4000)
      const added = await this.reconcile(peer, from, now, top)
      this.stats.syncRounds++
      this.lastSyncCompletedAt = Date.now()
      return added
    } catch (err) {
      this.log.debug('anti-entropy round failed', { err })
      return 0
    } finally {
      this.syncing = false
    }
  }
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0
}
