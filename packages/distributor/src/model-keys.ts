import {
  createFramedStream,
  GcnError,
  type GcnNode,
  type Logger,
  MODEL_KEY_PROTOCOL,
  ModelKeyRequestCodec,
  type ModelKeyResponse,
  ModelKeyResponseCodec,
  plainBytes
} from '@gcn/core'
import type { Connection, Stream } from '@libp2p/interface'

export interface ModelKeyServerInit {
  /** Model id (sha256 of the plaintext GGUF) → 32-byte model key. */
  keys: ReadonlyMap<string, Uint8Array>
  /** Only these supplier peer ids get keys; every peer when absent. */
  allowPeers?: readonly string[]
}

export interface ModelKeyServerComponents {
  node: GcnNode
  logger: Logger
}

/**
 * Hands the keys of encrypted models to suppliers on /gcn/model-key/1.0.0.
 * The key travels only inside the Noise-encrypted, mutually authenticated
 * libp2p connection; the server logs which peer got which model, never the key.
 */
export class ModelKeyServer {
  private readonly log: Logger
  private readonly allow?: ReadonlySet<string>
  readonly stats = { delivered: 0, refused: 0 }

  constructor(
    private readonly init: ModelKeyServerInit,
    private readonly components: ModelKeyServerComponents
  ) {
    this.log = components.logger.child('model-keys')
    if (init.allowPeers !== undefined) this.allow = new Set(init.allowPeers)
  }

  async start(): Promise<void> {
    await this.components.node.libp2p.handle(MODEL_KEY_PROTOCOL, (stream, connection) => this.serve(stream, connection))
  }

  async stop(): Promise<void> {
    await this.components.node.libp2p.unhandle(MODEL_KEY_PROTOCOL)
  }

  private answer(modelId: string, peer: string): ModelKeyResponse {
    const refuse = (errorCode: string, errorMessage: string): ModelKeyResponse => {
      this.stats.refused++
      this.log.warn('model key refused', { peer, modelId, code: errorCode })
      return { key: new Uint8Array(0), errorCode, errorMessage }
    }
    if (this.allow !== undefined && !this.allow.has(peer))
      return refuse('ERR_NOT_ALLOWED', 'this distributor does not give model keys to this peer')
    const key = this.init.keys.get(modelId)
    if (key === undefined) return refuse('ERR_UNKNOWN_MODEL', `this distributor holds no key for model ${modelId}`)
    this.stats.delivered++
    this.log.info('model key delivered', { peer, modelId })
    return { key: plainBytes(key), errorCode: '', errorMessage: '' }
  }

  private async serve(stream: Stream, connection: Connection): Promise<void> {
    const framed = createFramedStream(stream)
    const peer = connection.remotePeer.toString()
    try {
      const request = await framed.read(ModelKeyRequestCodec, { signal: AbortSignal.timeout(5_000) })
      await framed.write(ModelKeyResponseCodec, this.answer(request.modelId, peer), { signal: AbortSignal.timeout(5_000) })
      await framed.close({ signal: AbortSignal.timeout(5_000) })
    } catch (err) {
      this.log.debug('model key request failed', { peer, err })
      framed.abort(err instanceof Error ? err : new GcnError('model key request failed'))
    }
  }
}
