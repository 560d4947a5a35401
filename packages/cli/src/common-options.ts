import { type ConfigSchema, LOG_LEVELS, NETWORK_PROFILES, type OptionSpec } from '@gcn/core'

/** Options every long-running role shares. */
export const commonOptions = {
  listen: {
    type: 'string[]',
    valueName: 'MULTIADDR',
    description: 'listen multiaddr; default TCP and WebSockets on an OS-chosen port'
  } as OptionSpec<'string[]'>,
  announce: {
    type: 'string[]',
    valueName: 'MULTIADDR',
    description: 'address to announce instead of the listen addresses'
  } as OptionSpec<'string[]'>,
  bootstrap: {
    type: 'string[]',
    valueName: 'MULTIADDR',
    description: 'bootstrap peer address ending in /p2p/<peer id>'
  } as OptionSpec<'string[]'>,
  profile: {
    type: 'string',
    choices: NETWORK_PROFILES,
    default: 'production',
    description: "network profile: 'local' relaxes libp2p limits for many peers on 127.0.0.1 (tests/devnet only)"
  } as OptionSpec<'string'>,
  logLevel: { type: 'string', choices: LOG_LEVELS, default: 'info', description: 'log level' } as OptionSpec<'string'>,
  logFormat: {
    type: 'string',
    choices: ['json', 'pretty'],
    default: 'json',
    description: 'log line format (logs go to stderr)'
  } as OptionSpec<'string'>
} as const

/** 2026-01-01T00:00:00Z: block 0 of the production network. */
export const PRODUCTION_GENESIS_MS = 1_767_225_600_000

/** The block clock; every peer of one network must use the same three values. */
export const clockOptions = {
  genesisMs: {
    type: 'integer',
    min: 0,
    default: PRODUCTION_GENESIS_MS,
    valueName: 'UNIX_MS',
    description: 'start of block 0 (unix ms); the same on every peer of a network'
  },
  blockMs: { type: 'integer', min: 10, default: 2000, description: 'block length in ms' },
  blocksPerDay: { type: 'integer', min: 1, default: 43_200, description: 'blocks per settlement day' }
} satisfies ConfigSchema

/** Registry peers to report receipts or confirmations to. */
export const registryClientOptions = {
  registry: {
    type: 'string[]',
    valueName: 'MULTIADDR',
    description: 'registry peer address ending in /p2p/<peer id> (repeat for each); without any, nothing is reported'
  } as OptionSpec<'string[]'>
} as const

/** The health/status/metrics HTTP endpoint of a role. */
export const statusOptions = {
  statusHost: { type: 'string', default: '127.0.0.1', description: 'interface of the health/status/metrics HTTP endpoint' },
  statusPort: {
    type: 'integer',
    min: 0,
    max: 65535,
    default: 0,
    description: 'port of GET /health, /status and /metrics (Prometheus) (0 = any free port)'
  }
} satisfies ConfigSchema

/** An EVM address option (settlement contract, reward address). */
export function evmAddressOption(description: string) {
  return {
    type: 'string',
    valueName: 'ADDRESS',
    description,
    validate: (v: string) => (/^0x[0-9a-fA-F]{40}$/.test(v) ? undefined : 'must be 0x followed by 40 hex digits')
  } as const
}
