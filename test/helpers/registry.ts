import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { join } from 'node:path'
import {
  type BlockConfirmation,
  BlockConfirmationCodec,
  CONFIRMATION_PAYLOAD,
  loadOrCreateIdentity,
  ProofVerdict,
  RECEIPTS_PAYLOAD,
  type Receipt,
  ReceiptBatchCodec,
  receiptCost,
  type SignedEnvelope,
  signEnvelope
} from '@gcn/core'
import type { PrivateKey } from '@libp2p/interface'
import { gcn, type Proc, waitFor } from './procs.js'

// ---------------------------------------------------------------------------
// Processes

/** The block clock every process of one test network shares. */
export interface ClockSettings {
  genesisMs: number
  blockMs: number
  blocksPerDay: number
}

export function clockArgs(clock: ClockSettings): string[] {
  return ['--genesis-ms', String(clock.genesisMs), '--block-ms', String(clock.blockMs), '--blocks-per-day', String(clock.blocksPerDay)]
}

/** A TCP port that was free a moment ago (so a restarted process can listen on the same address). */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as { port: number }
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

export async function startBootstrap(keyFile: string): Promise<{ proc: Proc; peerId: string; addr: string }> {
  const proc = gcn(['bootstrap', '--profile', 'local', '--listen', '/ip4/127.0.0.1/tcp/0', '--key-file', keyFile, '--log-level', 'warn'])
  const [, peerId] = (await proc.waitForLine(/^peer id: (\S+)/)) as RegExpMatchArray
  const [, addr] = (await proc.waitForLine(/^\s+(\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)$/)) as RegExpMatchArray
  return { proc, peerId: peerId!, addr: addr! }
}

export interface RegistryStatus {
  currentBlock: number
  latestBlock: number | null
  counts: { envelopes: number; receipts: number; confirmations: number }
  peerId: string
  quorum: number
  peers: Array<{ peerId: string; connected: boolean }>
  stats: {
    writes: number
    duplicates: number
    rejected: Record<string, number>
    quorumFailures: number
    replicatedIn: number
    syncedIn: number
    syncRounds: number
  }
}

export interface Totals {
  receipts: number
  promptTokens: number
  completionTokens: number
  cost: string
  billableReceipts: number
  billableCost: string
  unconfirmedReceipts: number
  failedReceipts: number
  conflicts: number
}

export interface BlockSummaryJson {
  blockHeight: number
  count: number
  root: string
}

export interface ReceiptJson {
  taskId: string
  gameId: string
  supplier: string
  blockHeight: number
  cost: string
  status: string
  verdict: string
}

export type MismatchJson =
  | { kind: 'unconfirmed' | 'unreceipted'; taskId: string; supplier: string; blockHeight: number }
  | { kind: 'supplier-mismatch'; taskId: string; supplier: string; confirmedBy: string; blockHeight: number }
  | { kind: 'conflict'; taskId: string; blockHeight: number }

/** One `gcn registry` process; `start()` (re)starts it with exactly the same arguments. */
export class RegistryNode {
  proc!: Proc
  url = ''
  starts = 0

  constructor(
    readonly index: number,
    readonly peerId: string,
    readonly port: number,
    readonly dataDir: string,
    readonly args: string[]
  ) {}

  /** The multiaddr a client dials (fixed port, so it stays valid across restarts). */
  get addr(): string {
    return `/ip4/127.0.0.1/tcp/${this.port}/p2p/${this.peerId}`
  }

  get pid(): number {
    return this.proc.child.pid!
  }

  async start(): Promise<void> {
    this.proc = gcn(this.args)
    this.starts++
    try {
      await this.proc.waitForLine(/^gcn registry ready$/, 60_000)
      const [, id] = (await this.proc.waitForLine(/^peer id: (\S+)$/)) as RegExpMatchArray
      if (id !== this.peerId) throw new Error(`registry ${this.index + 1} came up as ${id}, expected ${this.peerId}`)
      this.url = (await this.proc.waitForLine(/^http: (http:\/\/\S+)$/))[1]!
      await this.proc.waitForLine(new RegExp(`^\\s+/ip4/127\\.0\\.0\\.1/tcp/${this.port}/p2p/`))
    } catch (err) {
      throw new Error(`registry ${this.index + 1} did not start\nstdout:\n${this.proc.lines.join('\n')}\nstderr:\n${this.proc.stderr}`, {
        cause: err
      })
    }
  }

