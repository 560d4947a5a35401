/**
 * Helpers of the daily-settlement acceptance tests: an in-process chain (EDR)
 * served over JSON-RPC with the settlement contract deployed, `gcn registry`
 * processes that settle on it, the submitter schedule, and the test's own
 * bookkeeping of what each day should settle to.
 */

import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { join } from 'node:path'
import {
  type BlockClock,
  type BlockConfirmation,
  BlockConfirmationCodec,
  CONFIRMATION_PAYLOAD,
  loadOrCreateIdentity,
  ProofVerdict,
  type Receipt,
  type RegistryClient,
  type SignedEnvelope,
  signEnvelope
} from '@gcn/core'
import {
  accountId,
  evmAddressOf,
  GCN_SETTLEMENT_ABI,
  GCN_TEST_TOKEN_ABI,
  gameKey,
  LEAF_CREDIT,
  LEAF_DEBIT,
  loadOrCreateEvmKey,
  type ServedSettlementChain,
  type ServedSettlementChainInit,
  SettlementTree,
  startServedSettlementChain
} from '@gcn/registry'
import type { Address, Hex } from 'viem'
import { gcn, type Proc, waitFor } from './procs.js'
import {
  type ClockSettings,
  freePort,
  localRegistryArgs,
  makeReceipt,
  type Party,
  RegistryNode,
  type RegistryStatus,
  signBatch
} from './registry.js'

// ---------------------------------------------------------------------------
// The chain

export interface TestChain extends ServedSettlementChain {
  chainId: number
  deposits(gameId: string): Promise<bigint>
  owed(gameId: string): Promise<bigint>
  delinquent(gameId: string): Promise<boolean>
  debited(day: number, gameId: string): Promise<boolean>
  balanceOf(account: Address): Promise<bigint>
  dayRoot(day: number): Promise<Hex>
  /** Every DayPosted event so far, optionally of one day. */
  dayPosted(day?: number): Promise<Array<{ day: number; root: Hex; totalDebit: bigint; submitter: Address; blockNumber: bigint }>>
}

/**
 * The shared development rollup (startServedSettlementChain, on 127.0.0.1 or `host`)
 * with the reads the settlement tests check.
 */
export async function startTestChain(init: ServedSettlementChainInit): Promise<TestChain> {
  const served = await startServedSettlementChain(init)
  const { publicClient } = served.chain
  const { settlement, token } = served
  const read = (functionName: string, args: readonly unknown[]): Promise<unknown> =>
    publicClient.readContract({ address: settlement, abi: GCN_SETTLEMENT_ABI, functionName: functionName as never, args: args as never })
  return {
    ...served,
    chainId: served.chain.chain.id,
    deposits: async gameId => (await read('deposits', [gameKey(gameId)])) as bigint,
    owed: async gameId => (await read('owed', [gameKey(gameId)])) as bigint,
    delinquent: async gameId => (await read('delinquent', [gameKey(gameId)])) as boolean,
    debited: async (day, gameId) => (await read('debited', [BigInt(day), gameKey(gameId)])) as boolean,
    balanceOf: async account =>
      (await publicClient.readContract({
        address: token,
        abi: GCN_TEST_TOKEN_ABI,
        functionName: 'balanceOf',
        args: [account]
      })) as bigint,
    dayRoot: async day => (await read('dayRoot', [BigInt(day)])) as Hex,
    async dayPosted(day) {
      const events = await publicClient.getContractEvents({
        address: settlement,
        abi: GCN_SETTLEMENT_ABI,
        eventName: 'DayPosted',
        fromBlock: 0n,
        ...(day === undefined ? {} : { args: { day: BigInt(day) } })
      })
      return events.map(e => {
        const args = e.args as { day: bigint; root: Hex; totalDebit: bigint; submitter: Address }
        return {
          day: Number(args.day),
          root: args.root,
          totalDebit: args.totalDebit,
          submitter: args.submitter,
          blockNumber: e.blockNumber
        }
      })
    }
  }
}

// ---------------------------------------------------------------------------
// Settling registries

