/**
 * API keys of the gateway, one or more per game. Only sha256 hashes of keys
 * are held, so a dump of the store (or of the config it came from) does not
 * reveal usable keys.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { ConfigError, REQUEST_LIMITS } from '@gcn/core'
import { GATEWAY_DEFAULTS } from './gateway-limits.js'

/** One key as stored: never the key itself. */
export interface ApiKeyRecord {
  gameId: string
  /** sha256 of the key's UTF-8 bytes, lowercase hex (see hashApiKey). */
  keyHash: string
  /** Requests per minute (token bucket; bursts up to one minute's worth). */
  ratePerMinute: number
  /** Requests in flight at once. */
  maxConcurrent: number
}

/** A plain key for the devnet and tests; hashed on the way in. */
export interface PlainApiKey {
  key: string
  gameId: string
  ratePerMinute?: number
  maxConcurrent?: number
}

const HASH_RE = /^[0-9a-f]{64}$/

/** sha256 hex of a key, the form in which keys are configured and stored. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex')
}

function checkRecord(record: ApiKeyRecord): ApiKeyRecord {
  const { gameId, keyHash, ratePerMinute, maxConcurrent } = record
  if (typeof gameId !== 'string' || gameId.length === 0 || gameId.length > REQUEST_LIMITS.maxIdChars) {
    throw new ConfigError(`API key gameId must be 1..${REQUEST_LIMITS.maxIdChars} characters`)
  }
  if (typeof keyHash !== 'string' || !HASH_RE.test(keyHash)) {
    throw new ConfigError(`API key of game ${gameId}: keyHash must be 64 lowercase hex characters`, {
      hint: 'store hashApiKey(key), never the key itself'
    })
  }
  if (!Number.isFinite(ratePerMinute) || ratePerMinute <= 0) {
    throw new ConfigError(`API key of game ${gameId}: ratePerMinute must be a positive number`)
  }
  if (!Number.isSafeInteger(maxConcurrent) || maxConcurrent < 1) {
    throw new ConfigError(`API key of game ${gameId}: maxConcurrent must be a positive integer`)
  }
  return Object.freeze({ gameId, keyHash, ratePerMinute, maxConcurrent })
}

export class ApiKeyStore {
  private readonly byHash = new Map<string, { record: ApiKeyRecord; digest: Buffer }>()

  constructor(records: Iterable<ApiKeyRecord> = []) {
    for (const record of records) this.add(record)
  }

  /** Hashes plain keys (devnet, tests); rate and concurrency default from GATEWAY_DEFAULTS. */
  static fromPlainKeys(keys: PlainApiKey[]): ApiKeyStore {
    return new ApiKeyStore(
      keys.map(k => {
        if (typeof k.key !== 'string' || k.key.length === 0) throw new ConfigError(`API key of game ${k.gameId} is empty`)
        return {
          gameId: k.gameId,
          keyHash: hashApiKey(k.key),
          ratePerMinute: k.ratePerMinute ?? GATEWAY_DEFAULTS.keyRatePerMinute,
          maxConcurrent: k.maxConcurrent ?? GATEWAY_DEFAULTS.keyMaxConcurrent
        }
      })
    )
  }

  get size(): number {
    return this.byHash.size
  }

  /** Adds or replaces the record of `record.keyHash`. */
  add(record: ApiKeyRecord): void {
    const checked = checkRecord(record)
    this.byHash.set(checked.keyHash, { record: checked, digest: Buffer.from(checked.keyHash, 'hex') })
  }

  /** Revokes a key by its hash; true when it was present. */
  remove(keyHash: string): boolean {
    return this.byHash.delete(keyHash)
  }

  /** All records (hashes only), e.g. for a dashboard. */
  records(): ApiKeyRecord[] {
    return [...this.byHash.values()].map(e => ({ ...e.record }))
  }

  /**
   * The record of a presented key, or undefined. The Map lookup is keyed by
   * the hash (which an attacker cannot steer towards a stored one); the final
   * equality check is constant-time anyway.
   */
  lookup(key: string): ApiKeyRecord | undefined {
    const digest = createHash('sha256').update(key, 'utf8').digest()
    const entry = this.byHash.get(digest.toString('hex'))
    if (entry === undefined || !timingSafeEqual(entry.digest, digest)) return undefined
    return entry.record
  }
}
