import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { type GossipSub, type GossipsubOpts, gossipsub } from '@libp2p/gossipsub'
import type { PeerScoreThresholds, TopicScoreParams } from '@libp2p/gossipsub/score'
import { type Identify, identify } from '@libp2p/identify'
import type { Libp2p, PeerId, PeerInfo, PrivateKey } from '@libp2p/interface'
import { type KadDHT, kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { type Ping, ping } from '@libp2p/ping'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2pOptions } from 'libp2p'
import type { Uint8ArrayList } from 'uint8arraylist'
import { type EncrypterFactory, onSecured } from './encrypter-hooks.js'
import { ConfigError } from './errors.js'
import { libp2pMetrics } from './libp2p-metrics.js'
import { type Logger, silentLogger } from './logger.js'
import type { MetricsRegistry } from './metrics.js'
import { quietNoiseLengths } from './noise-quiet-lengths.js'
import { CAPACITY_TOPIC, DHT_PROTOCOL, REGISTRY_BLOCKS_TOPIC, REGISTRY_REPORTS_TOPIC } from './protocols.js'
import { tcpWholeWrites } from './tcp-whole-writes.js'
import { installYamuxHalfWindowUpdates } from './yamux-window-updates.js'

/**
 * One factory builds the libp2p node for every gcn role. Production settings
 * are libp2p's own defaults; the `local` profile relaxes the defaults that
 * break when every peer shares 127.0.0.1 (see shared/notes/stack-facts.md)
 * and must never be used on a real network.
 */
export type NodeRole = 'bootstrap' | 'supplier' | 'distributor' | 'registry' | 'client'
export type NetworkProfile = 'production' | 'local'
export const NETWORK_PROFILES: readonly NetworkProfile[] = ['production', 'local']

export interface GcnServices extends Record<string, unknown> {
  identify: Identify
  ping: Ping
  dht: KadDHT
  pubsub: GossipSub
}

export type GcnLibp2p = Libp2p<GcnServices>

export interface GcnNodeInit {
  role: NodeRole
  privateKey: PrivateKey
  profile?: NetworkProfile
  /** Listen multiaddrs; default: TCP and WebSockets on an OS-chosen port (all interfaces, or 127.0.0.1 for `local`). */
  listen?: string[]
  /** Addresses to announce instead of the listen addresses (public IP behind NAT). */
  announce?: string[]
  /** Bootstrap peer multiaddrs, each ending in /p2p/<peer id>. */
  bootstrap?: string[]
  /** Run the DHT in server mode; default true for bootstrap, registry and distributor. */
  dhtServer?: boolean
  /** The dialer keeps connecting to discovered peers until this many are connected. */
  targetPeers?: number
  /** Gossipsub topics this node subscribes to at start (bootstrap relays the capacity topic by default). */
  topics?: string[]
  logger?: Logger
  /**
   * The role's metrics registry: libp2p's own metrics (connections, streams
   * and bytes per protocol, dialer, listeners, kad-dht, ...) are registered
   * in it. Default: none (libp2p collects no metrics). One registry per node.
   */
  metrics?: MetricsRegistry
  /**
   * Debugging and tests only: receives every byte this node reads from its
   * connections after Noise decryption (what the node itself can see). The
   * confidentiality test uses it to show that peers other than the chosen
   * supplier never receive a prompt in plaintext.
   */
  wireCapture?: (bytes: Uint8Array, remotePeer: string) => void
}

export const NODE_DEFAULTS = Object.freeze({
  profile: 'production' as NetworkProfile,
  targetPeers: 8,
  /** How often the dialer re-checks its peer count and re-dials bootstrap nodes. */
  redialIntervalMs: 5_000
})

const SERVER_ROLES: ReadonlySet<NodeRole> = new Set(['bootstrap', 'registry', 'distributor'])

