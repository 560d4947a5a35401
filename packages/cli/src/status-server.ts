import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { type ListeningHttpServer, listenHttp, sendMetrics } from '@gcn/core'

export interface StatusHandlers {
  healthy: () => boolean
  status: () => unknown
  /** Prometheus text for GET /metrics; without it /metrics is 404. */
  metrics?: () => string | Promise<string>
  /** Serves more paths (e.g. the distributor's dashboard); returns false for paths it does not own. */
  extra?: (req: IncomingMessage, res: ServerResponse) => boolean
}

/**
 * A small HTTP endpoint for operators and health checks: GET /health answers
 * 200 while `healthy()` holds, GET /status returns `status()` as JSON and
 * GET /metrics the Prometheus metrics.
 */
export async function startStatusServer(host: string, port: number, handlers: StatusHandlers): Promise<ListeningHttpServer> {
  const server = createServer((req, res) => {
    const send = (code: number, body: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      res.end(JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)))
    }
    if (handlers.extra?.(req, res) === true) return
    if (req.method !== 'GET') return send(405, { error: 'method not allowed' })
    const path = new URL(req.url ?? '/', 'http://status').pathname
    if (path === '/health') return handlers.healthy() ? send(200, { status: 'ok' }) : send(503, { status: 'unhealthy' })
    if (path === '/status') return send(200, handlers.status())
    const metrics = handlers.metrics
    if (path === '/metrics' && metrics !== undefined)
      return sendMetrics(res, metrics, () => send(500, { error: 'metrics collection failed' }))
    send(404, { error: 'not found' })
  })
  return listenHttp(server, host, port)
}
