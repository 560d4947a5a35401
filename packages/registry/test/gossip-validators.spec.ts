import {
  BlockClock,
  BlockSummariesCodec,
  createGcnNode,
  DayReportSignatureCodec,
  type GcnNode,
  plainBytes,
  REGISTRY_BLOCKS_TOPIC,
  REGISTRY_REPORTS_TOPIC,
  silentLogger,
  TopicValidatorResult
} from '@gcn/core'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'chai'
import type { SettlementChain } from '../src/chain.js'
import { Ledger } from '../src/ledger.js'
import { Registry } from '../src/registry.js'
import { Settler } from '../src/settler.js'

const newPeer = async (): Promise<PeerId> => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

/** A gossip message as gossipsub hands it to a topic validator (its libp2p signature already checked). */
function message(author: PeerId, topic: string, data: Uint8Array): never {
  return { type: 'signed', from: author, topic, data, sequenceNumber: 1n, signature: new Uint8Array(64), key: author.publicKey } as never
}

const summaries = (registryPeerId: PeerId): Uint8Array =>
  BlockSummariesCodec.encode({
    registryPeerId: registryPeerId.toString(),
    blocks: [{ blockHeight: 3, count: 1, root: plainBytes(new Uint8Array(32).fill(7)) }],
    timestampMs: Date.now()
  })

const reportSignature = (registryPeerId: PeerId): Uint8Array =>
  DayReportSignatureCodec.encode({
    registryPeerId: registryPeerId.toString(),
    day: 1,
    root: plainBytes(new Uint8Array(32).fill(1)),
    totalDebit: plainBytes(new Uint8Array(32)),
    signer: `0x${'ab'.repeat(20)}`,
    signature: plainBytes(new Uint8Array(65).fill(2))
  })

describe('registry gossip topic validators', function () {
  this.timeout(30_000)
  let node: GcnNode
  let ledger: Ledger
  let peer: PeerId
  let stranger: PeerId
  // A long block, so no block tick or settlement tick runs during a test.
  const clock = new BlockClock({ genesisMs: Date.now() - 10_000, blockMs: 60_000, blocksPerDay: 1_000 })

  beforeEach(async () => {
    node = await createGcnNode({ role: 'registry', privateKey: await generateKeyPair('Ed25519'), profile: 'local', listen: [] })
    await node.start()
    ledger = new Ledger({ path: ':memory:' })
    peer = await newPeer()
    stranger = await newPeer()
  })

  afterEach(async () => {
    await node.stop()
    ledger.close()
  })

  /** Runs `topic`'s validator on a message authored by `author`, relayed by `relay`. */
  const validate = async (topic: string, relay: PeerId, author: PeerId, data: Uint8Array): Promise<string> => {
    const validator = node.libp2p.services.pubsub.topicValidators.get(topic)
    expect(validator, `a validator on ${topic}`).to.be.a('function')
    return validator!(relay, message(author, topic, data))
  }

  function checkTopic(topic: string, encode: (registryPeerId: PeerId) => Uint8Array) {
    return async () => {
      // A registry peer's message naming itself, directly or relayed by anyone.
      expect(await validate(topic, peer, peer, encode(peer))).to.equal(TopicValidatorResult.Accept)
      expect(await validate(topic, stranger, peer, encode(peer))).to.equal(TopicValidatorResult.Accept)
      // Garbage, even from a registry peer.
      for (const data of [new Uint8Array(0), Uint8Array.from([0xff, 0xff, 0xff]), new Uint8Array(64 * 1024)]) {
        expect(await validate(topic, peer, peer, data)).to.equal(TopicValidatorResult.Reject)
      }
      // A well-formed message from a stranger, or naming another peer than its author.
      expect(await validate(topic, stranger, stranger, encode(stranger))).to.equal(TopicValidatorResult.Reject)
      expect(await validate(topic, stranger, stranger, encode(peer))).to.equal(TopicValidatorResult.Reject)
      expect(await validate(topic, peer, peer, encode(node.peerId))).to.equal(TopicValidatorResult.Reject)
      // A stranger's message relayed by a registry peer: that peer may know other registry peers than we do.
      expect(await validate(topic, peer, stranger, encode(stranger))).to.equal(TopicValidatorResult.Ignore)
    }
  }

  describe('Registry on /gcn/registry/blocks/1', () => {
    let registry: Registry
    beforeEach(async () => {
      registry = new Registry({ peers: [`/p2p/${peer.toString()}`], distributors: [] }, { node, ledger, clock, logger: silentLogger })
      await registry.start()
    })
    afterEach(async () => {
      await registry.stop()
    })

    it(
      'accepts block summaries only from a configured registry peer naming itself, rejects the rest',
      checkTopic(REGISTRY_BLOCKS_TOPIC, summaries)
    )

    it('removes its validator when stopped', async () => {
      await registry.stop()
      expect(node.libp2p.services.pubsub.topicValidators.has(REGISTRY_BLOCKS_TOPIC)).to.equal(false)
    })
  })

  describe('Settler on /gcn/registry/reports/1', () => {
    let settler: Settler
    beforeEach(async () => {
      // Only what Settler.start reads: the contract's signer set and threshold.
      const chain = {
        account: undefined,
        publicClient: { readContract: async ({ functionName }: { functionName: string }) => (functionName === 'signers' ? [] : 1n) }
      } as unknown as SettlementChain
      settler = new Settler(
        {},
        { node, ledger, clock, chain, logger: silentLogger, acceptBlocksBehind: 10, registryPeers: [node.peerId, peer] }
      )
      await settler.start()
    })
    afterEach(() => {
      settler.stop()
    })

    it(
      'accepts report signatures only from a registry peer naming itself, rejects the rest',
      checkTopic(REGISTRY_REPORTS_TOPIC, reportSignature)
    )

    it('removes its validator when stopped', () => {
      settler.stop()
      expect(node.libp2p.services.pubsub.topicValidators.has(REGISTRY_REPORTS_TOPIC)).to.equal(false)
    })
  })
})
