/**
 * Registry benchmarks (`npm run bench`, or `node bench/dist/registry.js` after a build), appended to BENCHMARKS.md:
 *  - receipts/s one registry peer ingests (signed batches of 1,024 pipelined over one stream), with
 *    replication off (quorum 1, no peers) and on (quorum 2 of 3 peers), side by side;
 *  - replication lag: blocks from the last acknowledged write until all three peers report identical block roots;
 *  - catch-up: a peer that was down while ~100,000 receipts were written to the others, from its restart until its roots match.
 * Every registry is its own `gcn registry` process; the load comes from this process with pre-signed batches.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import {
  BlockClock,
  createGcnNode,
  loadOrCreateIdentity,
  ProofVerdict,
  plainBytes,
  RECEIPTS_PAYLOAD,
  ReceiptBatchCodec,
  RegistryClient,
  RegistryRejectedError,
  receiptCost,
  type SignedEnvelope,
  signEnvelope,
  silentLogger
} from '@gcn/core'
import { appendSection, cpuSeconds, fmt, GCN_BIN, machine } from './lib.js'

const BLOCK_MS = 2000
const BATCH = 1024
const IN_FLIGHT = 16

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port
      server.close(() => resolve(port))
    })
  })
}

interface Peer {
  name: string
  dir: string
  id: string
  port: number
  proc?: ChildProcess
  http?: string
}

async function makePeer(root: string, name: string): Promise<Peer> {
  const dir = join(root, name)
  const { peerId } = await loadOrCreateIdentity(join(dir, 'peer.key'))
  return { name, dir, id: peerId.toString(), port: await freePort() }
}

const addr = (p: Peer): string => `/ip4/127.0.0.1/tcp/${p.port}/p2p/${p.id}`

/** Every registry started (a restarted one is listed again), so that a failed run leaves no process behind. */
const spawned: Peer[] = []

async function startRegistry(p: Peer, others: Peer[], distributor: string, genesisMs: number, quorum: number): Promise<void> {
  const args = [
    GCN_BIN,
    'registry',
    '--profile',
    'local',
    '--listen',
    `/ip4/127.0.0.1/tcp/${p.port}`,
    '--data-dir',
    p.dir,
    '--http-port',
    '0',
    '--distributor',
    distributor,
    '--quorum',
    String(quorum),
    '--genesis-ms',
    String(genesisMs),
    '--block-ms',
    String(BLOCK_MS),
    '--log-level',
    'error',
    ...others.flatMap(o => ['--peer', addr(o)])
  ]
  // BENCH_REGISTRY_NODE_ARGS: extra node flags for the registry processes, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
  const nodeArgs = (process.env.BENCH_REGISTRY_NODE_ARGS ?? '').split(' ').filter(a => a !== '')
  const proc = spawn(process.execPath, [...nodeArgs, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  p.proc = proc
  spawned.push(p)
  p.http = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', line => {
      const m = line.match(/^http: (\S+)$/)
      if (m !== null) resolve(m[1]!)
    })
    proc.once('exit', code => reject(new Error(`${p.name} exited ${code}`)))
  })
}

const running = (proc: ChildProcess): boolean => proc.exitCode === null && proc.signalCode === null

async function stopRegistry(p: Peer): Promise<void> {
  const proc = p.proc
  if (proc === undefined || !running(proc)) return
  await new Promise<void>(resolve => {
    proc.once('exit', () => resolve())
    proc.kill('SIGTERM')
  })
}

async function getJson<T>(url: string): Promise<T> {
  return (await (await fetch(url)).json()) as T
}

async function receiptCount(p: Peer): Promise<number> {
  return (await getJson<{ counts: { receipts: number } }>(`${p.http}/status`)).counts.receipts
}

async function blocksOf(p: Peer): Promise<string> {
  const res = await fetch(`${p.http}/blocks?from=0&to=99999`)
  if (!res.ok) throw new Error(`${p.name} /blocks: ${res.status} ${await res.text()}`)
  return JSON.stringify(await res.json())
}

