import {
  AbortedError,
  ChunkCipher,
  createFramedStream,
  type FinishReason,
  type GcnNode,
  type InferenceEvent,
  type InferenceRequest,
  plainBytes,
  RESPONSE_KEY_BYTES,
  randomBytes,
  seal,
  TASK_PROTOCOL,
  type TaskChunk,
  TaskChunkCodec,
  TaskFrameCodec,
  TaskOpenCodec,
  type TaskRequest,
  TaskRequestCodec,
  WIRE_VERSION,
  WireFinishReason
} from '@gcn/core'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { SupplierEntry } from './directory.js'
import { TaskFailedError } from './errors.js'

const FINISH: Partial<Record<WireFinishReason, FinishReason>> = {
  [WireFinishReason.STOP]: 'stop',
  [WireFinishReason.LENGTH]: 'length',
  [WireFinishReason.ABORTED]: 'aborted',
  [WireFinishReason.ERROR]: 'error'
}

export interface TaskAttempt {
  taskId: Uint8Array
  /** Secret per-task nonce (proof of inference binds to it). */
  nonce: Uint8Array
}

/**
 * Runs one task on one supplier over /gcn/task/1.0.0: dials its advertised
 * addresses (never a bare peer id, which waits on peer routing), sends the
 * request sealed to its key, and yields the opened chunks. The write side
 * stays open for the whole task: the supplier treats a close as cancel.
 * Aborting `signal` aborts the stream, which stops the supplier at once.
 */
export async function* runTask(
  node: GcnNode,
  supplier: SupplierEntry,
  modelId: string,
  request: InferenceRequest,
  options: { signal: AbortSignal; deadlineMs: number }
): AsyncGenerator<InferenceEvent, void, undefined> {
  const taskId = randomBytes(16)
  const responseKey = randomBytes(RESPONSE_KEY_BYTES)
  const wireRequest: TaskRequest = {
    taskId: plainBytes(taskId),
    modelId,
    gameId: request.gameId,
    sessionId: request.sessionId ?? '',
    ...(request.input.kind === 'chat' ? { chat: { messages: request.input.messages } } : { prompt: request.input.prompt }),
    params: {
      maxTokens: request.params.maxTokens,
      ...(request.params.temperature === undefined ? {} : { temperature: request.params.temperature }),
      ...(request.params.topP === undefined ? {} : { topP: request.params.topP }),
      ...(request.params.seed === undefined ? {} : { seed: request.params.seed }),
      stop: request.params.stop ?? [],
      ...(request.params.jsonSchema === undefined ? {} : { jsonSchema: request.params.jsonSchema })
    },
    nonce: plainBytes(randomBytes(32)),
    responseKey: plainBytes(responseKey),
    deadlineMs: options.deadlineMs
  } as TaskRequest
  const sealedRequest = seal(supplier.publicKey, TaskRequestCodec.encode(wireRequest), { context: taskId })
  const target: Multiaddr[] | typeof supplier.peerId = supplier.addrs.length > 0 ? supplier.addrs : supplier.peerId
  // Optimistic protocol select: the proposal travels with TaskOpen, saving a round trip.
  const stream = await node.libp2p.dialProtocol(target, TASK_PROTOCOL, { signal: options.signal, negotiateFully: false })
  const framed = createFramedStream(stream)
  const onAbort = (): void => framed.abort(new AbortedError('task cancelled'))
  options.signal.addEventListener('abort', onAbort, { once: true })
  const cipher = new ChunkCipher(responseKey, taskId)
  let finished = false
  try {
    await framed.write(
      TaskOpenCodec,
      { version: WIRE_VERSION, taskId: plainBytes(taskId), sealedRequest: plainBytes(sealedRequest) },
      { signal: options.signal }
    )
    let seq = 0
    for (;;) {
      const frame = await framed.readOrEnd(TaskFrameCodec, { signal: options.signal })
      if (frame === null) break
      const chunk: TaskChunk = TaskChunkCodec.decode(cipher.open(seq, frame.sealed))
      if (chunk.seq !== seq) throw new TaskFailedError(`chunk out of order (${chunk.seq} != ${seq})`, { retryable: true })
      seq++
      if (chunk.error !== undefined) {
        throw new TaskFailedError(`supplier error ${chunk.error.code}: ${chunk.error.message}`, {
          retryable: chunk.error.retryable,
          supplierCode: chunk.error.code
        })
      }
      if (chunk.text !== '' || chunk.tokenIds.length > 0) yield { type: 'delta', text: chunk.text, tokenIds: chunk.tokenIds }
      if (chunk.finishReason !== undefined && chunk.finishReason !== WireFinishReason.UNSPECIFIED) {
        finished = true
        yield {
          type: 'done',
          finishReason: FINISH[chunk.finishReason] ?? 'error',
          usage: { promptTokens: chunk.usage?.promptTokens ?? 0, completionTokens: chunk.usage?.completionTokens ?? 0 },
          modelId
        }
      }
    }
    if (!finished) throw new TaskFailedError('supplier closed the stream before finishing', { retryable: true })
  } catch (err) {
    framed.abort(err instanceof Error ? err : new Error('task failed'))
    if (options.signal.aborted) throw new AbortedError('task aborted', { cause: options.signal.reason })
    throw err
  } finally {
    options.signal.removeEventListener('abort', onAbort)
    if (!finished) {
      // The consumer stopping early (return()) must cancel the supplier too.
      framed.abort(new AbortedError('task abandoned'))
    } else {
      // Done, whether or not the consumer read to the end: close our side so the
      // stream is released (a half-open stream counts against the per-connection limit).
      void framed.close({ signal: AbortSignal.timeout(2_000) }).catch(() => framed.abort(new AbortedError('task stream close failed')))
    }
  }
}
