/**
 * Start-up probe of a GPU backend in a child process.
 *
 * Why: a llama.cpp GPU backend can load and then fail at its first kernel launch, and ggml
 * answers a CUDA error with abort(): the whole process dies with SIGABRT, no JS error to catch.
 * Measured: node-llama-cpp 3.22.1's CUDA prebuilt on an H200 with driver 580 (CUDA 13.0) loads
 * the model, then the first decode fails with "the provided PTX was compiled with an unsupported
 * toolchain". A supplier must find that out before it advertises, not on its first task, so
 * the same load + decode runs first in a throwaway child (gpu-probe-child.ts).
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { AbortedError, throwIfAborted } from '@gcn/core'

export interface GpuProbeInit {
  /** The GGUF file the supplier will load. `/proc/self/fd/N` (a decrypted in-memory model) is handed to the child as its fd 3. */
  modelPath: string
  /** The backend asked for: 'cuda', or 'auto' (node-llama-cpp picks one, else the CPU). */
  gpu: 'auto' | 'cuda'
  /** CPU threads for the child's evaluation. Default 1. */
  threads?: number
  /** The probe fails after this long (the child is killed). Default 120 s. */
  timeoutMs?: number
  /** Testing only: the script the child runs instead of gpu-probe-child. */
  probeScript?: string
}

export interface GpuProbeOptions {
  signal?: AbortSignal
}

/** The child loaded the model and decoded tokens: the backend works in this process's setup. */
export interface GpuProbeSuccess {
  ok: true
  /** The backend node-llama-cpp chose: false for the CPU (what 'auto' gives without a usable GPU), else e.g. 'cuda'. */
  gpu: false | string
  /** Model layers the child offloaded to the GPU. */
  gpuLayers: number
  /** How long the probe took, spawn to exit. */
  ms: number
}

/** The child failed, crashed, hung or printed no result: the backend must not be used in-process. */
export interface GpuProbeFailure {
  ok: false
  /** Short: e.g. 'killed by SIGABRT', 'timed out after 120000 ms', 'exited with code 1: Error: NoBinaryFoundError'. */
  reason: string
  exitCode: number | null
  signal: string | null
  /** The last ~2 KB of the child's stderr (llama.cpp's and node-llama-cpp's messages; never a prompt). */
  stderrTail: string
}

export type GpuProbeResult = GpuProbeSuccess | GpuProbeFailure

export const GPU_PROBE_TIMEOUT_MS = 120_000
const STDERR_TAIL_BYTES = 2048
/** The result line comes last; more output than this is kept only as its tail. */
const STDOUT_TAIL_BYTES = 64 * 1024
const SELF_FD = /^\/proc\/self\/fd\/(\d+)$/
/** The fd a passed-through model file descriptor gets in the child. */
const CHILD_MODEL_FD = 3

/** The child script and the node flags it needs (tsx when this module runs from TypeScript source). */
function childCommand(probeScript: string | undefined): { script: string; execArgv: string[] } {
  // Compiled: dist/src/gpu-probe-child.js next to this file. From source (tsx): the .ts file.
  const fromSource = import.meta.url.endsWith('.ts')
  const script = probeScript ?? fileURLToPath(new URL(fromSource ? './gpu-probe-child.ts' : './gpu-probe-child.js', import.meta.url))
  const execArgv = script.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : []
  return { script, execArgv }
}

/**
 * A few lines of a probe's stderr for a log line or an error hint: the last ones that report an
 * error (llama.cpp's "CUDA error: …" comes before the stack trace of an abort), else the last ones.
 */
export function stderrSummary(stderrTail: string, lines = 3): string {
  const all = stderrTail
    .split('\n')
    .map(line => line.trim())
    .filter(line => line !== '')
  const errors = all.filter(line => /error|fail|fatal/i.test(line))
  return (errors.length > 0 ? errors : all).slice(-lines).join(' | ')
}

/** Keeps the last `limit` bytes written. */
class Tail {
  private buffer = Buffer.alloc(0)
  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk])
    if (this.buffer.length > this.limit) this.buffer = this.buffer.subarray(this.buffer.length - this.limit)
  }

  text(): string {
    // A cut through a multi-byte character decodes as U+FFFD: drop it.
    return this.buffer.toString('utf8').replace(/^\uFFFD+/, '')
  }
}

type ChildLine = { gpu: false | string; gpuLayers: number } | { error: { name: string; message: string } }

/** The last stdout line that is a result or an error report of the child; undefined if none. */
function parseResult(stdout: string): ChildLine | undefined {
  const lines = stdout.split('\n')
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.trim()
    if (!line.startsWith('{')) continue
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch {
      continue
    }
    if (typeof value !== 'object' || value === null) continue
    const v = value as Record<string, unknown>
    if ((v.gpu === false || typeof v.gpu === 'string') && Number.isSafeInteger(v.gpuLayers) && (v.gpuLayers as number) >= 0) {
      return { gpu: v.gpu as false | string, gpuLayers: v.gpuLayers as number }
    }
    const error = v.error as Record<string, unknown> | undefined
    if (typeof error === 'object' && error !== null) {
      return { error: { name: String(error.name ?? 'Error'), message: String(error.message ?? '') } }
    }
  }
  return undefined
}

