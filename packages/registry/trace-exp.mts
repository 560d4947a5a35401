import { encodeAbiParameters, keccak256, parseAbiParameters, toHex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { GCN_SETTLEMENT_ABI } from './src/contracts.js'
import { deploySettlement, startEmbeddedChain } from './src/embedded-chain.js'

const c = await startEmbeddedChain()
const signers = [0, 1, 2, 3, 4]
  .map(i => privateKeyToAccount(keccak256(toHex(`s${i}`))))
  .sort((a, b) => (BigInt(a.address) < BigInt(b.address) ? -1 : 1))
const { settlement } = await deploySettlement({
  walletClient: c.walletClients[0]!,
  publicClient: c.publicClient,
  signers: signers.map(s => s.address),
  threshold: 2
})
const root = keccak256(toHex('r'))
const total = 1234567890123456789012n
const day = 20480n
const raw = keccak256(
  encodeAbiParameters(parseAbiParameters('bytes32, uint256, address, uint64, bytes32, uint256'), [
    keccak256(toHex('gcn/settlement/1')),
    31337n,
    settlement,
    day,
    root,
    total
  ])
)
const sigs = await Promise.all(signers.slice(3, 5).map(s => s.signMessage({ message: { raw } })))
const hash = await c.walletClients[0]!.writeContract({
  address: settlement,
  abi: GCN_SETTLEMENT_ABI,
  functionName: 'postDay',
  args: [day, root, total, sigs]
})
const r = await c.publicClient.waitForTransactionReceipt({ hash })
console.log('gas', r.gasUsed)
const trace: any = await c.provider.request({
  method: 'debug_traceTransaction',
  params: [hash, { disableStorage: true, disableMemory: true, disableStack: true }]
})
const logs = trace.structLogs
let cheap = 0,
  steps = 0
const big = new Set(['STATICCALL', 'SSTORE', 'SLOAD', 'EXTCODECOPY', 'LOG2'])
const segs: string[] = []
const last = -1
for (const l of logs) {
  if (l.depth !== 1) continue
  steps++
  if (!big.has(l.op)) cheap += l.gasCost
  else segs.push(`${l.op}@${steps} pc=${l.pc} gasLeft=${l.gas}`)
}
console.log('steps', steps, 'cheap gas', cheap)
console.log(segs.join('\n'))
console.log('first gas', logs[0].gas, 'last', logs.at(-1).gas)
await c.close()
