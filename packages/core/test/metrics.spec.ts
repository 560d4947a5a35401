import { expect } from 'chai'
import {
  escapeHelp,
  escapeLabelValue,
  formatValue,
  MetricsRegistry,
  PROMETHEUS_CONTENT_TYPE,
  registerProcessMetrics
} from '../src/metrics.js'

interface ParsedSample {
  name: string
  labels: Record<string, string>
  value: number
}

interface ParsedFamily {
  name: string
  type: string
  help: string
  samples: ParsedSample[]
}

/**
 * A strict reader of the text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format):
 * HELP and TYPE at most once per family and before its samples, every sample
 * belonging to the family declared last, label values unescaped, floats as Go
 * reads them, histogram buckets cumulative and ending in +Inf = _count.
 */
function parseExposition(text: string): Map<string, ParsedFamily> {
  expect(text.endsWith('\n'), 'exposition ends with a line feed').to.equal(true)
  const families = new Map<string, ParsedFamily>()
  let current: ParsedFamily | undefined
  const family = (name: string): ParsedFamily => {
    let f = families.get(name)
    if (f === undefined) {
      f = { name, type: 'untyped', help: '', samples: [] }
      families.set(name, f)
    } else expect(f, `${name} is not split by another family`).to.equal(current)
    current = f
    return f
  }
  const unescapeText = (s: string, quotes: boolean): string =>
    s.replace(quotes ? /\\(["\\n])/g : /\\([\\n])/g, (_m, c: string) => (c === 'n' ? '\n' : c))
  const parseValue = (raw: string): number => {
    if (raw === '+Inf') return Number.POSITIVE_INFINITY
    if (raw === '-Inf') return Number.NEGATIVE_INFINITY
    if (raw === 'NaN') return Number.NaN
    expect(raw, 'sample value').to.match(/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/)
    return Number(raw)
  }
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue
    const meta = line.match(/^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/)
    if (meta !== null) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string]
      const f = family(name)
      expect(f.samples, `${kind} of ${name} before its samples`).to.have.length(0)
      if (kind === 'HELP') {
        expect(f.help, `one HELP for ${name}`).to.equal('')
        f.help = unescapeText(rest, false)
      } else {
        expect(f.type, `one TYPE for ${name}`).to.equal('untyped')
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped']).to.include(rest)
        f.type = rest
      }
      continue
    }
    expect(line.startsWith('#'), `unexpected comment ${line}`).to.equal(false)
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/)
    expect(m, `sample line ${JSON.stringify(line)}`).to.not.equal(null)
    const [, name, , labelText, rawValue] = m as unknown as [string, string, string | undefined, string | undefined, string]
    const labels: Record<string, string> = {}
    if (labelText !== undefined && labelText !== '') {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|$)/y
      let consumed = 0
      for (let lm = re.exec(labelText); lm !== null; lm = re.exec(labelText)) {
        expect(labels, `duplicate label ${lm[1]}`).to.not.have.property(lm[1]!)
        labels[lm[1]!] = unescapeText(lm[2]!, true)
        consumed = re.lastIndex
        if (lm[3] === '') break
      }
      expect(consumed, `labels of ${line}`).to.equal(labelText.length)
    }
    const base = current?.type === 'histogram' ? name.replace(/_(bucket|sum|count)$/, '') : name
    expect(current?.name, `sample ${name} belongs to the family declared before it`).to.equal(base)
    current!.samples.push({ name, labels, value: parseValue(rawValue) })
  }
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f)
  return families
}

function checkHistogram(f: ParsedFamily): void {
  const groups = new Map<string, ParsedSample[]>()
  for (const s of f.samples) {
    const { le: _le, ...rest } = s.labels
    const key = JSON.stringify(Object.entries(rest).sort())
    groups.set(key, [...(groups.get(key) ?? []), s])
  }
  for (const samples of groups.values()) {
    const buckets = samples.filter(s => s.name === `${f.name}_bucket`)
    const count = samples.find(s => s.name === `${f.name}_count`)
    expect(
      samples.find(s => s.name === `${f.name}_sum`),
      `${f.name}_sum`
    ).to.not.equal(undefined)
    expect(count, `${f.name}_count`).to.not.equal(undefined)
    expect(buckets.at(-1)?.labels.le).to.equal('+Inf')
    for (let i = 1; i < buckets.length; i++) {
      const le = (b: ParsedSample): number => (b.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(b.labels.le))
      expect(le(buckets[i]!)).to.be.greaterThan(le(buckets[i - 1]!))
      expect(buckets[i]!.value).to.be.at.least(buckets[i - 1]!.value)
    }
    expect(buckets.at(-1)!.value).to.equal(count!.value)
  }
}

