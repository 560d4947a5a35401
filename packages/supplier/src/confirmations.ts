import { type FileHandle, open } from 'node:fs/promises'
import {
  BlockBatcher,
  type BlockClock,
  BlockConfirmationCodec,
  CONFIRMATION_PAYLOAD,
  FIELD_LIMITS,
  type Logger,
  plainBytes,
  type RegistryOutbox,
  SignedEnvelopeCodec,
  signEnvelope
} from '@gcn/core'
import type { PrivateKey } from '@libp2p/interface'

export interface ConfirmationReporterInit {
  /** EVM address credited with this supplier's earnings (sent in every confirmation). */
  rewardAddress: string
  /**
   * The supplier's own record of completed tasks (JSON lines): every task as it
   * completes, and every signed confirmation before it is sent. On start, tasks
   * of the last `resendBlocks` blocks that no confirmation covered are confirmed,
   * and those blocks' confirmations are sent again (the same bytes: a registry
   * that has one acknowledges it as a duplicate), so a crash loses no earnings.
   */
  recordFile?: string
  /** How far back (blocks) a restart re-sends from the record. Default 20. */
  resendBlocks?: number
}

/** Bytes of the record's end read on start: far more than `resendBlocks` of lines. */
const RECORD_TAIL_BYTES = 8 * 1024 * 1024

type RecordLine = { t: 'task'; block: number; id: string } | { t: 'sent'; block: number; ids: string[]; envelope: string }

export interface ConfirmationReporterComponents {
  privateKey: PrivateKey
  /** This supplier's peer id (the private key's). */
  peerId: string
  clock: BlockClock
  outbox: RegistryOutbox
  logger: Logger
}

/**
 * Confirms completed tasks to the registries: the task ids finished in each
 * block are signed as one BlockConfirmation when the block ends (sooner if
 * FIELD_LIMITS.taskIdsPerConfirmation is reached). A registry bills a receipt
 * only when the supplier's confirmation agrees with the distributor's receipt.
 */
export class ConfirmationReporter {
  private readonly batcher: BlockBatcher<Uint8Array>
  private readonly log: Logger
  private signing: Promise<void> = Promise.resolve()
  private file: FileHandle | undefined
  readonly stats = { tasks: 0, confirmations: 0, resent: 0, recovered: 0 }

  constructor(
    private readonly init: ConfirmationReporterInit,
    private readonly components: ConfirmationReporterComponents
  ) {
    this.batcher = new BlockBatcher<Uint8Array>({
      maxItems: FIELD_LIMITS.taskIdsPerConfirmation,
      flushMs: components.clock.blockMs,
      onFlush: (height, taskIds) => this.send(height, taskIds)
    })
    this.log = components.logger.child('confirmations')
  }

  /** Starts batching; with a record file, first recovers what a crash left unconfirmed (see ConfirmationReporterInit.recordFile). */
  async start(): Promise<void> {
    this.batcher.start()
    if (this.init.recordFile !== undefined) await this.recover(this.init.recordFile)
  }

  private async recover(file: string): Promise<void> {
    const lines = await readTail(file, RECORD_TAIL_BYTES)
    const oldest = this.components.clock.blockHeight() - (this.init.resendBlocks ?? 20)
    const unsent = new Map<string, number>()
    const sent: Array<{ block: number; envelope: string }> = []
    for (const line of lines) {
      let entry: RecordLine
      try {
        entry = JSON.parse(line) as RecordLine
      } catch {
        continue // a line cut short by the crash
      }
      if (typeof entry !== 'object' || entry === null || !(entry.block >= oldest)) continue
      if (entry.t === 'task' && typeof entry.id === 'string') unsent.set(entry.id, entry.block)
      else if (entry.t === 'sent' && Array.isArray(entry.ids)) {
        for (const id of entry.ids) unsent.delete(id)
        if (typeof entry.envelope === 'string') sent.push({ block: entry.block, envelope: entry.envelope })
      }
    }
    for (const { block, envelope } of sent) {
      try {
        this.components.outbox.enqueue(SignedEnvelopeCodec.decode(Buffer.from(envelope, 'base64')), `confirmation block ${block} (again)`)
        this.stats.resent++
      } catch (err) {
        this.log.warn('unreadable confirmation in the record', { block, err })
      }
    }
    for (const [id, block] of unsent) this.batcher.add(block, Buffer.from(id, 'hex'))
    this.stats.recovered += unsent.size
    if (sent.length > 0 || unsent.size > 0)
      this.log.info('recovered confirmations from the record', { resent: sent.length, unconfirmed: unsent.size })
  }

  async stop(): Promise<void> {
    this.batcher.stop()
    await this.signing
    await this.file?.close()
    this.file = undefined
  }

  /** Records a task this supplier finished serving. */
  completed(taskId: Uint8Array): void {
    const block = this.components.clock.blockHeight()
    this.batcher.add(block, taskId)
    this.stats.tasks++
    this.record({ t: 'task', block, id: Buffer.from(taskId).toString('hex') })
  }

  /** Appends to the record in order (after earlier lines and confirmations). */
  private record(line: RecordLine): void {
    if (this.init.recordFile === undefined) return
    this.signing = this.signing.then(() => this.append(line).catch(err => this.log.error('could not write the task record', { err })))
  }

  /** Writes one record line; only ever called from the `signing` chain, so lines never interleave. */
  private async append(line: RecordLine): Promise<void> {
    if (this.init.recordFile === undefined) return
    // Opened once and kept: a line is written for every completed task.
    this.file ??= await open(this.init.recordFile, 'a', 0o600)
    await this.file.write(`${JSON.stringify(line)}\n`)
  }

  private send(blockHeight: number, taskIds: Uint8Array[]): void {
    this.signing = this.signing.then(async () => {
      try {
        const payload = BlockConfirmationCodec.encode({
          supplierPeerId: this.components.peerId,
          blockHeight,
          taskIds: taskIds.map(plainBytes),
          timestampMs: Date.now(),
          rewardAddress: this.init.rewardAddress
        })
        const envelope = await signEnvelope(this.components.privateKey, CONFIRMATION_PAYLOAD, payload)
        this.stats.confirmations++
        // Recorded before it is sent: a restart sends it again if it never got through.
        if (this.init.recordFile !== undefined) {
          await this.append({
            t: 'sent',
            block: blockHeight,
            ids: taskIds.map(t => Buffer.from(t).toString('hex')),
            envelope: Buffer.from(SignedEnvelopeCodec.encode(envelope)).toString('base64')
          })
        }
        this.components.outbox.enqueue(envelope, `confirmation block ${blockHeight} (${taskIds.length})`)
      } catch (err) {
        this.log.error('could not record a block confirmation', { blockHeight, tasks: taskIds.length, err })
      }
    })
  }
}

/** The complete lines of the last `maxBytes` of `file` (none if it does not exist). */
async function readTail(file: string, maxBytes: number): Promise<string[]> {
  let handle: Awaited<ReturnType<typeof open>>
  try {
    handle = await open(file, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  try {
    const { size } = await handle.stat()
    const start = Math.max(0, size - maxBytes)
    const buffer = Buffer.alloc(size - start)
    await handle.read(buffer, 0, buffer.length, start)
    const lines = buffer.toString('utf8').split('\n')
    // The first line may start mid-line when the tail cut it.
    return start > 0 ? lines.slice(1) : lines
  } finally {
    await handle.close()
  }
}