  async get<T>(path: string): Promise<T> {
    const res = await fetch(`${this.url}${path}`, { signal: AbortSignal.timeout(10_000) })
    const body = await res.text()
    if (!res.ok) throw new Error(`GET ${this.url}${path}: HTTP ${res.status} ${body}`)
    return JSON.parse(body) as T
  }

  status(): Promise<RegistryStatus> {
    return this.get<RegistryStatus>('/status')
  }

  totals(query = ''): Promise<Totals> {
    return this.get<Totals>(`/totals${query === '' ? '' : `?${query}`}`)
  }

  async blocks(from: number, to: number): Promise<BlockSummaryJson[]> {
    return (await this.get<{ blocks: BlockSummaryJson[] }>(`/blocks?from=${from}&to=${to}`)).blocks
  }

  async mismatches(query: string): Promise<MismatchJson[]> {
    return (await this.get<{ mismatches: MismatchJson[] }>(`/mismatches?${query}`)).mismatches
  }

  /** Every receipt in [from, to], paged. */
  async receipts(from: number, to: number, extra = ''): Promise<ReceiptJson[]> {
    const out: ReceiptJson[] = []
    for (let offset = 0; ; offset += 10_000) {
      const page = (await this.get<{ receipts: ReceiptJson[] }>(`/receipts?from=${from}&to=${to}&limit=10000&offset=${offset}${extra}`))
        .receipts
      out.push(...page)
      if (page.length < 10_000) return out
    }
  }
}

export interface RegistryClusterOptions {
  count: number
  dir: string
  bootstrapAddr: string
  distributors: string[]
  clock: ClockSettings
  quorum?: number
  acceptBlocksBehind?: number
  logLevel?: string
}

/** `gcn registry` arguments on 127.0.0.1 (local profile, fixed port, HTTP on any port) knowing its distributors and peers. */
export function localRegistryArgs(init: {
  port: number
  bootstrapAddr: string
  dataDir: string
  clock: ClockSettings
  distributors: readonly string[]
  /** Peer ids of the other registries. */
  peers: readonly string[]
}): string[] {
  return [
    'registry',
    '--profile',
    'local',
    '--listen',
    `/ip4/127.0.0.1/tcp/${init.port}`,
    '--bootstrap',
    init.bootstrapAddr,
    '--data-dir',
    init.dataDir,
    '--http-port',
    '0',
    ...clockArgs(init.clock),
    ...init.distributors.flatMap(d => ['--distributor', d]),
    ...init.peers.flatMap(other => ['--peer', `/p2p/${other}`])
  ]
}

/**
 * Creates every registry identity first (so each knows the others' peer ids,
 * as `gcn devnet` does), then starts `count` registry processes, each on a
 * fixed port so that a restart with the same arguments is reachable at the
 * same address.
 */
export async function startRegistries(options: RegistryClusterOptions): Promise<RegistryNode[]> {
  const ids = await Promise.all(
    Array.from({ length: options.count }, async (_, i) =>
      (await loadOrCreateIdentity(join(options.dir, `registry-${i + 1}`, 'peer.key'))).peerId.toString()
    )
  )
  const ports: number[] = []
  for (let i = 0; i < options.count; i++) ports.push(await freePort())
  const nodes = ids.map((id, i) => {
    const dataDir = join(options.dir, `registry-${i + 1}`)
    const args = [
      ...localRegistryArgs({
        port: ports[i]!,
        bootstrapAddr: options.bootstrapAddr,
        dataDir,
        clock: options.clock,
        distributors: options.distributors,
        peers: ids.filter(other => other !== id)
      }),
      ...(options.quorum === undefined ? [] : ['--quorum', String(options.quorum)]),
      ...(options.acceptBlocksBehind === undefined ? [] : ['--accept-blocks-behind', String(options.acceptBlocksBehind)]),
      '--log-level',
      options.logLevel ?? 'warn'
    ]
    return new RegistryNode(i, id, ports[i]!, dataDir, args)
  })
  await Promise.all(nodes.map(n => n.start()))
  return nodes
}