export interface SettlementParams {
  acceptBlocksBehind: number
  graceBlocks: number
  staggerBlocks: number
}

/** One registry's identity, made before anything starts (the contract needs the signers, the peers each other's ids). */
export interface RegistryIdentity {
  index: number
  peerId: string
  dataDir: string
  evmKey: Hex
  signer: Address
}

export async function makeRegistryIdentities(dir: string, count: number): Promise<RegistryIdentity[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const dataDir = join(dir, `registry-${index + 1}`)
      const { peerId } = await loadOrCreateIdentity(join(dataDir, 'peer.key'))
      const evmKey = await loadOrCreateEvmKey(join(dataDir, 'evm.key'))
      return { index, peerId: peerId.toString(), dataDir, evmKey, signer: evmAddressOf(evmKey) }
    })
  )
}

export interface SettlementStatus extends RegistryStatus {
  settlement?: { signer: string; daysCompiled: number; daysPosted: number; debitsApplied: number; alarms: number }
}

export interface SettlementDayJson {
  day: number
  posted: boolean
  postedBy: 'us' | 'another' | null
  alarm: string | null
  signatures: number
  threshold: number
  report: {
    root: Hex
    totalDebit: string
    debits: Array<{ gameId: string; amount: string }>
    credits: Array<{ account: string; amount: string }>
  } | null
}

/** A `gcn registry` process that takes part in settlement. */
export class SettlingRegistry extends RegistryNode {
  constructor(
    readonly identity: RegistryIdentity,
    port: number,
    args: string[]
  ) {
    super(identity.index, identity.peerId, port, identity.dataDir, args)
  }

  get signer(): Address {
    return this.identity.signer
  }

  get up(): boolean {
    return this.proc !== undefined && !this.proc.exited && this.url !== ''
  }

  override async start(): Promise<void> {
    this.url = ''
    await super.start()
    const [, signer] = (await this.proc.waitForLine(/^evm signer: (0x[0-9a-fA-F]{40})$/)) as RegExpMatchArray
    if (signer!.toLowerCase() !== this.signer.toLowerCase())
      throw new Error(`registry ${this.index + 1} signs as ${signer}, expected ${this.signer}`)
  }

  /** SIGKILL, resolved once the process is gone. */
  async kill(): Promise<void> {
    this.url = ''
    this.proc.child.kill('SIGKILL')
    await waitFor(`registry ${this.index + 1} to die`, () => this.proc.exited, 10_000)
  }

  override status(): Promise<SettlementStatus> {
    return this.get<SettlementStatus>('/status')
  }

  /** GET /settlement/day; undefined while the day is not compiled here (HTTP 400). */
  async settlementDay(day: number): Promise<SettlementDayJson | undefined> {
    const res = await fetch(`${this.url}/settlement/day?day=${day}`, { signal: AbortSignal.timeout(10_000) })
    const body = await res.text()
    if (res.status === 400) return undefined
    if (!res.ok) throw new Error(`GET /settlement/day?day=${day}: HTTP ${res.status} ${body}`)
    return JSON.parse(body) as SettlementDayJson
  }
}

export async function startSettlingRegistries(options: {
  identities: RegistryIdentity[]
  bootstrapAddr: string
  distributors: string[]
  clock: ClockSettings
  settlement: SettlementParams
  rpcUrl: string
  settlementAddress: Address
  quorum: number
  logLevel?: string
}): Promise<SettlingRegistry[]> {
  const ports: number[] = []
  for (const _ of options.identities) ports.push(await freePort())
  const nodes = options.identities.map((id, i) => {
    const args = [
      ...localRegistryArgs({
        port: ports[i]!,
        bootstrapAddr: options.bootstrapAddr,
        dataDir: id.dataDir,
        clock: options.clock,
        distributors: options.distributors,
        peers: options.identities.filter(other => other !== id).map(other => other.peerId)
      }),
      '--quorum',
      String(options.quorum),
      '--accept-blocks-behind',
      String(options.settlement.acceptBlocksBehind),
      '--grace-blocks',
      String(options.settlement.graceBlocks),
      '--stagger-blocks',
      String(options.settlement.staggerBlocks),
      '--rpc-url',
      options.rpcUrl,
      '--settlement-address',
      options.settlementAddress,
      '--log-level',
      options.logLevel ?? 'warn'
    ]
    return new SettlingRegistry(id, ports[i]!, args)
  })
  await Promise.all(nodes.map(n => n.start()))
  return nodes
}

