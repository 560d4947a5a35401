import { join } from 'node:path'
import { Proc, ROOT } from './procs.js'

const PEER_SCRIPT = join(ROOT, 'test', 'dist', 'helpers', 'peer.js')

/** Drives a test/helpers/peer.ts process. */
export class TestPeer {
  readonly proc: Proc
  peerId = ''
  addrs: string[] = []
  private nextId = 1

  constructor(role: string, bootstrap: string[]) {
    this.proc = new Proc(process.execPath, [PEER_SCRIPT, role, ...bootstrap])
  }

  async ready(): Promise<this> {
    const m = await this.proc.waitForLine(/^\{"event":"ready".*\}$/)
    const info = JSON.parse(m[0]) as { peerId: string; addrs: string[] }
    this.peerId = info.peerId
    this.addrs = info.addrs
    return this
  }

  async call<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 20_000): Promise<T> {
    const id = this.nextId++
    this.proc.child.stdin!.write(`${JSON.stringify({ id, cmd, ...args })}\n`)
    const m = await this.proc.waitForLine(new RegExp(`^\\{"id":${id},.*\\}$`), timeoutMs)
    const reply = JSON.parse(m[0]) as { result?: T; error?: string }
    if (reply.error !== undefined) throw new Error(`${cmd} failed: ${reply.error}`)
    return reply.result as T
  }

  messages(topic: string): string[] {
    return this.proc.lines
      .filter(l => l.startsWith('{"event":"message"'))
      .map(l => JSON.parse(l) as { topic: string; data: string })
      .filter(m => m.topic === topic)
      .map(m => m.data)
  }
}
