import { deploySettlement, depositTestTokens, serveJsonRpc, startEmbeddedChain, waitForSuccess } from '@gcn/registry'

type Address = `0x${string}`

export interface DevnetChain {
  rpcUrl: string
  settlement: Address
  token: Address
  /** The account that owns the devnet games' deposits. */
  gameOwner: Address
  close(): Promise<void>
}

/**
 * The devnet's rollup: an in-process EDR chain (Hardhat 3 from code) served as
 * JSON-RPC on 127.0.0.1, with the test token and the settlement contract
 * deployed, the registry signers funded for gas, and each game's deposit made.
 * It is a development chain: its state lives as long as the devnet process.
 */
export async function startDevnetChain(init: {
  signers: Address[]
  threshold: number
  /** Addresses that need gas (registry signers, suppliers that claim). */
  fund: Address[]
  games: Array<{ gameId: string; deposit: bigint }>
}): Promise<DevnetChain> {
  const chain = await startEmbeddedChain()
  const rpc = await serveJsonRpc(chain.provider as never)
  try {
    const [deployer, owner] = chain.walletClients as [(typeof chain.walletClients)[0], (typeof chain.walletClients)[0]]
    const { publicClient } = chain
    const { settlement, token } = await deploySettlement({
      walletClient: deployer as never,
      publicClient: publicClient as never,
      signers: init.signers,
      threshold: init.threshold
    })
    for (const to of init.fund) await waitForSuccess(publicClient as never, await deployer.sendTransaction({ to, value: 10n ** 20n }))
    const depositor = { publicClient: publicClient as never, minter: deployer as never, payer: owner as never, token, settlement }
    for (const game of init.games) await depositTestTokens(depositor, game.gameId, game.deposit)
    return {
      rpcUrl: rpc.url,
      settlement,
      token,
      gameOwner: owner.account.address,
      close: async () => {
        await rpc.close()
        await chain.close()
      }
    }
  } catch (err) {
    await rpc.close()
    await chain.close()
    throw err
  }
}
