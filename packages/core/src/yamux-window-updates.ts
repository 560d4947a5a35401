import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'

/**
 * @chainsafe/libp2p-yamux 8 answers every data frame it receives with a
 * WINDOW_UPDATE frame: a stream's receive capacity drops below its window
 * with any data, and any shortfall is announced at once. On a task stream
 * that is one extra frame back to the supplier for every chunk of an answer,
 * and each one wakes the supplier's event loop (Noise decrypt, yamux parse)
 * while its model is decoding the next token. The CPU profile of a
 * distributor showed these updates as the largest single cost of its socket
 * writes (353 of 525 ms of TCP write time over 55 answers).
 *
 * Here an update is sent, as hashicorp/yamux (the Go reference) and
 * go-yamux do, only once at least half of the window has been consumed, or
 * when it carries a flag (the ACK of a new stream). The sender can never
 * stall on it: while less than half is consumed, more than half of the
 * window is still open to it. The window growth (doubling when the window
 * is used up within four round trips) is unchanged, decided when an update
 * goes out. Frames on the wire keep their format; only fewer updates are
 * sent, which the protocol allows.
 *
 * Installed once per process, on the class every yamux stream is made from.
 */
export function installYamuxHalfWindowUpdates(): void {
  const proto = YamuxStream.prototype as unknown as PatchedStream
  if (proto[PATCHED] === true) return
  const original = proto.sendWindowUpdate
  if (typeof original !== 'function' || typeof proto.getSendFlags !== 'function') return
  proto[PATCHED] = true
  proto.sendWindowUpdate = function sendWindowUpdate(this: StreamWindow): void {
    // A stream in another state, or one whose fields are not what this version had, keeps the library's behaviour.
    if (this.state === StreamState.Established && typeof this.recvWindow === 'number' && typeof this.recvWindowCapacity === 'number') {
      if (this.recvWindow - this.recvWindowCapacity < this.recvWindow / 2) return
    }
    original.call(this)
  }
}

const PATCHED = Symbol.for('gcn.yamuxHalfWindowUpdates')

interface StreamWindow {
  state: StreamState
  recvWindow: unknown
  recvWindowCapacity: unknown
}

interface PatchedStream {
  [PATCHED]?: boolean
  sendWindowUpdate(this: StreamWindow): void
  getSendFlags?: unknown
}
