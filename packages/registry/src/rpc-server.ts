import { createServer, type IncomingMessage } from 'node:http'
import { type ListeningHttpServer, listenHttp } from '@gcn/core'
import type { EIP1193Provider } from 'viem'

/** Largest JSON-RPC request body accepted. */
const MAX_BODY_BYTES = 8 * 1024 * 1024

interface JsonRpcRequest {
  jsonrpc?: string
  id?: unknown
  method?: unknown
  params?: unknown
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) throw new Error('request body too large')
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * Serves an in-process EIP-1193 provider (the devnet's embedded chain) as a
 * JSON-RPC endpoint on 127.0.0.1 so other processes reach it with an RPC URL,
 * like any rollup node. Batches are supported; errors keep their code and data
 * (viem decodes custom errors from them).
 */
export async function serveJsonRpc(
  provider: EIP1193Provider,
  options: { host?: string; port?: number } = {}
): Promise<ListeningHttpServer> {
  const call = async (request: JsonRpcRequest): Promise<unknown> => {
    const id = request.id ?? null
    if (typeof request.method !== 'string') return { jsonrpc: '2.0', id, error: { code: -32600, message: 'invalid request' } }
    try {
      const result = await provider.request({ method: request.method, params: request.params } as never)
      return { jsonrpc: '2.0', id, result }
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown; data?: unknown }
      return {
        jsonrpc: '2.0',
        id,
        error: {
          code: typeof e.code === 'number' ? e.code : -32603,
          message: typeof e.message === 'string' ? e.message : 'internal error',
          ...(e.data === undefined ? {} : { data: e.data })
        }
      }
    }
  }
  const server = createServer((req, res) => {
    const reply = (code: number, body: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v)))
    }
    if (req.method !== 'POST') return reply(405, { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'POST only' } })
    readBody(req)
      .then(async text => {
        let parsed: unknown
        try {
          parsed = JSON.parse(text)
        } catch {
          return reply(200, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } })
        }
        if (Array.isArray(parsed)) return reply(200, await Promise.all(parsed.map(r => call(r as JsonRpcRequest))))
        return reply(200, await call(parsed as JsonRpcRequest))
      })
      .catch(() => reply(413, { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'request body too large' } }))
  })
  return listenHttp(server, options.host ?? '127.0.0.1', options.port ?? 0)
}
