/**
 * Inference-path benchmarks (`npm run bench`), results appended to BENCHMARKS.md:
 *  1. Added latency: the whole path (SDK → gateway → distributor → supplier →
 *     back) against node-llama-cpp in-process on the same `small` model, prompt
 *     and token count, interleaved run by run so both see the same machine.
 *  2. Distributor capacity: requests/second through the gateway with many
 *     concurrent streaming clients on the `tiny` model, and CPU per process.
 *
 * The latency part also reports where the time to first token goes: the devnet's roles record
 * their task steps (`traceTaskStep` in core, enabled by GCN_TASK_STEPS_DIR) and the table lines them
 * up with each run's start and first text on one monotonic clock. BENCH_RUNS (default 100) sets the
 * runs per path; the goals' figures come with 95 % bootstrap intervals over them.
 *
 * A/B inside one sitting (this VM drifts between sittings by more than the
 * effects left to find): with BENCH_AB_A and BENCH_AB_B set to shell commands,
 * each iteration runs A's command, in-process, network, then B's command,
 * in-process, network (both over node:http), so both variants see the same
 * drift. The commands switch the variant, e.g. by creating or removing a flag
 * file that a temporary change reads. Run it twice with the variants swapped:
 * the second slot's time to first token has measured ~0.5 ms higher even with
 * identical variants.
 */
import '@gcn/core/polyfill'
import { execSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createLogger, type InferenceInput, monotonicMs, TASK_STEPS, type TaskStep, type TaskStepEvent } from '@gcn/core'
import { GcnClient } from '@gcn/sdk'
import { createModelRuntime } from '@gcn/supplier'
import {
  appendSection,
  bootstrapInterval,
  children,
  cpuSeconds,
  BENCH_DATA as DATA,
  fmt,
  machine,
  benchModel as model,
  percentile,
  runInProcess,
  startDevnet,
  threadCpuMs,
  waitQuiet
} from './lib.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 100)
const WARMUP = 3
const MAX_TOKENS = 64
const CAPACITY_SECONDS = Number(process.env.BENCH_CAPACITY_SECONDS ?? 15)
/**
 * Registry peers the latency devnet runs (BENCH_LATENCY_REGISTRIES; default 0). They are off the
 * request path, but they ingest a block's receipts after the network run that made them, which
 * the quiet wait cannot see coming: that work lands on the next in-process run and flatters the
 * network path (in-process TTFT p50 86.8 ms with 3 registries against 84.1–84.7 ms without).
 */
const LATENCY_REGISTRIES = Number(process.env.BENCH_LATENCY_REGISTRIES ?? 0)
/** node-llama-cpp backend of both sides of the latency comparison (BENCH_GPU=cuda|auto; default CPU). */
const GPU = process.env.BENCH_GPU === 'cuda' || process.env.BENCH_GPU === 'auto' ? process.env.BENCH_GPU : false
const log = createLogger({ level: 'warn' })
/** Shell commands switching to variant A and B of an A/B sitting (see the top of the file). */
const AB =
  process.env.BENCH_AB_A !== undefined && process.env.BENCH_AB_B !== undefined
    ? { a: process.env.BENCH_AB_A, b: process.env.BENCH_AB_B }
    : undefined

interface Sample {
  ttftMs: number
  totalMs: number
  tokens: number
}

const messages = [{ role: 'user' as const, content: 'The dragon attacks the village at night. What does the innkeeper say?' }]

/** CPU per answer of a set of processes, by event loop and other threads, summed over the runs measured. */
class CpuTally {
  private readonly totals: Array<{ main: number; others: number }>
  runs = 0

  constructor(readonly processes: ReadonlyArray<{ pid: number; name: string }>) {
    this.totals = processes.map(() => ({ main: 0, others: 0 }))
  }

  snapshot(): Array<{ main: number; others: number }> {
    return this.processes.map(p => threadCpuMs(p.pid))
  }

  /** Adds what each process used since `before`. */
  add(before: Array<{ main: number; others: number }>): void {
    const now = this.snapshot()
    this.runs++
    now.forEach((cpu, i) => {
      this.totals[i]!.main += cpu.main - before[i]!.main
      this.totals[i]!.others += cpu.others - before[i]!.others
    })
  }

