import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { expect } from 'chai'
import {
  type Address,
  BaseError,
  ContractFunctionRevertedError,
  encodeAbiParameters,
  getContract,
  type Hex,
  hashMessage,
  keccak256,
  type Log,
  pad,
  parseAbiParameters,
  parseEventLogs,
  parseSignature,
  recoverMessageAddress,
  serializeSignature,
  type TransactionReceipt,
  toHex
} from 'viem'
import { type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { GCN_SETTLEMENT_ABI, GCN_SETTLEMENT_BYTECODE, GCN_TEST_TOKEN_ABI } from '../src/contracts.js'
import { deploySettlement, type EmbeddedChain, type EmbeddedWalletClient, startEmbeddedChain } from '../src/embedded-chain.js'
import { encodeDaySignatures } from '../src/settlement.js'

const S = GCN_SETTLEMENT_ABI
const T = GCN_TEST_TOKEN_ABI
const LEAF_TYPES = ['uint8', 'bytes32', 'uint256']
const ZERO_ROOT = pad('0x', { size: 32 })
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n

/** The repository root (this file runs from test/ under tsx and from dist/test/ once compiled). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'scripts', 'contracts-lib.mjs'))) {
    const up = dirname(dir)
    if (up === dir) throw new Error('repository root not found')
    dir = up
  }
  return dir
}

interface ContractsLib {
  OUTPUT_FILE: string
  compileContracts(): Record<string, { abi: unknown[]; bytecode: Hex }>
  generateContractsTs(compiled?: Record<string, { abi: unknown[]; bytecode: Hex }>): string
}

const byAddress = (a: { address: Address }, b: { address: Address }): number =>
  BigInt(a.address) < BigInt(b.address) ? -1 : BigInt(a.address) > BigInt(b.address) ? 1 : 0

const gameKey = (gameId: string): Hex => keccak256(toHex(gameId))
const creditId = (account: Address): Hex => pad(account, { size: 32 })
/** A postDay entry for a registered signer that did not sign: its address as one word. */
const word = (account: Address): Hex => pad(account.toLowerCase() as Hex, { size: 32 })
/** A postDay entry for a signer that signed: its EIP-2098 compact signature (r, yParityAndS), taken as is. */
function compact(signature: Hex): Hex[] {
  const { r, s, yParity } = parseSignature(signature)
  return [r, toHex((BigInt(yParity!) << 255n) | BigInt(s), { size: 32 })]
}

function revertName(err: unknown): string | undefined {
  if (!(err instanceof BaseError)) return undefined
  const reverted = err.walk(e => e instanceof ContractFunctionRevertedError)
  return reverted instanceof ContractFunctionRevertedError ? reverted.data?.errorName : undefined
}

async function expectRevert(p: Promise<unknown>, name: string): Promise<void> {
  let error: unknown
  try {
    await p
  } catch (err) {
    error = err
  }
  expect(error, `expected a revert with ${name}`).to.exist
  expect(revertName(error), String(error)).to.equal(name)
}

describe('settlement contracts (embedded EDR chain)', function () {
  this.timeout(60_000)

  let chain: EmbeddedChain
  let settlement: Address
  let token: Address
  let chainId: bigint
  // registered signers, sorted by address; `outsider` is not registered
  const keys = [0, 1, 2, 3].map(i => privateKeyToAccount(keccak256(toHex(`gcn/test/settlement-signer/${i}`))))
  const registered = keys.slice(0, 3).sort(byAddress)
  const outsider = keys[3]!
  let owner: EmbeddedWalletClient
  let gameOwnerA: EmbeddedWalletClient
  let gameOwnerB: EmbeddedWalletClient
  let stranger: EmbeddedWalletClient
  let suppliers: Address[]

  const contract = (wallet: EmbeddedWalletClient) =>
    getContract({ address: settlement, abi: S, client: { public: chain.publicClient, wallet } })
  const tokenAs = (wallet: EmbeddedWalletClient) => getContract({ address: token, abi: T, client: { public: chain.publicClient, wallet } })
  const read = () => getContract({ address: settlement, abi: S, client: chain.publicClient }).read

  async function mined(hash: Promise<Hex>): Promise<TransactionReceipt> {
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash: await hash })
    expect(receipt.status).to.equal('success')
    return receipt
  }

  function events(receipt: { logs: Log[] }) {
    return parseEventLogs({ abi: S, logs: receipt.logs })
  }

  function innerDigest(day: bigint, root: Hex, totalDebit: bigint): Hex {
    return keccak256(
      encodeAbiParameters(parseAbiParameters('bytes32, uint256, address, uint64, bytes32, uint256'), [
        keccak256(toHex('gcn/settlement/1')),
        chainId,
        settlement,
        day,
        root,
        totalDebit
      ])
    )
  }

  async function sign(signers: PrivateKeyAccount[], day: bigint, root: Hex, totalDebit: bigint): Promise<Hex[]> {
    const raw = innerDigest(day, root, totalDebit)
    return Promise.all(signers.map(s => s.signMessage({ message: { raw } })))
  }

  /** postDay's entries for `signers` signing the report, against the registered list `set`. */
  async function entries(signers: PrivateKeyAccount[], day: bigint, root: Hex, totalDebit: bigint, set = registered): Promise<Hex[]> {
    const sigs = await sign(signers, day, root, totalDebit)
    return encodeDaySignatures(
      set.map(s => s.address),
      new Map(signers.map((s, i) => [s.address, sigs[i]!]))
    )
  }

  const balanceOf = (account: Address) => tokenAs(owner).read.balanceOf([account])

  before(async () => {
    chain = await startEmbeddedChain({ accounts: 8 })
    ;[owner, gameOwnerA, gameOwnerB, stranger] = chain.walletClients as [
      EmbeddedWalletClient,
      EmbeddedWalletClient,
      EmbeddedWalletClient,
      EmbeddedWalletClient
    ]
    suppliers = chain.accounts.slice(4, 8).map(a => a.address)
    chainId = BigInt(await chain.publicClient.getChainId())
    ;({ settlement, token } = await deploySettlement({
      walletClient: owner,
      publicClient: chain.publicClient,
      signers: registered.map(s => s.address),
      threshold: 2
    }))
    for (const w of [gameOwnerA, gameOwnerB, stranger]) {
      await mined(tokenAs(owner).write.mint([w.account.address, 1_000_000n]))
      await mined(tokenAs(w).write.approve([settlement, 2n ** 256n - 1n]))
    }
  })

  after(async () => {
    await chain?.close()
  })

  it('the committed src/contracts.ts equals a fresh compile of contracts/*.sol', async () => {
    const lib = (await import(pathToFileURL(join(repoRoot(), 'scripts', 'contracts-lib.mjs')).href)) as ContractsLib
    const compiled = lib.compileContracts()
    const fresh = lib.generateContractsTs(compiled)
    expect(readFileSync(lib.OUTPUT_FILE, 'utf8') === fresh, 'src/contracts.ts is stale: run node scripts/compile-contracts.mjs').to.equal(
      true
    )
    // and the module under test is that file (not a stale build)
    expect(GCN_SETTLEMENT_BYTECODE).to.equal(compiled.GcnSettlement!.bytecode)
  })

  it('deploys with the signer set, threshold, owner and token', async () => {
    expect(await read().signers()).to.deep.equal(registered.map(s => s.address))
    expect(await read().threshold()).to.equal(2n)
    expect((await read().owner()).toLowerCase()).to.equal(owner.account.address.toLowerCase())
    expect((await read().token()).toLowerCase()).to.equal(token.toLowerCase())
    expect(await read().isSigner([registered[0]!.address])).to.equal(true)
    expect(await read().isSigner([outsider.address])).to.equal(false)
  })

  describe('deposits and withdrawals', () => {
    const game = gameKey('deposit-game')

    it('the first depositor becomes the game owner; deposits add up', async () => {
      const receipt = await mined(contract(gameOwnerA).write.deposit([game, 500n]))
      const [ev] = events(receipt)
      expect(ev?.eventName).to.equal('Deposited')
      expect(ev?.args).to.deep.include({ game, amount: 500n })
      await mined(contract(stranger).write.deposit([game, 250n]))
      expect(await read().deposits([game])).to.equal(750n)
      expect(await read().gameOwner([game])).to.equal(gameOwnerA.account.address)
      expect(await read().delinquent([game])).to.equal(false)
      expect(await balanceOf(settlement)).to.equal(750n)
    })

    it('only the game owner withdraws, within the deposit, a non-zero amount', async () => {
      await expectRevert(contract(stranger).write.withdraw([game, 1n]), 'NotGameOwner')
      await expectRevert(contract(gameOwnerA).write.withdraw([game, 751n]), 'InsufficientDeposit')
      await expectRevert(contract(gameOwnerA).write.withdraw([game, 0n]), 'ZeroAmount')
      await expectRevert(contract(gameOwnerA).write.deposit([game, 0n]), 'ZeroAmount')
      await expectRevert(contract(gameOwnerA).write.withdraw([gameKey('nobody'), 1n]), 'NotGameOwner')
      const before = await balanceOf(gameOwnerA.account.address)
      const receipt = await mined(contract(gameOwnerA).write.withdraw([game, 700n]))
      expect(events(receipt).map(e => e.eventName)).to.deep.equal(['Withdrawn'])
      expect(await balanceOf(gameOwnerA.account.address)).to.equal(before + 700n)
      expect(await read().deposits([game])).to.equal(50n)
    })

    it('a deposit beyond the allowance or balance fails with TransferFailed', async () => {
      await expectRevert(contract(owner).write.deposit([game, 1n]), 'TransferFailed')
    })
  })

  describe('reports', () => {
    const root = keccak256(toHex('a root'))

    it('reportDigest is the EIP-191 hash of the abi-encoded report, as viem signs it', async () => {
      const raw = innerDigest(7n, root, 1234n)
      expect(await read().reportDigest([7n, root, 1234n])).to.equal(hashMessage({ raw }))
      const [sig] = await sign([registered[0]!], 7n, root, 1234n)
      expect(await recoverMessageAddress({ message: { raw }, signature: sig! })).to.equal(registered[0]!.address)
    })

    it('refuses too few, duplicated, unsorted, unregistered, malformed and mismatched signatures', async () => {
      const day = 10n
      const [a, b, c] = (await sign(registered, day, root, 99n)).map(compact) as [Hex[], Hex[], Hex[]]
      const [A, B, C] = registered.map(s => word(s.address)) as [Hex, Hex, Hex]
      const post = (list: Hex[], r: Hex = root, total = 99n) => contract(stranger).write.postDay([day, r, total, list])
      await expectRevert(post([...a, B, C]), 'NotEnoughSignatures')
      await expectRevert(post([A, B, C]), 'NotEnoughSignatures')
      await expectRevert(post([]), 'NotEnoughSignatures')
      await expectRevert(post([...a]), 'NotEnoughSignatures')
      await expectRevert(post([...a, ...a, C]), 'SignersNotAscending')
      await expectRevert(post([...b, ...a, C]), 'SignersNotAscending')
      await expectRevert(post([...a, ...c, ...b]), 'SignersNotAscending')
      const x = compact((await sign([outsider], day, root, 99n))[0]!)
      await expectRevert(post([...a, ...x, C]), 'NotASigner')
      await expectRevert(post([...x, ...a, C]), 'NotASigner')
      // the addresses of the registered signers that did not sign: missing, wrong, misplaced, repeated
      await expectRevert(post([...a, ...b]), 'InvalidSignerList')
      await expectRevert(post([...a, ...b, word(outsider.address)]), 'InvalidSignerList')
      await expectRevert(post([...a, C, ...b]), 'InvalidSignerList')
      await expectRevert(post([...a, ...b, C, C]), 'InvalidSignerList')
      await expectRevert(post([A, ...b, ...c, A]), 'InvalidSignerList')
      // malformed: cut short by the end of the array, r not below n, s zero
      await expectRevert(post([...a, B, C, b[0]!]), 'InvalidSignature')
      await expectRevert(post([...a, toHex(SECP256K1_N, { size: 32 }), b[1]!, C]), 'InvalidSignature')
      await expectRevert(post([...a, b[0]!, pad('0x', { size: 32 }), C]), 'InvalidSignature')
      // a high s is refused before recovery: the high-s twin n - s of a valid signature does not fit
      // the 255 bits of a compact s (but with probability 2^-127), and any s in (n/2, 2^255) is refused
      await expectRevert(post([...a, b[0]!, toHex((SECP256K1_N >> 1n) + 1n, { size: 32 }), C]), 'InvalidSignature')
      await expectRevert(post([...a, b[0]!, toHex((1n << 255n) | ((SECP256K1_N >> 1n) + 1n), { size: 32 }), C]), 'InvalidSignature')
      // signatures over another report (day, root or total) recover to other addresses
      const otherDay = compact((await sign([registered[1]!], day + 1n, root, 99n))[0]!)
      await expectRevert(post([...a, ...otherDay, C]), 'NotASigner')
      const otherRoot = compact((await sign([registered[1]!], day, keccak256(toHex('another root')), 99n))[0]!)
      await expectRevert(post([...a, ...otherRoot, C]), 'NotASigner')
      await expectRevert(post([...a, ...b, C], root, 100n), 'NotASigner')
      await expectRevert(post([...a, ...b, C], ZERO_ROOT), 'InvalidProof')
      expect(await read().dayRoot([day])).to.equal(ZERO_ROOT)
    })

    it('encodes signatures as postDay entries: compact, low s, v as 27/28 or 0/1, 64 or 65 bytes, registered signers only', async () => {
      const addresses = registered.map(s => s.address)
      const [a, b] = await sign(registered.slice(0, 2), 12n, root, 7n)
      const expected = [...compact(a!), ...compact(b!), word(addresses[2]!)]
      const encode = (sigA: Hex, sigB: Hex) =>
        encodeDaySignatures(
          [...addresses].reverse(),
          new Map([
            [addresses[1]!.toLowerCase(), sigB],
            [addresses[0]!, sigA]
          ])
        )
      expect(encode(a!, b!)).to.deep.equal(expected)
      const { r, s, yParity } = parseSignature(b!)
      const v01 = `0x${b!.slice(2, 130)}${yParity === 0 ? '00' : '01'}` as Hex
      expect(encode(a!, v01)).to.deep.equal(expected)
      expect(
        encode(
          a!,
          `0x${compact(b!)
            .map(w => w.slice(2))
            .join('')}`
        )
      ).to.deep.equal(expected)
      const highS = serializeSignature({ r, s: toHex(SECP256K1_N - BigInt(s), { size: 32 }), v: yParity === 0 ? 28n : 27n })
      expect(encode(a!, highS)).to.deep.equal(expected)
      expect(() => encodeDaySignatures(addresses, new Map([[outsider.address, a!]]))).to.throw(RangeError, /not a registered signer/)
      expect(() => encodeDaySignatures(addresses, new Map([[addresses[0]!, '0x1234' as Hex]]))).to.throw(RangeError)
      expect(encodeDaySignatures(addresses, new Map())).to.deep.equal(addresses.map(word))
    })

    it('accepts threshold signers once; the second post of a day is refused', async () => {
      const day = 11n
      const list = await entries([registered[0]!, registered[2]!], day, root, 42n)
      expect(list).to.have.length(5)
      expect(list[2]).to.equal(word(registered[1]!.address))
      const receipt = await mined(contract(stranger).write.postDay([day, root, 42n, list]))
      const [ev] = events(receipt)
      expect(ev?.eventName).to.equal('DayPosted')
      expect(ev?.args).to.deep.equal({ day, root, totalDebit: 42n, submitter: stranger.account.address })
      expect(await read().dayRoot([day])).to.equal(root)
      await expectRevert(contract(stranger).write.postDay([day, root, 42n, await entries(registered, day, root, 42n)]), 'DayAlreadyPosted')
      // all three signers are fine too
      await mined(contract(stranger).write.postDay([day + 1n, root, 42n, await entries(registered, day + 1n, root, 42n)]))
      expect(await read().dayRoot([day + 1n])).to.equal(root)
    })
  })

  describe('a settled day', () => {
    const day = 300n // word 1 of the day bitmaps
    const gameA = gameKey('game-a') // deposit 1,000, debit 300: paid in full
    const gameB = gameKey('game-b') // deposit 100, debit 250: 100 paid, 150 owed
    let tree: StandardMerkleTree<[number, Hex, bigint]>
    let credits: [Address, bigint][]
    const proofOf = (kind: number, id: Hex): Hex[] => {
      for (const [i, v] of tree.entries()) if (v[0] === kind && v[1].toLowerCase() === id.toLowerCase()) return tree.getProof(i) as Hex[]
      throw new Error('no such leaf')
    }

    before(async () => {
      await mined(contract(gameOwnerA).write.deposit([gameA, 1_000n]))
      await mined(contract(gameOwnerB).write.deposit([gameB, 100n]))
      credits = [
        [suppliers[0]!, 200n],
        [suppliers[1]!, 150n],
        [suppliers[2]!, 200n]
      ]
      const values: [number, Hex, bigint][] = [
        [0, gameA, 300n],
        [0, gameB, 250n],
        ...credits.map(([account, amount]): [number, Hex, bigint] => [1, creditId(account), amount])
      ]
      values.sort((x, y) => x[0] - y[0] || (BigInt(x[1]) < BigInt(y[1]) ? -1 : 1))
      tree = StandardMerkleTree.of(values, LEAF_TYPES)
    })

    it('nothing applies before the day is posted', async () => {
      await expectRevert(contract(stranger).write.applyDebit([day, gameA, 300n, proofOf(0, gameA)]), 'DayNotPosted')
      await expectRevert(contract(stranger).write.claim([day, suppliers[0]!, 200n, proofOf(1, creditId(suppliers[0]!))]), 'DayNotPosted')
    })

    it('posts the day', async () => {
      const root = tree.root as Hex
      await mined(contract(stranger).write.postDay([day, root, 550n, await entries(registered.slice(1), day, root, 550n)]))
      expect(await read().dayRoot([day])).to.equal(root)
    })

    it('debits a game with enough deposit exactly, once', async () => {
      const paidBefore = await read().totalPaidIn()
      const receipt = await mined(contract(stranger).write.applyDebit([day, gameA, 300n, proofOf(0, gameA)]))
      expect(events(receipt).map(e => [e.eventName, e.args])).to.deep.equal([
        ['GameDebited', { day, game: gameA, amount: 300n, paid: 300n }]
      ])
      expect(await read().deposits([gameA])).to.equal(700n)
      expect(await read().owed([gameA])).to.equal(0n)
      expect(await read().debited([day, gameA])).to.equal(true)
      expect(await read().totalPaidIn()).to.equal(paidBefore + 300n)
      await expectRevert(contract(stranger).write.applyDebit([day, gameA, 300n, proofOf(0, gameA)]), 'AlreadyDebited')
    })

    it('refuses a debit with a wrong amount or proof', async () => {
      await expectRevert(contract(stranger).write.applyDebit([day, gameB, 1n, proofOf(0, gameB)]), 'InvalidProof')
      await expectRevert(contract(stranger).write.applyDebit([day, gameB, 250n, proofOf(0, gameA)]), 'InvalidProof')
      await expectRevert(contract(stranger).write.applyDebit([day, gameB, 250n, []]), 'InvalidProof')
    })

    it('a game short of deposit pays what it has, owes the rest and becomes delinquent', async () => {
      const paidBefore = await read().totalPaidIn()
      const receipt = await mined(contract(stranger).write.applyDebit([day, gameB, 250n, proofOf(0, gameB)]))
      expect(events(receipt).map(e => [e.eventName, e.args])).to.deep.equal([
        ['GameDebited', { day, game: gameB, amount: 250n, paid: 100n }],
        ['GameDelinquent', { game: gameB, day, owed: 150n }]
      ])
      expect(await read().deposits([gameB])).to.equal(0n)
      expect(await read().owed([gameB])).to.equal(150n)
      expect(await read().delinquent([gameB])).to.equal(true)
      expect(await read().totalPaidIn()).to.equal(paidBefore + 100n)
      await expectRevert(contract(gameOwnerB).write.withdraw([gameB, 1n]), 'GameIsDelinquent')
    })

    it('claims pay exactly the amount to the account, once, whoever submits', async () => {
      const [account, amount] = credits[0]!
      const proof = proofOf(1, creditId(account))
      const before = await balanceOf(account)
      const claimedBefore = await read().totalClaimed()
      expect(await read().claimed([day, account])).to.equal(false)
      const receipt = await mined(contract(stranger).write.claim([day, account, amount, proof]))
      expect(events(receipt).map(e => [e.eventName, e.args])).to.deep.equal([['Claimed', { day, account, amount }]])
      expect(await balanceOf(account)).to.equal(before + amount)
      expect(await read().claimed([day, account])).to.equal(true)
      expect(await read().claimed([day - 256n, account])).to.equal(false)
      expect(await read().totalClaimed()).to.equal(claimedBefore + amount)
      await expectRevert(contract(stranger).write.claim([day, account, amount, proof]), 'AlreadyClaimed')
    })

    it('refuses a claim with a bad proof or amount', async () => {
      const [account, amount] = credits[1]!
      await expectRevert(contract(stranger).write.claim([day, account, amount + 1n, proofOf(1, creditId(account))]), 'InvalidProof')
      await expectRevert(contract(stranger).write.claim([day, account, amount, proofOf(1, creditId(suppliers[0]!))]), 'InvalidProof')
      await expectRevert(contract(stranger).write.claim([day, suppliers[3]!, amount, proofOf(1, creditId(account))]), 'InvalidProof')
      // a debit leaf is not a credit
      await expectRevert(contract(stranger).write.claim([day, account, 300n, proofOf(0, gameA)]), 'InvalidProof')
    })

    it('claims are paid only from what games paid in; a deposit repays the debt first', async () => {
      // paid in on this contract so far: 300 (game A) + 100 (game B); claimed 200
      expect(await read().totalPaidIn()).to.equal(400n)
      const [s1, a1] = credits[1]!
      await mined(contract(stranger).write.claim([day, s1, a1, proofOf(1, creditId(s1))]))
      const [s2, a2] = credits[2]!
      await expectRevert(contract(stranger).write.claim([day, s2, a2, proofOf(1, creditId(s2))]), 'InsufficientPool')

      const receipt = await mined(contract(gameOwnerB).write.deposit([gameB, 200n]))
      expect(events(receipt).map(e => e.eventName)).to.deep.equal(['Deposited', 'GameReinstated'])
      expect(await read().owed([gameB])).to.equal(0n)
      expect(await read().delinquent([gameB])).to.equal(false)
      expect(await read().deposits([gameB])).to.equal(50n)
      expect(await read().totalPaidIn()).to.equal(550n)

      const before = await balanceOf(s2)
      await mined(contract(stranger).write.claim([day, s2, a2, proofOf(1, creditId(s2))]))
      expect(await balanceOf(s2)).to.equal(before + a2)
      expect(await read().totalClaimed()).to.equal(550n)
      await mined(contract(gameOwnerB).write.withdraw([gameB, 50n]))
    })

    it('a partial repayment keeps the game delinquent', async () => {
      const nextDay = day + 1n
      const tree2 = StandardMerkleTree.of([[0, gameB, 80n] as [number, Hex, bigint]], LEAF_TYPES)
      const root = tree2.root as Hex
      await mined(contract(stranger).write.postDay([nextDay, root, 80n, await entries(registered.slice(0, 2), nextDay, root, 80n)]))
      await mined(contract(stranger).write.applyDebit([nextDay, gameB, 80n, tree2.getProof(0) as Hex[]]))
      expect(await read().owed([gameB])).to.equal(80n)
      const receipt = await mined(contract(gameOwnerB).write.deposit([gameB, 30n]))
      expect(events(receipt).map(e => e.eventName)).to.deep.equal(['Deposited'])
      expect(await read().owed([gameB])).to.equal(50n)
      expect(await read().delinquent([gameB])).to.equal(true)
      expect(await read().deposits([gameB])).to.equal(0n)
    })
  })

  describe('owner', () => {
    it('setSigners and transferOwnership are owner-only; thresholds are checked', async () => {
      const next = [registered[0]!, outsider].sort(byAddress)
      const addrs = next.map(s => s.address)
      await expectRevert(contract(stranger).write.setSigners([addrs, 1n]), 'NotOwner')
      await expectRevert(contract(owner).write.setSigners([addrs, 0n]), 'InvalidThreshold')
      await expectRevert(contract(owner).write.setSigners([addrs, 3n]), 'InvalidThreshold')
      await expectRevert(contract(owner).write.setSigners([[], 0n]), 'InvalidThreshold')
      await expectRevert(contract(owner).write.setSigners([[addrs[1]!, addrs[0]!], 1n]), 'SignersNotAscending')
      await expectRevert(contract(owner).write.setSigners([[addrs[0]!, addrs[0]!], 1n]), 'SignersNotAscending')
      await expectRevert(contract(stranger).write.transferOwnership([stranger.account.address]), 'NotOwner')

      const receipt = await mined(contract(owner).write.setSigners([addrs, 2n]))
      expect(events(receipt).map(e => [e.eventName, e.args])).to.deep.equal([['SignersChanged', { signers: addrs, threshold: 2n }]])
      expect(await read().signers()).to.deep.equal(addrs)
      expect(await read().threshold()).to.equal(2n)

      // the old set no longer posts; the new one does
      const day = 20n
      const root = keccak256(toHex('owner test'))
      await expectRevert(contract(stranger).write.postDay([day, root, 1n, await entries(registered.slice(1), day, root, 1n)]), 'NotASigner')
      // one signature is below the new threshold of 2; a valid pair with a stale extra address is not the registered list
      await expectRevert(
        contract(stranger).write.postDay([day, root, 1n, await entries([registered[0]!], day, root, 1n)]),
        'NotEnoughSignatures'
      )
      await expectRevert(
        contract(stranger).write.postDay([
          day,
          root,
          1n,
          [...(await entries([registered[0]!, outsider], day, root, 1n, next)), word(registered[1]!.address)]
        ]),
        'InvalidSignerList'
      )
      await mined(contract(stranger).write.postDay([day, root, 1n, await entries(next, day, root, 1n, next)]))

      const moved = await mined(contract(owner).write.transferOwnership([gameOwnerA.account.address]))
      expect(events(moved).map(e => [e.eventName, e.args])).to.deep.equal([
        ['OwnershipTransferred', { previousOwner: owner.account.address, newOwner: gameOwnerA.account.address }]
      ])
      await expectRevert(contract(owner).write.setSigners([addrs, 1n]), 'NotOwner')
      await mined(contract(gameOwnerA).write.setSigners([addrs, 1n]))
      expect(await read().threshold()).to.equal(1n)
    })
  })
})
