import {
  AbortedError,
  type BlockClock,
  GcnError,
  type GcnNode,
  type InferenceEvent,
  type Logger,
  MetricsRegistry,
  type RegistryOutbox,
  registerDefaultMetrics
} from '@gcn/core'
import type { GatewayStats, InferenceBackend, ReceiptIssuer, SupplierDirectory, TaskRouter } from '@gcn/distributor'
import type { Ledger, Registry, Settler } from '@gcn/registry'
import type { ConfirmationReporter, GenerationChunk, GenerationEngine, Supplier } from '@gcn/supplier'

/**
 * Prometheus metrics of each long-running role, served as GET /metrics from
 * one prom-client registry per role: gcn's own metrics, libp2p's own
 * (`libp2p_*`, registered by the node: see GcnNodeInit.metrics) and
 * prom-client's default process and Node.js metrics (`process_*`,
 * `nodejs_*`). Every gcn name starts with `gcn_` and ends in its unit
 * (`_seconds`, `_bytes`, `_total` for counters, or what is counted:
 * `_peers`, `_tasks`, ...). Most values are read at scrape time from the
 * counters and live state the services already keep; the rest (latency
 * histograms, token counts) come from thin wrappers around the engine
 * (supplier) and backend (distributor).
 */

/** Time buckets for inference latency: 10 ms to 2 min. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

/**
 * Passes `source` through unchanged, telling `item` of every value and `end`
 * once when it finishes, throws (with the error) or is closed early by the
 * consumer (`return()`, forwarded so the source can cancel its work).
 */
export function tapStream<T>(source: AsyncIterable<T>, on: { item(value: T): void; end(err?: unknown): void }): AsyncIterableIterator<T> {
  const it = source[Symbol.asyncIterator]()
  let ended = false
  const end = (err?: unknown): void => {
    if (ended) return
    ended = true
    on.end(err)
  }
  return {
    [Symbol.asyncIterator]() {
      return this
    },
    async next() {
      let result: IteratorResult<T>
      try {
        result = await it.next()
      } catch (err) {
        end(err)
        throw err
      }
      if (result.done === true) end()
      else on.item(result.value)
      return result
    },
    async return(value?: unknown) {
      try {
        return (await it.return?.(value)) ?? { done: true, value: undefined }
      } finally {
        end()
      }
    },
    async throw(err?: unknown) {
      end(err)
      if (it.throw === undefined) throw err
      return it.throw(err)
    }
  }
}

/**
 * Process, Node.js and libp2p metrics every role exposes, in the registry the
 * node was built with (GcnNodeInit.metrics: libp2p's own metrics are already
 * there), or a new one for a node built without.
 */
export function createRoleMetrics(node: GcnNode, log: Logger): MetricsRegistry {
  const registry = node.metrics ?? new MetricsRegistry()
  registry.onCollectError = (metric, err) => log.debug('metric collection failed', { metric, err })
  registerDefaultMetrics(registry)
  registry.gauge({
    name: 'gcn_node_info',
    help: 'Always 1; labels: the role and peer id of this process.',
    labelNames: ['role', 'peer_id'],
    collect: () => [{ labels: { role: node.role, peer_id: node.peerId.toString() }, value: 1 }]
  })
  registerLibp2pMetrics(registry, node)
  return registry
}

/**
 * What libp2p's own metrics leave out, read from the node's public API:
 * distinct connected peers, the peer store and gossipsub (which reports no
 * metrics through libp2p's). Connections by direction and open streams by
 * protocol are libp2p's `libp2p_connection_manager_connections` and
 * `libp2p_protocol_streams_total`.
 */
export function registerLibp2pMetrics(registry: MetricsRegistry, node: GcnNode): void {
  const libp2p = node.libp2p
  registry.gauge({
    name: 'gcn_libp2p_connected_peers',
    help: 'Distinct peers with at least one open connection.',
    collect: () => new Set(libp2p.getConnections().map(c => c.remotePeer.toString())).size
  })
  registry.gauge({
    name: 'gcn_libp2p_peer_store_peers',
    help: 'Peers in the peer store.',
    collect: async () => (await libp2p.peerStore.all()).length
  })
  registry.gauge({
    name: 'gcn_libp2p_pubsub_topics',
    help: 'Gossipsub topics this node subscribes to.',
    collect: () => libp2p.services.pubsub.getTopics().length
  })
  registry.gauge({
    name: 'gcn_libp2p_pubsub_peers',
    help: 'Peers speaking gossipsub with this node.',
    collect: () => libp2p.services.pubsub.getPeers().length
  })
  registry.gauge({
    name: 'gcn_libp2p_pubsub_topic_peers',
    help: 'Known subscribers of each topic this node subscribes to.',
    labelNames: ['topic'],
    collect: () => {
      const pubsub = libp2p.services.pubsub
      return pubsub.getTopics().map(topic => ({ labels: { topic }, value: pubsub.getSubscribers(topic).length }))
    }
  })
}