/** The settler's submitter schedule of `day`: peer ids ordered by sha256("gcn/submitter/1:<day>:<peer id>"). */
export function submitterSchedule(peerIds: readonly string[], day: number): string[] {
  const key = (id: string): string => createHash('sha256').update(`gcn/submitter/1:${day}:${id}`).digest('hex')
  return [...peerIds].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
}

/** First block at which a day is compiled (and rank 0 posts). */
export function readyBlock(clock: BlockClock, params: SettlementParams, day: number): number {
  return clock.lastBlockOfDay(day) + params.acceptBlocksBehind + params.graceBlocks + 1
}

// ---------------------------------------------------------------------------
// Writing a day's receipts and what they should settle to

/** A supplier the test plays, with the reward address it holds the key of. */
export interface TestSupplier extends Party {
  evmKeyFile: string
  rewardAddress: Address
}

export async function makeSupplier(dir: string): Promise<TestSupplier> {
  const id = await loadOrCreateIdentity(join(dir, 'peer.key'))
  const evmKeyFile = join(dir, 'evm.key')
  const rewardAddress = evmAddressOf(await loadOrCreateEvmKey(evmKeyFile))
  return { privateKey: id.privateKey, peerId: id.peerId.toString(), evmKeyFile, rewardAddress }
}

export async function signRewardConfirmation(
  supplier: TestSupplier,
  blockHeight: number,
  taskIds: Uint8Array<ArrayBuffer>[]
): Promise<SignedEnvelope> {
  const confirmation: BlockConfirmation = {
    supplierPeerId: supplier.peerId,
    blockHeight,
    taskIds,
    timestampMs: Date.now(),
    rewardAddress: supplier.rewardAddress.toLowerCase()
  }
  return signEnvelope(supplier.privateKey, CONFIRMATION_PAYLOAD, BlockConfirmationCodec.encode(confirmation))
}

/** What one receipt is, as far as settlement goes. */
export interface ReceiptPlan {
  gameId: string
  supplier: TestSupplier
  verdict?: ProofVerdict
  /** Whether the supplier confirms it (default true). */
  confirmed?: boolean
}

export interface ExpectedDay {
  day: number
  receipts: Receipt[]
  /** Billable cost per game id. */
  debits: Map<string, bigint>
  /** Billable cost per reward address (lowercase). */
  credits: Map<string, bigint>
  totalDebit: bigint
  /** The root the honest report has (undefined: nothing billable, the day is not posted). */
  root: Hex | undefined
}

/** What the test computed a day must settle to: sums of billable costs and the merkle root over them. */
export function expectDay(day: number, entries: Array<{ receipt: Receipt; plan: ReceiptPlan }>): ExpectedDay {
  const debits = new Map<string, bigint>()
  const credits = new Map<string, bigint>()
  for (const { receipt, plan } of entries) {
    const billable = plan.confirmed !== false && receipt.verdict !== ProofVerdict.FAILED
    if (!billable || receipt.cost === 0n) continue
    debits.set(plan.gameId, (debits.get(plan.gameId) ?? 0n) + receipt.cost)
    const account = plan.supplier.rewardAddress.toLowerCase()
    credits.set(account, (credits.get(account) ?? 0n) + receipt.cost)
  }
  const totalDebit = [...debits.values()].reduce((a, b) => a + b, 0n)
  const leaves = [
    ...[...debits].map(([gameId, amount]) => ({ kind: LEAF_DEBIT, id: gameKey(gameId), amount })),
    ...[...credits].map(([account, amount]) => ({ kind: LEAF_CREDIT, id: accountId(account), amount }))
  ]
  return {
    day,
    receipts: entries.map(e => e.receipt),
    debits,
    credits,
    totalDebit,
    root: leaves.length === 0 ? undefined : SettlementTree.of(leaves).root
  }
}

