import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { TestPeer } from './helpers/peer-client.js'
import { gcn, killAll, type Proc, waitFor } from './helpers/procs.js'

async function startBootstrap(keyFile: string): Promise<{ proc: Proc; peerId: string; addr: string }> {
  const proc = gcn(['bootstrap', '--profile', 'local', '--listen', '/ip4/127.0.0.1/tcp/0', '--key-file', keyFile, '--log-level', 'warn'])
  const [, peerId] = (await proc.waitForLine(/^peer id: (\S+)/)) as RegExpMatchArray
  const [addr] = (await proc.waitForLine(/^\s+(\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)$/)).slice(1) as [string]
  return { proc, peerId: peerId!, addr }
}

describe('gcn bootstrap (real processes)', function () {
  this.timeout(120_000)
  let dir: string

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'gcn-bootstrap-'))
  })
  after(async () => {
    await killAll()
    rmSync(dir, { recursive: true, force: true })
  })

  it('prints --help documenting every flag', async () => {
    const proc = gcn(['bootstrap', '--help'])
    await proc.waitForLine(/^Usage: gcn bootstrap/)
    await waitFor('exit', () => proc.exited)
    const text = proc.lines.join('\n')
    for (const flag of ['--listen', '--key-file', '--bootstrap', '--profile', '--announce', '--config', 'GCN_KEY_FILE'])
      expect(text).to.include(flag)
    expect(proc.child.exitCode).to.equal(0)
  })

  it('lets two peers that know only the bootstrap find each other, route through the DHT and gossip', async () => {
    const boot = await startBootstrap(join(dir, 'boot.key'))
    expect(boot.addr).to.include(`/p2p/${boot.peerId}`)

    const a = await new TestPeer('distributor', [boot.addr]).ready()
    const b = await new TestPeer('registry', [boot.addr]).ready()
    await waitFor('both peers connected to the bootstrap', async () => {
      const [ca, cb] = await Promise.all([a.call<string[]>('connections'), b.call<string[]>('connections')])
      return ca.includes(boot.peerId) && cb.includes(boot.peerId)
    })

    // DHT lookup over the network (useCache: false) — a learns b's addresses from the DHT.
    const found = await waitFor('a finds b through the DHT', async () => {
      const addrs = await a.call<string[]>('findPeer', { peerId: b.peerId })
      return addrs.length > 0 ? addrs : undefined
    })
    expect(found.some(addr => b.addrs.some(own => own.startsWith(addr) || addr.startsWith(own.split('/p2p/')[0]!)))).to.equal(true)

    // Direct connection between the two peers.
    await a.call('dial', { addrs: found.map(addr => (addr.includes('/p2p/') ? addr : `${addr}/p2p/${b.peerId}`)) })
    await waitFor(
      'a and b directly connected',
      async () => (await a.call<string[]>('connections')).includes(b.peerId) && (await b.call<string[]>('connections')).includes(a.peerId)
    )

    // Gossip: a publishes, b receives.
    const topic = '/gcn/test/1'
    await a.call('subscribe', { topic })
    await b.call('subscribe', { topic })
    await waitFor('a sees b subscribed', async () => (await a.call<string[]>('subscribers', { topic })).includes(b.peerId))
    await waitFor(
      'b receives a gossip message',
      async () => {
        await a.call('publish', { topic, data: 'hello from a' })
        return b.messages(topic).includes('hello from a')
      },
      20_000,
      500
    )

    const code = await boot.proc.stop('SIGTERM')
    expect(code, `bootstrap exit code; stderr: ${boot.proc.stderr}`).to.equal(0)
    await a.proc.stop()
    await b.proc.stop()
  })

  it('keeps its peer id across restarts with the same key file (mode 0600)', async () => {
    const keyFile = join(dir, 'restart', 'peer.key')
    const first = await startBootstrap(keyFile)
    expect(statSync(keyFile).mode & 0o777).to.equal(0o600)
    await first.proc.stop('SIGINT')
    const second = await startBootstrap(keyFile)
    expect(second.peerId).to.equal(first.peerId)
    await second.proc.stop()
  })

  it('refuses a world-readable key file with a clear error', async () => {
    const keyFile = join(dir, 'open.key')
    const first = await startBootstrap(keyFile)
    await first.proc.stop()
    const { chmodSync } = await import('node:fs')
    chmodSync(keyFile, 0o644)
    const proc = gcn(['bootstrap', '--profile', 'local', '--listen', '/ip4/127.0.0.1/tcp/0', '--key-file', keyFile])
    await waitFor('exit', () => proc.exited)
    expect(proc.child.exitCode).to.equal(1)
    expect(proc.stderr).to.match(/chmod 600/)
  })
})
