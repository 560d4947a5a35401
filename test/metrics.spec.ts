import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadOrCreateIdentity, TASK_PROTOCOL } from '@gcn/core'
import { expect } from 'chai'
import { type Network, startNetwork } from './helpers/network.js'
import { killAll, waitFor } from './helpers/procs.js'
import { freePort, RegistryNode } from './helpers/registry.js'

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

interface Family {
  type: string
  help: string
  samples: Sample[]
}

/**
 * A tiny reader of the Prometheus text format 0.0.4: `# HELP` / `# TYPE` once
 * per family before its samples, then `name{label="value",...} value` lines
 * belonging to that family (histograms: `_bucket`, `_sum`, `_count`).
 * Throws on anything else.
 */
function parseMetrics(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a line feed')
  const families = new Map<string, Family>()
  let current: { name: string; family: Family } | undefined
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line)
    if (meta !== null) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string]
      let family = families.get(name)
      if (family === undefined) {
        family = { type: 'untyped', help: '', samples: [] }
        families.set(name, family)
      } else if (current?.name !== name || family.samples.length > 0) throw new Error(`${kind} of ${name} out of place`)
      current = { name, family }
      if (kind === 'HELP') family.help = rest
      else if (['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) family.type = rest
      else throw new Error(`bad TYPE line ${line}`)
      continue
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null) throw new Error(`bad sample line ${JSON.stringify(line)}`)
    const [, name, labelText = '', raw] = m as unknown as [string, string, string | undefined, string]
    const labels: Record<string, string> = {}
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/y
    while (re.lastIndex < labelText.length) {
      const lm = re.exec(labelText)
      if (lm === null) throw new Error(`bad labels in ${line}`)
      labels[lm[1]!] = lm[2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c))
    }
    // As Prometheus reads a value (Go's strconv.ParseFloat): NaN and Inf in any case; prom-client writes a mean of
    // no samples as "Nan".
    const special = raw.toLowerCase()
    const isNaNText = special === 'nan'
    const value =
      special === '+inf' || special === 'inf' ? Number.POSITIVE_INFINITY : special === '-inf' ? Number.NEGATIVE_INFINITY : Number(raw)
    if (!isNaNText && Number.isNaN(value)) throw new Error(`bad value in ${line}`)
    const base = current?.family.type === 'histogram' ? name.replace(/_(bucket|sum|count)$/, '') : name
    if (current?.name !== base) throw new Error(`sample ${name} outside its family`)
    current.family.samples.push({ name, labels, value })
  }
  return families
}

/** GET url/metrics: checks status and content type, parses the body. */
async function scrape(baseUrl: string): Promise<Map<string, Family>> {
  const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })
  const text = await res.text()
  expect(res.status, `GET ${baseUrl}/metrics: ${text}`).to.equal(200)
  expect(res.headers.get('content-type')).to.equal('text/plain; version=0.0.4; charset=utf-8')
  return parseMetrics(text)
}

/** Sum of the samples named `name` whose labels include `labels`. */
function value(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const base = name.replace(/_(bucket|sum|count)$/, '')
  const family = families.get(name) ?? families.get(base)
  if (family === undefined) throw new Error(`no metric ${name}`)
  return family.samples
    .filter(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0)
}

/** A unit, or what is counted, at the end of every gcn name; `_total` on every counter. */
const UNIT_SUFFIX =
  /_(seconds|bytes|ratio|info|per_second|peers|connections|streams|topics|resources|tasks|slots|envelopes|rows|height|suppliers|models|requests)$/

/**
 * gcn's own names are checked for their unit; libp2p's (`libp2p_`) and
 * prom-client's default process metrics (`process_`, `nodejs_`) are named
 * by those libraries. Every family has HELP, every counter ends in `_total`.
 */
