import type { IncomingMessage, ServerResponse } from 'node:http'
import type { BlockClock, Logger } from '@gcn/core'
import type { SupplierDirectory } from './directory.js'
import type { GatewayStats } from './gateway.js'
import type { CompletedTask, TaskRouter } from './router.js'

export interface DashboardInit {
  /** Seconds of history kept for the charts. */
  windowSeconds?: number
}

export const DASHBOARD_DEFAULTS = Object.freeze({ windowSeconds: 300 })

/** The settlement status of one day, as the dashboard shows it. */
export interface DayStatus {
  day: number
  posted: boolean
  root?: string
}

export interface DashboardComponents {
  router: TaskRouter
  directory: SupplierDirectory
  gatewayStats: () => GatewayStats
  clock: BlockClock
  logger: Logger
  /** Reads whether a day is posted on the rollup (absent without a chain). */
  dayStatus?: (day: number) => Promise<DayStatus>
}

/** One second of history. */
interface Point {
  t: number
  requestsPerSecond: number
  active: number
  ttftP50Ms: number | null
  ttftP90Ms: number | null
  ttftP99Ms: number | null
}

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

/**
 * The distributor's live dashboard: `GET /dashboard` is a self-contained page
 * (no external scripts) that polls `GET /dashboard/data.json` every second and
 * draws suppliers with their load, measured latency and proof verdicts,
 * requests per second, time-to-first-token percentiles over time, tasks
 * completed (receipts) per block and the settlement status of the last day.
 */
export class Dashboard {
  private readonly windowSeconds: number
  private readonly points: Point[] = []
  private readonly pendingTtft: number[] = []
  private readonly perBlock = new Map<number, number>()
  private lastRequests = 0
  private timer?: ReturnType<typeof setInterval>
  private unsubscribe?: () => void
  private settlement?: DayStatus
  private settlementError?: string

  constructor(
    init: DashboardInit,
    private readonly components: DashboardComponents
  ) {
    this.windowSeconds = init.windowSeconds ?? DASHBOARD_DEFAULTS.windowSeconds
  }

  start(): void {
    this.lastRequests = this.components.gatewayStats().requestsTotal
    this.unsubscribe = this.components.router.onCompleted(task => this.record(task))
    this.timer = setInterval(() => this.sample(), 1000)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.unsubscribe?.()
  }

  private record(task: CompletedTask): void {
    if (this.pendingTtft.length < 100_000) this.pendingTtft.push(task.ttftMs)
    const block = this.components.clock.blockHeight(task.completedAtMs)
    this.perBlock.set(block, (this.perBlock.get(block) ?? 0) + 1)
    if (this.perBlock.size > 512) this.perBlock.delete(this.perBlock.keys().next().value!)
  }

  private sample(): void {
    const stats = this.components.gatewayStats()
    const sorted = this.pendingTtft.splice(0).sort((a, b) => a - b)
    this.points.push({
      t: Date.now(),
      requestsPerSecond: stats.requestsTotal - this.lastRequests,
      active: stats.activeRequests,
      ttftP50Ms: percentile(sorted, 50),
      ttftP90Ms: percentile(sorted, 90),
      ttftP99Ms: percentile(sorted, 99)
    })
    this.lastRequests = stats.requestsTotal
    if (this.points.length > this.windowSeconds) this.points.shift()
    const { dayStatus, clock } = this.components
    const day = clock.day(clock.blockHeight()) - 1
    if (dayStatus !== undefined && day >= 0 && (this.settlement?.day !== day || !this.settlement.posted)) {
      dayStatus(day).then(
        status => {
          this.settlement = status
          this.settlementError = undefined
        },
        err => {
          this.settlementError = err instanceof Error ? err.message : 'unavailable'
        }
      )
    }
  }

  /** Everything the page shows, as JSON-ready values. */
  data(): Record<string, unknown> {
    const { clock, directory, router } = this.components
    const block = clock.blockHeight()
    const stats = this.components.gatewayStats()
    return {
      now: Date.now(),
      block,
      day: clock.day(block),
      gateway: stats,
      router: router.counters,
      suppliers: directory.suppliers().map(e => ({
        peerId: e.peerId.toString(),
        models: e.advert.models.map(m => m.name),
        slots: e.advert.totalSlots,
        believedSlots: directory.slotsOf(e),
        refusals: e.refusals,
        freeSlots: e.advert.freeSlots,
        queueDepth: e.advert.queueDepth,
        outstanding: e.outstanding,
        ttftMs: e.ewmaTtftMs ?? null,
        tokensPerSecond: e.ewmaTokensPerSecond ?? null,
        successes: e.successes,
        failures: e.failures,
        verified: e.verified,
        proofFailures: e.proofFailures
      })),
      series: this.points,
      receiptsPerBlock: [...this.perBlock]
        .filter(([b]) => b > block - 50)
        .sort(([a], [b]) => a - b)
        .map(([b, count]) => ({ block: b, count })),
      settlement: this.components.dayStatus === undefined ? null : (this.settlement ?? { error: this.settlementError ?? 'pending' })
    }
  }

