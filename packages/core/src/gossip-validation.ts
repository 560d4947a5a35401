import { type Message, type TopicValidatorFn, TopicValidatorResult } from '@libp2p/gossipsub'
import type { PeerId, PublicKey } from '@libp2p/interface'
import { openEnvelope } from './envelope.js'
import { InvalidMessageError } from './errors.js'
import type { Logger } from './logger.js'
import { CAPACITY_TOPIC } from './protocols.js'
import { AdvertEnvelopeCodec, type CapacityAdvert, CapacityAdvertCodec } from './wire.js'

/**
 * Gossipsub topic validation shared by every role that receives or relays a
 * gcn topic. A validator's verdict decides what gossipsub does with a message
 * it sees for the first time (duplicates never reach it: the seen cache drops
 * them first):
 *
 * - Accept: delivered and forwarded.
 * - Reject: dropped, and the peer that sent it to us (the propagation source)
 *   gets an invalid-message delivery, which lowers its score on the scored
 *   gcn topics (see GOSSIP_SCORING in node.ts) until it is graylisted.
 * - Ignore: dropped, nobody penalised.
 *
 * Reject is kept for what no honest relay could have accepted, whatever its
 * clock or state (garbage, bad signatures, forged authors, a sender that has no
 * business on the topic). What depends on the receiver's clock or state
 * (freshness, replays, bans, who is in a registry set) is Ignored, as the Ethereum consensus
 * p2p spec does for slot windows: otherwise an honest relay with another clock
 * or view would be the one penalised.
 */
export { TopicValidatorResult }

export type GossipVerdict<T = undefined> =
  | { result: TopicValidatorResult.Accept; value: T }
  | { result: TopicValidatorResult.Reject | TopicValidatorResult.Ignore; reason: string }

export const gossipAccept = <T>(value: T): GossipVerdict<T> => ({ result: TopicValidatorResult.Accept, value })
export const gossipReject = (reason: string): GossipVerdict<never> => ({ result: TopicValidatorResult.Reject, reason })
export const gossipIgnore = (reason: string): GossipVerdict<never> => ({ result: TopicValidatorResult.Ignore, reason })

export type GossipCheck<T> = (from: PeerId, message: Message) => GossipVerdict<T> | Promise<GossipVerdict<T>>

/**
 * A gossipsub topic validator from a check. A check that throws (a codec or
 * signature error) Rejects the message; drops are logged at debug level.
 */
export function gossipValidator<T>(check: GossipCheck<T>, log?: Logger): TopicValidatorFn {
  return async (from, message) => {
    let verdict: GossipVerdict<T>
    try {
      verdict = await check(from, message)
    } catch (err) {
      verdict = gossipReject(err instanceof Error ? err.message : String(err))
    }
    if (verdict.result !== TopicValidatorResult.Accept) {
      log?.debug(verdict.result === TopicValidatorResult.Reject ? 'gossip message rejected' : 'gossip message ignored', {
        topic: message.topic,
        from: from.toString(),
        reason: verdict.reason
      })
    }
    return verdict.result
  }
}

/** The signed author of a gossip message (gcn nodes sign every message: gossipsub's default StrictSign policy). */
export function gossipAuthor(message: Message): string | undefined {
  return message.type === 'signed' ? message.from.toString() : undefined
}

// ---------------------------------------------------------------------------
// /gcn/capacity/1

export const CAPACITY_GOSSIP_DEFAULTS = Object.freeze({
  /** Adverts older than this, or this far in the future, are stale. */
  maxAdvertAgeMs: 30_000
})

/** A capacity advert whose envelope verified, with the key that signed it. */
export interface VerifiedAdvert extends CapacityAdvert {
  publicKey: PublicKey
  signer: PeerId
}

/**
 * Decodes and checks an advert envelope: size caps and schema (AdvertEnvelopeCodec,
 * CapacityAdvertCodec), payload type and signature (openEnvelope), and that
 * the advert names the peer that signed it. Throws InvalidMessageError,
 * MessageTooLargeError, InvalidKeyError or InvalidSignatureError.
 */
