import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Message } from '@libp2p/gossipsub'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'chai'
import { signEnvelope } from '../src/envelope.js'
import {
  CAPACITY_GOSSIP_DEFAULTS,
  capacityTopicValidator,
  checkCapacityGossip,
  checkRegistryGossipSender,
  gossipIgnore,
  gossipValidator,
  TopicValidatorResult
} from '../src/gossip-validation.js'
import { createGcnNode, type GcnNode, GOSSIP_SCORING } from '../src/node.js'
import { CAPACITY_TOPIC, REGISTRY_BLOCKS_TOPIC, REGISTRY_REPORTS_TOPIC } from '../src/protocols.js'
import { AdvertEnvelopeCodec, type CapacityAdvert, CapacityAdvertCodec } from '../src/wire.js'
import { localTestNodes } from './helpers.js'

const MODEL = 'ab'.repeat(32)

function advertOf(key: PrivateKey, overrides: Partial<CapacityAdvert> = {}): CapacityAdvert {
  return {
    peerId: peerIdFromPrivateKey(key).toString(),
    multiaddrs: [],
    models: [{ id: MODEL, name: 'tiny', contextSize: 512, pricePer1kTokens: 100n }],
    freeSlots: 1,
    totalSlots: 1,
    queueDepth: 0,
    tokensPerSecond: 10,
    ttftMs: 50,
    rewardAddress: `0x${'12'.repeat(20)}`,
    timestampMs: Date.now(),
    seq: Date.now(),
    ...overrides
  }
}

/** An advert envelope for `key`'s peer, signed by `signer` (default: the same key). */
async function advertBytes(key: PrivateKey, overrides: Partial<CapacityAdvert> = {}, signer = key): Promise<Uint8Array> {
  return AdvertEnvelopeCodec.encode(await signEnvelope(signer, CAPACITY_TOPIC, CapacityAdvertCodec.encode(advertOf(key, overrides))))
}

/** A gossip message as gossipsub hands it to a validator (its libp2p signature was checked before). */
function signedMessage(author: PeerId, topic: string, data: Uint8Array): Message {
  return { type: 'signed', from: author, topic, data, sequenceNumber: 1n, signature: new Uint8Array(64), key: author.publicKey! }
}

/** The gossipsub implementation's score and mesh (its exported GossipSub interface has neither). */
const scoring = (n: GcnNode) =>
  n.libp2p.services.pubsub as unknown as { getScore(peer: string): number; getMeshPeers(topic: string): string[] }

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

