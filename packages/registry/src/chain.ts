import { randomBytes } from 'node:crypto'
import { GcnError, InvalidKeyError, loadOrCreateSecretFile } from '@gcn/core'
import {
  type Account,
  type Address,
  type Chain,
  createPublicClient,
  createWalletClient,
  defineChain,
  type EIP1193Provider,
  type Hex,
  http,
  type PublicClient,
  type Transport,
  custom as viemCustom,
  type WalletClient
} from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { GCN_SETTLEMENT_ABI } from './contracts.js'
import { encodeDaySignatures } from './settlement.js'

/** The EVM address of a raw secp256k1 key. */
export function evmAddressOf(privateKey: Hex): Address {
  return privateKeyToAccount(privateKey).address
}

/** A chain call failed (unreachable RPC, reverted transaction). */
export class ChainError extends GcnError {
  static override readonly code = 'ERR_CHAIN'
  override name = 'ChainError'
}

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n

/** Loads or creates (0600) a raw 32-byte secp256k1 key used to sign reports and send transactions. */
export async function loadOrCreateEvmKey(path: string, options: { create?: boolean } = {}): Promise<Hex> {
  const { value } = await loadOrCreateSecretFile(path, {
    what: 'EVM key file',
    create: options.create !== false,
    generate: () => {
      for (;;) {
        const bytes = randomBytes(32)
        const n = BigInt(`0x${bytes.toString('hex')}`)
        if (n > 0n && n < SECP256K1_N) return Buffer.from(`0x${bytes.toString('hex')}\n`)
      }
    },
    decode: bytes => {
      const text = Buffer.from(bytes).toString('utf8').trim()
      if (!/^0x[0-9a-fA-F]{64}$/.test(text)) throw new InvalidKeyError(`EVM key file ${path} must hold 0x and 64 hex digits`)
      return text.toLowerCase() as Hex
    }
  })
  return value
}

export interface SettlementChainInit {
  /** JSON-RPC URL of the rollup (or the devnet's embedded chain). */
  rpcUrl?: string
  /** An EIP-1193 provider instead of a URL (in-process chains). */
  provider?: EIP1193Provider
  settlement: Address
  /** Key that signs transactions (and reports); read-only without it. */
  privateKey?: Hex
}

/**
 * The settlement contract through viem: reads (day roots, delinquency) and,
 * with a key, transactions (post a day, apply debits, claim). Every
 * transaction waits for its receipt and throws ChainError on revert, with the
 * contract's custom error name in the message.
 */
export class SettlementChain {
  readonly account?: Account

  private constructor(
    readonly publicClient: PublicClient<Transport, Chain>,
    private readonly walletClient: WalletClient<Transport, Chain, Account> | undefined,
    readonly settlement: Address,
    readonly chainId: number
  ) {
    if (walletClient !== undefined) this.account = walletClient.account
  }

  static async connect(init: SettlementChainInit): Promise<SettlementChain> {
    const transport: Transport =
      init.provider !== undefined ? viemCustom(init.provider, { retryCount: 0 }) : http(init.rpcUrl, { retryCount: 2, timeout: 20_000 })
    const probe = createPublicClient({ transport })
    let chainId: number
    try {
      chainId = await probe.getChainId()
    } catch (err) {
      throw new ChainError(`cannot reach the chain at ${init.rpcUrl ?? 'the given provider'}`, { cause: err, hint: 'check --rpc-url' })
    }
    const chain = defineChain({
      id: chainId,
      name: `gcn-${chainId}`,
      nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
      rpcUrls: { default: { http: init.rpcUrl === undefined ? [] : [init.rpcUrl] } }
    })
    const publicClient = createPublicClient({ chain, transport }) as PublicClient<Transport, Chain>
    const walletClient =
      init.privateKey === undefined ? undefined : createWalletClient({ chain, transport, account: privateKeyToAccount(init.privateKey) })
    return new SettlementChain(publicClient, walletClient, init.settlement, chainId)
  }

  private wallet(): WalletClient<Transport, Chain, Account> {
    if (this.walletClient === undefined) throw new ChainError('this chain connection has no key to send transactions with')
    return this.walletClient
  }

