export { ChainError, evmAddressOf, loadOrCreateEvmKey, revertName, SettlementChain, type SettlementChainInit } from './chain.js'
export { GCN_SETTLEMENT_ABI, GCN_TEST_TOKEN_ABI } from './contracts.js'
export {
  deploySettlement,
  depositTestTokens,
  type EmbeddedChain,
  type EmbeddedChainOptions,
  embeddedChainKey,
  type GameDepositInit,
  startEmbeddedChain,
  waitForSuccess
} from './embedded-chain.js'
export * from './errors.js'
export { createQueryServer, type QueryServer, type QueryServerInit } from './http.js'
export {
  Ledger,
  type LedgerFilter,
  type LedgerInit,
  type LedgerItem,
  type Mismatch,
  type ReceiptRow,
  type ReceiptStatus,
  type Totals
} from './ledger.js'
export { blockRoot, confirmationLeaf, spanDigest } from './merkle.js'
export { REGISTRY_DEFAULTS, Registry, type RegistryComponents, type RegistryInit, type RegistryStats } from './registry.js'
export { serveJsonRpc } from './rpc-server.js'
export { type ServedSettlementChain, type ServedSettlementChainInit, startServedSettlementChain } from './served-chain.js'
export {
  accountId,
  compileDay,
  type DayReport,
  type DayReportJson,
  decodeReport,
  encodeDaySignatures,
  encodeReport,
  gameKey,
  reportDigest,
  reportHash,
  reportToJson
} from './settlement.js'
export { LEAF_CREDIT, LEAF_DEBIT, leafHash, type SettlementLeaf, SettlementTree } from './settlement-tree.js'
export { type DayState, SETTLER_DEFAULTS, Settler, type SettlerComponents, type SettlerInit, type SettlerStats } from './settler.js'
export { type VerifyPolicy, verifyEncodedEnvelope, verifyEnvelope } from './verify.js'