/** The registry outbox of a supplier or distributor (receipts, confirmations on their way to the registry peers). */
export function registerOutboxMetrics(registry: MetricsRegistry, outbox: Pick<RegistryOutbox, 'pending' | 'stats'>): void {
  registry.gauge({
    name: 'gcn_outbox_pending_envelopes',
    help: 'Signed envelopes waiting for a registry acknowledgement.',
    collect: () => outbox.pending
  })
  const counters: Array<[keyof RegistryOutbox['stats'], string, string]> = [
    ['enqueued', 'gcn_outbox_enqueued_envelopes_total', 'Envelopes queued for the registry.'],
    ['acked', 'gcn_outbox_acked_envelopes_total', 'Envelopes a registry acknowledged.'],
    ['duplicates', 'gcn_outbox_duplicate_envelopes_total', 'Acknowledged envelopes the registry already held.'],
    ['rejected', 'gcn_outbox_rejected_envelopes_total', 'Envelopes a registry refused for good.'],
    ['dropped', 'gcn_outbox_dropped_envelopes_total', 'Envelopes dropped because the outbox was full.'],
    ['retries', 'gcn_outbox_retries_total', 'Submissions retried after a registry did not answer.']
  ]
  for (const [key, name, help] of counters) registry.counter({ name, help, collect: () => outbox.stats[key] })
}

export interface SupplierMetricSources {
  engine: Pick<GenerationEngine, 'stats'>
  supplier: Pick<Supplier, 'completedTasks' | 'openTaskStreams'>
  outbox?: Pick<RegistryOutbox, 'pending' | 'stats'>
  confirmations?: Pick<ConfirmationReporter, 'stats'>
}

/**
 * Token and latency metrics of the supplier's generations; returns the
 * wrapper to put around the engine handed to `Supplier`.
 */
export function instrumentSupplierEngine(registry: MetricsRegistry): (engine: GenerationEngine) => GenerationEngine {
  const generated = registry.counter({
    name: 'gcn_supplier_generated_tokens_total',
    help: 'Tokens generated (all tasks, aborted ones included).'
  })
  const prompt = registry.counter({ name: 'gcn_supplier_prompt_tokens_total', help: 'Prompt tokens of finished generations.' })
  const generations = registry.counter({
    name: 'gcn_supplier_generations_total',
    help: "Generations ended, by finish reason ('error' when the runtime threw, 'aborted' when the stream closed first).",
    labelNames: ['finish_reason']
  })
  const errors = registry.counter({
    name: 'gcn_supplier_generation_errors_total',
    help: 'Generations the runtime refused or failed, by error code.',
    labelNames: ['code']
  })
  const ttft = registry.histogram({
    name: 'gcn_supplier_time_to_first_token_seconds',
    help: 'Task submitted to the runtime until its first token (queue wait and prompt evaluation).',
    buckets: LATENCY_BUCKETS_SECONDS
  })
  const duration = registry.histogram({
    name: 'gcn_supplier_generation_duration_seconds',
    help: 'Task submitted to the runtime until its generation ended.',
    buckets: LATENCY_BUCKETS_SECONDS
  })

  const observe = (chunks: AsyncIterable<GenerationChunk>): AsyncIterableIterator<GenerationChunk> => {
    const endTtft = ttft.startTimer()
    const endDuration = duration.startTimer()
    let first = true
    let finishReason: string | undefined
    return tapStream(chunks, {
      item: chunk => {
        if (chunk.type === 'token') {
          if (first) {
            endTtft()
            first = false
          }
          generated.inc(chunk.tokenIds.length)
        } else {
          finishReason = chunk.finishReason
          prompt.inc(chunk.usage.promptTokens)
        }
      },
      end: err => {
        if (err !== undefined && !(err instanceof AbortedError)) {
          finishReason = 'error'
          errors.inc({ code: err instanceof GcnError ? err.code : 'ERR_INTERNAL' })
        }
        generations.inc({ finish_reason: finishReason ?? 'aborted' })
        endDuration()
      }
    })
  }

  return inner => ({
    get info() {
      return inner.info
    },
    stats: () => inner.stats(),
    onChange: listener => inner.onChange(listener),
    // Called at once so the task is submitted (and queues) exactly as without the wrapper.
    generate: (input, params, options) => observe(inner.generate(input, params, options))
  })
}

