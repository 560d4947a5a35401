import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError, type ConfigSchema, formatHelp, loadConfig } from '@gcn/core'
import {
  ConfirmationReporter,
  createModelRuntime,
  type DecryptedModel,
  decryptModelToMemory,
  fetchModelKey,
  isEncryptedModel,
  readEncryptedModelHeader,
  SUPPLIER_DEFAULTS,
  Supplier,
  writeGguf
} from '@gcn/supplier'
import { runSupplierClaim } from './claim.js'
import { clockOptions, registryClientOptions, statusOptions } from './common-options.js'
import { createRoleMetrics, instrumentSupplierEngine, registerSupplierMetrics } from './metrics.js'
import { untilSignal } from './process.js'
import { progressBar } from './progress.js'
import { clockFrom, registryOutbox } from './reporting.js'
import { roleOptions, startRoleNode } from './role.js'
import { startStatusServer } from './status-server.js'

export const supplierSchema = {
  ...roleOptions('supplier'),
  ...clockOptions,
  ...registryClientOptions,
  model: {
    type: 'string',
    valueName: 'PATH',
    description: 'GGUF model file; without it a generated tiny test model is used (DATA_DIR/gcn-tiny.gguf)'
  },
  modelSha256: { type: 'string', valueName: 'HEX', description: 'refuse to serve unless the model file has this sha256' },
  modelKeyFrom: {
    type: 'string[]',
    valueName: 'MULTIADDR',
    description: 'distributor to ask for the key of an encrypted --model (default: any connected distributor that holds it)'
  },
  modelKeyTimeoutMs: {
    type: 'integer',
    min: 100,
    default: 60_000,
    description: 'give up waiting for the key of an encrypted model after this long'
  },
  modelName: { type: 'string', description: 'name to advertise (default: the GGUF general.name)' },
  slots: { type: 'integer', min: 1, max: 64, default: 2, description: 'tasks generated at once' },
  maxQueue: { type: 'integer', min: 0, max: 10_000, default: 16, description: 'tasks waiting for a slot before new ones are refused' },
  threads: {
    type: 'integer',
    min: 1,
    max: 256,
    default: 1,
    description: 'CPU threads for the model (set it: the all-cores default collapses under load)'
  },
  contextSize: { type: 'integer', min: 64, description: 'tokens per sequence (default min(model, 2048))' },
  gpu: { type: 'string', choices: ['false', 'auto', 'cuda'], default: 'false', description: 'GPU backend for node-llama-cpp' },
  gpuProbe: {
    type: 'string',
    choices: ['on', 'off'],
    default: 'on',
    description: 'with --gpu cuda|auto, first load the model and decode a few tokens on the GPU in a child process (see docs/operators.md)'
  },
  price: { type: 'integer', min: 0, default: 1000, description: 'price in micro-units of the payment token per 1,000 tokens' },
  frameIntervalMs: {
    type: 'integer',
    min: 0,
    max: 1_000,
    default: SUPPLIER_DEFAULTS.frameIntervalMs,
    description:
      'tokens made within this many ms of the last chunk go out with the first one made after it (the first token at once); 0 = a chunk per token'
  },
  ...statusOptions,
  drainMs: {
    type: 'integer',
    min: 0,
    default: 8_000,
    description: 'on SIGTERM/SIGINT, let tasks in flight finish for up to this long (new tasks are refused at once)'
  },
  testStallMs: {
    type: 'integer',
    min: 0,
    default: 0,
    description: 'TEST ONLY fault injection: wait this long before each generation'
  },
  testAdvertiseSlots: {
    type: 'integer',
    min: 0,
    default: 0,
    description: 'TEST ONLY fault injection: advertise this many total and free slots, whatever the runtime has (0 = the truth)'
  },
  rewardAddress: {
    type: 'string',
    default: '0x0000000000000000000000000000000000000000',
    description: 'EVM address credited in settlement',
    validate: (v: string) => (/^0x[0-9a-fA-F]{40}$/.test(v) ? undefined : 'must be 0x followed by 40 hex digits')
  }
} satisfies ConfigSchema

export const supplierHelp = formatHelp(
  'gcn supplier [options]',
  'Run a supplier peer: serves a local GGUF model with node-llama-cpp over /gcn/task/1.0.0 and advertises capacity on gossipsub.',
  supplierSchema
)

