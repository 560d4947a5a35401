import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * A small HTTP endpoint for operators and health checks: GET /health answers
 * 200 while `healthy()` holds, GET /status returns `status()` as JSON.
 */
export async function startStatusServer(
  host: string,
  port: number,
  handlers: { healthy: () => boolean; status: () => unknown }
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const send = (code: number, body: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      res.end(JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)))
    }
    if (req.method !== 'GET') return send(405, { error: 'method not allowed' })
    if (req.url === '/health') return handlers.healthy() ? send(200, { status: 'ok' }) : send(503, { status: 'unhealthy' })
    if (req.url === '/status') return send(200, handlers.status())
    send(404, { error: 'not found' })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  const address = server.address() as AddressInfo
  return {
    server,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`,
    close: () =>
      new Promise<void>(resolve => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}
