import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { AbortedError, createLogger, type Logger, NotStartedError, silentLogger } from '@gcn/core'
import { expect } from 'chai'
import { GpuBackendUnusableError, ModelLoadError } from '../src/errors.js'
import { type GpuProbeFailure, type GpuProbeResult, probeGpuBackend } from '../src/gpu-probe.js'
import { createModelRuntime, type ModelRuntime } from '../src/runtime.js'
import { rejection, tinyModelInTempDir } from './helpers.js'

/**
 * The GPU probe on a machine without a GPU: the real child (node-llama-cpp) for 'cuda' (no CUDA
 * driver here: node-llama-cpp refuses the CUDA binary) and 'auto' (falls back to the CPU), and
 * FAKE children (test/fixtures/fake-gpu-probe-*.mjs) for a crash like ggml's abort() after a CUDA
 * error, a hang, and output without a result. On a machine where CUDA works the 'cuda' failure
 * cases are skipped.
 */

/** The package root (holds package.json) from test/ or from the compiled dist/test/. */
function packageRoot(from: string): string {
  let dir = from
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error(`no package.json above ${from}`)
    dir = parent
  }
  return dir
}

const FIXTURES = join(packageRoot(dirname(fileURLToPath(import.meta.url))), 'test', 'fixtures')
const ABORTS = join(FIXTURES, 'fake-gpu-probe-aborts.mjs')
const HANGS = join(FIXTURES, 'fake-gpu-probe-hangs.mjs')
const GARBAGE = join(FIXTURES, 'fake-gpu-probe-garbage.mjs')
const FAKE_OK = join(FIXTURES, 'fake-gpu-probe-ok.mjs')

