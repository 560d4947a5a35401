import {
  type CalculatedHistogramOptions,
  type CalculatedMetricOptions,
  type CalculatedSummaryOptions,
  type ComponentLogger,
  type Counter,
  type CounterGroup,
  type Histogram,
  type HistogramGroup,
  type HistogramOptions,
  type Metric,
  type MetricGroup,
  type MetricOptions,
  type Metrics,
  type MultiaddrConnection,
  type StopTimer,
  type Stream,
  type Summary,
  type SummaryGroup,
  type SummaryOptions,
  serviceCapabilities
} from '@libp2p/interface'
import { Counter as PromCounter, Gauge as PromGauge, Histogram as PromHistogram, Summary as PromSummary, type Registry } from 'prom-client'

/**
 * libp2p's own metrics (connections, streams per protocol, bytes per
 * protocol, dialer, listeners, queues, kad-dht, ...) as prom-client metrics
 * in one node's registry: the libp2p `metrics` component.
 *
 * It mirrors @libp2p/prometheus-metrics (same metric names, labels and
 * kinds, so libp2p's dashboards apply) but keeps its metrics per node.
 * That package keeps every metric it made in one module-wide map that the
 * next node's construction clears: with several nodes in one process the
 * metrics a node registers when it starts (connection manager, TCP and
 * WebSocket listeners) land in another node's registry, and a name
 * registered again after such a clear throws "already registered". Two
 * more differences: a calculated gauge group replaces its series on every
 * scrape (the package keeps the last value of a key that disappeared, e.g.
 * a protocol whose streams all closed), and calculations registered several
 * times under one name (two TCP listeners) add up instead of the first one
 * winning. prom-client's default process metrics are not registered here:
 * see registerDefaultMetrics.
 */
export interface Libp2pMetricsInit {
  /** The registry to fill (e.g. `MetricsRegistry.promRegistry`); one per node. */
  registry: Registry
}

type Values = Record<string, number>
type Calculate<T> = () => T | Promise<T>

/** prom-client's metric and label name rules, applied as @libp2p/prometheus-metrics does. */
function normalize(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_').replace(/_+/g, '_')
}

const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const DEFAULT_PERCENTILES = [0.01, 0.05, 0.5, 0.9, 0.95, 0.99, 0.999]

/** One registered name: its wrapper (handed to libp2p) and the calculations registered under it. */
interface Entry {
  kind: string
  wrapper: unknown
  calculations: Array<Calculate<unknown>>
}

/** Runs every calculation; a failure fails the scrape of this metric (MetricsRegistry leaves it out). */
async function calculateAll<T>(entry: Entry): Promise<T[]> {
  return (await Promise.all(entry.calculations.map(c => c()))) as T[]
}

function sumNumbers(values: unknown[]): number | undefined {
  const numbers = values.filter((v): v is number => typeof v === 'number')
  return numbers.length === 0 ? undefined : numbers.reduce((a, b) => a + b, 0)
}

/** Per key sums of several calculations' records. */
function sumRecords(values: unknown[]): Values {
  const out: Values = {}
  for (const record of values) {
    if (record === null || typeof record !== 'object') continue
    for (const [k, v] of Object.entries(record as Record<string, unknown>)) {
      if (typeof v === 'number') out[k] = (out[k] ?? 0) + v
    }
  }
  return out
}

class Libp2pPrometheusMetrics implements Metrics {
  readonly [Symbol.toStringTag] = '@gcn/libp2p-metrics'
  readonly [serviceCapabilities]: string[] = ['@libp2p/metrics']
  private readonly registry: Registry
  private readonly log: ReturnType<ComponentLogger['forComponent']>
  private readonly entries = new Map<string, Entry>()
  /** Bytes sent and received per `<protocol> sent|received` since the previous scrape. */
  private readonly transfer = new Map<string, number>()

  constructor(components: { logger: ComponentLogger }, init: Libp2pMetricsInit) {
    this.registry = init.registry
    this.log = components.logger.forComponent('gcn:libp2p-metrics')
    this.registerCounterGroup('libp2p_data_transfer_bytes_total', {
      label: 'protocol',
      help: 'Bytes sent and received, over all connections (global) and per protocol.',
      calculate: () => {
        const out = Object.fromEntries(this.transfer)
        this.transfer.clear()
        return out
      }
    })
  }

  start(): void {}

  stop(): void {
    this.transfer.clear()
  }

