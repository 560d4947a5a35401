import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gcn, type Proc, waitFor } from './procs.js'

/** A model file and its sha256, as `gcn model make` wrote it. */
export interface TestModel {
  path: string
  sha256: string
}

/** Writes the deterministic tiny test model to `path` (once per test file is enough). */
export async function makeTestModel(path: string): Promise<TestModel> {
  const proc = gcn(['model', 'make', '--out', path, '--preset', 'tiny', '--seed', '1'])
  const [, sha256] = (await proc.waitForLine(/^sha256: ([0-9a-f]{64})$/, 60_000)) as RegExpMatchArray
  await waitFor('gcn model make to exit', () => proc.exited, 30_000)
  if (proc.child.exitCode !== 0) throw new Error(`gcn model make failed (${proc.child.exitCode}): ${proc.stderr}`)
  return { path, sha256: sha256! }
}

/** Environment of one process; a function gets the supplier's index. */
type RoleEnv = NodeJS.ProcessEnv | ((index: number) => NodeJS.ProcessEnv)

export interface NetworkOptions {
  /** Suppliers started with the network (more can be added with `addSupplier`). */
  suppliers: number
  /** Extra flags for every supplier, or per supplier index. */
  supplierArgs?: string[] | ((index: number) => string[])
  /** Extra flags for the distributor. */
  distributorArgs?: string[]
  /** Extra environment per role (e.g. GCN_TEST_WIRE_CAPTURE). */
  env?: { bootstrap?: NodeJS.ProcessEnv; distributor?: NodeJS.ProcessEnv; supplier?: RoleEnv }
  /** Plain API keys; the first is `apiKey`. Default: one random key. */
  apiKeys?: string[]
  /** Model served by every supplier; default: a tiny model generated into `dir`. */
  model?: TestModel
  /** Parent directory for data dirs; default a fresh temp dir, removed by `stop()`. */
  dir?: string
  /** Log level of every process (stderr is kept in `Proc.stderr`). */
  logLevel?: string
  /** How long to wait for the gateway to list the model with every supplier. */
  readyTimeoutMs?: number
}

export interface SupplierStatus {
  peerId: string
  model: { id: string; name: string; contextSize: number }
  stats: {
    totalSlots: number
    freeSlots: number
    queueDepth: number
    active: number
    tokensPerSecond: number
    ttftMs: number
    completed: number
  }
  completedTasks: number
  connections?: number
}

export interface SupplierHandle {
  index: number
  proc: Proc
  peerId: string
  statusUrl: string
  dataDir: string
  /** GET /status of this supplier. */
  status(): Promise<SupplierStatus>
}

export interface Network {
  dir: string
  gatewayUrl: string
  apiKey: string
  apiKeys: string[]
  modelName: string
  modelSha256: string
  modelPath: string
  bootstrap: { proc: Proc; peerId: string; addr: string }
  distributor: { proc: Proc; peerId: string }
  suppliers: SupplierHandle[]
  /** Starts one more supplier (same model, same bootstrap); resolves once it printed its status URL. */
  addSupplier(options?: { args?: string[]; env?: NodeJS.ProcessEnv }): Promise<SupplierHandle>
  /** Resolves with the model entry once GET /v1/models lists it with at least `n` suppliers. */
  waitForSuppliers(n: number, timeoutMs?: number): Promise<ModelEntry>
  /** Stops every process (SIGTERM, SIGKILL after 10 s) and removes the temp dir it created. */
  stop(): Promise<void>
}

export interface ModelEntry {
  id: string
  object: string
  gcn?: { sha256?: string; suppliers?: number; context_size?: number }
}

const LOCAL = ['--profile', 'local', '--listen', '/ip4/127.0.0.1/tcp/0']

function describeProc(name: string, proc: Proc): string {
  return `${name} stdout:\n${proc.lines.join('\n')}\n${name} stderr:\n${proc.stderr}`
}

/** GET /v1/models with a key; the parsed list, or undefined when the gateway does not answer yet. */
export async function listModels(gatewayUrl: string, apiKey: string): Promise<ModelEntry[] | undefined> {
  const res = await fetch(`${gatewayUrl}/models`, { headers: { authorization: `Bearer ${apiKey}` } })
  if (!res.ok) return undefined
  const body = (await res.json()) as { data?: ModelEntry[] }
  return body.data
}

/**
 * Starts a bootstrap, `suppliers` suppliers and a distributor as separate
 * `gcn` processes on 127.0.0.1 (`--profile local`) and waits until the
 * gateway lists the model with every supplier behind it.
 */
