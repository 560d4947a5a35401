import { readFileSync } from 'node:fs'
import { ConfigError, type ConfigSchema, formatHelp, loadConfig } from '@gcn/core'
import {
  type ApiKeyRecord,
  ApiKeyStore,
  createGateway,
  Dashboard,
  ModelKeyServer,
  ReceiptIssuer,
  SupplierDirectory,
  TaskRouter
} from '@gcn/distributor'
import { createModelRuntime, createRuntimeReferee } from '@gcn/supplier'
import { clockOptions, evmAddressOption, registryClientOptions, statusOptions } from './common-options.js'
import { createRoleMetrics, instrumentDistributorBackend, registerDistributorMetrics } from './metrics.js'
import { readModelKeyFile } from './model-keys.js'
import { untilSignal } from './process.js'
import { clockFrom, registryOutbox } from './reporting.js'
import { roleOptions, startRoleNode } from './role.js'
import { watchGameStanding } from './standing.js'
import { startStatusServer } from './status-server.js'

export const distributorSchema = {
  ...roleOptions('distributor'),
  ...clockOptions,
  ...registryClientOptions,
  gatewayHost: { type: 'string', default: '127.0.0.1', description: 'interface the HTTP gateway listens on' },
  gatewayPort: { type: 'integer', min: 0, max: 65535, default: 8080, description: 'HTTP gateway port (0 = any free port)' },
  ...statusOptions,
  apiKey: {
    type: 'string[]',
    valueName: 'GAME:KEY',
    description: 'a plain API key for a game, as GAME_ID:KEY (devnet; production uses --api-keys-file with hashes)'
  },
  keyRatePerMinute: { type: 'integer', min: 1, default: 60, description: 'requests per minute allowed to each --api-key key' },
  keyMaxConcurrent: { type: 'integer', min: 1, default: 4, description: 'requests in flight allowed to each --api-key key' },
  apiKeysFile: {
    type: 'string',
    valueName: 'FILE',
    description: 'JSON array of {gameId, keyHash (sha256 hex), ratePerMinute, maxConcurrent}'
  },
  referenceModel: {
    type: 'string',
    valueName: 'PATH',
    description:
      'GGUF copy of a served model; sampled outputs are re-scored with it (proof of inference). Without it verdicts stay unchecked'
  },
  referenceThreads: { type: 'integer', min: 1, max: 256, default: 1, description: 'CPU threads for re-scoring' },
  proofSampleRate: {
    type: 'number',
    min: 0,
    max: 1,
    default: 0.1,
    description: 'share of tasks re-scored once a supplier has 20 verified tasks'
  },
  firstTokenTimeoutMs: {
    type: 'integer',
    min: 100,
    default: 10_000,
    description: 'try another supplier when no first token arrives by then'
  },
  maxAttempts: { type: 'integer', min: 1, max: 10, default: 3, description: 'suppliers tried per request' },
  rpcUrl: {
    type: 'string',
    valueName: 'URL',
    description: 'JSON-RPC URL of the rollup; with --settlement-address, delinquent games are refused (402)'
  },
  settlementAddress: { ...evmAddressOption('GcnSettlement contract address') },
  modelKey: {
    type: 'string[]',
    valueName: 'FILE',
    description: 'model key file from `gcn model encrypt`: suppliers of that encrypted model get its key from this distributor'
  },
  modelKeyPeer: {
    type: 'string[]',
    valueName: 'PEER_ID',
    description: 'only these supplier peers get model keys (default: any peer that asks)'
  },
  standingRefreshMs: {
    type: 'integer',
    min: 100,
    default: 5_000,
    description: "how often games' standing is read from the settlement contract"
  }
} satisfies ConfigSchema

export const distributorHelp = formatHelp(
  'gcn distributor [options]',
  'Run a distributor: tracks suppliers, routes tasks with failover and serves the OpenAI-compatible gateway.',
  distributorSchema
)

function loadKeys(
  plain: string[] | undefined,
  file: string | undefined,
  limits: { ratePerMinute: number; maxConcurrent: number }
): ApiKeyStore {
  const store = ApiKeyStore.fromPlainKeys(
    (plain ?? []).map(entry => {
      const i = entry.indexOf(':')
      if (i <= 0 || i === entry.length - 1) throw new ConfigError(`--api-key must be GAME_ID:KEY, got ${JSON.stringify(entry)}`)
      return { gameId: entry.slice(0, i), key: entry.slice(i + 1), ...limits }
    })
  )
  if (file !== undefined) {
    let records: ApiKeyRecord[]
    try {
      records = JSON.parse(readFileSync(file, 'utf8')) as ApiKeyRecord[]
    } catch (err) {
      throw new ConfigError(`cannot read API keys file ${file}`, { cause: err })
    }
    if (!Array.isArray(records)) throw new ConfigError(`API keys file ${file} must hold a JSON array`)
    for (const r of records) store.add(r)
  }
  if (store.records().length === 0)
    throw new ConfigError('no API keys configured', { hint: 'pass --api-key GAME:KEY or --api-keys-file FILE' })
  return store
}

