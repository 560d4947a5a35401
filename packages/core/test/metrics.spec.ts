import { generateKeyPair } from '@libp2p/crypto/keys'
import { expect } from 'chai'
import { register as globalRegister, Gauge as PromGauge } from 'prom-client'
import { libp2pMetrics } from '../src/libp2p-metrics.js'
import { EVENT_LOOP_MONITOR_MS, MetricsRegistry, PROMETHEUS_CONTENT_TYPE, registerDefaultMetrics } from '../src/metrics.js'
import { createGcnNode, type GcnNode } from '../src/node.js'

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
    if (/^nan$/i.test(raw)) return Number.NaN // Go's ParseFloat ignores case (prom-client writes Nan)
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

describe('metrics (prom-client, Prometheus text format)', () => {
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
    expect(PROMETHEUS_CONTENT_TYPE).to.equal(r.promRegistry.contentType)
    expect(await c.get()).to.equal(3)
    expect(await g.get({ model: 'tiny' })).to.equal(4)
    expect(await g.get({ model: 'none' })).to.equal(0)
    expect(r.get('gcn_tasks_total')).to.equal(c)
  })

  it('renders a labelled metric with no series as HELP and TYPE only, an unlabelled one as 0', async () => {
    const r = new MetricsRegistry()
    r.counter({ name: 'gcn_rejections_total', help: 'Rejections.', labelNames: ['code'] })
    r.counter({ name: 'gcn_started_total', help: 'Starts.' })
    const text = await r.metrics()
    expect(text).to.equal(
      '# HELP gcn_rejections_total Rejections.\n# TYPE gcn_rejections_total counter\n# HELP gcn_started_total Starts.\n# TYPE gcn_started_total counter\ngcn_started_total 0\n'
    )
    expect(parseExposition(text).get('gcn_rejections_total')?.samples).to.deep.equal([])
  })

  it('escapes label values (backslash, quote, line feed) and HELP text (backslash, line feed)', async () => {
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
    expect(await c.get({ status: 200, route: '/v1' })).to.equal(5)
  })

  it('writes special float values as Prometheus reads them', async () => {
    const r = new MetricsRegistry()
    const g = r.gauge({ name: 'gcn_odd_ratio', help: 'Odd.', labelNames: ['k'] })
    g.set({ k: 'pinf' }, Number.POSITIVE_INFINITY)
    g.set({ k: 'ninf' }, Number.NEGATIVE_INFINITY)
    g.set({ k: 'nan' }, Number.NaN)
    g.set({ k: 'tiny' }, 1.5e-7)
    const samples = parseExposition(await r.metrics()).get('gcn_odd_ratio')!.samples
    const byK = new Map(samples.map(s => [s.labels.k, s.value]))
    expect(byK.get('pinf')).to.equal(Number.POSITIVE_INFINITY)
    expect(byK.get('ninf')).to.equal(Number.NEGATIVE_INFINITY)
    expect(byK.get('nan')).to.be.NaN
    expect(byK.get('tiny')).to.equal(1.5e-7)
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
        'gcn_latency_seconds_bucket{le="0.1",outcome="ok"} 2',
        'gcn_latency_seconds_bucket{le="1",outcome="ok"} 2',
        'gcn_latency_seconds_bucket{le="10",outcome="ok"} 3',
        'gcn_latency_seconds_bucket{le="+Inf",outcome="ok"} 4',
        'gcn_latency_seconds_sum{outcome="ok"} 103.15',
        'gcn_latency_seconds_count{outcome="ok"} 4',
        'gcn_latency_seconds_bucket{le="0.1",outcome="error"} 0',
        'gcn_latency_seconds_bucket{le="1",outcome="error"} 1',
        'gcn_latency_seconds_bucket{le="10",outcome="error"} 1',
        'gcn_latency_seconds_bucket{le="+Inf",outcome="error"} 1',
        'gcn_latency_seconds_sum{outcome="error"} 0.5',
        'gcn_latency_seconds_count{outcome="error"} 1',
        ''
      ].join('\n')
    )
    parseExposition(text)
    expect(await h.get({ outcome: 'ok' })).to.deep.equal({ count: 4, sum: 103.15 })
    expect(await h.get({ outcome: 'none' })).to.deep.equal({ count: 0, sum: 0 })
  })

  it('times with startTimer', async () => {
    const r = new MetricsRegistry()
    const h = r.histogram({ name: 'gcn_wait_seconds', help: 'Wait.', labelNames: ['kind', 'outcome'] })
    const end = h.startTimer({ kind: 'a' })
    await new Promise(resolve => setTimeout(resolve, 5))
    const seconds = end({ outcome: 'ok' })
    expect(seconds).to.be.greaterThan(0.001)
    expect((await h.get({ kind: 'a', outcome: 'ok' })).count).to.equal(1)
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

  it('leaves a metric whose collection fails out of that scrape and reports the error', async () => {
    const r = new MetricsRegistry()
    const errors: string[] = []
    r.onCollectError = name => errors.push(name)
    r.beforeScrape(() => {
      throw new Error('hook')
    })
    r.gauge({
      name: 'gcn_broken_bytes',
      help: 'Broken.',
      collect: () => {
        throw new Error('boom')
      }
    })
    r.gauge({ name: 'gcn_rejecting_bytes', help: 'Rejecting.', collect: () => Promise.reject(new Error('no')) })
    r.gauge({ name: 'gcn_fine_bytes', help: 'Fine.', collect: () => 1 })
    // A bad sample from collect is a failure too (nothing is applied).
    r.counter({ name: 'gcn_negative_total', help: 'Negative.', collect: () => -1 })
    // A prom-client metric registered by someone else (libp2p) is scraped the same way.
    new PromGauge({
      name: 'libp2p_failing',
      help: 'Failing.',
      registers: [r.promRegistry],
      collect() {
        throw new Error('libp2p')
      }
    })
    const text = await r.metrics()
    expect(text).to.equal('# HELP gcn_fine_bytes Fine.\n# TYPE gcn_fine_bytes gauge\ngcn_fine_bytes 1\n')
    expect(errors).to.deep.equal(['beforeScrape', 'gcn_broken_bytes', 'gcn_rejecting_bytes', 'gcn_negative_total', 'libp2p_failing'])
  })

  it('rejects invalid names, labels and values', () => {
    const r = new MetricsRegistry()
    expect(() => r.gauge({ name: '1bad', help: 'h' })).to.throw(TypeError)
    expect(() => r.gauge({ name: 'gcn-bad', help: 'h' })).to.throw(TypeError)
    expect(() => r.gauge({ name: 'gcn_no_help_bytes', help: '' })).to.throw(/help text is required/)
    expect(() => r.counter({ name: 'gcn_tasks', help: 'h' })).to.throw(/must end in _total/)
    expect(() => r.counter({ name: 'gcn_tasks_seconds', help: 'h', collect: () => 1 })).to.throw(/must end in _total/)
    expect(() => r.gauge({ name: 'gcn_x_bytes', help: 'h', labelNames: ['__reserved'] })).to.throw(TypeError)
    expect(() => r.gauge({ name: 'gcn_x_bytes', help: 'h', labelNames: ['a-b'] })).to.throw(TypeError)
    expect(() => r.gauge({ name: 'gcn_x_bytes', help: 'h', labelNames: ['a', 'a'] })).to.throw(/duplicate/)
    expect(() => r.histogram({ name: 'gcn_h_seconds', help: 'h', labelNames: ['le'] })).to.throw(/reserved/)
    expect(() => r.histogram({ name: 'gcn_h_seconds', help: 'h', buckets: [1, 1] })).to.throw(/increasing/)
    expect(() => r.histogram({ name: 'gcn_h_seconds', help: 'h', buckets: [Number.NaN] })).to.throw(/finite/)
    const c = r.counter({ name: 'gcn_ok_total', help: 'h', labelNames: ['a'] })
    expect(() => c.inc(-1)).to.throw(RangeError)
    expect(() => c.inc({ b: 'x' })).to.throw(/unknown label/)
    expect(() => r.gauge({ name: 'gcn_ok_total', help: 'h' })).to.throw(/already registered/)
    r.histogram({ name: 'gcn_d_seconds', help: 'h' })
    expect(() => r.gauge({ name: 'gcn_d_seconds_count', help: 'h' })).to.throw(/already registered/)
    r.gauge({ name: 'gcn_e_seconds_sum', help: 'h' })
    expect(() => r.histogram({ name: 'gcn_e_seconds', help: 'h' })).to.throw(/already registered/)
    new PromGauge({ name: 'libp2p_taken', help: 'Taken.', registers: [r.promRegistry] })
    expect(() => r.gauge({ name: 'libp2p_taken', help: 'h' })).to.throw(/already registered/)
    const h = r.histogram({ name: 'gcn_f_seconds', help: 'h' })
    expect(() => h.observe(Number.NaN)).to.throw(TypeError)
    expect(() => h.observe({ nope: 1 }, 1)).to.throw(/unknown label/)
    const neg = r.counter({ name: 'gcn_neg_total', help: 'h', collect: () => 1 })
    expect(() => neg.apply(-1)).to.throw(RangeError)
    const g = r.gauge({ name: 'gcn_g_bytes', help: 'h' })
    expect(() => g.set('x' as unknown as number)).to.throw(TypeError)
  })

  it('applies a collected sample set all or nothing', async () => {
    const r = new MetricsRegistry()
    const c = r.counter({ name: 'gcn_by_code_total', help: 'By code.', labelNames: ['code'] })
    c.apply([{ labels: { code: 'A' }, value: 3 }])
    expect(() =>
      c.apply([
        { labels: { code: 'B' }, value: 1 },
        { labels: { code: 'C' }, value: -1 }
      ])
    ).to.throw(RangeError)
    expect(() => c.apply([{ labels: { other: 'x' }, value: 1 }])).to.throw(/unknown label/)
    expect(parseExposition(await r.metrics()).get('gcn_by_code_total')!.samples).to.deep.equal([
      { name: 'gcn_by_code_total', labels: { code: 'A' }, value: 3 }
    ])
  })

  it('keeps every registry apart (its own prom-client Registry, never the global one)', async () => {
    const a = new MetricsRegistry()
    const b = new MetricsRegistry()
    expect(a.promRegistry).to.not.equal(b.promRegistry)
    expect(a.promRegistry).to.not.equal(globalRegister)
    const before = globalRegister.getMetricsAsArray().length
    const ca = a.counter({ name: 'gcn_shared_name_total', help: 'A.', labelNames: ['k'] })
    const cb = b.counter({ name: 'gcn_shared_name_total', help: 'B.', labelNames: ['k'] })
    a.gauge({ name: 'gcn_only_a_bytes', help: 'Only A.', collect: () => 1 })
    ca.inc({ k: 'x' }, 2)
    cb.inc({ k: 'y' }, 5)
    const fa = parseExposition(await a.metrics())
    const fb = parseExposition(await b.metrics())
    expect(fa.get('gcn_shared_name_total')!.samples).to.deep.equal([{ name: 'gcn_shared_name_total', labels: { k: 'x' }, value: 2 }])
    expect(fb.get('gcn_shared_name_total')!.samples).to.deep.equal([{ name: 'gcn_shared_name_total', labels: { k: 'y' }, value: 5 }])
    expect(fb.get('gcn_shared_name_total')!.help).to.equal('B.')
    expect(fb.has('gcn_only_a_bytes')).to.equal(false)
    expect(globalRegister.getMetricsAsArray().length).to.equal(before)
    // An existing prom-client Registry can be wrapped.
    const wrapped = new MetricsRegistry({ registry: a.promRegistry })
    expect(() => wrapped.gauge({ name: 'gcn_only_a_bytes', help: 'h' })).to.throw(/already registered/)
    expect(await wrapped.metrics()).to.equal(await a.metrics())
  })

  it("registers prom-client's default process and Node.js metrics, per registry", async () => {
    const a = new MetricsRegistry()
    const b = new MetricsRegistry()
    registerDefaultMetrics(a)
    registerDefaultMetrics(b)
    a.gauge({ name: 'gcn_after_defaults_bytes', help: 'Ours.', collect: () => 7 })
    // Block the loop for longer than the monitor's interval (EVENT_LOOP_MONITOR_MS), so one of its samples is late.
    await new Promise(resolve => setTimeout(resolve, EVENT_LOOP_MONITOR_MS))
    const until = Date.now() + EVENT_LOOP_MONITOR_MS + 20
    while (Date.now() < until) {
      /* busy */
    }
    await new Promise(resolve => setTimeout(resolve, EVENT_LOOP_MONITOR_MS))
    const families = parseExposition(await a.metrics())
    const value = (name: string): number => {
      const f = families.get(name)
      expect(f, name).to.not.equal(undefined)
      return f!.samples[0]!.value
    }
    expect(value('process_resident_memory_bytes')).to.be.greaterThan(1e6)
    expect(value('process_cpu_seconds_total')).to.be.greaterThan(0)
    expect(families.get('process_cpu_seconds_total')!.type).to.equal('counter')
    expect(value('process_start_time_seconds')).to.be.within(Date.now() / 1000 - 3600, Date.now() / 1000)
    expect(value('nodejs_heap_size_used_bytes')).to.be.greaterThan(1e5)
    expect(value('nodejs_heap_size_total_bytes')).to.be.at.least(value('nodejs_heap_size_used_bytes'))
    expect(value('nodejs_eventloop_lag_max_seconds')).to.be.at.least(value('nodejs_eventloop_lag_p99_seconds'))
    expect(value('nodejs_eventloop_lag_max_seconds')).to.be.greaterThan(0.005)
    expect(families.has('nodejs_version_info')).to.equal(true)
    expect(value('gcn_after_defaults_bytes')).to.equal(7)
    for (const [name, f] of families) {
      expect(f.help, `${name} has HELP`).to.not.equal('')
      if (f.type === 'counter') expect(name).to.match(/_total$/)
    }
    expect(parseExposition(await b.metrics()).has('process_cpu_seconds_total')).to.equal(true)
    expect(() => a.counter({ name: 'process_cpu_seconds_total', help: 'h' })).to.throw(/already registered/)
    // A prefix keeps them apart from another exporter's.
    const c = new MetricsRegistry()
    registerDefaultMetrics(c, { prefix: 'gcn_' })
    expect(parseExposition(await c.metrics()).has('gcn_process_cpu_seconds_total')).to.equal(true)
  })

  it('runs onClose callbacks once on close()', () => {
    const r = new MetricsRegistry()
    let closed = 0
    r.onClose(() => closed++)
    r.close()
    r.close()
    expect(closed).to.equal(1)
  })
})