export async function startNetwork(options: NetworkOptions): Promise<Network> {
  const ownDir = options.dir === undefined
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'gcn-net-'))
  mkdirSync(dir, { recursive: true })
  const logLevel = options.logLevel ?? 'warn'
  const apiKeys = options.apiKeys ?? [`gcn-test-${Math.random().toString(16).slice(2)}`]
  const procs: Proc[] = []
  const spawn = (args: string[], env: NodeJS.ProcessEnv | undefined): Proc => {
    const proc = gcn([...args, '--log-level', logLevel], env)
    procs.push(proc)
    return proc
  }

  const stop = async (): Promise<void> => {
    // Suppliers and distributor first, then the bootstrap, so nothing logs a lost bootstrap.
    await Promise.all(procs.slice(1).map(p => p.stop('SIGTERM')))
    await procs[0]?.stop('SIGTERM')
    if (ownDir) rmSync(dir, { recursive: true, force: true })
  }

  try {
    const model = options.model ?? (await makeTestModel(join(dir, 'model.gguf')))

    const bootProc = spawn(['bootstrap', ...LOCAL, '--key-file', join(dir, 'bootstrap', 'peer.key')], options.env?.bootstrap)
    const [, bootPeerId] = (await bootProc.waitForLine(/^peer id: (\S+)/)) as RegExpMatchArray
    const [, bootAddr] = (await bootProc.waitForLine(/^\s+(\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)$/)) as RegExpMatchArray

    const suppliers: SupplierHandle[] = []
    const startSupplier = async (extraArgs: string[], env: NodeJS.ProcessEnv | undefined): Promise<SupplierHandle> => {
      const index = suppliers.length
      const dataDir = join(dir, `supplier-${index + 1}`)
      const proc = spawn(
        [
          'supplier',
          ...LOCAL,
          '--bootstrap',
          bootAddr!,
          '--data-dir',
          dataDir,
          '--model',
          model.path,
          '--model-sha256',
          model.sha256,
          '--slots',
          '2',
          '--threads',
          '1',
          ...extraArgs
        ],
        env
      )
      const handle: SupplierHandle = {
        index,
        proc,
        peerId: '',
        statusUrl: '',
        dataDir,
        async status() {
          const res = await fetch(`${handle.statusUrl}/status`)
          if (!res.ok) throw new Error(`GET ${handle.statusUrl}/status: HTTP ${res.status}`)
          return (await res.json()) as SupplierStatus
        }
      }
      suppliers.push(handle)
      try {
        await proc.waitForLine(/^gcn supplier ready$/, 60_000)
        handle.peerId = (await proc.waitForLine(/^peer id: (\S+)/))[1]!
        handle.statusUrl = (await proc.waitForLine(/^status: (http:\/\/\S+)$/))[1]!
      } catch (err) {
        throw new Error(`supplier ${index + 1} did not start\n${describeProc('supplier', proc)}`, { cause: err })
      }
      return handle
    }
    const supplierArgs = (i: number): string[] =>
      typeof options.supplierArgs === 'function' ? options.supplierArgs(i) : (options.supplierArgs ?? [])
    const supplierEnv = (i: number): NodeJS.ProcessEnv | undefined => {
      const env = options.env?.supplier
      return typeof env === 'function' ? env(i) : env
    }

    const distProc = spawn(
      [
        'distributor',
        ...LOCAL,
        '--bootstrap',
        bootAddr!,
        '--data-dir',
        join(dir, 'distributor'),
        '--gateway-port',
        '0',
        ...apiKeys.flatMap((key, i) => ['--api-key', `game-${i + 1}:${key}`]),
        ...(options.distributorArgs ?? [])
      ],
      options.env?.distributor
    )
    // startSupplier registers the handle before its first await, so indexes (and data dirs) follow i.
    await Promise.all(Array.from({ length: options.suppliers }, (_, i) => startSupplier(supplierArgs(i), supplierEnv(i))))
    let distPeerId: string
    let gatewayUrl: string
    try {
      distPeerId = (await distProc.waitForLine(/^peer id: (\S+)/))[1]!
      gatewayUrl = (await distProc.waitForLine(/^gateway: (http:\/\/\S+)$/))[1]!
    } catch (err) {
      throw new Error(`distributor did not start\n${describeProc('distributor', distProc)}`, { cause: err })
    }
    const apiKey = apiKeys[0]!

    const waitForSuppliers = async (n: number, timeoutMs = options.readyTimeoutMs ?? 30_000): Promise<ModelEntry> =>
      waitFor(
        `the gateway to list the model with ${n} supplier(s)`,
        async () => {
          const model = (await listModels(gatewayUrl, apiKey))?.[0]
          return model !== undefined && (model.gcn?.suppliers ?? 0) >= n ? model : undefined
        },
        timeoutMs,
        100
      )

    const entry = await waitForSuppliers(options.suppliers)
    return {
      dir,
      gatewayUrl,
      apiKey,
      apiKeys,
      modelName: entry.id,
      modelSha256: model.sha256,
      modelPath: model.path,
      bootstrap: { proc: bootProc, peerId: bootPeerId!, addr: bootAddr! },
      distributor: { proc: distProc, peerId: distPeerId },
      suppliers,
      addSupplier: (o = {}) => startSupplier(o.args ?? [], o.env),
      waitForSuppliers,
      stop
    }
  } catch (err) {
    await stop()
    throw err
  }
}
