/**
 * The child process of probeGpuBackend (gpu-probe.ts): loads the model on a GPU backend and
 * decodes a few tokens, so that a backend that aborts the process at its first kernel launch
 * (e.g. CUDA refusing the prebuilt's PTX) kills this child, not the supplier.
 *
 * argv: MODEL_PATH GPU ('auto' | 'cuda') THREADS. On success it prints one JSON line
 * `{"gpu": false | "cuda" | …, "gpuLayers": N}` on stdout and exits 0; on an error it prints
 * `{"error": {"name", "message"}}` and exits 1. llama.cpp's own messages go to stderr.
 *
 * It imports node-llama-cpp only (no libp2p, no polyfill): it must start fast and stay small.
 */
import { getLlama, LlamaLogLevel, type Token } from 'node-llama-cpp'

/** A fixed probe text (never a tenant's prompt). */
const PROBE_TEXT = 'Hello'
const PROBE_TOKENS = 2
const PROBE_CONTEXT_SIZE = 64

function writeLine(value: unknown): Promise<void> {
  return new Promise(resolve => process.stdout.write(`${JSON.stringify(value)}\n`, () => resolve()))
}

function errorLine(message: string): void {
  process.stderr.write(`${message.trim()}\n`)
}

async function probe(modelPath: string, gpu: 'auto' | 'cuda', threads: number): Promise<{ gpu: string | false; gpuLayers: number }> {
  const llama = await getLlama({
    gpu,
    build: 'never',
    maxThreads: threads,
    progressLogs: 'stderr',
    logLevel: LlamaLogLevel.warn,
    logger: (_level, message) => errorLine(message)
  })
  try {
    const model = await llama.loadModel({ modelPath })
    try {
      const context = await model.createContext({ contextSize: PROBE_CONTEXT_SIZE, sequences: 1, threads })
      try {
        const sequence = context.getSequence()
        const bos = model.tokens.bos
        const tokens = [...(bos === null ? [] : [bos]), ...model.tokenize(PROBE_TEXT)] as Token[]
        if (tokens.length === 0) throw new Error('the probe text tokenized to nothing')
        // Evaluating the prompt and sampling tokens launches the backend's kernels for real.
        let generated = 0
        for await (const _token of sequence.evaluate(tokens, { temperature: 0 })) {
          if (++generated >= PROBE_TOKENS) break
        }
        return { gpu: llama.gpu, gpuLayers: model.gpuLayers }
      } finally {
        await context.dispose()
      }
    } finally {
      await model.dispose()
    }
  } finally {
    await llama.dispose()
  }
}

async function main(): Promise<number> {
  const [modelPath, gpuArg, threadsArg] = process.argv.slice(2)
  const threads = Number(threadsArg ?? '1')
  if (modelPath === undefined || (gpuArg !== 'auto' && gpuArg !== 'cuda') || !Number.isSafeInteger(threads) || threads < 1) {
    await writeLine({ error: { name: 'UsageError', message: 'usage: gpu-probe-child MODEL_PATH auto|cuda THREADS' } })
    return 2
  }
  try {
    await writeLine(await probe(modelPath, gpuArg, threads))
    return 0
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err))
    await writeLine({ error: { name: error.name, message: error.message } })
    return 1
  }
}

// Exit explicitly: node-llama-cpp may keep handles open after dispose.
process.exit(await main())
