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
export { type VerifyPolicy, verifyEncodedEnvelope, verifyEnvelope } from './verify.js'
