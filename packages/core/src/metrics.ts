import {
  collectDefaultMetrics,
  type Counter as PromCounter,
  Counter as PromCounterClass,
  type Gauge as PromGauge,
  Gauge as PromGaugeClass,
  type Histogram as PromHistogram,
  Histogram as PromHistogramClass,
  Registry
} from 'prom-client'

/**
 * The metrics of one process or role, on prom-client
 * (https://github.com/siimon/prom-client): counters, gauges and histograms
 * with labels, rendered in the Prometheus text exposition format 0.0.4.
 * Each MetricsRegistry owns its own prom-client `Registry` (never the
 * global one), so several nodes in one process (tests) keep apart series;
 * libp2p's own metrics (libp2pMetrics) and prom-client's default process
 * metrics (registerDefaultMetrics) are registered into the same `Registry`.
 *
 * A metric may read its value(s) at scrape time through `collect` (mapped
 * onto prom-client's `collect()` hook), so live state (slots, queue depth,
 * connections) needs no bookkeeping.
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
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'] as const

function checkLabelNames(metric: string, names: readonly string[], reserved: readonly string[] = []): void {
  const seen = new Set<string>()
  for (const n of names) {
    if (!LABEL_NAME.test(n) || n.startsWith('__')) throw new TypeError(`metric ${metric}: invalid label name ${JSON.stringify(n)}`)
    if (reserved.includes(n)) throw new TypeError(`metric ${metric}: label name ${n} is reserved`)
    if (seen.has(n)) throw new TypeError(`metric ${metric}: duplicate label name ${n}`)
    seen.add(n)
  }
}

type PromMetric = PromCounter<string> | PromGauge<string> | PromHistogram<string>
type Labels = Record<string, string>

/** Shared by every metric: name, help, label checks and the prom-client metric behind it. */
abstract class Metric<P extends PromMetric> {
  abstract readonly type: 'counter' | 'gauge' | 'histogram'
  readonly name: string
  readonly help: string
  readonly labelNames: readonly string[]
  /** The prom-client metric; registered by MetricsRegistry. */
  abstract readonly prom: P

  constructor(name: string, help: string, labelNames: readonly string[]) {
    if (!METRIC_NAME.test(name)) throw new TypeError(`invalid metric name ${JSON.stringify(name)}`)
    if (typeof help !== 'string' || help === '') throw new TypeError(`metric ${name}: help text is required`)
    this.name = name
    this.help = help
    this.labelNames = Object.freeze([...labelNames])
  }

  /**
   * Checks `labels` against labelNames; returns them as strings in labelNames
   * order, which is the order they are rendered in.
   */
  protected labels(labels: LabelValues | undefined): Labels {
    const out: Labels = {}
    if (labels === undefined) return out
    for (const k of Object.keys(labels)) {
      if (!this.labelNames.includes(k)) throw new TypeError(`metric ${this.name}: unknown label ${JSON.stringify(k)}`)
    }
    for (const n of this.labelNames) {
      const v = labels[n]
      if (v !== undefined) out[n] = String(v)
    }
    return out
  }

  /** The rendered values of the series whose labels are exactly `labels` (runs `collect`). */
  protected async values(labels: LabelValues | undefined): Promise<Array<{ metricName?: string; value: number }>> {
    const want = this.labels(labels)
    const keys = Object.keys(want)
    const got = await this.prom.get()
    return got.values.filter(v => {
      const l = v.labels as Record<string, string | number | undefined>
      const own = Object.keys(l).filter(k => k !== 'le')
      return own.length === keys.length && keys.every(k => String(l[k]) === want[k])
    })
  }

  /** Forgets every series (labelled values); a collect callback refills them. */
  reset(): void {
    this.prom.reset()
  }
}

/** A value that is set, incremented or read live (collect). */
abstract class ScalarMetric<P extends PromCounter<string> | PromGauge<string>> extends Metric<P> {
  readonly collect: MetricConfig['collect']

  constructor(config: MetricConfig) {
    super(config.name, config.help, config.labelNames ?? [])
    checkLabelNames(config.name, this.labelNames)
    this.collect = config.collect
  }

  /** prom-client's `collect()` hook: runs `collect` and applies its result. */
  protected hook(): (() => Promise<void>) | undefined {
    const collect = this.collect
    return collect === undefined ? undefined : async () => this.apply(await collect())
  }

  /** Current value of one series (0 if never touched); runs `collect`. */
  async get(labels?: LabelValues): Promise<number> {
    return (await this.values(labels))[0]?.value ?? 0
  }

