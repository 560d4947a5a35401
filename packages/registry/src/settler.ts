import { createHash } from 'node:crypto'
import {
  type BlockClock,
  checkRegistryGossipSender,
  type DayReportSignature,
  DayReportSignatureCodec,
  type GcnNode,
  gossipValidator,
  type Logger,
  plainBytes,
  REGISTRY_REPORTS_TOPIC
} from '@gcn/core'
import type { PeerId } from '@libp2p/interface'
import { type Address, bytesToHex, type Hex, hexToBytes, recoverAddress } from 'viem'
import { ChainError, revertName, type SettlementChain } from './chain.js'
import { GCN_SETTLEMENT_ABI } from './contracts.js'
import { InvalidQueryError } from './errors.js'
import { intParam } from './http.js'
import type { Ledger } from './ledger.js'
import { compileDay, type DayReport, reportDigest } from './settlement.js'

const ZERO_ROOT = `0x${'00'.repeat(32)}`

export interface SettlerInit {
  /** Blocks after the last block a day's receipts are accepted for, before compiling (confirmations in flight). */
  graceBlocks?: number
  /** Blocks each submitter rank waits after the one before it. */
  staggerBlocks?: number
  /** Days before the current one looked at after a start. */
  lookbackDays?: number
}

export const SETTLER_DEFAULTS = Object.freeze({ graceBlocks: 5, staggerBlocks: 10, lookbackDays: 3 })

export interface SettlerComponents {
  node: GcnNode
  ledger: Ledger
  clock: BlockClock
  chain: SettlementChain
  logger: Logger
  /** Blocks after a day's end that receipts for it are still accepted (the registry's acceptBlocksBehind). */
  acceptBlocksBehind: number
  /** Every registry peer of the set, this one included: the submitter schedule is a permutation of them. */
  registryPeers: PeerId[]
  /**
   * When this peer last finished an anti-entropy round (ms). A day is compiled only after a round that
   * finished once the day was closed and after this process started, so a peer that was down while
   * receipts arrived settles from the same ledger as the others. Absent: no wait (a single registry).
   */
  lastSyncCompletedAt?: () => number
  /** Starts an anti-entropy round now (with lastSyncCompletedAt). */
  syncNow?: () => void
}

export interface DayState {
  day: number
  /** Nothing (more) to do for this day here. */
  done: boolean
  /** Times this day was recompiled because the chain held another root. */
  recompiles: number
  report?: DayReport
  /** Signatures over our report, by signer address (ours included). */
  signatures: Map<string, Hex>
  posted: boolean
  /** Our rank in the day's submitter schedule (0 submits first). */
  rank: number
  postedBy?: 'us' | 'another'
  alarm?: string
}

export interface SettlerStats {
  daysCompiled: number
  daysPosted: number
  debitsApplied: number
  alarms: number
}

function hex(bytes: Uint8Array): Hex {
  return bytesToHex(bytes)
}

function uint256Bytes(value: bigint): Uint8Array<ArrayBuffer> {
  return plainBytes(hexToBytes(`0x${value.toString(16).padStart(64, '0')}`))
}

/**
 * Settles each day on the rollup: compiles the day's report from the local
 * ledger once no receipt for it can still arrive, signs it with the registry's
 * EVM key, exchanges signatures with the other registry peers over gossip and,
 * following a deterministic schedule (peers ordered by sha256(day ‖ peer id)),
 * posts it when its turn comes and the chain still lacks the day — then applies
 * each game's debit. Every peer compares the posted root with its own and
 * raises an alarm when they differ.
 */
export class Settler {
  private readonly init: Required<SettlerInit>
  private readonly log: Logger
  private readonly days = new Map<number, DayState>()
  /** Signatures heard before we compiled the day: day → key(root,total) → signer → signature. */
  private readonly heard = new Map<number, Map<string, Map<string, Hex>>>()
  private timer?: ReturnType<typeof setInterval>
  private busy = false
  private threshold = 1
  /** The contract's registered signers (lowercase): only their signatures count. */
  private signerSet = new Set<string>()
  private readonly startedAt = Date.now()
  /** Days to compile again (after a sync that finished later than this time) because the chain disagreed. */
  private readonly recompileAfter = new Map<number, number>()
  readonly stats: SettlerStats = { daysCompiled: 0, daysPosted: 0, debitsApplied: 0, alarms: 0 }
  private readonly onGossip = (evt: CustomEvent<{ topic: string; data: Uint8Array }>): void => {
    if (evt.detail.topic === REGISTRY_REPORTS_TOPIC) void this.handleSignature(evt.detail.data)
  }

  constructor(
    init: SettlerInit,
    private readonly components: SettlerComponents
  ) {
    this.init = { ...SETTLER_DEFAULTS, ...init }
    this.log = components.logger.child('settler')
  }

