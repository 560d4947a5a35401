import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BlockClock, createGcnNode, type GcnNode, ProofVerdict, RegistryClient, silentLogger } from '@gcn/core'
import { encodeDaySignatures, GCN_SETTLEMENT_ABI, gameKey, LEAF_DEBIT, reportDigest, SettlementTree } from '@gcn/registry'
import Database from 'better-sqlite3'
import { expect } from 'chai'
import type { Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { type Network, startNetwork } from './helpers/network.js'
import { killAll, waitFor } from './helpers/procs.js'
import { type ClockSettings, makeParty, type Party, startBootstrap } from './helpers/registry.js'
import {
  type ExpectedDay,
  expectDay,
  freshDay,
  makeRegistryIdentities,
  makeSupplier,
  type ReceiptPlan,
  type RegistryIdentity,
  readyBlock,
  runClaim,
  type SettlementParams,
  type SettlingRegistry,
  seededRandom,
  startSettlingRegistries,
  startTestChain,
  submitterSchedule,
  type TestChain,
  type TestSupplier,
  untilBlock,
  writeReceipts
} from './helpers/settlement.js'

/** 200 ms blocks, 2 s days; a day is compiled 8 blocks after it ends, submitter ranks 1 s apart. */
const BLOCK_MS = 200
const BLOCKS_PER_DAY = 10
const SETTLE: SettlementParams = { acceptBlocksBehind: 5, graceBlocks: 2, staggerBlocks: 5 }
const STAGGER = SETTLE.staggerBlocks
const GAMES = ['game-a', 'game-b'] as const
const DEPOSIT = 10n ** 24n
const RANDOM_DAYS = 20
const SEED = 0x5e771e
const KILL_PROBABILITY = 0.6

describe('daily settlement (real processes: bootstrap + 3 settling registries; chain in-process)', function () {
  this.timeout(180_000)

  let dir: string
  let clockSettings: ClockSettings
  let clock: BlockClock
  let ids: RegistryIdentity[]
  let distributor: Party
  let suppliers: TestSupplier[]
  let chain: TestChain | undefined
  let registries: SettlingRegistry[] = []
  let node: GcnNode | undefined
  let client: RegistryClient | undefined

  const byPeerId = (peerId: string): SettlingRegistry => registries.find(r => r.peerId === peerId)!
  const schedule = (day: number): SettlingRegistry[] =>
    submitterSchedule(
      ids.map(i => i.peerId),
      day
    ).map(byPeerId)
  /** Milliseconds from now until `height` starts, plus `slackMs`: a deadline for something due at that block. */
  const msUntil = (height: number, slackMs = 10_000): number => Math.max(0, clock.blockStartMs(height) - Date.now()) + slackMs
  const waitPosted = (day: number, byBlock: number) =>
    waitFor(
      `day ${day} posted on chain`,
      async () => {
        const events = await chain!.dayPosted(day)
        return events.length > 0 ? events : undefined
      },
      msUntil(byBlock),
      50
    )
  const allConnected = async (): Promise<boolean> => {
    if (!registries.every(r => r.up)) return false
    try {
      const statuses = await Promise.all(registries.map(r => r.status()))
      return statuses.every(s => s.peers.length === 2 && s.peers.every(p => p.connected))
    } catch {
      return false
    }
  }
  const plan = (gameId: string, supplier: TestSupplier, extra: Partial<ReceiptPlan> = {}): ReceiptPlan => ({ gameId, supplier, ...extra })
  const write = (plans: ReceiptPlan[]) => writeReceipts({ client: client!, clock, distributor, plans })

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gcn-settlement-'))
    ids = await makeRegistryIdentities(dir, 3)
    distributor = await makeParty(join(dir, 'distributor', 'peer.key'))
    suppliers = await Promise.all([1, 2].map(i => makeSupplier(join(dir, `supplier-${i}`))))
    chain = await startTestChain({
      signers: ids.map(i => i.signer),
      threshold: 2,
      fund: [...ids.map(i => i.signer), ...suppliers.map(s => s.rewardAddress)]
    })
    for (const game of GAMES) await chain.deposit(game, DEPOSIT)
    const bootstrap = await startBootstrap(join(dir, 'bootstrap', 'peer.key'))
    clockSettings = { genesisMs: Date.now(), blockMs: BLOCK_MS, blocksPerDay: BLOCKS_PER_DAY }
    clock = new BlockClock(clockSettings)
    registries = await startSettlingRegistries({
      identities: ids,
      bootstrapAddr: bootstrap.addr,
      distributors: [distributor.peerId],
      clock: clockSettings,
      settlement: SETTLE,
      rpcUrl: chain.rpcUrl,
      settlementAddress: chain.settlement,
      quorum: 2
    })
    // The test process is the distributor and the suppliers.
    node = await createGcnNode({
      role: 'distributor',
      privateKey: distributor.privateKey,
      profile: 'local',
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [bootstrap.addr]
    })
    await node.start()
    client = new RegistryClient({ registries: registries.map(r => r.addr), ackTimeoutMs: 4_000 }, { node, logger: silentLogger })
    await waitFor('every registry connected to both others', allConnected, 30_000, 100)
    for (const r of registries) expect((await r.status()).settlement?.signer.toLowerCase()).to.equal(r.signer.toLowerCase())
  })

  after(async () => {
    client?.close()
    await node?.stop().catch(() => undefined)
    await killAll()
    await chain?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('settles a day: one DayPosted, deposits drop by exactly the debits, each supplier claims exactly its earnings once', async () => {
    const [s1, s2] = suppliers as [TestSupplier, TestSupplier]
    const depositsBefore = await Promise.all(GAMES.map(g => chain!.deposits(g)))
    const day = await freshDay(clock)
    const { blockHeight, entries } = await write([
      plan('game-a', s1),
      plan('game-a', s2, { verdict: ProofVerdict.VERIFIED }),
      plan('game-a', s1, { verdict: ProofVerdict.VERIFIED }),
      plan('game-b', s1),
      plan('game-b', s2),
      plan('game-b', s2, { verdict: ProofVerdict.VERIFIED }),
      // not billable: a failed proof, and a receipt its supplier never confirmed
      plan('game-a', s1, { verdict: ProofVerdict.FAILED }),
      plan('game-b', s2, { confirmed: false })
    ])
    expect(clock.day(blockHeight)).to.equal(day)
    const expected = expectDay(day, entries)
    for (const g of GAMES) expect((expected.debits.get(g) ?? 0n) > 0n, `${g} owes something`).to.equal(true)
    for (const s of suppliers)
      expect((expected.credits.get(s.rewardAddress.toLowerCase()) ?? 0n) > 0n, 'a supplier earned something').to.equal(true)

    const ready = readyBlock(clock, SETTLE, day)
    const [posted] = await waitPosted(day, ready + 3 * STAGGER)
    expect(posted!.root).to.equal(expected.root)
    expect(posted!.totalDebit).to.equal(expected.totalDebit)
    expect(ids.map(i => i.signer.toLowerCase())).to.include(posted!.submitter.toLowerCase())

    // The poster applies every debit: each game's deposit drops by exactly its billable cost.
    await waitFor(
      'both debits applied',
      async () =>
        (await Promise.all(GAMES.map(g => chain!.deposits(g)))).every((d, i) => d === depositsBefore[i]! - expected.debits.get(GAMES[i]!)!),
      10_000,
      100
    )
    for (const g of GAMES) expect(await chain!.debited(day, g), g).to.equal(true)

    // Every peer compiled the same report, none raised an alarm.
    for (const r of registries) {
      const d = await waitFor(`registry ${r.index + 1} to see day ${day} posted`, async () => {
        const state = await r.settlementDay(day)
        return state?.posted === true ? state : undefined
      })
      expect(d.alarm, `registry ${r.index + 1}`).to.equal(null)
      expect(d.report?.root, `registry ${r.index + 1}`).to.equal(expected.root)
      expect(d.report?.totalDebit).to.equal(expected.totalDebit.toString())
    }

    // gcn supplier claim pays each reward address exactly its credit, from any registry's proof.
    for (const [i, s] of suppliers.entries()) {
      const before = await chain!.balanceOf(s.rewardAddress)
      const claim = await runClaim({
        registryUrl: registries[i]!.url,
        rpcUrl: chain!.rpcUrl,
        settlement: chain!.settlement,
        day,
        evmKeyFile: s.evmKeyFile
      })
      expect(claim.code, claim.stderr).to.equal(0)
      const credit = expected.credits.get(s.rewardAddress.toLowerCase())!
      expect(claim.stdout).to.include(`claimed ${credit} for`)
      expect((await chain!.balanceOf(s.rewardAddress)) - before, `supplier ${i + 1}'s earnings`).to.equal(credit)
    }
    // A second claim for the same day is refused on chain and pays nothing.
    const before = await chain!.balanceOf(s1.rewardAddress)
    const again = await runClaim({
      registryUrl: registries[2]!.url,
      rpcUrl: chain!.rpcUrl,
      settlement: chain!.settlement,
      day,
      evmKeyFile: s1.evmKeyFile
    })
    expect(again.code, again.stdout).to.not.equal(0)
    expect(again.stderr).to.match(/AlreadyClaimed/)
    expect(await chain!.balanceOf(s1.rewardAddress)).to.equal(before)

    // Every rank's turn has passed: still exactly one post.
    await untilBlock(clock, ready + 2 * STAGGER + 2)
    expect(await chain!.dayPosted(day)).to.have.length(1)
  })

  it('fails over from a SIGKILLed rank-0 submitter to rank 1 within its delay; 20 days with random submitter kills each post once with the honest root', async () => {
    const [s1, s2] = suppliers as [TestSupplier, TestSupplier]
    const depositsBefore = await Promise.all(GAMES.map(g => chain!.deposits(g)))
    const expected = new Map<number, ExpectedDay>()

    // --- One day: rank 0 dies at the day boundary, rank 1 posts at its turn.
    const day = await freshDay(clock)
    const { entries } = await write([plan('game-a', s1), plan('game-b', s2), plan('game-a', s2)])
    expected.set(day, expectDay(day, entries))
    const [rank0, rank1] = schedule(day) as [SettlingRegistry, SettlingRegistry, SettlingRegistry]
    await untilBlock(clock, clock.firstBlockOfDay(day + 1))
    await rank0.kill()
    expect(await chain!.dayPosted(day), 'nothing posted before rank 0 died').to.have.length(0)
    const ready = readyBlock(clock, SETTLE, day)
    const [posted] = await waitPosted(day, ready + 3 * STAGGER)
    const seenAt = clock.blockHeight()
    expect(posted!.submitter.toLowerCase(), 'rank 1 posted').to.equal(rank1.signer.toLowerCase())
    expect(seenAt, 'not before rank 1’s turn').to.be.at.least(ready + STAGGER)
    expect(seenAt, 'before rank 2’s turn').to.be.below(ready + 2 * STAGGER)
    expect(posted!.root).to.equal(expected.get(day)!.root)
    await rank0.start()
    const seen = await waitFor(`the restarted rank 0 to see day ${day} posted`, async () => {
      const state = await rank0.settlementDay(day)
      return state?.posted === true ? state : undefined
    })
    expect(seen.postedBy).to.equal('another')
    expect(seen.alarm).to.equal(null)
    expect(seen.report?.root).to.equal(expected.get(day)!.root)
    await untilBlock(clock, ready + 2 * STAGGER + 2)
    expect(await chain!.dayPosted(day), `day ${day} posted once`).to.have.length(1)
    await waitFor('the restarted registry reconnected', allConnected, 20_000, 100)

    // --- 20 days: a few receipts each; at each day's ready block, maybe SIGKILL its first submitter.
    const rng = seededRandom(SEED)
    const first = await freshDay(clock)
    const last = first + RANDOM_DAYS - 1
    const kills: Array<{ day: number; registry: number }> = []
    const skipped: number[] = []
    const restarts: Promise<void>[] = []
    // The honest report of each day, read from the live peers while they still serve it (a settler
    // only serves the days it compiled since it started, and after a restart it looks back 3 days).
    type Served = { registry: number; root: Hex | undefined; alarm: string | null }
    const served = new Map<number, Served[]>()
    const capture = async (upTo: number): Promise<void> => {
      for (let x = first; x <= upTo; x++) {
        if (served.has(x)) continue
        const states: Served[] = []
        for (const r of registries) {
          if (!r.up) continue
          const s = await r.settlementDay(x).catch(() => undefined)
          if (s !== undefined) states.push({ registry: r.index + 1, root: s.report?.root, alarm: s.alarm })
        }
        if (states.length > 0) served.set(x, states)
      }
    }
    for (let d = first; d <= last + 1; d++) {
      await untilBlock(clock, clock.firstBlockOfDay(d))
      await capture(Math.min(d - 2, last))
      if (d <= last) {
        const plans = Array.from({ length: 1 + Math.floor(rng() * 3) }, () =>
          plan(GAMES[rng() < 0.5 ? 0 : 1]!, rng() < 0.5 ? s1 : s2, {
            verdict: rng() < 0.3 ? ProofVerdict.VERIFIED : ProofVerdict.UNCHECKED
          })
        )
        const written = await write(plans)
        expect(clock.day(written.blockHeight), `day ${d}'s receipts landed in day ${d}`).to.equal(d)
        expected.set(d, expectDay(d, written.entries))
      }
      const prev = d - 1
      if (prev < first) continue
      // Right before the previous day's first turn: its rank 0 dies (when every peer is up, so a quorum stays).
      await untilBlock(clock, readyBlock(clock, SETTLE, prev) - 1)
      if (rng() >= KILL_PROBABILITY) continue
      if (!(await allConnected())) {
        skipped.push(prev)
        continue
      }
      const victim = schedule(prev)[0]!
      await victim.kill()
      kills.push({ day: prev, registry: victim.index + 1 })
      // ... and comes back a little later with the same arguments, while the days go on.
      const restart = victim.start()
      restart.catch(() => undefined)
      restarts.push(restart)
    }
    await Promise.all(restarts)
    console.log(
      `      ${kills.length} kills (${kills.map(k => `day ${k.day}: registry ${k.registry}`).join(', ')}); ${skipped.length} skipped while a peer was restarting`
    )
    expect(kills.length, 'submitters killed').to.be.at.least(4)

    const lastReady = readyBlock(clock, SETTLE, last)
    await waitFor(
      `all ${RANDOM_DAYS} days posted`,
      async () => {
        for (let d = first; d <= last; d++) if ((await chain!.dayPosted(d)).length === 0) return false
        return true
      },
      msUntil(lastReady + 3 * STAGGER, 20_000),
      200
    )
    await untilBlock(clock, lastReady + 2 * STAGGER + 2)
    for (let d = first; d <= last; d++) {
      const events = await chain!.dayPosted(d)
      expect(events, `DayPosted events of day ${d}`).to.have.length(1)
      const want = expected.get(d)!
      expect(events[0]!.root, `day ${d}'s root`).to.equal(want.root)
      expect(events[0]!.totalDebit, `day ${d}'s total`).to.equal(want.totalDebit)
    }
    // ... and every live peer that served a day served the honest report, without an alarm: a peer that was
    // down while receipts arrived compiles (or serves) a day only after it caught up by anti-entropy.
    await capture(last)
    for (let d = first; d <= last; d++) {
      const states = served.get(d) ?? []
      expect(states.length, `live peers that served day ${d}`).to.be.at.least(1)
      for (const s of states) {
        expect(s.root, `registry ${s.registry}'s report of day ${d}`).to.equal(expected.get(d)!.root)
        expect(s.alarm, `registry ${s.registry}'s alarm on day ${d}`).to.equal(null)
      }
    }
    // Every day's debits were applied, once.
    const debitOf = (g: string): bigint => [...expected.values()].reduce((sum, e) => sum + (e.debits.get(g) ?? 0n), 0n)
    await waitFor(
      'every debit applied',
      async () =>
        (await Promise.all(GAMES.map(g => chain!.deposits(g)))).every((dep, i) => dep === depositsBefore[i]! - debitOf(GAMES[i]!)),
      10_000,
      100
    )
  })

  it('posts the honest root when a registry with a tampered ledger is first in line, and the tampered peer raises an alarm', async () => {
    const [s1, s2] = suppliers as [TestSupplier, TestSupplier]
    await waitFor('every registry up and connected', allConnected, 20_000, 100)
    const day = await freshDay(clock)
    const tampered = schedule(day)[0]!
    const honest = registries.filter(r => r !== tampered)
    const { entries } = await write([plan('game-a', s1), plan('game-b', s2), plan('game-b', s1, { verdict: ProofVerdict.VERIFIED })])
    const expected = expectDay(day, entries)
    const from = clock.firstBlockOfDay(day)
    const to = clock.lastBlockOfDay(day)
    await waitFor(
      `day ${day}'s receipts on every registry`,
      async () => (await Promise.all(registries.map(r => r.totals(`from=${from}&to=${to}`)))).every(t => t.receipts === entries.length),
      5_000
    )

    // Stop it, inflate every cost of the day in its SQLite ledger, start it again.
    await tampered.kill()
    const db = new Database(join(tampered.dataDir, 'ledger.sqlite'))
    try {
      const { changes } = db.prepare('UPDATE receipts SET cost = cost * 10 WHERE block BETWEEN ? AND ?').run(from, to)
      expect(changes).to.equal(entries.length)
    } finally {
      db.close()
    }
    await tampered.start()

    const ready = readyBlock(clock, SETTLE, day)
    const [posted] = await waitPosted(day, ready + 3 * STAGGER)
    expect(posted!.root).to.equal(expected.root)
    expect(posted!.totalDebit).to.equal(expected.totalDebit)
    expect(posted!.submitter.toLowerCase()).to.not.equal(tampered.signer.toLowerCase())

    const alarmed = await waitFor(`the tampered registry to raise an alarm on day ${day}`, async () => {
      const state = await tampered.settlementDay(day)
      return state?.alarm ? state : undefined
    })
    expect(alarmed.report?.root, 'the tampered ledger compiles another root').to.not.equal(expected.root)
    expect(alarmed.alarm).to.include(expected.root!)
    expect((await tampered.status()).settlement?.alarms).to.be.at.least(1)
    for (const r of honest) {
      const state = await waitFor(`registry ${r.index + 1} to see day ${day} posted`, async () => {
        const s = await r.settlementDay(day)
        return s?.posted === true ? s : undefined
      })
      expect(state.alarm).to.equal(null)
      expect(state.report?.root).to.equal(expected.root)
    }
    await untilBlock(clock, ready + 2 * STAGGER + 2)
    expect(await chain!.dayPosted(day)).to.have.length(1)
  })

  it('refuses a delinquent game at the gateway with 402 game_delinquent until its deposit is topped up', async () => {
    // The registries are done; give their CPU to the network below.
    await Promise.all(registries.map(r => r.proc.stop('SIGTERM')))
    let net: Network | undefined
    try {
      net = await startNetwork({
        suppliers: 1,
        dir: join(dir, 'net'),
        distributorArgs: ['--rpc-url', chain!.rpcUrl, '--settlement-address', chain!.settlement, '--standing-refresh-ms', '200']
      })
      const gatewayUrl = net.gatewayUrl
      const apiKey = net.apiKey
      const model = net.modelName
      const game = 'game-1' // the game of the network's first API key
      const ask = async (): Promise<{ status: number; body: { error?: { code?: string } } }> => {
        const res = await fetch(`${gatewayUrl}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Hello, innkeeper!' }], max_tokens: 4 }),
          signal: AbortSignal.timeout(30_000)
        })
        return { status: res.status, body: (await res.json()) as { error?: { code?: string } } }
      }
      const c = chain!
      await c.deposit(game, 1n)
      const ok = await ask()
      expect(ok.status, JSON.stringify(ok.body)).to.equal(200)

      // A day (far from the registries' days) whose report debits the game more than its deposit,
      // signed by two of the three registry signers.
      const day = 10_000_000
      const debit = 1_000n
      const tree = SettlementTree.of([{ kind: LEAF_DEBIT, id: gameKey(game), amount: debit }])
      const digest = reportDigest(BigInt(c.chainId), c.settlement, day, tree.root, debit)
      const onChainDigest = await c.chain.publicClient.readContract({
        address: c.settlement,
        abi: GCN_SETTLEMENT_ABI,
        functionName: 'reportDigest',
        args: [BigInt(day), tree.root, debit]
      })
      expect(onChainDigest).to.equal(digest)
      const signers = ids
        .slice(0, 2)
        .map(i => privateKeyToAccount(i.evmKey))
        .sort((a, b) => (BigInt(a.address) < BigInt(b.address) ? -1 : 1))
      const signatures: Hex[] = await Promise.all(signers.map(a => a.sign({ hash: digest })))
      await c.wait(
        await c.deployer.writeContract({
          address: c.settlement,
          abi: GCN_SETTLEMENT_ABI,
          functionName: 'postDay',
          // One entry per registered signer: the signature of those who signed, the address of the others.
          args: [
            BigInt(day),
            tree.root,
            debit,
            encodeDaySignatures(
              ids.map(i => i.signer),
              new Map(signers.map((a, j) => [a.address, signatures[j]!]))
            )
          ]
        })
      )
      await c.wait(
        await c.deployer.writeContract({
          address: c.settlement,
          abi: GCN_SETTLEMENT_ABI,
          functionName: 'applyDebit',
          args: [BigInt(day), gameKey(game), debit, tree.proof(0)]
        })
      )
      expect(await c.delinquent(game)).to.equal(true)
      expect(await c.owed(game)).to.equal(debit - 1n)
      expect(await c.deposits(game)).to.equal(0n)

      const refused = await waitFor(
        'the gateway to refuse the delinquent game',
        async () => {
          const r = await ask()
          return r.status === 402 ? r : undefined
        },
        15_000,
        100
      )
      expect(refused.body.error?.code).to.equal('game_delinquent')

      // Topping up repays what is owed first (GameReinstated), then the game is served again.
      const topUp = 5_000n
      const fromBlock = await c.chain.publicClient.getBlockNumber()
      await c.deposit(game, topUp)
      const reinstated = await c.chain.publicClient.getContractEvents({
        address: c.settlement,
        abi: GCN_SETTLEMENT_ABI,
        eventName: 'GameReinstated',
        args: { game: gameKey(game) },
        fromBlock
      })
      expect(reinstated).to.have.length(1)
      expect(await c.delinquent(game)).to.equal(false)
      expect(await c.owed(game)).to.equal(0n)
      expect(await c.deposits(game)).to.equal(topUp - (debit - 1n))
      const served = await waitFor(
        'the gateway to serve the game again',
        async () => {
          const r = await ask()
          return r.status === 200 ? r : undefined
        },
        15_000,
        100
      )
      expect(served.status).to.equal(200)
    } finally {
      await net?.stop()
    }
  })
})
