/**
 * Load benchmark (`node bench/dist/load.js` after a build; LOAD_CLIENTS to change the count): 1,000 concurrent
 * streaming SDK clients through one gateway of a `gcn devnet` (tiny model, 2 suppliers × 4 slots). Each client
 * sends one chat completion of 16 tokens and retries what the SDK deems retryable (busy network: 503 / 429).
 * Reports completions, errors by kind, retries, time to first token (including waiting for a slot) and the
 * distributor's memory, sampled while the load runs. Appended to BENCHMARKS.md.
 */
import '@gcn/core/polyfill'
import { readFileSync } from 'node:fs'
import { GcnApiError, GcnClient } from '@gcn/sdk'
import { appendSection, children, fmt, machine, percentile, startDevnet } from './lib.js'

const CLIENTS = Number(process.env.LOAD_CLIENTS ?? 1000)

function rssBytes(pid: number): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find(l => l.startsWith('VmRSS:'))
    return Number(line?.match(/(\d+)/)?.[1] ?? 0) * 1024
  } catch {
    return 0
  }
}

async function main(): Promise<void> {
  const devnet = await startDevnet([
    '--gateway-port',
    '0',
    '--suppliers',
    '2',
    '--slots',
    '4',
    '--registries',
    '0',
    '--key-rate-per-minute',
    '1000000',
    '--key-max-concurrent',
    String(CLIENTS),
    '--data-dir',
    '.gcn/bench-load'
  ])
  try {
    const distributor = children(devnet.proc.pid!).find(c => c.cmd.includes(' distributor '))
    if (distributor === undefined) throw new Error('distributor process not found')
    const rssBefore = rssBytes(distributor.pid)
    let rssMax = rssBefore
    const sampler = setInterval(() => {
      rssMax = Math.max(rssMax, rssBytes(distributor.pid))
    }, 100)
    const client = new GcnClient({
      baseUrl: devnet.gateway,
      apiKey: devnet.apiKey,
      maxRetries: 50,
      retryBaseDelayMs: 100,
      timeoutMs: 300_000
    })
    const ttft: number[] = []
    const errors = new Map<string, number>()
    let completed = 0
    const started = performance.now()
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        const t0 = performance.now()
        try {
          const reply = client.chat({
            model: devnet.model,
            messages: [{ role: 'user', content: `Guard ${i}: who goes there?` }],
            max_tokens: 16,
            temperature: 0
          })
          let first = true
          for await (const _delta of reply) {
            if (first) {
              ttft.push(performance.now() - t0)
              first = false
            }
          }
          await reply.done
          completed++
        } catch (err) {
          const kind = err instanceof GcnApiError ? `${err.name} ${err.status ?? ''}`.trim() : err instanceof Error ? err.name : String(err)
          errors.set(kind, (errors.get(kind) ?? 0) + 1)
        }
      })
    )
    const seconds = (performance.now() - started) / 1000
    clearInterval(sampler)
    const mib = (b: number): string => fmt(b / 2 ** 20, 0)
    appendSection(
      [
        `## Load — ${new Date().toISOString().slice(0, 10)}`,
        '',
        `Machine: ${machine()}. ${CLIENTS} concurrent streaming SDK clients, one chat completion each (16 tokens, greedy), through one gateway of \`gcn devnet\` (tiny model, 2 suppliers × 4 slots, 1 thread each). The SDK retries retryable answers (all suppliers busy → 503, up to 50 times, backoff from 100 ms).`,
        '',
        '| clients | completed | errors | wall s | completions/s | TTFT p50 ms | TTFT p99 ms | distributor RSS before → max MiB |',
        '| --- | --- | --- | --- | --- | --- | --- | --- |',
        `| ${CLIENTS} | ${completed} | ${errors.size === 0 ? 0 : [...errors].map(([k, n]) => `${n} × ${k}`).join(', ')} | ${fmt(seconds, 1)} | ${fmt(completed / seconds, 1)} | ${fmt(percentile(ttft, 50), 0)} | ${fmt(percentile(ttft, 99), 0)} | ${mib(rssBefore)} → ${mib(rssMax)} |`,
        '',
        'TTFT here is measured by the client from sending the request, so it includes the time spent waiting for a free slot (and retries) — with 1,000 clients and 8 slots most of it is queueing.'
      ].join('\n')
    )
  } finally {
    await devnet.stop()
  }
}

await main()