async function until(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

describe('gossip validation', function () {
  this.timeout(60_000)
  let alice: PrivateKey
  let mallory: PrivateKey
  let aliceId: PeerId
  let malloryId: PeerId

  before(async () => {
    alice = await generateKeyPair('Ed25519')
    mallory = await generateKeyPair('Ed25519')
    aliceId = peerIdFromPrivateKey(alice)
    malloryId = peerIdFromPrivateKey(mallory)
  })

  describe('capacity adverts', () => {
    const verdict = async (author: PeerId, data: Uint8Array, options = {}) =>
      capacityTopicValidator(options)(malloryId, signedMessage(author, CAPACITY_TOPIC, data))

    it('accepts a fresh advert published by the supplier it names, whoever relays it', async () => {
      const checked = await checkCapacityGossip(signedMessage(aliceId, CAPACITY_TOPIC, await advertBytes(alice)))
      expect(checked.result).to.equal(TopicValidatorResult.Accept)
      if (checked.result === TopicValidatorResult.Accept) {
        expect(checked.value.peerId).to.equal(aliceId.toString())
        expect(checked.value.signer.equals(aliceId)).to.equal(true)
      }
      // The validator ignores the propagation source: relayed by Mallory, authored by Alice.
      expect(await verdict(aliceId, await advertBytes(alice))).to.equal(TopicValidatorResult.Accept)
    })

    it('rejects garbage, forgeries and adverts re-published under another author', async () => {
      for (const data of [
        new Uint8Array(0),
        Uint8Array.from([1, 2, 3]),
        new Uint8Array(20 * 1024),
        CapacityAdvertCodec.encode(advertOf(alice)),
        // Mallory signs an advert naming Alice.
        await advertBytes(alice, {}, mallory),
        // Alice's advert with a flipped payload byte.
        await (async () => {
          const envelope = AdvertEnvelopeCodec.decode(await advertBytes(alice))
          const payload = Uint8Array.from(envelope.payload)
          payload[payload.length - 1]! ^= 1
          return AdvertEnvelopeCodec.encode({ ...envelope, payload })
        })(),
        // Signed for another payload type.
        AdvertEnvelopeCodec.encode(await signEnvelope(alice, '/gcn/other/1', CapacityAdvertCodec.encode(advertOf(alice))))
      ]) {
        expect(await verdict(aliceId, data)).to.equal(TopicValidatorResult.Reject)
      }
      // Alice's genuine advert, published by Mallory as its author.
      expect(await verdict(malloryId, await advertBytes(alice))).to.equal(TopicValidatorResult.Reject)
      // Unsigned gossip.
      const unsigned: Message = { type: 'unsigned', topic: CAPACITY_TOPIC, data: await advertBytes(alice) }
      expect(await capacityTopicValidator()(aliceId, unsigned)).to.equal(TopicValidatorResult.Reject)
    })

    it('ignores stale adverts and what the receiver excludes, without penalty', async () => {
      const maxAge = CAPACITY_GOSSIP_DEFAULTS.maxAdvertAgeMs
      expect(await verdict(aliceId, await advertBytes(alice, { timestampMs: Date.now() - maxAge - 1_000 }))).to.equal(
        TopicValidatorResult.Ignore
      )
      expect(await verdict(aliceId, await advertBytes(alice, { timestampMs: Date.now() + maxAge + 1_000 }))).to.equal(
        TopicValidatorResult.Ignore
      )
      expect(await verdict(aliceId, await advertBytes(alice, { timestampMs: Date.now() - 4_000 }), { maxAdvertAgeMs: 3_000 })).to.equal(
        TopicValidatorResult.Ignore
      )
      const checked = await checkCapacityGossip(signedMessage(aliceId, CAPACITY_TOPIC, await advertBytes(alice)), {
        admit: advert => (advert.peerId === aliceId.toString() ? 'banned' : undefined)
      })
      expect(checked).to.deep.equal({ result: TopicValidatorResult.Ignore, reason: 'banned' })
    })

    it('hands each accepted advert, and only those, to onAccept with its message', async () => {
      const accepted: Array<[Message, string]> = []
      const onAccept = (message: Message, advert: { peerId: string }) => accepted.push([message, advert.peerId])
      const good = signedMessage(aliceId, CAPACITY_TOPIC, await advertBytes(alice))
      expect(await capacityTopicValidator({ onAccept })(malloryId, good)).to.equal(TopicValidatorResult.Accept)
      const stale = await advertBytes(alice, { timestampMs: Date.now() - CAPACITY_GOSSIP_DEFAULTS.maxAdvertAgeMs - 1_000 })
      expect(await verdict(aliceId, stale, { onAccept })).to.equal(TopicValidatorResult.Ignore)
      expect(await verdict(malloryId, await advertBytes(alice), { onAccept })).to.equal(TopicValidatorResult.Reject)
      expect(await verdict(aliceId, await advertBytes(alice), { onAccept, admit: () => 'banned' })).to.equal(TopicValidatorResult.Ignore)
      expect(accepted).to.have.length(1)
      expect(accepted[0]![0]).to.equal(good)
      expect(accepted[0]![1]).to.equal(aliceId.toString())
    })

    it('a check that throws rejects; a verdict is passed through', async () => {
      const message = signedMessage(aliceId, CAPACITY_TOPIC, new Uint8Array(1))
      const throwing = gossipValidator(() => {
        throw new Error('boom')
      })
      expect(await throwing(aliceId, message)).to.equal(TopicValidatorResult.Reject)
      expect(await gossipValidator(() => gossipIgnore('later'))(aliceId, message)).to.equal(TopicValidatorResult.Ignore)
    })
  })

  describe('registry topics', () => {
    it('accepts only registry peers naming themselves; a registry peer relaying an unknown author is ignored', async () => {
      const registryKey = await generateKeyPair('Ed25519')
      const registry = peerIdFromPrivateKey(registryKey)
      const peers = new Set([registry.toString(), aliceId.toString()])
      const check = (relay: PeerId, author: PeerId, claimed: PeerId) =>
        checkRegistryGossipSender(relay, signedMessage(author, REGISTRY_BLOCKS_TOPIC, new Uint8Array(0)), peers, claimed.toString()).result
      expect(check(registry, registry, registry)).to.equal(TopicValidatorResult.Accept)
      // A registry peer's message relayed by another registry peer, or by anyone.
      expect(check(aliceId, registry, registry)).to.equal(TopicValidatorResult.Accept)
      expect(check(malloryId, registry, registry)).to.equal(TopicValidatorResult.Accept)
      // Naming another registry peer than its author.
      expect(check(registry, registry, aliceId)).to.equal(TopicValidatorResult.Reject)
      expect(check(malloryId, malloryId, registry)).to.equal(TopicValidatorResult.Reject)
      // A stranger, directly or relayed by another stranger.
      expect(check(malloryId, malloryId, malloryId)).to.equal(TopicValidatorResult.Reject)
      expect(check(await strangerId(), malloryId, malloryId)).to.equal(TopicValidatorResult.Reject)
      // A stranger relayed by a registry peer (whose configured set may differ from ours): not its relay's fault.
      expect(check(registry, malloryId, malloryId)).to.equal(TopicValidatorResult.Ignore)
      const unsigned: Message = { type: 'unsigned', topic: REGISTRY_REPORTS_TOPIC, data: new Uint8Array(0) }
      expect(checkRegistryGossipSender(registry, unsigned, peers, registry.toString()).result).to.equal(TopicValidatorResult.Reject)
    })

    async function strangerId(): Promise<PeerId> {
      return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    }
  })

  describe('peer scoring on the gcn topics (real gossipsub, local profile)', () => {
    const nodes = localTestNodes({ targetPeers: 0 })
    afterEach(() => nodes.stopAll())

    const start = (privateKey?: PrivateKey): Promise<GcnNode> => nodes.start(privateKey === undefined ? {} : { privateKey })

    it('configures the gcn topics for every profile', async () => {
      for (const profile of ['production', 'local'] as const) {
        const n = await createGcnNode({ role: 'client', privateKey: await generateKeyPair('Ed25519'), profile, listen: [] })
        const pubsub = n.libp2p.services.pubsub as unknown as {
          opts: { scoreThresholds: Record<string, number> }
          score: {
            params: { topics: Record<string, { invalidMessageDeliveriesWeight: number }>; IPColocationFactorWhitelist: Set<string> }
          }
        }
        expect(Object.keys(pubsub.score.params.topics).sort()).to.deep.equal([...GOSSIP_SCORING.topics].sort())
        for (const topic of GOSSIP_SCORING.topics) expect(pubsub.score.params.topics[topic]!.invalidMessageDeliveriesWeight).to.be.below(0)
        expect(pubsub.opts.scoreThresholds.graylistThreshold).to.equal(GOSSIP_SCORING.thresholds.graylistThreshold)
        // The loopback whitelist stays a local-profile setting.
        expect(pubsub.score.params.IPColocationFactorWhitelist.has('127.0.0.1')).to.equal(profile === 'local')
      }
    })

    it('graylists a publisher of invalid adverts: its later valid advert is not accepted, an honest one through a validating relay is', async () => {
      // supplier — relay — receiver, and the attacker connected to both the relay and the receiver.
      const supplierKey = await generateKeyPair('Ed25519')
      const attackerKey = await generateKeyPair('Ed25519')
      const [supplier, attacker, relay, receiver] = [await start(supplierKey), await start(attackerKey), await start(), await start()] as [
        GcnNode,
        GcnNode,
        GcnNode,
        GcnNode
      ]
      for (const n of [relay, receiver]) {
        n.libp2p.services.pubsub.topicValidators.set(CAPACITY_TOPIC, capacityTopicValidator())
        n.libp2p.services.pubsub.subscribe(CAPACITY_TOPIC)
      }
      const received: string[] = []
      receiver.libp2p.services.pubsub.addEventListener('message', evt => {
        if (evt.detail.topic === CAPACITY_TOPIC)
          received.push(CapacityAdvertCodec.decode(AdvertEnvelopeCodec.decode(evt.detail.data).payload).peerId)
      })
      await supplier.libp2p.dial(relay.libp2p.getMultiaddrs()[0]!)
      await attacker.libp2p.dial(relay.libp2p.getMultiaddrs()[0]!)
      await attacker.libp2p.dial(receiver.libp2p.getMultiaddrs()[0]!)
      await relay.libp2p.dial(receiver.libp2p.getMultiaddrs()[0]!)
      const subscribed = (n: GcnNode, peers: GcnNode[]) => () =>
        peers.every(p => n.libp2p.services.pubsub.getSubscribers(CAPACITY_TOPIC).some(s => s.equals(p.peerId)))
      await until('the publishers to see the relay and the receiver subscribed', () =>
        [subscribed(supplier, [relay]), subscribed(attacker, [relay, receiver]), subscribed(relay, [receiver])].every(f => f())
      )
      await until('the relay and the receiver to mesh', () =>
        scoring(relay).getMeshPeers(CAPACITY_TOPIC).includes(receiver.peerId.toString())
      )

      // Honest gossip flows through the relay before the attack.
      await supplier.libp2p.services.pubsub.publish(CAPACITY_TOPIC, await advertBytes(supplierKey))
      await until('the supplier advert to reach the receiver', () => received.includes(supplier.peerId.toString()))

      // The attack: garbage and forgeries (Rejected), a few stale adverts (Ignored).
      const attackerPubsub = attacker.libp2p.services.pubsub
      for (let i = 0; i < 12; i++) await attackerPubsub.publish(CAPACITY_TOPIC, Uint8Array.from([i, 1, 2, 3]))
      for (let i = 0; i < 4; i++) await attackerPubsub.publish(CAPACITY_TOPIC, await advertBytes(supplierKey, { seq: i }, attackerKey))
      for (let i = 0; i < 4; i++) await attackerPubsub.publish(CAPACITY_TOPIC, await advertBytes(attackerKey, { timestampMs: 1 }))

      const { graylistThreshold } = GOSSIP_SCORING.thresholds
      const score = (n: GcnNode, of: GcnNode) => scoring(n).getScore(of.peerId.toString())
      await until(
        'the receiver and the relay to graylist the attacker',
        () => score(receiver, attacker) < graylistThreshold && score(relay, attacker) < graylistThreshold
      )
      // Nobody else lost anything: the relay relayed nothing invalid.
      expect(score(receiver, relay)).to.equal(0)
      expect(score(relay, supplier)).to.equal(0)
      expect(received.filter(p => p !== supplier.peerId.toString())).to.deep.equal([])
      // Pruned from the receiver's mesh (at its next heartbeat, 1 s).
      await until(
        'the receiver to prune the attacker',
        () => !scoring(receiver).getMeshPeers(CAPACITY_TOPIC).includes(attacker.peerId.toString())
      )

      // Past the 1 s in which gossipsub accepts a well-scored peer's RPCs without re-scoring it.
      await sleep(1_200)
      await attackerPubsub.publish(CAPACITY_TOPIC, await advertBytes(attackerKey))
      await supplier.libp2p.services.pubsub.publish(CAPACITY_TOPIC, await advertBytes(supplierKey))
      await until(
        'the second supplier advert to reach the receiver',
        () => received.filter(p => p === supplier.peerId.toString()).length === 2
      )
      await sleep(1_000)
      expect(received, 'the attacker’s valid advert must not be accepted').not.to.include(attacker.peerId.toString())
      expect(score(receiver, attacker)).to.be.below(graylistThreshold)
    })

    it('an honest publisher keeps a zero score on the gcn topics', async () => {
      const supplierKey = await generateKeyPair('Ed25519')
      const [supplier, receiver] = [await start(supplierKey), await start()] as [GcnNode, GcnNode]
      receiver.libp2p.services.pubsub.topicValidators.set(CAPACITY_TOPIC, capacityTopicValidator())
      receiver.libp2p.services.pubsub.subscribe(CAPACITY_TOPIC)
      let received = 0
      receiver.libp2p.services.pubsub.addEventListener('message', () => received++)
      await supplier.libp2p.dial(receiver.libp2p.getMultiaddrs()[0]!)
      await until('the supplier to see the receiver subscribed', () =>
        supplier.libp2p.services.pubsub.getSubscribers(CAPACITY_TOPIC).some(p => p.equals(receiver.peerId))
      )
      for (let i = 0; i < 20; i++) await supplier.libp2p.services.pubsub.publish(CAPACITY_TOPIC, await advertBytes(supplierKey, { seq: i }))
      await until('20 adverts', () => received === 20)
      expect(scoring(receiver).getScore(supplier.peerId.toString())).to.equal(0)
    })
  })
})
