import type { MultiaddrConnection, Transport, Upgrader } from '@libp2p/interface'
import { type TCPComponents, type TCPOptions, tcp } from '@libp2p/tcp'
import { Uint8ArrayList } from 'uint8arraylist'

/**
 * @libp2p/tcp with each batch of outgoing bytes written to the socket in one
 * `write`. Its connection writes every part of a queued list on its own
 * (`socket.write` per part), and Noise queues each message as two parts: the
 * 2-byte length, then the ciphertext. With TCP_NODELAY that is two segments
 * and two syscalls per message, and an idle receiver wakes up for the first 2
 * bytes alone (strace of a task: 2 writes per libp2p message). Measured on the
 * 2-core dev VM, a write to a sleeping peer costs 40–90 µs and its wake-up
 * more. Here the parts are joined first (a copy of at most one batch) and
 * written once. A connection class without the expected method is left as it
 * is.
 */
export function tcpWholeWrites(init?: TCPOptions): (components: TCPComponents) => Transport {
  const factory = tcp(init)
  return components =>
    withOverrides(factory(components), {
      dial: (target, ma: Parameters<Transport['dial']>[0], options: Parameters<Transport['dial']>[1]) =>
        target.dial(ma, { ...options, upgrader: wholeWritesUpgrader(options.upgrader) }),
      createListener: (target, options: Parameters<Transport['createListener']>[0]) =>
        target.createListener({ ...options, upgrader: wholeWritesUpgrader(options.upgrader) })
    })
}

const wrapped = new WeakMap<Upgrader, Upgrader>()

function wholeWritesUpgrader(upgrader: Upgrader): Upgrader {
  let proxy = wrapped.get(upgrader)
  if (proxy === undefined) {
    proxy = withOverrides(upgrader, {
      upgradeInbound: (target, maConn: MultiaddrConnection, options: Parameters<Upgrader['upgradeInbound']>[1]) =>
        target.upgradeInbound(writeWhole(maConn), options),
      upgradeOutbound: (target, maConn: MultiaddrConnection, options: Parameters<Upgrader['upgradeOutbound']>[1]) =>
        target.upgradeOutbound(writeWhole(maConn), options)
    })
    wrapped.set(upgrader, proxy)
  }
  return proxy
}

/** `target` with some methods replaced (each gets the target first); everything else is the target's own, bound to it. */
// biome-ignore lint/suspicious/noExplicitAny: each override declares its own parameters
function withOverrides<T extends object>(target: T, overrides: Record<string, (target: T, ...args: any[]) => unknown>): T {
  return new Proxy(target, {
    get(object, prop) {
      const override = typeof prop === 'string' && Object.hasOwn(overrides, prop) ? overrides[prop] : undefined
      if (override !== undefined) return (...args: unknown[]) => override(object, ...args)
      const value = Reflect.get(object, prop, object)
      return typeof value === 'function' ? value.bind(object) : value
    }
  })
}

interface SendsData {
  sendData?: (data: Uint8ArrayList) => unknown
}

/** Makes the connection hand its socket one buffer per batch (see tcpWholeWrites). */
export function writeWhole<T extends object>(maConn: T): T {
  const conn = maConn as T & SendsData
  const send = conn.sendData
  if (typeof send !== 'function') return maConn
  conn.sendData = function (this: unknown, data: Uint8ArrayList) {
    // Anything but a list of parts (another copy of uint8arraylist counts) goes through as it came.
    if (typeof (data as { subarray?: unknown })?.subarray !== 'function' || typeof data[Symbol.iterator] !== 'function') {
      return send.call(this, data)
    }
    let parts = 0
    for (const _ of data) if (++parts > 1) break
    return send.call(this, parts > 1 ? new Uint8ArrayList(data.subarray()) : data)
  }
  return maConn
}