  /**
   * The entry for `name`: the one made before (a calculation given now is
   * added to it), or a new one built by `make` with the prom-client `collect`
   * hook that runs the entry's calculations.
   */
  private entry<W>(
    kind: string,
    rawName: string,
    options: MetricOptions | undefined,
    make: (name: string, entry: Entry, registers: Registry[]) => W
  ): W {
    if (rawName.trim() === '') throw new Error('metric name is required')
    const name = normalize(rawName)
    let entry = this.entries.get(name)
    if (entry === undefined) {
      entry = { kind, wrapper: undefined, calculations: [] }
      // A name someone else registered in this registry: keep libp2p working, export nothing.
      const taken = this.registry.getSingleMetric(name) !== undefined
      if (taken) this.log.error('metric %s is already registered by another collector; libp2p values for it are not exported', name)
      entry.wrapper = make(name, entry, taken ? [] : [this.registry])
      this.entries.set(name, entry)
    } else if (entry.kind !== kind) {
      this.log.error('metric %s registered as %s and as %s', name, entry.kind, kind)
    }
    const calculate = options !== undefined && 'calculate' in options ? (options.calculate as Calculate<unknown>) : undefined
    if (calculate !== undefined && !entry.calculations.includes(calculate)) entry.calculations.push(calculate)
    return entry.wrapper as W
  }

  registerMetric(name: string, options?: MetricOptions | CalculatedMetricOptions): Metric {
    return this.entry('metric', name, options, (n, entry, registers) => {
      const gauge = new PromGauge({
        name: n,
        help: options?.help ?? n,
        labelNames: options?.label === undefined ? [] : [normalize(options.label)],
        registers,
        async collect() {
          if (entry.calculations.length === 0) return
          const value = sumNumbers(await calculateAll(entry))
          if (value !== undefined) this.set(value)
        }
      })
      return {
        update: value => gauge.set(value),
        increment: (value = 1) => gauge.inc(value),
        decrement: (value = 1) => gauge.dec(value),
        reset: () => gauge.reset(),
        timer: (): StopTimer => gauge.startTimer()
      } satisfies Metric
    })
  }

  registerMetricGroup(name: string, options?: MetricOptions | CalculatedMetricOptions<Values>): MetricGroup {
    return this.entry('metricGroup', name, options, (n, entry, registers) => {
      const label = normalize(options?.label ?? n)
      const gauge = new PromGauge({
        name: n,
        help: options?.help ?? n,
        labelNames: [label],
        registers,
        async collect() {
          if (entry.calculations.length === 0) return
          const values = sumRecords(await calculateAll(entry))
          // Replace the series: a key no calculation returns any more is gone, not stuck at its last value.
          this.reset()
          for (const [key, value] of Object.entries(values)) this.set({ [label]: key }, value)
        }
      })
      return {
        update: values => {
          for (const [key, value] of Object.entries(values)) if (typeof value === 'number') gauge.set({ [label]: key }, value)
        },
        increment: values => {
          for (const [key, value] of Object.entries(values)) gauge.inc({ [label]: key }, typeof value === 'number' ? value : 1)
        },
        decrement: values => {
          for (const [key, value] of Object.entries(values)) gauge.dec({ [label]: key }, typeof value === 'number' ? value : 1)
        },
        reset: () => gauge.reset(),
        timer: (key: string): StopTimer => gauge.startTimer({ [label]: key })
      } satisfies MetricGroup
    })
  }

  registerCounter(name: string, options?: MetricOptions | CalculatedMetricOptions): Counter {
    return this.entry('counter', name, options, (n, entry, registers) => {
      const counter = new PromCounter({
        name: n,
        help: options?.help ?? n,
        labelNames: options?.label === undefined ? [] : [normalize(options.label)],
        registers,
        // As in libp2p's implementation, a calculated counter adds what its calculation returns.
        async collect() {
          if (entry.calculations.length === 0) return
          const value = sumNumbers(await calculateAll(entry))
          if (value !== undefined && value > 0) this.inc(value)
        }
      })
      return {
        increment: (value = 1) => counter.inc(value),
        reset: () => counter.reset()
      } satisfies Counter
    })
  }

  registerCounterGroup(name: string, options?: MetricOptions | CalculatedMetricOptions<Values>): CounterGroup {
    return this.entry('counterGroup', name, options, (n, entry, registers) => {
      const label = normalize(options?.label ?? n)
      const counter = new PromCounter({
        name: n,
        help: options?.help ?? n,
        labelNames: [label],
        registers,
        async collect() {
          if (entry.calculations.length === 0) return
          for (const [key, value] of Object.entries(sumRecords(await calculateAll(entry)))) {
            if (value > 0) this.inc({ [label]: key }, value)
          }
        }
      })
      return {
        increment: values => {
          for (const [key, value] of Object.entries(values)) counter.inc({ [label]: key }, typeof value === 'number' ? value : 1)
        },
        reset: () => counter.reset()
      } satisfies CounterGroup
    })
  }

  registerHistogram(name: string, options?: HistogramOptions | CalculatedHistogramOptions): Histogram {
    return this.entry('histogram', name, options, (n, entry, registers) => {
      const histogram = new PromHistogram({
        name: n,
        help: options?.help ?? n,
        buckets: options?.buckets ?? DEFAULT_BUCKETS,
        labelNames: options?.label === undefined ? [] : [normalize(options.label)],
        registers,
        async collect() {
          for (const value of await calculateAll(entry)) if (typeof value === 'number') this.observe(value)
        }
      })
      return {
        observe: value => histogram.observe(value),
        reset: () => histogram.reset(),
        timer: (): StopTimer => histogram.startTimer()
      } satisfies Histogram
    })
  }

