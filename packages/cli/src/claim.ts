import { join } from 'node:path'
import { ConfigError, type ConfigSchema, formatHelp, loadConfig } from '@gcn/core'
import { evmAddressOf, loadOrCreateEvmKey, SettlementChain } from '@gcn/registry'
import { evmAddressOption } from './common-options.js'

export const claimSchema = {
  registryUrl: {
    type: 'string',
    required: true,
    valueName: 'URL',
    description: "a registry peer's HTTP endpoint (serves the claim proofs)"
  },
  rpcUrl: { type: 'string', required: true, valueName: 'URL', description: 'JSON-RPC URL of the rollup' },
  settlementAddress: { ...evmAddressOption('GcnSettlement contract address'), required: true },
  day: { type: 'integer', min: 0, required: true, description: 'settlement day to claim' },
  dataDir: { type: 'string', valueName: 'DIR', default: join('.gcn', 'supplier'), description: 'the supplier data directory' },
  evmKeyFile: {
    type: 'string',
    valueName: 'PATH',
    description: 'key of the reward address (default DATA_DIR/evm.key); it pays the gas, the tokens go to the reward address'
  },
  account: { type: 'string', valueName: 'ADDRESS', description: "reward address to claim for (default: the key's address)" }
} satisfies ConfigSchema

export const claimHelp = formatHelp(
  'gcn supplier claim --registry-url URL --rpc-url URL --settlement-address ADDRESS --day N [options]',
  "Claim a supplier's earnings for one settled day: fetches the Merkle proof from a registry peer and calls claim() on the settlement contract.",
  claimSchema
)

interface ProofAnswer {
  day: number
  account: `0x${string}`
  amount: string
  proof: `0x${string}`[]
  posted: boolean
}

export async function runSupplierClaim(argv: string[]): Promise<number> {
  const { values, help } = loadConfig(claimSchema, { argv })
  if (help) {
    process.stdout.write(claimHelp)
    return 0
  }
  const privateKey = await loadOrCreateEvmKey(values.evmKeyFile ?? join(values.dataDir, 'evm.key'), { create: false })
  const account = (values.account ?? evmAddressOf(privateKey)) as `0x${string}`
  const url = `${values.registryUrl.replace(/\/$/, '')}/settlement/proof?day=${values.day}&account=${account}`
  let response: Response
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(30_000) })
  } catch (err) {
    throw new ConfigError(`cannot reach the registry at ${values.registryUrl}`, { cause: err })
  }
  const body = (await response.json()) as ProofAnswer | { error: { code: string; message: string } }
  if (!response.ok || 'error' in body) {
    const message = 'error' in body ? body.error.message : `HTTP ${response.status}`
    throw new ConfigError(`the registry has no claim for ${account} on day ${values.day}: ${message}`)
  }
  const chain = await SettlementChain.connect({ rpcUrl: values.rpcUrl, settlement: values.settlementAddress as `0x${string}`, privateKey })
  const amount = BigInt(body.amount)
  const { hash, gasUsed } = await chain.claim(values.day, body.account, amount, body.proof)
  process.stdout.write(`claimed ${amount} for ${body.account} on day ${values.day}\ntx: ${hash}\ngas used: ${gasUsed}\n`)
  return 0
}