  perRun(i: number): { main: number; others: number } {
    const t = this.totals[i]!
    return { main: t.main / Math.max(1, this.runs), others: t.others / Math.max(1, this.runs) }
  }
}

function cpuTable(direct: CpuTally, network: CpuTally): string {
  const rows = direct.processes.map((p, i) => {
    const d = direct.perRun(i)
    const n = network.perRun(i)
    return `| ${p.name} | ${fmt(d.main, 2)} / ${fmt(d.others, 2)} | ${fmt(n.main, 2)} / ${fmt(n.others, 2)} |`
  })
  const sum = (t: CpuTally) => t.processes.reduce((a, _, i) => a + t.perRun(i).main + t.perRun(i).others, 0)
  return `CPU per answer, ms (event loop / other threads; schedstat of every thread, ${network.runs} runs of each path; the
devnet's processes keep running during the in-process runs, so their column there is the background):

| process | in-process run | network run |
| --- | --- | --- |
${rows.join('\n')}
| all | ${fmt(sum(direct), 1)} | ${fmt(sum(network), 1)} |
`
}

/** Tokens over the summed time of the runs (each run weighs by its length). */
const tokensPerSecond = (samples: Sample[]): number =>
  (samples.reduce((a, s) => a + s.tokens, 0) * 1000) / samples.reduce((a, s) => a + s.totalMs, 0)

function summarise(name: string, samples: Sample[]) {
  const ttft = samples.map(s => s.ttftMs)
  const total = samples.map(s => s.totalMs)
  const tokens = samples.reduce((a, s) => a + s.tokens, 0)
  return {
    name,
    ttftP50: percentile(ttft, 50),
    ttftP99: percentile(ttft, 99),
    totalP50: percentile(total, 50),
    totalP99: percentile(total, 99),
    tokensPerSecond: tokensPerSecond(samples),
    tokensPerRun: tokens / samples.length
  }
}

interface StepRun {
  startMs: number
  firstMs: number
}

/** Every task step the devnet's processes wrote at exit (GCN_TASK_STEPS_DIR), in time order. */
function readSteps(dir: string): TaskStepEvent[] {
  const events: TaskStepEvent[] = []
  for (const file of readdirSync(dir)) {
    if (file.endsWith('.json')) events.push(...(JSON.parse(readFileSync(join(dir, file), 'utf8')) as { events: TaskStepEvent[] }).events)
  }
  return events.sort((a, b) => a.atMs - b.atMs)
}

const ttftP50Of = (samples: Sample[]): number =>
  percentile(
    samples.map(s => s.ttftMs),
    50
  )