  async start(): Promise<void> {
    await this.refreshSigners()
    const pubsub = this.components.node.libp2p.services.pubsub
    // Only registry peers publish (and relay) report signatures, each naming itself: anything else is Rejected.
    const registryPeers = new Set(this.components.registryPeers.map(p => p.toString()))
    pubsub.topicValidators.set(
      REGISTRY_REPORTS_TOPIC,
      gossipValidator(
        (from, message) =>
          checkRegistryGossipSender(from, message, registryPeers, DayReportSignatureCodec.decode(message.data).registryPeerId),
        this.log
      )
    )
    pubsub.subscribe(REGISTRY_REPORTS_TOPIC)
    pubsub.addEventListener('message', this.onGossip as never)
    this.timer = setInterval(() => void this.tick(), this.components.clock.blockMs)
    this.timer.unref()
    this.log.info('settler started', { threshold: this.threshold, signer: this.components.chain.account?.address })
  }

  /** Reads the signer set and threshold from the contract (owner-managed, so re-read for each day). */
  private async refreshSigners(): Promise<void> {
    const { chain } = this.components
    const [signers, threshold] = await Promise.all([
      chain.publicClient.readContract({ address: chain.settlement, abi: GCN_SETTLEMENT_ABI, functionName: 'signers' }),
      chain.publicClient.readContract({ address: chain.settlement, abi: GCN_SETTLEMENT_ABI, functionName: 'threshold' })
    ])
    this.signerSet = new Set((signers as readonly string[]).map(a => a.toLowerCase()))
    this.threshold = Number(threshold)
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.components.node.libp2p.services.pubsub.removeEventListener('message', this.onGossip as never)
    this.components.node.libp2p.services.pubsub.topicValidators.delete(REGISTRY_REPORTS_TOPIC)
  }

  /** The EVM address this peer signs reports with. */
  get signer(): string {
    return this.components.chain.account?.address ?? ''
  }

  /** What this peer knows of a day (tests, /status). */
  day(day: number): DayState | undefined {
    return this.days.get(day)
  }

  /** The compiled report of a day, if this peer compiled one. */
  report(day: number): DayReport | undefined {
    return this.days.get(day)?.report
  }

  /** HTTP routes for the query server: a day's report and a supplier's claim proof. */
  routes(): Record<string, (params: URLSearchParams) => unknown> {
    const dayOf = (params: URLSearchParams): DayState => {
      const day = intParam(params, 'day')
      if (day === undefined) throw new InvalidQueryError('day is required')
      const state = this.days.get(day)
      if (state !== undefined) return state
      const ready = this.readyBlock(day)
      if (this.components.clock.blockHeight() < ready) throw new InvalidQueryError(`day ${day} is not closed yet (ready at block ${ready})`)
      if (!this.synced(ready)) throw new InvalidQueryError('this registry has not caught up with its peers since it started; retry shortly')
      // An older day (or one not compiled since a restart): compile it from the ledger for reading.
      const report = compileDay(this.components.ledger, this.components.clock, day)
      return {
        day,
        done: true,
        recompiles: 0,
        signatures: new Map(),
        posted: false,
        rank: -1,
        ...(report === undefined ? {} : { report })
      }
    }
    return {
      '/settlement/day': params => {
        const state = dayOf(params)
        return {
          day: state.day,
          // null: compiled for reading only (an old day, or since a restart); this peer has not checked the chain.
          posted: state.rank < 0 ? null : state.posted,
          postedBy: state.postedBy ?? null,
          alarm: state.alarm ?? null,
          signatures: state.signatures.size,
          threshold: this.threshold,
          report: state.report ?? null
        }
      },
      '/settlement/proof': params => {
        const state = dayOf(params)
        const account = params.get('account')?.toLowerCase()
        if (account === undefined || !/^0x[0-9a-f]{40}$/.test(account)) throw new InvalidQueryError('account must be an 0x address')
        const credit = state.report?.credits.find(c => c.account.toLowerCase() === account)
        if (credit === undefined) throw new InvalidQueryError(`no credit for ${account} on day ${state.day}`)
        return {
          day: state.day,
          account: credit.account,
          amount: credit.amount,
          proof: credit.proof,
          posted: state.rank < 0 ? null : state.posted
        }
      }
    }
  }

  /** First block at which `day` can be compiled: nothing for it is accepted any more. */
  readyBlock(day: number): number {
    return this.components.clock.lastBlockOfDay(day) + this.components.acceptBlocksBehind + this.init.graceBlocks + 1
  }

  /** The day's submitter schedule: registry peer ids ordered by sha256(day ‖ peer id). */
  schedule(day: number): string[] {
    const key = (id: string): string => createHash('sha256').update(`gcn/submitter/1:${day}:${id}`).digest('hex')
    return this.components.registryPeers.map(p => p.toString()).sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
  }

