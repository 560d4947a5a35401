export type { InferenceBackend } from './backend.js'
export { DASHBOARD_DEFAULTS, Dashboard, type DashboardComponents, type DashboardInit, type DayStatus } from './dashboard.js'
export { DIRECTORY_DEFAULTS, type DirectoryInit, SupplierDirectory, type SupplierEntry } from './directory.js'
export * from './errors.js'
export {
  type ApiKeyRecord,
  ApiKeyStore,
  createGateway,
  GATEWAY_DEFAULTS,
  type Gateway,
  type GatewayComponents,
  type GatewayInit,
  type GatewayLimits,
  type GatewayStats,
  hashApiKey,
  type PlainApiKey,
  UnsupportedParameterError
} from './gateway.js'
export { ModelKeyServer, type ModelKeyServerComponents, type ModelKeyServerInit } from './model-keys.js'
export { RECEIPT_ISSUER_DEFAULTS, ReceiptIssuer, type ReceiptIssuerComponents, type ReceiptIssuerInit } from './receipts.js'
export type { ProofReferee, RescoreJob, RescoreResult, VerdictEvent } from './referee.js'
export { type CompletedTask, ROUTER_DEFAULTS, type RouterInit, TaskRouter } from './router.js'
export type { TaskDone } from './task-client.js'