/**
 * Gossipsub peer scoring on the gcn topics (every profile). Gossipsub counts
 * invalid message deliveries (P4: messages a topic validator Rejects, see
 * gossip-validation.ts) only on topics that have score parameters, so without
 * these a peer publishing garbage keeps its score. P4 is the only topic
 * component weighted: time in mesh and first deliveries (P1, P2) would give
 * bonuses nothing here uses, and mesh delivery rates (P3, P3b) would penalise
 * honest peers on topics as quiet as ours. The global components (IP
 * colocation, behaviour penalty) stay at gossipsub's defaults, and so do the
 * thresholds, stated here because the P4 weight is scaled to them.
 *
 * Taken from Lotus (filecoin-project/lotus node/modules/lp2p/pubsub.go, its
 * blocks and messages topics): invalid deliveries decay with 0.99972 per 1 s
 * decay interval (a time constant of about an hour), and one invalid message
 * costs 1/25 of the graylist threshold (-100 of -2500 there, -3.2 of -80
 * here). P4 is quadratic in the decaying count, so a peer that got 2 messages
 * Rejected by us is below the gossip threshold (no IHAVE/IWANT with it), 4 below
 * the publish threshold, and the 6th graylists it: everything it sends is
 * ignored, and as any negative score it is pruned from our meshes. Honest peers
 * score 0 on the gcn topics.
 */
export const GOSSIP_SCORING: Readonly<{ topics: readonly string[]; topic: TopicScoreParams; thresholds: PeerScoreThresholds }> =
  Object.freeze({
    topics: Object.freeze([CAPACITY_TOPIC, REGISTRY_BLOCKS_TOPIC, REGISTRY_REPORTS_TOPIC]),
    topic: Object.freeze({
      topicWeight: 1,
      timeInMeshWeight: 0,
      timeInMeshQuantum: 1_000,
      timeInMeshCap: 3_600,
      firstMessageDeliveriesWeight: 0,
      firstMessageDeliveriesDecay: 0.5,
      firstMessageDeliveriesCap: 2_000,
      meshMessageDeliveriesWeight: 0,
      meshMessageDeliveriesDecay: 0.5,
      meshMessageDeliveriesCap: 100,
      meshMessageDeliveriesThreshold: 20,
      meshMessageDeliveriesWindow: 10,
      meshMessageDeliveriesActivation: 5_000,
      meshFailurePenaltyWeight: 0,
      meshFailurePenaltyDecay: 0.5,
      invalidMessageDeliveriesWeight: -3.2,
      invalidMessageDeliveriesDecay: 0.99972
    }),
    // gossipsub's defaults (defaultPeerScoreThresholds).
    thresholds: Object.freeze({
      gossipThreshold: -10,
      publishThreshold: -50,
      graylistThreshold: -80,
      acceptPXThreshold: 10,
      opportunisticGraftThreshold: 20
    })
  })

/** Settings that only make sense when every peer is on one host. */
function localProfileOptions(): {
  connectionManager: Libp2pOptions['connectionManager']
  connectionMonitor: Libp2pOptions['connectionMonitor']
  gossip: Partial<GossipsubOpts>
} {
  return {
    // The default accepts ≤ 5 inbound connections per second per IP.
    connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'], inboundConnectionThreshold: 1_000, maxIncomingPendingConnections: 256 },
    // Under load on 2 cores pings time out and the monitor would abort live connections.
    connectionMonitor: { abortConnectionOnPingFailure: false },
    // Gossipsub graylists more than a handful of peers sharing one IP.
    gossip: { scoreParams: { IPColocationFactorWhitelist: new Set(['127.0.0.1']) } }
  }
}

export function validateBootstrapAddrs(addrs: readonly string[]): void {
  for (const addr of addrs) {
    let ma: ReturnType<typeof multiaddr>
    try {
      ma = multiaddr(addr)
    } catch (err) {
      throw new ConfigError(`invalid bootstrap multiaddr ${JSON.stringify(addr)}`, { cause: err })
    }
    if (ma.getComponents().find(c => c.name === 'p2p') === undefined) {
      throw new ConfigError(`bootstrap multiaddr ${addr} has no /p2p/<peer id>`, {
        hint: 'copy the full address that `gcn bootstrap` prints'
      })
    }
  }
}

/** Wraps an encrypter so everything read after decryption is also handed to `capture`. */
function capturingEncrypter(inner: EncrypterFactory, capture: NonNullable<GcnNodeInit['wireCapture']>): EncrypterFactory {
  return onSecured(inner, secured => {
    const peer = secured.remotePeer.toString()
    // Wrap onData rather than adding a 'message' listener: a listener would
    // take bytes that arrive before the muxer attaches, which buffer otherwise.
    const connection = secured.connection as typeof secured.connection & { onData?: (data: Uint8Array | Uint8ArrayList) => void }
    const onData = connection.onData?.bind(connection)
    if (onData !== undefined) {
      connection.onData = data => {
        capture(data instanceof Uint8Array ? data : data.subarray(), peer)
        onData(data)
      }
    }
  })
}

