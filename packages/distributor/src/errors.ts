import { GcnError } from '@gcn/core'

/** The requested model is served by no known supplier and is not in the catalog (HTTP 404). */
export class UnknownModelError extends GcnError {
  static override readonly code = 'ERR_UNKNOWN_MODEL'
  override name = 'UnknownModelError'
}

/** The model is known but no supplier can take the request now (HTTP 503, retryable). */
export class NoSupplierError extends GcnError {
  static override readonly code = 'ERR_NO_SUPPLIER'
  override name = 'NoSupplierError'
}

/** The prompt is longer than the model's context or the gateway's limit (HTTP 400). */
export class PromptTooLongError extends GcnError {
  static override readonly code = 'ERR_PROMPT_TOO_LONG'
  override name = 'PromptTooLongError'
}

/** A request field is invalid or unsupported (HTTP 400); `param` names the field. */
export class InvalidRequestError extends GcnError {
  static override readonly code = 'ERR_INVALID_REQUEST'
  override name = 'InvalidRequestError'
  param?: string
  constructor(message: string, options: { param?: string; hint?: string; cause?: unknown } = {}) {
    super(message, options)
    if (options.param !== undefined) this.param = options.param
  }
}

/**
 * The task failed after some text was already streamed, or every attempt
 * failed: the client may retry the whole request (HTTP 502 / stream error).
 */
export class TaskFailedError extends GcnError {
  static override readonly code = 'ERR_TASK_FAILED'
  override name = 'TaskFailedError'
  readonly retryable: boolean
  /** The error code the supplier reported, when the failure came from it. */
  readonly supplierCode?: string
  /** The task that failed, when it had one (a failed proof names it in the verdict). */
  readonly taskId?: Uint8Array
  constructor(
    message: string,
    options: { retryable: boolean; supplierCode?: string; taskId?: Uint8Array; hint?: string; cause?: unknown }
  ) {
    super(message, options)
    this.retryable = options.retryable
    if (options.supplierCode !== undefined) this.supplierCode = options.supplierCode
    if (options.taskId !== undefined) this.taskId = options.taskId
  }
}

/** A capacity advert was unsigned, forged, stale, replayed or malformed. */
export class InvalidAdvertError extends GcnError {
  static override readonly code = 'ERR_INVALID_ADVERT'
  override name = 'InvalidAdvertError'
}
