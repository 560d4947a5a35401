/**
 * An embedded EVM dev chain: Hardhat 3's EDR simulated network run in this
 * process (no JSON-RPC server, no child process), hardfork prague, automine,
 * with prefunded accounts, wrapped in viem clients. Used by the settlement
 * tests, the gas bench and the devnet.
 *
 * Hardhat is imported lazily so that importing this module costs nothing
 * until a chain is started. The hardhat CLI refuses Node 20 but its runtime
 * works from code (docs: /work/shared/notes/stack-facts.md).
 */

import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { EthereumProvider } from 'hardhat/types/providers'
import {
  type Account,
  type Address,
  type Chain,
  type CustomTransport,
  createPublicClient,
  createWalletClient,
  custom,
  defineChain,
  type Hex,
  keccak256,
  type PublicClient,
  type Transport,
  toHex,
  type WalletClient
} from 'viem'
import { type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { GCN_SETTLEMENT_ABI, GCN_SETTLEMENT_BYTECODE, GCN_TEST_TOKEN_ABI, GCN_TEST_TOKEN_BYTECODE } from './contracts.js'
import { gameKey } from './settlement.js'

export interface EmbeddedChainOptions {
  /** Number of prefunded accounts (default 10). */
  accounts?: number
  /** Explicit private keys for the prefunded accounts (overrides `accounts`). */
  privateKeys?: readonly Hex[]
  /** Balance of each account in wei (default 10,000 ether). */
  balance?: bigint
  /** Chain id (default 31337). */
  chainId?: number
  /** viem polling interval in ms (default 20; blocks are mined on each transaction). */
  pollingInterval?: number
}

export type EmbeddedPublicClient = PublicClient<CustomTransport, Chain>
export type EmbeddedWalletClient = WalletClient<CustomTransport, Chain, PrivateKeyAccount>

export interface EmbeddedChain {
  chain: Chain
  /** The EIP-1193 provider of the in-process EDR network. */
  provider: EthereumProvider
  publicClient: EmbeddedPublicClient
  /** One wallet client per prefunded account (local signing, `eth_sendRawTransaction`). */
  walletClients: EmbeddedWalletClient[]
  accounts: PrivateKeyAccount[]
  privateKeys: Hex[]
  /** Closes the network connection; the chain's state is gone afterwards. */
  close(): Promise<void>
}

export const EMBEDDED_CHAIN_DEFAULTS = {
  accounts: 10,
  balance: 10n ** 22n,
  chainId: 31337,
  hardfork: 'prague',
  pollingInterval: 20
} as const

/** The deterministic private key of embedded-chain account `index`: keccak256("gcn/embedded-chain/account/<index>"). */
export function embeddedChainKey(index: number): Hex {
  return keccak256(toHex(`gcn/embedded-chain/account/${index}`))
}

/** Starts an in-process EDR chain (prague, automine) and returns viem clients over it. */
export async function startEmbeddedChain(options: EmbeddedChainOptions = {}): Promise<EmbeddedChain> {
  const chainId = options.chainId ?? EMBEDDED_CHAIN_DEFAULTS.chainId
  const balance = options.balance ?? EMBEDDED_CHAIN_DEFAULTS.balance
  const privateKeys = options.privateKeys
    ? [...options.privateKeys]
    : Array.from({ length: options.accounts ?? EMBEDDED_CHAIN_DEFAULTS.accounts }, (_, i) => embeddedChainKey(i))
  const accounts = privateKeys.map(key => privateKeyToAccount(key))

  const { createHardhatRuntimeEnvironment } = await import('hardhat/hre')
  const hre = await createHardhatRuntimeEnvironment(
    {
      networks: {
        embedded: {
          type: 'edr-simulated',
          chainType: 'l1',
          chainId,
          hardfork: EMBEDDED_CHAIN_DEFAULTS.hardfork,
          mining: { auto: true, interval: 0 },
          loggingEnabled: false,
          accounts: privateKeys.map(privateKey => ({ privateKey, balance }))
        }
      }
    },
    {},
    dirname(fileURLToPath(import.meta.url))
  )
  const connection = await hre.network.create('embedded')
  const provider = connection.provider

  const chain = defineChain({
    id: chainId,
    name: 'gcn embedded chain',
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [] } }
  })
  const transport = custom(provider, { retryCount: 0 })
  const pollingInterval = options.pollingInterval ?? EMBEDDED_CHAIN_DEFAULTS.pollingInterval
  const publicClient = createPublicClient({ chain, transport, pollingInterval })
  const walletClients = accounts.map(account => createWalletClient({ account, chain, transport, pollingInterval }))

  let closed = false
  return {
    chain,
    provider,
    publicClient,
    walletClients,
    accounts,
    privateKeys,
    async close() {
      if (closed) return
      closed = true
      await connection.close()
    }
  }
}

