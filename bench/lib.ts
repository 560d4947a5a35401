import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { InferenceInput } from '@gcn/core'
import { type ModelRuntime, writeGguf } from '@gcn/supplier'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const GCN_BIN = join(ROOT, 'packages', 'cli', 'bin', 'gcn.js')
/** Where benchmarks keep generated models and devnet state. */
export const BENCH_DATA = join(ROOT, '.gcn', 'bench')

/** The generated model of this preset (seed 1), written once. */
export async function benchModel(preset: 'tiny' | 'small'): Promise<string> {
  const path = join(BENCH_DATA, 'models', `gcn-${preset}-s1.gguf`)
  if (!existsSync(path)) await writeGguf(path, { preset, seed: 1 })
  return path
}

/** One greedy task on a model runtime in-process: when it started, its first text arrived and it ended. */
export async function runInProcess(
  runtime: ModelRuntime,
  input: InferenceInput,
  maxTokens: number
): Promise<{ ttftMs: number; totalMs: number; tokens: number; decodeMs: number }> {
  const t0 = performance.now()
  let first = Number.NaN
  let tokens = 0
  for await (const chunk of runtime.generate(input, { maxTokens, temperature: 0 })) {
    if (chunk.type === 'token') {
      if (Number.isNaN(first) && chunk.text !== '') first = performance.now()
    } else tokens = chunk.usage.completionTokens
  }
  const end = performance.now()
  return { ttftMs: first - t0, totalMs: end - t0, tokens, decodeMs: end - first }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]!
}

/**
 * Percentile bootstrap interval of a statistic of `n` runs: the runs' indices are resampled with
 * replacement (a run's paired samples stay together), `resamples` times, from a seeded generator
 * (mulberry32), so a sitting's interval is reproducible from its samples. Returns the bounds of
 * the central `level` of the resampled statistics: how far the figure could move by chance with
 * this many runs, not between sittings (the machine's own drift comes on top).
 */
export function bootstrapInterval(
  n: number,
  statistic: (indices: readonly number[]) => number,
  { resamples = 2000, level = 0.95, seed = 1 }: { resamples?: number; level?: number; seed?: number } = {}
): [number, number] {
  if (n === 0) return [Number.NaN, Number.NaN]
  let state = seed >>> 0
  const random = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
  const stats: number[] = []
  const indices = new Array<number>(n)
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) indices[i] = Math.floor(random() * n)
    stats.push(statistic(indices))
  }
  const tail = ((1 - level) / 2) * 100
  return [percentile(stats, tail), percentile(stats, 100 - tail)]
}

export const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a')

export function machine(): string {
  const cpu = cpus()
  return `${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${process.platform}/${process.arch}`
}

/** A `gcn devnet` child whose stdout is parsed for the gateway URL. */
export async function startDevnet(
  args: string[]
): Promise<{ proc: ChildProcess; gateway: string; apiKey: string; model: string; stop(): Promise<void> }> {
  const logLevel = process.env.BENCH_DEVNET_LOG_LEVEL
  const proc = spawn(process.execPath, [GCN_BIN, 'devnet', ...args, ...(logLevel === undefined ? [] : ['--log-level', logLevel])], {
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const lines: string[] = []
  let stderr = ''
  proc.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-10_000)
    if (logLevel !== undefined) process.stderr.write(d)
  })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`devnet not ready in 120 s\n${stderr}`)), 120_000)
    createInterface({ input: proc.stdout! }).on('line', line => {
      lines.push(line)
      if (line === 'gcn devnet ready') {
        // the following lines arrive in the same write; wait for the model line
      }
      if (line.startsWith('model: ')) {
        clearTimeout(timer)
        resolve()
      }
    })
    proc.once('exit', code => reject(new Error(`devnet exited ${code}\n${stderr}`)))
  })
  const get = (prefix: string): string =>
    lines
      .find(l => l.startsWith(prefix))!
      .slice(prefix.length)
      .trim()
  return {
    proc,
    gateway: get('gateway:'),
    apiKey: get('api key:'),
    model: get('model:').split(' ')[0]!,
    stop: () =>
      new Promise<void>(resolve => {
        if (proc.exitCode !== null) return resolve()
        proc.once('exit', () => resolve())
        proc.kill('SIGTERM')
      })
  }
}

/** CPU seconds (user + system) used so far by a process. */
export function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return Number.NaN
  }
}

/** Direct children of `pid` with their command lines. */
export function children(pid: number): Array<{ pid: number; cmd: string }> {
  const out: Array<{ pid: number; cmd: string }> = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.split(') ')[1]!.split(' ')[1])
      if (ppid === pid) out.push({ pid: Number(entry), cmd: readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ') })
    } catch {
      // process ended while scanning
    }
  }
  return out
}

/**
 * CPU time of `pid` in ms from each thread's schedstat (ns precision): its main thread (the event
 * loop) and all its other threads (libuv's pool, V8's helpers, llama.cpp's); zeros once it is gone.
 */
export function threadCpuMs(pid: number): { main: number; others: number } {
  let main = 0
  let others = 0
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0])
        if (Number(tid) === pid) main += ns
        else others += ns
      } catch {
        // thread ended while scanning
      }
    }
  } catch {
    return { main: 0, others: 0 }
  }
  return { main: main / 1e6, others: others / 1e6 }
}

/** CPU time of every thread of `pid`, in ms; 0 once it is gone. */
function processCpuMs(pid: number): number {
  const { main, others } = threadCpuMs(pid)
  return main + others
}

/**
 * Waits until `pids` together use under `busyFraction` of one core over a `windowMs` window, so
 * background work (re-scoring a previous answer, a registry's block ingest) does not land on
 * the next measured run. Returns whether it got quiet before `timeoutMs`.
 */
export async function waitQuiet(
  pids: number[],
  options: { windowMs?: number; busyFraction?: number; timeoutMs?: number } = {}
): Promise<boolean> {
  const { windowMs = 30, busyFraction = 0.1, timeoutMs = 10_000 } = options
  const total = (): number => pids.reduce((sum, pid) => sum + processCpuMs(pid), 0)
  const deadline = performance.now() + timeoutMs
  let before = total()
  while (performance.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, windowMs))
    const now = total()
    if (now - before < windowMs * busyFraction) return true
    before = now
  }
  return false
}

/** Appends a dated section to BENCHMARKS.md (and prints it). */
export function appendSection(markdown: string): void {
  process.stdout.write(`${markdown}\n`)
  const file = join(ROOT, 'BENCHMARKS.md')
  const header = '# Benchmarks\n\n`npm run bench` runs every benchmark and appends a dated section here.\n'
  const existing = existsSync(file) ? readFileSync(file, 'utf8') : header
  writeFileSync(file, `${existing.trimEnd()}\n\n${markdown.trim()}\n`)
}
