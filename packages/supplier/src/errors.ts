/**
 * Supplier error classes. Each extends GcnError, so callers switch on a stable `name`/`code`
 * and an operator gets a `hint`; messages carry identifiers and numbers, never prompt or output text.
 */
import { GcnError, type GcnErrorOptions } from '@gcn/core'
import { stderrSummary } from './gpu-probe.js'

/** A model file could not be read (missing, unreadable, not a regular file). */
export class ModelFileError extends GcnError {
  static override readonly code = 'ERR_MODEL_FILE'
  override name = 'ModelFileError'
}

/** The sha256 of a model file is not the one expected: a corrupt, partial or different model. */
export class ModelHashMismatchError extends GcnError {
  static override readonly code = 'ERR_MODEL_HASH_MISMATCH'
  override name = 'ModelHashMismatchError'
  readonly expected: string
  readonly actual: string

  constructor(path: string, expected: string, actual: string, options: GcnErrorOptions = {}) {
    super(`model file ${path} has sha256 ${actual}, expected ${expected}`, {
      hint: 'the file is corrupt, partially downloaded or a different model: download it again or correct the expected sha256',
      ...options
    })
    this.expected = expected
    this.actual = actual
  }
}

/** llama.cpp refused to load the model or create its context. */
export class ModelLoadError extends GcnError {
  static override readonly code = 'ERR_MODEL_LOAD'
  override name = 'ModelLoadError'
}

/** The prompt does not fit: over maxPromptTokens, or no room left in the context for maxTokens. */
export class PromptTooLongError extends GcnError {
  static override readonly code = 'ERR_PROMPT_TOO_LONG'
  override name = 'PromptTooLongError'
  readonly promptTokens: number
  readonly limit: number

  constructor(promptTokens: number, limit: number, options: GcnErrorOptions = {}) {
    super(`prompt is ${promptTokens} tokens, limit ${limit}`, {
      hint: 'shorten the prompt or lower maxTokens',
      ...options
    })
    this.promptTokens = promptTokens
    this.limit = limit
  }
}

/** Every slot is busy and the wait queue is full: try another supplier or later. */
export class QueueFullError extends GcnError {
  static override readonly code = 'ERR_QUEUE_FULL'
  override name = 'QueueFullError'
}

/** Generation parameters out of range (maxTokens, temperature, topP, seed, stop strings). */
export class InvalidGenerationParamsError extends GcnError {
  static override readonly code = 'ERR_INVALID_GENERATION_PARAMS'
  override name = 'InvalidGenerationParamsError'
}

/** The input cannot be served: an empty prompt, or messages the model's chat template rejects. */
export class InvalidInputError extends GcnError {
  static override readonly code = 'ERR_INVALID_INPUT'
  override name = 'InvalidInputError'
}

/** `jsonSchema` is not JSON, too large, or a schema the grammar builder does not support. */
export class InvalidJsonSchemaError extends GcnError {
  static override readonly code = 'ERR_INVALID_JSON_SCHEMA'
  override name = 'InvalidJsonSchemaError'
}

/** llama.cpp failed while evaluating a task (tokens already streamed stay valid). */
export class GenerationError extends GcnError {
  static override readonly code = 'ERR_GENERATION'
  override name = 'GenerationError'
}

/**
 * The GPU backend failed its start-up probe: a child process that loaded the model on it and
 * decoded a few tokens crashed (e.g. SIGABRT from ggml), hung or reported an error. Serving on it
 * would crash the supplier at its first task. `stderrTail` holds the end of the probe's stderr
 * (llama.cpp's and node-llama-cpp's messages; the probe decodes a fixed text, never a prompt).
 */
export class GpuBackendUnusableError extends GcnError {
  static override readonly code = 'ERR_GPU_BACKEND_UNUSABLE'
  override name = 'GpuBackendUnusableError'
  readonly backend: string
  readonly reason: string
  readonly stderrTail: string

  constructor(backend: string, reason: string, stderrTail: string, options: GcnErrorOptions = {}) {
    const said = stderrSummary(stderrTail)
    super(`GPU backend ${backend} is unusable: ${reason}`, {
      hint:
        `node-llama-cpp's ${backend} prebuilt may lack machine code for this GPU, or the driver may be too old for it: ` +
        'update the NVIDIA driver, or build llama.cpp\'s CUDA backend for this GPU (docs/operators.md, "GPU suppliers"), ' +
        'or run with --gpu false' +
        (said === '' ? '' : `. The probe's stderr said: ${said.slice(-600)}`),
      ...options
    })
    this.backend = backend
    this.reason = reason
    this.stderrTail = stderrTail
  }
}
