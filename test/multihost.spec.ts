/**
 * The whole network across hosts: every role runs as its own `gcn` process in
 * its own network namespace (one host address each, joined by a bridge), with
 * the production network profile — libp2p's defaults, not the loopback
 * `local` profile. The rollup is an embedded chain in the test process, served
 * on the root namespace's address on the same bridge.
 *
 *   root ns (test, chain JSON-RPC)  PREFIX.1
 *   h1 bootstrap                     PREFIX.11
 *   h2, h3 suppliers                 PREFIX.12, .13
 *   h4 distributor + gateway         PREFIX.14
 *   h5, h6, h7 registries            PREFIX.15 .. .17
 *
 * Addresses: a random private 10.231.X.0/24. The production profile works on
 * it: libp2p's Node connection gater allows private addresses, and the DHT's
 * private-address mapper only trims DHT answers (suppliers are found through
 * signed gossip adverts, which carry their addresses). No documentation or
 * benchmarking range would stand in for "public" here: @libp2p/utils counts
 * 192.0.2/24, 198.18/15, 198.51.100/24 and 203.0.113/24 as private too. On an
 * address libp2p counts as public, a node announces nothing unless given
 * --announce; GCN_MULTIHOST_PREFIX=A.B.C (e.g. 11.231.77) runs this test on
 * A.B.C.0/24 to show it (that /24 is routed to the test bridge while it runs).
 *
 * Skipped (with the reason) where namespaces cannot be created: not root, no
 * iproute2, or a sandbox that forbids them.
 */

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BlockClock, loadOrCreateIdentity } from '@gcn/core'
import { accountId, gameKey, LEAF_CREDIT, LEAF_DEBIT, SettlementTree } from '@gcn/registry'
import { expect } from 'chai'
import type { Address, Hex } from 'viem'
import { createTopology, type NetnsHost, type NetnsTopology, netnsUnavailable } from './helpers/netns.js'
import { listModels, makeTestModel, type TestModel } from './helpers/network.js'
import { killAll, type Proc, waitFor } from './helpers/procs.js'
import type { BlockSummaryJson, ReceiptJson, Totals } from './helpers/registry.js'
import {
  makeRegistryIdentities,
  makeSupplier,
  type RegistryIdentity,
  readyBlock,
  type SettlementDayJson,
  type SettlementParams,
  startTestChain,
  type TestChain,
  type TestSupplier,
  untilBlock
} from './helpers/settlement.js'

/** 200 ms blocks, 2 s days; a day is compiled 8 blocks after it ends, submitter ranks 1 s apart. */
const BLOCK_MS = 200
const BLOCKS_PER_DAY = 10
const SETTLE: SettlementParams = { acceptBlocksBehind: 5, graceBlocks: 2, staggerBlocks: 5 }
const GAME = 'multihost-game'
const DEPOSIT = 10n ** 24n
const REQUESTS = 4
/** Every libp2p node listens on this port of its own host address; HTTP endpoints on their own ports. */
const P2P_PORT = 4001
const GATEWAY_PORT = 8080
const REGISTRY_HTTP_PORT = 8090