function checkNames(role: string, families: Map<string, Family>, expected: string[]): void {
  for (const [name, family] of families) {
    expect(name, `${role}: prefix`).to.match(/^(gcn|libp2p|process|nodejs)_/)
    expect(family.help, `${role}: ${name} has HELP`).to.not.equal('')
    if (family.type === 'counter') expect(name, `${role}: counter name`).to.match(/_total$/)
    else if (name.startsWith('gcn_')) expect(name, `${role}: ${family.type} name ends in a unit`).to.match(UNIT_SUFFIX)
  }
  for (const name of [...COMMON, ...expected]) expect(families.has(name), `${role} exposes ${name}`).to.equal(true)
  // libp2p's own metrics are this role's node's: it listens, has connected and has moved bytes.
  const connections = 'libp2p_connection_manager_connections'
  expect(
    value(families, connections, { [connections]: 'inbound' }) + value(families, connections, { [connections]: 'outbound' }),
    `${role}: libp2p connections`
  ).to.be.at.least(1)
  expect(value(families, 'libp2p_data_transfer_bytes_total', { protocol: 'global sent' }), `${role}: bytes sent`).to.be.greaterThan(0)
  expect(value(families, 'process_resident_memory_bytes'), `${role}: RSS`).to.be.greaterThan(1e6)
  expect(value(families, 'process_cpu_seconds_total'), `${role}: CPU`).to.be.greaterThan(0)
}

const COMMON = [
  // prom-client's default process and Node.js metrics
  'process_resident_memory_bytes',
  'process_cpu_seconds_total',
  'process_start_time_seconds',
  'nodejs_heap_size_used_bytes',
  'nodejs_eventloop_lag_p99_seconds',
  'nodejs_active_resources_total',
  // libp2p's own metrics
  'libp2p_connection_manager_connections',
  'libp2p_protocol_streams_total',
  'libp2p_data_transfer_bytes_total',
  'libp2p_tcp_inbound_connections_total',
  'libp2p_dial_queue',
  'libp2p_kad_dht_routing_table_size',
  // gcn's
  'gcn_node_info',
  'gcn_libp2p_connected_peers',
  'gcn_libp2p_peer_store_peers',
  'gcn_libp2p_pubsub_topics',
  'gcn_libp2p_pubsub_peers',
  'gcn_libp2p_pubsub_topic_peers'
]

