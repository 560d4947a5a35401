import { join } from 'node:path'
import { ConfigError, type ConfigSchema, formatHelp, loadConfig } from '@gcn/core'
import { createQueryServer, Ledger, loadOrCreateEvmKey, Registry, SettlementChain, Settler } from '@gcn/registry'
import { clockOptions, evmAddressOption } from './common-options.js'
import { createRoleMetrics, registerRegistryMetrics } from './metrics.js'
import { untilSignal } from './process.js'
import { clockFrom } from './reporting.js'
import { roleOptions, startRoleNode } from './role.js'

export const registrySchema = {
  ...roleOptions('registry'),
  ...clockOptions,
  ledger: { type: 'string', valueName: 'PATH', description: 'SQLite ledger file (default DATA_DIR/ledger.sqlite)' },
  peer: {
    type: 'string[]',
    valueName: 'MULTIADDR',
    description: 'another registry peer, as a multiaddr ending in /p2p/<peer id> or just /p2p/<peer id> (repeat for each)'
  },
  distributor: { type: 'string[]', valueName: 'PEER_ID', description: 'distributor whose receipts are accepted (repeat for each)' },
  quorum: {
    type: 'integer',
    min: 1,
    max: 64,
    description: 'registry peers (this one included) holding a write before it is acknowledged (default min(2, peers + 1))'
  },
  acceptBlocksBehind: {
    type: 'integer',
    min: 1,
    description: 'how many blocks old a submitted write may be (default max(150, blocks per day / 10))'
  },
  rpcUrl: {
    type: 'string',
    valueName: 'URL',
    description: 'JSON-RPC URL of the rollup; with --settlement-address, this peer takes part in daily settlement'
  },
  settlementAddress: { ...evmAddressOption('GcnSettlement contract address') },
  evmKeyFile: {
    type: 'string',
    valueName: 'PATH',
    description: 'secp256k1 key that signs day reports and pays for posts (default DATA_DIR/evm.key; created 0600)'
  },
  staggerBlocks: { type: 'integer', min: 1, default: 10, description: 'blocks each submitter rank waits after the previous one' },
  graceBlocks: { type: 'integer', min: 0, default: 5, description: 'blocks after the last accepted block of a day before it is compiled' },
  httpHost: { type: 'string', default: '127.0.0.1', description: 'interface of the query/health/metrics HTTP endpoint' },
  httpPort: {
    type: 'integer',
    min: 0,
    max: 65535,
    default: 8090,
    description: 'port of the query/health/metrics HTTP endpoint (0 = any free port)'
  }
} satisfies ConfigSchema

export const registryHelp = formatHelp(
  'gcn registry [options]\n       gcn registry query <totals|receipts|mismatches|blocks|status|settlement|proof> --url URL [filters]',
  'Run a registry peer: stores signed receipts and block confirmations durably (SQLite), replicates them\nto the other registry peers before acknowledging, and serves queries over HTTP.',
  registrySchema
)