  private async send(functionName: string, args: readonly unknown[]): Promise<{ hash: Hex; gasUsed: bigint }> {
    const wallet = this.wallet()
    try {
      const { request } = await this.publicClient.simulateContract({
        address: this.settlement,
        abi: GCN_SETTLEMENT_ABI,
        functionName: functionName as never,
        args: args as never,
        account: wallet.account
      })
      const hash = await wallet.writeContract(request as never)
      const receipt = await this.publicClient.waitForTransactionReceipt({ hash })
      if (receipt.status !== 'success') throw new ChainError(`${functionName} reverted (tx ${hash})`)
      return { hash, gasUsed: receipt.gasUsed }
    } catch (err) {
      if (err instanceof ChainError) throw err
      throw new ChainError(`${functionName} failed: ${revertName(err) ?? (err as Error).message?.split('\n')[0]}`, { cause: err })
    }
  }

  async dayRoot(day: number): Promise<Hex> {
    return (await this.read('dayRoot', [BigInt(day)])) as Hex
  }

  async delinquent(gameKey: Hex): Promise<boolean> {
    return (await this.read('delinquent', [gameKey])) as boolean
  }

  async claimed(day: number, account: Address): Promise<boolean> {
    return (await this.read('claimed', [BigInt(day), account])) as boolean
  }

  async reportDigest(day: number, root: Hex, totalDebit: bigint): Promise<Hex> {
    return (await this.read('reportDigest', [BigInt(day), root, totalDebit])) as Hex
  }

  private async read(functionName: string, args: readonly unknown[]): Promise<unknown> {
    try {
      return await this.publicClient.readContract({
        address: this.settlement,
        abi: GCN_SETTLEMENT_ABI,
        functionName: functionName as never,
        args: args as never
      })
    } catch (err) {
      throw new ChainError(`reading ${functionName} failed`, { cause: err })
    }
  }

  /**
   * Posts a day's root with `signatures` (signer address → its signature over reportDigest): reads the
   * registered signers and sends one postDay entry per signer (encodeDaySignatures). A signature by an
   * address that is not registered (any more) is a ChainError before anything is sent.
   */
  async postDay(day: number, root: Hex, totalDebit: bigint, signatures: ReadonlyMap<string, Hex>): Promise<{ hash: Hex; gasUsed: bigint }> {
    const signers = (await this.read('signers', [])) as readonly Address[]
    let entries: Hex[]
    try {
      entries = encodeDaySignatures(signers, signatures)
    } catch (err) {
      throw new ChainError(`postDay failed: ${(err as Error).message}`, { cause: err })
    }
    return this.send('postDay', [BigInt(day), root, totalDebit, entries])
  }

  applyDebit(day: number, gameKey: Hex, amount: bigint, proof: Hex[]): Promise<{ hash: Hex; gasUsed: bigint }> {
    return this.send('applyDebit', [BigInt(day), gameKey, amount, proof])
  }

  claim(day: number, account: Address, amount: bigint, proof: Hex[]): Promise<{ hash: Hex; gasUsed: bigint }> {
    return this.send('claim', [BigInt(day), account, amount, proof])
  }

  /**
   * Signs an already EIP-191-prefixed report hash (what `reportDigest` returns)
   * with the raw key: the same signature personal_sign gives over the unprefixed digest.
   */
  async signReportHash(prefixedHash: Hex): Promise<Hex> {
    const account = this.wallet().account as Account & { sign?: (args: { hash: Hex }) => Promise<Hex> }
    if (account.sign === undefined) throw new ChainError('this account cannot sign raw hashes')
    return account.sign({ hash: prefixedHash })
  }
}

/** The custom error name of a reverted call, when viem decoded one. */
export function revertName(err: unknown): string | undefined {
  let e: unknown = err
  for (let depth = 0; depth < 8 && e !== undefined && e !== null; depth++) {
    const data = (e as { data?: { errorName?: unknown } }).data
    if (typeof data?.errorName === 'string') return data.errorName
    e = (e as { cause?: unknown }).cause
  }
  return undefined
}
