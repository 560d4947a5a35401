import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { expect } from 'chai'
import { type BlockSummaryRow, Ledger, type LedgerItem, type ReceiptRow } from '../src/ledger.js'
import { blockRoot, confirmationLeaf, spanDigest } from '../src/merkle.js'

const sha = (...parts: (Uint8Array | string)[]): Buffer => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest()
}
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

function taskId(n: number): Uint8Array {
  const b = new Uint8Array(16)
  new DataView(b.buffer).setUint32(12, n)
  b[0] = 0xa0
  return b
}

function receipt(n: number, over: Partial<ReceiptRow> = {}): ReceiptRow {
  const base: ReceiptRow = {
    taskId: taskId(n),
    hash: new Uint8Array(32),
    gameId: 'game-a',
    supplier: 'sup-1',
    distributor: 'dist-1',
    modelId: 'model-x',
    promptTokens: 10,
    completionTokens: 20,
    pricePer1kTokens: 1000n,
    cost: 30n,
    blockHeight: 5,
    verdict: 'unchecked',
    timestampMs: 1_700_000_000_000 + n,
    ...over
  }
  // the leaf is a hash of the receipt's content (a stand-in for the real encoding)
  const { hash: _ignored, ...rest } = base
  const content = JSON.stringify({
    ...rest,
    taskId: hex(rest.taskId),
    pricePer1kTokens: String(rest.pricePer1kTokens),
    cost: String(rest.cost)
  })
  return { ...base, hash: over.hash ?? sha(content) }
}

let envCounter = 0
function receiptsItem(blockHeight: number, receipts: ReceiptRow[], label = `r${envCounter++}`): LedgerItem {
  const envelope = Buffer.from(`envelope:${label}`)
  return { kind: 'receipts', id: sha(envelope), blockHeight, signer: 'dist-1', envelope, receipts }
}
function confirmationItem(blockHeight: number, supplier: string, taskIds: Uint8Array[], label = `c${envCounter++}`): LedgerItem {
  const envelope = Buffer.from(`envelope:${label}`)
  return { kind: 'confirmation', id: sha(envelope), blockHeight, signer: supplier, envelope, taskIds }
}

describe('merkle', () => {
  const leaf = (n: number): Buffer => sha(`leaf-${n}`)
  const sorted = (xs: Buffer[]): Buffer[] => xs.slice().sort(Buffer.compare)

  it('no leaves → empty, one leaf → the leaf', () => {
    expect(blockRoot([])).to.have.length(0)
    const one = leaf(1)
    expect(hex(blockRoot([one]))).to.equal(hex(one))
  })

  it('two leaves are sorted before hashing', () => {
    const [a, b] = sorted([leaf(1), leaf(2)]) as [Buffer, Buffer]
    const want = hex(sha(a, b))
    expect(hex(blockRoot([b, a]))).to.equal(want)
    expect(hex(blockRoot([a, b]))).to.equal(want)
  })

  it('an odd last node is promoted unchanged', () => {
    const [a, b, c] = sorted([leaf(1), leaf(2), leaf(3)]) as [Buffer, Buffer, Buffer]
    expect(hex(blockRoot([c, a, b]))).to.equal(hex(sha(sha(a, b), c)))
    const [p, q, r, s, t] = sorted([leaf(1), leaf(2), leaf(3), leaf(4), leaf(5)]) as [Buffer, Buffer, Buffer, Buffer, Buffer]
    expect(hex(blockRoot([t, s, r, q, p]))).to.equal(hex(sha(sha(sha(p, q), sha(r, s)), t)))
  })

  it('matches a pairwise reference for any number of leaves, and takes leaves of other lengths', () => {
    // the tree as specified: sort, then sha256(left || right) level by level, an odd last node promoted
    const reference = (leaves: Uint8Array[]): string => {
      let level = leaves.slice().sort(Buffer.compare)
      while (level.length > 1) {
        const next: Uint8Array[] = []
        for (let i = 0; i + 1 < level.length; i += 2) next.push(sha(level[i]!, level[i + 1]!))
        if (level.length % 2 === 1) next.push(level[level.length - 1]!)
        level = next
      }
      return hex(level[0]!)
    }
    for (const n of [2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 33, 100, 257]) {
      const leaves = Array.from({ length: n }, (_, i) => leaf(i))
      expect(hex(blockRoot(leaves)), `${n} leaves`).to.equal(reference(leaves))
    }
    const mixed = [leaf(1), Buffer.from('short'), leaf(2).subarray(0, 31), leaf(3)]
    expect(hex(blockRoot(mixed))).to.equal(reference(mixed))
  })

  it('does not mutate its input', () => {
    const input = [leaf(3), leaf(1), leaf(2)]
    const before = input.map(hex)
    blockRoot(input)
    expect(input.map(hex)).to.deep.equal(before)
  })

  it('spanDigest hashes u64 height || u32 count || root in block order', () => {
    const r1 = leaf(1)
    const r2 = leaf(2)
    const head = (h: number, n: number): Buffer => {
      const b = Buffer.alloc(12)
      b.writeBigUInt64BE(BigInt(h), 0)
      b.writeUInt32BE(n, 8)
      return b
    }
    const want = hex(sha(head(7, 3), r1, head(300, 1), r2))
    const blocks = [
      { blockHeight: 300, count: 1, root: r2 },
      { blockHeight: 7, count: 3, root: r1 }
    ]
    expect(hex(spanDigest(blocks))).to.equal(want)
    expect(blocks[0]!.blockHeight).to.equal(300)
    expect(hex(spanDigest([]))).to.equal(hex(sha()))
  })

  it('confirmationLeaf is the tagged hash of supplier and task id', () => {
    const t = taskId(9)
    expect(hex(confirmationLeaf('sup-1', t))).to.equal(hex(sha('gcn/confirmed/1', Buffer.from([0]), 'sup-1', Buffer.from([0]), t)))
    expect(hex(confirmationLeaf('sup-2', t))).to.not.equal(hex(confirmationLeaf('sup-1', t)))
  })
})

