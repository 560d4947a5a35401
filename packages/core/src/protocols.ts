/** Versioned protocol ids and gossip topics used across gcn. */
/** Private Kademlia DHT: gcn peers never mix routing tables with the public IPFS DHT. */
export const DHT_PROTOCOL = '/gcn/kad/1.0.0'
/** Supplier capacity adverts. */
export const CAPACITY_TOPIC = '/gcn/capacity/1'
/** Distributor → supplier task stream. */
export const TASK_PROTOCOL = '/gcn/task/1.0.0'
/** Ask a peer for its current signed capacity advert (one frame, then close). */
export const ADVERT_PROTOCOL = '/gcn/advert/1.0.0'

/** Distributors and suppliers write signed receipts and confirmations to a registry peer. */
export const REGISTRY_SUBMIT_PROTOCOL = '/gcn/registry/submit/1.0.0'
/** Registry peers copy each write to each other before acknowledging it (quorum). */
export const REGISTRY_REPLICATE_PROTOCOL = '/gcn/registry/replicate/1.0.0'
/** Anti-entropy between registry peers: compare range digests, fetch missing envelopes. */
export const REGISTRY_SYNC_PROTOCOL = '/gcn/registry/sync/1.0.0'
/** Gossip topic where registry peers publish recent block summaries. */
export const REGISTRY_BLOCKS_TOPIC = '/gcn/registry/blocks/1'

/** SignedEnvelope payload types stored by registries. */
export const RECEIPTS_PAYLOAD = 'gcn/receipts/1'
export const CONFIRMATION_PAYLOAD = 'gcn/confirmation/1'
/** Gossip topic where registry peers exchange signatures over their compiled day reports. */
export const REGISTRY_REPORTS_TOPIC = '/gcn/registry/reports/1'
/** A supplier fetches the key of an encrypted model from a distributor. */
export const MODEL_KEY_PROTOCOL = '/gcn/model-key/1.0.0'
