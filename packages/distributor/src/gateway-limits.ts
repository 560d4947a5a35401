/**
 * Defaults and abuse limits of the HTTP gateway: per-key token buckets,
 * per-key concurrency slots and per-IP failed-auth buckets. Clocks are
 * monotonic milliseconds (performance.now()) passed in by the caller.
 */
import { ConfigError } from '@gcn/core'

/** Tunables of a running gateway; `GatewayInit.limits` overrides any of them. */
export interface GatewayLimits {
  /** Overall deadline of one inference request, streaming included. */
  requestTimeoutMs: number
  /** Time a client has to send all request headers (slowloris guard). */
  headersTimeoutMs: number
  /** Time a client has to send the whole request, body included. */
  bodyTimeoutMs: number
  /** Idle time before a keep-alive connection is closed. */
  keepAliveTimeoutMs: number
  /** `max_tokens` when the request names none. */
  defaultMaxTokens: number
  /** Failed authentications one client IP may make per minute before it gets 429. */
  authFailuresPerMinute: number
  /** Inference requests in flight across all keys before new ones get 503. */
  maxActiveRequests: number
  /** Client IPs remembered by the failed-auth limiter (bounds its memory). */
  maxTrackedClients: number
}

/** Every default of the gateway, in one place. */
export const GATEWAY_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  port: 8080,
  /** Largest accepted request body (413 beyond). */
  maxBodyBytes: 1024 * 1024,
  /** Per-key defaults used by ApiKeyStore.fromPlainKeys. */
  keyRatePerMinute: 60,
  keyMaxConcurrent: 4,
  /** Longest accepted `model` string. */
  maxModelChars: 256,
  requestTimeoutMs: 120_000,
  headersTimeoutMs: 10_000,
  bodyTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  defaultMaxTokens: 256,
  authFailuresPerMinute: 20,
  maxActiveRequests: 1_024,
  maxTrackedClients: 10_000
})

const LIMIT_KEYS: readonly (keyof GatewayLimits)[] = [
  'requestTimeoutMs',
  'headersTimeoutMs',
  'bodyTimeoutMs',
  'keepAliveTimeoutMs',
  'defaultMaxTokens',
  'authFailuresPerMinute',
  'maxActiveRequests',
  'maxTrackedClients'
]

/** Merges overrides over the defaults; throws ConfigError naming the first bad value. */
export function resolveLimits(overrides: Partial<GatewayLimits> = {}): GatewayLimits {
  const out = {} as GatewayLimits
  for (const key of LIMIT_KEYS) {
    const value = overrides[key] ?? GATEWAY_DEFAULTS[key]
    if (!Number.isSafeInteger(value) || value < 1) throw new ConfigError(`gateway limit ${key} must be a positive integer`)
    out[key] = value
  }
  return out
}

/** Whole seconds for a Retry-After header: at least 1, rounded up. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000))
}

/**
 * A token bucket holding up to `capacity` tokens, refilled continuously at
 * `perMinute` tokens a minute. A fresh bucket is full, so a key may burst its
 * whole minute's allowance and then proceeds at the steady rate.
 */
export class TokenBucket {
  private tokens: number
  private updatedAt: number

  constructor(
    readonly capacity: number,
    readonly perMinute: number,
    now: number
  ) {
    this.tokens = capacity
    this.updatedAt = now
  }

  private refill(now: number): void {
    const elapsed = Math.max(0, now - this.updatedAt)
    this.tokens = Math.min(this.capacity, this.tokens + (elapsed * this.perMinute) / 60_000)
    this.updatedAt = now
  }

  /** Milliseconds until one token is available; 0 when one is available now. */
  waitMs(now: number): number {
    this.refill(now)
    if (this.tokens >= 1) return 0
    return ((1 - this.tokens) * 60_000) / this.perMinute
  }

  /** Takes a token: returns 0, or (taking nothing) the milliseconds until one is available. */
  take(now: number): number {
    const wait = this.waitMs(now)
    if (wait === 0) this.tokens -= 1
    return wait
  }

  /** True when the bucket has refilled completely and so carries no state worth keeping. */
  isFull(now: number): boolean {
    this.refill(now)
    return this.tokens >= this.capacity
  }
}

/**
 * Token buckets by key (API-key hash or client IP) with bounded memory: full
 * buckets are indistinguishable from new ones and are pruned first, then the
 * oldest entries.
 */
export class BucketMap {
  private readonly buckets = new Map<string, TokenBucket>()

  constructor(private readonly maxEntries: number) {}

  get size(): number {
    return this.buckets.size
  }

  /** The bucket of `key`, created full; a change of `perMinute` starts a fresh bucket. */
  get(key: string, perMinute: number, now: number): TokenBucket {
    let bucket = this.buckets.get(key)
    if (bucket === undefined || bucket.perMinute !== perMinute) {
      if (bucket === undefined && this.buckets.size >= this.maxEntries) this.evict(now)
      bucket = new TokenBucket(perMinute, perMinute, now)
      this.buckets.set(key, bucket)
    }
    return bucket
  }

  /** Milliseconds until `key` has a token, without creating state for unknown keys. */
  waitMs(key: string, now: number): number {
    return this.buckets.get(key)?.waitMs(now) ?? 0
  }

  private evict(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.isFull(now)) this.buckets.delete(key)
    }
    // Still full of active entries: drop the oldest so memory stays bounded.
    const excess = this.buckets.size - this.maxEntries + 1
    if (excess > 0) {
      let n = 0
      for (const key of this.buckets.keys()) {
        if (n++ >= excess) break
        this.buckets.delete(key)
      }
    }
  }
}

/** Counts in-flight requests per key against a per-key maximum. */
export class ConcurrencyLimiter {
  private readonly active = new Map<string, number>()

  /** Takes a slot for `key` unless it already has `max` in flight. */
  tryAcquire(key: string, max: number): boolean {
    const n = this.active.get(key) ?? 0
    if (n >= max) return false
    this.active.set(key, n + 1)
    return true
  }

  release(key: string): void {
    const n = this.active.get(key) ?? 0
    if (n <= 1) this.active.delete(key)
    else this.active.set(key, n - 1)
  }

  count(key: string): number {
    return this.active.get(key) ?? 0
  }
}
