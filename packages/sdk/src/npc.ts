/**
 * A non-player character with a persona and a rolling conversation memory
 * that fits a token budget.
 */
import { type ChatMessage, type ChatRequest, type ChatResult, ChatStream, type GcnClient, type RequestOptions } from './client.js'
import { AbortedError } from './errors.js'

/**
 * Rough token count used for the memory budget: `ceil(characters / 4)`.
 * English text averages about four characters per token; other scripts and
 * chat-template overhead (a few tokens per message) are not counted, so leave
 * headroom in `maxContextTokens`.
 *
 * @example
 * ```ts
 * estimateTokens('Hello there!') // 3
 * ```
 */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4)
}

/**
 * Options of {@link Npc}.
 *
 * @example
 * ```ts
 * const options: NpcOptions = { persona: 'You are Brom, a grumpy dwarf smith.', maxContextTokens: 1024 }
 * ```
 */
export interface NpcOptions {
  /** The system message; always sent, never dropped from memory. */
  persona: string
  /** Defaults to the client's `defaultModel`. */
  model?: string
  /**
   * Token budget of the whole exchange (persona + remembered turns + the new
   * line + `maxReplyTokens`), estimated with {@link estimateTokens}. Default 2048.
   */
  maxContextTokens?: number
  /** Sent as `max_tokens` and reserved in the budget. Default 256. */
  maxReplyTokens?: number
  /** Sent as `X-GCN-Session` so the NPC stays on one supplier (prompt-cache reuse). Default: random. */
  sessionId?: string
  /** Other sampling fields sent with every reply, e.g. `temperature`. */
  params?: Omit<ChatRequest, 'messages' | 'model' | 'max_tokens'>
}

interface Turn {
  player: string
  npc: string
}

const DEFAULT_MAX_CONTEXT_TOKENS = 2048
const DEFAULT_MAX_REPLY_TOKENS = 256

/**
 * An NPC that remembers the conversation. Each `say` sends the persona, as
 * many of the most recent turns as fit the budget, and the player's line; when
 * the reply completes, both lines are remembered. A failed or aborted reply
 * leaves the memory unchanged. Calls to `say` are answered one after another
 * so each reply sees the previous turn.
 *
 * @example
 * ```ts
 * const brom = new Npc(client, { persona: 'You are Brom, a grumpy dwarf smith. Answer in one sentence.' })
 * for await (const { text } of brom.say('Can you fix my sword?')) bubble.append(text)
 * ```
 */
export class Npc {
  /** The persona (system message). */
  readonly persona: string
  /** The `X-GCN-Session` sent with every reply. */
  readonly sessionId: string
  readonly #client: GcnClient
  readonly #model: string | undefined
  readonly #maxContextTokens: number
  readonly #maxReplyTokens: number
  readonly #params: NpcOptions['params']
  #turns: Turn[] = []
  /** Bumped by reset() so a reply still in flight is not remembered afterwards. */
  #epoch = 0
  /** Settles when the previous reply has. */
  #tail: Promise<unknown> = Promise.resolve()

  constructor(client: GcnClient, options: NpcOptions) {
    if (typeof options?.persona !== 'string' || options.persona.trim() === '') throw new TypeError('Npc: persona is required')
    const maxContextTokens = options.maxContextTokens ?? DEFAULT_MAX_CONTEXT_TOKENS
    const maxReplyTokens = options.maxReplyTokens ?? DEFAULT_MAX_REPLY_TOKENS
    if (!Number.isInteger(maxReplyTokens) || maxReplyTokens < 1) throw new RangeError('Npc: maxReplyTokens must be a positive integer')
    if (!Number.isInteger(maxContextTokens) || maxContextTokens <= maxReplyTokens) {
      throw new RangeError('Npc: maxContextTokens must be an integer greater than maxReplyTokens')
    }
    this.#client = client
    this.persona = options.persona
    this.#model = options.model
    this.#maxContextTokens = maxContextTokens
    this.#maxReplyTokens = maxReplyTokens
    this.#params = options.params
    this.sessionId = options.sessionId ?? randomSessionId()
  }