/** Supplier metrics read from the runtime, the supplier, its outbox and confirmation reporter. */
export function registerSupplierMetrics(registry: MetricsRegistry, sources: SupplierMetricSources): void {
  const { engine, supplier } = sources
  registry.counter({
    name: 'gcn_supplier_tasks_completed_total',
    help: 'Tasks that finished and whose last chunk was sent.',
    collect: () => supplier.completedTasks
  })
  registry.gauge({
    name: 'gcn_supplier_slots',
    help: 'Generation slots by state.',
    labelNames: ['state'],
    collect: () => {
      const s = engine.stats()
      return [
        { labels: { state: 'active' }, value: s.totalSlots - s.freeSlots },
        { labels: { state: 'free' }, value: s.freeSlots }
      ]
    }
  })
  registry.gauge({ name: 'gcn_supplier_queued_tasks', help: 'Tasks waiting for a free slot.', collect: () => engine.stats().queueDepth })
  registry.gauge({
    name: 'gcn_supplier_decode_tokens_per_second',
    help: 'Measured decode speed (EWMA over tasks; 0 until measured).',
    collect: () => engine.stats().tokensPerSecond
  })
  registry.gauge({
    name: 'gcn_supplier_ttft_ewma_seconds',
    help: 'Measured prompt evaluation time to first token (EWMA; queue wait excluded; 0 until measured), as advertised.',
    collect: () => engine.stats().ttftMs / 1000
  })
  registry.gauge({
    name: 'gcn_supplier_task_streams',
    help: 'Open task streams (queued, stalled or generating).',
    collect: () => supplier.openTaskStreams
  })
  if (sources.outbox !== undefined) registerOutboxMetrics(registry, sources.outbox)
  const confirmations = sources.confirmations
  if (confirmations !== undefined) {
    registry.counter({
      name: 'gcn_supplier_confirmed_tasks_total',
      help: 'Completed tasks recorded for block confirmation.',
      collect: () => confirmations.stats.tasks
    })
    registry.counter({
      name: 'gcn_supplier_block_confirmations_total',
      help: 'Signed block confirmations handed to the outbox.',
      collect: () => confirmations.stats.confirmations
    })
  }
}

export interface DistributorMetricSources {
  gateway: { readonly stats: GatewayStats }
  router: Pick<TaskRouter, 'counters' | 'streamStats'>
  directory: Pick<SupplierDirectory, 'suppliers' | 'models' | 'slotsOf'>
  receipts?: Pick<ReceiptIssuer, 'stats'>
  outbox?: Pick<RegistryOutbox, 'pending' | 'stats'>
}

/**
 * Latency histograms of the distributor's inference requests; returns the
 * wrapper to put around the backend (router) handed to the gateway.
 */
export function instrumentDistributorBackend(registry: MetricsRegistry): (backend: InferenceBackend) => InferenceBackend {
  const duration = registry.histogram({
    name: 'gcn_distributor_request_duration_seconds',
    help: "Inference request to its last event, by outcome ('ok', 'error', 'aborted').",
    labelNames: ['outcome'],
    buckets: LATENCY_BUCKETS_SECONDS
  })
  const ttft = registry.histogram({
    name: 'gcn_distributor_time_to_first_token_seconds',
    help: 'Inference request to its first token (supplier selection and failover included).',
    buckets: LATENCY_BUCKETS_SECONDS
  })
  const errors = registry.counter({
    name: 'gcn_distributor_request_errors_total',
    help: 'Inference requests that failed, by error code.',
    labelNames: ['code']
  })

  const observe = (events: AsyncIterable<InferenceEvent>): AsyncIterableIterator<InferenceEvent> => {
    const endTtft = ttft.startTimer()
    const endDuration = duration.startTimer()
    let first = true
    let outcome: 'ok' | 'error' | 'aborted' = 'aborted'
    return tapStream(events, {
      item: event => {
        if (event.type === 'delta' && first) {
          endTtft()
          first = false
        } else if (event.type === 'done') outcome = 'ok'
      },
      end: err => {
        if (err !== undefined) {
          outcome = err instanceof AbortedError ? 'aborted' : 'error'
          if (outcome === 'error') errors.inc({ code: err instanceof GcnError ? err.code : 'ERR_INTERNAL' })
        }
        endDuration({ outcome })
      }
    })
  }

  return inner => ({
    listModels: () => inner.listModels(),
    stream: (request, options) => observe(inner.stream(request, options))
  })
}

