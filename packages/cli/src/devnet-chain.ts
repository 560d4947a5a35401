import { deploySettlement, GCN_SETTLEMENT_ABI, GCN_TEST_TOKEN_ABI, gameKey, serveJsonRpc, startEmbeddedChain } from '@gcn/registry'

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
    const wait = async (hash: `0x${string}`): Promise<void> => {
      const receipt = await publicClient.waitForTransactionReceipt({ hash })
      if (receipt.status !== 'success') throw new Error(`devnet chain setup transaction ${hash} failed`)
    }
    for (const to of init.fund) await wait(await deployer.sendTransaction({ to, value: 10n ** 20n }))
    for (const game of init.games) {
      await wait(
        await deployer.writeContract({
          address: token,
          abi: GCN_TEST_TOKEN_ABI,
          functionName: 'mint',
          args: [owner.account.address, game.deposit]
        })
      )
      await wait(
        await owner.writeContract({ address: token, abi: GCN_TEST_TOKEN_ABI, functionName: 'approve', args: [settlement, game.deposit] })
      )
      await wait(
        await owner.writeContract({
          address: settlement,
          abi: GCN_SETTLEMENT_ABI,
          functionName: 'deposit',
          args: [gameKey(game.gameId), game.deposit]
        })
      )
    }
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