const positive = (value: number | undefined, fallback: number, what: string): number => {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${what} must be an integer >= 1, got ${value}`)
  return value
}

/**
 * Loads `modelPath` on the `gpu` backend in a child process (`process.execPath`) and decodes a few
 * tokens there. Resolves with what the child found, or why it failed (non-zero exit, a signal such
 * as SIGABRT from ggml, a timeout, output without a result); a failure never throws. A caller
 * abort kills the child (SIGKILL) and rejects with AbortedError (cause: the abort reason) once it
 * has exited. The child inherits the environment (CUDA_VISIBLE_DEVICES and the like).
 */
export async function probeGpuBackend(init: GpuProbeInit, options: GpuProbeOptions = {}): Promise<GpuProbeResult> {
  if (init.gpu !== 'auto' && init.gpu !== 'cuda') throw new RangeError(`gpu must be 'auto' or 'cuda', got ${String(init.gpu)}`)
  const timeoutMs = positive(init.timeoutMs, GPU_PROBE_TIMEOUT_MS, 'timeoutMs')
  const threads = positive(init.threads, 1, 'threads')
  const { signal } = options
  throwIfAborted(signal, 'GPU probe')
  const startedAt = performance.now()
  const stderr = new Tail(STDERR_TAIL_BYTES)
  const failure = (reason: string, exitCode: number | null = null, sig: string | null = null): GpuProbeFailure => ({
    ok: false,
    reason,
    exitCode,
    signal: sig,
    stderrTail: stderr.text()
  })

  // A decrypted model lives at /proc/self/fd/N of this process: the child gets that fd as its own fd 3.
  const selfFd = SELF_FD.exec(init.modelPath)
  const modelArg = selfFd === null ? init.modelPath : `/proc/self/fd/${CHILD_MODEL_FD}`
  const stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'pipe', 'pipe']
  if (selfFd !== null) stdio[CHILD_MODEL_FD] = Number(selfFd[1])

  let command: { script: string; execArgv: string[] }
  try {
    command = childCommand(init.probeScript)
  } catch (err) {
    return failure(`cannot find the probe script: ${(err as Error).message}`)
  }

  return new Promise<GpuProbeResult>((resolve, reject) => {
    const deadline = AbortSignal.timeout(timeoutMs)
    const stop = signal === undefined ? deadline : AbortSignal.any([deadline, signal])
    let child: ReturnType<typeof spawn>
    try {
      child = spawn(process.execPath, [...command.execArgv, command.script, modelArg, init.gpu, String(threads)], {
        stdio,
        windowsHide: true
      })
    } catch (err) {
      resolve(failure(`cannot start the probe process: ${(err as Error).message}`))
      return
    }
    const stdout = new Tail(STDOUT_TAIL_BYTES)
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk))
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk))
    let stoppedBy: 'timeout' | 'abort' | undefined
    let spawnError: Error | undefined
    const kill = (): void => {
      child.kill('SIGKILL')
    }
    const onStop = (): void => {
      stoppedBy = signal?.aborted === true ? 'abort' : 'timeout'
      kill()
    }
    let settled = false
    const finish = (settle: () => void): void => {
      if (settled) return
      settled = true
      stop.removeEventListener('abort', onStop)
      process.removeListener('exit', kill)
      settle()
    }
    stop.addEventListener('abort', onStop, { once: true })
    // Should this process exit while the probe runs, the child goes with it.
    process.once('exit', kill)

    child.once('error', err => {
      spawnError = err
      // Not started at all: 'close' may never come.
      if (child.pid === undefined) finish(() => resolve(failure(`cannot start the probe process: ${err.message}`)))
    })
    child.once('close', (code: number | null, sig: NodeJS.Signals | null) => {
      finish(() => {
        if (stoppedBy === 'abort') {
          reject(new AbortedError('GPU probe aborted', { cause: signal?.reason }))
          return
        }
        if (stoppedBy === 'timeout') return resolve(failure(`timed out after ${timeoutMs} ms`, code, sig))
        if (spawnError !== undefined) return resolve(failure(`probe process failed: ${spawnError.message}`, code, sig))
        if (sig !== null) return resolve(failure(`killed by ${sig}`, code, sig))
        const result = parseResult(stdout.text())
        if (result !== undefined && 'error' in result) {
          const what = `${result.error.name}: ${result.error.message}`.slice(0, 300)
          return resolve(failure(`exited with code ${code}: ${what}`, code, sig))
        }
        if (code !== 0) return resolve(failure(`exited with code ${code}`, code, sig))
        if (result === undefined) return resolve(failure('the probe process printed no result', code, sig))
        resolve({ ok: true, gpu: result.gpu, gpuLayers: result.gpuLayers, ms: Math.round(performance.now() - startedAt) })
      })
    })
  })
}