/** Distributor metrics read from the gateway, router, directory, receipt issuer and outbox. */
export function registerDistributorMetrics(registry: MetricsRegistry, sources: DistributorMetricSources): void {
  const { gateway, router, directory, receipts, outbox } = sources
  registry.counter({
    name: 'gcn_distributor_requests_total',
    help: 'Finished gateway requests by HTTP status (499: the client closed the connection first).',
    labelNames: ['status'],
    collect: () => Object.entries(gateway.stats.requestsByStatus).map(([status, value]) => ({ labels: { status }, value }))
  })
  registry.gauge({
    name: 'gcn_distributor_active_requests',
    help: 'Inference requests being served.',
    collect: () => gateway.stats.activeRequests
  })
  registry.gauge({
    name: 'gcn_distributor_active_streams',
    help: 'Server-sent event responses open.',
    collect: () => gateway.stats.activeStreams
  })
  registry.counter({
    name: 'gcn_distributor_stream_errors_total',
    help: 'Streams that ended with an error event.',
    collect: () => gateway.stats.streamErrors
  })
  registry.counter({
    name: 'gcn_distributor_prompt_tokens_total',
    help: 'Prompt tokens of answered requests.',
    collect: () => gateway.stats.promptTokens
  })
  registry.counter({
    name: 'gcn_distributor_completion_tokens_total',
    help: 'Completion tokens of answered requests.',
    collect: () => gateway.stats.completionTokens
  })
  const routerCounters: Array<[keyof TaskRouter['counters'], string, string]> = [
    ['tasks', 'gcn_distributor_tasks_total', 'Tasks routed to suppliers.'],
    ['failovers', 'gcn_distributor_failovers_total', 'Attempts moved to another supplier.'],
    ['failures', 'gcn_distributor_task_failures_total', 'Tasks that failed on every attempt.'],
    ['verified', 'gcn_distributor_proofs_verified_total', 'Outputs re-scored and verified.'],
    ['proofFailures', 'gcn_distributor_proof_failures_total', 'Outputs re-scored and refused.'],
    ['rejectedAnswers', 'gcn_distributor_rejected_answers_total', 'Whole answers held back for failing their checks and re-run elsewhere.'],
    ['emptyRetries', 'gcn_distributor_empty_answer_retries_total', 'Empty answers (end of text first) re-run on another supplier.']
  ]
  for (const [key, name, help] of routerCounters) registry.counter({ name, help, collect: () => router.counters[key] })
  const streamCounters: Array<[keyof NonNullable<TaskRouter['streamStats']>, string, string]> = [
    ['opened', 'gcn_distributor_task_streams_opened_total', 'Task streams opened to suppliers (spares included).'],
    ['sparesUsed', 'gcn_distributor_spare_streams_used_total', 'Tasks sent on a spare stream negotiated in advance.'],
    ['sparesExpired', 'gcn_distributor_spare_streams_expired_total', 'Spare streams dropped unused (too old, or closed by the supplier).']
  ]
  for (const [key, name, help] of streamCounters) registry.counter({ name, help, collect: () => router.streamStats?.[key] ?? 0 })
  registry.counter({
    name: 'gcn_distributor_supplier_refusals_total',
    help: 'Tasks each supplier in the directory refused for lack of room.',
    labelNames: ['supplier'],
    collect: () => directory.suppliers().map(s => ({ labels: { supplier: s.peerId.toString() }, value: s.refusals }))
  })
  registry.gauge({
    name: 'gcn_distributor_supplier_believed_slots',
    help: 'Slots the router fills on each supplier: its advertised slots, capped by what its refusals showed.',
    labelNames: ['supplier'],
    collect: () => directory.suppliers().map(s => ({ labels: { supplier: s.peerId.toString() }, value: directory.slotsOf(s) }))
  })
  registry.gauge({
    name: 'gcn_distributor_suppliers',
    help: 'Suppliers in the directory (fresh adverts).',
    collect: () => directory.suppliers().length
  })
  registry.gauge({
    name: 'gcn_distributor_models',
    help: 'Models offered by at least one supplier.',
    collect: () => directory.models().length
  })
  registry.gauge({
    name: 'gcn_distributor_outstanding_tasks',
    help: 'Tasks this distributor has in flight on suppliers.',
    collect: () => directory.suppliers().reduce((n, s) => n + s.outstanding, 0)
  })
  if (receipts !== undefined) {
    registry.counter({
      name: 'gcn_distributor_receipts_issued_total',
      help: 'Signed receipts issued for completed tasks.',
      collect: () => receipts.stats.receipts
    })
    registry.counter({
      name: 'gcn_distributor_receipt_batches_total',
      help: 'Receipt batches handed to the outbox.',
      collect: () => receipts.stats.batches
    })
  }
  if (outbox !== undefined) registerOutboxMetrics(registry, outbox)
}

