/**
 * Helpers of the protocol-handler fuzz test: a seeded PRNG, frame building and
 * mutation, a probe that writes bytes to a real libp2p v3 stream and reports
 * how the remote handler ended it (reset, clean close, or still open), and
 * readers of a target process's RSS and per-protocol stream counts.
 */
import { readFileSync } from 'node:fs'
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'

/** mulberry32: small, fast and deterministic for a given seed. */
export class Rng {
  private state: number

  constructor(seed: number) {
    this.state = seed >>> 0
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = this.int(256)
    return out
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!
  }
}

/** Unsigned LEB128 varint of a non-negative integer (any size). */
export function varint(value: number | bigint): Uint8Array {
  let n = BigInt(value)
  const out: number[] = []
  while (n >= 0x80n) {
    out.push(Number(n & 0x7fn) | 0x80)
    n >>= 7n
  }
  out.push(Number(n))
  return Uint8Array.from(out)
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}

/** One wire frame: varint length prefix + body. */
export function frame(body: Uint8Array): Uint8Array {
  return concat(varint(body.byteLength), body)
}

/** The bodies of the complete frames at the start of `data` (what a handler answered). */
export function frames(data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = []
  let at = 0
  while (at < data.byteLength) {
    let len = 0
    let shift = 0
    let i = at
    for (; i < data.byteLength; i++) {
      const b = data[i]!
      len += (b & 0x7f) * 2 ** shift
      shift += 7
      if (b < 0x80) break
    }
    if (i >= data.byteLength || i + 1 + len > data.byteLength) break
    out.push(data.subarray(i + 1, i + 1 + len))
    at = i + 1 + len
  }
  return out
}

/**
 * One random mutation: bit flips, truncation, overwritten, inserted or deleted
 * bytes, or a duplicated slice. Always returns different bytes than `input`
 * (unless `input` is empty, in which case it returns random bytes).
 */
export function mutate(rng: Rng, input: Uint8Array): Uint8Array {
  if (input.byteLength === 0) return rng.bytes(1 + rng.int(8))
  const len = input.byteLength
  for (;;) {
    let out: Uint8Array
    switch (rng.int(6)) {
      case 0: {
        out = input.slice()
        const flips = 1 + rng.int(4)
        for (let i = 0; i < flips; i++) out[rng.int(len)]! ^= 1 << rng.int(8)
        break
      }
      case 1:
        out = input.slice(0, rng.int(len))
        break
      case 2: {
        out = input.slice()
        const n = 1 + rng.int(3)
        for (let i = 0; i < n; i++) out[rng.int(len)] = rng.int(256)
        break
      }
      case 3: {
        const at = rng.int(len + 1)
        out = concat(input.subarray(0, at), rng.bytes(1 + rng.int(16)), input.subarray(at))
        break
      }
      case 4: {
        const at = rng.int(len)
        const n = 1 + rng.int(Math.min(16, len - at))
        out = concat(input.subarray(0, at), input.subarray(at + n))
        break
      }
      default: {
        const at = rng.int(len)
        const n = 1 + rng.int(Math.min(64, len - at))
        out = concat(input.subarray(0, at + n), input.subarray(at, at + n), input.subarray(at + n))
      }
    }
    if (out.byteLength !== len || out.some((b, i) => b !== input[i])) return out
  }
}

/**
 * A mutated version of a valid frame: half the time the body is mutated and
 * framed again (so the decoder and schema see it), otherwise the whole frame,
 * prefix included, is mutated (so the framing itself breaks).
 */
export function mutateFrame(rng: Rng, body: Uint8Array): Uint8Array {
  return rng.int(2) === 0 ? frame(mutate(rng, body)) : mutate(rng, frame(body))
}

/** A random but well-formed protobuf message (random field numbers and wire types, nested up to `depth`). */
export function randomProtobuf(rng: Rng, depth = 2): Uint8Array {
  const parts: Uint8Array[] = []
  const fields = rng.int(8)
  for (let i = 0; i < fields; i++) {
    const field = 1 + rng.int(16)
    const wire = rng.pick([0, 1, 2, 5])
    parts.push(varint((field << 3) | wire))
    if (wire === 0) parts.push(varint(rng.pick([0, 1, 2 ** 31, 2 ** 53 - 1, rng.int(1000)])))
    else if (wire === 1) parts.push(rng.bytes(8))
    else if (wire === 5) parts.push(rng.bytes(4))
    else {
      const body = depth > 0 && rng.int(3) === 0 ? randomProtobuf(rng, depth - 1) : rng.bytes(rng.int(70))
      parts.push(varint(body.byteLength), body)
    }
  }
  return concat(...parts)
}

export type Outcome = 'reset' | 'closed' | 'open'

export interface ProbeResult {
  /**
   * reset: the remote aborted the stream; closed: the remote closed its write
   * side cleanly (it finished with the stream); open: neither within waitMs.
   */
  outcome: Outcome
  /** When the outcome was seen, from the start of the probe. */
  ms: number
  /** Everything the remote sent (first 256 KiB). */
  data: Uint8Array
  /** Bytes this probe managed to send before the outcome. */
  sent: number
  error?: string
}