/** Polls with a deadline (no fixed sleeps). */
async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const startedAt = performance.now()
  while (!predicate()) {
    if (performance.now() - startedAt > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

function failed(result: GpuProbeResult): GpuProbeFailure {
  if (result.ok) throw new Error(`expected a failed probe, got ${JSON.stringify(result)}`)
  return result
}

/** A logger that keeps its records (JSON lines parsed) for assertions. */
function capturingLogger(): { logger: Logger; records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = []
  const logger = createLogger({ level: 'debug', sink: line => records.push(JSON.parse(line) as Record<string, unknown>) })
  return { logger, records }
}

describe('GPU probe (child process)', function () {
  this.timeout(60_000)
  let dir: string
  let modelPath: string
  /** The real 'cuda' probe on this machine (run once: each real probe loads node-llama-cpp). */
  let cuda: GpuProbeResult

  before(async () => {
    ;({ dir, modelPath } = await tinyModelInTempDir('gcn-gpu-probe-'))
    cuda = await probeGpuBackend({ modelPath, gpu: 'cuda' })
  })

  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it("'cuda' without a usable CUDA backend: ok false with the reason, the exit code and node-llama-cpp's stderr", function () {
    if (cuda.ok) this.skip() // a machine where the CUDA prebuilt works
    const result = failed(cuda)
    expect(result.reason).to.match(/^exited with code 1: /)
    expect(result.exitCode).to.equal(1)
    expect(result.signal).to.equal(null)
    expect(result.stderrTail.length).to.be.at.most(2048)
  })

  it("'auto' without a GPU: ok, node-llama-cpp fell back to the CPU", async () => {
    const result = await probeGpuBackend({ modelPath, gpu: 'auto', threads: 1 })
    expect(result.ok, JSON.stringify(result)).to.equal(true)
    if (!result.ok) return
    expect(result.ms).to.be.greaterThan(0)
    if (result.gpu === false) expect(result.gpuLayers).to.equal(0)
  })

  it('hands a /proc/self/fd/N model (a decrypted in-memory model) to the child as its own fd', async function () {
    if (process.platform !== 'linux') this.skip()
    const fd = openSync(modelPath, 'r')
    try {
      const result = await probeGpuBackend({ modelPath: `/proc/self/fd/${fd}`, gpu: 'auto' })
      expect(result.ok, JSON.stringify(result)).to.equal(true)
    } finally {
      closeSync(fd)
    }
  })

  it('a child that aborts (FAKE: like ggml after a CUDA error) → ok false, signal SIGABRT, its stderr kept', async () => {
    const result = failed(await probeGpuBackend({ modelPath, gpu: 'cuda', probeScript: ABORTS }))
    expect(result.signal).to.equal('SIGABRT')
    expect(result.exitCode).to.equal(null)
    expect(result.reason).to.equal('killed by SIGABRT')
    expect(result.stderrTail).to.include('the provided PTX was compiled with an unsupported toolchain (fake)')
  })

  it('a child that hangs (FAKE) is killed at the timeout → ok false, quickly', async () => {
    const hangModel = join(dir, 'hang-timeout.gguf')
    const startedAt = performance.now()
    const result = failed(await probeGpuBackend({ modelPath: hangModel, gpu: 'auto', probeScript: HANGS, timeoutMs: 1500 }))
    expect(performance.now() - startedAt).to.be.below(10_000)
    expect(result.reason).to.equal('timed out after 1500 ms')
    expect(result.signal).to.equal('SIGKILL')
    // Reaped before the probe resolved (the pid file exists unless the kill came before it was written).
    if (existsSync(`${hangModel}.pid`)) expect(processGone(Number(readFileSync(`${hangModel}.pid`, 'utf8')))).to.equal(true)
  })

  it('a caller abort kills the child (SIGKILL) and rejects with AbortedError carrying the reason', async () => {
    const hangModel = join(dir, 'hang-abort.gguf')
    const controller = new AbortController()
    const probe = probeGpuBackend({ modelPath: hangModel, gpu: 'cuda', probeScript: HANGS }, { signal: controller.signal })
    probe.catch(() => {})
    await until(() => existsSync(`${hangModel}.pid`) && readFileSync(`${hangModel}.pid`, 'utf8') !== '', 20_000, 'the fake child started')
    const pid = Number(readFileSync(`${hangModel}.pid`, 'utf8'))
    expect(processGone(pid)).to.equal(false)
    const reason = new Error('test abort')
    controller.abort(reason)
    const err = await rejection(probe)
    expect(err).to.be.instanceOf(AbortedError)
    expect((err as AbortedError).cause).to.equal(reason)
    expect(processGone(pid)).to.equal(true)
  })

  it('an already aborted signal rejects without starting a child', async () => {
    const err = await rejection(probeGpuBackend({ modelPath, gpu: 'cuda', probeScript: HANGS }, { signal: AbortSignal.abort() }))
    expect(err).to.be.instanceOf(AbortedError)
    expect(existsSync(`${modelPath}.pid`)).to.equal(false)
  })

  it('exit 0 without a result line → ok false; a result after other output → ok', async () => {
    const garbage = failed(await probeGpuBackend({ modelPath, gpu: 'auto', probeScript: GARBAGE }))
    expect(garbage.reason).to.equal('the probe process printed no result')
    expect(garbage.exitCode).to.equal(0)
    const fake = await probeGpuBackend({ modelPath, gpu: 'auto', probeScript: FAKE_OK })
    expect(fake).to.include({ ok: true, gpu: 'cuda', gpuLayers: 7 })
  })

  it('refuses bad arguments', async () => {
    expect(await rejection(probeGpuBackend({ modelPath, gpu: 'vulkan' as 'cuda' }))).to.be.instanceOf(RangeError)
    expect(await rejection(probeGpuBackend({ modelPath, gpu: 'auto', timeoutMs: 0 }))).to.be.instanceOf(RangeError)
  })
})

describe('model runtime: the GPU probe at start', function () {
  this.timeout(60_000)
  let dir: string
  let modelPath: string
  let runtime: ModelRuntime | undefined

  before(async () => {
    ;({ dir, modelPath } = await tinyModelInTempDir('gcn-gpu-probe-runtime-'))
  })

  afterEach(async () => {
    await runtime?.stop()
    runtime = undefined
  })

  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it("gpu 'cuda' with a failing probe: start() rejects with GpuBackendUnusableError, the runtime stays stopped", async function () {
    const probe = await probeGpuBackend({ modelPath, gpu: 'cuda' })
    if (probe.ok) this.skip() // CUDA works on this machine
    runtime = createModelRuntime({ modelPath, gpu: 'cuda', threads: 1 }, { logger: silentLogger })
    const err = await rejection(runtime.start())
    expect(err).to.be.instanceOf(GpuBackendUnusableError)
    const unusable = err as GpuBackendUnusableError
    expect(unusable.name).to.equal('GpuBackendUnusableError')
    expect(unusable.code).to.equal('ERR_GPU_BACKEND_UNUSABLE')
    expect(unusable.backend).to.equal('cuda')
    expect(unusable.message).to.include('cuda').and.to.include(unusable.reason)
    expect(unusable.hint).to.include('--gpu false').and.to.include('docs/operators.md')
    expect(runtime.state).to.equal('stopped')
    expect(() => runtime!.info).to.throw(NotStartedError)
    await runtime.stop()
    expect(runtime.state).to.equal('stopped')
  })

  it("gpu 'cuda' whose probe child aborts (FAKE): GpuBackendUnusableError names the signal, the stderr is in the hint", async () => {
    runtime = createModelRuntime({ modelPath, gpu: 'cuda', gpuProbeScript: ABORTS }, { logger: silentLogger })
    const err = (await rejection(runtime.start())) as GpuBackendUnusableError
    expect(err).to.be.instanceOf(GpuBackendUnusableError)
    expect(err.reason).to.equal('killed by SIGABRT')
    expect(err.stderrTail).to.include('unsupported toolchain (fake)')
    expect(err.hint).to.include('unsupported toolchain (fake)')
    expect(runtime.state).to.equal('stopped')
  })

  it("gpu 'auto' whose probe child aborts (FAKE): warns, starts on the CPU and generates", async () => {
    const { logger, records } = capturingLogger()
    runtime = createModelRuntime({ modelPath, gpu: 'auto', threads: 1, gpuProbeScript: ABORTS }, { logger })
    await runtime.start()
    expect(runtime.info.gpu).to.equal(false)
    expect(runtime.info.gpuLayers).to.equal(0)
    const warning = records.find(r => r.level === 'warn' && String(r.msg).startsWith('GPU backend failed its probe'))
    expect(warning, 'the fallback is logged').to.not.equal(undefined)
    expect(warning).to.include({ component: 'gcn:model-runtime', requested: 'auto', reason: 'killed by SIGABRT', signal: 'SIGABRT' })
    expect(warning?.native).to.include('unsupported toolchain (fake)')
    let tokens = 0
    for await (const chunk of runtime.generate({ kind: 'prompt', prompt: 'The king said' }, { maxTokens: 3, temperature: 0 })) {
      if (chunk.type === 'token') tokens += chunk.tokenIds.length
      else expect(chunk.finishReason).to.be.oneOf(['length', 'stop'])
    }
    expect(tokens).to.be.greaterThan(0)
  })

  it('gpuProbe false skips the probe', async () => {
    const { logger, records } = capturingLogger()
    // The aborting script would make 'auto' warn if it ran; node-llama-cpp's own 'auto' falls back to the CPU here.
    runtime = createModelRuntime({ modelPath, gpu: 'auto', gpuProbe: false, gpuProbeScript: ABORTS }, { logger })
    await runtime.start()
    expect(runtime.info.gpu).to.be.oneOf([false, 'cuda', 'vulkan', 'metal'])
    expect(records.some(r => String(r.msg).startsWith('GPU backend'))).to.equal(false)
    await runtime.stop()
    // With 'cuda' the failure now comes from the in-process load, not from the probe.
    const cudaProbe = await probeGpuBackend({ modelPath, gpu: 'cuda' })
    if (cudaProbe.ok) return
    runtime = createModelRuntime({ modelPath, gpu: 'cuda', gpuProbe: false, gpuProbeScript: ABORTS }, { logger: silentLogger })
    expect(await rejection(runtime.start())).to.be.instanceOf(ModelLoadError)
  })
})
