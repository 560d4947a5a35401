import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { BlockClock, ConfigError, InvalidMessageError } from '@gcn/core'
import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import Database from 'better-sqlite3'
import { expect } from 'chai'
import { concat, type Hex, hashMessage, keccak256, numberToHex, recoverAddress, recoverMessageAddress, stringToHex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { Ledger, type LedgerItem, type ReceiptRow } from '../src/ledger.js'
import {
  accountId,
  compileDay,
  type DayReport,
  decodeReport,
  encodeReport,
  gameKey,
  reportDigest,
  reportHash,
  reportToJson
} from '../src/settlement.js'
import {
  LEAF_CREDIT,
  LEAF_DEBIT,
  leafHash,
  SETTLEMENT_LEAF_TYPES,
  type SettlementLeaf,
  SettlementTree,
  toHex
} from '../src/settlement-tree.js'

const TYPES = [...SETTLEMENT_LEAF_TYPES]
const sha = (s: string): Buffer => createHash('sha256').update(s).digest()

/** Deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function randomBytes(next: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256)
  return b
}

function randomLeaves(n: number, seed: number): SettlementLeaf[] {
  const next = prng(seed)
  const out: SettlementLeaf[] = []
  for (let i = 0; i < n; i++) {
    const kind = next() < 0.5 ? LEAF_DEBIT : LEAF_CREDIT
    const id = toHex(randomBytes(next, 32))
    const r = next()
    // zero, small, max and random 256-bit amounts
    const amount =
      r < 0.05 ? 0n : r < 0.1 ? (1n << 256n) - 1n : r < 0.5 ? BigInt(Math.floor(next() * 1e9)) : BigInt(toHex(randomBytes(next, 32)))
    out.push({ kind, id, amount })
  }
  return out
}

const ozValue = (l: SettlementLeaf): [number, Hex, bigint] => [l.kind, l.id, l.amount]

describe('SettlementTree', () => {
  for (const [n, seed] of [
    [1, 1],
    [2, 2],
    [3, 3],
    [7, 7],
    [100, 100],
    [313, 313],
    [512, 512],
    [777, 777]
  ] as const) {
    it(`equals StandardMerkleTree.of for ${n} leaves: root, leaf hashes, every proof`, () => {
      const leaves = randomLeaves(n, seed)
      const ours = SettlementTree.of(leaves)
      const oz = StandardMerkleTree.of(leaves.map(ozValue), TYPES)
      expect(ours.root).to.equal(oz.root)
      expect(ours.length).to.equal(n)
      for (let i = 0; i < n; i++) {
        const leaf = leaves[i]!
        expect(toHex(leafHash(leaf.kind, leaf.id, leaf.amount))).to.equal(oz.leafHash(ozValue(leaf)))
        const proof = ours.proof(i)
        expect(proof).to.deep.equal(oz.getProof(i))
        expect(ours.proofFor(leaf.kind, leaf.id)).to.deep.equal(proof)
        expect(StandardMerkleTree.verify(ours.root, TYPES, ozValue(leaf), proof)).to.equal(true)
        expect(SettlementTree.verify(ours.root, leaf, proof)).to.equal(true)
        expect(ours.verify(leaf, proof)).to.equal(true)
      }
    })
  }

  it('leafHash is keccak256(keccak256(abi.encode(uint8, bytes32, uint256)))', () => {
    const id = keccak256(stringToHex('game-a'))
    const encoded = concat([numberToHex(1, { size: 32 }), id, numberToHex(12345n, { size: 32 })])
    expect(toHex(leafHash(1, id, 12345n))).to.equal(keccak256(keccak256(encoded)))
  })

  it('rejects wrong proofs, amounts and malformed leaves', () => {
    const leaves = randomLeaves(9, 9)
    const tree = SettlementTree.of(leaves)
    const leaf = leaves[4]!
    const proof = tree.proof(4)
    expect(tree.verify({ ...leaf, amount: leaf.amount + 1n }, proof)).to.equal(false)
    expect(tree.verify({ ...leaf, kind: 1 - leaf.kind }, proof)).to.equal(false)
    expect(tree.verify(leaf, tree.proof(5))).to.equal(false)
    expect(tree.verify(leaf, proof.slice(1))).to.equal(false)
    expect(tree.verify(leaf, ['0x1234'])).to.equal(false)
    expect(() => SettlementTree.of([])).to.throw(RangeError)
    expect(() => SettlementTree.of([leaves[0]!, { ...leaves[0]!, amount: 1n }])).to.throw(/duplicate/)
    expect(() => leafHash(256, leaf.id, 1n)).to.throw(RangeError)
    expect(() => leafHash(0, leaf.id, -1n)).to.throw(RangeError)
    expect(() => leafHash(0, leaf.id, 1n << 256n)).to.throw(RangeError)
    expect(() => leafHash(0, '0x1234', 1n)).to.throw(TypeError)
    expect(() => tree.proof(9)).to.throw(RangeError)
    expect(() => tree.proofFor(0, toHex(new Uint8Array(32)))).to.throw(RangeError)
  })
})

// ---------------------------------------------------------------------------------------------

const clock = new BlockClock({ genesisMs: 0, blockMs: 200, blocksPerDay: 50 })

function taskId(n: number): Uint8Array {
  const b = new Uint8Array(16)
  new DataView(b.buffer).setUint32(12, n)
  b[0] = 0x5e
  return b
}

function receipt(n: number, over: Partial<ReceiptRow>): ReceiptRow {
  const base: ReceiptRow = {
    taskId: taskId(n),
    hash: new Uint8Array(32),
    gameId: 'game-a',
    supplier: 'sup-a',
    distributor: 'dist-1',
    modelId: 'model-x',
    promptTokens: 10,
    completionTokens: 20,
    pricePer1kTokens: 1000n,
    cost: 30n,
    blockHeight: 100,
    verdict: 'unchecked',
    timestampMs: 1_700_000_000_000 + n,
    ...over
  }
  const content = JSON.stringify({
    ...base,
    hash: undefined,
    taskId: n,
    pricePer1kTokens: String(base.pricePer1kTokens),
    cost: String(base.cost)
  })
  return { ...base, hash: sha(content) }
}

function receiptsItem(label: string, blockHeight: number, receipts: ReceiptRow[]): LedgerItem {
  const envelope = Buffer.from(`receipts:${label}`)
  return { kind: 'receipts', id: sha(envelope.toString()), blockHeight, signer: 'dist-1', envelope, receipts }
}

function confirmationItem(label: string, blockHeight: number, supplier: string, tasks: number[], rewardAddress?: string): LedgerItem {
  const envelope = Buffer.from(`confirmation:${label}`)
  return {
    kind: 'confirmation',
    id: sha(envelope.toString()),
    blockHeight,
    signer: supplier,
    envelope,
    taskIds: tasks.map(taskId),
    ...(rewardAddress === undefined ? {} : { rewardAddress })
  }
}

const ADDR_A = `0x${'a1'.repeat(20)}`
const ADDR_A_OLD = `0x${'a0'.repeat(20)}`
const ADDR_B = `0x${'0b'.repeat(20)}`
const ADDR_B_HIGH = `0x${'bb'.repeat(20)}`
const ADDR_NEXT_DAY = `0x${'ee'.repeat(20)}`

/**
 * Day 2 = blocks 100..149. Games game-a, game-b; suppliers sup-a (address), sup-b (two addresses
 * in one block), sup-c (no address at all).
 */
function scenario(): LedgerItem[] {
  const conflictA = receipt(7, { cost: 20n })
  const conflictB = { ...receipt(7, { cost: 21n }) }
  return [
    // day 1: a billable receipt of sup-a
    receiptsItem('d1', 99, [receipt(0, { blockHeight: 99, cost: 1n })]),
    confirmationItem('d1-a', 99, 'sup-a', [0], ADDR_A_OLD),
    receiptsItem('d2-1', 100, [
      receipt(1, { gameId: 'game-a', supplier: 'sup-a', cost: 100n }), // billable
      receipt(2, { gameId: 'game-a', supplier: 'sup-b', cost: 50n, verdict: 'verified' }), // billable
      receipt(3, { gameId: 'game-b', supplier: 'sup-a', cost: 7n, blockHeight: 120 }), // billable
      receipt(4, { gameId: 'game-b', supplier: 'sup-b', cost: 1000n, verdict: 'failed' }), // failed
      receipt(5, { gameId: 'game-a', supplier: 'sup-a', cost: 333n }), // unconfirmed
      receipt(6, { gameId: 'game-b', supplier: 'sup-b', cost: 444n }), // confirmed by sup-a only
      conflictA, // conflict
      receipt(8, { gameId: 'game-b', supplier: 'sup-c', cost: 60n }), // billable, no address
      receipt(9, { gameId: 'game-a', supplier: 'sup-c', cost: 5n, blockHeight: 130 }) // billable, no address
    ]),
    receiptsItem('d2-2', 125, [conflictB]),
    // the day's last block, confirmed in the next day's first block: still day 2
    receiptsItem('d2-last', 149, [receipt(10, { gameId: 'game-a', supplier: 'sup-a', cost: 1_000_000n, blockHeight: 149 })]),
    // the next day's first block: day 3
    receiptsItem('d3-first', 150, [receipt(11, { gameId: 'game-a', supplier: 'sup-a', cost: 2_000_000n, blockHeight: 150 })]),
    confirmationItem('d2-a1', 110, 'sup-a', [1, 6, 7], ADDR_A_OLD),
    confirmationItem('d2-a2', 140, 'sup-a', [3], ADDR_A),
    confirmationItem('d2-b1', 120, 'sup-b', [2, 4], ADDR_B_HIGH),
    confirmationItem('d2-b2', 120, 'sup-b', [], ADDR_B),
    confirmationItem('d2-c', 130, 'sup-c', [8, 9]),
    confirmationItem('d3-a', 150, 'sup-a', [10, 11], ADDR_NEXT_DAY)
  ]
}

function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const next = prng(seed)
  const out = [...xs]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

describe('settlement', () => {
  let dir: string
  const open: Ledger[] = []
  const ledger = (name = `s${open.length}.db`): Ledger => {
    const l = new Ledger({ path: path.join(dir, name) })
    open.push(l)
    return l
  }

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcn-settlement-'))
  })
  after(() => {
    for (const l of open) l.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  describe('Ledger.dayAggregates / rewardAddress', () => {
    it('sums exactly the billable receipts of the range, per game and per supplier', () => {
      const l = ledger()
      l.insert(scenario())
      expect(l.dayAggregates(100, 149)).to.deep.equal({
        debits: [
          { gameId: 'game-a', amount: 100n + 50n + 5n + 1_000_000n, receipts: 4 },
          { gameId: 'game-b', amount: 7n + 60n, receipts: 2 }
        ],
        credits: [
          { supplier: 'sup-a', amount: 100n + 7n + 1_000_000n, receipts: 3 },
          { supplier: 'sup-b', amount: 50n, receipts: 1 },
          { supplier: 'sup-c', amount: 65n, receipts: 2 }
        ],
        billableReceipts: 6
      })
      // the same rule as the ledger's 'billable' status
      expect(l.totals({ fromBlock: 100, toBlock: 149 })).to.include({ billableReceipts: 6, billableCost: 1_000_222n })
      expect(l.dayAggregates(100, 149, ['sup-c', 'nobody'])).to.deep.equal({
        debits: [
          { gameId: 'game-a', amount: 1_000_150n, receipts: 3 },
          { gameId: 'game-b', amount: 7n, receipts: 1 }
        ],
        credits: [
          { supplier: 'sup-a', amount: 1_000_107n, receipts: 3 },
          { supplier: 'sup-b', amount: 50n, receipts: 1 }
        ],
        billableReceipts: 4
      })
      expect(l.dayAggregates(150, 199).billableReceipts).to.equal(1)
      expect(l.dayAggregates(200, 249)).to.deep.equal({ debits: [], credits: [], billableReceipts: 0 })
    })

    it('sums past 2^63 exactly', () => {
      const l = ledger()
      const max = 2n ** 63n - 1n
      l.insert([
        receiptsItem('big', 100, [receipt(1, { cost: max }), receipt(2, { cost: max }), receipt(3, { cost: 1n, gameId: 'game-z' })]),
        confirmationItem('big-a', 100, 'sup-a', [1, 2, 3], ADDR_A)
      ])
      expect(l.dayAggregates(100, 149)).to.deep.equal({
        debits: [
          { gameId: 'game-a', amount: 2n * max, receipts: 2 },
          { gameId: 'game-z', amount: 1n, receipts: 1 }
        ],
        credits: [{ supplier: 'sup-a', amount: 2n * max + 1n, receipts: 3 }],
        billableReceipts: 3
      })
    })

    it("the supplier's latest block with an address in the range, ties → smallest, else the latest before", () => {
      const l = ledger()
      l.insert(scenario())
      expect(l.rewardAddress('sup-a', 100, 149)).to.equal(ADDR_A)
      expect(l.rewardAddress('sup-a', 100, 139)).to.equal(ADDR_A_OLD)
      expect(l.rewardAddress('sup-a', 100, 199)).to.equal(ADDR_NEXT_DAY)
      expect(l.rewardAddress('sup-a', 200, 249)).to.equal(ADDR_NEXT_DAY) // none in range → latest before
      expect(l.rewardAddress('sup-a', 0, 98)).to.equal(undefined)
      expect(l.rewardAddress('sup-b', 100, 149)).to.equal(ADDR_B)
      expect(l.rewardAddress('sup-c', 100, 149)).to.equal(undefined)
      expect(l.rewardAddress('nobody', 0, 1000)).to.equal(undefined)
      // stored lowercase whatever the item carried
      l.insert([confirmationItem('mixed', 300, 'sup-m', [], `0x${'AB'.repeat(20)}`)])
      expect(l.rewardAddress('sup-m', 300, 300)).to.equal(`0x${'ab'.repeat(20)}`)
    })

    it('upgrades a version-1 file in place and refuses newer versions', () => {
      const file = path.join(dir, 'v1.db')
      const l = new Ledger({ path: file })
      l.insert(scenario())
      l.close()
      const db = new Database(file)
      db.exec('DROP TABLE supplier_addresses')
      db.pragma('user_version = 1')
      db.close()
      const upgraded = ledger('v1.db')
      expect(upgraded.counts().receipts).to.equal(12)
      expect(upgraded.rewardAddress('sup-a', 100, 149)).to.equal(undefined)
      upgraded.insert([confirmationItem('after-upgrade', 140, 'sup-a', [], ADDR_A)])
      expect(upgraded.rewardAddress('sup-a', 100, 149)).to.equal(ADDR_A)
      upgraded.close()
      const check = new Database(file)
      expect(check.pragma('user_version', { simple: true })).to.equal(2)
      check.pragma('user_version = 3')
      check.close()
      expect(() => new Ledger({ path: file })).to.throw(ConfigError)
    })
  })

  describe('compileDay', () => {
    it('debits per game and credits per reward address over exactly the billable, paid receipts', () => {
      const l = ledger()
      l.insert(scenario())
      const report = compileDay(l, clock, 2)!
      expect(report).to.not.equal(undefined)
      const strip = (r: DayReport) => ({
        ...r,
        debits: r.debits.map(({ proof: _p, ...d }) => d),
        credits: r.credits.map(({ proof: _p, ...c }) => c)
      })
      const debits = [
        { gameId: 'game-a', gameKey: keccak256(stringToHex('game-a')), amount: 100n + 50n + 1_000_000n },
        { gameId: 'game-b', gameKey: keccak256(stringToHex('game-b')), amount: 7n }
      ].sort((a, b) => (a.gameKey < b.gameKey ? -1 : 1))
      expect(strip(report)).to.deep.equal({
        day: 2,
        fromBlock: 100,
        toBlock: 149,
        root: report.root,
        totalDebit: 1_000_157n,
        billableReceipts: 4,
        debits,
        credits: [
          { supplier: 'sup-b', suppliers: ['sup-b'], account: ADDR_B, amount: 50n },
          { supplier: 'sup-a', suppliers: ['sup-a'], account: ADDR_A, amount: 1_000_107n }
        ],
        unpaid: [{ supplier: 'sup-c', amount: 65n, receipts: 2 }]
      })

      // the root and proofs are OpenZeppelin's
      const values: [number, Hex, bigint][] = [
        ...report.debits.map((d): [number, Hex, bigint] => [0, d.gameKey, d.amount]),
        ...report.credits.map((c): [number, Hex, bigint] => [1, accountId(c.account), c.amount])
      ]
      const oz = StandardMerkleTree.of(values, TYPES)
      expect(report.root).to.equal(oz.root)
      for (const [i, v] of values.entries()) {
        const proof = i < report.debits.length ? report.debits[i]!.proof : report.credits[i - report.debits.length]!.proof
        expect(proof).to.deep.equal(oz.getProof(i))
        expect(StandardMerkleTree.verify(report.root, TYPES, v, proof)).to.equal(true)
      }
      expect(accountId(ADDR_A)).to.equal(`0x000000000000000000000000${'a1'.repeat(20)}`)
      expect(gameKey('game-a')).to.equal(keccak256(stringToHex('game-a')))
    })

    it('puts a receipt of the last block of a day in that day, one of the next day’s first block in the next', () => {
      const l = ledger()
      l.insert(scenario())
      const day1 = compileDay(l, clock, 1)!
      expect(day1.totalDebit).to.equal(1n)
      expect(day1.credits.map(c => c.account)).to.deep.equal([ADDR_A_OLD])
      const day3 = compileDay(l, clock, 3)!
      expect(day3).to.deep.include({ fromBlock: 150, toBlock: 199, totalDebit: 2_000_000n, billableReceipts: 1, unpaid: [] })
      expect(day3.credits.map(c => [c.account, c.amount])).to.deep.equal([[ADDR_NEXT_DAY, 2_000_000n]])
      expect(compileDay(l, clock, 2)!.debits.find(d => d.gameId === 'game-a')!.amount).to.equal(1_000_150n)
      expect(compileDay(l, clock, 4)).to.equal(undefined)
      expect(compileDay(l, clock, 0)).to.equal(undefined)
    })

    it('adds up suppliers sharing a reward address; uses an earlier day’s address; drops zero amounts', () => {
      const l = ledger()
      l.insert([
        confirmationItem('old-e', 10, 'sup-e', [], ADDR_B), // day 0 only
        receiptsItem('shared', 100, [
          receipt(1, { supplier: 'sup-d', gameId: 'g1', cost: 10n }),
          receipt(2, { supplier: 'sup-e', gameId: 'g1', cost: 20n }),
          receipt(3, { supplier: 'sup-f', gameId: 'g2', cost: 0n }),
          receipt(4, { supplier: 'sup-d', gameId: 'g3', cost: 0n })
        ]),
        confirmationItem('d', 101, 'sup-d', [1, 4], ADDR_B),
        confirmationItem('e', 101, 'sup-e', [2]),
        confirmationItem('f', 101, 'sup-f', [3], ADDR_A)
      ])
      const report = compileDay(l, clock, 2)!
      expect(report.totalDebit).to.equal(30n)
      expect(report.billableReceipts).to.equal(4)
      expect(report.debits.map(d => [d.gameId, d.amount])).to.deep.equal([['g1', 30n]])
      expect(report.credits.map(c => [c.supplier, c.suppliers, c.account, c.amount])).to.deep.equal([
        ['sup-d', ['sup-d', 'sup-e'], ADDR_B, 30n]
      ])
      expect(report.unpaid).to.deep.equal([])
    })

    it('compiles nothing when every billable receipt is unpaid', () => {
      const l = ledger()
      l.insert([receiptsItem('x', 100, [receipt(1, { supplier: 'sup-c' })]), confirmationItem('c', 100, 'sup-c', [1])])
      expect(l.dayAggregates(100, 149).billableReceipts).to.equal(1)
      expect(compileDay(l, clock, 2)).to.equal(undefined)
    })

    it('gives byte-identical reports whatever the insertion order and batching', () => {
      const items = scenario()
      const a = ledger()
      a.insert(items)
      const want = [1, 2, 3].map(day => encodeReport(compileDay(a, clock, day)!))
      for (const seed of [1, 2, 3, 4, 5]) {
        const b = ledger()
        const mixed = shuffled(items, seed)
        // one item per transaction, in a shuffled order, some repeated
        for (const item of mixed) b.insert([item])
        b.insert(shuffled(items, seed + 100).slice(0, 5))
        expect([1, 2, 3].map(day => encodeReport(compileDay(b, clock, day)!))).to.deep.equal(want)
      }
    })

    it('encodes to canonical JSON and decodes back, checking proofs and sums', () => {
      const l = ledger()
      l.insert(scenario())
      const report = compileDay(l, clock, 2)!
      const text = encodeReport(report)
      const json = JSON.parse(text)
      expect(json.totalDebit).to.equal('1000157')
      expect(json.credits[1].amount).to.equal('1000107')
      expect(json).to.deep.equal(reportToJson(report))
      expect(Object.keys(json)).to.deep.equal([
        'day',
        'fromBlock',
        'toBlock',
        'root',
        'totalDebit',
        'billableReceipts',
        'debits',
        'credits',
        'unpaid'
      ])
      expect(decodeReport(text)).to.deep.equal(report)
      expect(decodeReport(json)).to.deep.equal(report)
      const tampered = { ...json, credits: [json.credits[0], { ...json.credits[1], amount: '1000108' }] }
      expect(() => decodeReport(tampered)).to.throw(InvalidMessageError, /proof/)
      expect(() => decodeReport({ ...json, totalDebit: '1' })).to.throw(InvalidMessageError, /sum/)
      expect(() => decodeReport({ ...json, root: 'nope' })).to.throw(InvalidMessageError, /root/)
      expect(() => decodeReport('{')).to.throw(InvalidMessageError)
    })
  })

  describe('reportDigest', () => {
    const settlement = '0x5FbDB2315678afecb367f032d93F642f64180aa3'
    const root = keccak256(stringToHex('root'))

    it('is the EIP-191 hash of keccak256(abi.encode(domain, chainId, settlement, uint64 day, root, totalDebit))', () => {
      const word = (v: bigint): Hex => numberToHex(v, { size: 32 })
      const inner = keccak256(
        concat([keccak256(stringToHex('gcn/settlement/1')), word(31337n), word(BigInt(settlement)), word(7n), root, word(123_456_789n)])
      )
      expect(reportHash(31337n, settlement, 7, root, 123_456_789n)).to.equal(inner)
      const prefixed = keccak256(concat([stringToHex('\x19Ethereum Signed Message:\n32'), inner]))
      expect(reportDigest(31337n, settlement, 7, root, 123_456_789n)).to.equal(prefixed)
      expect(reportDigest(31337n, settlement, 7n, root, 123_456_789n)).to.equal(prefixed)
      expect(hashMessage({ raw: inner })).to.equal(prefixed)
      expect(reportDigest(1n, settlement, 7, root, 123_456_789n)).to.not.equal(prefixed)
      expect(() => reportDigest(1n, settlement, -1, root, 1n)).to.throw(RangeError)
    })

    it('recovers the signer of personal_sign(reportHash) and of sign(reportDigest)', async () => {
      const account = privateKeyToAccount(`0x${'11'.repeat(32)}`)
      const digest = reportDigest(31337n, settlement, 7, root, 5n)
      const raw = reportHash(31337n, settlement, 7, root, 5n)
      const personal = await account.signMessage({ message: { raw } })
      expect(await recoverAddress({ hash: digest, signature: personal })).to.equal(account.address)
      expect(await recoverMessageAddress({ message: { raw }, signature: personal })).to.equal(account.address)
      expect(await account.sign({ hash: digest })).to.equal(personal)
    })
  })
})