export async function openCapacityAdvert(data: Uint8Array): Promise<VerifiedAdvert> {
  const opened = await openEnvelope(AdvertEnvelopeCodec.decode(data), CAPACITY_TOPIC)
  const advert = CapacityAdvertCodec.decode(opened.payload)
  if (advert.peerId !== opened.signer.toString()) throw new InvalidMessageError('advert signed by another peer than it names')
  return { ...advert, publicKey: opened.publicKey, signer: opened.signer }
}

/** Why an advert is stale (outside ±maxAgeMs of now), or undefined when it is fresh. */
export function advertStaleness(advert: CapacityAdvert, maxAgeMs: number, nowMs = Date.now()): string | undefined {
  const age = nowMs - advert.timestampMs
  return age > maxAgeMs || age < -maxAgeMs ? `stale advert (age ${age} ms)` : undefined
}

export interface CapacityGossipOptions {
  maxAdvertAgeMs?: number
  /** The receiver's own, state-dependent checks (bans, replays): a reason Ignores the advert. */
  admit?: (advert: VerifiedAdvert) => string | undefined
  /** Called with each advert Accepted, before gossipsub delivers its message (so a receiver need not verify it again). */
  onAccept?: (message: Message, advert: VerifiedAdvert) => void
}

/**
 * Checks a gossip message on /gcn/capacity/1: Reject when the envelope or advert
 * is malformed or forged, or when the message's author is not the advertised
 * peer (anyone may relay an advert, only its supplier may publish it, so nobody
 * re-injects someone else's signed advert); Ignore when it is stale or `admit`
 * objects.
 */
export async function checkCapacityGossip(message: Message, options: CapacityGossipOptions = {}): Promise<GossipVerdict<VerifiedAdvert>> {
  const advert = await openCapacityAdvert(message.data)
  if (gossipAuthor(message) !== advert.peerId) return gossipReject('advert published by another peer than it names')
  const excluded = advertStaleness(advert, options.maxAdvertAgeMs ?? CAPACITY_GOSSIP_DEFAULTS.maxAdvertAgeMs) ?? options.admit?.(advert)
  if (excluded !== undefined) return gossipIgnore(excluded)
  options.onAccept?.(message, advert)
  return gossipAccept(advert)
}

/** The validator of /gcn/capacity/1 for every peer that receives or relays it (distributors, bootstraps). */
export function capacityTopicValidator(options: CapacityGossipOptions & { logger?: Logger } = {}): TopicValidatorFn {
  return gossipValidator((_from, message) => checkCapacityGossip(message, options), options.logger)
}

// ---------------------------------------------------------------------------
// Registry topics

/**
 * Checks who a registry-topic message comes from. Only the configured registry
 * peers publish on the registry topics, and only they subscribe to them, so
 * they are the only honest relays too. `claimedPeerId` is the registry peer
 * the message says it is from.
 *
 * - Reject: the message names another peer than its signed author, or a peer
 *   that is not a registry peer sent it (as author or as relay).
 * - Ignore: a registry peer relayed a message from an author we do not know as
 *   a registry peer (their configured sets differ, e.g. during a change of the
 *   set: not that relay's fault).
 */
export function checkRegistryGossipSender(
  from: PeerId,
  message: Message,
  registryPeers: ReadonlySet<string>,
  claimedPeerId: string
): GossipVerdict {
  const author = gossipAuthor(message)
  if (author === undefined) return gossipReject('unsigned message')
  if (claimedPeerId !== author) return gossipReject(`message names registry peer ${claimedPeerId} but was published by ${author}`)
  if (registryPeers.has(author)) return gossipAccept(undefined)
  const relay = from.toString()
  if (relay !== author && registryPeers.has(relay)) return gossipIgnore(`author ${author} is not one of our registry peers`)
  return gossipReject(`${author} is not a registry peer`)
}
