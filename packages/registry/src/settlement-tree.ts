/**
 * The settlement merkle tree: leaves `(uint8 kind, bytes32 id, uint256 amount)`,
 * bit-for-bit what `StandardMerkleTree.of(values, ['uint8', 'bytes32', 'uint256'])`
 * from `@openzeppelin/merkle-tree` builds (default `sortLeaves: true`), so roots
 * and proofs verify with OpenZeppelin's `MerkleProof` on chain:
 *
 * - leaf = keccak256(keccak256(abi.encode(kind, id, amount)));
 * - leaves are sorted by hash (ascending, bytewise) and laid out in one array of
 *   2n-1 nodes: the i-th smallest leaf at index 2n-2-i, node i's children at 2i+1
 *   and 2i+2, node = keccak256(sorted(left, right));
 * - a proof is the list of siblings from the leaf up to (not including) the root.
 *
 * `values` keep the order they were given in (OpenZeppelin's value index), only
 * the node array is sorted.
 */

import { keccak_256 } from '@noble/hashes/sha3.js'

export type Hex = `0x${string}`

/** Leaf kinds. */
export const LEAF_DEBIT = 0
export const LEAF_CREDIT = 1

/** The leaf encoding, as passed to `StandardMerkleTree.of`. */
export const SETTLEMENT_LEAF_TYPES: readonly ['uint8', 'bytes32', 'uint256'] = ['uint8', 'bytes32', 'uint256']

export interface SettlementLeaf {
  /** uint8. */
  kind: number
  /** bytes32, 0x + 64 hex (any case). */
  id: Hex
  /** uint256. */
  amount: bigint
}

const MAX_UINT256 = (1n << 256n) - 1n

export function toHex(bytes: Uint8Array): Hex {
  return `0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}`
}

/** 0x + exactly `size` bytes of hex (either case). */
export function fromHex(hex: string, size: number): Uint8Array {
  if (typeof hex !== 'string' || hex.length !== 2 + 2 * size || !/^0x[0-9a-fA-F]*$/.test(hex)) {
    throw new TypeError(`expected 0x + ${2 * size} hex characters, got ${JSON.stringify(hex)}`)
  }
  return Uint8Array.from(Buffer.from(hex.slice(2), 'hex'))
}

function idBytes(id: Hex | Uint8Array): Uint8Array {
  if (typeof id === 'string') return fromHex(id, 32)
  if (!(id instanceof Uint8Array) || id.length !== 32) throw new TypeError('a leaf id must be 32 bytes')
  return id
}

/** keccak256(keccak256(abi.encode(uint8 kind, bytes32 id, uint256 amount))). */
export function leafHash(kind: number, id: Hex | Uint8Array, amount: bigint): Uint8Array {
  if (!Number.isInteger(kind) || kind < 0 || kind > 255) throw new RangeError(`leaf kind must be a uint8, got ${kind}`)
  if (typeof amount !== 'bigint' || amount < 0n || amount > MAX_UINT256) {
    throw new RangeError(`leaf amount must be a uint256, got ${String(amount)}`)
  }
  const word = new Uint8Array(96)
  word[31] = kind
  word.set(idBytes(id), 32)
  let a = amount
  for (let i = 95; i >= 64 && a > 0n; i--) {
    word[i] = Number(a & 0xffn)
    a >>= 8n
  }
  return keccak_256(keccak_256(word))
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!
    if (d !== 0) return d
  }
  return a.length - b.length
}

/** keccak256 of the two 32-byte nodes, smaller first. */
export function nodeHash(a: Uint8Array, b: Uint8Array): Uint8Array {
  const buf = new Uint8Array(64)
  if (compareBytes(a, b) <= 0) {
    buf.set(a, 0)
    buf.set(b, 32)
  } else {
    buf.set(b, 0)
    buf.set(a, 32)
  }
  return keccak_256(buf)
}

/** Folds a proof onto a leaf hash (OpenZeppelin `processProof`). */
export function processProof(leaf: Uint8Array, proof: readonly Hex[]): Uint8Array {
  let node = leaf
  for (const p of proof) node = nodeHash(node, fromHex(p, 32))
  return node
}

