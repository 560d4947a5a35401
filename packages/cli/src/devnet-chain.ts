import { startServedSettlementChain } from '@gcn/registry'

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
  const served = await startServedSettlementChain({ signers: init.signers, threshold: init.threshold, fund: init.fund })
  try {
    for (const game of init.games) await served.deposit(game.gameId, game.deposit)
  } catch (err) {
    await served.close()
    throw err
  }
  return {
    rpcUrl: served.rpcUrl,
    settlement: served.settlement,
    token: served.token,
    gameOwner: served.gameOwner.account.address,
    close: () => served.close()
  }
}
