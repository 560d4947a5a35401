/**
 * A throwaway multi-host network on one Linux machine: one network namespace
 * per host, each with a veth into a bridge in the root namespace and its own
 * address in a private /24, plus an address for the root namespace (the test
 * process) on the same bridge. Needs root and iproute2 (`ip netns`); every
 * name carries a random tag, and `destroy()` (also run on process exit) removes
 * the namespaces, veths and bridge it created, nothing else.
 */

import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import { GCN_BIN, Proc } from './procs.js'

const PROBE_PORT = 9
const PROBE_SERVER = `require('node:net').createServer(s => s.end('pong\\n')).listen(${PROBE_PORT}, process.argv[1], () => console.log('listening'))`
const PROBE_CLIENT = `const s = require('node:net').connect(${PROBE_PORT}, process.argv[1]); s.setEncoding('utf8'); s.on('data', d => process.stdout.write(d)); s.on('error', e => { console.error(e.message); process.exit(1) })`

/** Resolves with what a TCP server at addr:port sends before closing. */
function readFrom(addr: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const socket = connect({ host: addr, port, timeout: timeoutMs })
    socket.setEncoding('utf8')
    socket.on('data', d => {
      text += d
    })
    socket.on('end', () => resolve(text))
    socket.on('timeout', () => socket.destroy(new Error(`no answer from ${addr}:${port} within ${timeoutMs} ms`)))
    socket.on('error', reject)
  })
}

export interface NetnsHost {
  /** 1-based index: host `i` has address PREFIX.(10 + i). */
  index: number
  /** Namespace name, `gcn-<tag>-h<index>`. */
  ns: string
  addr: string
  /** The veth end in the root namespace (attached to the bridge). */
  veth: string
}

export interface NetnsTopology {
  tag: string
  /** First three octets of the /24, e.g. `10.231.57`. */
  prefix: string
  bridge: string
  /** The root namespace's address on the bridge (the test process). */
  rootAddr: string
  hosts: NetnsHost[]
  /** Spawns `command args` inside a host's namespace (`ip netns exec`); `killAll` kills it. */
  exec(host: NetnsHost, command: string, args: string[], env?: NodeJS.ProcessEnv): Proc
  /** `node packages/cli/bin/gcn.js args` inside a host's namespace. */
  gcn(host: NetnsHost, args: string[], env?: NodeJS.ProcessEnv): Proc
  /**
   * Checks that TCP gets through the bridge: from the last host and from the root namespace to the
   * first host. Throws a clear error where bridged traffic is dropped (e.g. br_netfilter with an
   * iptables FORWARD policy of DROP, as Docker sets on its hosts).
   */
  checkConnectivity(timeoutMs?: number): Promise<void>
  /** Removes every namespace, veth and the bridge; idempotent, never throws. Kill the processes inside first. */
  destroy(): void
}

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 })
}

function quietly(fn: () => unknown): void {
  try {
    fn()
  } catch {
    // already gone
  }
}

/** Why namespaces cannot be made here (not root, no iproute2, no permission), or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root (run as uid 0, e.g. in CI)'
  try {
    ip(['-V'])
  } catch {
    return "the 'ip' command (iproute2) is not installed"
  }
  const probe = `gcn-probe-${randomBytes(3).toString('hex')}`
  const bridge = `gp${randomBytes(3).toString('hex')}br`
  try {
    ip(['netns', 'add', probe])
    ip(['link', 'add', bridge, 'type', 'bridge'])
    ip(['link', 'add', `${bridge}v`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', probe])
    return undefined
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    return `cannot create network namespaces, bridges or veths here: ${(e.stderr ?? e.message).trim()}`
  } finally {
    quietly(() => ip(['link', 'del', `${bridge}v`]))
    quietly(() => ip(['link', 'del', bridge]))
    quietly(() => ip(['netns', 'del', probe]))
  }
}

/** A /24 (its first three octets) that no address or route of the root namespace touches: `wanted`, or a random 10.231.X. */
function freePrefix(wanted?: string): string {
  const routes = ip(['-4', 'route', 'show', 'table', 'all']) + ip(['-4', 'addr', 'show'])
  const inUse = (prefix: string): boolean => new RegExp(`(?<![\\d.])${prefix.replaceAll('.', '\\.')}\\.`).test(routes)
  if (wanted !== undefined) {
    if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(wanted)) throw new Error(`network prefix ${wanted} is not three octets`)
    if (inUse(wanted)) throw new Error(`${wanted}.0/24 is already in use here`)
    return wanted
  }
  for (let attempt = 0; attempt < 64; attempt++) {
    const prefix = `10.231.${1 + Math.floor(Math.random() * 253)}`
    if (!inUse(prefix)) return prefix
  }
  throw new Error('no free 10.231.X.0/24 for the test network')
}

