import { InvalidBlockError } from './errors.js'

/**
 * The block clock: time is cut into fixed blocks from a genesis instant, and
 * days are a fixed number of blocks. Everything that is settled (receipts,
 * confirmations, daily posts) is keyed by block height or day, so every peer
 * must derive them from the same three numbers.
 */
export interface BlockClockInit {
  /** Unix ms of block 0's start. */
  genesisMs: number
  /** Length of one block in ms. */
  blockMs: number
  /** Blocks in one settlement day. */
  blocksPerDay: number
}

/** Production: 2 s blocks, 43,200 blocks (24 h) per day. */
export const PRODUCTION_CLOCK = Object.freeze({ blockMs: 2000, blocksPerDay: 43_200 })
/** Devnet and tests: 200 ms blocks, 50 blocks (10 s) per day. */
export const DEVNET_CLOCK = Object.freeze({ blockMs: 200, blocksPerDay: 50 })

function assertSafeInteger(value: number, what: string, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new InvalidBlockError(`${what} must be an integer >= ${min}, got ${value}`)
  }
}

export class BlockClock {
  readonly genesisMs: number
  readonly blockMs: number
  readonly blocksPerDay: number

  constructor(init: BlockClockInit) {
    assertSafeInteger(init.genesisMs, 'genesisMs', 0)
    assertSafeInteger(init.blockMs, 'blockMs', 1)
    assertSafeInteger(init.blocksPerDay, 'blocksPerDay', 1)
    this.genesisMs = init.genesisMs
    this.blockMs = init.blockMs
    this.blocksPerDay = init.blocksPerDay
  }

  /** Height of the block containing instant `tMs`; a block owns [start, start + blockMs). */
  blockHeight(tMs: number = Date.now()): number {
    if (!Number.isFinite(tMs) || tMs < this.genesisMs) {
      throw new InvalidBlockError(`time ${tMs} is before genesis ${this.genesisMs}`, {
        hint: 'check the genesis time in the config and the system clock'
      })
    }
    return Math.floor((tMs - this.genesisMs) / this.blockMs)
  }

  /** The settlement day a block belongs to. */
  day(height: number): number {
    assertSafeInteger(height, 'block height', 0)
    return Math.floor(height / this.blocksPerDay)
  }

  /** Unix ms at which block `height` starts. */
  blockStartMs(height: number): number {
    assertSafeInteger(height, 'block height', 0)
    return this.genesisMs + height * this.blockMs
  }

  /** First block height of `day`. */
  firstBlockOfDay(day: number): number {
    assertSafeInteger(day, 'day', 0)
    return day * this.blocksPerDay
  }

  /** Last block height of `day` (inclusive). */
  lastBlockOfDay(day: number): number {
    return this.firstBlockOfDay(day) + this.blocksPerDay - 1
  }

  /** Milliseconds from `tMs` until the next block starts (never 0: at a boundary it is a whole block). */
  msUntilNextBlock(tMs: number = Date.now()): number {
    const height = this.blockHeight(tMs)
    return this.blockStartMs(height + 1) - tMs
  }
}