  /** Serves /dashboard and /dashboard/data.json; false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' || (path !== '/dashboard' && path !== '/dashboard/data.json')) return false
    if (path === '/dashboard') {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'"
      })
      res.end(DASHBOARD_HTML)
    } else {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      res.end(JSON.stringify(this.data()))
    }
    return true
  }
}

const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gcn distributor</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em}h2{font-size:1.05em;margin-top:1.5em}
.kpis{display:flex;gap:1em;flex-wrap:wrap}.kpi{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:9em}
.kpi b{display:block;font-size:1.5em}table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:.3em .6em;text-align:right}
th{background:#f0f0f0}td:first-child{text-align:left;font-family:monospace}canvas{background:#fff;border:1px solid #ddd}
.bad{color:#b00}.ok{color:#070}
</style></head><body>
<h1>gcn distributor <small id="clock"></small></h1>
<div class="kpis">
<div class="kpi">requests/s<b id="rps">–</b></div>
<div class="kpi">active<b id="active">–</b></div>
<div class="kpi">requests total<b id="total">–</b></div>
<div class="kpi">TTFT p50<b id="p50">–</b></div>
<div class="kpi">TTFT p99<b id="p99">–</b></div>
<div class="kpi">proof checks ok / failed<b id="proofs">–</b></div>
<div class="kpi">last day settlement<b id="settlement">–</b></div>
</div>
<h2>Suppliers</h2>
<table><thead><tr><th>peer</th><th>models</th><th>load (outstanding / slots)</th><th>queue</th><th>TTFT ms</th><th>tokens/s</th><th>ok / failed</th><th>verified / proof failures</th></tr></thead><tbody id="suppliers"></tbody></table>
<h2>Time to first token (ms): p50, p90, p99 per second</h2>
<canvas id="latency" width="900" height="200"></canvas>
<h2>Requests per second</h2>
<canvas id="rate" width="900" height="120"></canvas>
<h2>Tasks completed (receipts) per block</h2>
<canvas id="blocks" width="900" height="120"></canvas>
<script>
const $ = id => document.getElementById(id)
const fmt = v => v === null || v === undefined ? '–' : (Math.round(v * 10) / 10).toString()
function lines(canvas, series, colors) {
  const c = canvas.getContext('2d'); const w = canvas.width, h = canvas.height
  c.clearRect(0, 0, w, h)
  const all = series.flat().filter(v => v !== null)
  const max = Math.max(1, ...all)
  c.fillStyle = '#666'; c.fillText(fmt(max), 4, 12)
  series.forEach((s, k) => {
    c.strokeStyle = colors[k]; c.beginPath(); let started = false
    s.forEach((v, i) => {
      if (v === null) { started = false; return }
      const x = (i / Math.max(1, s.length - 1)) * (w - 10) + 5, y = h - 5 - (v / max) * (h - 20)
      if (started) c.lineTo(x, y); else { c.moveTo(x, y); started = true }
    })
    c.stroke()
    // Dots too, so a lone sample (one busy second) shows.
    c.fillStyle = colors[k]
    s.forEach((v, i) => {
      if (v === null) return
      const x = (i / Math.max(1, s.length - 1)) * (w - 10) + 5, y = h - 5 - (v / max) * (h - 20)
      c.fillRect(x - 1.5, y - 1.5, 3, 3)
    })
  })
}
function bars(canvas, values) {
  const c = canvas.getContext('2d'); const w = canvas.width, h = canvas.height
  c.clearRect(0, 0, w, h)
  const max = Math.max(1, ...values); const bw = w / Math.max(1, values.length)
  c.fillStyle = '#4a7'; values.forEach((v, i) => c.fillRect(i * bw + 1, h - (v / max) * (h - 15), bw - 2, (v / max) * (h - 15)))
  c.fillStyle = '#666'; c.fillText(fmt(max), 4, 12)
}
async function refresh() {
  try {
    const d = await (await fetch('/dashboard/data.json', { cache: 'no-store' })).json()
    const last = d.series[d.series.length - 1] || {}
    $('clock').textContent = 'block ' + d.block + ', day ' + d.day
    $('rps').textContent = fmt(last.requestsPerSecond)
    $('active').textContent = d.gateway.activeRequests
    $('total').textContent = d.gateway.requestsTotal
    const recent = d.series.filter(p => p.ttftP50Ms !== null).slice(-1)[0] || {}
    $('p50').textContent = fmt(recent.ttftP50Ms) + ' ms'
    $('p99').textContent = fmt(recent.ttftP99Ms) + ' ms'
    $('proofs').textContent = d.router.verified + ' / ' + d.router.proofFailures
    const s = d.settlement
    $('settlement').innerHTML = s === null ? 'no chain' : s.error ? s.error : ('day ' + s.day + ': ' + (s.posted ? '<span class="ok">posted</span>' : '<span class="bad">not posted</span>'))
    $('suppliers').innerHTML = d.suppliers.map(e => '<tr><td title="' + e.peerId + '">' + e.peerId.slice(-12) + '</td><td>' + e.models.join(', ') + '</td><td>' + e.outstanding + ' / ' + e.slots + '</td><td>' + e.queueDepth + '</td><td>' + fmt(e.ttftMs) + '</td><td>' + fmt(e.tokensPerSecond) + '</td><td>' + e.successes + ' / ' + e.failures + '</td><td' + (e.proofFailures > 0 ? ' class="bad"' : '') + '>' + e.verified + ' / ' + e.proofFailures + '</td></tr>').join('')
    lines($('latency'), [d.series.map(p => p.ttftP50Ms), d.series.map(p => p.ttftP90Ms), d.series.map(p => p.ttftP99Ms)], ['#27c', '#c82', '#c33'])
    lines($('rate'), [d.series.map(p => p.requestsPerSecond)], ['#333'])
    bars($('blocks'), d.receiptsPerBlock.map(b => b.count))
    document.body.dataset.updated = String(d.now)
  } catch (err) {
    document.body.dataset.error = String(err)
  }
}
refresh(); setInterval(refresh, 1000)
</script></body></html>
`