  private async tick(): Promise<void> {
    if (this.busy) return
    this.busy = true
    try {
      const { clock } = this.components
      const current = clock.blockHeight()
      const lastDay = clock.day(current)
      for (let day = Math.max(0, lastDay - this.init.lookbackDays); day <= lastDay; day++) {
        const ready = this.readyBlock(day)
        if (current < ready) continue
        let state = this.days.get(day)
        if (state === undefined) {
          const again = this.recompileAfter.get(day)
          if (!this.synced(ready) || (again !== undefined && (this.components.lastSyncCompletedAt?.() ?? Date.now()) <= again)) {
            this.components.syncNow?.()
            continue
          }
          state = await this.open(day, again === undefined ? 0 : 1)
          this.recompileAfter.delete(day)
        }
        if (state.done) continue
        const lastTurn = ready + (this.components.registryPeers.length + 1) * this.init.staggerBlocks
        if (state.report === undefined) {
          // Nothing billable here: nothing to post, but a root appearing on chain means our ledger disagrees.
          if (current >= lastTurn) await this.finishEmpty(state)
          continue
        }
        if (state.alarm !== undefined) continue
        this.publish(state)
        const turn = ready + state.rank * this.init.staggerBlocks
        if (current >= turn) await this.takeTurn(state)
      }
      this.forgetOldDays(lastDay)
    } catch (err) {
      this.log.warn('settlement tick failed', { err })
    } finally {
      this.busy = false
    }
  }

  /** Whether an anti-entropy round finished after the day closed (at block `ready`) and after we started. */
  private synced(ready: number): boolean {
    const last = this.components.lastSyncCompletedAt
    if (last === undefined) return true
    const since = Math.max(this.startedAt, this.components.clock.blockStartMs(ready))
    return last() >= since
  }

  private forgetOldDays(lastDay: number): void {
    for (const [day, state] of this.days) {
      if (state.done && day < lastDay - this.init.lookbackDays - 1) this.days.delete(day)
    }
  }

  private async finishEmpty(state: DayState): Promise<void> {
    const onChain = await this.components.chain.dayRoot(state.day)
    if (onChain !== ZERO_ROOT) {
      this.raise(state, `day ${state.day} was posted with root ${onChain} but this ledger has no billable receipt for it`)
    }
    state.done = true
  }

  private async open(day: number, recompiles: number): Promise<DayState> {
    const self = this.components.node.peerId.toString()
    const state: DayState = {
      day,
      done: false,
      recompiles,
      signatures: new Map(),
      posted: false,
      rank: Math.max(0, this.schedule(day).indexOf(self))
    }
    // Not remembered until it is complete: a chain that cannot be read now is retried next block.
    await this.refreshSigners()
    const onChain = await this.components.chain.dayRoot(day)
    const report = compileDay(this.components.ledger, this.components.clock, day)
    this.stats.daysCompiled++
    if (report === undefined) {
      this.days.set(day, state)
      return state
    }
    state.report = report
    const { chain } = this.components
    const digest = reportDigest(BigInt(chain.chainId), chain.settlement, day, report.root, report.totalDebit)
    const signature = await chain.signReportHash(digest)
    state.signatures.set(chain.account!.address.toLowerCase(), signature)
    // Signatures that arrived before we compiled.
    const early = this.heard.get(day)?.get(`${report.root}:${report.totalDebit}`)
    if (early !== undefined) for (const [signer, sig] of early) state.signatures.set(signer, sig)
    this.heard.delete(day)
    this.days.set(day, state)
    if (onChain !== ZERO_ROOT && onChain.toLowerCase() !== report.root.toLowerCase()) this.mismatch(state, onChain)
    this.log.info('day compiled', { day, root: report.root, totalDebit: report.totalDebit, rank: state.rank })
    return state
  }

  /**
   * The chain holds another root than ours. Our ledger may simply have missed writes: forget the day so it is
   * recompiled after the next completed sync, once; a second disagreement is an alarm.
   */
  private mismatch(state: DayState, onChain: Hex): void {
    if (state.recompiles === 0) {
      this.log.warn('the chain holds another root for the day; recompiling after the next sync', { day: state.day, onChain })
      this.days.delete(state.day)
      this.recompileAfter.set(state.day, Date.now())
      return
    }
    this.raise(state, `the chain holds root ${onChain} for day ${state.day}, this ledger computes ${state.report?.root ?? 'nothing'}`)
  }

  private publish(state: DayState): void {
    const report = state.report!
    const { chain, node } = this.components
    const own = state.signatures.get(chain.account!.address.toLowerCase())!
    const message: DayReportSignature = {
      registryPeerId: node.peerId.toString(),
      day: state.day,
      root: plainBytes(hexToBytes(report.root)),
      totalDebit: uint256Bytes(report.totalDebit),
      signer: chain.account!.address,
      signature: plainBytes(hexToBytes(own))
    }
    node.libp2p.services.pubsub
      .publish(REGISTRY_REPORTS_TOPIC, DayReportSignatureCodec.encode(message))
      .catch(err => this.log.debug('report signature publish failed', { err }))
  }

