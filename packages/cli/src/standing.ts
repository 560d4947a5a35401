import { ConfigError, type Logger } from '@gcn/core'
import { gameKey, SettlementChain } from '@gcn/registry'

/**
 * Keeps the distributor's view of which games are delinquent on the
 * settlement contract, refreshed on a timer; a game is served while its last
 * known standing is good (a chain outage does not stop the games).
 */
export async function watchGameStanding(
  init: { rpcUrl: string | undefined; settlementAddress: string | undefined; refreshMs: number },
  gameIds: string[],
  log: Logger
): Promise<{
  inGoodStanding(gameId: string): boolean
  dayPosted(day: number): Promise<{ day: number; posted: boolean; root?: string }>
  stop(): void
}> {
  if (init.rpcUrl === undefined || init.settlementAddress === undefined) {
    throw new ConfigError('checking game standing needs both --rpc-url and --settlement-address')
  }
  const chain = await SettlementChain.connect({ rpcUrl: init.rpcUrl, settlement: init.settlementAddress as `0x${string}` })
  const delinquent = new Set<string>()
  const refresh = async (): Promise<void> => {
    for (const gameId of new Set(gameIds)) {
      try {
        const bad = await chain.delinquent(gameKey(gameId))
        if (bad && !delinquent.has(gameId)) log.warn('game is delinquent: refusing its requests', { gameId })
        if (!bad && delinquent.has(gameId)) log.info('game is in good standing again', { gameId })
        if (bad) delinquent.add(gameId)
        else delinquent.delete(gameId)
      } catch (err) {
        log.warn('could not read game standing', { gameId, err })
      }
    }
  }
  await refresh()
  const timer = setInterval(() => void refresh(), init.refreshMs)
  timer.unref()
  const ZERO = `0x${'00'.repeat(32)}`
  return {
    inGoodStanding: gameId => !delinquent.has(gameId),
    dayPosted: async day => {
      const root = await chain.dayRoot(day)
      return root === ZERO ? { day, posted: false } : { day, posted: true, root }
    },
    stop: () => clearInterval(timer)
  }
}