/** The legs of the first token's way: a table of medians over the runs that passed every step. */
function stepLegs(runs: StepRun[], events: TaskStepEvent[], inProcessTtftP50: number): string {
  const labels: Record<TaskStep, string> = {
    'gateway.request': 'SDK: `chat()` to the gateway holding the request (SDK, HTTP hop, server)',
    'gateway.parsed': 'gateway: key, limits, body read and validated',
    'task.dispatched': 'gateway and router: supplier chosen, task started',
    'task.requestSealed': 'distributor: spare stream, request encoded and sealed',
    'supplier.requestRead': 'request written; hop; supplier: libp2p read path to the frame',
    'supplier.generating': 'supplier: request opened, decoded, checked; runtime called',
    'supplier.firstToken': `runtime: prompt to first token (in-process TTFT p50 ${fmt(inProcessTtftP50, 2)} ms)`,
    'supplier.firstChunkSealed': 'supplier: first chunk (proof, encoding, seal)',
    'task.firstChunk': 'chunk written; hop; distributor: read path, chunk opened, proof checked',
    'gateway.firstWrite': 'distributor → gateway: first text handed to the response'
  }
  // One row per leg: the time from the previous step (or the run's start) to this one, per run.
  const rows = [
    ...TASK_STEPS.map(step => ({ label: labels[step], runtime: step === 'supplier.firstToken', ms: [] as number[] })),
    { label: 'hop; SDK: response and first delta parsed', runtime: false, ms: [] as number[] }
  ]
  for (const run of runs) {
    const at = new Map<TaskStep, number>()
    for (const e of events) {
      if (e.atMs < run.startMs) continue
      if (e.atMs > run.firstMs) break
      if (!at.has(e.step)) at.set(e.step, e.atMs)
    }
    if (Number.isNaN(run.firstMs) || TASK_STEPS.some(s => !at.has(s))) continue
    let previous = run.startMs
    TASK_STEPS.forEach((step, i) => {
      const t = at.get(step)!
      rows[i]!.ms.push(t - previous)
      previous = t
    })
    rows.at(-1)!.ms.push(run.firstMs - previous)
  }
  const complete = rows[0]!.ms.length
  if (complete === 0) return `No run passed every task step (${runs.length} runs, ${events.length} steps recorded).\n`
  const beside = rows.filter(r => !r.runtime).reduce((a, r) => a + percentile(r.ms, 50), 0)
  return `Where the time to first token goes (task steps each process timestamps on one monotonic clock, \`traceTaskStep\`
in core; medians over the ${complete} node:http runs that passed every step, ms):

| leg | p50 | p90 |
| --- | --- | --- |
${rows.map(r => `| ${r.label} | ${fmt(percentile(r.ms, 50), 3)} | ${fmt(percentile(r.ms, 90), 3)} |`).join('\n')}

The legs other than the runtime's add up to ${fmt(beside, 2)} ms (sum of medians).
`
}

