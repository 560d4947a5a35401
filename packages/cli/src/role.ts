import { join } from 'node:path'
import {
  type ConfigSchema,
  createGcnNode,
  createLogger,
  type GcnNode,
  type Identity,
  type LoadedConfig,
  type Logger,
  type LogLevel,
  loadOrCreateIdentity,
  MetricsRegistry,
  type NetworkProfile,
  type NodeRole
} from '@gcn/core'
import { commonOptions } from './common-options.js'
import { recordTaskStepsFromEnv } from './task-steps.js'
import { wireCaptureFromEnv } from './wire-capture.js'

/** Options shared by the roles that hold an identity in a data directory. */
export function roleOptions(role: NodeRole) {
  return {
    ...commonOptions,
    dataDir: { type: 'string', valueName: 'DIR', default: join('.gcn', role), description: 'directory for keys and state' },
    keyFile: {
      type: 'string',
      valueName: 'PATH',
      description: 'Ed25519 identity file (default DATA_DIR/peer.key; created 0600; refused if readable by others)'
    }
  } satisfies ConfigSchema
}

type RoleValues = LoadedConfig<ReturnType<typeof roleOptions>>['values']

export interface StartedRole {
  log: Logger
  identity: Identity
  node: GcnNode
}

/** Logger, identity and a libp2p node for one role, from the shared options. */
export async function startRoleNode(
  role: NodeRole,
  values: RoleValues,
  extra: { topics?: string[]; targetPeers?: number } = {}
): Promise<StartedRole> {
  const log = createLogger({ component: `gcn:${role}`, level: values.logLevel as LogLevel, format: values.logFormat as 'json' | 'pretty' })
  recordTaskStepsFromEnv(role)
  const identity = await loadOrCreateIdentity(values.keyFile ?? join(values.dataDir, 'peer.key'))
  const node = await createGcnNode({
    role,
    privateKey: identity.privateKey,
    profile: values.profile as NetworkProfile,
    ...(values.listen === undefined ? {} : { listen: values.listen }),
    ...(values.announce === undefined ? {} : { announce: values.announce }),
    bootstrap: values.bootstrap ?? [],
    ...extra,
    ...wireCaptureFromEnv(),
    logger: log,
    // libp2p registers its own metrics in the role's registry (createRoleMetrics adds the rest).
    metrics: new MetricsRegistry()
  })
  return { log, identity, node }
}