export interface DeploySettlementInit {
  walletClient: WalletClient<Transport, Chain, Account>
  publicClient: PublicClient<Transport, Chain>
  /** Registry signer addresses (any order; sorted ascending here as the contract requires). */
  signers: readonly Address[]
  threshold: number | bigint
  /** An existing ERC-20 to settle in; when absent a GcnTestToken is deployed. */
  token?: Address
  /** Name and symbol of the deployed test token (default "gcn test token", "GCNT"). */
  tokenName?: string
  tokenSymbol?: string
}

/** Deploys GcnTestToken (unless `token` is given) and GcnSettlement; the wallet's account owns both. */
export async function deploySettlement(init: DeploySettlementInit): Promise<{ settlement: Address; token: Address }> {
  const { walletClient, publicClient } = init
  const deploy = async (hash: Hex): Promise<Address> => {
    const receipt = await publicClient.waitForTransactionReceipt({ hash })
    if (receipt.status !== 'success' || !receipt.contractAddress) throw new Error(`deployment ${hash} failed`)
    return receipt.contractAddress
  }
  const token =
    init.token ??
    (await deploy(
      await walletClient.deployContract({
        abi: GCN_TEST_TOKEN_ABI,
        bytecode: GCN_TEST_TOKEN_BYTECODE,
        args: [init.tokenName ?? 'gcn test token', init.tokenSymbol ?? 'GCNT']
      })
    ))
  const signers = [...init.signers].sort((a, b) => {
    const x = BigInt(a)
    const y = BigInt(b)
    return x < y ? -1 : x > y ? 1 : 0
  })
  const settlement = await deploy(
    await walletClient.deployContract({
      abi: GCN_SETTLEMENT_ABI,
      bytecode: GCN_SETTLEMENT_BYTECODE,
      args: [token, signers, BigInt(init.threshold)]
    })
  )
  return { settlement, token }
}

/** Waits for a transaction's receipt and throws unless it succeeded. */
export async function waitForSuccess(publicClient: PublicClient<Transport, Chain>, hash: Hex): Promise<void> {
  const receipt = await publicClient.waitForTransactionReceipt({ hash })
  if (receipt.status !== 'success') throw new Error(`transaction ${hash} failed`)
}

export interface GameDepositInit {
  publicClient: PublicClient<Transport, Chain>
  /** Owns the test token (mints). */
  minter: WalletClient<Transport, Chain, Account>
  /** Pays the deposit (and becomes the game's owner on its first deposit). */
  payer: WalletClient<Transport, Chain, Account>
  token: Address
  settlement: Address
}

/** Mints `amount` test tokens to the payer, approves the settlement contract and deposits them for `gameId`. */
export async function depositTestTokens(init: GameDepositInit, gameId: string, amount: bigint): Promise<void> {
  const { publicClient, minter, payer, token, settlement } = init
  await waitForSuccess(
    publicClient,
    await minter.writeContract({ address: token, abi: GCN_TEST_TOKEN_ABI, functionName: 'mint', args: [payer.account.address, amount] })
  )
  await waitForSuccess(
    publicClient,
    await payer.writeContract({ address: token, abi: GCN_TEST_TOKEN_ABI, functionName: 'approve', args: [settlement, amount] })
  )
  await waitForSuccess(
    publicClient,
    await payer.writeContract({ address: settlement, abi: GCN_SETTLEMENT_ABI, functionName: 'deposit', args: [gameKey(gameId), amount] })
  )
}