const live = new Set<NetnsTopology>()
let exitHook = false

/**
 * Creates `count` hosts (namespaces `gcn-<tag>-h1..hN`, addresses PREFIX.11..)
 * on one bridge, with the root namespace at PREFIX.1; PREFIX is `options.prefix`
 * (three octets) or a random unused 10.231.X. Each namespace has only
 * its own /24 and lo: nothing in it reaches anything but the other hosts and
 * the root namespace's bridge address.
 */
export function createTopology(count: number, options: { prefix?: string } = {}): NetnsTopology {
  if (count < 1 || count > 200) throw new Error(`host count ${count} out of range`)
  const tag = randomBytes(3).toString('hex')
  const prefix = freePrefix(options.prefix)
  // Interface names are limited to 15 bytes: g<tag>br, g<tag>h<i>.
  const bridge = `g${tag}br`
  const hosts: NetnsHost[] = Array.from({ length: count }, (_, i) => ({
    index: i + 1,
    ns: `gcn-${tag}-h${i + 1}`,
    addr: `${prefix}.${11 + i}`,
    veth: `g${tag}h${i + 1}`
  }))
  let destroyed = false
  const topology: NetnsTopology = {
    tag,
    prefix,
    bridge,
    rootAddr: `${prefix}.1`,
    hosts,
    exec: (host, command, args, env) => new Proc('ip', ['netns', 'exec', host.ns, command, ...args], env === undefined ? {} : { env }),
    gcn: (host, args, env) => topology.exec(host, process.execPath, [GCN_BIN, ...args], env),
    async checkConnectivity(timeoutMs = 5_000) {
      const [first, last] = [hosts[0]!, hosts[hosts.length - 1]!]
      const server = topology.exec(first, process.execPath, ['-e', PROBE_SERVER, first.addr])
      try {
        await server.waitForLine(/^listening$/, 10_000)
        try {
          if ((await readFrom(first.addr, PROBE_PORT, timeoutMs)).trim() !== 'pong') throw new Error('unexpected answer')
          const client = topology.exec(last, process.execPath, ['-e', PROBE_CLIENT, first.addr])
          await client.waitForLine(/^pong$/, timeoutMs).finally(() => client.stop('SIGKILL'))
        } catch (err) {
          throw new Error(
            `TCP does not get through the test bridge ${bridge} (to ${first.addr} from ${last.ns} and the root namespace): ` +
              'is bridged traffic filtered (net.bridge.bridge-nf-call-iptables=1 with an iptables FORWARD policy of DROP)?',
            { cause: err }
          )
        }
      } finally {
        await server.stop('SIGKILL')
      }
    },
    destroy() {
      if (destroyed) return
      destroyed = true
      live.delete(topology)
      // Deleting a namespace deletes its veth end, and with it the peer on the bridge; the explicit
      // link deletions cover a namespace that a leftover process still holds open.
      for (const h of hosts) quietly(() => ip(['netns', 'del', h.ns]))
      for (const h of hosts) quietly(() => ip(['link', 'del', h.veth]))
      quietly(() => ip(['link', 'del', bridge]))
    }
  }
  live.add(topology)
  if (!exitHook) {
    exitHook = true
    // Last resort when the runner dies without running after(): leave nothing behind.
    process.once('exit', () => {
      for (const t of [...live]) t.destroy()
    })
  }
  try {
    ip(['link', 'add', bridge, 'type', 'bridge'])
    ip(['addr', 'add', `${topology.rootAddr}/24`, 'dev', bridge])
    ip(['link', 'set', bridge, 'up'])
    for (const h of hosts) {
      ip(['netns', 'add', h.ns])
      ip(['link', 'add', h.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns])
      ip(['link', 'set', h.veth, 'master', bridge])
      ip(['link', 'set', h.veth, 'up'])
      ip(['-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', 'eth0'])
      ip(['-n', h.ns, 'link', 'set', 'eth0', 'up'])
      ip(['-n', h.ns, 'link', 'set', 'lo', 'up'])
    }
  } catch (err) {
    topology.destroy()
    const e = err as { stderr?: string; message: string }
    throw new Error(`creating the test network failed: ${(e.stderr ?? e.message).trim()}`, { cause: err })
  }
  return topology
}