/**
 * Polls every peer's block summaries until they are identical. Each poll makes a peer hash every block changed
 * since its last answer, so a peer still taking writes pays for the polling: `pollMs` trades resolution for that.
 */
async function waitIdentical(peers: Peer[], pollMs = 20, timeoutMs = 300_000): Promise<number> {
  const started = performance.now()
  for (;;) {
    const all = await Promise.all(peers.map(blocksOf))
    if (new Set(all).size === 1 && all[0] !== '{"blocks":[]}') return performance.now() - started
    if (performance.now() - started > timeoutMs) throw new Error('peers did not converge')
    await new Promise(r => setTimeout(r, pollMs))
  }
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'gcn-bench-registry-'))
  const genesisMs = Date.now()
  const clock = new BlockClock({ genesisMs, blockMs: BLOCK_MS, blocksPerDay: 43_200 })
  const distributor = await loadOrCreateIdentity(join(root, 'distributor', 'peer.key'))
  const distributorId = distributor.peerId.toString()
  const supplierId = (await loadOrCreateIdentity(join(root, 'supplier', 'peer.key'))).peerId.toString()
  const modelId = randomBytes(32).toString('hex')

  const sign = async (batches: number): Promise<SignedEnvelope[]> => {
    const out: SignedEnvelope[] = []
    for (let b = 0; b < batches; b++) {
      const blockHeight = clock.blockHeight()
      const receipts = Array.from({ length: BATCH }, (_, i) => ({
        taskId: plainBytes(randomBytes(16)),
        gameId: `game-${i % 8}`,
        supplierPeerId: supplierId,
        distributorPeerId: distributorId,
        modelId,
        promptTokens: 40,
        completionTokens: 24,
        pricePer1kTokens: 1000n,
        cost: receiptCost(40, 24, 1000n),
        blockHeight,
        promptHash: plainBytes(randomBytes(32)),
        outputHash: plainBytes(randomBytes(32)),
        verdict: ProofVerdict.UNCHECKED,
        timestampMs: Date.now()
      }))
      const payload = ReceiptBatchCodec.encode({ distributorPeerId: distributorId, blockHeight, receipts, timestampMs: Date.now() })
      out.push(await signEnvelope(distributor.privateKey, RECEIPTS_PAYLOAD, payload))
    }
    return out
  }

  const node = await createGcnNode({
    role: 'distributor',
    privateKey: distributor.privateKey,
    profile: 'local',
    listen: ['/ip4/127.0.0.1/tcp/0']
  })
  await node.start()

  /** Writes every envelope to `target` with IN_FLIGHT in flight; returns receipts/s acknowledged. */
  const ingest = async (target: Peer, envelopes: SignedEnvelope[]): Promise<number> => {
    const client = new RegistryClient({ registries: [addr(target)], ackTimeoutMs: 120_000 }, { node, logger: silentLogger })
    await client.submit(envelopes[0]!)
    let next = 1
    let retries = 0
    const started = performance.now()
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < envelopes.length) {
          const envelope = envelopes[next++]!
          // Like the distributor's outbox: a retryable refusal (quorum not reached in time) is sent again.
          for (let attempt = 1; ; attempt++) {
            try {
              await client.submit(envelope)
              break
            } catch (err) {
              if (!(err instanceof RegistryRejectedError) || !err.retryable || attempt >= 10) throw err
              retries++
            }
          }
        }
      })
    )
    const seconds = (performance.now() - started) / 1000
    client.close()
    if (retries > 0) process.stderr.write(`${retries} writes retried after a retryable refusal\n`)
    return ((envelopes.length - 1) * BATCH) / seconds
  }

  const results: string[] = []
  try {
    // A: replication off.
    const solo = await makePeer(root, 'solo')
    await startRegistry(solo, [], distributorId, genesisMs, 1)
    const soloRate = await ingest(solo, await sign(100))
    await stopRegistry(solo)

    // B: three peers, each configured with the other two, quorum 2.
    const peers = await Promise.all(['r1', 'r2', 'r3'].map(n => makePeer(root, n)))
    const start = (p: Peer): Promise<void> =>
      startRegistry(
        p,
        peers.filter(o => o !== p),
        distributorId,
        genesisMs,
        2
      )
    await Promise.all(peers.map(start))
    const envelopes = await sign(200)
    const cpuBefore = peers.map(p => cpuSeconds(p.proc!.pid!))
    const benchCpuBefore = process.cpuUsage()
    const replicatedRate = await ingest(peers[0]!, envelopes)
    const benchCpu = process.cpuUsage(benchCpuBefore)
    const written = (envelopes.length - 1) * BATCH
    // CPU each peer spent per receipt: on this 2-core box three peers and the load generator share two cores,
    // so this is the figure that says what one peer on its own host could take.
    const cpuUsPerReceipt = peers.map((p, i) => ((cpuSeconds(p.proc!.pid!) - cpuBefore[i]!) * 1e6) / written)
    const benchUsPerReceipt = (benchCpu.user + benchCpu.system) / written
    const lagMs = await waitIdentical(peers)
    const before = await receiptCount(peers[0]!)

    // C: r3 is down while ~100,000 more receipts are written (to r1, held by r1 and r2), then restarts and catches up.
    const r3 = peers[2]!
    await stopRegistry(r3)
    await ingest(peers[0]!, await sign(98))
    await waitIdentical(peers.slice(0, 2))
    const missed = (await receiptCount(peers[0]!)) - before
    const catchupStarted = performance.now()
    await start(r3)
    const startupMs = performance.now() - catchupStarted
    await waitIdentical(peers, 250)
    const catchupMs = performance.now() - catchupStarted
    for (const p of peers) await stopRegistry(p)

    results.push(
      `| one registry peer, replication off (quorum 1) | ${fmt(soloRate, 0)} receipts/s | |`,
      `| one registry peer, replication on (quorum 2 of 3) | ${fmt(replicatedRate, 0)} receipts/s | ${fmt(replicatedRate / soloRate, 2)}× of off (goal ≥ 20,000/s) |`,
      `| CPU per receipt while replicating: ingesting peer / replicas | ${cpuUsPerReceipt.map(c => `${fmt(c, 1)} µs`).join(' / ')} | one peer alone on a core: ≈ ${fmt(1e6 / cpuUsPerReceipt[0]!, 0)} receipts/s |`,
      `| CPU per receipt of the load generator (this process, same box) | ${fmt(benchUsPerReceipt, 1)} µs | ${fmt((benchUsPerReceipt * replicatedRate) / 1e4, 0)}% of one core during the replicated run |`,
      `| replication lag after the last ack (all 3 peers identical roots) | ${fmt(lagMs, 0)} ms = ${fmt(lagMs / BLOCK_MS, 2)} blocks | goal ≤ 1 block |`,
      `| catch-up of a restarted peer that missed ${missed.toLocaleString('en-US')} receipts | ${fmt(catchupMs / 1000, 1)} s (${fmt(missed / (catchupMs / 1000), 0)} receipts/s, incl. ${fmt(startupMs / 1000, 1)} s process start) | until its block roots equal the others' |`
    )
  } finally {
    for (const p of spawned) if (p.proc !== undefined && running(p.proc)) p.proc.kill('SIGKILL')
    await node.stop()
    rmSync(root, { recursive: true, force: true })
  }

  const date = new Date().toISOString().slice(0, 10)
  const section = `## Registry — ${date}

Machine: ${machine()}. Each registry is its own \`gcn registry\` process (SQLite WAL, synchronous=FULL) on 127.0.0.1;
the load is pre-signed batches of ${BATCH} receipts, ${IN_FLIGHT} writes in flight over one stream, ${BLOCK_MS} ms blocks.
An acknowledged write is durable on the receiving peer and (quorum 2) on at least one other.

| measure | result | note |
| --- | --- | --- |
${results.join('\n')}
`
  // BENCH_REGISTRY_DRY=1: print only (repeated measurement runs leave BENCHMARKS.md alone).
  if (process.env.BENCH_REGISTRY_DRY === '1') process.stdout.write(`${section}\n`)
  else appendSection(section)
}

await main()