/** Submits through the failover client until acknowledged (a write is idempotent), or throws at the deadline. */
export async function submitAcked(client: RegistryClient, envelope: SignedEnvelope, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    'a registry write to be acknowledged',
    async () => {
      const ack = await client.submit(envelope)
      return ack.ok
    },
    timeoutMs,
    100
  )
}

/**
 * Writes one batch of receipts for the current block (signed by `distributor`)
 * and each supplier's confirmation of the receipts it confirms, all acknowledged
 * by a quorum; returns what the day they fall in must settle to.
 */
export async function writeReceipts(options: {
  client: RegistryClient
  clock: BlockClock
  distributor: Party
  plans: ReceiptPlan[]
}): Promise<{ blockHeight: number; entries: Array<{ receipt: Receipt; plan: ReceiptPlan }> }> {
  const { client, clock, distributor, plans } = options
  const blockHeight = clock.blockHeight()
  const entries = plans.map(plan => ({
    plan,
    receipt: makeReceipt({
      distributor: distributor.peerId,
      supplier: plan.supplier.peerId,
      blockHeight,
      gameId: plan.gameId,
      verdict: plan.verdict ?? ProofVerdict.UNCHECKED
    })
  }))
  await submitAcked(
    client,
    await signBatch(
      distributor,
      entries.map(e => e.receipt)
    )
  )
  const bySupplier = new Map<TestSupplier, Uint8Array<ArrayBuffer>[]>()
  for (const { plan, receipt } of entries) {
    if (plan.confirmed === false) continue
    const list = bySupplier.get(plan.supplier) ?? []
    list.push(receipt.taskId as Uint8Array<ArrayBuffer>)
    bySupplier.set(plan.supplier, list)
  }
  for (const [supplier, taskIds] of bySupplier) await submitAcked(client, await signRewardConfirmation(supplier, blockHeight, taskIds))
  return { blockHeight, entries }
}

/** Resolves at a block of a day that has just begun (within its first `within` blocks); returns that day. */
export async function freshDay(clock: BlockClock, within = 2, timeoutMs = 30_000): Promise<number> {
  return waitFor(
    'the start of a fresh day',
    () => {
      const h = clock.blockHeight()
      return h % clock.blocksPerDay < within && h >= clock.blocksPerDay ? clock.day(h) : undefined
    },
    timeoutMs,
    20
  )
}

/** Resolves once block `height` has started. */
export async function untilBlock(clock: BlockClock, height: number, slackMs = 10_000): Promise<void> {
  const ms = Math.max(0, clock.blockStartMs(height) - Date.now())
  await waitFor(`block ${height}`, () => clock.blockHeight() >= height, ms + slackMs, 10)
}

/** Runs `gcn supplier claim` for one day; resolves with its exit code and output once it exited. */
export async function runClaim(options: {
  registryUrl: string
  rpcUrl: string
  settlement: Address
  day: number
  evmKeyFile: string
}): Promise<{ code: number | null; stdout: string; stderr: string; proc: Proc }> {
  const proc = gcn([
    'supplier',
    'claim',
    '--registry-url',
    options.registryUrl,
    '--rpc-url',
    options.rpcUrl,
    '--settlement-address',
    options.settlement,
    '--day',
    String(options.day),
    '--evm-key-file',
    options.evmKeyFile
  ])
  // 'close', not 'exit': every line of output has been read by then.
  const closed = once(proc.child, 'close')
  await Promise.race([
    closed,
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error(`gcn supplier claim did not exit in 60 s: ${proc.stderr}`)), 60_000).unref()
    )
  ])
  return { code: proc.child.exitCode, stdout: proc.lines.join('\n'), stderr: proc.stderr, proc }
}

/** A small seeded PRNG (mulberry32): the same decisions on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
