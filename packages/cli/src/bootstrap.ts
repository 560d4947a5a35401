import { join } from 'node:path'
import {
  CAPACITY_TOPIC,
  type ConfigSchema,
  capacityTopicValidator,
  createGcnNode,
  createLogger,
  formatHelp,
  type LogLevel,
  loadConfig,
  loadOrCreateIdentity,
  MetricsRegistry,
  type NetworkProfile
} from '@gcn/core'
import { commonOptions, statusOptions } from './common-options.js'
import { createRoleMetrics } from './metrics.js'
import { untilSignal } from './process.js'
import { startStatusServer } from './status-server.js'
import { wireCaptureFromEnv } from './wire-capture.js'

export const bootstrapSchema = {
  ...commonOptions,
  keyFile: {
    type: 'string',
    valueName: 'PATH',
    default: join('.gcn', 'bootstrap', 'peer.key'),
    description: 'Ed25519 identity file (created with mode 0600 if missing; refused if readable by others)'
  },
  targetPeers: { type: 'integer', min: 0, default: 50, description: 'keep dialing discovered peers until this many are connected' },
  ...statusOptions
} satisfies ConfigSchema

export const bootstrapHelp = formatHelp(
  'gcn bootstrap [options]',
  'Run a bootstrap node: a DHT server and gossipsub relay that new peers dial first.\nPrints its full multiaddrs (with /p2p/<peer id>) on start; keeps its identity across restarts.',
  bootstrapSchema
)

export async function runBootstrap(argv: string[]): Promise<number> {
  const { values, help } = loadConfig(bootstrapSchema, { argv })
  if (help) {
    process.stdout.write(bootstrapHelp)
    return 0
  }
  const log = createLogger({
    component: 'gcn:bootstrap',
    level: values.logLevel as LogLevel,
    format: values.logFormat as 'json' | 'pretty'
  })
  const identity = await loadOrCreateIdentity(values.keyFile)
  const node = await createGcnNode({
    role: 'bootstrap',
    privateKey: identity.privateKey,
    profile: values.profile as NetworkProfile,
    ...(values.listen === undefined ? {} : { listen: values.listen }),
    ...(values.announce === undefined ? {} : { announce: values.announce }),
    bootstrap: values.bootstrap ?? [],
    targetPeers: values.targetPeers,
    ...wireCaptureFromEnv(),
    logger: log,
    // libp2p registers its own metrics in the role's registry.
    metrics: new MetricsRegistry()
  })
  // The bootstrap relays /gcn/capacity/1 (GcnNode subscribes it): it checks what it relays like any
  // receiver, else receivers would penalise it for relaying garbage and the publisher would go free.
  node.libp2p.services.pubsub.topicValidators.set(CAPACITY_TOPIC, capacityTopicValidator({ logger: log }))
  const metrics = createRoleMetrics(node, log)
  await node.start()
  const status = await startStatusServer(values.statusHost, values.statusPort, {
    healthy: () => node.libp2p.status === 'started',
    status: () => ({
      peerId: node.peerId.toString(),
      connections: node.libp2p.getConnections().length,
      pubsubPeers: node.libp2p.services.pubsub.getPeers().length
    }),
    metrics: () => metrics.metrics()
  })
  process.stdout.write(
    `gcn bootstrap ready\npeer id: ${node.peerId.toString()}${identity.created ? ' (new identity)' : ''}\nkey file: ${values.keyFile}\nstatus: ${status.url}\nlistening:\n${node.multiaddrs.map(a => `  ${a}`).join('\n')}\n`
  )
  return untilSignal(log, async () => {
    await status.close()
    await node.stop()
    metrics.close()
  })
}
