import { LOG_LEVELS, NETWORK_PROFILES, type OptionSpec } from '@gcn/core'

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