interface Role {
  name: string
  host: NetnsHost
  /** Known before it starts (identities are made first). */
  peerId: string
  proc?: Proc
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) })
  const body = await res.text()
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status} ${body}`)
  return JSON.parse(body) as T
}

function describeRole(r: Role): string {
  return `--- ${r.name} (${r.host.ns}, ${r.host.addr})${r.proc === undefined ? ' not started' : `\nstdout:\n${r.proc.lines.join('\n')}\nstderr:\n${r.proc.stderr}`}`
}

describe('multi-host network (network namespaces, production profile): bootstrap, 2 suppliers, distributor, 3 settling registries', function () {
  this.timeout(120_000)

  const startedAt = Date.now()
  let net: NetnsTopology | undefined
  let dir: string | undefined
  let chain: TestChain | undefined
  let clock: BlockClock
  let model: TestModel
  let regIds: RegistryIdentity[]
  let suppliers: TestSupplier[]
  let roles: Role[] = []
  let registryUrls: string[] = []
  let gatewayUrl: string
  const apiKey = `gcn-mh-${Math.random().toString(16).slice(2)}`

  const role = (name: string): Role => roles.find(r => r.name === name)!
  const diagnostics = (): string => roles.map(describeRole).join('\n')

  before(async function () {
    const unavailable = netnsUnavailable()
    if (unavailable !== undefined) {
      console.log(`      skipping the multi-host test: ${unavailable}`)
      this.skip()
    }
    dir = mkdtempSync(join(tmpdir(), 'gcn-multihost-'))
    // GCN_MULTIHOST_PREFIX=A.B.C puts the hosts on A.B.C.0/24 instead of a random 10.231.X.0/24.
    const prefix = process.env.GCN_MULTIHOST_PREFIX
    net = createTopology(7, prefix === undefined || prefix === '' ? {} : { prefix })
    await net.checkConnectivity()
    const [hBoot, hS1, hS2, hDist, ...hRegs] = net.hosts as [NetnsHost, NetnsHost, NetnsHost, NetnsHost, ...NetnsHost[]]
    const p2p = (h: NetnsHost): string => `/ip4/${h.addr}/tcp/${P2P_PORT}`

    // Identities first: every address with its /p2p/<peer id> is known before anything starts.
    model = await makeTestModel(join(dir, 'model.gguf'))
    const bootId = (await loadOrCreateIdentity(join(dir, 'bootstrap', 'peer.key'))).peerId.toString()
    const distId = (await loadOrCreateIdentity(join(dir, 'distributor', 'peer.key'))).peerId.toString()
    regIds = await makeRegistryIdentities(dir, 3)
    suppliers = await Promise.all([1, 2].map(i => makeSupplier(join(dir!, `supplier-${i}`))))
    const bootAddr = `${p2p(hBoot)}/p2p/${bootId}`
    const registryAddrs = regIds.map((id, i) => `${p2p(hRegs[i]!)}/p2p/${id.peerId}`)

    // Served on the root namespace's bridge address, so the namespaces reach it.
    chain = await startTestChain({
      host: net.rootAddr,
      signers: regIds.map(r => r.signer),
      threshold: 2,
      fund: [...regIds.map(r => r.signer), ...suppliers.map(s => s.rewardAddress)]
    })
    await chain.deposit(GAME, DEPOSIT)
    const settlementArgs = ['--rpc-url', chain.rpcUrl, '--settlement-address', chain.settlement]
    const clockSettings = { genesisMs: Date.now(), blockMs: BLOCK_MS, blocksPerDay: BLOCKS_PER_DAY }
    clock = new BlockClock(clockSettings)
    const clockArgs = [
      '--genesis-ms',
      String(clockSettings.genesisMs),
      '--block-ms',
      String(BLOCK_MS),
      '--blocks-per-day',
      String(BLOCKS_PER_DAY)
    ]
    // No --profile: the default, production.
    const common = (h: NetnsHost): string[] => ['--listen', p2p(h), '--log-level', 'warn']

    roles = [
      { name: 'bootstrap', host: hBoot, peerId: bootId },
      { name: 'supplier-1', host: hS1, peerId: suppliers[0]!.peerId },
      { name: 'supplier-2', host: hS2, peerId: suppliers[1]!.peerId },
      { name: 'distributor', host: hDist, peerId: distId },
      ...hRegs.map((host, i) => ({ name: `registry-${i + 1}`, host, peerId: regIds[i]!.peerId }))
    ]
    try {
      const boot = role('bootstrap')
      boot.proc = net.gcn(hBoot, ['bootstrap', ...common(hBoot), '--key-file', join(dir, 'bootstrap', 'peer.key')])
      await boot.proc.waitForLine(/^gcn bootstrap ready$/, 30_000)

      for (const [i, id] of regIds.entries()) {
        const h = hRegs[i]!
        role(`registry-${i + 1}`).proc = net.gcn(h, [
          'registry',
          ...common(h),
          ...clockArgs,
          '--bootstrap',
          bootAddr,
          '--data-dir',
          id.dataDir,
          '--http-host',
          h.addr,
          '--http-port',
          String(REGISTRY_HTTP_PORT),
          '--distributor',
          distId,
          ...registryAddrs.filter((_, j) => j !== i).flatMap(a => ['--peer', a]),
          '--accept-blocks-behind',
          String(SETTLE.acceptBlocksBehind),
          '--grace-blocks',
          String(SETTLE.graceBlocks),
          '--stagger-blocks',
          String(SETTLE.staggerBlocks),
          ...settlementArgs
        ])
      }
      const reportTo = registryAddrs.flatMap(a => ['--registry', a])
      role('distributor').proc = net.gcn(hDist, [
        'distributor',
        ...common(hDist),
        ...clockArgs,
        ...reportTo,
        '--bootstrap',
        bootAddr,
        '--data-dir',
        join(dir, 'distributor'),
        '--gateway-host',
        hDist.addr,
        '--gateway-port',
        String(GATEWAY_PORT),
        '--api-key',
        `${GAME}:${apiKey}`,
        ...settlementArgs,
        '--standing-refresh-ms',
        '1000'
      ])
      for (const [i, s] of suppliers.entries()) {
        const h = i === 0 ? hS1 : hS2
        role(`supplier-${i + 1}`).proc = net.gcn(h, [
          'supplier',
          ...common(h),
          ...clockArgs,
          ...reportTo,
          '--bootstrap',
          bootAddr,
          '--data-dir',
          join(dir, `supplier-${i + 1}`),
          '--model',
          model.path,
          '--model-sha256',
          model.sha256,
          '--slots',
          '1',
          '--threads',
          '1',
          '--reward-address',
          s.rewardAddress
        ])
      }

      registryUrls = await Promise.all(
        hRegs.map(async (h, i) => {
          const [, url] = (await role(`registry-${i + 1}`).proc!.waitForLine(/^http: (http:\/\/\S+)$/, 60_000)) as RegExpMatchArray
          expect(url).to.equal(`http://${h.addr}:${REGISTRY_HTTP_PORT}`)
          return url!
        })
      )
      gatewayUrl = `${(await role('distributor').proc!.waitForLine(/^gateway: (\S+)$/, 60_000))[1]!}`
      expect(gatewayUrl).to.equal(`http://${hDist.addr}:${GATEWAY_PORT}/v1`)
      await Promise.all(suppliers.map((_, i) => role(`supplier-${i + 1}`).proc!.waitForLine(/^gcn supplier ready$/, 60_000)))

      // Every role announces the address it listens on, on its own host (printed right after 'listening:').
      for (const r of roles) {
        const lines = r.proc!.lines
        const announced = lines.slice(lines.indexOf('listening:') + 1).map(l => l.trim())
        expect(announced, `${r.name} announces ${p2p(r.host)} (printed under 'listening:')`).to.include(`${p2p(r.host)}/p2p/${r.peerId}`)
      }

      await waitFor(
        'every registry connected to both others',
        async () => {
          const all = await Promise.all(
            registryUrls.map(u => getJson<{ peers: Array<{ connected: boolean }>; settlement?: { signer: string } }>(`${u}/status`))
          )
          return all.every(s => s.peers.length === 2 && s.peers.every(p => p.connected) && s.settlement !== undefined)
        },
        30_000,
        200
      )
      await waitFor(
        'the gateway to list the model with both suppliers',
        async () => ((await listModels(gatewayUrl, apiKey))?.[0]?.gcn?.suppliers ?? 0) >= 2,
        45_000,
        200
      )
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${diagnostics()}`, { cause: err })
    }
  })

  after(async () => {
    await killAll()
    await chain?.close().catch(() => undefined)
    net?.destroy()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  it('serves game requests through the gateway, replicates the receipts to 3 registries and settles the day on chain', async () => {
    try {
      // Start at the beginning of a day so the requests, their receipts and confirmations fall in one or two days.
      const firstBlock = await waitFor(
        'the start of a fresh day',
        () => {
          const h = clock.blockHeight()
          return h % BLOCKS_PER_DAY === 0 && h >= BLOCKS_PER_DAY ? h : undefined
        },
        10_000,
        10
      )
      const models = (await listModels(gatewayUrl, apiKey))!
      const served = await Promise.all(
        Array.from({ length: REQUESTS }, async (_, i) => {
          const res = await fetch(`${gatewayUrl}/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'x-gcn-session': `player-${i}` },
            body: JSON.stringify({ model: models[0]!.id, messages: [{ role: 'user', content: `Hello from host ${i}!` }], max_tokens: 8 }),
            signal: AbortSignal.timeout(30_000)
          })
          const body = (await res.json()) as { choices?: Array<{ message: { content: string } }>; usage?: { total_tokens: number } }
          expect(res.status, JSON.stringify(body)).to.equal(200)
          expect(body.choices?.[0]?.message.content).to.be.a('string').that.is.not.empty
          return body
        })
      )
      expect(served).to.have.length(REQUESTS)
      const lastBlock = clock.blockHeight() + 1

      // All three registries hold every receipt, each confirmed by its supplier (billable).
      const range = `from=${firstBlock}&to=${lastBlock}`
      const totals = await waitFor(
        `${REQUESTS} billable receipts on all 3 registries`,
        async () => {
          const all = await Promise.all(registryUrls.map(u => getJson<Totals>(`${u}/totals?${range}`)))
          return all.every(t => t.billableReceipts === REQUESTS) ? all : undefined
        },
        20_000,
        200
      )
      for (const t of totals) {
        expect(t.receipts).to.equal(REQUESTS)
        expect(t.unconfirmedReceipts).to.equal(0)
        expect(BigInt(t.billableCost) > 0n).to.equal(true)
      }
      const receipts = (await getJson<{ receipts: ReceiptJson[] }>(`${registryUrls[0]}/receipts?${range}&limit=100`)).receipts
      expect(receipts).to.have.length(REQUESTS)
      const blocks = await waitFor(
        'identical /blocks on all 3 registries',
        async () => {
          const all = await Promise.all(
            registryUrls.map(async u => (await getJson<{ blocks: BlockSummaryJson[] }>(`${u}/blocks?${range}`)).blocks)
          )
          const first = JSON.stringify(all[0])
          return all.every(b => JSON.stringify(b) === first) && all[0]!.length > 0 ? all[0]! : undefined
        },
        20_000,
        200
      )

      // What each day must settle to, from the receipts themselves: each supplier's reward address earns its receipts' cost.
      const rewardOf = new Map<string, Address>(suppliers.map(s => [s.peerId, s.rewardAddress]))
      const days = [...new Set(receipts.map(r => clock.day(r.blockHeight)))].sort((a, b) => a - b)
      const expected = new Map<number, { root: Hex; totalDebit: bigint }>()
      for (const day of days) {
        const credits = new Map<string, bigint>()
        let debit = 0n
        for (const r of receipts.filter(x => clock.day(x.blockHeight) === day)) {
          const account = rewardOf.get(r.supplier)
          expect(account, `receipt ${r.taskId} names a supplier of this test`).to.not.equal(undefined)
          debit += BigInt(r.cost)
          credits.set(account!.toLowerCase(), (credits.get(account!.toLowerCase()) ?? 0n) + BigInt(r.cost))
        }
        const leaves = [
          { kind: LEAF_DEBIT, id: gameKey(GAME), amount: debit },
          ...[...credits].map(([account, amount]) => ({ kind: LEAF_CREDIT, id: accountId(account), amount }))
        ]
        expected.set(day, { root: SettlementTree.of(leaves).root, totalDebit: debit })
      }

      // Each day settles on chain once, with the root every registry compiled.
      const lastDay = days[days.length - 1]!
      const deadlineBlock = readyBlock(clock, SETTLE, lastDay) + 3 * SETTLE.staggerBlocks
      const posted = new Map<number, { root: Hex; totalDebit: bigint; submitter: Address }>()
      for (const day of days) {
        const [event] = await waitFor(
          `day ${day} posted on chain`,
          async () => {
            const events = await chain!.dayPosted(day)
            return events.length > 0 ? events : undefined
          },
          Math.max(0, clock.blockStartMs(deadlineBlock) - Date.now()) + 10_000,
          100
        )
        posted.set(day, event!)
        expect(event!.root, `day ${day}'s posted root`).to.equal(expected.get(day)!.root)
        expect(event!.totalDebit, `day ${day}'s posted total`).to.equal(expected.get(day)!.totalDebit)
        expect(regIds.map(r => r.signer.toLowerCase())).to.include(event!.submitter.toLowerCase())
        for (const [i, url] of registryUrls.entries()) {
          const state = await waitFor(
            `registry ${i + 1} to see day ${day} posted`,
            async () => {
              const res = await fetch(`${url}/settlement/day?day=${day}`, { signal: AbortSignal.timeout(5_000) })
              if (!res.ok) return undefined
              const s = (await res.json()) as SettlementDayJson
              return s.posted ? s : undefined
            },
            15_000,
            200
          )
          expect(state.alarm, `registry ${i + 1}'s alarm`).to.equal(null)
          expect(state.report?.root, `registry ${i + 1}'s root of day ${day}`).to.equal(event!.root)
        }
      }
      // Every submitter's turn has passed: still exactly one post per day.
      await untilBlock(clock, readyBlock(clock, SETTLE, lastDay) + 2 * SETTLE.staggerBlocks + 2)
      for (const day of days) expect(await chain!.dayPosted(day), `DayPosted events of day ${day}`).to.have.length(1)

      const bySupplier = suppliers.map(s => receipts.filter(r => r.supplier === s.peerId).length)
      const wallS = ((Date.now() - startedAt) / 1000).toFixed(1)
      console.log(
        `      multihost (${net!.hosts.length} namespaces on ${net!.prefix}.0/24, production profile): ${served.length} requests served (suppliers ${bySupplier.join('/')}), ` +
          `${totals[0]!.billableReceipts} billable receipts on 3 registries (${blocks.length} identical blocks), ` +
          `day${days.length > 1 ? 's' : ''} ${days.join(', ')} posted (root ${posted.get(days[0]!)!.root.slice(0, 10)}…); ${wallS} s`
      )
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${diagnostics()}`, { cause: err })
    }
  })
})
