/**
 * node-llama-cpp backends (`npm run bench`, appended to BENCHMARKS.md): the supplier's model
 * runtime in-process on the CPU prebuilt and, where the machine has one, the CUDA prebuilt, on the
 * generated `tiny` and `small` models. Per backend: load time, the first task's time (on a fresh
 * machine the CUDA driver compiles the prebuilt's PTX for the kernels it uses then), time to first token and decode speed of one
 * task, and the total speed of as many concurrent tasks as the runtime has slots.
 * BENCH_BACKENDS_RUNS (default 20), BENCH_CPU_THREADS (default: 1 and, on machines with more than
 * 4 cores, 8 too).
 */
import '@gcn/core/polyfill'
import { mkdirSync } from 'node:fs'
import { cpus } from 'node:os'
import { createLogger, type InferenceInput } from '@gcn/core'
import { createModelRuntime, type ModelRuntime } from '@gcn/supplier'
import { appendSection, BENCH_DATA as DATA, fmt, machine, benchModel as model, percentile, runInProcess } from './lib.js'

const RUNS = Number(process.env.BENCH_BACKENDS_RUNS ?? 20)
const WARMUP = 3
const MAX_TOKENS = 64
const SLOTS = 4
const log = createLogger({ level: 'error' })
const input: InferenceInput = {
  kind: 'chat',
  messages: [{ role: 'user', content: 'The dragon attacks the village at night. What does the innkeeper say?' }]
}

interface Backend {
  label: string
  gpu: false | 'cuda'
  threads: number
}

/** One task: time to its first text and its decode speed after that. */
async function once(runtime: ModelRuntime): Promise<{ ttftMs: number; decodeTokensPerSecond: number; tokens: number; totalMs: number }> {
  const { ttftMs, totalMs, tokens, decodeMs } = await runInProcess(runtime, input, MAX_TOKENS)
  return { ttftMs, decodeTokensPerSecond: ((tokens - 1) * 1000) / decodeMs, tokens, totalMs }
}

async function measure(preset: 'tiny' | 'small', backend: Backend): Promise<string> {
  const modelPath = await model(preset)
  const runtime = createModelRuntime({ modelPath, slots: SLOTS, threads: backend.threads, gpu: backend.gpu }, { logger: log })
  const t0 = performance.now()
  try {
    await runtime.start()
  } catch (err) {
    const reason = (err as Error).message.split('\n')[0]!.slice(0, 160)
    return `| ${preset} | ${backend.label} | not available: ${reason.replaceAll('|', '/')} | | | | | | |`
  }
  const loadMs = performance.now() - t0
  try {
    const info = runtime.info
    // The first task on a fresh CUDA machine also waits for the driver to compile the kernels it uses.
    const firstTaskMs = (await once(runtime)).totalMs
    for (let i = 1; i < WARMUP; i++) await once(runtime)
    const single = []
    for (let i = 0; i < RUNS; i++) single.push(await once(runtime))
    const rounds = Math.max(1, Math.ceil(RUNS / SLOTS))
    let tokens = 0
    const c0 = performance.now()
    for (let r = 0; r < rounds; r++) {
      const results = await Promise.all(Array.from({ length: SLOTS }, () => once(runtime)))
      tokens += results.reduce((a, x) => a + x.tokens, 0)
    }
    const concurrentTokensPerSecond = (tokens * 1000) / (performance.now() - c0)
    const where =
      info.gpu === false
        ? `CPU, ${backend.threads} thread${backend.threads === 1 ? '' : 's'}`
        : `${info.gpu}, ${info.gpuLayers} layers offloaded`
    return `| ${preset} | ${where} | ${fmt(loadMs, 0)} | ${fmt(firstTaskMs, 0)} | ${fmt(
      percentile(
        single.map(s => s.ttftMs),
        50
      ),
      2
    )} | ${fmt(
      percentile(
        single.map(s => s.ttftMs),
        99
      ),
      2
    )} | ${fmt(
      percentile(
        single.map(s => s.decodeTokensPerSecond),
        50
      ),
      0
    )} | ${fmt(
      percentile(
        single.map(s => s.totalMs),
        50
      )
    )} | ${fmt(concurrentTokensPerSecond, 0)} |`
  } finally {
    await runtime.stop()
  }
}

async function main(): Promise<void> {
  mkdirSync(DATA, { recursive: true })
  const threads =
    process.env.BENCH_CPU_THREADS !== undefined ? process.env.BENCH_CPU_THREADS.split(',').map(Number) : cpus().length > 4 ? [1, 8] : [1]
  const backends: Backend[] = [
    ...threads.map(t => ({ label: `CPU, ${t} thread${t === 1 ? '' : 's'}`, gpu: false as const, threads: t })),
    { label: 'CUDA', gpu: 'cuda', threads: 1 }
  ]
  const rows: string[] = []
  // CUDA first, so its first task is the machine's first use of the kernels.
  for (const preset of ['tiny', 'small'] as const) {
    for (const backend of [backends.at(-1)!, ...backends.slice(0, -1)]) {
      const row = await measure(preset, backend)
      process.stdout.write(`${row}\n`)
      rows.push(row)
    }
  }
  const section = `## node-llama-cpp backends — ${new Date().toISOString().slice(0, 10)}

Machine: ${machine()}. The supplier's model runtime in-process (${SLOTS} slots), ${MAX_TOKENS} tokens greedy from a chat prompt, ${RUNS} runs after ${WARMUP} warm-ups; "concurrent" is ${SLOTS} tasks at once.

| model | backend | load ms | first task ms | TTFT p50 ms | TTFT p99 ms | decode tokens/s p50 (one task) | total p50 ms | concurrent tokens/s |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}
`
  appendSection(section)
}

await main()
