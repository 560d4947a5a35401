import {
  BlockBatcher,
  type BlockClock,
  FIELD_LIMITS,
  type Logger,
  plainBytes,
  RECEIPTS_PAYLOAD,
  type Receipt,
  ReceiptBatchCodec,
  type RegistryOutbox,
  receiptCost,
  signEnvelope,
  verdictToWire
} from '@gcn/core'
import type { PrivateKey } from '@libp2p/interface'
import type { CompletedTask } from './router.js'

export interface ReceiptIssuerInit {
  /** Receipts per signed batch (at most FIELD_LIMITS.receiptsPerBatch). */
  maxReceiptsPerBatch?: number
  /** Open batches are signed and sent this often. */
  flushMs?: number
}

export const RECEIPT_ISSUER_DEFAULTS = Object.freeze({ maxReceiptsPerBatch: 512, flushMs: 100 })

export interface ReceiptIssuerComponents {
  privateKey: PrivateKey
  /** This distributor's peer id (the private key's). */
  peerId: string
  clock: BlockClock
  outbox: RegistryOutbox
  logger: Logger
}

/**
 * Turns completed tasks into receipts, groups them per block, signs each
 * batch once (one Ed25519 signature per batch keeps registry ingest cheap)
 * and hands it to the outbox, which retries until a registry acknowledges.
 */
export class ReceiptIssuer {
  private readonly batcher: BlockBatcher<Receipt>
  private readonly distributor: string
  private readonly log: Logger
  private signing: Promise<void> = Promise.resolve()
  readonly stats = { receipts: 0, batches: 0 }

  constructor(
    init: ReceiptIssuerInit,
    private readonly components: ReceiptIssuerComponents
  ) {
    const maxItems = Math.min(init.maxReceiptsPerBatch ?? RECEIPT_ISSUER_DEFAULTS.maxReceiptsPerBatch, FIELD_LIMITS.receiptsPerBatch)
    this.batcher = new BlockBatcher<Receipt>({
      maxItems,
      flushMs: init.flushMs ?? RECEIPT_ISSUER_DEFAULTS.flushMs,
      onFlush: (height, receipts) => this.send(height, receipts)
    })
    this.distributor = components.peerId
    this.log = components.logger.child('receipts')
  }

  start(): void {
    this.batcher.start()
  }

  /** Signs what is still open; the outbox delivers it. */
  async stop(): Promise<void> {
    this.batcher.stop()
    await this.signing
  }

  /** Records one delivered task; its receipt goes out with the next batch of its block. */
  issue(task: CompletedTask): void {
    const blockHeight = this.components.clock.blockHeight(task.completedAtMs)
    const { promptTokens, completionTokens } = task.usage
    this.batcher.add(blockHeight, {
      taskId: plainBytes(task.taskId),
      gameId: task.gameId,
      supplierPeerId: task.supplier,
      distributorPeerId: this.distributor,
      modelId: task.modelId,
      promptTokens,
      completionTokens,
      pricePer1kTokens: task.pricePer1kTokens,
      cost: receiptCost(promptTokens, completionTokens, task.pricePer1kTokens),
      blockHeight,
      promptHash: plainBytes(task.promptHash),
      outputHash: plainBytes(task.outputHash),
      verdict: verdictToWire(task.verdict),
      timestampMs: task.completedAtMs
    })
    this.stats.receipts++
  }

  private send(blockHeight: number, receipts: Receipt[]): void {
    this.signing = this.signing.then(async () => {
      try {
        const payload = ReceiptBatchCodec.encode({ distributorPeerId: this.distributor, blockHeight, receipts, timestampMs: Date.now() })
        const envelope = await signEnvelope(this.components.privateKey, RECEIPTS_PAYLOAD, payload)
        this.stats.batches++
        this.components.outbox.enqueue(envelope, `receipts block ${blockHeight} (${receipts.length})`)
      } catch (err) {
        this.log.error('could not sign a receipt batch', { blockHeight, receipts: receipts.length, err })
      }
    })
  }
}
