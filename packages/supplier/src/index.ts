export { ConfirmationReporter, type ConfirmationReporterComponents, type ConfirmationReporterInit } from './confirmations.js'
export type { EngineStats, GenerationEngine } from './engine.js'
export * from './errors.js'
export {
  buildGguf,
  GGUF_WRITER_VERSION,
  type GgufOptions,
  MODEL_PRESETS,
  type ModelPreset,
  type ModelPresetName,
  type WrittenGguf,
  writeGguf
} from './gguf-writer.js'
export {
  GPU_PROBE_TIMEOUT_MS,
  type GpuProbeFailure,
  type GpuProbeInit,
  type GpuProbeOptions,
  type GpuProbeResult,
  type GpuProbeSuccess,
  probeGpuBackend
} from './gpu-probe.js'
export {
  type DecryptedModel,
  decryptModelToMemory,
  type EncryptedModelHeader,
  encryptModelFile,
  isEncryptedModel,
  MODEL_KEY_BYTES,
  ModelDecryptionError,
  readEncryptedModelHeader
} from './model-crypto.js'
export { sha256File, verifyModelFile } from './model-file.js'
export { fetchModelKey, ModelKeyUnavailableError } from './model-key-client.js'
export { createRuntimeReferee, REFEREE_DEFAULTS, type RuntimeRefereeInit } from './referee.js'
export {
  createModelRuntime,
  type GenerationChunk,
  type ModelRuntime,
  type ModelRuntimeInfo,
  type ModelRuntimeInit,
  type ModelRuntimeStats
} from './runtime.js'
export { SUPPLIER_DEFAULTS, Supplier, type SupplierComponents, type SupplierInit } from './supplier.js'