  private async handleSignature(data: Uint8Array): Promise<void> {
    let message: DayReportSignature
    try {
      message = DayReportSignatureCodec.decode(data)
    } catch (err) {
      this.log.debug('malformed report signature', { err })
      return
    }
    const root = hex(message.root)
    const totalDebit = BigInt(hex(message.totalDebit))
    const { chain } = this.components
    const digest = reportDigest(BigInt(chain.chainId), chain.settlement, message.day, root, totalDebit)
    let recovered: Address
    try {
      recovered = await recoverAddress({ hash: digest, signature: hex(message.signature) })
    } catch {
      return
    }
    if (recovered.toLowerCase() !== message.signer.toLowerCase()) {
      this.log.warn('report signature does not match its signer', { from: message.registryPeerId, day: message.day })
      return
    }
    const signer = recovered.toLowerCase()
    // A signature from anyone but a registered signer would make postDay revert (NotASigner) if it were used.
    if (!this.signerSet.has(signer)) {
      this.log.debug('report signature from an address that is not a registered signer', { from: message.registryPeerId })
      return
    }
    const state = this.days.get(message.day)
    if (state?.report !== undefined) {
      if (state.report.root === root && state.report.totalDebit === totalDebit) state.signatures.set(signer, hex(message.signature))
      else this.log.warn('a registry peer signed a different report', { from: message.registryPeerId, day: message.day, root })
      return
    }
    const today = this.components.clock.day(this.components.clock.blockHeight())
    // Only days that can be compiled soon are kept before we compile them (bounded memory).
    if (message.day < today - this.init.lookbackDays - 1 || message.day > today + 1) return
    let byReport = this.heard.get(message.day)
    if (byReport === undefined) {
      byReport = new Map()
      this.heard.set(message.day, byReport)
    }
    const key = `${root}:${totalDebit}`
    const signers = byReport.get(key) ?? new Map<string, Hex>()
    if (signers.size < 256) signers.set(signer, hex(message.signature))
    if (byReport.size < 16) byReport.set(key, signers)
  }

  private raise(state: DayState, alarm: string): void {
    state.alarm = alarm
    this.stats.alarms++
    this.log.error('settlement alarm', { day: state.day, alarm })
  }

  private checkPosted(state: DayState, onChain: Hex): void {
    state.posted = true
    state.postedBy ??= 'another'
    if (state.report !== undefined && onChain.toLowerCase() !== state.report.root.toLowerCase()) this.mismatch(state, onChain)
  }

  /** Our turn in the schedule: post the day if the chain still lacks it, then make sure every debit is applied. */
  private async takeTurn(state: DayState): Promise<void> {
    const { chain } = this.components
    const report = state.report!
    const onChain = await chain.dayRoot(state.day)
    if (onChain === ZERO_ROOT) {
      if ([...state.signatures.keys()].filter(a => this.signerSet.has(a)).length < this.threshold) {
        this.log.warn('not enough report signatures yet to post the day', {
          day: state.day,
          have: state.signatures.size,
          need: this.threshold
        })
        return
      }
      // Exactly `threshold` registered signers (the lowest addresses): each signature beyond costs gas.
      const signatures = new Map(
        [...state.signatures]
          .filter(([signer]) => this.signerSet.has(signer))
          .sort(([a], [b]) => (BigInt(a) < BigInt(b) ? -1 : 1))
          .slice(0, this.threshold)
      )
      try {
        const { gasUsed } = await chain.postDay(state.day, report.root, report.totalDebit, signatures)
        state.postedBy = 'us'
        this.stats.daysPosted++
        this.log.info('day posted', { day: state.day, root: report.root, gasUsed })
      } catch (err) {
        if (!(err instanceof ChainError) || revertName(err.cause) !== 'DayAlreadyPosted') throw err
      }
    }
    this.checkPosted(state, await chain.dayRoot(state.day))
    // An alarm, or a disagreement waiting for a recompile: never apply debits from a report the chain does not hold.
    if (state.alarm !== undefined || this.days.get(state.day) !== state) return
    let failed = 0
    for (const debit of report.debits) {
      try {
        await chain.applyDebit(state.day, debit.gameKey, debit.amount, debit.proof)
        this.stats.debitsApplied++
      } catch (err) {
        if (err instanceof ChainError && revertName(err.cause) === 'AlreadyDebited') continue
        failed++
        this.log.warn('applying a debit failed', { day: state.day, game: debit.gameId, err })
      }
    }
    if (failed === 0) state.done = true
  }
}