export async function runDistributor(argv: string[]): Promise<number> {
  const { values, help } = loadConfig(distributorSchema, { argv })
  if (help) {
    process.stdout.write(distributorHelp)
    return 0
  }
  const apiKeys = loadKeys(values.apiKey, values.apiKeysFile, {
    ratePerMinute: values.keyRatePerMinute,
    maxConcurrent: values.keyMaxConcurrent
  })
  const { log, identity, node } = await startRoleNode('distributor', values)
  const outbox = registryOutbox(values.registry, node, log)
  const directory = new SupplierDirectory({}, { node, logger: log })
  const reference =
    values.referenceModel === undefined
      ? undefined
      : createModelRuntime(
          { modelPath: values.referenceModel, slots: 1, threads: values.referenceThreads },
          { logger: log.child('reference') }
        )
  await reference?.start()
  const router = new TaskRouter(
    { firstTokenTimeoutMs: values.firstTokenTimeoutMs, maxAttempts: values.maxAttempts, proofSampleRate: values.proofSampleRate },
    { node, directory, logger: log, ...(reference === undefined ? {} : { referee: createRuntimeReferee(reference) }) }
  )
  const receipts =
    outbox === undefined
      ? undefined
      : new ReceiptIssuer(
          {},
          { privateKey: identity.privateKey, peerId: node.peerId.toString(), clock: clockFrom(values), outbox, logger: log }
        )
  if (receipts !== undefined) router.onCompleted(task => receipts.issue(task))
  const standing =
    values.rpcUrl === undefined && values.settlementAddress === undefined
      ? undefined
      : await watchGameStanding(
          { rpcUrl: values.rpcUrl, settlementAddress: values.settlementAddress, refreshMs: values.standingRefreshMs },
          apiKeys.records().map(r => r.gameId),
          log
        )
  const modelKeys =
    values.modelKey === undefined || values.modelKey.length === 0
      ? undefined
      : new ModelKeyServer(
          {
            keys: new Map((await Promise.all(values.modelKey.map(readModelKeyFile))).map(f => [f.modelId, f.key])),
            ...(values.modelKeyPeer === undefined ? {} : { allowPeers: values.modelKeyPeer })
          },
          { node, logger: log }
        )
  const metrics = createRoleMetrics(node, log)
  const gateway = createGateway(
    { host: values.gatewayHost, port: values.gatewayPort, apiKeys },
    {
      backend: instrumentDistributorBackend(metrics)(router),
      logger: log,
      ...(standing === undefined ? {} : { gameInGoodStanding: standing.inGoodStanding })
    }
  )
  registerDistributorMetrics(metrics, {
    gateway,
    router,
    directory,
    ...(receipts === undefined ? {} : { receipts }),
    ...(outbox === undefined ? {} : { outbox })
  })
  await node.start()
  await modelKeys?.start()
  directory.start()
  outbox?.start()
  receipts?.start()
  await gateway.start()
  const dashboard = new Dashboard(
    {},
    {
      router,
      directory,
      gatewayStats: () => gateway.stats,
      clock: clockFrom(values),
      logger: log,
      ...(standing === undefined ? {} : { dayStatus: standing.dayPosted })
    }
  )
  dashboard.start()
  const status = await startStatusServer(values.statusHost, values.statusPort, {
    extra: (req, res) => dashboard.handle(req, res),
    healthy: () => node.libp2p.status === 'started',
    status: () => ({
      peerId: node.peerId.toString(),
      gateway: gateway.url,
      requests: gateway.stats,
      router: router.counters,
      suppliers: directory.suppliers().length,
      models: directory.models().map(m => ({ id: m.id, name: m.name, suppliers: m.suppliers })),
      ...(receipts === undefined ? {} : { receipts: receipts.stats }),
      ...(outbox === undefined ? {} : { registryOutbox: { pending: outbox.pending, ...outbox.stats } }),
      connections: node.libp2p.getConnections().length
    }),
    metrics: () => metrics.metrics()
  })
  log.info('dashboard', { url: `${status.url}/dashboard` })
  process.stdout.write(
    `gcn distributor ready\npeer id: ${node.peerId.toString()}\ngateway: ${gateway.url}\nstatus: ${status.url}\nlistening:\n${node.multiaddrs.map(a => `  ${a}`).join('\n')}\n`
  )
  return untilSignal(log, async () => {
    dashboard.stop()
    await status.close()
    await gateway.stop()
    standing?.stop()
    router.stop()
    await router.settled()
    await receipts?.stop()
    await outbox?.stop({ flushMs: 10_000 })
    directory.stop()
    await modelKeys?.stop()
    await node.stop()
    await reference?.stop()
    metrics.close()
  })
}
