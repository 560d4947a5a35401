import type { Logger } from '@gcn/core'

/**
 * Runs until SIGINT or SIGTERM, then calls `stop` once. A second signal while
 * stopping exits at once with code 130, so a stuck shutdown can be forced.
 */
export function untilSignal(log: Logger, stop: () => Promise<void>): Promise<number> {
  return new Promise(resolve => {
    let stopping = false
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn('second signal, exiting now', { signal })
        process.exit(130)
      }
      stopping = true
      log.info('stopping', { signal })
      stop().then(
        () => resolve(0),
        err => {
          log.error('shutdown failed', { err })
          resolve(1)
        }
      )
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
}