async function latencyVsDirect(): Promise<string> {
  const modelPath = await model('small')
  const runtime = createModelRuntime({ modelPath, slots: 1, threads: 1, gpu: GPU }, { logger: log })
  await runtime.start()
  // The devnet's roles record their task steps (times only) for the table of legs below.
  const stepsDir = join(DATA, 'task-steps')
  rmSync(stepsDir, { recursive: true, force: true })
  mkdirSync(stepsDir, { recursive: true })
  process.env.GCN_TASK_STEPS_DIR = stepsDir
  const devnet = await startDevnet([
    '--model',
    modelPath,
    '--suppliers',
    '1',
    '--slots',
    '1',
    '--threads',
    '1',
    '--gpu',
    String(GPU),
    '--gateway-port',
    '0',
    '--data-dir',
    join(DATA, 'devnet-small'),
    '--api-key',
    'bench-key',
    // Registries (and their chain) are off the request path; on this 2-core box they only compete for CPU.
    '--registries',
    String(LATENCY_REGISTRIES)
  ])
  delete process.env.GCN_TASK_STEPS_DIR
  const client = new GcnClient({ baseUrl: devnet.gateway, apiKey: devnet.apiKey, maxRetries: 0 })
  // The same client over Node's fetch (undici), which the SDK used by default before its node:http
  // transport; in an A/B sitting, variant B's runs over node:http.
  const fetchClient = new GcnClient({
    baseUrl: devnet.gateway,
    apiKey: devnet.apiKey,
    maxRetries: 0,
    ...(AB === undefined ? { fetch: globalThis.fetch } : {})
  })
  const input: InferenceInput = { kind: 'chat', messages }
  const direct: Sample[] = []
  const network: Sample[] = []
  const viaFetch: Sample[] = []
  /** The in-process run just before each run over fetch. */
  const directBeforeFetch: Sample[] = []
  const devnetPids = [devnet.proc.pid!, ...children(devnet.proc.pid!).map(p => p.pid)]
  // CPU per answer of every process, by its event loop and its other threads: where the network
  // path's work goes (on this 2-core VM, any of it can slow the decoder on the other core).
  const processes = [
    { pid: process.pid, name: 'benchmark (in-process: the runtime; network: the SDK)' },
    { pid: devnet.proc.pid!, name: 'gcn devnet (parent)' },
    ...children(devnet.proc.pid!).map(p => ({
      pid: p.pid,
      name: /(supplier-\d+)/.exec(p.cmd)?.[1] ?? /gcn\.js (\S+)/.exec(p.cmd)?.[1] ?? p.cmd
    }))
  ]
  const cpu = { direct: new CpuTally(processes), network: new CpuTally(processes) }
  let measuring = false
  let noisy = 0
  // Each run starts on a quiet machine: the distributor re-scores sampled answers (every one of a
  // supplier's first 20) after delivering them, which would otherwise run during the next run.
  const quiet = async (): Promise<void> => {
    if (process.env.BENCH_NO_QUIET === undefined && !(await waitQuiet(devnetPids))) noisy++
  }
  const runDirect = async (): Promise<Sample> => {
    await quiet()
    const before = cpu.direct.snapshot()
    const { ttftMs, totalMs, tokens } = await runInProcess(runtime, input, MAX_TOKENS)
    if (measuring) cpu.direct.add(before)
    return { ttftMs, totalMs, tokens }
  }
  /** Each measured node:http run's start and first text on the task steps' clock. */
  const stepRuns: StepRun[] = []
  const runNetwork = async (c: GcnClient, tally?: CpuTally): Promise<Sample> => {
    await quiet()
    const before = tally?.snapshot()
    const startMs = monotonicMs()
    const t0 = performance.now()
    let first = Number.NaN
    let firstMs = Number.NaN
    const stream = c.chat({ model: devnet.model, messages, max_tokens: MAX_TOKENS, temperature: 0 })
    for await (const delta of stream) {
      if (Number.isNaN(first) && delta.text !== '') {
        first = performance.now()
        firstMs = monotonicMs()
      }
    }
    if (measuring && tally !== undefined) stepRuns.push({ startMs, firstMs })
    const result = await stream.done
    const totalMs = performance.now() - t0
    if (measuring && before !== undefined) tally!.add(before)
    return { ttftMs: first - t0, totalMs, tokens: result.usage?.completionTokens ?? 0 }
  }
  try {
    // Each network run follows an in-process run, in the same conditions for both SDK transports.
    for (let i = 0; i < WARMUP + RUNS; i++) {
      measuring = i >= WARMUP
      if (AB !== undefined) execSync(AB.a, { stdio: 'ignore' })
      const d1 = await runDirect()
      const n = await runNetwork(client, cpu.network)
      if (AB !== undefined) execSync(AB.b, { stdio: 'ignore' })
      measuring = false
      const d2 = await runDirect()
      const f = await runNetwork(fetchClient)
      if (i < WARMUP) continue
      direct.push(d1)
      network.push(n)
      directBeforeFetch.push(d2)
      viaFetch.push(f)
    }
  } finally {
    await devnet.stop()
    await runtime.stop()
  }
  const legs = stepLegs(stepRuns, readSteps(stepsDir), ttftP50Of(direct))
  // Each figure is a function of the runs it is computed over, so a bootstrap over the runs gives its
  // interval; `all` is every run.
  const all = direct.map((_, i) => i)
  const pick = (samples: Sample[], runs: readonly number[]): Sample[] => runs.map(i => samples[i]!)
  const addedTtft = (samples: Sample[], before: Sample[]) => (runs: readonly number[]) =>
    ttftP50Of(pick(samples, runs)) - ttftP50Of(pick(before, runs))
  const throughput = (samples: Sample[], before: Sample[]) => (runs: readonly number[]) =>
    tokensPerSecond(pick(samples, runs)) / tokensPerSecond(pick(before, runs))
  const paired = (samples: Sample[], before: Sample[]) => (runs: readonly number[]) =>
    percentile(
      runs.map(i => samples[i]!.ttftMs - before[i]!.ttftMs),
      50
    )
  const pairedRatio = (samples: Sample[], before: Sample[]) => (runs: readonly number[]) =>
    percentile(
      runs.map(i => samples[i]!.tokens / samples[i]!.totalMs / (before[i]!.tokens / before[i]!.totalMs)),
      50
    )
  /** The figure over every run, then its 95 % bootstrap interval. */
  const withInterval = (statistic: (runs: readonly number[]) => number, scale: number, digits: number, unit: string): string => {
    const [low, high] = bootstrapInterval(all.length, statistic)
    return `**${fmt(statistic(all) * scale, digits)}${unit}** (95 % interval ${fmt(low * scale, digits)}–${fmt(high * scale, digits)}${unit})`
  }
  // The runs themselves, for analyses the report does not make.
  writeFileSync(
    join(DATA, `latency-runs-${new Date().toISOString().replace(/[:.]/g, '-')}.json`),
    JSON.stringify({ ab: AB ?? null, direct, network, directBeforeFetch, viaFetch })
  )
  const d = summarise(AB === undefined ? 'node-llama-cpp in-process' : 'node-llama-cpp in-process, variant A', direct)
  const n = summarise(AB === undefined ? 'SDK → gateway → distributor → supplier' : 'SDK → … → supplier, variant A', network)
  const f = summarise(AB === undefined ? 'the same, SDK over Node fetch (undici)' : 'SDK → … → supplier, variant B', viaFetch)
  const dF = summarise('node-llama-cpp in-process, variant B', directBeforeFetch)
  const rows = (AB === undefined ? [d, n, f] : [d, n, dF, f])
    .map(
      r =>
        `| ${r.name} | ${fmt(r.ttftP50, 2)} | ${fmt(r.ttftP99, 2)} | ${fmt(r.totalP50)} | ${fmt(r.totalP99)} | ${fmt(r.tokensPerRun)} | ${fmt(r.tokensPerSecond)} |`
    )
    .join('\n')
  return `### Added latency of the whole path (small model, ${MAX_TOKENS} tokens greedy, ${RUNS} interleaved runs each, ${GPU === false ? 'CPU, 1 thread' : `node-llama-cpp gpu '${GPU}'`}, 1 slot, ${LATENCY_REGISTRIES} registry peers running, supplier frame interval ${process.env.GCN_FRAME_INTERVAL_MS ?? 'default (33 ms)'}, the devnet's other roles at nice ${process.env.GCN_ROLES_NICE ?? '10 (default)'})

| path | TTFT p50 ms | TTFT p99 ms | total p50 ms | total p99 ms | tokens/run | tokens/s |
| --- | --- | --- | --- | --- | --- | --- |
${rows}

- Throughput ratio (network / direct): ${withInterval(throughput(network, direct), 100, 1, '%')} (goal ≥ 95%); median of the ${RUNS} paired ratios (tokens/s of each network run over the direct run just before it): ${withInterval(pairedRatio(network, direct), 100, 1, '%')}.
- Added time to first token, p50: ${withInterval(addedTtft(network, direct), 1, 2, ' ms')} (goal ≤ 5 ms); p99: ${fmt(n.ttftP99 - d.ttftP99, 2)} ms; median of the ${RUNS} paired differences (each network run minus the direct run just before it, which cancels drift in the machine's load): ${withInterval(paired(network, direct), 1, 2, ' ms')}.
- Added total time, p50: ${fmt(n.totalP50 - d.totalP50, 2)} ms.
- ${AB === undefined ? "With the SDK over Node's fetch instead of its node:http transport" : `A/B sitting, variant A (\`${AB.a}\`) above; variant B (\`${AB.b}\`)`}: added time to first token, p50 ${fmt(f.ttftP50 - dF.ttftP50, 2)} ms (paired median ${fmt(paired(viaFetch, directBeforeFetch)(all), 2)} ms); throughput ${fmt((f.tokensPerSecond / dF.tokensPerSecond) * 100)}% (paired median ${fmt(pairedRatio(viaFetch, directBeforeFetch)(all) * 100)}%), each against the in-process run just before it.
- Intervals: 95 % percentile bootstrap over the runs (2,000 resamples, a run's in-process and network samples kept together): how far a figure moves by chance with ${RUNS} runs. Sittings on different days or hours differ by more (this VM drifts).
- Each run started once the devnet's processes had been quiet (under 10 % of a core) for 30 ms, so background work (re-scoring an earlier answer, registries ingesting a block) does not land on either path's runs${noisy === 0 ? '' : `; ${noisy} runs started after waiting 10 s without that`}.

${cpuTable(cpu.direct, cpu.network)}
${legs}`
}

async function capacity(concurrency: number): Promise<string> {
  const modelPath = await model('tiny')
  const devnet = await startDevnet([
    '--model',
    modelPath,
    '--suppliers',
    '2',
    '--slots',
    '4',
    '--threads',
    '1',
    '--gpu',
    String(GPU),
    '--gateway-port',
    '0',
    '--data-dir',
    join(DATA, 'devnet-tiny'),
    '--api-key',
    'bench-key',
    '--key-rate-per-minute',
    '1000000',
    '--key-max-concurrent',
    String(concurrency)
  ])
  const procs = children(devnet.proc.pid!)
  const label = (cmd: string): string => /(supplier-\d+)/.exec(cmd)?.[1] ?? /gcn\.js (\S+)/.exec(cmd)?.[1] ?? cmd
  const client = new GcnClient({ baseUrl: devnet.gateway, apiKey: devnet.apiKey, maxRetries: 0, timeoutMs: 30_000 })
  const latencies: number[] = []
  const errors = new Map<string, number>()
  let tokens = 0
  const cpuBefore = new Map(procs.map(p => [p.pid, cpuSeconds(p.pid)]))
  const selfBefore = process.cpuUsage()
  const start = performance.now()
  const deadline = start + CAPACITY_SECONDS * 1000
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < deadline) {
          const t0 = performance.now()
          try {
            const result = await client.chat({ model: devnet.model, messages, max_tokens: 16, temperature: 0 }).done
            tokens += result.usage?.completionTokens ?? 0
            latencies.push(performance.now() - t0)
          } catch (err) {
            const e = err as Error & { status?: number; apiCode?: string }
            const name = `${e.name}${e.status === undefined ? '' : ` ${e.status}`}${e.apiCode === undefined ? '' : ` ${e.apiCode}`}`
            errors.set(name, (errors.get(name) ?? 0) + 1)
          }
        }
      })
    )
  } catch (err) {
    await devnet.stop()
    throw err
  }
  const elapsed = (performance.now() - start) / 1000
  const self = process.cpuUsage(selfBefore)
  const cpu = procs.map(p => `${label(p.cmd)} ${fmt((cpuSeconds(p.pid) - cpuBefore.get(p.pid)!) / elapsed, 2)}`)
  cpu.push(`bench client (SDK) ${fmt((self.user + self.system) / 1e6 / elapsed, 2)}`)
  await devnet.stop()
  const errorText = errors.size === 0 ? 'none' : [...errors].map(([k, v]) => `${k} ×${v}`).join(', ')
  return `| ${concurrency} | ${latencies.length} | ${fmt(latencies.length / elapsed)} | ${fmt(tokens / elapsed)} | ${fmt(percentile(latencies, 50))} | ${fmt(percentile(latencies, 99))} | ${errorText} | ${cpu.join('; ')} |`
}

async function main(): Promise<void> {
  mkdirSync(DATA, { recursive: true })
  const date = new Date().toISOString().slice(0, 10)
  // BENCH_ONLY=capacity or =latency runs one part alone (for investigating it).
  const latency = process.env.BENCH_ONLY === 'capacity' ? '' : await latencyVsDirect()
  const rows: string[] = []
  if (process.env.BENCH_ONLY !== 'latency') for (const c of [4, 16, 64]) rows.push(await capacity(c))
  const section = `## Inference path — ${date}

Machine: ${machine()}. Loopback only; every role is its own process (\`gcn devnet\`).

${latency}
### Distributor capacity (tiny model, 2 suppliers × 4 slots, 16 tokens per request, ${CAPACITY_SECONDS} s per level)

| concurrent clients | requests | requests/s | tokens/s | latency p50 ms | latency p99 ms | errors | CPU cores used per process |
| --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

The network accepts at most ${2 * (4 + 4)} requests in flight here (2 suppliers × (4 slots + 4 queued per supplier,
ROUTER_DEFAULTS.maxQueuedPerSupplier)); beyond that the gateway sheds load at once with 503 + Retry-After, which the
benchmark client (maxRetries 0) counts as errors instead of retrying.
Where the time goes: the CPU column is each process's share of the 2 cores during the run; suppliers spend
theirs in llama.cpp, the distributor in routing, sealing and HTTP/SSE, the client in the SDK's SSE parsing.
`
  appendSection(section)
}

await main()
