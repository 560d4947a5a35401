import type { Address, Hex } from 'viem'
import {
  deploySettlement,
  depositTestTokens,
  type EmbeddedChain,
  type EmbeddedWalletClient,
  startEmbeddedChain,
  waitForSuccess
} from './embedded-chain.js'
import { serveJsonRpc } from './rpc-server.js'

export interface ServedSettlementChainInit {
  /** Registry signers the contract accepts day reports from. */
  signers: Address[]
  threshold: number
  /** Addresses sent 100 ETH for gas (registry signers, suppliers that claim). */
  fund: Address[]
  /** Address the JSON-RPC endpoint listens on (default 127.0.0.1). */
  host?: string
}

export interface ServedSettlementChain {
  chain: EmbeddedChain
  /** JSON-RPC URL of the chain, for the registries and the CLI. */
  rpcUrl: string
  settlement: Address
  token: Address
  /** Deployed the contracts; mints the test token. */
  deployer: EmbeddedWalletClient
  /** Owns the games' deposits. */
  gameOwner: EmbeddedWalletClient
  /** Waits for a transaction and throws unless it succeeded. */
  wait(hash: Hex): Promise<void>
  /** Mints `amount` test tokens to the game owner and deposits them for `gameId`. */
  deposit(gameId: string, amount: bigint): Promise<void>
  close(): Promise<void>
}

/**
 * A development rollup: an in-process EDR chain served as JSON-RPC, with the
 * test token and GcnSettlement (`signers`, `threshold`) deployed and each
 * address of `fund` given gas. Its state lives as long as this process. The
 * devnet and the settlement tests both run on it.
 */
export async function startServedSettlementChain(init: ServedSettlementChainInit): Promise<ServedSettlementChain> {
  const chain = await startEmbeddedChain({ accounts: 2 })
  const rpc = await serveJsonRpc(chain.provider as never, init.host === undefined ? {} : { host: init.host })
  const close = async (): Promise<void> => {
    await rpc.close()
    await chain.close()
  }
  try {
    const [deployer, gameOwner] = chain.walletClients as [EmbeddedWalletClient, EmbeddedWalletClient]
    const { publicClient } = chain
    const { settlement, token } = await deploySettlement({
      walletClient: deployer as never,
      publicClient: publicClient as never,
      signers: init.signers,
      threshold: init.threshold
    })
    const wait = (hash: Hex): Promise<void> => waitForSuccess(publicClient as never, hash)
    for (const to of init.fund) await wait(await deployer.sendTransaction({ to, value: 10n ** 20n }))
    const depositor = { publicClient: publicClient as never, minter: deployer as never, payer: gameOwner as never, token, settlement }
    return {
      chain,
      rpcUrl: rpc.url,
      settlement,
      token,
      deployer,
      gameOwner,
      wait,
      deposit: (gameId, amount) => depositTestTokens(depositor, gameId, amount),
      close
    }
  } catch (err) {
    await close()
    throw err
  }
}