export async function runRegistry(argv: string[]): Promise<number> {
  if (argv[0] === 'query') return runRegistryQuery(argv.slice(1))
  const { values, help } = loadConfig(registrySchema, { argv })
  if (help) {
    process.stdout.write(registryHelp)
    return 0
  }
  if ((values.distributor ?? []).length === 0) {
    throw new ConfigError('no distributors accepted', {
      hint: 'pass --distributor PEER_ID for each distributor whose receipts this registry stores'
    })
  }
  const clock = clockFrom(values)
  const { log, node } = await startRoleNode('registry', values)
  const ledger = new Ledger({ path: values.ledger ?? join(values.dataDir, 'ledger.sqlite') })
  const registry = new Registry(
    {
      peers: values.peer ?? [],
      distributors: values.distributor ?? [],
      ...(values.quorum === undefined ? {} : { quorum: values.quorum }),
      ...(values.acceptBlocksBehind === undefined ? {} : { acceptBlocksBehind: values.acceptBlocksBehind })
    },
    { node, ledger, clock, logger: log }
  )
  await node.start()
  await registry.start()
  let settler: Settler | undefined
  if (values.rpcUrl !== undefined || values.settlementAddress !== undefined) {
    if (values.rpcUrl === undefined || values.settlementAddress === undefined) {
      throw new ConfigError('settlement needs both --rpc-url and --settlement-address')
    }
    const privateKey = await loadOrCreateEvmKey(values.evmKeyFile ?? join(values.dataDir, 'evm.key'))
    const chain = await SettlementChain.connect({
      rpcUrl: values.rpcUrl,
      settlement: values.settlementAddress as `0x${string}`,
      privateKey
    })
    settler = new Settler(
      { staggerBlocks: values.staggerBlocks, graceBlocks: values.graceBlocks },
      {
        node,
        ledger,
        clock,
        chain,
        logger: log,
        acceptBlocksBehind: registry.acceptBlocksBehind,
        registryPeers: [node.peerId, ...registry.peers.map(p => p.peerId)],
        ...(registry.peers.length === 0
          ? {}
          : {
              lastSyncCompletedAt: () => registry.lastSyncCompletedAt,
              syncNow: () => void registry.antiEntropy(undefined, { force: true })
            })
      }
    )
    await settler.start()
  } else {
    log.warn('no --rpc-url/--settlement-address: this registry keeps receipts but does not settle days')
  }
  const metrics = createRoleMetrics(node, log)
  registerRegistryMetrics(metrics, { registry, ledger, clock, node, ...(settler === undefined ? {} : { settler }) })
  const http = await createQueryServer(
    { host: values.httpHost, port: values.httpPort },
    {
      ledger,
      clock,
      logger: log,
      healthy: () => node.libp2p.status === 'started',
      status: () => ({
        peerId: node.peerId.toString(),
        quorum: registry.quorum,
        peers: registry.peers.map(p => ({
          peerId: p.peerId.toString(),
          connected: node.libp2p.getConnections(p.peerId).length > 0
        })),
        stats: registry.stats,
        ...(settler === undefined ? {} : { settlement: { signer: settler.signer, ...settler.stats } })
      }),
      ...(settler === undefined ? {} : { routes: settler.routes() }),
      metrics: () => metrics.metrics()
    }
  )
  process.stdout.write(
    `gcn registry ready\npeer id: ${node.peerId.toString()}\nhttp: ${http.url}\n${settler === undefined ? '' : `evm signer: ${settler.signer}\n`}listening:\n${node.multiaddrs.map(a => `  ${a}`).join('\n')}\n`
  )
  return untilSignal(log, async () => {
    await http.close()
    settler?.stop()
    await registry.stop()
    await node.stop()
    ledger.close()
    metrics.close()
  })
}

const querySchema = {
  url: { type: 'string', required: true, valueName: 'URL', description: "a registry's HTTP endpoint, e.g. http://127.0.0.1:8090" },
  block: { type: 'integer', min: 0, description: 'one block' },
  day: { type: 'integer', min: 0, description: 'one settlement day' },
  from: { type: 'integer', min: 0, description: 'first block of a range' },
  to: { type: 'integer', min: 0, description: 'last block of a range' },
  game: { type: 'string', description: 'only this game id' },
  supplier: { type: 'string', valueName: 'PEER_ID', description: 'only this supplier' },
  limit: { type: 'integer', min: 1, max: 10_000, description: 'rows to return (receipts, mismatches)' },
  account: { type: 'string', valueName: 'ADDRESS', description: 'reward address (proof)' }
} satisfies ConfigSchema

const QUERIES = ['totals', 'receipts', 'mismatches', 'blocks', 'status', 'settlement', 'proof'] as const
/** Queries whose path differs from their name: a day's settlement report and a supplier's claim proof (--day, --account). */
const QUERY_PATHS: Record<string, string> = { settlement: 'settlement/day', proof: 'settlement/proof' }

/** `gcn registry query <what>`: prints the registry's JSON answer. */
async function runRegistryQuery(argv: string[]): Promise<number> {
  const { values, help, positionals } = loadConfig(querySchema, { argv, positionals: true })
  if (help) {
    process.stdout.write(formatHelp(`gcn registry query <${QUERIES.join('|')}> [options]`, 'Query a registry peer over HTTP.', querySchema))
    return 0
  }
  const what = positionals[0]
  if (what === undefined || !(QUERIES as readonly string[]).includes(what)) {
    throw new ConfigError(`query must be one of ${QUERIES.join(', ')}`, {
      hint: 'e.g. gcn registry query totals --url http://127.0.0.1:8090 --day 0'
    })
  }
  const params = new URLSearchParams()
  for (const key of ['block', 'day', 'from', 'to', 'game', 'supplier', 'limit', 'account'] as const) {
    const v = values[key]
    if (v !== undefined) params.set(key, String(v))
  }
  let response: Response
  try {
    response = await fetch(`${values.url.replace(/\/$/, '')}/${QUERY_PATHS[what] ?? what}?${params}`, {
      signal: AbortSignal.timeout(30_000)
    })
  } catch (err) {
    throw new ConfigError(`cannot reach the registry at ${values.url}`, { cause: err })
  }
  const body = await response.text()
  process.stdout.write(`${body}\n`)
  return response.ok ? 0 : 1
}
