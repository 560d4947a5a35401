import { monitorEventLoopDelay } from 'node:perf_hooks'

/**
 * A small, dependency-free registry of Prometheus metrics rendered in the
 * text exposition format, version 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/): counters,
 * gauges and histograms with fixed buckets, labels, `# HELP` and `# TYPE`
 * lines. A metric may read its value(s) at scrape time through `collect`,
 * so live state (slots, queue depth, connections) needs no bookkeeping.
 *
 * Names follow the Prometheus conventions: a unit suffix (`_seconds`,
 * `_bytes`, `_ratio`, ...) and `_total` on every counter (enforced).
 */

/** Content type of `MetricsRegistry.metrics()`. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

export type LabelValues = Record<string, string | number>

/** One labelled value a `collect` callback reports. */
export interface Sample {
  labels?: LabelValues
  value: number
}

/** What `collect` returns: one unlabelled value, or labelled samples (they replace the series set so far). */
export type Collected = number | readonly Sample[]

export interface MetricConfig {
  name: string
  help: string
  labelNames?: readonly string[]
  /** Called on every scrape; its result replaces the metric's values. A throw or rejection drops the metric from that scrape. */
  collect?: () => Collected | Promise<Collected>
}

export interface HistogramConfig {
  name: string
  help: string
  labelNames?: readonly string[]
  /** Upper bounds, strictly increasing; `+Inf` is implied. Default: DEFAULT_SECONDS_BUCKETS. */
  buckets?: readonly number[]
}

/** Latency buckets from 5 ms to 60 s. */
export const DEFAULT_SECONDS_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60])

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/** `# HELP` text: backslash and line feed escaped. */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

/** A label value: backslash, double quote and line feed escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** A sample value as Prometheus (Go's ParseFloat) reads it: `+Inf`, `-Inf`, `NaN` or a decimal/exponent float. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Number.POSITIVE_INFINITY) return '+Inf'
  if (value === Number.NEGATIVE_INFINITY) return '-Inf'
  return String(value)
}

function checkLabelNames(metric: string, names: readonly string[], reserved: readonly string[] = []): void {
  const seen = new Set<string>()
  for (const n of names) {
    if (!LABEL_NAME.test(n) || n.startsWith('__')) throw new TypeError(`metric ${metric}: invalid label name ${JSON.stringify(n)}`)
    if (reserved.includes(n)) throw new TypeError(`metric ${metric}: label name ${n} is reserved`)
    if (seen.has(n)) throw new TypeError(`metric ${metric}: duplicate label name ${n}`)
    seen.add(n)
  }
}

type MetricType = 'counter' | 'gauge' | 'histogram'

/** Shared by every metric: name, help, label handling and the series map. */
abstract class Metric<V> {
  abstract readonly type: MetricType
  readonly name: string
  readonly help: string
  readonly labelNames: readonly string[]
  /** Series by label key (label values in labelNames order, JSON-encoded). */
  protected readonly series = new Map<string, { labels: LabelValues; value: V }>()

  constructor(name: string, help: string, labelNames: readonly string[]) {
    if (!METRIC_NAME.test(name)) throw new TypeError(`invalid metric name ${JSON.stringify(name)}`)
    this.name = name
    this.help = help
    this.labelNames = [...labelNames]
  }

  /** Checks `labels` against labelNames; returns the series key and the normalised (string) labels. */
  protected key(labels: LabelValues | undefined): [string, LabelValues] {
    const normal: LabelValues = {}
    if (labels !== undefined) {
      for (const [k, v] of Object.entries(labels)) {
        if (!this.labelNames.includes(k)) throw new TypeError(`metric ${this.name}: unknown label ${JSON.stringify(k)}`)
        normal[k] = String(v)
      }
    }
    return [JSON.stringify(this.labelNames.map(n => normal[n] ?? null)), normal]
  }

  protected entry(labels: LabelValues | undefined, init: () => V): { labels: LabelValues; value: V } {
    const [key, normal] = this.key(labels)
    let e = this.series.get(key)
    if (e === undefined) {
      e = { labels: normal, value: init() }
      this.series.set(key, e)
    }
    return e
  }