export interface ProbeOptions {
  /** Close our write side once everything is sent (the handler then sees the end of the stream). */
  closeWrite: boolean
  /** How long to wait for the remote to reset or close before reporting 'open'. */
  waitMs: number
  /** Send one byte every trickleMs instead of all at once (slowloris). */
  trickleMs?: number
  /** Keep the stream as it is after the outcome (the caller cleans up); by default it is aborted. */
  keep?: boolean
  /**
   * Settle only on a reset (or a full close), not when the remote merely closes
   * its write side: for handlers that answer and then must still let go of
   * the stream. The outcome is then 'open' while the remote holds the stream.
   */
  untilReset?: boolean
}

const KEEP_BYTES = 256 * 1024

/**
 * Sends `bytes` on `stream` (at once, or trickled) and reports what the remote
 * handler did with the stream. Never throws.
 */
export async function probe(stream: Stream, bytes: Uint8Array, options: ProbeOptions): Promise<ProbeResult> {
  const started = performance.now()
  const chunks: Uint8Array[] = []
  let kept = 0
  let sent = 0
  let reset = false
  let ended = false
  let error: string | undefined
  let settledAt = 0
  const { promise: settled, resolve: settle } = Promise.withResolvers<void>()
  const done = (): void => {
    if (settledAt === 0) settledAt = performance.now()
    settle()
  }
  const onMessage = (evt: StreamMessageEvent): void => {
    if (kept >= KEEP_BYTES) return
    const data = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
    chunks.push(data.slice(0, KEEP_BYTES - kept))
    kept += Math.min(data.byteLength, KEEP_BYTES - kept)
  }
  const onRemoteCloseWrite = (): void => {
    ended = true
    if (options.untilReset !== true) done()
  }
  const onClose = (evt: StreamCloseEvent): void => {
    if (evt.error !== undefined && evt.local !== true) {
      reset = true
      error = `${evt.error.name}: ${evt.error.message}`
    } else if (evt.error === undefined) {
      ended = true
    }
    done()
  }
  stream.addEventListener('message', onMessage)
  stream.addEventListener('remoteCloseWrite', onRemoteCloseWrite)
  stream.addEventListener('close', onClose)
  // Already over before we listened (a handler that refuses at once).
  if (stream.status === 'reset') reset = true
  else if (stream.status === 'closed') ended = true
  if (stream.status !== 'open') done()

  const timer = setTimeout(done, options.waitMs)
  const write = async (): Promise<void> => {
    try {
      if (options.trickleMs !== undefined) {
        for (let i = 0; i < bytes.byteLength && settledAt === 0; i++) {
          stream.send(bytes.subarray(i, i + 1))
          sent++
          await Promise.race([settled, new Promise(resolve => setTimeout(resolve, options.trickleMs))])
        }
      } else {
        for (let at = 0; at < bytes.byteLength && settledAt === 0; at += 64 * 1024) {
          const chunk = bytes.subarray(at, at + 64 * 1024)
          const more = stream.send(chunk)
          sent += chunk.byteLength
          if (!more) await Promise.race([settled, stream.onDrain({ signal: AbortSignal.timeout(options.waitMs) })])
        }
      }
      if (options.closeWrite && settledAt === 0) await stream.close({ signal: AbortSignal.timeout(options.waitMs) })
    } catch {
      // the remote reset the stream under us: the close event tells
    }
  }
  await write()
  await settled
  clearTimeout(timer)
  stream.removeEventListener('message', onMessage)
  stream.removeEventListener('remoteCloseWrite', onRemoteCloseWrite)
  stream.removeEventListener('close', onClose)
  const outcome: Outcome = reset ? 'reset' : ended && (options.untilReset !== true || stream.status !== 'open') ? 'closed' : 'open'
  if (options.keep !== true && stream.status === 'open') stream.abort(new Error('probe finished'))
  return {
    outcome,
    ms: Math.round(settledAt - started),
    data: concat(...chunks),
    sent,
    ...(error === undefined ? {} : { error })
  }
}

/** Runs `fn` over `items`, at most `concurrency` at a time, keeping the order of results. */
export async function pool<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
  return out
}

/** Resident set size of a process in MiB (VmRSS of /proc/<pid>/status). */
export function rssMiB(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB$/m)
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(m[1]) / 1024
}

/** libp2p's `libp2p_protocol_streams_total` of a role's GET /metrics: open streams by protocol (both directions). */
export async function streamCounts(metricsUrl: string): Promise<Map<string, number>> {
  const res = await fetch(metricsUrl, { signal: AbortSignal.timeout(10_000) })
  if (!res.ok) throw new Error(`GET ${metricsUrl}: HTTP ${res.status}`)
  const out = new Map<string, number>()
  for (const m of (await res.text()).matchAll(/^libp2p_protocol_streams_total\{protocol="(?:inbound|outbound) ([^"]*)"\} (\d+)$/gm)) {
    out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]))
  }
  return out
}

export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
