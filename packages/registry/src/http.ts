import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { type BlockClock, GcnError, type Logger, listenHttp, sendMetrics } from '@gcn/core'
import { InvalidQueryError } from './errors.js'
import type { Ledger, LedgerFilter } from './ledger.js'

export interface QueryServerInit {
  host?: string
  /** 0 picks a free port. */
  port?: number
  /** Receipts younger than this many blocks are not reported unconfirmed yet (the supplier confirms at block end). */
  confirmationGraceBlocks?: number
}

export interface QueryServerComponents {
  ledger: Ledger
  clock: BlockClock
  logger: Logger
  /** Extra fields for GET /status (peer id, stats, ...). */
  status?: () => Record<string, unknown>
  healthy?: () => boolean
  /** More GET routes (path → handler of the query parameters), e.g. settlement reports and proofs. */
  routes?: Record<string, (params: URLSearchParams) => unknown>
  /** Prometheus text exposition for GET /metrics; without it /metrics is 404. */
  metrics?: () => string | Promise<string>
}

export interface QueryServer {
  readonly url: string
  readonly server: Server
  close(): Promise<void>
}

const MAX_BLOCK_RANGE = 100_000

function json(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' })
  res.end(
    JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))
  )
}

export function intParam(params: URLSearchParams, name: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const raw = params.get(name)
  if (raw === null) return undefined
  if (!/^\d+$/.test(raw) || Number(raw) > max)
    throw new InvalidQueryError(`${name} must be an integer in [0, ${max}], got ${JSON.stringify(raw)}`)
  return Number(raw)
}

/** Block range and game/supplier filters shared by every query: block=N, day=D, or from=&to=. */
export function parseFilter(params: URLSearchParams, clock: BlockClock): LedgerFilter {
  const block = intParam(params, 'block')
  const day = intParam(params, 'day')
  let from = intParam(params, 'from')
  let to = intParam(params, 'to')
  if ([block, day, from ?? to].filter(v => v !== undefined).length > 1) {
    throw new InvalidQueryError('use only one of block, day, or from/to')
  }
  if (block !== undefined) from = to = block
  if (day !== undefined) {
    from = clock.firstBlockOfDay(day)
    to = clock.lastBlockOfDay(day)
  }
  if (from !== undefined && to !== undefined && to < from) throw new InvalidQueryError('to must be >= from')
  const filter: LedgerFilter = {}
  if (from !== undefined) filter.fromBlock = from
  if (to !== undefined) filter.toBlock = to
  const game = params.get('game')
  const supplier = params.get('supplier')
  if (game !== null) filter.gameId = game
  if (supplier !== null) filter.supplier = supplier
  return filter
}

/**
 * Read-only HTTP queries over the ledger: GET /health, /status, /totals,
 * /receipts, /mismatches and /blocks (summaries), each filtered by block, day
 * or block range and by game or supplier. Money is returned as decimal strings.
 * GET /metrics serves the Prometheus text format when `metrics` is given.
 */
export async function createQueryServer(init: QueryServerInit, components: QueryServerComponents): Promise<QueryServer> {
  const { ledger, clock } = components
  const log = components.logger.child('http')
  const grace = init.confirmationGraceBlocks ?? 3

  const routes: Record<string, (params: URLSearchParams) => unknown> = {
    '/health': () => ({ status: 'ok' }),
    '/status': () => ({
      currentBlock: clock.blockHeight(),
      latestBlock: ledger.latestBlock() ?? null,
      counts: ledger.counts(),
      ...(components.status?.() ?? {})
    }),
    '/totals': params => ledger.totals(parseFilter(params, clock)),
    '/receipts': params => {
      const limit = intParam(params, 'limit', 10_000)
      const offset = intParam(params, 'offset')
      return {
        receipts: ledger
          .receipts({
            ...parseFilter(params, clock),
            ...(limit === undefined ? {} : { limit }),
            ...(offset === undefined ? {} : { offset })
          })
          .map(r => ({ ...r, taskId: Buffer.from(r.taskId).toString('hex') }))
      }
    },
    '/mismatches': params => {
      const limit = intParam(params, 'limit', 10_000)
      const settledBefore = Math.max(0, clock.blockHeight() - grace)
      return {
        settledBefore,
        mismatches: ledger.mismatches({ ...parseFilter(params, clock), settledBefore, ...(limit === undefined ? {} : { limit }) })
      }
    },
    '/blocks': params => {
      const filter = parseFilter(params, clock)
      const to = filter.toBlock ?? ledger.latestBlock() ?? 0
      const from = filter.fromBlock ?? Math.max(0, to - 99)
      if (to - from + 1 > MAX_BLOCK_RANGE) throw new InvalidQueryError(`at most ${MAX_BLOCK_RANGE} blocks per query`)
      return { blocks: ledger.blocksWithData(from, to).map(b => ledger.blockSummary(b)) }
    },
    ...(components.routes ?? {})
  }

  const answer = (req: IncomingMessage): [number, unknown] => {
    if (req.method !== 'GET') return [405, { error: { code: 'ERR_METHOD', message: 'only GET is served' } }]
    const url = new URL(req.url ?? '/', 'http://registry')
    const route = routes[url.pathname]
    if (route === undefined) return [404, { error: { code: 'ERR_NOT_FOUND', message: `no route ${url.pathname}` } }]
    if (url.pathname === '/health' && components.healthy?.() === false) return [503, { status: 'unhealthy' }]
    try {
      return [200, route(url.searchParams)]
    } catch (err) {
      if (err instanceof GcnError) return [400, { error: err.toJSON() }]
      log.error('query failed', { path: url.pathname, err })
      return [500, { error: { code: 'ERR_INTERNAL', message: 'query failed' } }]
    }
  }
  const metrics = components.metrics
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    if (metrics !== undefined && req.method === 'GET' && new URL(req.url ?? '/', 'http://registry').pathname === '/metrics') {
      sendMetrics(res, metrics, err => {
        log.error('metrics collection failed', { err })
        json(res, 500, { error: { code: 'ERR_INTERNAL', message: 'metrics collection failed' } })
      })
      return
    }
    const [code, body] = answer(req)
    json(res, code, body)
  }

  return listenHttp(createServer(handle), init.host ?? '127.0.0.1', init.port ?? 0)
}
