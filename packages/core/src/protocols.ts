/** Versioned protocol ids and gossip topics used across gcn. */
/** Private Kademlia DHT: gcn peers never mix routing tables with the public IPFS DHT. */
export const DHT_PROTOCOL = '/gcn/kad/1.0.0'
/** Supplier capacity adverts. */
export const CAPACITY_TOPIC = '/gcn/capacity/1'
/** Distributor → supplier task stream. */
export const TASK_PROTOCOL = '/gcn/task/1.0.0'
/** Ask a peer for its current signed capacity advert (one frame, then close). */
export const ADVERT_PROTOCOL = '/gcn/advert/1.0.0'