  /**
   * The remembered turns, oldest first, as user/assistant messages (the
   * persona is not included).
   *
   * @example
   * ```ts
   * saveGame({ brom: brom.history })
   * ```
   */
  get history(): ChatMessage[] {
    return this.#turns.flatMap(t => [
      { role: 'user' as const, content: t.player },
      { role: 'assistant' as const, content: t.npc }
    ])
  }

  /**
   * Forgets every turn (the persona stays). A reply in flight is not remembered.
   *
   * @example
   * ```ts
   * brom.reset() // the player left the forge
   * ```
   */
  reset(): void {
    this.#turns = []
    this.#epoch++
  }

  /**
   * Streams the NPC's answer to `playerLine`; the turn is remembered when
   * `done` resolves (before your `await` of it resumes).
   *
   * @example
   * ```ts
   * const reply = brom.say('How much for a new blade?', { signal })
   * for await (const { text } of reply) bubble.append(text)
   * ```
   */
  say(playerLine: string, options: RequestOptions = {}): ChatStream {
    const previous = this.#tail
    const epoch = this.#epoch
    const stream = new ChatStream(
      async (emit, signal) => {
        await settledOrAborted(previous, signal)
        const request: ChatRequest = {
          ...this.#params,
          messages: this.#messagesFor(playerLine),
          max_tokens: this.#maxReplyTokens
        }
        if (this.#model !== undefined) request.model = this.#model
        const inner = this.#client.chat(request, { ...options, signal, sessionId: options.sessionId ?? this.sessionId })
        for await (const delta of inner) emit(delta)
        const result: ChatResult = await inner.done
        if (epoch === this.#epoch) this.#remember({ player: playerLine, npc: result.text })
        return result
      },
      options.signal === undefined ? {} : { signal: options.signal }
    )
    this.#tail = stream.done.catch(() => {})
    return stream
  }

  /** Tokens available for persona + turns + player line. */
  get #promptBudget(): number {
    return this.#maxContextTokens - this.#maxReplyTokens
  }

  /** Persona, the newest turns that fit with `playerLine`, then `playerLine`. */
  #messagesFor(playerLine: string): ChatMessage[] {
    const fixed = estimateTokens(this.persona) + estimateTokens(playerLine)
    const turns = this.#newestTurnsWithin(this.#promptBudget - fixed)
    // If persona + line alone exceed the budget they are still sent: the
    // estimate is rough and the gateway is the one that enforces the limit.
    return [
      { role: 'system', content: this.persona },
      ...turns.flatMap(t => [
        { role: 'user' as const, content: t.player },
        { role: 'assistant' as const, content: t.npc }
      ]),
      { role: 'user', content: playerLine }
    ]
  }

  #remember(turn: Turn): void {
    this.#turns.push(turn)
    // Keep only what a future prompt could use, so memory stays bounded.
    this.#turns = this.#newestTurnsWithin(this.#promptBudget - estimateTokens(this.persona))
  }

  /** The most recent whole turns whose estimated size fits `budget`. */
  #newestTurnsWithin(budget: number): Turn[] {
    let used = 0
    let first = this.#turns.length
    while (first > 0) {
      const t = this.#turns[first - 1]!
      const cost = estimateTokens(t.player) + estimateTokens(t.npc)
      if (used + cost > budget) break
      used += cost
      first--
    }
    return this.#turns.slice(first)
  }
}

/** Resolves once `previous` settled (either way); rejects with AbortedError if `signal` fires first. */
function settledOrAborted(previous: Promise<unknown>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const abort = () => reject(new AbortedError('request aborted', { cause: signal.reason }))
    if (signal.aborted) {
      abort()
      return
    }
    signal.addEventListener('abort', abort, { once: true })
    const done = () => {
      signal.removeEventListener('abort', abort)
      resolve()
    }
    previous.then(done, done)
  })
}

function randomSessionId(): string {
  const bytes = new Uint8Array(16)
  const crypto = globalThis.crypto
  // getRandomValues works in insecure browser contexts too (randomUUID does not).
  if (crypto !== undefined && typeof crypto.getRandomValues === 'function') crypto.getRandomValues(bytes)
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256)
  let hex = ''
  for (const b of bytes) hex += b.toString(16).padStart(2, '0')
  return `npc-${hex}`
}