export interface RegistryMetricSources {
  registry: Pick<Registry, 'stats' | 'quorum' | 'peers'>
  ledger: Pick<Ledger, 'counts' | 'latestBlock'>
  clock: Pick<BlockClock, 'blockHeight'>
  node: GcnNode
  settler?: Pick<Settler, 'stats'>
}

/** Registry peer metrics: writes, replication, ledger size and settlement. */
export function registerRegistryMetrics(metrics: MetricsRegistry, sources: RegistryMetricSources): void {
  const { registry, ledger, clock, node, settler } = sources
  const counters: Array<[Exclude<keyof Registry['stats'], 'rejected'>, string, string]> = [
    ['writes', 'gcn_registry_writes_total', 'Envelopes submitted to this peer and stored.'],
    ['duplicates', 'gcn_registry_duplicates_total', 'Writes already held.'],
    ['quorumFailures', 'gcn_registry_quorum_failures_total', 'Writes not acknowledged because too few registry peers held them.'],
    ['replicatedIn', 'gcn_registry_replicated_in_total', 'Writes replicated here by another registry peer.'],
    ['replicaSkips', 'gcn_registry_replica_skips_total', 'Writes not sent to a registry peer with too many in flight.'],
    ['syncedIn', 'gcn_registry_synced_in_total', 'Rows stored by anti-entropy sync.'],
    ['syncRounds', 'gcn_registry_sync_rounds_total', 'Anti-entropy sync rounds run.']
  ]
  for (const [key, name, help] of counters) metrics.counter({ name, help, collect: () => registry.stats[key] })
  metrics.counter({
    name: 'gcn_registry_rejections_total',
    help: 'Writes refused, by error code.',
    labelNames: ['code'],
    collect: () => Object.entries(registry.stats.rejected).map(([code, value]) => ({ labels: { code }, value }))
  })
  metrics.gauge({
    name: 'gcn_registry_ledger_rows',
    help: 'Rows in the ledger by table.',
    labelNames: ['table'],
    collect: () => Object.entries(ledger.counts()).map(([table, value]) => ({ labels: { table }, value }))
  })
  metrics.gauge({
    name: 'gcn_registry_latest_block_height',
    help: 'Highest block with data in the ledger (-1 when empty).',
    collect: () => ledger.latestBlock() ?? -1
  })
  metrics.gauge({
    name: 'gcn_registry_current_block_height',
    help: 'Current block of the block clock.',
    collect: () => clock.blockHeight()
  })
  metrics.gauge({
    name: 'gcn_registry_quorum_peers',
    help: 'Registry peers (this one included) holding a write before it is acknowledged.',
    collect: () => registry.quorum
  })
  metrics.gauge({
    name: 'gcn_registry_peers',
    help: 'Other registry peers by connection state.',
    labelNames: ['state'],
    collect: () => {
      const connected = registry.peers.filter(p => node.libp2p.getConnections(p.peerId).length > 0).length
      return [
        { labels: { state: 'connected' }, value: connected },
        { labels: { state: 'disconnected' }, value: registry.peers.length - connected }
      ]
    }
  })
  if (settler !== undefined) {
    const settlement: Array<[keyof Settler['stats'], string, string]> = [
      ['daysCompiled', 'gcn_settlement_days_compiled_total', 'Settlement days compiled into a report.'],
      ['daysPosted', 'gcn_settlement_days_posted_total', 'Day reports posted on chain by this peer.'],
      ['debitsApplied', 'gcn_settlement_debits_applied_total', 'Game debits applied on chain by this peer.'],
      ['alarms', 'gcn_settlement_alarms_total', 'Settlement alarms raised (e.g. the posted day root differs from ours).']
    ]
    for (const [key, name, help] of settlement) metrics.counter({ name, help, collect: () => settler.stats[key] })
  }
}