  /** Forgets every series (labelled values); a collect callback refills them. */
  reset(): void {
    this.series.clear()
  }

  /** Sample lines (no HELP/TYPE). */
  abstract lines(): string[]
}

/** `name{a="x",b="y"}`; labels in labelNames order, then `extra` (e.g. `le`). */
function seriesName(name: string, order: readonly string[], labels: LabelValues, extra?: [string, string]): string {
  const parts: string[] = []
  for (const n of order) {
    const v = labels[n]
    if (v !== undefined) parts.push(`${n}="${escapeLabelValue(String(v))}"`)
  }
  if (extra !== undefined) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`)
  return parts.length === 0 ? name : `${name}{${parts.join(',')}}`
}

/** A value that is set, incremented or read live (collect). */
abstract class ScalarMetric extends Metric<number> {
  readonly collect: MetricConfig['collect']

  constructor(config: MetricConfig) {
    super(config.name, config.help, config.labelNames ?? [])
    checkLabelNames(config.name, this.labelNames)
    this.collect = config.collect
  }

  /** Current value of one series (0 if never touched). */
  get(labels?: LabelValues): number {
    const [key] = this.key(labels)
    return this.series.get(key)?.value ?? 0
  }

  /** Replaces every series with what `collect` returned. */
  apply(collected: Collected): void {
    this.series.clear()
    if (typeof collected === 'number') this.write(undefined, collected)
    else for (const s of collected) this.write(s.labels, s.value)
  }

  protected write(labels: LabelValues | undefined, value: number): void {
    if (typeof value !== 'number') throw new TypeError(`metric ${this.name}: value must be a number, got ${typeof value}`)
    this.entry(labels, () => 0).value = value
  }

  lines(): string[] {
    return [...this.series.values()].map(e => `${seriesName(this.name, this.labelNames, e.labels)} ${formatValue(e.value)}`)
  }
}

/** A monotonically increasing count; its name must end in `_total`. */
export class Counter extends ScalarMetric {
  readonly type = 'counter'

  constructor(config: MetricConfig) {
    super(config)
    if (!config.name.endsWith('_total')) throw new TypeError(`counter ${config.name} must end in _total`)
  }

  inc(labels?: LabelValues | number, value?: number): void {
    const [l, v] = typeof labels === 'number' ? [undefined, labels] : [labels, value ?? 1]
    if (!(v >= 0)) throw new RangeError(`counter ${this.name} can only increase (got ${v})`)
    this.entry(l, () => 0).value += v
  }

  protected override write(labels: LabelValues | undefined, value: number): void {
    if (value < 0) throw new RangeError(`counter ${this.name} cannot be negative (got ${value})`)
    super.write(labels, value)
  }
}

/** A value that goes up and down. */
export class Gauge extends ScalarMetric {
  readonly type = 'gauge'

  set(labels: LabelValues | number, value?: number): void {
    if (typeof labels === 'number') this.write(undefined, labels)
    else this.write(labels, value ?? 0)
  }

  inc(labels?: LabelValues | number, value?: number): void {
    const [l, v] = typeof labels === 'number' ? [undefined, labels] : [labels, value ?? 1]
    this.entry(l, () => 0).value += v
  }

  dec(labels?: LabelValues | number, value?: number): void {
    const [l, v] = typeof labels === 'number' ? [undefined, labels] : [labels, value ?? 1]
    this.entry(l, () => 0).value -= v
  }
}

interface HistogramValue {
  /** Per-bucket (non-cumulative) counts; the last one is +Inf. */
  counts: number[]
  sum: number
  count: number
}

/** Observations counted into fixed buckets, exposed cumulatively with `_bucket{le}`, `_sum` and `_count`. */
export class Histogram extends Metric<HistogramValue> {
  readonly type = 'histogram'
  readonly buckets: readonly number[]

  constructor(config: HistogramConfig) {
    super(config.name, config.help, config.labelNames ?? [])
    checkLabelNames(config.name, this.labelNames, ['le'])
    const buckets = [...(config.buckets ?? DEFAULT_SECONDS_BUCKETS)].filter(b => b !== Number.POSITIVE_INFINITY)
    for (let i = 0; i < buckets.length; i++) {
      if (!Number.isFinite(buckets[i]!) || (i > 0 && buckets[i]! <= buckets[i - 1]!)) {
        throw new TypeError(`histogram ${config.name}: buckets must be finite and strictly increasing`)
      }
    }
    this.buckets = Object.freeze(buckets)
  }

  observe(labels: LabelValues | number, value?: number): void {
    const [l, v] = typeof labels === 'number' ? [undefined, labels] : [labels, value]
    if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`histogram ${this.name}: observation must be a number`)
    const e = this.entry(l, () => ({ counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 }))
    let i = this.buckets.findIndex(b => v <= b)
    if (i === -1) i = this.buckets.length
    e.value.counts[i]!++
    e.value.sum += v
    e.value.count++
  }

  /** Starts a timer; calling the result observes the seconds elapsed (with labels given then or now). */
  startTimer(labels?: LabelValues): (endLabels?: LabelValues) => number {
    const start = process.hrtime.bigint()
    return endLabels => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9
      this.observe({ ...labels, ...endLabels }, seconds)
      return seconds
    }
  }

  /** Observation count and sum of one series. */
  get(labels?: LabelValues): { count: number; sum: number } {
    const [key] = this.key(labels)
    const e = this.series.get(key)
    return { count: e?.value.count ?? 0, sum: e?.value.sum ?? 0 }
  }

  lines(): string[] {
    const out: string[] = []
    for (const e of this.series.values()) {
      let cumulative = 0
      for (let i = 0; i <= this.buckets.length; i++) {
        cumulative += e.value.counts[i]!
        const le = i < this.buckets.length ? formatValue(this.buckets[i]!) : '+Inf'
        out.push(`${seriesName(`${this.name}_bucket`, this.labelNames, e.labels, ['le', le])} ${cumulative}`)
      }
      out.push(`${seriesName(`${this.name}_sum`, this.labelNames, e.labels)} ${formatValue(e.value.sum)}`)
      out.push(`${seriesName(`${this.name}_count`, this.labelNames, e.labels)} ${e.value.count}`)
    }
    return out
  }
}

type AnyMetric = Counter | Gauge | Histogram

/**
 * The metrics of one process. `metrics()` runs every collect callback, then
 * renders every metric: `# HELP`, `# TYPE`, then its samples, in registration order.
 */
export class MetricsRegistry {
  readonly contentType = PROMETHEUS_CONTENT_TYPE
  private readonly byName = new Map<string, AnyMetric>()
  private readonly closers: Array<() => void> = []
  private readonly hooks: Array<() => void | Promise<void>> = []

  /** Told of every collect callback or scrape hook that throws (the metric is left out of that scrape). */
  onCollectError?: (name: string, err: unknown) => void

  private add<M extends AnyMetric>(metric: M): M {
    const suffixes = metric.type === 'histogram' ? ['', '_bucket', '_sum', '_count'] : ['']
    for (const [name, other] of this.byName) {
      const clash =
        name === metric.name ||
        suffixes.some(s => `${metric.name}${s}` === name) ||
        (other.type === 'histogram' && ['_bucket', '_sum', '_count'].some(s => `${name}${s}` === metric.name))
      if (clash) throw new TypeError(`metric ${metric.name} is already registered`)
    }
    this.byName.set(metric.name, metric)
    return metric
  }

  counter(config: MetricConfig): Counter {
    return this.add(new Counter(config))
  }

  gauge(config: MetricConfig): Gauge {
    return this.add(new Gauge(config))
  }

  histogram(config: HistogramConfig): Histogram {
    return this.add(new Histogram(config))
  }

  get(name: string): AnyMetric | undefined {
    return this.byName.get(name)
  }

  /** Runs `hook` at the start of every scrape, before the collect callbacks (e.g. to snapshot a window). */
  beforeScrape(hook: () => void | Promise<void>): void {
    this.hooks.push(hook)
  }

  /** Runs `close` on `close()` (e.g. to disable an event loop monitor). */
  onClose(close: () => void): void {
    this.closers.push(close)
  }

  close(): void {
    for (const c of this.closers.splice(0)) c()
  }

  /** The exposition text; ends with a line feed. */
  async metrics(): Promise<string> {
    const out: string[] = []
    for (const hook of this.hooks) {
      try {
        await hook()
      } catch (err) {
        this.onCollectError?.('beforeScrape', err)
      }
    }
    const metrics = [...this.byName.values()]
    const collected = await Promise.all(
      metrics.map(async m => {
        if (m.type === 'histogram' || m.collect === undefined) return true
        try {
          m.apply(await m.collect())
          return true
        } catch (err) {
          this.onCollectError?.(m.name, err)
          return false
        }
      })
    )
    metrics.forEach((m, i) => {
      if (!collected[i]) return
      out.push(`# HELP ${m.name} ${escapeHelp(m.help)}`, `# TYPE ${m.name} ${m.type}`, ...m.lines())
    })
    return `${out.join('\n')}\n`
  }
}

export interface ProcessMetricsOptions {
  /** Name prefix; default `gcn_`. */
  prefix?: string
  /** Event loop delay sampling resolution; default 20 ms. */
  eventLoopResolutionMs?: number
}

/**
 * Process and Node.js runtime metrics: resident memory, heap, CPU time,
 * start time, active resources and event loop lag (p50, p99 and max of the
 * timer delay beyond schedule since the previous scrape, sampled by
 * perf_hooks.monitorEventLoopDelay).
 * `registry.close()` disables the event loop monitor.
 */
export function registerProcessMetrics(registry: MetricsRegistry, options: ProcessMetricsOptions = {}): void {
  const p = options.prefix ?? 'gcn_'
  const startSeconds = Math.round(performance.timeOrigin) / 1000
  registry.gauge({
    name: `${p}process_resident_memory_bytes`,
    help: 'Resident set size of the process.',
    collect: () => process.memoryUsage.rss()
  })
  registry.gauge({
    name: `${p}process_heap_used_bytes`,
    help: 'V8 heap in use.',
    collect: () => process.memoryUsage().heapUsed
  })
  registry.gauge({
    name: `${p}process_heap_total_bytes`,
    help: 'V8 heap allocated.',
    collect: () => process.memoryUsage().heapTotal
  })
  registry.counter({
    name: `${p}process_cpu_seconds_total`,
    help: 'User and system CPU time spent by the process.',
    collect: () => {
      const { user, system } = process.cpuUsage()
      return (user + system) / 1e6
    }
  })
  registry.gauge({
    name: `${p}process_start_time_seconds`,
    help: 'Start time of the process since the unix epoch.',
    collect: () => startSeconds
  })
  registry.gauge({
    name: `${p}nodejs_active_resources`,
    help: 'Resources (handles, requests, timers) keeping the event loop alive.',
    collect: () => process.getActiveResourcesInfo().length
  })
  const resolutionMs = options.eventLoopResolutionMs ?? 20
  const delay = monitorEventLoopDelay({ resolution: resolutionMs })
  delay.enable()
  registry.onClose(() => delay.disable())
  // The histogram holds whole timer intervals (resolution + lag): report only the lag, over the
  // window since the previous scrape. With no sample yet it reports extremes; report 0 then.
  let window = { p50: 0, p99: 0, max: 0 }
  const lag = (ns: number): number => Math.max(0, ns - resolutionMs * 1e6) / 1e9
  registry.beforeScrape(() => {
    window =
      delay.count === 0
        ? { p50: 0, p99: 0, max: 0 }
        : { p50: lag(delay.percentile(50)), p99: lag(delay.percentile(99)), max: lag(delay.max) }
    delay.reset()
  })
  registry.gauge({
    name: `${p}nodejs_eventloop_lag_p50_seconds`,
    help: 'Median event loop delay since the previous scrape.',
    collect: () => window.p50
  })
  registry.gauge({
    name: `${p}nodejs_eventloop_lag_p99_seconds`,
    help: '99th percentile of event loop delay since the previous scrape.',
    collect: () => window.p99
  })
  registry.gauge({
    name: `${p}nodejs_eventloop_lag_max_seconds`,
    help: 'Largest event loop delay since the previous scrape.',
    collect: () => window.max
  })
}
