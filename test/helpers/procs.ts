import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

/** Repository root (this file runs from test/dist/helpers). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
export const GCN_BIN = join(ROOT, 'packages', 'cli', 'bin', 'gcn.js')

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 20_000,
  intervalMs = 50
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
    } catch (err) {
      lastError = err
    }
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError })
}

/** A child process whose stdout lines are collected; every one started is killed by `killAll`. */
export class Proc {
  readonly child: ChildProcess
  readonly lines: string[] = []
  stderr = ''
  private readonly waiters = new Set<() => void>()

  constructor(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
    this.child = spawn(command, args, {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe']
    })
    running.add(this)
    this.child.once('exit', () => {
      running.delete(this)
      for (const w of this.waiters) w()
    })
    createInterface({ input: this.child.stdout! }).on('line', line => {
      this.lines.push(line)
      for (const w of this.waiters) w()
    })
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-20_000)
    })
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null
  }

  /** Resolves with the first stdout line (old or new) matching `pattern`. */
  async waitForLine(pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs
    let seen = 0
    for (;;) {
      for (; seen < this.lines.length; seen++) {
        const m = this.lines[seen]!.match(pattern)
        if (m !== null) return m
      }
      if (this.exited)
        throw new Error(
          `process exited (${this.child.exitCode ?? this.child.signalCode}) before printing ${pattern}\nstderr: ${this.stderr}`
        )
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${pattern}\nstdout: ${this.lines.join('\n')}\nstderr: ${this.stderr}`)
      await new Promise<void>(resolve => {
        const timer = setTimeout(done, left)
        function done(): void {
          clearTimeout(timer)
          waiter.delete(done)
          resolve()
        }
        const waiter = this.waiters
        waiter.add(done)
      })
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<number | null> {
    if (this.exited) return this.child.exitCode
    const exit = once(this.child, 'exit')
    this.child.kill(signal)
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs)
    const [code] = (await exit) as [number | null]
    clearTimeout(timer)
    return code
  }
}

const running = new Set<Proc>()

export function gcn(args: string[], env?: NodeJS.ProcessEnv): Proc {
  return new Proc(process.execPath, [GCN_BIN, ...args], env === undefined ? {} : { env })
}

export async function killAll(): Promise<void> {
  await Promise.all([...running].map(p => p.stop('SIGKILL')))
}
