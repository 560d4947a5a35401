import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { setPriority } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import {
  type ConfigSchema,
  createLogger,
  DEVNET_CLOCK,
  formatHelp,
  GcnError,
  LOG_LEVELS,
  type LogLevel,
  loadConfig,
  loadOrCreateIdentity
} from '@gcn/core'
import { evmAddressOf, loadOrCreateEvmKey } from '@gcn/registry'
import { sha256File, writeGguf } from '@gcn/supplier'
import { type DevnetChain, startDevnetChain } from './devnet-chain.js'
import { untilSignal } from './process.js'
import { progressBar } from './progress.js'

/** Devnet registries accept receipts this many blocks (200 ms each) after their block. */
const DEVNET_ACCEPT_BLOCKS_BEHIND = 25

const GCN_BIN = fileURLToPath(new URL('../../bin/gcn.js', import.meta.url))

export const devnetSchema = {
  gatewayPort: { type: 'integer', min: 0, max: 65535, default: 8080, description: 'HTTP gateway port (0 = any free port)' },
  suppliers: { type: 'integer', min: 1, max: 32, default: 2, description: 'supplier processes to start' },
  registries: { type: 'integer', min: 0, max: 16, default: 3, description: 'registry peers to start (0 = no receipts)' },
  apiKey: { type: 'string', description: 'API key of the devnet game (default: a random key, printed on start)' },
  model: { type: 'string', valueName: 'PATH', description: 'GGUF model every supplier serves (default: a generated tiny model)' },
  slots: { type: 'integer', min: 1, max: 64, default: 2, description: 'tasks each supplier generates at once' },
  threads: { type: 'integer', min: 1, max: 256, default: 1, description: 'CPU threads per supplier' },
  gpu: {
    type: 'string',
    choices: ['false', 'auto', 'cuda'],
    default: 'false',
    description: 'GPU backend of the suppliers (node-llama-cpp prebuilt)'
  },
  rolesNice: {
    type: 'integer',
    min: 0,
    max: 19,
    default: 10,
    description:
      'nice value of the bootstrap, registries and distributor: on one machine they would preempt the model threads of the suppliers, which separate machines do not (0 = the same priority)'
  },
  keyRatePerMinute: { type: 'integer', min: 1, default: 600, description: 'requests per minute allowed to the devnet key' },
  keyMaxConcurrent: { type: 'integer', min: 1, default: 16, description: 'requests in flight allowed to the devnet key' },
  dataDir: { type: 'string', valueName: 'DIR', default: join('.gcn', 'devnet'), description: 'keys, models and state of the devnet' },
  logLevel: {
    type: 'string',
    choices: LOG_LEVELS,
    default: 'warn',
    description: 'log level of the started processes (their logs go to stderr)'
  }
} satisfies ConfigSchema

export const devnetHelp = formatHelp(
  'gcn devnet [options]',
  'Start a whole local network on 127.0.0.1, each role in its own process: a bootstrap node,\nsuppliers serving a generated model, a distributor with the OpenAI-compatible gateway and\nregistry peers keeping the receipts (200 ms blocks, 50-block days).\nSIGINT/SIGTERM stop every process it started.',
  devnetSchema
)

interface Child {
  name: string
  proc: ChildProcess
  lines: string[]
}

