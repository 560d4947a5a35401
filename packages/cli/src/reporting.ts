import { BlockClock, type GcnNode, type Logger, RegistryClient, RegistryOutbox } from '@gcn/core'

/** The block clock from the shared clock options. */
export function clockFrom(values: { genesisMs: number; blockMs: number; blocksPerDay: number }): BlockClock {
  return new BlockClock({ genesisMs: values.genesisMs, blockMs: values.blockMs, blocksPerDay: values.blocksPerDay })
}

/** An outbox to the configured registries, or undefined when none are configured (nothing is reported then). */
export function registryOutbox(registries: string[] | undefined, node: GcnNode, log: Logger): RegistryOutbox | undefined {
  if (registries === undefined || registries.length === 0) {
    log.warn('no --registry configured: completed tasks are not reported and will not be settled')
    return undefined
  }
  const client = new RegistryClient({ registries }, { node, logger: log })
  return new RegistryOutbox({}, { client, logger: log })
}
