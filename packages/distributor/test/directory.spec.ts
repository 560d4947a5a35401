import {
  ADVERT_PROTOCOL,
  AdvertEnvelopeCodec,
  CAPACITY_TOPIC,
  type CapacityAdvert,
  CapacityAdvertCodec,
  createFramedStream,
  createGcnNode,
  type GcnNode,
  InvalidMessageError,
  InvalidSignatureError,
  MessageTooLargeError,
  plainBytes,
  type SignedEnvelope,
  signEnvelope,
  silentLogger
} from '@gcn/core'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'chai'
import { SupplierDirectory } from '../src/directory.js'

const MODEL_A = 'aa'.repeat(32)
const MODEL_B = 'bb'.repeat(32)
const REWARD = `0x${'12'.repeat(20)}`

/**
 * verify/ingest/suppliers/models/recordResult never touch the libp2p node
 * (only start/stop/query/discover do), so the unit tests give the directory
 * no node at all: a call that needed one would fail loudly.
 */
const NO_NODE = undefined as unknown as GcnNode

function unitDirectory(init: ConstructorParameters<typeof SupplierDirectory>[0] = {}): SupplierDirectory {
  return new SupplierDirectory(init, { node: NO_NODE, logger: silentLogger })
}

interface AdvertOptions {
  /** Key that signs the envelope (default: the advertised peer's own key). */
  signer?: PrivateKey
  payloadType?: string
  overrides?: Partial<CapacityAdvert>
}

function advertFor(key: PrivateKey, overrides: Partial<CapacityAdvert> = {}): CapacityAdvert {
  return {
    peerId: peerIdFromPrivateKey(key).toString(),
    multiaddrs: [plainBytes(multiaddr('/ip4/127.0.0.1/tcp/4001').bytes)],
    models: [{ id: MODEL_A, name: 'tiny-a', contextSize: 2048, pricePer1kTokens: 100n }],
    freeSlots: 2,
    totalSlots: 2,
    queueDepth: 0,
    tokensPerSecond: 50,
    ttftMs: 40,
    rewardAddress: REWARD,
    timestampMs: Date.now(),
    seq: 1,
    ...overrides
  }
}

async function signedAdvert(key: PrivateKey, options: AdvertOptions = {}): Promise<SignedEnvelope> {
  const payload = CapacityAdvertCodec.encode(advertFor(key, options.overrides))
  return signEnvelope(options.signer ?? key, options.payloadType ?? CAPACITY_TOPIC, payload)
}

async function advertBytes(key: PrivateKey, options: AdvertOptions = {}): Promise<Uint8Array> {
  return AdvertEnvelopeCodec.encode(await signedAdvert(key, options))
}

// Minimal protobuf writer, to build messages the checked codecs refuse to encode.
function varint(n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return out
}
function lenField(field: number, value: Uint8Array | string): number[] {
  const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value
  return [...varint((field << 3) | 2), ...varint(bytes.byteLength), ...bytes]
}
function varintField(field: number, value: number): number[] {
  return [...varint(field << 3), ...varint(value)]
}