/**
 * Resolves once every registry reports the same per-block summaries (count
 * and root) over [from, to]; returns them.
 */
export async function waitForIdenticalBlocks(
  registries: readonly RegistryNode[],
  from: number,
  to: number,
  timeoutMs = 30_000
): Promise<BlockSummaryJson[]> {
  let last: string[] = []
  try {
    return await waitFor(
      `identical block summaries on ${registries.length} registries over blocks ${from}..${to}`,
      async () => {
        const all = await Promise.all(registries.map(r => r.blocks(from, to)))
        last = all.map(b => `${b.length} blocks, ${b.reduce((n, x) => n + x.count, 0)} rows`)
        const first = JSON.stringify(all[0])
        return all.every(b => JSON.stringify(b) === first) ? all[0]! : undefined
      },
      timeoutMs,
      250
    )
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${last.join(' | ')}`, { cause: err })
  }
}

// ---------------------------------------------------------------------------
// Synthetic receipts and confirmations

export interface Party {
  privateKey: PrivateKey
  peerId: string
}

export async function makeParty(keyFile: string): Promise<Party> {
  const id = await loadOrCreateIdentity(keyFile)
  return { privateKey: id.privateKey, peerId: id.peerId.toString() }
}

export const MODEL_ID = 'ab'.repeat(32)

export function bytes(n: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(randomBytes(n))
}

export function hexOf(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
}

export interface ReceiptSpec {
  distributor: string
  supplier: string
  blockHeight: number
  gameId?: string
  taskId?: Uint8Array<ArrayBuffer>
  promptTokens?: number
  completionTokens?: number
  pricePer1kTokens?: bigint
  verdict?: ProofVerdict
}

/** A receipt with a correct cost (tokens × price per 1k, rounded up). */
export function makeReceipt(spec: ReceiptSpec): Receipt {
  const promptTokens = spec.promptTokens ?? 1 + Math.floor(Math.random() * 500)
  const completionTokens = spec.completionTokens ?? 1 + Math.floor(Math.random() * 200)
  const pricePer1kTokens = spec.pricePer1kTokens ?? 1500n
  return {
    taskId: spec.taskId ?? bytes(16),
    gameId: spec.gameId ?? 'game-a',
    supplierPeerId: spec.supplier,
    distributorPeerId: spec.distributor,
    modelId: MODEL_ID,
    promptTokens,
    completionTokens,
    pricePer1kTokens,
    cost: receiptCost(promptTokens, completionTokens, pricePer1kTokens),
    blockHeight: spec.blockHeight,
    promptHash: bytes(32),
    outputHash: bytes(32),
    verdict: spec.verdict ?? ProofVerdict.UNCHECKED,
    timestampMs: Date.now()
  }
}

/** Encodes and signs a batch; `distributorPeerId` defaults to the signer's. */
export async function signBatch(
  signer: Party,
  receipts: Receipt[],
  options: { distributorPeerId?: string; blockHeight?: number; timestampMs?: number } = {}
): Promise<SignedEnvelope> {
  const payload = ReceiptBatchCodec.encode({
    distributorPeerId: options.distributorPeerId ?? signer.peerId,
    blockHeight: options.blockHeight ?? receipts[0]!.blockHeight,
    receipts,
    timestampMs: options.timestampMs ?? Date.now()
  })
  return signEnvelope(signer.privateKey, RECEIPTS_PAYLOAD, payload)
}

export async function signConfirmation(
  signer: Party,
  blockHeight: number,
  taskIds: Uint8Array<ArrayBuffer>[],
  options: { supplierPeerId?: string } = {}
): Promise<SignedEnvelope> {
  const confirmation: BlockConfirmation = {
    supplierPeerId: options.supplierPeerId ?? signer.peerId,
    blockHeight,
    taskIds,
    timestampMs: Date.now(),
    rewardAddress: `0x${'5a'.repeat(20)}`
  }
  return signEnvelope(signer.privateKey, CONFIRMATION_PAYLOAD, BlockConfirmationCodec.encode(confirmation))
}