export async function runDevnet(argv: string[]): Promise<number> {
  const { values, help } = loadConfig(devnetSchema, { argv })
  if (help) {
    process.stdout.write(devnetHelp)
    return 0
  }
  const log = createLogger({ component: 'gcn:devnet', level: values.logLevel as LogLevel, format: 'pretty' })
  const dataDir = resolve(values.dataDir)
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const apiKey = values.apiKey ?? `gcn-dev-${randomBytes(12).toString('hex')}`

  let modelPath = values.model === undefined ? undefined : resolve(values.model)
  if (modelPath === undefined) {
    modelPath = join(dataDir, 'models', 'gcn-tiny-s1.gguf')
    if (!existsSync(modelPath)) {
      const bar = progressBar('generating tiny test model')
      await writeGguf(modelPath, { preset: 'tiny', seed: 1 }, { onProgress: (d, t) => bar.update(d, t) })
      bar.done()
    }
  }
  const bar = progressBar('hashing model')
  const modelSha256 = await sha256File(modelPath, { onProgress: (d, t) => bar.update(d, t) })
  bar.done()

  const children: Child[] = []
  let stopping = false
  let chain: DevnetChain | undefined
  const stopAll = async (): Promise<void> => {
    stopping = true
    await Promise.all(
      children.map(
        c =>
          new Promise<void>(done => {
            if (c.proc.exitCode !== null || c.proc.signalCode !== null) return done()
            const timer = setTimeout(() => c.proc.kill('SIGKILL'), 10_000)
            c.proc.once('exit', () => {
              clearTimeout(timer)
              done()
            })
            c.proc.kill('SIGTERM')
          })
      )
    )
    await chain?.close()
  }
  let failed: ((err: Error) => void) | undefined
  const failure = new Promise<never>((_, reject) => {
    failed = reject
  })
  failure.catch(() => undefined)

  const start = (name: string, args: string[]): Child => {
    const proc = spawn(process.execPath, [GCN_BIN, ...args, '--log-level', values.logLevel, '--log-format', 'pretty'], {
      stdio: ['ignore', 'pipe', 'pipe']
    })
    const child: Child = { name, proc, lines: [] }
    // Measured on a 2-core VM: two processes waking every 3 ms for 0.4 ms slowed an in-process
    // decode by 28% at the same priority and not at all at nice 19. Threads the child starts later inherit it.
    if (!name.startsWith('supplier') && values.rolesNice > 0 && proc.pid !== undefined) {
      try {
        setPriority(proc.pid, values.rolesNice)
      } catch (err) {
        log.warn('could not lower the priority of a devnet process', { name, err })
      }
    }
    createInterface({ input: proc.stdout! }).on('line', line => child.lines.push(line))
    createInterface({ input: proc.stderr! }).on('line', line => process.stderr.write(`[${name}] ${line}\n`))
    proc.once('exit', (code, signal) => {
      if (!stopping) {
        log.error('process exited unexpectedly', { name, code, signal })
        failed?.(new GcnError(`${name} exited (${code ?? signal}) while the devnet was running`))
      }
    })
    children.push(child)
    return child
  }
  const waitForLine = async (child: Child, pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      for (const line of child.lines) {
        const m = line.match(pattern)
        if (m !== null) return m
      }
      if (Date.now() > deadline) throw new GcnError(`${child.name} did not become ready within ${timeoutMs} ms`)
      await Promise.race([new Promise(r => setTimeout(r, 50)), failure])
    }
  }

  // The devnet keeps its genesis across restarts so block heights (and the ledgers) stay valid.
  const genesisFile = join(dataDir, 'genesis.json')
  const genesisMs: number = existsSync(genesisFile)
    ? (JSON.parse(readFileSync(genesisFile, 'utf8')) as { genesisMs: number }).genesisMs
    : Date.now()
  if (!existsSync(genesisFile)) writeFileSync(genesisFile, JSON.stringify({ genesisMs }))
  const clock = [
    '--genesis-ms',
    String(genesisMs),
    '--block-ms',
    String(DEVNET_CLOCK.blockMs),
    '--blocks-per-day',
    String(DEVNET_CLOCK.blocksPerDay)
  ]
  // Identities first: registries must know the distributor and each other before anyone starts.
  const keyFile = (name: string): string => join(dataDir, name, 'peer.key')
  const distributorId = (await loadOrCreateIdentity(keyFile('distributor'))).peerId.toString()
  const registryIds = await Promise.all(
    Array.from({ length: values.registries }, async (_, i) => (await loadOrCreateIdentity(keyFile(`registry-${i + 1}`))).peerId.toString())
  )
  const evmAddress = async (name: string): Promise<`0x${string}`> => evmAddressOf(await loadOrCreateEvmKey(join(dataDir, name, 'evm.key')))
  const registrySigners = await Promise.all(registryIds.map((_, i) => evmAddress(`registry-${i + 1}`)))
  const supplierAccounts = await Promise.all(Array.from({ length: values.suppliers }, (_, i) => evmAddress(`supplier-${i + 1}`)))
  // The rollup: an embedded chain with the settlement contract; the devnet game deposits 1,000 tokens (micro-units).
  if (values.registries > 0) {
    const bar = progressBar('starting the embedded chain')
    chain = await startDevnetChain({
      signers: registrySigners,
      threshold: Math.min(2, registrySigners.length),
      fund: [...registrySigners, ...supplierAccounts],
      games: [{ gameId: 'devnet', deposit: 1_000_000_000n }]
    })
    bar.done()
  }
  const settlementArgs = chain === undefined ? [] : ['--rpc-url', chain.rpcUrl, '--settlement-address', chain.settlement]

  try {
    const local = ['--profile', 'local', '--listen', '/ip4/127.0.0.1/tcp/0']
    const boot = start('bootstrap', ['bootstrap', ...local, '--key-file', join(dataDir, 'bootstrap', 'peer.key')])
    const bootAddr = (await waitForLine(boot, /^\s+(\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)$/))[1]!
    const registries = registryIds.map((id, i) =>
      start(`registry-${i + 1}`, [
        'registry',
        ...local,
        ...clock,
        '--bootstrap',
        bootAddr,
        '--data-dir',
        join(dataDir, `registry-${i + 1}`),
        '--http-port',
        '0',
        '--distributor',
        distributorId,
        ...settlementArgs,
        // Devnet days are 10 s: accept receipts 5 s late, then settle.
        '--accept-blocks-behind',
        String(DEVNET_ACCEPT_BLOCKS_BEHIND),
        '--stagger-blocks',
        '10',
        ...registryIds.filter(other => other !== id).flatMap(other => ['--peer', `/p2p/${other}`])
      ])
    )
    const registryAddrs = await Promise.all(registries.map(r => waitForLine(r, /^\s+(\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)$/)))
    const registryUrls = await Promise.all(registries.map(r => waitForLine(r, /^http: (\S+)$/)))
    const reportTo = registryAddrs.flatMap(m => ['--registry', m[1]!])
    const distributor = start('distributor', [
      'distributor',
      ...local,
      ...clock,
      ...reportTo,
      '--bootstrap',
      bootAddr,
      '--data-dir',
      join(dataDir, 'distributor'),
      '--gateway-port',
      String(values.gatewayPort),
      ...settlementArgs,
      '--standing-refresh-ms',
      '1000',
      '--api-key',
      `devnet:${apiKey}`,
      '--key-rate-per-minute',
      String(values.keyRatePerMinute),
      '--key-max-concurrent',
      String(values.keyMaxConcurrent),
      // The distributor holds its own copy of the model to re-score sampled outputs.
      '--reference-model',
      modelPath!
    ])
    const suppliers = Array.from({ length: values.suppliers }, (_, i) =>
      start(`supplier-${i + 1}`, [
        'supplier',
        ...local,
        ...clock,
        ...reportTo,
        '--bootstrap',
        bootAddr,
        '--data-dir',
        join(dataDir, `supplier-${i + 1}`),
        '--model',
        modelPath!,
        '--model-sha256',
        modelSha256,
        '--slots',
        String(values.slots),
        '--threads',
        String(values.threads),
        '--gpu',
        values.gpu,
        '--reward-address',
        supplierAccounts[i]!
      ])
    )
    const gateway = (await waitForLine(distributor, /^gateway: (\S+)$/))[1]!
    await Promise.all(suppliers.map(s => waitForLine(s, /^gcn supplier ready$/)))
    // Ready when the gateway lists the model with every supplier behind it.
    const deadline = Date.now() + 60_000
    for (;;) {
      const models = await fetch(`${gateway}/models`, { headers: { authorization: `Bearer ${apiKey}` } })
        .then(r => r.json() as Promise<{ data?: Array<{ id: string; gcn?: { suppliers?: number } }> }>)
        .catch(() => ({ data: [] }))
      const model = models.data?.[0]
      if (model !== undefined && (model.gcn?.suppliers ?? 0) >= values.suppliers) {
        process.stdout.write(
          [
            'gcn devnet ready',
            `gateway: ${gateway}`,
            `api key: ${apiKey}`,
            `model: ${model.id} (sha256 ${modelSha256})`,
            `suppliers: ${values.suppliers}`,
            ...registryUrls.map((m, i) => `registry ${i + 1}: ${m[1]}`),
            ...(chain === undefined ? [] : [`chain: ${chain.rpcUrl}`, `settlement: ${chain.settlement}`, `token: ${chain.token}`]),
            '',
            'try:',
            `  curl -s ${gateway}/chat/completions -H 'Authorization: Bearer ${apiKey}' -H 'Content-Type: application/json' \\`,
            `    -d '{"model":"${model.id}","messages":[{"role":"user","content":"Hello, innkeeper!"}],"max_tokens":32}'`,
            ...(registryUrls.length > 0 ? [`  node packages/cli/bin/gcn.js registry query totals --url ${registryUrls[0]![1]}`] : []),
            ...(chain === undefined
              ? []
              : [
                  `  # after a day settles (days are 50 blocks = 10 s; settlement follows ~${Math.ceil(((DEVNET_ACCEPT_BLOCKS_BEHIND + 5) * DEVNET_CLOCK.blockMs) / 1000)} s later):`,
                  `  curl -s '${registryUrls[0]![1]}/settlement/day?day=0'`,
                  `  node packages/cli/bin/gcn.js supplier claim --data-dir ${join(dataDir, 'supplier-1')} --registry-url ${registryUrls[0]![1]} --rpc-url ${chain.rpcUrl} --settlement-address ${chain.settlement} --day 0`
                ]),
            ''
          ].join('\n')
        )
        break
      }
      if (Date.now() > deadline) throw new GcnError('suppliers did not appear at the gateway within 60 s')
      await Promise.race([new Promise(r => setTimeout(r, 200)), failure])
    }
    return await Promise.race([untilSignal(log, stopAll), failure])
  } catch (err) {
    await stopAll()
    throw err
  }
}
