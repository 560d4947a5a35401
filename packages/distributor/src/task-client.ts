import {
  AbortedError,
  ChunkCipher,
  createFramedStream,
  decodeProofSegment,
  type FinishReason,
  type GcnNode,
  type InferenceDone,
  type InferenceEvent,
  type InferenceRequest,
  ProofError,
  ProofVerifier,
  plainBytes,
  TASK_PROTOCOL,
  type TaskChunk,
  TaskChunkCodec,
  TaskFrameCodec,
  TaskOpenCodec,
  type TaskRequest,
  TaskRequestCodec,
  type TokenRecord,
  traceTaskStep,
  WIRE_VERSION,
  WireFinishReason
} from '@gcn/core'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { SupplierEntry } from './directory.js'
import { TaskFailedError } from './errors.js'
import { makeTaskKit, type TaskKits } from './task-kits.js'
import type { TaskStreams } from './task-streams.js'

const FINISH: Partial<Record<WireFinishReason, FinishReason>> = {
  [WireFinishReason.STOP]: 'stop',
  [WireFinishReason.LENGTH]: 'length',
  [WireFinishReason.ABORTED]: 'aborted',
  [WireFinishReason.ERROR]: 'error'
}

/** The done event of a task, with what a referee needs to re-score it. */
export interface TaskDone extends InferenceDone {
  proof: { taskId: Uint8Array; records: TokenRecord[]; outputTokenIds: number[] }
}

function proofFailure(err: unknown, taskId: Uint8Array): TaskFailedError {
  const why = err instanceof Error ? err.message : String(err)
  return new TaskFailedError(`proof of inference failed: ${why}`, { retryable: true, supplierCode: 'ERR_PROOF', taskId, cause: err })
}

function checkProof(verifier: ProofVerifier, chunk: TaskChunk, taskId: Uint8Array): void {
  if (chunk.proof.length === 0) throw proofFailure(new ProofError('chunk without proof'), taskId)
  try {
    verifier.add(decodeProofSegment(chunk.proof), chunk.tokenIds)
  } catch (err) {
    throw proofFailure(err, taskId)
  }
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
  options: {
    signal: AbortSignal
    deadlineMs: number
    /** Task streams with a ready spare per supplier; without it each task dials its own. */
    streams?: TaskStreams
    /** Task kits made ahead per supplier and model; without it each task makes its own. */
    kits?: TaskKits
  }
): AsyncGenerator<InferenceEvent, void, undefined> {
  traceTaskStep('task.dispatched')
  const target: Multiaddr[] | typeof supplier.peerId = supplier.addrs.length > 0 ? supplier.addrs : supplier.peerId
  const taken =
    options.streams !== undefined
      ? await options.streams.take(supplier, modelId, options.signal)
      : await node.libp2p.dialProtocol(target, TASK_PROTOCOL, { signal: options.signal }).then(stream => ({
          stream,
          framed: createFramedStream(stream),
          kit: undefined
        }))
  const { stream, framed } = taken
  // A spare announced its task's kit: the supplier has prepared to open a request sealed with it.
  const kit =
    taken.kit ?? options.kits?.take(supplier.peerId.toString(), supplier.publicKey, modelId) ?? makeTaskKit(supplier.publicKey, modelId)
  // The nonce is secret per task: it keys the supplier's proof-of-inference chain.
  const { taskId, responseKey, nonce } = kit
  // Under a JSON-schema grammar the best allowed token, not the raw top-1, is chosen even when greedy.
  const greedy = request.params.temperature === 0 && request.params.jsonSchema === undefined
  const verifier = new ProofVerifier(nonce, taskId, modelId, { greedy, key: kit.proofKey })
  const outputTokenIds: number[] = []
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
    nonce: plainBytes(nonce),
    responseKey: plainBytes(responseKey),
    deadlineMs: options.deadlineMs
  } as TaskRequest
  let sealedRequest: Uint8Array
  try {
    sealedRequest = kit.box.seal(TaskRequestCodec.encode(wireRequest))
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error('sealing the request failed'))
    throw err
  } finally {
    kit.box.discard()
  }
  const onAbort = (): void => framed.abort(new AbortedError('task cancelled'))
  options.signal.addEventListener('abort', onAbort, { once: true })
  const cipher = new ChunkCipher(responseKey, taskId)
  let finished = false
  try {
    // Before the write: on one machine the socket write can hand the CPU to the woken supplier, and
    // the step would then count the supplier's work as the distributor's.
    traceTaskStep('task.requestSealed')
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
      // The supplier is generating and the client has its first text: negotiate the next task's spare
      // stream now (it costs both peers ~0.3 ms of their event loops, which the first chunk should not wait for).
      if (seq === 1) options.streams?.prepare(supplier, modelId)
      seq++
      if (chunk.error !== undefined) {
        throw new TaskFailedError(`supplier error ${chunk.error.code}: ${chunk.error.message}`, {
          retryable: chunk.error.retryable,
          supplierCode: chunk.error.code
        })
      }
      const isDone = chunk.finishReason !== undefined && chunk.finishReason !== WireFinishReason.UNSPECIFIED
      // Always-on proof checks run before any of the chunk reaches the client.
      if (chunk.tokenIds.length > 0 || isDone) checkProof(verifier, chunk, taskId)
      if (seq === 1) traceTaskStep('task.firstChunk')
      outputTokenIds.push(...chunk.tokenIds)
      if (chunk.text !== '' || chunk.tokenIds.length > 0) yield { type: 'delta', text: chunk.text, tokenIds: chunk.tokenIds }
      if (isDone) {
        const usage = { promptTokens: chunk.usage?.promptTokens ?? 0, completionTokens: chunk.usage?.completionTokens ?? 0 }
        let records: TokenRecord[]
        try {
          records = verifier.finish(usage.completionTokens)
        } catch (err) {
          throw proofFailure(err, taskId)
        }
        finished = true
        const done: TaskDone = {
          type: 'done',
          finishReason: FINISH[chunk.finishReason!] ?? 'error',
          usage,
          modelId,
          verdict: 'unchecked',
          proof: { taskId, records, outputTokenIds }
        }
        yield done
      }
    }
    if (!finished) throw new TaskFailedError('supplier closed the stream before finishing', { retryable: true })
  } catch (err) {
    framed.abort(err instanceof Error ? err : new Error('task failed'))
    if (options.signal.aborted) throw new AbortedError('task aborted', { cause: options.signal.reason })
    throw err
  } finally {
    options.signal.removeEventListener('abort', onAbort)
    // Covers an answer that came in one chunk; a no-op when the spare is ready or on its way.
    if (finished) options.streams?.prepare(supplier, modelId)
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
