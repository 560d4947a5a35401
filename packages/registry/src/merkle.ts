/**
 * Merkle helpers for the registry ledger: the per-block root over receipt
 * hashes and confirmation leaves, the digest of a range of block summaries,
 * and the leaf that stands for one confirmed task.
 *
 * Everything here is order-independent at the leaf level (leaves are sorted
 * before hashing) so two registry peers holding the same items compute the
 * same roots however the items reached them.
 */

import { createHash, hash } from 'node:crypto'

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
  if (level.every(leaf => leaf.byteLength === HASH_BYTES)) return packedRoot(level)
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

const HASH_BYTES = 32

/**
 * blockRoot over two or more sorted 32-byte leaves (every ledger leaf is a
 * sha256), each level packed into one buffer: a node is one one-shot sha256 of
 * 64 contiguous bytes, where hashing pairs of separate arrays costs a Hash
 * object each.
 */
function packedRoot(sorted: readonly Uint8Array[]): Uint8Array {
  let n = sorted.length
  let level = Buffer.allocUnsafe(n * HASH_BYTES)
  for (let i = 0; i < n; i++) level.set(sorted[i]!, i * HASH_BYTES)
  while (n > 1) {
    const pairs = n >> 1
    const next = Buffer.allocUnsafe((n - pairs) * HASH_BYTES)
    for (let i = 0; i < pairs; i++) {
      next.set(hash('sha256', level.subarray(2 * i * HASH_BYTES, (2 * i + 2) * HASH_BYTES), 'buffer'), i * HASH_BYTES)
    }
    // an odd last node is promoted unchanged
    if (n % 2 === 1) level.copy(next, pairs * HASH_BYTES, (n - 1) * HASH_BYTES, n * HASH_BYTES)
    level = next
    n -= pairs
  }
  // its own 32-byte array, not a view into allocUnsafe's shared pool
  return Uint8Array.from(level)
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