  registerHistogramGroup(name: string, options?: HistogramOptions | CalculatedHistogramOptions<Values>): HistogramGroup {
    return this.entry('histogramGroup', name, options, (n, entry, registers) => {
      const label = normalize(options?.label ?? n)
      const histogram = new PromHistogram({
        name: n,
        help: options?.help ?? n,
        buckets: options?.buckets ?? DEFAULT_BUCKETS,
        labelNames: [label],
        registers,
        async collect() {
          for (const record of await calculateAll<Values>(entry)) {
            for (const [key, value] of Object.entries(record)) if (typeof value === 'number') this.observe({ [label]: key }, value)
          }
        }
      })
      return {
        observe: values => {
          for (const [key, value] of Object.entries(values)) if (typeof value === 'number') histogram.observe({ [label]: key }, value)
        },
        reset: () => histogram.reset(),
        timer: (key: string): StopTimer => histogram.startTimer({ [label]: key })
      } satisfies HistogramGroup
    })
  }

  private summary(
    n: string,
    labelNames: string[],
    registers: Registry[],
    options: SummaryOptions | undefined,
    entry: Entry,
    group: boolean
  ) {
    return new PromSummary({
      name: n,
      help: options?.help ?? n,
      percentiles: options?.percentiles ?? DEFAULT_PERCENTILES,
      ...(options?.maxAgeSeconds === undefined ? {} : { maxAgeSeconds: options.maxAgeSeconds }),
      ...(options?.ageBuckets === undefined ? {} : { ageBuckets: options.ageBuckets }),
      ...(options?.pruneAgedBuckets === undefined ? {} : { pruneAgedBuckets: options.pruneAgedBuckets }),
      compressCount: options?.compressCount ?? 1000,
      labelNames,
      registers,
      async collect() {
        for (const value of await calculateAll(entry)) {
          if (!group) {
            if (typeof value === 'number') this.observe(value)
            continue
          }
          for (const [key, v] of Object.entries(value as Values)) if (typeof v === 'number') this.observe({ [labelNames[0]!]: key }, v)
        }
      }
    })
  }

  registerSummary(name: string, options?: SummaryOptions | CalculatedSummaryOptions): Summary {
    return this.entry('summary', name, options, (n, entry, registers) => {
      const summary = this.summary(n, options?.label === undefined ? [] : [normalize(options.label)], registers, options, entry, false)
      return {
        observe: value => summary.observe(value),
        reset: () => summary.reset(),
        timer: (): StopTimer => summary.startTimer()
      } satisfies Summary
    })
  }

  registerSummaryGroup(name: string, options?: SummaryOptions | CalculatedSummaryOptions<Values>): SummaryGroup {
    return this.entry('summaryGroup', name, options, (n, entry, registers) => {
      const label = normalize(options?.label ?? n)
      const summary = this.summary(n, [label], registers, options, entry, true)
      return {
        observe: values => {
          for (const [key, value] of Object.entries(values)) if (typeof value === 'number') summary.observe({ [label]: key }, value)
        },
        reset: () => summary.reset(),
        timer: (key: string): StopTimer => summary.startTimer({ [label]: key })
      } satisfies SummaryGroup
    })
  }

  private count(key: string, bytes: number): void {
    this.transfer.set(key, (this.transfer.get(key) ?? 0) + bytes)
  }

  /**
   * Counts the bytes of a connection or stream. Wraps `dispatchEvent` rather
   * than adding a `message` listener: a listener would make the stream
   * deliver data before the protocol handler attaches its own reader.
   */
  private track(stream: MultiaddrConnection | Stream, name: string): void {
    const dispatchEvent = stream.dispatchEvent.bind(stream)
    stream.dispatchEvent = (evt: Event): boolean => {
      if (evt.type === 'message') {
        const data = (evt as Event & { data?: { byteLength?: number } }).data
        if (typeof data?.byteLength === 'number') this.count(`${name} received`, data.byteLength)
      }
      return dispatchEvent(evt)
    }
    const send = stream.send.bind(stream)
    stream.send = (data): boolean => {
      this.count(`${name} sent`, data.byteLength)
      return send(data)
    }
  }

  trackMultiaddrConnection(maConn: MultiaddrConnection): void {
    this.track(maConn, 'global')
  }

  trackProtocolStream(stream: Stream): void {
    // The upgrader calls this after protocol negotiation; a stream without one is not counted.
    if (stream.protocol === undefined || stream.protocol === '') return
    this.track(stream, stream.protocol)
  }

  createTrace(): undefined {
    return undefined
  }

  traceFunction<F>(_name: string, fn: F): F {
    return fn
  }
}

/**
 * The libp2p `metrics` component for one node:
 * `createLibp2p({ metrics: libp2pMetrics({ registry }) })`. Give every node
 * its own registry.
 */
export function libp2pMetrics(init: Libp2pMetricsInit): (components: { logger: ComponentLogger }) => Metrics {
  return components => new Libp2pPrometheusMetrics(components, init)
}
