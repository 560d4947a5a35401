import { expect } from 'chai'
import { BlockClock, DEVNET_CLOCK, PRODUCTION_CLOCK } from '../src/clock.js'
import { InvalidBlockError } from '../src/errors.js'

describe('BlockClock', () => {
  const genesisMs = 1_700_000_000_000
  const prod = new BlockClock({ genesisMs, ...PRODUCTION_CLOCK })
  const dev = new BlockClock({ genesisMs, ...DEVNET_CLOCK })

  it('puts genesis in block 0 of day 0', () => {
    expect(prod.blockHeight(genesisMs)).to.equal(0)
    expect(prod.day(0)).to.equal(0)
  })

  it('owns [start, start + blockMs) per block', () => {
    expect(prod.blockHeight(genesisMs + 1999)).to.equal(0)
    expect(prod.blockHeight(genesisMs + 2000)).to.equal(1)
    expect(dev.blockHeight(genesisMs + 199)).to.equal(0)
    expect(dev.blockHeight(genesisMs + 200)).to.equal(1)
  })

  it('changes day exactly at the day boundary', () => {
    expect(prod.day(43_199)).to.equal(0)
    expect(prod.day(43_200)).to.equal(1)
    expect(dev.day(49)).to.equal(0)
    expect(dev.day(50)).to.equal(1)
    // 24 h of production blocks is one day
    expect(prod.day(prod.blockHeight(genesisMs + 86_400_000 - 1))).to.equal(0)
    expect(prod.day(prod.blockHeight(genesisMs + 86_400_000))).to.equal(1)
    // a devnet day is 10 s
    expect(dev.day(dev.blockHeight(genesisMs + 9_999))).to.equal(0)
    expect(dev.day(dev.blockHeight(genesisMs + 10_000))).to.equal(1)
  })

  it('maps days to first and last blocks', () => {
    expect(dev.firstBlockOfDay(3)).to.equal(150)
    expect(dev.lastBlockOfDay(3)).to.equal(199)
    expect(dev.day(dev.firstBlockOfDay(3))).to.equal(3)
    expect(dev.day(dev.lastBlockOfDay(3))).to.equal(3)
    expect(dev.blockStartMs(10)).to.equal(genesisMs + 2000)
  })

  it('tells time to the next block', () => {
    expect(dev.msUntilNextBlock(genesisMs)).to.equal(200)
    expect(dev.msUntilNextBlock(genesisMs + 150)).to.equal(50)
  })

  it('rejects times before genesis and bad heights with a typed error', () => {
    expect(() => prod.blockHeight(genesisMs - 1)).to.throw(InvalidBlockError)
    expect(() => prod.blockHeight(Number.NaN)).to.throw(InvalidBlockError)
    expect(() => prod.day(-1)).to.throw(InvalidBlockError)
    expect(() => prod.day(1.5)).to.throw(InvalidBlockError)
    expect(() => new BlockClock({ genesisMs, blockMs: 0, blocksPerDay: 1 })).to.throw(InvalidBlockError)
    expect(() => new BlockClock({ genesisMs, blockMs: 1, blocksPerDay: 0 })).to.throw(InvalidBlockError)
  })
})