/**
 * Listen addresses with a specific IP and port. libp2p 3 announces a public
 * address only once something (AutoNAT) verified it; gcn runs nothing that
 * does, so a node listening on a public IP would announce no address at all
 * and nobody could dial it. An operator who listens on a given IP and port
 * means to be reached there: announce it. Wildcards (0.0.0.0, ::) and port 0
 * still need --announce on a public host.
 */
function fixedListenAddrs(listen: readonly string[]): string[] {
  return listen.filter(addr => {
    const m = addr.match(/^\/ip[46]\/([^/]+)\/tcp\/(\d+)/)
    return m !== null && m[1] !== '0.0.0.0' && m[1] !== '::' && m[2] !== '0'
  })
}

export async function createGcnLibp2p(init: GcnNodeInit): Promise<GcnLibp2p> {
  const profile = init.profile ?? NODE_DEFAULTS.profile
  if (!NETWORK_PROFILES.includes(profile)) throw new ConfigError(`unknown network profile ${JSON.stringify(profile)}`)
  const local = profile === 'local' ? localProfileOptions() : undefined
  const host = profile === 'local' ? '127.0.0.1' : '0.0.0.0'
  const listen = init.listen ?? [`/ip4/${host}/tcp/0`, `/ip4/${host}/tcp/0/ws`]
  const bootstrapList = init.bootstrap ?? []
  validateBootstrapAddrs(bootstrapList)
  const dhtServer = init.dhtServer ?? SERVER_ROLES.has(init.role)
  installYamuxHalfWindowUpdates()

  const options: Libp2pOptions<GcnServices> = {
    privateKey: init.privateKey,
    addresses: {
      listen,
      ...(init.announce === undefined ? { appendAnnounce: fixedListenAddrs(listen) } : { announce: init.announce })
    },
    transports: [tcpWholeWrites(), webSockets()],
    connectionEncrypters: [
      init.wireCapture === undefined ? quietNoiseLengths(noise()) : capturingEncrypter(quietNoiseLengths(noise()), init.wireCapture)
    ],
    streamMuxers: [yamux()],
    peerDiscovery: bootstrapList.length > 0 ? [bootstrap({ list: bootstrapList, timeout: 100 })] : [],
    ...(init.metrics === undefined ? {} : { metrics: libp2pMetrics({ registry: init.metrics.promRegistry }) }),
    ...(local === undefined ? {} : { connectionManager: local.connectionManager, connectionMonitor: local.connectionMonitor }),
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        clientMode: !dhtServer,
        // The default mapper drops private addresses, which are all a local network has.
        ...(local === undefined ? {} : { peerInfoMapper: passthroughMapper })
      }),
      pubsub: gossipsub({
        // Adverts are published on a timer whether or not anyone listens yet.
        allowPublishToZeroTopicPeers: true,
        ...local?.gossip,
        scoreParams: {
          ...local?.gossip.scoreParams,
          topics: Object.fromEntries(GOSSIP_SCORING.topics.map(topic => [topic, { ...GOSSIP_SCORING.topic }]))
        },
        scoreThresholds: { ...GOSSIP_SCORING.thresholds }
      })
    }
  }
  // Started by GcnNode.start(): a role that fails while setting up must not leave a listening node behind.
  return createLibp2p({ ...options, start: false })
}

/**
 * libp2p v3 has no auto-dialer and bootstrap dials only once: this keeps the
 * node connected to at least `targetPeers` peers, dialing discovered peers by
 * their multiaddrs (a PeerId-only dial waits on peer routing) and re-dialing
 * bootstrap nodes whenever none of them is connected.
 */
export class PeerDialer {
  private timer?: ReturnType<typeof setInterval>
  private readonly pending = new Set<string>()
  private readonly onDiscovery = (evt: CustomEvent<PeerInfo>): void => {
    this.maybeDial(evt.detail)
  }

