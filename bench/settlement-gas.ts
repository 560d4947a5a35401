/**
 * Settlement gas (`node bench/dist/settlement-gas.js` after `tsc -b bench`): gas used, from receipts on the embedded
 * EDR chain (hardfork prague), by
 *  - postDay with threshold 1, 2 and 3 of 5 registered signers (each post stores one fresh root slot; the entries are
 *    the signers' EIP-2098 compact signatures plus the addresses of the registered signers that did not sign);
 *  - claim with a proof of depth 17 (a day tree of 131,072 leaves in the OpenZeppelin StandardMerkleTree layout):
 *    the recipient's first claim ever (no token balance, fresh claimed-bitmap word), a first claim in a fresh
 *    bitmap word by a recipient already holding tokens, the typical daily claim (word and balance both already
 *    non-zero), and the AVERAGE over one supplier claiming 256 consecutive days (one bitmap word: the fresh word is
 *    paid once), for a supplier already holding tokens and for a first-ever recipient (whose first claim also pays
 *    the ERC-20's new balance slot);
 *  - applyDebit at the same depth.
 * Prints a markdown table. The tree is hashed here (viem keccak256 on bytes); it is checked against
 * @openzeppelin/merkle-tree on a small tree first.
 */

import {
  deploySettlement,
  type EmbeddedChain,
  encodeDaySignatures,
  GCN_SETTLEMENT_ABI,
  GCN_TEST_TOKEN_ABI,
  startEmbeddedChain
} from '@gcn/registry'
import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { type Address, bytesToHex, encodeAbiParameters, type Hex, hexToBytes, keccak256, parseAbiParameters, toHex } from 'viem'
import { type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { appendSection, fmt, machine } from './lib.js'

const DEPTH = 17
const LEAVES = 2 ** DEPTH
const SAMPLES = Number(process.env.BENCH_GAS_SAMPLES ?? 5)
/** Consecutive days one supplier claims for the average rows: one claimed-bitmap word. */
const RUN = 256
const GOALS = { postDay: 60_000, claim: 70_000 }
/** postDay's fixed parts (gas): the root's fresh slot (cold SLOAD + SSTORE), the config slot (cold SLOAD), one ecrecover (precompile + warm call), DayPosted (LOG2, 96 bytes). */
const POST = { root: 22_100, config: 2_100, ecrecover: 3_100, event: 1_893 }

type Value = [kind: number, id: Hex, amount: bigint]
type EmbeddedWalletClient = EmbeddedChain['walletClients'][number]

// ---------------------------------------------------------------- tree (OZ StandardMerkleTree layout, fast)

function leafHash([kind, id, amount]: Value): Uint8Array {
  const encoded = new Uint8Array(96)
  encoded[31] = kind
  encoded.set(hexToBytes(id, { size: 32 }), 32)
  encoded.set(hexToBytes(toHex(amount, { size: 32 })), 64)
  return keccak256(keccak256(encoded, 'bytes'), 'bytes')
}

function compare(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return 0
}

const pair = new Uint8Array(64)
function hashPair(a: Uint8Array, b: Uint8Array): Uint8Array {
  const [x, y] = compare(a, b) <= 0 ? [a, b] : [b, a]
  pair.set(x, 0)
  pair.set(y, 32)
  return keccak256(pair, 'bytes')
}

/** A perfect tree (power-of-two leaves): levels[0] = sorted leaf hashes, last level = [root]. */
class FastTree {
  readonly levels: Uint8Array[][]
  readonly index = new Map<string, number>()

  constructor(values: Value[]) {
    if ((values.length & (values.length - 1)) !== 0) throw new Error('leaf count must be a power of two')
    const hashed = values.map(v => ({ v, h: leafHash(v) })).sort((a, b) => compare(a.h, b.h))
    for (const [i, { v }] of hashed.entries()) this.index.set(`${v[0]}:${v[1].toLowerCase()}`, i)
    this.levels = [hashed.map(x => x.h)]
    for (let level = this.levels[0]!; level.length > 1; ) {
      const next: Uint8Array[] = []
      for (let i = 0; i < level.length; i += 2) next.push(hashPair(level[i]!, level[i + 1]!))
      this.levels.push(next)
      level = next
    }
  }

  get root(): Hex {
    return bytesToHex(this.levels.at(-1)![0]!)
  }

  proof(kind: number, id: Hex): Hex[] {
    let i = this.index.get(`${kind}:${id.toLowerCase()}`)
    if (i === undefined) throw new Error('no such leaf')
    const proof: Hex[] = []
    for (const level of this.levels.slice(0, -1)) {
      proof.push(bytesToHex(level[i ^ 1]!))
      i >>= 1
    }
    return proof
  }
}

// ---------------------------------------------------------------- helpers

const creditId = (account: Address): Hex => `0x${account.slice(2).toLowerCase().padStart(64, '0')}`
const gameKey = (gameId: string): Hex => keccak256(toHex(gameId))
const byAddress = (a: { address: Address }, b: { address: Address }): number => (BigInt(a.address) < BigInt(b.address) ? -1 : 1)

function calldataGas(input: Hex): number {
  let gas = 0
  for (let i = 2; i < input.length; i += 2) gas += input.slice(i, i + 2) === '00' ? 4 : 16
  return gas
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length

interface Row {
  op: string
  gas: number[]
  calldata: number[]
  goal?: number
  /** The goal applies to the mean (an average over a sequence) instead of the median. */
  average?: boolean
  note: string
}

async function main(): Promise<void> {
  // the fast tree equals @openzeppelin/merkle-tree on a small tree
  {
    const small: Value[] = Array.from({ length: 16 }, (_, i) => [i % 2, keccak256(toHex(i)), BigInt(i * 1000 + 1)])
    const oz = StandardMerkleTree.of(small, ['uint8', 'bytes32', 'uint256'])
    const fast = new FastTree(small)
    if (oz.root !== fast.root) throw new Error(`tree mismatch: ${oz.root} vs ${fast.root}`)
    if (JSON.stringify(oz.getProof(small[3]!)) !== JSON.stringify(fast.proof(small[3]![0], small[3]![1]))) throw new Error('proof mismatch')
  }

  const chain = await startEmbeddedChain({ accounts: 6 + 3 * SAMPLES })
  try {
    const [deployer, gameOwner] = chain.walletClients as [EmbeddedWalletClient, EmbeddedWalletClient]
    const fresh = chain.accounts.slice(6, 6 + SAMPLES).map(a => a.address) // never held tokens
    const holders = chain.accounts.slice(6 + SAMPLES, 6 + 2 * SAMPLES).map(a => a.address) // hold tokens already
    const daily = chain.accounts.slice(6 + 2 * SAMPLES).map(a => a.address) // claim day after day
    const [runHolder, runFresh] = chain.accounts.slice(4, 6).map(a => a.address) as [Address, Address] // claim RUN days in a row
    const signers: PrivateKeyAccount[] = [0, 1, 2, 3, 4]
      .map(i => privateKeyToAccount(keccak256(toHex(`gcn/bench/settlement-signer/${i}`))))
      .sort(byAddress)
    const { settlement, token } = await deploySettlement({
      walletClient: deployer,
      publicClient: chain.publicClient,
      signers: signers.map(s => s.address),
      threshold: 2
    })
    const chainId = BigInt(chain.chain.id)
    const send = async (hash: Promise<Hex>) => {
      const receipt = await chain.publicClient.waitForTransactionReceipt({ hash: await hash })
      if (receipt.status !== 'success') throw new Error(`transaction ${receipt.transactionHash} failed`)
      const tx = await chain.publicClient.getTransaction({ hash: receipt.transactionHash })
      return { gas: Number(receipt.gasUsed), calldata: calldataGas(tx.input) }
    }
    const write = (wallet: EmbeddedWalletClient, functionName: string, args: readonly unknown[]) =>
      send(wallet.writeContract({ address: settlement, abi: GCN_SETTLEMENT_ABI, functionName, args } as never))
    const mint = (to: Address, amount: bigint) =>
      send(deployer.writeContract({ address: token, abi: GCN_TEST_TOKEN_ABI, functionName: 'mint', args: [to, amount] }))

    // the day tree: one game's debit pays every credit; 131,072 leaves in all
    const game = gameKey('bench-game')
    const measured = [...fresh, ...holders, ...daily, runHolder, runFresh]
    const amount = 1_234_567_890_123_456_789n // ~1.23 tokens: a typical daily credit
    const values: Value[] = [...measured.map((a): Value => [1, creditId(a), amount])]
    let filler = 0
    while (values.length < LEAVES - 1) values.push([1, creditId(`0x${keccak256(toHex(filler++)).slice(26)}`), amount])
    const totalDebit = amount * BigInt(values.length)
    values.push([0, game, totalDebit])
    const t0 = performance.now()
    const tree = new FastTree(values)
    const treeMs = performance.now() - t0
    const root = tree.root

    /** postDay's entries: `by` sign the day's report; the other registered signers are named by address. */
    const entries = async (by: PrivateKeyAccount[], day: bigint): Promise<Hex[]> => {
      const raw = keccak256(
        encodeAbiParameters(parseAbiParameters('bytes32, uint256, address, uint64, bytes32, uint256'), [
          keccak256(toHex('gcn/settlement/1')),
          chainId,
          settlement,
          day,
          root,
          totalDebit
        ])
      )
      const signatures = await Promise.all(by.map(s => s.signMessage({ message: { raw } })))
      return encodeDaySignatures(
        signers.map(s => s.address),
        new Map(by.map((s, i) => [s.address, signatures[i]!]))
      )
    }

    const firstDay = 20_480n // a 256-day word boundary (bitmap word 80)
    let day = firstDay
    const postRows = new Map<number, Row>()
    const post = async (threshold: number, count: number): Promise<void> => {
      await write(deployer, 'setSigners', [signers.map(s => s.address), BigInt(threshold)])
      let row = postRows.get(threshold)
      if (row === undefined) {
        row = {
          op: `postDay, threshold ${threshold} of 5`,
          gas: [],
          calldata: [],
          goal: GOALS.postDay,
          note: `${threshold} signature${threshold === 1 ? '' : 's'} + ${5 - threshold} non-signer addresses; stores the root only`
        }
        postRows.set(threshold, row)
      }
      for (let i = 0; i < count; i++) {
        const d = day++
        const r = await write(deployer, 'postDay', [d, root, totalDebit, await entries(signers.slice(0, threshold), d)])
        row.gas.push(r.gas)
        row.calldata.push(r.calldata)
      }
    }
    // RUN days in all (one bitmap word), the threshold-2 row measured on every day the others leave
    await post(1, SAMPLES)
    await post(3, SAMPLES)
    await post(2, RUN - 2 * SAMPLES)
    const days = Array.from({ length: Number(day - firstDay) }, (_, i) => firstDay + BigInt(i))

    // fund the pool: the game deposits and its debit is applied for the first 3 × SAMPLES days (more than all claims)
    const debitDays = days.slice(0, 3 * SAMPLES)
    await mint(gameOwner.account.address, totalDebit * BigInt(debitDays.length))
    await send(
      gameOwner.writeContract({
        address: token,
        abi: GCN_TEST_TOKEN_ABI,
        functionName: 'approve',
        args: [settlement, 2n ** 256n - 1n]
      })
    )
    await write(gameOwner, 'deposit', [game, totalDebit * BigInt(debitDays.length)])
    const debit: Row = { op: `applyDebit, depth ${DEPTH}`, gas: [], calldata: [], note: 'paid in full from the deposit' }
    for (const d of debitDays) {
      const r = await write(deployer, 'applyDebit', [d, game, totalDebit, tree.proof(0, game)])
      debit.gas.push(r.gas)
      debit.calldata.push(r.calldata)
    }
    for (const h of [...holders, runHolder]) await mint(h, 1n)

    const claims = async (op: string, note: string, pairs: [Address, bigint][], average = false): Promise<Row> => {
      const row: Row = { op, gas: [], calldata: [], goal: GOALS.claim, average, note }
      for (const [account, d] of pairs) {
        const r = await write(deployer, 'claim', [d, account, amount, tree.proof(1, creditId(account))])
        row.gas.push(r.gas)
        row.calldata.push(r.calldata)
      }
      return row
    }
    const rows: Row[] = [postRows.get(1)!, postRows.get(2)!, postRows.get(3)!]
    rows.push(
      await claims(
        `claim, depth ${DEPTH}: first ever`,
        'recipient had no tokens (the ERC-20 writes its new balance slot: +17,100 in the token, not in GcnSettlement); fresh claimed-bitmap word',
        fresh.map(a => [a, days[0]!])
      )
    )
    rows.push(
      await claims(
        `claim, depth ${DEPTH}: first in a 256-day word`,
        'recipient holds tokens; fresh claimed-bitmap word (+17,100 once per 256 days)',
        holders.map(a => [a, days[0]!])
      )
    )
    // the daily claimers: a first claim (not measured) then one claim per following day
    await claims(
      'warm-up',
      '',
      daily.map(a => [a, days[0]!])
    )
    rows.push(
      await claims(
        `claim, depth ${DEPTH}: typical (next day)`,
        'bitmap word and balance already non-zero',
        daily.flatMap(a => days.slice(1, 3).map((d): [Address, bigint] => [a, d]))
      )
    )
    rows.push(
      await claims(
        `claim, depth ${DEPTH}: **average**, ${RUN} consecutive days`,
        `one supplier holding tokens claims days ${days[0]}–${days.at(-1)} (one bitmap word): the fresh word's +17,100 is paid once, ≈ ${fmt(17_100 / RUN, 0)} a claim`,
        days.map((d): [Address, bigint] => [runHolder, d]),
        true
      )
    )
    rows.push(
      await claims(
        `claim, depth ${DEPTH}: **average**, ${RUN} days, first-ever recipient`,
        `the same for a supplier that never held the token: its first claim also pays the ERC-20's new balance slot (+17,100, inside the token), ≈ ${fmt(17_100 / RUN, 0)} more a claim`,
        days.map((d): [Address, bigint] => [runFresh, d]),
        true
      )
    )
    rows.push(debit)

    const out: string[] = []
    out.push(`### Settlement gas (${new Date().toISOString().slice(0, 10)})`)
    out.push('')
    out.push(
      `EDR (Hardhat 3.18 embedded chain), hardfork prague, contracts as compiled by scripts/compile-contracts.mjs (solc 0.8.37, optimizer 200 runs); gas from receipts, ` +
        `${SAMPLES} samples or more per row (median, mean, min–max; the goal is checked on the median, on the mean for the average rows). Day tree: ${LEAVES.toLocaleString('en-US')} leaves built in ${fmt(treeMs / 1000, 1)} s ` +
        `(viem keccak256, OpenZeppelin layout; checked against @openzeppelin/merkle-tree). Machine: ${machine()}.`
    )
    out.push('')
    out.push('| operation | gas (median) | mean | min–max | samples | of which calldata | goal | notes |')
    out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |')
    const n = (x: number): string => Math.round(x).toLocaleString('en-US')
    for (const r of rows) {
      const g = r.average ? mean(r.gas) : median(r.gas)
      const goal = r.goal === undefined ? '' : `≤ ${n(r.goal)}${r.average ? ' (mean)' : ''} ${g <= r.goal ? '✔' : '✘'}`
      out.push(
        `| ${r.op} | ${n(median(r.gas))} | ${r.average ? `**${n(mean(r.gas))}**` : n(mean(r.gas))} | ${n(Math.min(...r.gas))}–${n(Math.max(...r.gas))} | ` +
          `${r.gas.length} | ${n(median(r.calldata))} | ${goal} | ${r.note} |`
      )
    }
    out.push('')
    const rest = [1, 2, 3].map(t => {
      const r = postRows.get(t)!
      return n(median(r.gas) - 21_000 - median(r.calldata) - POST.root - POST.config - t * POST.ecrecover - POST.event)
    })
    out.push(
      `postDay: 21,000 base + calldata (a signature is 2 words ≈ 1,030, a registered signer that did not sign 1 word ≈ 370) + ${n(POST.root)} (the new root slot) + ` +
        `${n(POST.config)} (the config slot: threshold and the hash of the signer list) + ${n(POST.ecrecover)} per signature (ecrecover) + ${n(POST.event)} (DayPosted) ` +
        `are the floor; the rest (dispatch, ABI decoding, the report digest, rebuilding and hashing the signer list) is ${rest.join(', ')} at threshold 1, 2, 3. ` +
        'Anchors: Uniswap merkle-distributor claim ≈ 78,600 on average; a root-only post ≈ 47,000.'
    )
    appendSection(out.join('\n').replace(/^### Settlement gas \(([^)]*)\)/, '## Settlement gas — $1'))
  } finally {
    await chain.close()
  }
}

main().catch(err => {
  console.error(err)
  process.exitCode = 1
})