/** Samples of `name` in one scrape, as label → value of its single label (`key`). */
async function series(registry: MetricsRegistry, name: string, key: string): Promise<Map<string, number>> {
  const family = parseExposition(await registry.metrics()).get(name)
  expect(family, `${name} is exported`).to.not.equal(undefined)
  return new Map(family!.samples.map(s => [s.labels[key]!, s.value]))
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

describe("libp2p's own metrics, one registry per node", function () {
  this.timeout(60_000)
  const nodes: GcnNode[] = []

  afterEach(async () => {
    await Promise.all(nodes.splice(0).map(n => n.stop()))
  })

  const node = async (metrics?: MetricsRegistry): Promise<GcnNode> => {
    const n = await createGcnNode({
      role: 'client',
      privateKey: await generateKeyPair('Ed25519'),
      profile: 'local',
      listen: ['/ip4/127.0.0.1/tcp/0'],
      ...(metrics === undefined ? {} : { metrics })
    })
    nodes.push(n)
    return n
  }

  it('exports each node’s connections, streams, listeners and bytes in that node’s registry only', async () => {
    const registries = [new MetricsRegistry(), new MetricsRegistry(), new MetricsRegistry()]
    // Build all before starting any: metrics registered at start must still go to their own node.
    const [a, b, c] = [await node(registries[0]), await node(registries[1]), await node(registries[2])] as [GcnNode, GcnNode, GcnNode]
    const plain = await node()
    expect(a.metrics).to.equal(registries[0])
    expect(plain.metrics).to.equal(undefined)
    await Promise.all([a.start(), b.start(), c.start(), plain.start()])
    await a.libp2p.dial(b.libp2p.getMultiaddrs()[0]!)
    await c.libp2p.dial(b.libp2p.getMultiaddrs()[0]!)
    await plain.libp2p.dial(b.libp2p.getMultiaddrs()[0]!)
    const [ra, rb, rc] = registries as [MetricsRegistry, MetricsRegistry, MetricsRegistry]
    const conns = 'libp2p_connection_manager_connections'
    await waitUntil('b to count three inbound connections', async () => (await series(rb, conns, conns)).get('inbound') === 3)
    expect((await series(ra, conns, conns)).get('outbound')).to.equal(1)
    expect((await series(ra, conns, conns)).get('inbound')).to.equal(0)
    expect((await series(rc, conns, conns)).get('outbound')).to.equal(1)
    expect((await series(rb, conns, conns)).get('outbound')).to.equal(0)

    // Each listener reports in its own node's registry, under its own address.
    for (const [n, r] of [
      [a, ra],
      [b, rb],
      [c, rc]
    ] as const) {
      const port = /\/tcp\/(\d+)/.exec(n.libp2p.getMultiaddrs()[0]!.toString())![1]!
      const listeners = await series(r, 'libp2p_tcp_inbound_connections_total', 'address')
      expect([...listeners.keys()], 'one TCP listener').to.have.length(1)
      expect([...listeners.keys()][0]).to.include(port)
    }
    expect([...(await series(rb, 'libp2p_tcp_inbound_connections_total', 'address')).values()]).to.deep.equal([3])

    // Identify ran over each connection: streams were counted, bytes per protocol too.
    await waitUntil('identify bytes on a', async () => {
      const bytes = await series(ra, 'libp2p_data_transfer_bytes_total', 'protocol')
      return (bytes.get('global sent') ?? 0) > 0 && [...bytes.keys()].some(k => k.startsWith('/ipfs/id/'))
    })
    const families = parseExposition(await ra.metrics())
    for (const name of ['libp2p_dial_queue', 'libp2p_kad_dht_routing_table_size', 'libp2p_registrar_protocol_handlers']) {
      expect(families.has(name), name).to.equal(true)
    }
    for (const [name, f] of families) expect(f.help, `${name} has HELP`).to.not.equal('')
  })

  it('drops the streams of a protocol from libp2p_protocol_streams_total once they close', async () => {
    const ra = new MetricsRegistry()
    const a = await node(ra)
    const b = await node(new MetricsRegistry())
    await Promise.all([a.start(), b.start()])
    const protocol = '/gcn-test/hold/1.0.0'
    await b.libp2p.handle(protocol, () => {})
    const stream = await a.libp2p.dialProtocol(b.libp2p.getMultiaddrs()[0]!, protocol)
    const streams = 'libp2p_protocol_streams_total'
    expect((await series(ra, streams, 'protocol')).get(`outbound ${protocol}`)).to.equal(1)
    stream.abort(new Error('done'))
    await waitUntil(
      'the stream to be gone from the gauge',
      async () => !(await series(ra, streams, 'protocol')).has(`outbound ${protocol}`)
    )
  })

  it('survives a node restart and several registrations under one name', async () => {
    const r = new MetricsRegistry()
    const a = await node(r)
    await a.start()
    await a.stop()
    await a.start()
    const families = parseExposition(await r.metrics())
    expect(families.has('libp2p_connection_manager_connections')).to.equal(true)

    // Calculations registered twice under one name add up; a name taken by someone else is not exported.
    const own = new MetricsRegistry()
    own.gauge({ name: 'libp2p_taken', help: 'Ours.', collect: () => 42 })
    const logged: string[] = []
    const log = Object.assign(() => {}, { error: (f: string) => logged.push(f), trace: () => {}, enabled: false, newScope: () => log })
    const metrics = libp2pMetrics({ registry: own.promRegistry })({ logger: { forComponent: () => log } as never })
    metrics.registerMetricGroup('libp2p_queue', { calculate: () => ({ size: 1, running: 2 }) })
    metrics.registerMetricGroup('libp2p_queue', { calculate: async () => ({ size: 10 }) })
    metrics.registerMetric('libp2p_list', { calculate: () => 3 })
    metrics.registerMetric('libp2p_list', { calculate: () => 4 })
    const taken = metrics.registerMetric('libp2p_taken')
    taken.update(7)
    const counter = metrics.registerCounterGroup('libp2p_events_total', { label: 'event' })
    counter.increment({ open: true, bytes: 5 })
    const out = parseExposition(await own.metrics())
    expect(out.get('libp2p_queue')!.samples.map(s => [s.labels.libp2p_queue, s.value])).to.deep.equal([
      ['size', 11],
      ['running', 2]
    ])
    expect(out.get('libp2p_list')!.samples[0]!.value).to.equal(7)
    expect(out.get('libp2p_taken')!.samples[0]!.value).to.equal(42)
    expect(logged.some(l => l.includes('already registered'))).to.equal(true)
    expect(out.get('libp2p_events_total')!.type).to.equal('counter')
    expect(out.get('libp2p_events_total')!.samples.map(s => [s.labels.event, s.value])).to.deep.equal([
      ['open', 1],
      ['bytes', 5]
    ])
  })
})
