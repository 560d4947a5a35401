import { appendFile } from 'node:fs/promises'
import {
  BlockBatcher,
  type BlockClock,
  BlockConfirmationCodec,
  CONFIRMATION_PAYLOAD,
  FIELD_LIMITS,
  type Logger,
  plainBytes,
  type RegistryOutbox,
  signEnvelope
} from '@gcn/core'
import type { PrivateKey } from '@libp2p/interface'

export interface ConfirmationReporterInit {
  /** EVM address credited with this supplier's earnings (sent in every confirmation). */
  rewardAddress: string
  /** Append every confirmation sent to this JSON-lines file: the supplier's own record of completed tasks. */
  recordFile?: string
}

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
  readonly stats = { tasks: 0, confirmations: 0 }

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

  start(): void {
    this.batcher.start()
  }

  async stop(): Promise<void> {
    this.batcher.stop()
    await this.signing
  }

  /** Records a task this supplier finished serving. */
  completed(taskId: Uint8Array): void {
    this.batcher.add(this.components.clock.blockHeight(), taskId)
    this.stats.tasks++
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
        this.components.outbox.enqueue(envelope, `confirmation block ${blockHeight} (${taskIds.length})`)
        if (this.init.recordFile !== undefined) {
          const line = JSON.stringify({ blockHeight, taskIds: taskIds.map(t => Buffer.from(t).toString('hex')) })
          await appendFile(this.init.recordFile, `${line}\n`, { mode: 0o600 })
        }
      } catch (err) {
        this.log.error('could not record a block confirmation', { blockHeight, tasks: taskIds.length, err })
      }
    })
  }
}
