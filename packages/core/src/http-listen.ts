import type { Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { PROMETHEUS_CONTENT_TYPE } from './metrics.js'

/** A listening HTTP server, its base URL and a close that also ends keep-alive connections. */
export interface ListeningHttpServer {
  server: Server
  /** `http://host:port` (IPv6 hosts bracketed). */
  url: string
  close(): Promise<void>
}

/**
 * Starts `server` on `host:port` (0: any free port); rejects if it cannot
 * listen (e.g. the port is taken). `close()` drops open connections at once,
 * so a stopping role is not held by an idle keep-alive client.
 */
export async function listenHttp(server: Server, host: string, port: number): Promise<ListeningHttpServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
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

/** Answers a Prometheus scrape with the text `collect` renders; `onError` answers instead when collecting fails. */
export function sendMetrics(res: ServerResponse, collect: () => string | Promise<string>, onError: (err: unknown) => void): void {
  Promise.resolve()
    .then(collect)
    .then(text => {
      res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'cache-control': 'no-store' })
      res.end(text)
    }, onError)
}