async function expectRejected(promise: Promise<unknown>, errorType?: abstract new (...args: never[]) => Error): Promise<Error> {
  let caught: unknown
  try {
    await promise
  } catch (err) {
    caught = err
  }
  expect(caught, 'expected a rejection').to.be.instanceOf(Error)
  if (errorType !== undefined) expect(caught).to.be.instanceOf(errorType)
  return caught as Error
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

describe('SupplierDirectory', function () {
  this.timeout(30_000)

  let alice: PrivateKey
  let bob: PrivateKey
  let mallory: PrivateKey

  before(async () => {
    alice = await generateKeyPair('Ed25519')
    bob = await generateKeyPair('Ed25519')
    mallory = await generateKeyPair('Ed25519')
  })

  describe('verify and ingest', () => {
    it('accepts a valid signed advert and lists it by models() and suppliers(modelId)', async () => {
      const dir = unitDirectory()
      let changes = 0
      dir.onChange(() => changes++)
      const verified = await dir.verify(await advertBytes(alice))
      expect(verified.peerId).to.equal(peerIdFromPrivateKey(alice).toString())
      expect(verified.signer.toString()).to.equal(verified.peerId)
      expect(dir.suppliers(), 'verify alone stores nothing').to.have.length(0)

      const entry = await dir.ingest(await advertBytes(alice))
      expect(entry.peerId.toString()).to.equal(peerIdFromPrivateKey(alice).toString())
      expect(entry.publicKey.equals(alice.publicKey)).to.equal(true)
      expect(entry.addrs.map(a => a.toString())).to.deep.equal(['/ip4/127.0.0.1/tcp/4001'])
      expect(entry.outstanding).to.equal(0)
      expect(entry.advert.models[0]!.id).to.equal(MODEL_A)
      expect(changes).to.equal(1)

      expect(dir.suppliers().map(e => e.peerId.toString())).to.deep.equal([entry.peerId.toString()])
      expect(dir.suppliers(MODEL_A)).to.have.length(1)
      expect(dir.suppliers(MODEL_B)).to.have.length(0)
      expect(dir.get(entry.peerId.toString())).to.equal(entry)
      expect(dir.models()).to.deep.equal([{ id: MODEL_A, name: 'tiny-a', contextSize: 2048, pricePer1kTokens: 100n, suppliers: 1 }])
    })

    it('accepts a SignedEnvelope object as well as its bytes', async () => {
      const dir = unitDirectory()
      const entry = await dir.ingest(await signedAdvert(alice))
      expect(entry.peerId.toString()).to.equal(peerIdFromPrivateKey(alice).toString())
      expect(dir.suppliers()).to.have.length(1)
    })

    it('merges models across suppliers: one entry per id, cheapest price, supplier count, sorted by name', async () => {
      const dir = unitDirectory()
      await dir.ingest(await advertBytes(alice))
      await dir.ingest(
        await advertBytes(bob, {
          overrides: {
            models: [
              { id: MODEL_A, name: 'tiny-a', contextSize: 2048, pricePer1kTokens: 60n },
              { id: MODEL_B, name: 'a-first-by-name', contextSize: 4096, pricePer1kTokens: 7n }
            ]
          }
        })
      )
      expect(dir.models()).to.deep.equal([
        { id: MODEL_B, name: 'a-first-by-name', contextSize: 4096, pricePer1kTokens: 7n, suppliers: 1 },
        { id: MODEL_A, name: 'tiny-a', contextSize: 2048, pricePer1kTokens: 60n, suppliers: 2 }
      ])
      expect(dir.suppliers(MODEL_A)).to.have.length(2)
      expect(dir.suppliers(MODEL_B).map(e => e.peerId.toString())).to.deep.equal([peerIdFromPrivateKey(bob).toString()])
    })

    it('rejects garbage bytes', async () => {
      const dir = unitDirectory()
      await expectRejected(dir.verify(new Uint8Array(0)), InvalidMessageError)
      await expectRejected(dir.verify(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f])), InvalidMessageError)
      await expectRejected(dir.ingest(crypto.getRandomValues(new Uint8Array(300))))
      await expectRejected(dir.verify(new Uint8Array(20 * 1024)), MessageTooLargeError)
      expect(dir.suppliers()).to.have.length(0)
    })

    it('rejects unsigned adverts: a bare advert, a missing signature and a zeroed one', async () => {
      const dir = unitDirectory()
      const envelope = await signedAdvert(alice)
      // The advert payload published without any envelope.
      await expectRejected(dir.ingest(CapacityAdvertCodec.encode(advertFor(alice))), InvalidMessageError)
      // An envelope without its signature field (the checked codec would refuse to encode it).
      const noSignature = Uint8Array.from([
        ...lenField(1, CAPACITY_TOPIC),
        ...lenField(2, envelope.payload),
        ...lenField(3, envelope.publicKey)
      ])
      await expectRejected(dir.ingest(noSignature), InvalidMessageError)
      // A signature of the right length that signs nothing.
      const zeroed = AdvertEnvelopeCodec.encode({ ...envelope, signature: plainBytes(new Uint8Array(64)) })
      await expectRejected(dir.ingest(zeroed), InvalidSignatureError)
      expect(dir.suppliers()).to.have.length(0)
    })

    it('rejects a forged advert: signed by another key than the peer it names', async () => {
      const dir = unitDirectory()
      // Mallory signs (validly, with her own key) an advert claiming to be Alice.
      const forged = await advertBytes(alice, { signer: mallory })
      const err = await expectRejected(dir.ingest(forged))
      expect(err.message).to.match(/another peer/)
      // Mallory swaps in Alice's public key: now the signature no longer verifies.
      const envelope = await signedAdvert(alice, { signer: mallory })
      const { publicKeyToProtobuf } = await import('@libp2p/crypto/keys')
      const swapped = AdvertEnvelopeCodec.encode({ ...envelope, publicKey: plainBytes(publicKeyToProtobuf(alice.publicKey)) })
      await expectRejected(dir.ingest(swapped), InvalidSignatureError)
      expect(dir.suppliers()).to.have.length(0)
      expect(dir.get(peerIdFromPrivateKey(alice).toString())).to.equal(undefined)
    })

    it('rejects a payload altered after signing', async () => {
      const dir = unitDirectory()
      const envelope = await signedAdvert(alice)
      // Same advert, cheaper price: a well-formed payload that was not the one signed.
      const tampered = CapacityAdvertCodec.encode({
        ...CapacityAdvertCodec.decode(envelope.payload),
        models: [{ id: MODEL_A, name: 'tiny-a', contextSize: 2048, pricePer1kTokens: 1n }]
      })
      await expectRejected(dir.ingest(AdvertEnvelopeCodec.encode({ ...envelope, payload: plainBytes(tampered) })), InvalidSignatureError)
      // A single flipped bit anywhere in the payload.
      const flipped = Uint8Array.from(envelope.payload)
      flipped[flipped.length - 1]! ^= 0x01
      await expectRejected(dir.ingest(AdvertEnvelopeCodec.encode({ ...envelope, payload: plainBytes(flipped) })), InvalidSignatureError)
      expect(dir.suppliers()).to.have.length(0)
    })

    it('rejects stale adverts: older than maxAdvertAgeMs or as far in the future', async () => {
      const dir = unitDirectory({ maxAdvertAgeMs: 5_000 })
      const now = Date.now()
      const old = await dir.ingest(await advertBytes(alice, { overrides: { timestampMs: now - 6_000 } })).catch(e => e as Error)
      expect(old).to.be.instanceOf(Error)
      expect((old as Error).message).to.match(/stale/)
      const future = await dir.ingest(await advertBytes(alice, { overrides: { timestampMs: now + 6_000 } })).catch(e => e as Error)
      expect(future).to.be.instanceOf(Error)
      expect((future as Error).message).to.match(/stale/)
      expect(dir.suppliers()).to.have.length(0)
      // Within the window either way is fine (clock skew).
      await dir.ingest(await advertBytes(alice, { overrides: { timestampMs: now - 3_000, seq: 1 } }))
      await dir.ingest(await advertBytes(bob, { overrides: { timestampMs: now + 3_000, seq: 1 } }))
      expect(dir.suppliers()).to.have.length(2)
    })

    it('rejects a replayed advert (seq lower than the last accepted) and keeps the newer one', async () => {
      const dir = unitDirectory()
      const older = await advertBytes(alice, { overrides: { seq: 10, freeSlots: 2 } })
      const newer = await advertBytes(alice, { overrides: { seq: 11, freeSlots: 0 } })
      await dir.ingest(older)
      const entry = await dir.ingest(newer)
      expect(entry.advert.seq).to.equal(11)
      const err = await expectRejected(dir.ingest(older))
      expect(err.message).to.match(/replay/)
      await expectRejected(dir.verify(older))
      expect(dir.suppliers()).to.have.length(1)
      expect(dir.suppliers()[0]!.advert.seq).to.equal(11)
      expect(dir.suppliers()[0]!.advert.freeSlots).to.equal(0)
    })

    it('re-receiving the last advert (same seq) only refreshes lastSeenMs', async () => {
      const dir = unitDirectory()
      let changes = 0
      dir.onChange(() => changes++)
      const bytes = await advertBytes(alice, { overrides: { seq: 5 } })
      const first = await dir.ingest(bytes)
      const seenAt = first.lastSeenMs
      await sleep(5)
      const again = await dir.ingest(bytes)
      expect(again).to.equal(first)
      expect(again.lastSeenMs).to.be.greaterThan(seenAt)
      expect(changes).to.equal(1)
    })

    it('does not let concurrent ingests of an older and a newer advert roll the entry back', async () => {
      // Two adverts of one supplier arriving together (gossip delivers each
      // message to ingest() without awaiting the previous one). Whatever the
      // order their signature checks finish in, the newest seq must win and
      // the older one must stay rejectable as a replay.
      const dir = unitDirectory()
      const older = await advertBytes(alice, { overrides: { seq: 20, freeSlots: 2 } })
      const newer = await advertBytes(alice, { overrides: { seq: 21, freeSlots: 0 } })
      await Promise.allSettled([dir.ingest(newer), dir.ingest(older)])
      const entry = dir.get(peerIdFromPrivateKey(alice).toString())
      expect(entry?.advert.seq, 'the newest advert must be kept').to.equal(21)
      await expectRejected(dir.ingest(older))
    })

    it('rejects malformed advert payloads even when properly signed', async () => {
      const dir = unitDirectory()
      const sign = async (payload: Uint8Array): Promise<Uint8Array> =>
        AdvertEnvelopeCodec.encode(await signEnvelope(alice, CAPACITY_TOPIC, payload))
      // Not protobuf at all.
      await expectRejected(dir.ingest(await sign(Uint8Array.from([0xff, 0xff, 0xff]))), InvalidMessageError)
      // A valid advert cut short.
      const full = CapacityAdvertCodec.encode(advertFor(alice))
      await expectRejected(dir.ingest(await sign(full.subarray(0, full.length - 3))), InvalidMessageError)
      // Well-formed protobuf that fails the schema: no PeerId, no models, zero slots.
      await expectRejected(
        dir.ingest(await sign(Uint8Array.from([...lenField(1, 'not-a-peer-id'), ...varintField(4, 1)]))),
        InvalidMessageError
      )
      // Right peer id, but freeSlots above totalSlots.
      const overFull = Uint8Array.from([
        ...lenField(1, peerIdFromPrivateKey(alice).toString()),
        ...varintField(4, 9),
        ...varintField(5, 2),
        ...lenField(9, REWARD),
        ...varintField(10, Date.now()),
        ...varintField(11, 1)
      ])
      const err = await expectRejected(dir.ingest(await sign(overFull)), InvalidMessageError)
      expect(err.message).to.match(/freeSlots/)
      expect(dir.suppliers()).to.have.length(0)
    })

    it('rejects an envelope of the wrong payload type', async () => {
      const dir = unitDirectory()
      // Signed correctly, but for another kind of message.
      await expectRejected(dir.ingest(await advertBytes(alice, { payloadType: '/gcn/receipt/1' })), InvalidMessageError)
      // Signed for another kind of message, then relabelled as an advert.
      const other = await signedAdvert(alice, { payloadType: '/gcn/receipt/1' })
      await expectRejected(dir.ingest(AdvertEnvelopeCodec.encode({ ...other, payloadType: CAPACITY_TOPIC })), InvalidSignatureError)
      expect(dir.suppliers()).to.have.length(0)
    })

    it('rejected adverts leave an existing entry untouched and fire no change', async () => {
      const dir = unitDirectory()
      await dir.ingest(await advertBytes(alice, { overrides: { seq: 3 } }))
      let changes = 0
      dir.onChange(() => changes++)
      await expectRejected(dir.ingest(await advertBytes(alice, { signer: mallory, overrides: { seq: 4, freeSlots: 0 } })))
      await expectRejected(dir.ingest(await advertBytes(alice, { overrides: { seq: 2 } })))
      expect(changes).to.equal(0)
      expect(dir.suppliers()[0]!.advert.seq).to.equal(3)
      expect(dir.suppliers()[0]!.advert.freeSlots).to.equal(2)
    })
  })

  describe('expiry', () => {
    it('drops an entry not refreshed for expireAfterMs', async () => {
      const dir = unitDirectory({ expireAfterMs: 300 })
      await dir.ingest(await advertBytes(alice, { overrides: { seq: 1 } }))
      await dir.ingest(await advertBytes(bob, { overrides: { seq: 1 } }))
      await sleep(160)
      // Alice refreshes, Bob goes quiet.
      await dir.ingest(await advertBytes(alice, { overrides: { seq: 2 } }))
      await sleep(160)
      expect(dir.suppliers().map(e => e.peerId.toString())).to.deep.equal([peerIdFromPrivateKey(alice).toString()])
      await sleep(200)
      expect(dir.suppliers()).to.have.length(0)
      expect(dir.models()).to.deep.equal([])
      expect(dir.get(peerIdFromPrivateKey(alice).toString())).to.equal(undefined)
    })

    it('keeps a quiet supplier while tasks are outstanding on it', async () => {
      const dir = unitDirectory({ expireAfterMs: 50 })
      const entry = await dir.ingest(await advertBytes(alice))
      entry.outstanding = 1
      await sleep(100)
      expect(dir.suppliers()).to.have.length(1)
      entry.outstanding = 0
      expect(dir.suppliers()).to.have.length(0)
    })

    it('still refuses replays of an expired supplier', async () => {
      const dir = unitDirectory({ expireAfterMs: 50 })
      const older = await advertBytes(alice, { overrides: { seq: 7 } })
      await dir.ingest(await advertBytes(alice, { overrides: { seq: 8 } }))
      await sleep(100)
      expect(dir.suppliers()).to.have.length(0)
      await expectRejected(dir.ingest(older))
      expect(dir.suppliers()).to.have.length(0)
    })
  })

  describe('recordResult', () => {
    it('keeps EWMAs of measured TTFT and speed plus success and failure counts', async () => {
      const dir = unitDirectory({ ewmaAlpha: 0.5 })
      const entry = await dir.ingest(await advertBytes(alice))
      const peer = entry.peerId.toString()
      dir.recordResult(peer, { ok: true, ttftMs: 100, tokensPerSecond: 10 })
      expect(entry.ewmaTtftMs).to.equal(100)
      expect(entry.ewmaTokensPerSecond).to.equal(10)
      dir.recordResult(peer, { ok: true, ttftMs: 200, tokensPerSecond: 30 })
      expect(entry.ewmaTtftMs).to.equal(150)
      expect(entry.ewmaTokensPerSecond).to.equal(20)
      dir.recordResult(peer, { ok: false })
      dir.recordResult(peer, { ok: true, tokensPerSecond: Number.POSITIVE_INFINITY })
      expect(entry.ewmaTtftMs).to.equal(150)
      expect(entry.ewmaTokensPerSecond).to.equal(20)
      expect(entry.successes).to.equal(3)
      expect(entry.failures).to.equal(1)
      // Unknown peers are ignored.
      dir.recordResult(peerIdFromPrivateKey(bob).toString(), { ok: false })
    })

    it('believes the advertised slots until a refusal, then what the supplier ran; grows back by one per window after the hold', async () => {
      const dir = unitDirectory({ refusalHoldMs: 50 })
      const entry = await dir.ingest(await advertBytes(alice, { overrides: { totalSlots: 32, freeSlots: 32 } }))
      const peer = entry.peerId.toString()
      expect(dir.slotsOf(entry)).to.equal(32)
      expect(dir.refusedRecently(entry)).to.equal(false)
      // It claimed 32 slots but refused a task while running 2 of ours.
      dir.recordRefusal(peer, 2)
      expect(dir.slotsOf(entry)).to.equal(2)
      expect(entry.refusals).to.equal(1)
      expect(dir.refusedRecently(entry)).to.equal(true)
      // No growth during the hold.
      for (let i = 0; i < 10; i++) dir.recordResult(peer, { ok: true })
      expect(dir.slotsOf(entry)).to.equal(2)
      await until(() => !dir.refusedRecently(entry), 'the hold to pass')
      // +1 per `capacity` accepted tasks: 2 tasks → 3, 3 more → 4.
      dir.recordResult(peer, { ok: true })
      expect(dir.slotsOf(entry)).to.equal(2)
      dir.recordResult(peer, { ok: true })
      expect(dir.slotsOf(entry)).to.equal(3)
      for (let i = 0; i < 3; i++) dir.recordResult(peer, { ok: true })
      expect(dir.slotsOf(entry)).to.equal(4)
      // Failures do not grow it; a refusal with nothing running leaves one slot.
      dir.recordResult(peer, { ok: false })
      dir.recordRefusal(peer, 0)
      expect(dir.slotsOf(entry)).to.equal(1)
    })

    it('never believes more than the advertised slots, and trusts the advert again once grown back to it', async () => {
      const dir = unitDirectory({ refusalHoldMs: 0 })
      const entry = await dir.ingest(await advertBytes(alice, { overrides: { totalSlots: 2, freeSlots: 2 } }))
      const peer = entry.peerId.toString()
      dir.recordRefusal(peer, 5)
      expect(dir.slotsOf(entry)).to.equal(2)
      dir.recordRefusal(peer, 1)
      expect(dir.slotsOf(entry)).to.equal(1)
      dir.recordResult(peer, { ok: true })
      expect(entry.capacity).to.equal(undefined)
      expect(dir.slotsOf(entry)).to.equal(2)
    })
  })

  describe('on a libp2p network', () => {
    const nodes: GcnNode[] = []
    const directories: SupplierDirectory[] = []

    async function startNode(role: 'supplier' | 'distributor', privateKey?: PrivateKey): Promise<GcnNode> {
      const node = await createGcnNode({
        role,
        privateKey: privateKey ?? (await generateKeyPair('Ed25519')),
        profile: 'local',
        listen: ['/ip4/127.0.0.1/tcp/0']
      })
      nodes.push(node)
      await node.start()
      return node
    }

    afterEach(async () => {
      for (const dir of directories.splice(0)) dir.stop()
      await Promise.all(nodes.splice(0).map(n => n.stop()))
    })

    it('its gossip validator rejects invalid adverts, ignores stale and replayed ones, and accepts valid ones', async () => {
      const node = await startNode('distributor')
      const dir = new SupplierDirectory({}, { node, logger: silentLogger })
      directories.push(dir)
      dir.start()
      const validator = node.libp2p.services.pubsub.topicValidators.get(CAPACITY_TOPIC)
      expect(validator, 'start() installs a validator on the capacity topic').to.be.a('function')
      const aliceId = peerIdFromPrivateKey(alice)
      const bobId = peerIdFromPrivateKey(bob)
      const malloryId = peerIdFromPrivateKey(mallory)
      const message = (from: typeof aliceId, data: Uint8Array) =>
        ({
          type: 'signed',
          from,
          topic: CAPACITY_TOPIC,
          data,
          sequenceNumber: 1n,
          signature: new Uint8Array(64),
          key: alice.publicKey
        }) as never
      const check = (relayer: typeof aliceId, author: typeof aliceId, data: Uint8Array) => validator!(relayer, message(author, data))

      const valid = await advertBytes(alice)
      expect(await check(aliceId, aliceId, valid)).to.equal(TopicValidatorResult.Accept)
      // Relayed by Bob, authored by Alice: fine.
      expect(await check(bobId, aliceId, valid)).to.equal(TopicValidatorResult.Accept)
      // Relayed by Bob, authored by Mallory (not the advertised peer): rejected.
      expect(await check(bobId, malloryId, valid)).to.equal(TopicValidatorResult.Reject)
      // Sent directly by Mallory, who re-publishes Alice's advert as its author: rejected too.
      expect(await check(malloryId, malloryId, valid)).to.equal(TopicValidatorResult.Reject)

      for (const bad of [
        new Uint8Array([1, 2, 3]),
        await advertBytes(alice, { signer: mallory }),
        await advertBytes(alice, { payloadType: '/gcn/other/1' })
      ]) {
        expect(await check(aliceId, aliceId, bad)).to.equal(TopicValidatorResult.Reject)
      }
      // Stale depends on the receiver's clock: dropped without penalising whoever relayed it.
      const stale = await advertBytes(alice, { overrides: { timestampMs: Date.now() - 10 * 60_000 } })
      expect(await check(bobId, aliceId, stale)).to.equal(TopicValidatorResult.Ignore)
      // The validator only checks: nothing was stored.
      expect(dir.suppliers()).to.have.length(0)

      // A replay is ignored once a newer advert was ingested (a relay cannot know the last seq we saw).
      await dir.ingest(await advertBytes(alice, { overrides: { seq: 50 } }))
      expect(await check(aliceId, aliceId, await advertBytes(alice, { overrides: { seq: 49 } }))).to.equal(TopicValidatorResult.Ignore)
    })

    it('learns only the valid one of a forged and a valid advert gossiped on the topic', async () => {
      const distributor = await startNode('distributor')
      const supplierKey = await generateKeyPair('Ed25519')
      const supplier = await startNode('supplier', supplierKey)
      const dir = new SupplierDirectory({}, { node: distributor, logger: silentLogger })
      directories.push(dir)
      dir.start()

      await supplier.libp2p.dial(multiaddr(distributor.multiaddrs[0]!))
      const pubsub = supplier.libp2p.services.pubsub
      await until(
        () => pubsub.getSubscribers(CAPACITY_TOPIC).some(p => p.equals(distributor.peerId)),
        'the supplier to see the distributor subscribed'
      )

      // Forged: the supplier signs an advert that claims to be Alice (another peer).
      const forged = await advertBytes(alice, {
        signer: supplierKey,
        overrides: { models: [{ id: MODEL_B, name: 'forged', contextSize: 1, pricePer1kTokens: 0n }] }
      })
      // Replay bait and garbage for good measure.
      await pubsub.publish(CAPACITY_TOPIC, forged)
      await pubsub.publish(CAPACITY_TOPIC, new Uint8Array([0xde, 0xad, 0xbe, 0xef]))
      const valid = await advertBytes(supplierKey, { overrides: { seq: 1 } })
      await pubsub.publish(CAPACITY_TOPIC, valid)

      await until(() => dir.suppliers().length > 0, 'the directory to learn the valid advert')
      // Give any straggler time to arrive (gossip keeps per-connection order, so it should not).
      await sleep(200)
      expect(dir.suppliers().map(e => e.peerId.toString())).to.deep.equal([supplier.peerId.toString()])
      expect(dir.get(peerIdFromPrivateKey(alice).toString())).to.equal(undefined)
      expect(dir.models().map(m => m.id)).to.deep.equal([MODEL_A])
      // The validator's verdict is reused: the message event records the advert without verifying it again.
      expect(dir.stats).to.deep.equal({ advertsRecorded: 1, advertsVerified: 0 })
    })

    it('query() fetches and verifies a peer advert over /gcn/advert/1.0.0', async () => {
      const distributor = await startNode('distributor')
      const supplierKey = await generateKeyPair('Ed25519')
      const supplier = await startNode('supplier', supplierKey)
      let answer = await signedAdvert(supplierKey, { overrides: { seq: 1 } })
      await supplier.libp2p.handle(ADVERT_PROTOCOL, async stream => {
        const framed = createFramedStream(stream)
        await framed.write(AdvertEnvelopeCodec, answer)
        await framed.close()
      })
      const dir = new SupplierDirectory({}, { node: distributor, logger: silentLogger })
      const addrs = supplier.libp2p.getMultiaddrs()
      const entry = await dir.query(addrs)
      expect(entry.peerId.equals(supplier.peerId)).to.equal(true)
      expect(dir.suppliers()).to.have.length(1)

      // A peer answering with someone else's forged advert is refused.
      answer = await signedAdvert(alice, { signer: supplierKey, overrides: { seq: 2 } })
      await expectRejected(dir.query(addrs))
      expect(dir.suppliers()).to.have.length(1)
      expect(dir.get(peerIdFromPrivateKey(alice).toString())).to.equal(undefined)
    })
  })
})