  /** Replaces every series with what `collect` returned (all checked first: a bad sample changes nothing). */
  apply(collected: Collected): void {
    const samples = typeof collected === 'number' ? [{ value: collected }] : collected
    const checked = samples.map(s => {
      this.check(s.value)
      return { labels: this.labels(s.labels), value: s.value }
    })
    this.prom.reset()
    for (const s of checked) this.write(s.labels, s.value)
  }

  protected check(value: number): void {
    if (typeof value !== 'number') throw new TypeError(`metric ${this.name}: value must be a number, got ${typeof value}`)
  }

  protected abstract write(labels: Labels, value: number): void
}

/** A monotonically increasing count; its name must end in `_total`. */
export class Counter extends ScalarMetric<PromCounter<string>> {
  readonly type = 'counter'
  readonly prom: PromCounter<string>

  constructor(config: MetricConfig) {
    super(config)
    if (!config.name.endsWith('_total')) throw new TypeError(`counter ${config.name} must end in _total`)
    const collect = this.hook()
    this.prom = new PromCounterClass({
      name: this.name,
      help: this.help,
      labelNames: this.labelNames,
      registers: [],
      ...(collect === undefined ? {} : { collect })
    })
  }

  inc(labels?: LabelValues | number, value?: number): void {
    const [l, v] = typeof labels === 'number' ? [undefined, labels] : [labels, value ?? 1]
    if (!(v >= 0)) throw new RangeError(`counter ${this.name} can only increase (got ${v})`)
    this.prom.inc(this.labels(l), v)
  }

  protected override check(value: number): void {
    super.check(value)
    if (!(value >= 0)) throw new RangeError(`counter ${this.name} cannot be negative (got ${value})`)
  }

  protected write(labels: Labels, value: number): void {
    this.prom.inc(labels, value)
  }
}

/** A value that goes up and down. */
export class Gauge extends ScalarMetric<PromGauge<string>> {
  readonly type = 'gauge'
  readonly prom: PromGauge<string>

  constructor(config: MetricConfig) {
    super(config)
    const collect = this.hook()
    this.prom = new PromGaugeClass({
      name: this.name,
      help: this.help,
      labelNames: this.labelNames,
      registers: [],
      ...(collect === undefined ? {} : { collect })
    })
  }

  set(labels: LabelValues | number, value?: number): void {
    const [l, v] = typeof labels === 'number' ? [undefined, labels] : [labels, value ?? 0]
    this.check(v)
    this.prom.set(this.labels(l), v)
  }

  inc(labels?: LabelValues | number, value?: number): void {
    const [l, v] = typeof labels === 'number' ? [undefined, labels] : [labels, value ?? 1]
    this.prom.inc(this.labels(l), v)
  }

  dec(labels?: LabelValues | number, value?: number): void {
    const [l, v] = typeof labels === 'number' ? [undefined, labels] : [labels, value ?? 1]
    this.prom.dec(this.labels(l), v)
  }

  protected write(labels: Labels, value: number): void {
    this.prom.set(labels, value)
  }
}

/** Observations counted into fixed buckets, exposed cumulatively with `_bucket{le}`, `_sum` and `_count`. */
export class Histogram extends Metric<PromHistogram<string>> {
  readonly type = 'histogram'
  readonly buckets: readonly number[]
  readonly prom: PromHistogram<string>

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
    this.prom = new PromHistogramClass({
      name: this.name,
      help: this.help,
      labelNames: this.labelNames,
      buckets: [...this.buckets],
      registers: []
    })
  }

  observe(labels: LabelValues | number, value?: number): void {
    const [l, v] = typeof labels === 'number' ? [undefined, labels] : [labels, value]
    if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`histogram ${this.name}: observation must be a number`)
    this.prom.observe(this.labels(l), v)
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
  async get(labels?: LabelValues): Promise<{ count: number; sum: number }> {
    const values = await this.values(labels)
    const pick = (suffix: string): number => values.find(v => v.metricName === `${this.name}${suffix}`)?.value ?? 0
    return { count: pick('_count'), sum: pick('_sum') }
  }
}

type AnyMetric = Counter | Gauge | Histogram

export interface MetricsRegistryOptions {
  /** The prom-client registry to fill; default: a new one (never prom-client's global `register`). */
  registry?: Registry
}

/**
 * The metrics of one process or role. `metrics()` runs the beforeScrape
 * hooks, then renders every metric of the prom-client registry (this
 * registry's own, libp2p's, the default process metrics): `# HELP`,
 * `# TYPE`, then its samples, in registration order.
 */
