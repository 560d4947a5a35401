/**
 * Merkle helpers for the registry ledger: the per-block root over receipt
 * hashes and confirmation leaves, the digest of a range of block summaries,
 * and the leaf that stands for one confirmed task.
 *
 * Everything here is order-independent at the leaf level (leaves are sorted
 * before hashing) so two registry peers holding the same items compute the
 * same roots however the items reached them.
 */

import { createHash } from 'node:crypto'

const CONFIRMED_TAG = Buffer.from('gcn/confirmed/1', 'utf8')
const ZERO = Buffer.from([0])

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b)
}

/**
 * Root over leaves (32-byte hashes): sort leaves bytewise ascending, then
 * pairwise sha256(left || right) level by level; an odd last node is promoted
 * unchanged. One leaf → the leaf itself (a copy). No leaves → empty Uint8Array.
 * Does not mutate `leaves`.
 */
export function blockRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return new Uint8Array(0)
  let level: Uint8Array[] = leaves.slice().sort(compareBytes)
  if (level.length === 1) return Uint8Array.from(level[0]!)
  while (level.length > 1) {
    const next: Uint8Array[] = new Array(Math.ceil(level.length / 2))
    let j = 0
    for (let i = 0; i + 1 < level.length; i += 2) {
      next[j++] = createHash('sha256')
        .update(level[i]!)
        .update(level[i + 1]!)
        .digest()
    }
    if (level.length % 2 === 1) next[j] = level[level.length - 1]!
    level = next
  }
  return level[0]!
}

/**
 * Digest of a range of blocks: sha256 over, for each summary in ascending
 * block order, u64 big-endian block height || u32 big-endian count || root.
 * The summaries are sorted by height here (the input is not mutated).
 */
export function spanDigest(blocks: readonly { blockHeight: number; count: number; root: Uint8Array }[]): Uint8Array {
  const sorted = blocks.slice().sort((a, b) => a.blockHeight - b.blockHeight)
  const hash = createHash('sha256')
  const head = Buffer.alloc(12)
  for (const b of sorted) {
    head.writeBigUInt64BE(BigInt(b.blockHeight), 0)
    head.writeUInt32BE(b.count, 8)
    hash.update(head)
    hash.update(b.root)
  }
  return hash.digest()
}

/** sha256('gcn/confirmed/1' utf8 || 0x00 || supplier peer id utf8 || 0x00 || taskId): the leaf of one confirmed task. */
export function confirmationLeaf(supplier: string, taskId: Uint8Array): Uint8Array {
  return createHash('sha256').update(CONFIRMED_TAG).update(ZERO).update(supplier, 'utf8').update(ZERO).update(taskId).digest()
}