describe('Ledger', () => {
  let dir: string
  const open: Ledger[] = []
  const ledger = (name = `l${open.length}.db`): Ledger => {
    const l = new Ledger({ path: path.join(dir, name) })
    open.push(l)
    return l
  }

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcn-ledger-'))
  })
  after(() => {
    for (const l of open) l.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('starts empty', () => {
    const l = ledger()
    expect(l.counts()).to.deep.equal({ envelopes: 0, receipts: 0, confirmations: 0 })
    expect(l.latestBlock()).to.equal(undefined)
    expect(l.blockSummary(3)).to.deep.equal({ blockHeight: 3, count: 0, root: new Uint8Array(0) })
    expect(l.spans(0, 100, 10)).to.deep.equal([])
    expect(l.totals()).to.deep.equal({
      receipts: 0,
      promptTokens: 0,
      completionTokens: 0,
      cost: 0n,
      billableReceipts: 0,
      billableCost: 0n,
      unconfirmedReceipts: 0,
      failedReceipts: 0,
      conflicts: 0
    })
    expect(l.insert([])).to.deep.equal([])
  })

  it('is idempotent by envelope id', () => {
    const l = ledger()
    const r = receiptsItem(5, [receipt(1), receipt(2)])
    const c = confirmationItem(6, 'sup-1', [taskId(1)])
    expect(l.insert([r, c])).to.deep.equal([
      { duplicate: false, conflicts: 0 },
      { duplicate: false, conflicts: 0 }
    ])
    const counts = l.counts()
    const totals = l.totals()
    expect(counts).to.deep.equal({ envelopes: 2, receipts: 2, confirmations: 1 })
    expect(l.insert([c, r, r])).to.deep.equal([
      { duplicate: true, conflicts: 0 },
      { duplicate: true, conflicts: 0 },
      { duplicate: true, conflicts: 0 }
    ])
    expect(l.counts()).to.deep.equal(counts)
    expect(l.totals()).to.deep.equal(totals)
    expect(l.hasEnvelope(r.id)).to.equal(true)
    expect(l.hasEnvelope(sha('nope'))).to.equal(false)
  })

  it('skips a receipt re-batched in another envelope with the same hash', () => {
    const l = ledger()
    l.insert([receiptsItem(5, [receipt(1), receipt(2)]), confirmationItem(5, 'sup-1', [taskId(1), taskId(2)])])
    const before = l.totals()
    const out = l.insert([receiptsItem(6, [receipt(2), receipt(1)])])
    expect(out).to.deep.equal([{ duplicate: false, conflicts: 0 }])
    expect(l.totals()).to.deep.equal(before)
    expect(l.counts()).to.deep.equal({ envelopes: 3, receipts: 2, confirmations: 2 })
    expect(l.mismatches()).to.deep.equal([])
    // a confirmation repeated in another envelope is deduped too
    l.insert([confirmationItem(7, 'sup-1', [taskId(1)])])
    expect(l.counts().confirmations).to.equal(2)
  })

  it('records a conflicting receipt: counted, status conflict, not billable, reported', () => {
    const l = ledger()
    const first = receipt(1, { cost: 30n })
    const other = receipt(1, { cost: 9999n })
    expect(hex(first.hash)).to.not.equal(hex(other.hash))
    l.insert([receiptsItem(5, [first, receipt(2)]), confirmationItem(5, 'sup-1', [taskId(1), taskId(2)])])
    expect(l.totals().billableReceipts).to.equal(2)

    expect(l.insert([receiptsItem(6, [other, receipt(2)])])).to.deep.equal([{ duplicate: false, conflicts: 1 }])
    // the receipt with the smaller hash stays, whichever came first
    const kept = Buffer.compare(first.hash, other.hash) < 0 ? first : other
    const rows = l.receipts()
    expect(rows).to.have.length(2)
    expect(rows[0]!.cost).to.equal(kept.cost)
    expect(rows[0]!.status).to.equal('conflict')
    expect(rows[1]!.status).to.equal('billable')
    const t = l.totals()
    expect(t.receipts).to.equal(2)
    expect(t.conflicts).to.equal(1)
    expect(t.billableReceipts).to.equal(1)
    expect(t.billableCost).to.equal(receipt(2).cost)
    expect(l.mismatches()).to.deep.equal([{ kind: 'conflict', taskId: hex(taskId(1)), blockHeight: kept === first ? 5 : 6 }])
    // the same conflicting receipt again still counts as a conflict but adds no row
    expect(l.insert([receiptsItem(7, [other])])).to.deep.equal([{ duplicate: false, conflicts: 1 }])
    expect(l.totals().conflicts).to.equal(1)
    expect(l.mismatches()).to.have.length(1)
  })

  it('ends with the same rows and roots whatever order conflicting receipts arrive in', () => {
    const a = ledger()
    const b = ledger()
    const one = receiptsItem(5, [receipt(1, { cost: 30n })])
    const two = receiptsItem(5, [receipt(1, { cost: 9999n })])
    a.insert([one])
    a.insert([two])
    b.insert([two])
    b.insert([one])
    expect(hex(a.blockSummary(5).root)).to.equal(hex(b.blockSummary(5).root))
    expect(a.receipts()[0]!.cost).to.equal(b.receipts()[0]!.cost)
    expect(a.totals()).to.deep.equal(b.totals())
  })

  it('counts conflicts within one insert call and one envelope', () => {
    const l = ledger()
    const out = l.insert([receiptsItem(5, [receipt(1), receipt(1, { cost: 1n })]), receiptsItem(5, [receipt(1, { cost: 2n })])])
    expect(out).to.deep.equal([
      { duplicate: false, conflicts: 1 },
      { duplicate: false, conflicts: 1 }
    ])
    expect(l.counts().receipts).to.equal(1)
  })

  it('bills only receipts confirmed by their own supplier', () => {
    const l = ledger()
    l.insert([
      receiptsItem(5, [
        receipt(1, { supplier: 'sup-1' }),
        receipt(2, { supplier: 'sup-1' }),
        receipt(3, { supplier: 'sup-2', verdict: 'verified' }),
        receipt(4, { supplier: 'sup-2', verdict: 'failed' })
      ]),
      confirmationItem(6, 'sup-1', [taskId(1)]),
      confirmationItem(6, 'sup-2', [taskId(2), taskId(3), taskId(4), taskId(5)])
    ])
    const status = Object.fromEntries(l.receipts().map(r => [hex(r.taskId), r.status]))
    expect(status).to.deep.equal({
      [hex(taskId(1))]: 'billable',
      [hex(taskId(2))]: 'unconfirmed',
      [hex(taskId(3))]: 'billable',
      [hex(taskId(4))]: 'failed'
    })
    const t = l.totals()
    expect(t).to.include({ receipts: 4, billableReceipts: 2, unconfirmedReceipts: 1, failedReceipts: 1, conflicts: 0 })
    expect(t.billableCost).to.equal(60n)
    expect(t.cost).to.equal(120n)

    expect(l.mismatches()).to.deep.equal([
      { kind: 'supplier-mismatch', taskId: hex(taskId(2)), supplier: 'sup-1', confirmedBy: 'sup-2', blockHeight: 5 },
      { kind: 'unreceipted', taskId: hex(taskId(5)), supplier: 'sup-2', blockHeight: 6 }
    ])
    // once sup-1 confirms task 2 itself, it is billable and the mismatch is gone
    l.insert([confirmationItem(7, 'sup-1', [taskId(2)])])
    expect(l.receipts().find(r => hex(r.taskId) === hex(taskId(2)))!.status).to.equal('billable')
    expect(l.mismatches().map(m => m.kind)).to.deep.equal(['unreceipted'])
  })

  it('reports unconfirmed receipts only before settledBefore, and filters mismatches', () => {
    const l = ledger()
    l.insert([
      receiptsItem(5, [receipt(1, { blockHeight: 5 }), receipt(2, { blockHeight: 8, gameId: 'game-b', supplier: 'sup-2' })]),
      confirmationItem(9, 'sup-3', [taskId(7)])
    ])
    expect(l.mismatches().map(m => [m.kind, m.blockHeight])).to.deep.equal([
      ['unconfirmed', 5],
      ['unconfirmed', 8],
      ['unreceipted', 9]
    ])
    expect(l.mismatches({ settledBefore: 8 }).map(m => [m.kind, m.blockHeight])).to.deep.equal([
      ['unconfirmed', 5],
      ['unreceipted', 9]
    ])
    expect(l.mismatches({ gameId: 'game-b' })).to.deep.equal([
      { kind: 'unconfirmed', taskId: hex(taskId(2)), supplier: 'sup-2', blockHeight: 8 }
    ])
    expect(l.mismatches({ supplier: 'sup-3' }).map(m => m.kind)).to.deep.equal(['unreceipted'])
    expect(l.mismatches({ fromBlock: 6, toBlock: 8 }).map(m => m.blockHeight)).to.deep.equal([8])
    expect(l.mismatches({ limit: 1 })).to.have.length(1)
  })

  it('computes totals by game, supplier and block range', () => {
    const l = ledger()
    const rs = [
      receipt(1, { gameId: 'g1', supplier: 's1', blockHeight: 1, cost: 10n, promptTokens: 1, completionTokens: 2 }),
      receipt(2, { gameId: 'g1', supplier: 's2', blockHeight: 2, cost: 20n, promptTokens: 3, completionTokens: 4 }),
      receipt(3, { gameId: 'g2', supplier: 's1', blockHeight: 3, cost: 40n, promptTokens: 5, completionTokens: 6 }),
      receipt(4, { gameId: 'g2', supplier: 's2', blockHeight: 4, cost: 80n, promptTokens: 7, completionTokens: 8 })
    ]
    l.insert([receiptsItem(4, rs), confirmationItem(5, 's1', [taskId(1), taskId(3)])])
    expect(l.totals().cost).to.equal(150n)
    expect(l.totals({ gameId: 'g1' })).to.include({ receipts: 2, promptTokens: 4, completionTokens: 6 })
    expect(l.totals({ gameId: 'g1' }).cost).to.equal(30n)
    const s1 = l.totals({ supplier: 's1' })
    expect(s1).to.include({ receipts: 2, billableReceipts: 2, unconfirmedReceipts: 0 })
    expect(s1.billableCost).to.equal(50n)
    const s2 = l.totals({ supplier: 's2' })
    expect(s2).to.include({ receipts: 2, billableReceipts: 0, unconfirmedReceipts: 2 })
    expect(s2.billableCost).to.equal(0n)
    expect(l.totals({ fromBlock: 2, toBlock: 3 }).cost).to.equal(60n)
    expect(l.totals({ fromBlock: 2, toBlock: 3, gameId: 'g2', supplier: 's1' }).cost).to.equal(40n)
    expect(l.totals({ fromBlock: 10 }).receipts).to.equal(0)
    // each receipt has exactly one status
    const t = l.totals()
    expect(t.billableReceipts + t.unconfirmedReceipts + t.failedReceipts + t.conflicts).to.equal(t.receipts)
  })

  it('sums costs beyond 64 bits without overflowing', () => {
    const l = ledger()
    const big = 2n ** 62n + 7n
    l.insert([receiptsItem(1, [receipt(1, { cost: big }), receipt(2, { cost: big }), receipt(3, { cost: big })])])
    l.insert([confirmationItem(1, 'sup-1', [taskId(1), taskId(2)])])
    const t = l.totals()
    expect(t.cost).to.equal(3n * big)
    expect(t.billableCost).to.equal(2n * big)
    expect(t.receipts).to.equal(3)
    expect(l.receipts()[0]!.cost).to.equal(big)
  })

  it('round-trips receipt rows, ordered by block then task id, with paging', () => {
    const l = ledger()
    const rs = [receipt(3, { blockHeight: 2 }), receipt(1, { blockHeight: 2 }), receipt(2, { blockHeight: 1, verdict: 'verified' })]
    l.insert([receiptsItem(2, rs)])
    const rows = l.receipts()
    expect(rows.map(r => hex(r.taskId))).to.deep.equal([taskId(2), taskId(1), taskId(3)].map(hex))
    const { status, ...row } = rows[0]!
    const want = rs[2]!
    expect(status).to.equal('unconfirmed')
    expect({ ...row, taskId: hex(row.taskId), hash: hex(row.hash) }).to.deep.equal({
      ...want,
      taskId: hex(want.taskId),
      hash: hex(want.hash)
    })
    expect(l.receipts({ limit: 1, offset: 1 }).map(r => hex(r.taskId))).to.deep.equal([hex(taskId(1))])
    expect(l.receipts({ limit: 0 })).to.deep.equal([])
    expect(l.receipts({ fromBlock: 2, supplier: 'sup-1', gameId: 'game-a' })).to.have.length(2)
  })

  it('stores envelopes and answers block queries', () => {
    const l = ledger()
    const a = receiptsItem(10, [receipt(1, { blockHeight: 9 })])
    const b = confirmationItem(10, 'sup-1', [taskId(1)])
    const c = receiptsItem(14, [receipt(1, { blockHeight: 9 })]) // duplicate receipt, envelope-only block
    l.insert([a, b, c])
    expect(l.envelopeIds(10).map(hex)).to.deep.equal([a.id, b.id].map(hex).sort())
    expect(l.envelopeIds(11)).to.deep.equal([])
    expect(l.envelopes([c.id, sha('unknown'), a.id]).map(e => Buffer.from(e).toString())).to.deep.equal([
      Buffer.from(c.envelope).toString(),
      Buffer.from(a.envelope).toString()
    ])
    expect(l.blocksWithData(0, 100)).to.deep.equal([9, 10, 14])
    expect(l.blocksWithData(10, 13)).to.deep.equal([10])
    expect(l.latestBlock()).to.equal(14)
    expect(l.blockSummary(9).count).to.equal(1)
    expect(l.blockSummary(10).count).to.equal(1)
    expect(l.blockSummary(14).count).to.equal(0)
    expect(l.spans(0, 100, 100).map(s => [s.blockHeight, s.count])).to.deep.equal([[0, 2]])
  })

  it('rolls back the whole call when one item fails', () => {
    const l = ledger()
    const good = receiptsItem(1, [receipt(1, { blockHeight: 1 })])
    const bad = receiptsItem(1, [receipt(2, { blockHeight: 1, gameId: null as unknown as string })])
    expect(() => l.insert([good, bad])).to.throw()
    expect(l.counts()).to.deep.equal({ envelopes: 0, receipts: 0, confirmations: 0 })
    expect(l.blockSummary(1).count).to.equal(0)
    l.insert([good])
    expect(l.blockSummary(1).count).to.equal(1)
  })

  it('gives identical summaries and spans whatever the order and grouping of inserts', () => {
    // deterministic pseudo-random shuffle
    let seed = 12345
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    const items: LedgerItem[] = []
    for (let e = 0; e < 40; e++) {
      const block = 3 + (e % 17) * 3
      const rs: ReceiptRow[] = []
      for (let i = 0; i < 5; i++) {
        const n = e * 5 + i
        rs.push(receipt(n, { blockHeight: block - (i % 2), supplier: `sup-${n % 3}`, gameId: `g${n % 2}`, cost: BigInt(n) }))
      }
      items.push(receiptsItem(block, rs, `det-r${e}`))
      // confirmations from the receipts' suppliers, plus a re-batched copy of one receipt
      const bySup = new Map<string, Uint8Array[]>()
      for (const r of rs) bySup.set(r.supplier, [...(bySup.get(r.supplier) ?? []), r.taskId])
      for (const [sup, ids] of bySup) items.push(confirmationItem(block + 1, sup, ids, `det-c${e}-${sup}`))
      items.push(receiptsItem(block + 2, [rs[0]!], `det-rb${e}`))
    }
    const shuffled = items.slice()
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1))
      ;[shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!]
    }
    const l1 = ledger()
    const l2 = ledger()
    l1.insert(items)
    for (let i = 0; i < shuffled.length; i += 7) l2.insert(shuffled.slice(i, i + 7))
    l2.insert(shuffled.slice(0, 10)) // replays change nothing

    const dump = (l: Ledger): unknown => {
      const blocks = l.blocksWithData(0, 1000)
      const sums = blocks.map(h => l.blockSummary(h)).map(s => [s.blockHeight, s.count, hex(s.root)])
      const spans = [1, 4, 10, 64].map(span => l.spans(2, 40, span).map((s: BlockSummaryRow) => [s.blockHeight, s.count, hex(s.root)]))
      return { blocks, sums, spans, counts: l.counts(), totals: l.totals(), mismatches: l.mismatches() }
    }
    const d1 = dump(l1)
    expect(dump(l2)).to.deep.equal(d1)
    expect(l1.totals().billableReceipts).to.equal(200)

    // spans are span-aligned and clipped, with the sum of counts and the digest of their blocks
    const spans = l1.spans(2, 40, 10)
    expect(spans.map(s => s.blockHeight)).to.deep.equal([2, 10, 20, 30, 40])
    const members = [2, 3, 4, 5, 6, 7, 8, 9].map(h => l1.blockSummary(h)).filter(s => s.count > 0)
    expect(spans[0]!.count).to.equal(members.reduce((a, s) => a + s.count, 0))
    expect(hex(spans[0]!.root)).to.equal(hex(spanDigest(members)))
    // a block summary's root covers receipt hashes and confirmation leaves
    const rows = l1.receipts({ fromBlock: 5, toBlock: 5, limit: 10_000 })
    const confirmations = items.filter(i => i.kind === 'confirmation' && i.blockHeight === 5)
    const leaves = [
      ...rows.map(r => r.hash),
      ...confirmations.flatMap(c => (c.kind === 'confirmation' ? c.taskIds.map(t => confirmationLeaf(c.signer, t)) : []))
    ]
    expect(l1.blockSummary(5).count).to.equal(leaves.length)
    expect(hex(l1.blockSummary(5).root)).to.equal(hex(blockRoot(leaves)))
  })

  it('invalidates cached summaries when an insert touches the block', () => {
    const l = ledger()
    l.insert([receiptsItem(4, [receipt(1, { blockHeight: 4 })])])
    const s1 = l.blockSummary(4)
    const span1 = l.spans(0, 9, 10)
    expect(s1.count).to.equal(1)
    expect(l.blockSummary(4)).to.deep.equal(s1)
    l.insert([receiptsItem(4, [receipt(2, { blockHeight: 4 })])])
    const s2 = l.blockSummary(4)
    expect(s2.count).to.equal(2)
    expect(hex(s2.root)).to.not.equal(hex(s1.root))
    l.insert([confirmationItem(4, 'sup-1', [taskId(1)])])
    const s3 = l.blockSummary(4)
    expect(s3.count).to.equal(3)
    expect(hex(s3.root)).to.not.equal(hex(s2.root))
    const span2 = l.spans(0, 9, 10)
    expect(span2[0]!.count).to.equal(3)
    expect(hex(span2[0]!.root)).to.not.equal(hex(span1[0]!.root))
    // an empty block that later gets data
    expect(l.blockSummary(8).count).to.equal(0)
    l.insert([confirmationItem(8, 'sup-1', [taskId(2)])])
    expect(l.blockSummary(8).count).to.equal(1)
  })

  it('answers a summary computed up to maxStaleMs ago for a block changed since, and a fresh one otherwise', async () => {
    const l = ledger()
    l.insert([receiptsItem(6, [receipt(1, { blockHeight: 6 })])])
    const s1 = l.blockSummary(6)
    l.insert([receiptsItem(6, [receipt(2, { blockHeight: 6 })])])
    // within the window: the summary of before the insert, for blockSummary and spans alike
    expect(l.blockSummary(6, 60_000)).to.deep.equal(s1)
    expect(l.spans(0, 9, 10, { fromBlock: 6, maxMs: 60_000 })[0]!.count).to.equal(1)
    // blocks before stale.fromBlock are always exact
    expect(l.spans(0, 9, 10, { fromBlock: 7, maxMs: 60_000 })[0]!.count).to.equal(2)
    // exact callers always see the change (and the fresh summary is cached again)
    const s2 = l.blockSummary(6)
    expect(s2.count).to.equal(2)
    expect(l.blockSummary(6, 60_000)).to.deep.equal(s2)
    expect(l.spans(0, 9, 10)[0]!.count).to.equal(2)
    // past the window: recomputed
    l.insert([receiptsItem(6, [receipt(3, { blockHeight: 6 })])])
    await new Promise(resolve => setTimeout(resolve, 5))
    expect(l.blockSummary(6, 1).count).to.equal(3)
    // a block never summarised is computed whatever the window
    l.insert([receiptsItem(7, [receipt(4, { blockHeight: 7 })])])
    expect(l.blockSummary(7, 60_000).count).to.equal(1)
  })

  it('sums a block with receipts and confirmations as blockRoot over all its leaves', () => {
    const l = ledger()
    const rs = [3, 1, 2].map(n => receipt(n, { blockHeight: 9 }))
    l.insert([receiptsItem(9, rs), confirmationItem(9, 'sup-2', [taskId(7), taskId(8)])])
    const leaves = [...rs.map(r => r.hash), confirmationLeaf('sup-2', taskId(7)), confirmationLeaf('sup-2', taskId(8))]
    const s = l.blockSummary(9)
    expect(s.count).to.equal(5)
    expect(hex(s.root)).to.equal(hex(blockRoot(leaves)))
  })

  it('keeps everything across close and reopen', () => {
    const file = 'reopen.db'
    const l = new Ledger({ path: path.join(dir, file) })
    const r = receiptsItem(3, [receipt(1, { blockHeight: 3 }), receipt(2, { blockHeight: 3 })])
    l.insert([r, confirmationItem(3, 'sup-1', [taskId(1)])])
    l.insert([receiptsItem(3, [receipt(1, { blockHeight: 3, cost: 5n })])])
    const before = {
      counts: l.counts(),
      totals: l.totals(),
      summary: hex(l.blockSummary(3).root),
      mismatches: l.mismatches(),
      latest: l.latestBlock()
    }
    l.close()
    l.close()
    const again = ledger(file)
    expect({
      counts: again.counts(),
      totals: again.totals(),
      summary: hex(again.blockSummary(3).root),
      mismatches: again.mismatches(),
      latest: again.latestBlock()
    }).to.deep.equal(before)
    expect(again.insert([r])).to.deep.equal([{ duplicate: true, conflicts: 0 }])
    expect(again.envelopes([r.id]).map(e => Buffer.from(e).toString())).to.deep.equal([Buffer.from(r.envelope).toString()])
  })

  it('works in memory', () => {
    const l = new Ledger({ path: ':memory:' })
    l.insert([receiptsItem(1, [receipt(1)])])
    expect(l.counts().receipts).to.equal(1)
    l.close()
  })

  it('rejects a bad span or height', () => {
    const l = ledger()
    expect(() => l.spans(0, 10, 0)).to.throw(/span/)
    expect(() => l.blockSummary(-1)).to.throw(/block height/)
  })
})