describe('metrics: GET /metrics on every role (real processes)', function () {
  this.timeout(60_000)
  let dir: string
  let net: Network
  let registry: RegistryNode
  const urls = { bootstrap: '', supplier: '', distributor: '', registry: '' }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gcn-metrics-'))
    // Identities first: the registry must accept the distributor, which reports to the registry.
    const distributorId = (await loadOrCreateIdentity(join(dir, 'net', 'distributor', 'peer.key'))).peerId.toString()
    const registryId = (await loadOrCreateIdentity(join(dir, 'registry', 'peer.key'))).peerId.toString()
    const registryPort = await freePort()
    const registryAddr = `/ip4/127.0.0.1/tcp/${registryPort}/p2p/${registryId}`
    net = await startNetwork({
      suppliers: 1,
      dir: join(dir, 'net'),
      distributorArgs: ['--registry', registryAddr],
      supplierArgs: ['--registry', registryAddr]
    })
    registry = new RegistryNode(0, registryId, registryPort, join(dir, 'registry'), [
      'registry',
      '--profile',
      'local',
      '--listen',
      `/ip4/127.0.0.1/tcp/${registryPort}`,
      '--bootstrap',
      net.bootstrap.addr,
      '--data-dir',
      join(dir, 'registry'),
      '--http-port',
      '0',
      '--distributor',
      distributorId,
      '--log-level',
      'warn'
    ])
    await registry.start()
    urls.bootstrap = (await net.bootstrap.proc.waitForLine(/^status: (http:\/\/\S+)$/))[1]!
    urls.distributor = (await net.distributor.proc.waitForLine(/^status: (http:\/\/\S+)$/))[1]!
    urls.supplier = net.suppliers[0]!.statusUrl
    urls.registry = registry.url
  })

  after(async () => {
    await net?.stop()
    await killAll()
    rmSync(dir, { recursive: true, force: true })
  })

  it('serves parseable Prometheus text with unit-suffixed names on every role', async () => {
    const bootstrap = await scrape(urls.bootstrap)
    checkNames('bootstrap', bootstrap, [])
    expect(value(bootstrap, 'gcn_node_info', { role: 'bootstrap', peer_id: net.bootstrap.peerId })).to.equal(1)
    expect(value(bootstrap, 'gcn_libp2p_pubsub_topics'), 'the bootstrap relays the capacity topic').to.be.at.least(1)
    expect((await fetch(`${urls.bootstrap}/health`)).status).to.equal(200)

    const supplier = await scrape(urls.supplier)
    checkNames('supplier', supplier, [
      'gcn_supplier_tasks_completed_total',
      'gcn_supplier_generated_tokens_total',
      'gcn_supplier_generations_total',
      'gcn_supplier_slots',
      'gcn_supplier_queued_tasks',
      'gcn_supplier_decode_tokens_per_second',
      'gcn_supplier_ttft_ewma_seconds',
      'gcn_supplier_time_to_first_token_seconds',
      'gcn_supplier_generation_duration_seconds',
      'gcn_supplier_task_streams',
      'gcn_outbox_pending_envelopes',
      'gcn_outbox_acked_envelopes_total'
    ])
    expect(value(supplier, 'gcn_supplier_slots', { state: 'free' })).to.equal(2)
    expect(supplier.get('gcn_supplier_time_to_first_token_seconds')!.type).to.equal('histogram')

    const distributor = await scrape(urls.distributor)
    checkNames('distributor', distributor, [
      'gcn_distributor_requests_total',
      'gcn_distributor_active_requests',
      'gcn_distributor_request_duration_seconds',
      'gcn_distributor_time_to_first_token_seconds',
      'gcn_distributor_tasks_total',
      'gcn_distributor_failovers_total',
      'gcn_distributor_task_failures_total',
      'gcn_distributor_proofs_verified_total',
      'gcn_distributor_proof_failures_total',
      'gcn_distributor_rejected_answers_total',
      'gcn_distributor_empty_answer_retries_total',
      'gcn_distributor_task_streams_opened_total',
      'gcn_distributor_spare_streams_used_total',
      'gcn_distributor_supplier_refusals_total',
      'gcn_distributor_supplier_believed_slots',
      'gcn_distributor_suppliers',
      'gcn_distributor_receipts_issued_total',
      'gcn_outbox_pending_envelopes'
    ])
    expect(value(distributor, 'gcn_distributor_suppliers')).to.equal(1)
    // One series per supplier in the directory, labelled with its peer id.
    const believed = distributor.get('gcn_distributor_supplier_believed_slots')!.samples
    expect(believed).to.have.length(1)
    expect(believed[0]!.labels.supplier).to.match(/^12D3KooW/)
    expect(believed[0]!.value).to.be.at.least(1)
    expect(value(distributor, 'gcn_libp2p_connected_peers')).to.be.at.least(1)
    // Open streams by direction and protocol: the distributor holds gossipsub streams to its peers.
    const streams = distributor.get('libp2p_protocol_streams_total')!.samples
    expect(
      streams.some(s => /^(inbound|outbound) \/meshsub\//.test(s.labels.protocol ?? '') && s.value > 0),
      JSON.stringify(streams)
    ).to.equal(true)
    expect((await fetch(`${urls.distributor}/health`)).status).to.equal(200)

    const reg = await scrape(urls.registry)
    checkNames('registry', reg, [
      'gcn_registry_writes_total',
      'gcn_registry_duplicates_total',
      'gcn_registry_rejections_total',
      'gcn_registry_quorum_failures_total',
      'gcn_registry_replicated_in_total',
      'gcn_registry_synced_in_total',
      'gcn_registry_sync_rounds_total',
      'gcn_registry_ledger_rows',
      'gcn_registry_latest_block_height',
      'gcn_registry_current_block_height'
    ])
    expect(value(reg, 'gcn_registry_current_block_height')).to.be.greaterThan(0)
  })

  it('counts a chat completion on the supplier, the distributor and the registry', async () => {
    const before = {
      supplier: await scrape(urls.supplier),
      distributor: await scrape(urls.distributor),
      registry: await scrape(urls.registry)
    }
    const res = await fetch(`${net.gatewayUrl}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${net.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: net.modelName, messages: [{ role: 'user', content: 'hello' }], max_tokens: 8 }),
      signal: AbortSignal.timeout(30_000)
    })
    const body = (await res.json()) as { usage?: { completion_tokens: number } }
    expect(res.status, JSON.stringify(body)).to.equal(200)
    const completionTokens = body.usage!.completion_tokens
    expect(completionTokens).to.be.greaterThan(0)

    const supplier = await waitFor('the supplier to count the task', async () => {
      const now = await scrape(urls.supplier)
      return value(now, 'gcn_supplier_tasks_completed_total') > value(before.supplier, 'gcn_supplier_tasks_completed_total')
        ? now
        : undefined
    })
    const generated = value(supplier, 'gcn_supplier_generated_tokens_total') - value(before.supplier, 'gcn_supplier_generated_tokens_total')
    expect(generated).to.equal(completionTokens)
    expect(value(supplier, 'gcn_supplier_time_to_first_token_seconds_count')).to.be.greaterThan(
      value(before.supplier, 'gcn_supplier_time_to_first_token_seconds_count')
    )

    const distributor = await waitFor('the distributor to count the request', async () => {
      const now = await scrape(urls.distributor)
      const ok = { status: '200' }
      return value(now, 'gcn_distributor_requests_total', ok) > value(before.distributor, 'gcn_distributor_requests_total', ok)
        ? now
        : undefined
    })
    expect(value(distributor, 'gcn_distributor_tasks_total')).to.be.greaterThan(value(before.distributor, 'gcn_distributor_tasks_total'))
    const okDuration = { outcome: 'ok' }
    expect(value(distributor, 'gcn_distributor_request_duration_seconds_count', okDuration)).to.equal(
      value(before.distributor, 'gcn_distributor_request_duration_seconds_count', okDuration) + 1
    )
    expect(value(distributor, 'gcn_distributor_request_duration_seconds_bucket', { ...okDuration, le: '+Inf' })).to.equal(
      value(distributor, 'gcn_distributor_request_duration_seconds_count', okDuration)
    )
    expect(value(distributor, 'gcn_distributor_completion_tokens_total')).to.be.at.least(completionTokens)
    // libp2p counted the task's bytes per protocol, both ways, on both ends.
    const taskBytes = (f: Map<string, Family>, way: string): number =>
      value(f, 'libp2p_data_transfer_bytes_total', { protocol: `${TASK_PROTOCOL} ${way}` })
    expect(taskBytes(distributor, 'sent')).to.be.greaterThan(taskBytes(before.distributor, 'sent'))
    expect(taskBytes(distributor, 'received')).to.be.greaterThan(taskBytes(before.distributor, 'received'))
    expect(taskBytes(supplier, 'received')).to.be.greaterThan(taskBytes(before.supplier, 'received'))

    // The receipt goes out with its block's batch and is stored by the registry.
    await waitFor(
      'the receipt to be issued, acknowledged and stored',
      async () => {
        const [d, r] = await Promise.all([scrape(urls.distributor), scrape(urls.registry)])
        return (
          value(d, 'gcn_distributor_receipts_issued_total') > value(before.distributor, 'gcn_distributor_receipts_issued_total') &&
          value(d, 'gcn_outbox_acked_envelopes_total') > value(before.distributor, 'gcn_outbox_acked_envelopes_total') &&
          value(r, 'gcn_registry_writes_total') > value(before.registry, 'gcn_registry_writes_total') &&
          value(r, 'gcn_registry_ledger_rows', { table: 'receipts' }) >
            value(before.registry, 'gcn_registry_ledger_rows', { table: 'receipts' })
        )
      },
      20_000,
      250
    )
  })
})
