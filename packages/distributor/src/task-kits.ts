import { type PreparedSeal, prepareSeal, proofKey, RESPONSE_KEY_BYTES, randomBytes } from '@gcn/core'
import type { PublicKey } from '@libp2p/interface'

/** What a task needs that its request does not decide: its id, secrets and the key of its request box. */
export interface TaskKit {
  modelId: string
  taskId: Uint8Array
  /** Key of the supplier's sealed chunks. */
  responseKey: Uint8Array
  /** Secret per-task nonce of the proof of inference. */
  nonce: Uint8Array
  /** proofKey(nonce, taskId, modelId). */
  proofKey: Uint8Array
  /** The request box to the supplier, bound to taskId. */
  box: PreparedSeal
}

const TASK_ID_BYTES = 16
const NONCE_BYTES = 32

/** A fresh kit for one task to `supplierKey` on `modelId` (one random draw, one key agreement, two key derivations). */
export function makeTaskKit(supplierKey: PublicKey, modelId: string): TaskKit {
  const random = randomBytes(TASK_ID_BYTES + RESPONSE_KEY_BYTES + NONCE_BYTES)
  const taskId = random.slice(0, TASK_ID_BYTES)
  const responseKey = random.slice(TASK_ID_BYTES, TASK_ID_BYTES + RESPONSE_KEY_BYTES)
  const nonce = random.slice(TASK_ID_BYTES + RESPONSE_KEY_BYTES)
  random.fill(0)
  return {
    modelId,
    taskId,
    responseKey,
    nonce,
    proofKey: proofKey(nonce, taskId, modelId),
    box: prepareSeal(supplierKey, { context: taskId })
  }
}

/** Wipes a kit's secrets (one no task will use). */
export function wipeTaskKit(kit: TaskKit): void {
  kit.responseKey.fill(0)
  kit.nonce.fill(0)
  kit.proofKey.fill(0)
  kit.box.discard()
}

export interface TaskKitsInit {
  /** Supplier and model pairs a kit is kept ready for at once. */
  maxReady?: number
}

export const TASK_KITS_DEFAULTS = Object.freeze({ maxReady: 256 })

/**
 * Keeps the next task's kit ready for each supplier and model in use, made
 * when the previous task there takes its own, while the distributor waits for
 * that supplier's first token. Taking a ready kit spares a task's critical
 * path the random draw, the proof key and the request box's key derivation
 * (~0.2 ms of a process that was idle, measured in the traced path). Every
 * kit serves one task; an evicted or dropped one is wiped.
 */
export class TaskKits {
  private readonly init: Required<TaskKitsInit>
  private readonly ready = new Map<string, TaskKit>()
  private readonly due = new Map<string, { supplierKey: PublicKey; modelId: string }>()
  private scheduled = false
  private stopped = false

  constructor(init: TaskKitsInit = {}) {
    this.init = { ...TASK_KITS_DEFAULTS, ...init }
  }

  /** The ready kit for this supplier and model, or a new one; the next one is made off the critical path. */
  take(supplierId: string, supplierKey: PublicKey, modelId: string): TaskKit {
    const id = `${supplierId}/${modelId}`
    const kit = this.ready.get(id)
    this.ready.delete(id)
    if (!this.stopped) {
      this.due.set(id, { supplierKey, modelId })
      this.schedule()
    }
    return kit ?? makeTaskKit(supplierKey, modelId)
  }

  /** Wipes the ready kits and makes no more. */
  stop(): void {
    this.stopped = true
    this.due.clear()
    for (const kit of this.ready.values()) wipeTaskKit(kit)
    this.ready.clear()
  }

  /** How many kits are ready (tests). */
  get readyCount(): number {
    return this.ready.size
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      for (const [id, { supplierKey, modelId }] of this.due) {
        this.due.delete(id)
        if (this.stopped || this.ready.has(id)) continue
        if (this.ready.size >= this.init.maxReady) {
          const [oldest, stale] = this.ready.entries().next().value!
          this.ready.delete(oldest)
          wipeTaskKit(stale)
        }
        try {
          this.ready.set(id, makeTaskKit(supplierKey, modelId))
        } catch {
          // The next task there makes its kit inline and reports the error.
        }
      }
    }).unref()
  }
}