export class SettlementTree {
  /** The values, in the order given (value index). */
  readonly values: readonly Readonly<SettlementLeaf>[]
  private readonly nodes: Uint8Array[]
  /** Hex of nodes, filled as proofs ask for them. */
  private readonly hexNodes: Array<Hex | undefined>
  /** value index → node index. */
  private readonly treeIndex: Int32Array
  /** `${kind}:${lowercase id}` → value index. */
  private readonly lookup = new Map<string, number>()

  private constructor(values: readonly SettlementLeaf[]) {
    if (values.length === 0) throw new RangeError('a settlement tree needs at least one leaf')
    this.values = values.map(v => Object.freeze({ kind: v.kind, id: v.id.toLowerCase() as Hex, amount: v.amount }))
    for (const [i, v] of this.values.entries()) {
      const key = `${v.kind}:${v.id}`
      if (this.lookup.has(key)) throw new RangeError(`duplicate settlement leaf (${v.kind}, ${v.id})`)
      this.lookup.set(key, i)
    }
    const n = values.length
    const hashed = this.values.map((v, valueIndex) => ({ valueIndex, hash: leafHash(v.kind, v.id, v.amount) }))
    // Array.prototype.sort is stable, like OpenZeppelin's (equal hashes keep their value order)
    hashed.sort((a, b) => compareBytes(a.hash, b.hash))
    const nodes = new Array<Uint8Array>(2 * n - 1)
    this.treeIndex = new Int32Array(n)
    for (let i = 0; i < n; i++) {
      const { valueIndex, hash } = hashed[i]!
      nodes[nodes.length - 1 - i] = hash
      this.treeIndex[valueIndex] = nodes.length - 1 - i
    }
    for (let i = nodes.length - 1 - n; i >= 0; i--) nodes[i] = nodeHash(nodes[2 * i + 1]!, nodes[2 * i + 2]!)
    this.nodes = nodes
    this.hexNodes = new Array<Hex | undefined>(nodes.length)
  }

  private hexNode(i: number): Hex {
    let h = this.hexNodes[i]
    if (h === undefined) {
      h = toHex(this.nodes[i]!)
      this.hexNodes[i] = h
    }
    return h
  }

  /** Same root, layout and proofs as `StandardMerkleTree.of(values, SETTLEMENT_LEAF_TYPES)`. */
  static of(values: readonly SettlementLeaf[]): SettlementTree {
    return new SettlementTree(values)
  }

  /** Whether `proof` proves leaf (kind, id, amount) under `root`. */
  static verify(root: Hex, leaf: SettlementLeaf, proof: readonly Hex[]): boolean {
    try {
      return compareBytes(processProof(leafHash(leaf.kind, leaf.id, leaf.amount), proof), fromHex(root, 32)) === 0
    } catch {
      return false
    }
  }

  get root(): Hex {
    return this.hexNode(0)
  }

  get length(): number {
    return this.values.length
  }

  /** Value index of leaf (kind, id), or undefined. */
  indexOf(kind: number, id: Hex): number | undefined {
    return this.lookup.get(`${kind}:${id.toLowerCase()}`)
  }

  /** Proof of the value at `index` (value order), siblings from the leaf up. */
  proof(index: number): Hex[] {
    if (!Number.isInteger(index) || index < 0 || index >= this.values.length) {
      throw new RangeError(`leaf index ${index} out of bounds (0..${this.values.length - 1})`)
    }
    const proof: Hex[] = []
    let i = this.treeIndex[index]!
    while (i > 0) {
      proof.push(this.hexNode(i % 2 === 1 ? i + 1 : i - 1))
      i = Math.floor((i - 1) / 2)
    }
    return proof
  }

  /** Proof of leaf (kind, id); throws when it is not in the tree. */
  proofFor(kind: number, id: Hex): Hex[] {
    const index = this.indexOf(kind, id)
    if (index === undefined) throw new RangeError(`leaf (${kind}, ${id}) is not in the tree`)
    return this.proof(index)
  }

  /** Whether `proof` proves `leaf` under this tree's root. */
  verify(leaf: SettlementLeaf, proof: readonly Hex[]): boolean {
    return SettlementTree.verify(this.root, leaf, proof)
  }
}