export class MetricsRegistry {
  readonly contentType = PROMETHEUS_CONTENT_TYPE
  /** The prom-client registry behind this one; hand it to libp2pMetrics or other prom-client code. */
  readonly promRegistry: Registry
  private readonly byName = new Map<string, AnyMetric>()
  private readonly closers: Array<() => void> = []
  private readonly hooks: Array<() => void | Promise<void>> = []

  /** Told of every collect callback or scrape hook that throws (the metric is left out of that scrape). */
  onCollectError?: (name: string, err: unknown) => void

  constructor(options: MetricsRegistryOptions = {}) {
    this.promRegistry = options.registry ?? new Registry()
  }

  /** Whether `name` is taken in the prom-client registry, directly or as a histogram's series. */
  private taken(name: string, histogram: boolean): boolean {
    const suffixes = histogram ? ['', ...HISTOGRAM_SUFFIXES] : ['']
    for (const other of this.promRegistry.getMetricsAsArray()) {
      const o = other as unknown as { name: string; type: string }
      if (suffixes.some(s => `${name}${s}` === o.name)) return true
      if ((o.type === 'histogram' || o.type === 'summary') && [...HISTOGRAM_SUFFIXES].some(s => `${o.name}${s}` === name)) return true
    }
    return false
  }

  private add<M extends AnyMetric>(metric: M): M {
    if (this.taken(metric.name, metric.type === 'histogram')) throw new TypeError(`metric ${metric.name} is already registered`)
    this.promRegistry.registerMetric(metric.prom)
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

  /** A metric made by this registry's counter/gauge/histogram. */
  get(name: string): AnyMetric | undefined {
    return this.byName.get(name)
  }

  /** Runs `hook` at the start of every scrape, before the collect callbacks (e.g. to snapshot a window). */
  beforeScrape(hook: () => void | Promise<void>): void {
    this.hooks.push(hook)
  }

  /** Runs `close` on `close()`. */
  onClose(close: () => void): void {
    this.closers.push(close)
  }

  close(): void {
    for (const c of this.closers.splice(0)) c()
  }

  /** The exposition text; ends with a line feed. A metric whose collection fails is left out. */
  async metrics(): Promise<string> {
    for (const hook of this.hooks) {
      try {
        await hook()
      } catch (err) {
        this.onCollectError?.('beforeScrape', err)
      }
    }
    const names = this.promRegistry.getMetricsAsArray().map(m => (m as unknown as { name: string }).name)
    const rendered = await Promise.allSettled(names.map(name => this.promRegistry.getSingleMetricAsString(name)))
    let text = ''
    rendered.forEach((r, i) => {
      if (r.status === 'fulfilled') text += `${r.value}\n`
      else this.onCollectError?.(names[i]!, r.reason)
    })
    return text
  }
}

export interface DefaultMetricsOptions {
  /** Name prefix; default none, so the names are the ones Node.js dashboards expect (`process_cpu_seconds_total`, ...). */
  prefix?: string
  /** Event loop delay sampling resolution in milliseconds; default EVENT_LOOP_MONITOR_MS. */
  eventLoopMonitoringPrecision?: number
}

/**
 * The event loop delay monitor's timer fires this often in every gcn process, for its whole life.
 * prom-client's 10 ms woke each idle role 100 times a second: measured on the 2-core dev VM, an idle
 * devnet supplier used 15 ms of CPU a second with it and 3–5 ms at 1 s (bootstrap 8 → 3, distributor
 * 7 → 3–4), and a supplier's wake-ups land on the cores its model decodes on. 100 ms still samples
 * the loop ten times a second, enough for the lag percentiles of a 15 s scrape.
 */
export const EVENT_LOOP_MONITOR_MS = 100

/**
 * prom-client's default metrics on `registry`: process CPU, memory, open
 * file descriptors, start time, Node.js heap and heap spaces, event loop lag
 * (`nodejs_eventloop_lag_*_seconds`: the timer interval, lag included, since
 * the previous scrape), active handles/requests/resources, GC durations and
 * version. The event loop and GC monitors they start stay on for the life of
 * the process.
 */
export function registerDefaultMetrics(registry: MetricsRegistry, options: DefaultMetricsOptions = {}): void {
  collectDefaultMetrics({
    register: registry.promRegistry,
    ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
    eventLoopMonitoringPrecision: options.eventLoopMonitoringPrecision ?? EVENT_LOOP_MONITOR_MS
  })
}
