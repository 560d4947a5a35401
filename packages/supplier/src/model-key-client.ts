import {
  AbortedError,
  createFramedStream,
  GcnError,
  type GcnNode,
  type Logger,
  MODEL_KEY_PROTOCOL,
  ModelKeyRequestCodec,
  ModelKeyResponseCodec
} from '@gcn/core'
import type { PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'

/** No reachable distributor gave the key of an encrypted model. */
export class ModelKeyUnavailableError extends GcnError {
  static override readonly code = 'ERR_MODEL_KEY_UNAVAILABLE'
  override name = 'ModelKeyUnavailableError'
}

async function askPeer(
  node: GcnNode,
  target: PeerId | ReturnType<typeof multiaddr>,
  modelId: string,
  signal: AbortSignal
): Promise<Uint8Array> {
  const stream = await node.libp2p.dialProtocol(target, MODEL_KEY_PROTOCOL, { signal })
  const framed = createFramedStream(stream)
  try {
    await framed.write(ModelKeyRequestCodec, { modelId }, { signal })
    const response = await framed.read(ModelKeyResponseCodec, { signal })
    if (response.errorCode !== '') throw new ModelKeyUnavailableError(`${response.errorCode}: ${response.errorMessage}`)
    return Uint8Array.from(response.key)
  } finally {
    framed.abort(new GcnError('done'))
  }
}

/**
 * Gets the key of encrypted model `modelId` over the Noise channel: from the
 * given distributor addresses, or else from any connected peer that speaks
 * /gcn/model-key/1.0.0 (learnt by identify once the supplier joined), retrying
 * until `signal` fires. Throws ModelKeyUnavailableError with the last refusal.
 */
export async function fetchModelKey(
  node: GcnNode,
  modelId: string,
  options: { signal: AbortSignal; from?: readonly string[]; logger: Logger }
): Promise<Uint8Array> {
  const log = options.logger.child('model-key')
  let lastError: unknown
  for (let round = 0; ; round++) {
    if (options.signal.aborted) {
      throw new ModelKeyUnavailableError(`no distributor gave the key of model ${modelId}`, {
        cause: lastError ?? options.signal.reason,
        hint: 'the distributor must hold the key (gcn distributor --model-key FILE) and be reachable'
      })
    }
    const targets: Array<PeerId | ReturnType<typeof multiaddr>> = []
    if (options.from !== undefined && options.from.length > 0) targets.push(...options.from.map(a => multiaddr(a)))
    else {
      for (const connection of node.libp2p.getConnections()) {
        const peer = await node.libp2p.peerStore.get(connection.remotePeer).catch(() => undefined)
        if (peer?.protocols.includes(MODEL_KEY_PROTOCOL) === true && !targets.some(t => 'equals' in t && t.equals(connection.remotePeer))) {
          targets.push(connection.remotePeer)
        }
      }
    }
    for (const target of targets) {
      try {
        const key = await askPeer(node, target, modelId, AbortSignal.any([options.signal, AbortSignal.timeout(10_000)]))
        log.info('model key received', { modelId, from: target.toString() })
        return key
      } catch (err) {
        if (err instanceof AbortedError && options.signal.aborted) break
        lastError = err
        log.debug('model key request failed', { target: target.toString(), err })
      }
    }
    await new Promise(resolve => setTimeout(resolve, Math.min(2_000, 200 * (round + 1))))
  }
}