  constructor(
    private readonly node: GcnLibp2p,
    private readonly bootstrapAddrs: readonly string[],
    private readonly targetPeers: number,
    private readonly log: Logger,
    private readonly intervalMs = NODE_DEFAULTS.redialIntervalMs
  ) {}

  start(): void {
    this.node.addEventListener('peer:discovery', this.onDiscovery)
    this.timer = setInterval(() => this.tick(), this.intervalMs)
    this.timer.unref()
    this.tick()
  }

  stop(): void {
    this.node.removeEventListener('peer:discovery', this.onDiscovery)
    if (this.timer !== undefined) clearInterval(this.timer)
  }

  private connectedCount(): number {
    return new Set(this.node.getConnections().map(c => c.remotePeer.toString())).size
  }

  private maybeDial(info: PeerInfo): void {
    if (info.id.equals(this.node.peerId) || this.connectedCount() >= this.targetPeers) return
    if (this.node.getConnections(info.id).length > 0) return
    const target = info.multiaddrs.length > 0 ? info.multiaddrs : info.id
    void this.dial(info.id, target)
  }

  private async dial(peer: PeerId, target: PeerInfo['multiaddrs'] | PeerId): Promise<void> {
    const key = peer.toString()
    if (this.pending.has(key)) return
    this.pending.add(key)
    try {
      await this.node.dial(target, { signal: AbortSignal.timeout(10_000) })
    } catch (err) {
      this.log.debug('dial failed', { peer: key, err })
    } finally {
      this.pending.delete(key)
    }
  }

  private tick(): void {
    if (this.node.status !== 'started') return
    for (const addr of this.bootstrapAddrs) {
      const ma = multiaddr(addr)
      const id = ma.getComponents().find(c => c.name === 'p2p')?.value
      const connected = this.node.getConnections().some(c => c.remotePeer.toString() === id)
      if (!connected && id !== this.node.peerId.toString()) {
        void this.node
          .dial(ma, { signal: AbortSignal.timeout(10_000) })
          .catch(err => this.log.debug('bootstrap dial failed', { addr, err }))
      }
    }
    if (this.connectedCount() >= this.targetPeers) return
    void this.node.peerStore
      .all()
      .then(peers => {
        for (const p of peers) {
          if (p.addresses.length === 0) continue
          this.maybeDial({ id: p.id, multiaddrs: p.addresses.map(a => a.multiaddr) })
        }
      })
      .catch(err => this.log.debug('peer store scan failed', { err }))
  }
}

/** A started gcn libp2p node plus its dialer; the long-lived handle every role holds. */
export class GcnNode {
  readonly libp2p: GcnLibp2p
  readonly role: NodeRole
  /** The registry libp2p's metrics go to (GcnNodeInit.metrics). */
  readonly metrics: MetricsRegistry | undefined
  private readonly dialer: PeerDialer
  private readonly topics: string[]
  private readonly log: Logger

  constructor(libp2p: GcnLibp2p, init: GcnNodeInit) {
    this.libp2p = libp2p
    this.role = init.role
    this.metrics = init.metrics
    this.log = (init.logger ?? silentLogger).child('node')
    this.dialer = new PeerDialer(libp2p, init.bootstrap ?? [], init.targetPeers ?? NODE_DEFAULTS.targetPeers, this.log)
    this.topics = init.topics ?? (init.role === 'bootstrap' ? [CAPACITY_TOPIC] : [])
  }

  get peerId(): PeerId {
    return this.libp2p.peerId
  }

  /** Listen addresses with /p2p/<peer id>, ready to hand to other peers. */
  get multiaddrs(): string[] {
    return this.libp2p.getMultiaddrs().map(ma => ma.toString())
  }

  async start(): Promise<void> {
    await this.libp2p.start()
    for (const topic of this.topics) this.libp2p.services.pubsub.subscribe(topic)
    this.dialer.start()
    this.log.info('node started', { role: this.role, peerId: this.peerId.toString(), addrs: this.multiaddrs })
  }

  async stop(): Promise<void> {
    this.dialer.stop()
    await this.libp2p.stop()
    this.log.info('node stopped', { role: this.role })
  }
}

/** Build (not start) a gcn node for a role. */
export async function createGcnNode(init: GcnNodeInit): Promise<GcnNode> {
  const libp2p = await createGcnLibp2p({ ...init })
  return new GcnNode(libp2p, init)
}