describe('metrics (Prometheus text format)', () => {
  it('renders counters and gauges with HELP and TYPE lines', async () => {
    const r = new MetricsRegistry()
    const c = r.counter({ name: 'gcn_tasks_total', help: 'Tasks done.' })
    const g = r.gauge({ name: 'gcn_queue_depth', help: 'Waiting tasks.', labelNames: ['model'] })
    c.inc()
    c.inc(2)
    g.set({ model: 'tiny' }, 3)
    g.inc({ model: 'tiny' })
    g.dec({ model: 'big' }, 2)
    expect(await r.metrics()).to.equal(
      [
        '# HELP gcn_tasks_total Tasks done.',
        '# TYPE gcn_tasks_total counter',
        'gcn_tasks_total 3',
        '# HELP gcn_queue_depth Waiting tasks.',
        '# TYPE gcn_queue_depth gauge',
        'gcn_queue_depth{model="tiny"} 4',
        'gcn_queue_depth{model="big"} -2',
        ''
      ].join('\n')
    )
    expect(r.contentType).to.equal(PROMETHEUS_CONTENT_TYPE)
    expect(PROMETHEUS_CONTENT_TYPE).to.equal('text/plain; version=0.0.4; charset=utf-8')
    expect(c.get()).to.equal(3)
    expect(g.get({ model: 'tiny' })).to.equal(4)
  })

  it('renders a metric with no series as HELP and TYPE only', async () => {
    const r = new MetricsRegistry()
    r.counter({ name: 'gcn_rejections_total', help: 'Rejections.', labelNames: ['code'] })
    const text = await r.metrics()
    expect(text).to.equal('# HELP gcn_rejections_total Rejections.\n# TYPE gcn_rejections_total counter\n')
    expect(parseExposition(text).get('gcn_rejections_total')?.samples).to.deep.equal([])
  })

  it('escapes label values (backslash, quote, line feed) and HELP text (backslash, line feed)', async () => {
    expect(escapeLabelValue('a\\b"c\nd')).to.equal('a\\\\b\\"c\\nd')
    expect(escapeHelp('x\\y\nz "q"')).to.equal('x\\\\y\\nz "q"')
    const r = new MetricsRegistry()
    const weird = 'C:\\path "quoted"\nnext line, {braces}=,'
    r.gauge({ name: 'gcn_thing_ratio', help: 'Help with \\ and\na line feed.', labelNames: ['path', 'other'] }).set(
      { path: weird, other: '' },
      0.5
    )
    const text = await r.metrics()
    expect(text).to.include('# HELP gcn_thing_ratio Help with \\\\ and\\na line feed.\n')
    expect(text).to.include('gcn_thing_ratio{path="C:\\\\path \\"quoted\\"\\nnext line, {braces}=,",other=""} 0.5\n')
    const f = parseExposition(text).get('gcn_thing_ratio')!
    expect(f.help).to.equal('Help with \\ and\na line feed.')
    expect(f.samples[0]!.labels).to.deep.equal({ path: weird, other: '' })
  })

  it('orders labels as declared and keeps one series per label set', async () => {
    const r = new MetricsRegistry()
    const c = r.counter({ name: 'gcn_requests_total', help: 'Requests.', labelNames: ['status', 'route'] })
    c.inc({ route: '/v1', status: 200 })
    c.inc({ status: '200', route: '/v1' }, 4)
    c.inc({ status: 500 })
    expect((await r.metrics()).split('\n').slice(2, 4)).to.deep.equal([
      'gcn_requests_total{status="200",route="/v1"} 5',
      'gcn_requests_total{status="500"} 1'
    ])
  })

  it('formats special float values as Prometheus reads them', () => {
    expect(formatValue(Number.POSITIVE_INFINITY)).to.equal('+Inf')
    expect(formatValue(Number.NEGATIVE_INFINITY)).to.equal('-Inf')
    expect(formatValue(Number.NaN)).to.equal('NaN')
    expect(formatValue(1.5e-7)).to.equal('1.5e-7')
    expect(formatValue(42)).to.equal('42')
  })

  it('renders histograms with cumulative le buckets, +Inf, _sum and _count', async () => {
    const r = new MetricsRegistry()
    const h = r.histogram({ name: 'gcn_latency_seconds', help: 'Latency.', labelNames: ['outcome'], buckets: [0.1, 1, 10] })
    h.observe({ outcome: 'ok' }, 0.05)
    h.observe({ outcome: 'ok' }, 0.1) // le is inclusive
    h.observe({ outcome: 'ok' }, 3)
    h.observe({ outcome: 'ok' }, 100)
    h.observe({ outcome: 'error' }, 0.5)
    const text = await r.metrics()
    expect(text).to.equal(
      [
        '# HELP gcn_latency_seconds Latency.',
        '# TYPE gcn_latency_seconds histogram',
        'gcn_latency_seconds_bucket{outcome="ok",le="0.1"} 2',
        'gcn_latency_seconds_bucket{outcome="ok",le="1"} 2',
        'gcn_latency_seconds_bucket{outcome="ok",le="10"} 3',
        'gcn_latency_seconds_bucket{outcome="ok",le="+Inf"} 4',
        'gcn_latency_seconds_sum{outcome="ok"} 103.15',
        'gcn_latency_seconds_count{outcome="ok"} 4',
        'gcn_latency_seconds_bucket{outcome="error",le="0.1"} 0',
        'gcn_latency_seconds_bucket{outcome="error",le="1"} 1',
        'gcn_latency_seconds_bucket{outcome="error",le="10"} 1',
        'gcn_latency_seconds_bucket{outcome="error",le="+Inf"} 1',
        'gcn_latency_seconds_sum{outcome="error"} 0.5',
        'gcn_latency_seconds_count{outcome="error"} 1',
        ''
      ].join('\n')
    )
    parseExposition(text)
    expect(h.get({ outcome: 'ok' })).to.deep.equal({ count: 4, sum: 103.15 })
  })

  it('times with startTimer', async () => {
    const r = new MetricsRegistry()
    const h = r.histogram({ name: 'gcn_wait_seconds', help: 'Wait.', labelNames: ['kind'] })
    const end = h.startTimer({ kind: 'a' })
    await new Promise(resolve => setTimeout(resolve, 5))
    const seconds = end()
    expect(seconds).to.be.greaterThan(0.001)
    expect(h.get({ kind: 'a' }).count).to.equal(1)
    expect(h.buckets).to.include(60)
  })

  it('reads live values through collect callbacks on every scrape (sync, async, labelled)', async () => {
    const r = new MetricsRegistry()
    const state = { slots: 2, byCode: { ERR_A: 1 } as Record<string, number> }
    r.gauge({ name: 'gcn_free_slots', help: 'Free slots.', collect: () => state.slots })
    r.counter({
      name: 'gcn_rejected_total',
      help: 'Rejected.',
      labelNames: ['code'],
      collect: async () => Object.entries(state.byCode).map(([code, value]) => ({ labels: { code }, value }))
    })
    const first = parseExposition(await r.metrics())
    expect(first.get('gcn_free_slots')!.samples[0]!.value).to.equal(2)
    expect(first.get('gcn_rejected_total')!.samples).to.deep.equal([{ name: 'gcn_rejected_total', labels: { code: 'ERR_A' }, value: 1 }])
    state.slots = 0
    state.byCode = { ERR_B: 7 }
    const second = parseExposition(await r.metrics())
    expect(second.get('gcn_free_slots')!.samples[0]!.value).to.equal(0)
    expect(second.get('gcn_rejected_total')!.samples.map(s => s.labels.code)).to.deep.equal(['ERR_B'])
  })

  it('runs beforeScrape hooks before the collect callbacks', async () => {
    const r = new MetricsRegistry()
    let snapshot = 0
    let n = 0
    r.beforeScrape(() => {
      snapshot = ++n * 10
    })
    r.gauge({ name: 'gcn_window_seconds', help: 'Window.', collect: () => snapshot })
    expect(await r.metrics()).to.include('gcn_window_seconds 10\n')
    expect(await r.metrics()).to.include('gcn_window_seconds 20\n')
  })

  it('leaves a metric whose collect throws out of that scrape and reports the error', async () => {
    const r = new MetricsRegistry()
    const errors: string[] = []
    r.onCollectError = name => errors.push(name)
    r.gauge({
      name: 'gcn_broken_bytes',
      help: 'Broken.',
      collect: () => {
        throw new Error('boom')
      }
    })
    r.gauge({ name: 'gcn_rejecting_bytes', help: 'Rejecting.', collect: () => Promise.reject(new Error('no')) })
    r.gauge({ name: 'gcn_fine_bytes', help: 'Fine.', collect: () => 1 })
    const text = await r.metrics()
    expect(text).to.equal('# HELP gcn_fine_bytes Fine.\n# TYPE gcn_fine_bytes gauge\ngcn_fine_bytes 1\n')
    expect(errors).to.deep.equal(['gcn_broken_bytes', 'gcn_rejecting_bytes'])
  })

  it('rejects invalid names, labels and values', () => {
    const r = new MetricsRegistry()
    expect(() => r.gauge({ name: '1bad', help: '' })).to.throw(TypeError)
    expect(() => r.gauge({ name: 'gcn-bad', help: '' })).to.throw(TypeError)
    expect(() => r.counter({ name: 'gcn_tasks', help: '' })).to.throw(/must end in _total/)
    expect(() => r.gauge({ name: 'gcn_x_bytes', help: '', labelNames: ['__reserved'] })).to.throw(TypeError)
    expect(() => r.gauge({ name: 'gcn_x_bytes', help: '', labelNames: ['a-b'] })).to.throw(TypeError)
    expect(() => r.gauge({ name: 'gcn_x_bytes', help: '', labelNames: ['a', 'a'] })).to.throw(/duplicate/)
    expect(() => r.histogram({ name: 'gcn_h_seconds', help: '', labelNames: ['le'] })).to.throw(/reserved/)
    expect(() => r.histogram({ name: 'gcn_h_seconds', help: '', buckets: [1, 1] })).to.throw(/increasing/)
    expect(() => r.histogram({ name: 'gcn_h_seconds', help: '', buckets: [Number.NaN] })).to.throw(/finite/)
    const c = r.counter({ name: 'gcn_ok_total', help: '', labelNames: ['a'] })
    expect(() => c.inc(-1)).to.throw(RangeError)
    expect(() => c.inc({ b: 'x' })).to.throw(/unknown label/)
    expect(() => r.gauge({ name: 'gcn_ok_total', help: '' })).to.throw(/already registered/)
    r.histogram({ name: 'gcn_d_seconds', help: '' })
    expect(() => r.gauge({ name: 'gcn_d_seconds_count', help: '' })).to.throw(/already registered/)
    r.gauge({ name: 'gcn_e_seconds_sum', help: '' })
    expect(() => r.histogram({ name: 'gcn_e_seconds', help: '' })).to.throw(/already registered/)
    const neg = r.counter({ name: 'gcn_neg_total', help: '', collect: () => -1 })
    expect(() => neg.apply(-1)).to.throw(RangeError)
  })

  it('registers process and event loop metrics with unit suffixes', async () => {
    const r = new MetricsRegistry()
    registerProcessMetrics(r)
    try {
      // Block the loop briefly so the lag window has something to show.
      await new Promise(resolve => setTimeout(resolve, 50))
      const until = Date.now() + 30
      while (Date.now() < until) {
        /* busy */
      }
      await new Promise(resolve => setTimeout(resolve, 50))
      const families = parseExposition(await r.metrics())
      const value = (name: string): number => {
        const f = families.get(name)
        expect(f, name).to.not.equal(undefined)
        return f!.samples[0]!.value
      }
      expect(value('gcn_process_resident_memory_bytes')).to.be.greaterThan(1e6)
      expect(value('gcn_process_heap_used_bytes')).to.be.greaterThan(1e5)
      expect(value('gcn_process_heap_total_bytes')).to.be.at.least(value('gcn_process_heap_used_bytes'))
      expect(value('gcn_process_cpu_seconds_total')).to.be.greaterThan(0)
      expect(families.get('gcn_process_cpu_seconds_total')!.type).to.equal('counter')
      expect(value('gcn_process_start_time_seconds')).to.be.within(Date.now() / 1000 - 3600, Date.now() / 1000)
      expect(value('gcn_nodejs_active_resources')).to.be.at.least(0)
      const p99 = value('gcn_nodejs_eventloop_lag_p99_seconds')
      expect(p99).to.be.within(0, 5)
      expect(value('gcn_nodejs_eventloop_lag_max_seconds')).to.be.at.least(p99)
      expect(value('gcn_nodejs_eventloop_lag_max_seconds')).to.be.greaterThan(0.005)
      expect(value('gcn_nodejs_eventloop_lag_p50_seconds')).to.be.within(0, p99)
      for (const name of families.keys()) expect(name).to.match(/_(bytes|seconds|seconds_total|resources)$/)
    } finally {
      r.close()
    }
  })
})