export async function runSupplier(argv: string[]): Promise<number> {
  if (argv[0] === 'claim') return runSupplierClaim(argv.slice(1))
  const { values, help } = loadConfig(supplierSchema, { argv })
  if (help) {
    process.stdout.write(supplierHelp)
    return 0
  }
  const { log, identity, node } = await startRoleNode('supplier', values)
  let modelPath = values.model
  if (modelPath === undefined) {
    modelPath = join(values.dataDir, 'gcn-tiny.gguf')
    if (!existsSync(modelPath)) {
      const bar = progressBar('generating tiny test model')
      await writeGguf(modelPath, { preset: 'tiny', seed: 1 }, { onProgress: (d, t) => bar.update(d, t) })
      bar.done()
    }
  }
  // An encrypted model needs its key first: join the network, ask a distributor, decrypt into RAM.
  let decrypted: DecryptedModel | undefined
  let expectedSha256 = values.modelSha256
  const encrypted = await isEncryptedModel(modelPath).catch(err => {
    throw new ConfigError(`cannot read model file ${modelPath}`, { cause: err, hint: 'check --model and its permissions' })
  })
  if (encrypted) {
    const header = await readEncryptedModelHeader(modelPath)
    if (expectedSha256 !== undefined && expectedSha256.toLowerCase() !== header.modelId) {
      throw new ConfigError(`encrypted model ${modelPath} holds model ${header.modelId}, not --model-sha256 ${expectedSha256}`)
    }
    await node.start()
    try {
      const key = await fetchModelKey(node, header.modelId, {
        signal: AbortSignal.timeout(values.modelKeyTimeoutMs),
        ...(values.modelKeyFrom === undefined ? {} : { from: values.modelKeyFrom }),
        logger: log
      })
      const bar = progressBar('decrypting model into memory')
      decrypted = await decryptModelToMemory(modelPath, key, { expectedModelId: header.modelId, onProgress: (d, t) => bar.update(d, t) })
      bar.done()
      key.fill(0)
    } catch (err) {
      // Leave nothing running: the process must exit with the error.
      await node.stop()
      throw err
    }
    modelPath = decrypted.path
    expectedSha256 = header.modelId
  }
  // Drawn during the first load only: a later restart of the runtime must not draw on the terminal.
  const loadBar = progressBar('loading model')
  let loading = true
  const loaded = (): void => {
    loading = false
    loadBar.done()
  }
  const runtime = createModelRuntime(
    {
      modelPath,
      ...(expectedSha256 === undefined ? {} : { expectedSha256 }),
      ...(values.modelName === undefined ? {} : { name: values.modelName }),
      ...(values.contextSize === undefined ? {} : { contextSize: values.contextSize }),
      slots: values.slots,
      maxQueue: values.maxQueue,
      threads: values.threads,
      gpu: values.gpu === 'false' ? false : (values.gpu as 'auto' | 'cuda'),
      gpuProbe: values.gpuProbe !== 'off',
      onLoadProgress: fraction => {
        if (loading) loadBar.update(Math.round(fraction * 1000), 1000)
      }
    },
    { logger: log }
  )
  try {
    await runtime.start()
  } catch (err) {
    loaded()
    // Leave nothing running (the node may be started for an encrypted model): the process must exit with the error.
    decrypted?.close()
    await node.stop()
    throw err
  }
  loaded()
  const outbox = registryOutbox(values.registry, node, log)
  const confirmations =
    outbox === undefined
      ? undefined
      : new ConfirmationReporter(
          { rewardAddress: values.rewardAddress, recordFile: join(values.dataDir, 'completed-tasks.jsonl') },
          { privateKey: identity.privateKey, peerId: node.peerId.toString(), clock: clockFrom(values), outbox, logger: log }
        )
  const metrics = createRoleMetrics(node, log)
  const supplier = new Supplier(
    {
      pricePer1kTokens: BigInt(values.price),
      rewardAddress: values.rewardAddress,
      frameIntervalMs: values.frameIntervalMs,
      testStallBeforeGenerateMs: values.testStallMs,
      testAdvertisedSlots: values.testAdvertiseSlots
    },
    {
      node,
      privateKey: identity.privateKey,
      engine: instrumentSupplierEngine(metrics)(runtime),
      logger: log,
      ...(confirmations === undefined ? {} : { confirmations })
    }
  )
  registerSupplierMetrics(metrics, {
    engine: runtime,
    supplier,
    ...(outbox === undefined ? {} : { outbox }),
    ...(confirmations === undefined ? {} : { confirmations })
  })
  if (decrypted === undefined) await node.start()
  await supplier.start()
  outbox?.start()
  await confirmations?.start()
  const status = await startStatusServer(values.statusHost, values.statusPort, {
    healthy: () => runtime.state === 'started' && node.libp2p.status === 'started',
    status: () => ({
      peerId: node.peerId.toString(),
      model: runtime.info,
      stats: runtime.stats(),
      completedTasks: supplier.completedTasks,
      ...(outbox === undefined ? {} : { registryOutbox: { pending: outbox.pending, ...outbox.stats } }),
      openTaskStreams: supplier.openTaskStreams,
      connections: node.libp2p.getConnections().length
    }),
    metrics: () => metrics.metrics()
  })
  process.stdout.write(
    `gcn supplier ready\npeer id: ${node.peerId.toString()}\nmodel: ${runtime.info.name} ${runtime.info.id}\nstatus: ${status.url}\nlistening:\n${node.multiaddrs.map(a => `  ${a}`).join('\n')}\n`
  )
  return untilSignal(log, async () => {
    await status.close()
    await supplier.stop({ drainMs: values.drainMs })
    await confirmations?.stop()
    await outbox?.stop({ flushMs: 10_000 })
    await runtime.stop()
    decrypted?.close()
    await node.stop()
    metrics.close()
  })
}
