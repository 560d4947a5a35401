import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { expect } from 'chai'
import { listModels } from './helpers/network.js'
import { GCN_BIN, gcn, killAll, Proc, ROOT, waitFor } from './helpers/procs.js'

/**
 * The supplier image (Dockerfile.supplier) without a Docker engine: a lint of
 * the Dockerfile's essentials (what hadolint and a reviewer would check), and
 * the container's exact entry point run outside Docker, with the environment
 * the Dockerfile sets, against a local network.
 */

const DOCKERFILE = join(ROOT, 'Dockerfile.supplier')
const DOCKERIGNORE = join(ROOT, '.dockerignore')
const ENTRYPOINT = join(ROOT, 'scripts', 'docker', 'supplier-entrypoint.sh')
const OPERATORS_DOC = join(ROOT, 'docs', 'operators.md')
/** The runtime images: the CPU one (default target) and the CUDA variant. */
const RUNTIME_STAGES = ['supplier', 'supplier-cuda'] as const
/** The workspaces the CLI imports (packages/cli/package.json dependencies) and the CLI itself. */
const CLI_WORKSPACES = ['core', 'supplier', 'distributor', 'registry', 'cli']

// ---- a small Dockerfile parser ---------------------------------------------------

interface Instruction {
  keyword: string
  args: string
  line: number
}

interface Stage {
  name: string
  /** The base image with ARG defaults substituted. */
  image: string
  instructions: Instruction[]
}

interface Dockerfile {
  text: string
  args: Map<string, string>
  stages: Stage[]
}

/** Instructions with line continuations joined and comment lines dropped (also inside a continuation, as Docker does). */
function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = []
  let pending: { text: string; line: number } | undefined
  text.split(/\r?\n/).forEach((raw, index) => {
    const trimmed = raw.trim()
    if (trimmed === '' || trimmed.startsWith('#')) return
    const continued = trimmed.endsWith('\\')
    const body = continued ? trimmed.slice(0, -1).trim() : trimmed
    pending = pending === undefined ? { text: body, line: index + 1 } : { text: `${pending.text} ${body}`, line: pending.line }
    if (continued) return
    const [, keyword, args] = pending.text.match(/^(\S+)\s*(.*)$/s) ?? []
    instructions.push({ keyword: keyword!.toUpperCase(), args: args ?? '', line: pending.line })
    pending = undefined
  })
  if (pending !== undefined) throw new Error(`dangling line continuation at line ${pending.line}`)

  const args = new Map<string, string>()
  const stages: Stage[] = []
  const substitute = (value: string): string =>
    value.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a: string | undefined, b: string | undefined) => args.get((a ?? b)!) ?? '')
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const words = instruction.args.split(/\s+/).filter(w => !w.startsWith('--'))
      const asIndex = words.findIndex(w => w.toLowerCase() === 'as')
      stages.push({
        name: asIndex === -1 ? String(stages.length) : words[asIndex + 1]!,
        image: substitute(words[0]!),
        instructions: []
      })
    } else if (stages.length === 0) {
      if (instruction.keyword !== 'ARG') throw new Error(`${instruction.keyword} before the first FROM (line ${instruction.line})`)
      const [name, value] = instruction.args.split('=', 2)
      args.set(name!.trim(), value ?? '')
    } else {
      stages.at(-1)!.instructions.push(instruction)
    }
  }
  return { text, args, stages }
}

function stage(file: Dockerfile, name: string): Stage {
  const found = file.stages.find(s => s.name === name)
  if (found === undefined) throw new Error(`Dockerfile.supplier has no stage ${name}`)
  return found
}

const all = (s: Stage, keyword: string): Instruction[] => s.instructions.filter(i => i.keyword === keyword)
const indexOf = (s: Stage, keyword: string): number => s.instructions.findLastIndex(i => i.keyword === keyword)

/** ENV KEY=VALUE pairs of a stage, in order (values unquoted). */
function stageEnv(s: Stage): Record<string, string> {
  const env: Record<string, string> = {}
  for (const { args } of all(s, 'ENV')) {
    for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g)) {
      const value = m[2]!
      env[m[1]!] = /^["']/.test(value) ? value.slice(1, -1) : value
    }
  }
  return env
}

/** HEALTHCHECK options and its exec-form command. */
function healthcheck(s: Stage): { options: string; command: string[] } {
  const [instruction] = all(s, 'HEALTHCHECK')
  if (instruction === undefined) throw new Error(`stage ${s.name} has no HEALTHCHECK`)
  const m = instruction.args.match(/^(.*?)\bCMD\s+(\[.*\])$/s)
  if (m === null) throw new Error(`HEALTHCHECK of ${s.name} is not CMD in exec form: ${instruction.args}`)
  return { options: m[1]!.trim(), command: JSON.parse(m[2]!) as string[] }
}

/** COPY sources and destination, with the --from/--chmod flags. */
function copies(file: Dockerfile): Array<{ stage: string; from?: string; chmod?: string; sources: string[]; dest: string }> {
  return file.stages.flatMap(s =>
    all(s, 'COPY').map(i => {
      const words = i.args.split(/\s+/)
      const flags = words.filter(w => w.startsWith('--'))
      const paths = words.filter(w => !w.startsWith('--'))
      const flag = (name: string): string | undefined => flags.find(f => f.startsWith(`--${name}=`))?.slice(name.length + 3)
      const from = flag('from')
      const chmod = flag('chmod')
      return {
        stage: s.name,
        ...(from === undefined ? {} : { from }),
        ...(chmod === undefined ? {} : { chmod }),
        sources: paths.slice(0, -1),
        dest: paths.at(-1)!
      }
    })
  )
}

// ---- .dockerignore, with Docker's matching rules -----------------------------------

function globToRegExp(pattern: string): RegExp {
  let re = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!
    if (c === '*' && pattern[i + 1] === '*') {
      // `**/` matches any number of folders, including none.
      re += pattern[i + 2] === '/' ? '(?:.*/)?' : '.*'
      i += pattern[i + 2] === '/' ? 2 : 1
    } else if (c === '*') re += '[^/]*'
    else if (c === '?') re += '[^/]'
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}

/** Whether `path` (relative, with /) is left out of the build context: the last pattern matching it or a folder above it decides. */
function makeIgnoreMatcher(text: string): (path: string) => boolean {
  const rules = text
    .split(/\r?\n/)
    .map(l => l.trim())
    .filter(l => l !== '' && !l.startsWith('#'))
    .map(l => {
      const negated = l.startsWith('!')
      const pattern = (negated ? l.slice(1) : l).replace(/^\/+/, '').replace(/\/+$/, '')
      return { negated, re: globToRegExp(pattern) }
    })
  return path => {
    const parts = path.split('/')
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'))
    let ignored = false
    for (const rule of rules) if (prefixes.some(p => rule.re.test(p))) ignored = !rule.negated
    return ignored
  }
}

/** Every file of the checkout that the build context would hold (node_modules and .git are checked separately). */
function buildContext(ignored: (path: string) => boolean): Set<string> {
  const files = new Set<string>()
  const walk = (rel: string): void => {
    for (const entry of readdirSync(join(ROOT, rel), { withFileTypes: true })) {
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`
      if (entry.name === 'node_modules' || entry.name === '.git') continue
      if (entry.isDirectory()) walk(path)
      else if (!ignored(path)) files.add(path)
    }
  }
  walk('')
  return files
}

// ---- processes ------------------------------------------------------------------------

interface Exit {
  code: number | null
  stdout: string
  stderr: string
}

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Exit> {
  return new Promise(resolve => {
    execFile(command, args, { cwd: ROOT, env: options.env ?? process.env, timeout: options.timeoutMs ?? 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null
      resolve({ code, stdout, stderr })
    })
  })
}

/** Docker's --timeout=5s style duration, in ms. */
function durationMs(options: string, name: string, fallback: number): number {
  const m = options.match(new RegExp(`--${name}=(\\d+)(ms|s|m)`))
  if (m === null) return fallback
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] as 'ms' | 's' | 'm']
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

/** Environment variable names `gcn supplier --help` documents. */
async function supplierEnvNames(): Promise<Set<string>> {
  const help = await run(process.execPath, [GCN_BIN, 'supplier', '--help'])
  expect(help.code, help.stderr).to.equal(0)
  return new Set([...help.stdout.matchAll(/\benv (GCN_[A-Z0-9_]+)/g)].map(m => m[1]!))
}

// ---- tests ---------------------------------------------------------------------------

describe('Docker supplier image (Dockerfile.supplier)', function () {
  this.timeout(60_000)
  const file = parseDockerfile(readFileSync(DOCKERFILE, 'utf8'))

  describe('lint', () => {
    it('is multi-stage with named stages; the CPU image is the default (last) target and supplier-cuda a second target', () => {
      expect(file.stages.length).to.be.at.least(3)
      for (const s of file.stages) expect(s.name, `stage ${s.name} has a name`).to.match(/^[a-z][a-z0-9-]*$/)
      expect(new Set(file.stages.map(s => s.name)).size, 'stage names are unique').to.equal(file.stages.length)
      expect(file.stages.at(-1)!.name).to.equal('supplier')
      expect(file.stages.map(s => s.name)).to.include('supplier-cuda')
    })

    it('builds on maintained bases pinned by version: Node.js LTS by major, nvidia/cuda runtime, never latest or untagged', () => {
      expect(file.text).not.to.match(/:latest\b/)
      const names = file.stages.map(s => s.name)
      for (const [i, s] of file.stages.entries()) {
        if (s.image === 'scratch' || names.slice(0, i).includes(s.image)) continue
        expect(s.image, `base of ${s.name} names a tag`).to.match(/^[a-z0-9./-]+:[\w.-]+$/)
        expect(s.image.split(':')[1], `base of ${s.name}`).not.to.equal('latest')
        expect(s.image, `base of ${s.name}`).to.match(/^node:(22|24)-bookworm-slim$|^nvidia\/cuda:13\.\d+\.\d+-runtime-ubuntu\d+\.\d+$/)
      }
      expect(stage(file, 'supplier').image).to.match(/^node:(22|24)-bookworm-slim$/)
      // node-llama-cpp's CUDA prebuilds link libcudart.so.13 / libcublas.so.13: the runtime base must be CUDA 13.
      expect(stage(file, 'supplier-cuda').image).to.match(/^nvidia\/cuda:13\./)
    })

    it('runs as a non-root user set before the HEALTHCHECK and ENTRYPOINT', () => {
      for (const name of RUNTIME_STAGES) {
        const s = stage(file, name)
        const users = all(s, 'USER')
        expect(users, `${name} sets USER`).not.to.be.empty
        const user = users.at(-1)!.args.split(':')[0]!
        expect(user, `${name} USER`).not.to.be.oneOf(['root', '0', ''])
        expect(indexOf(s, 'USER'), `${name}: USER before ENTRYPOINT`).to.be.below(indexOf(s, 'ENTRYPOINT'))
        expect(indexOf(s, 'USER'), `${name}: USER before HEALTHCHECK`).to.be.below(indexOf(s, 'HEALTHCHECK'))
        if (indexOf(s, 'CMD') !== -1) expect(indexOf(s, 'USER')).to.be.below(indexOf(s, 'CMD'))
      }
    })

    it('keeps keys and models in VOLUME /data, exposes the libp2p and status ports, serves health on 0.0.0.0', () => {
      for (const name of RUNTIME_STAGES) {
        const s = stage(file, name)
        const env = stageEnv(s)
        const volumes = all(s, 'VOLUME').flatMap(v => (v.args.startsWith('[') ? (JSON.parse(v.args) as string[]) : v.args.split(/\s+/)))
        expect(volumes, `${name} VOLUME`).to.include('/data')
        expect(env.GCN_DATA_DIR, `${name} GCN_DATA_DIR`).to.equal('/data')
        expect(env.GCN_STATUS_HOST, `${name} GCN_STATUS_HOST`).to.equal('0.0.0.0')
        expect(env.GCN_STATUS_PORT, `${name} GCN_STATUS_PORT is fixed`).to.match(/^[1-9]\d*$/)
        const exposed = all(s, 'EXPOSE').flatMap(e => e.args.split(/\s+/).map(p => p.replace(/\/tcp$/, '')))
        expect(exposed, `${name} EXPOSE`).to.include(env.GCN_STATUS_PORT)
        const listenPorts = [...(env.GCN_LISTEN ?? '').matchAll(/\/tcp\/(\d+)/g)].map(m => m[1]!)
        expect(listenPorts, `${name} GCN_LISTEN uses fixed ports`).not.to.be.empty
        for (const port of listenPorts) {
          expect(port, `${name} GCN_LISTEN port`).not.to.equal('0')
          expect(exposed, `${name} EXPOSE`).to.include(port)
        }
      }
    })

    it('has an exec-form ENTRYPOINT: the entry point script, copied into the image executable', () => {
      const copied = copies(file).filter(c => c.sources.includes('scripts/docker/supplier-entrypoint.sh'))
      expect(copied, 'the entry point script is copied from the context').to.have.length(1)
      expect(copied[0]!.chmod, 'copied with --chmod=0755').to.equal('0755')
      expect(statSync(ENTRYPOINT).mode & 0o111, 'the script is executable in the checkout').to.equal(0o111)
      for (const name of RUNTIME_STAGES) {
        const s = stage(file, name)
        const env = stageEnv(s)
        const [entrypoint] = all(s, 'ENTRYPOINT')
        expect(entrypoint, `${name} ENTRYPOINT`).not.to.equal(undefined)
        expect(entrypoint!.args, `${name} ENTRYPOINT is exec form`).to.match(/^\[.*\]$/)
        const argv = JSON.parse(entrypoint!.args) as string[]
        expect(argv).to.deep.equal([`${env.GCN_APP_DIR}/scripts/docker/supplier-entrypoint.sh`])
        expect(copied[0]!.dest).to.equal(argv[0])
        // The app stage carries the script into the runtime images.
        expect(all(s, 'COPY').some(c => c.args.includes(`--from=${copied[0]!.stage} `))).to.equal(true)
        expect(all(s, 'CMD'), `${name}: no CMD (arguments are gcn supplier flags)`).to.be.empty
      }
    })

    it('has a HEALTHCHECK on GET /health of the status port that needs only node (no curl or wget)', () => {
      expect(file.text).not.to.match(/\b(curl|wget)\b/)
      for (const name of RUNTIME_STAGES) {
        const { options, command } = healthcheck(stage(file, name))
        expect(command.slice(0, 2), `${name} HEALTHCHECK`).to.deep.equal(['node', '-e'])
        expect(command[2]).to.include('/health').and.to.include('process.env.GCN_STATUS_PORT').and.to.include('fetch(')
        for (const option of ['interval', 'timeout', 'start-period', 'retries']) expect(options).to.include(`--${option}=`)
      }
    })

    it('puts only production dependencies of the CLI workspaces and the built dist folders into the runtime images', () => {
      const cli = JSON.parse(readFileSync(join(ROOT, 'packages', 'cli', 'package.json'), 'utf8')) as {
        dependencies: Record<string, string>
      }
      const imported = Object.keys(cli.dependencies).map(d => d.replace(/^@gcn\//, ''))
      expect([...imported, 'cli'].sort()).to.deep.equal([...CLI_WORKSPACES].sort())

      const deps = stage(file, 'deps')
      const install = all(deps, 'RUN').find(r => /\bnpm ci\b/.test(r.args))
      expect(install, 'deps runs npm ci').not.to.equal(undefined)
      expect(install!.args).to.include('--omit=dev')
      for (const ws of CLI_WORKSPACES) expect(install!.args).to.include(`--workspace=packages/${ws}`)
      expect(install!.args).not.to.include('--workspace=packages/sdk')
      const apt = all(deps, 'RUN').find(r => r.args.includes('apt-get install'))
      expect(apt, 'the stage that installs runtime modules can build better-sqlite3').not.to.equal(undefined)
      for (const tool of ['python3', 'make', 'g++']) expect(apt!.args.split(/\s+/)).to.include(tool)

      // npm ci needs every workspace's manifest, in each stage that runs it.
      const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }
      for (const name of ['build', 'deps']) {
        const manifests = copies(file).filter(c => c.stage === name && c.from === undefined)
        for (const ws of root.workspaces) {
          expect(
            manifests.some(c => c.sources.includes(`${ws}/package.json`)),
            `${name} copies ${ws}/package.json`
          ).to.equal(true)
        }
      }

      const app = copies(file).filter(c => c.stage === 'app')
      for (const ws of CLI_WORKSPACES) {
        expect(app.some(c => c.from === 'build' && c.sources.includes(`/app/packages/${ws}/dist/src`))).to.equal(true)
        expect(app.some(c => c.from === 'build' && c.sources.includes(`/app/packages/${ws}/package.json`))).to.equal(true)
      }
      expect(app.some(c => c.sources.includes('/app/packages/cli/bin'))).to.equal(true)

      for (const name of RUNTIME_STAGES) {
        const s = stage(file, name)
        expect(
          all(s, 'RUN').filter(r => /\bnpm\b/.test(r.args)),
          `${name} installs nothing with npm`
        ).to.be.empty
        const froms = copies(file)
          .filter(c => c.stage === name && c.from !== undefined)
          .map(c => `${c.from} ${c.sources.join(' ')}`)
        expect(
          froms.filter(f => f.startsWith('build ')),
          `${name} takes only the node binary from build`
        ).to.satisfy((l: string[]) => l.every(f => f === 'build /usr/local/bin/node'))
        expect(
          froms.some(f => /^deps-(cpu|cuda) \/app\/node_modules$/.test(f)),
          `${name} copies pruned node_modules`
        ).to.equal(true)
        expect(froms).to.include('app /app')
      }
    })

    it('has a CUDA variant: nvidia/cuda runtime base, GCN_GPU=cuda, the CUDA prebuilds kept; the CPU image drops them; documented', () => {
      const cuda = stage(file, 'supplier-cuda')
      const cpu = stage(file, 'supplier')
      expect(stageEnv(cuda).GCN_GPU).to.equal('cuda')
      expect(stageEnv(cpu).GCN_GPU).to.equal('false')
      expect(copies(file).some(c => c.stage === 'supplier-cuda' && c.from === 'deps-cuda')).to.equal(true)
      expect(copies(file).some(c => c.stage === 'supplier' && c.from === 'deps-cpu')).to.equal(true)
      const keep = all(stage(file, 'deps-cuda'), 'RUN')
        .map(r => r.args)
        .join(' ')
      expect(keep).to.include('linux-$arch-cuda').and.to.include('linux-$arch-cuda-ext')
      const drop = all(stage(file, 'deps-cpu'), 'RUN')
        .map(r => r.args)
        .join(' ')
      expect(drop).to.include('rm -rf').and.not.to.include('cuda')
      // The prebuilds come from the lockfile: the CUDA one at node-llama-cpp's version.
      const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> }
      expect(lock.packages['node_modules/@node-llama-cpp/linux-x64-cuda']?.version).to.equal(
        lock.packages['node_modules/node-llama-cpp']?.version
      )
      expect(file.text).to.include('--target supplier-cuda')
      const doc = readFileSync(OPERATORS_DOC, 'utf8')
      expect(doc).to.include('--target supplier-cuda').and.to.include('GCN_GPU=cuda').and.to.include('--gpus all')
    })

    it('sets only GCN_* variables that gcn supplier knows, with values its schema accepts', async () => {
      const known = await supplierEnvNames()
      for (const name of RUNTIME_STAGES) {
        const env = stageEnv(stage(file, name))
        const gcnVars = Object.keys(env).filter(k => k.startsWith('GCN_') && k !== 'GCN_APP_DIR')
        expect(gcnVars.length).to.be.at.least(5)
        for (const key of gcnVars) expect(known, `${name}: ${key} is a gcn supplier option`).to.include(key)
        // The config loader validates every value even for --help: a bad one fails here.
        const help = await run(process.execPath, [GCN_BIN, 'supplier', '--help'], { env: { ...process.env, ...env } })
        expect(help.code, `${name} env: ${help.stderr}`).to.equal(0)
      }
    })

    it('.dockerignore keeps the context to what the build copies: no node_modules, dist, keys or tests', () => {
      expect(existsSync(DOCKERIGNORE)).to.equal(true)
      const ignored = makeIgnoreMatcher(readFileSync(DOCKERIGNORE, 'utf8'))
      for (const path of [
        'node_modules/chai/index.js',
        'packages/core/node_modules/x/index.js',
        'packages/core/dist/src/index.js',
        'packages/cli/tsconfig.tsbuildinfo',
        '.git/HEAD',
        '.gcn/supplier/peer.key',
        'packages/cli/.gcn/supplier/peer.key',
        'test/inference.spec.ts',
        'packages/core/test/config.spec.ts',
        'bench/inference.ts'
      ]) {
        expect(ignored(path), `${path} is left out`).to.equal(true)
      }
      const context = buildContext(ignored)
      const under = (source: string): string[] => [...context].filter(f => f === source || f.startsWith(`${source.replace(/\/$/, '')}/`))
      for (const c of copies(file).filter(c => c.from === undefined)) {
        for (const source of c.sources) expect(under(source), `COPY ${source} finds files in the context`).not.to.be.empty
      }
      // tsc -b packages/cli needs the sources and tsconfig of every workspace it references.
      for (const ws of CLI_WORKSPACES) {
        expect(context).to.include(`packages/${ws}/tsconfig.json`)
        expect(context).to.include(`packages/${ws}/src/index.ts`)
      }
      expect(context).to.include('packages/cli/bin/gcn.js')
      expect(context).to.include('scripts/docker/supplier-entrypoint.sh')
    })

    it('has a POSIX sh entry point that execs node (no wrapper process between Docker and node)', async () => {
      const script = readFileSync(ENTRYPOINT, 'utf8')
      expect(script.split('\n')[0]).to.equal('#!/bin/sh')
      expect((await run('sh', ['-n', ENTRYPOINT])).code).to.equal(0)
      const execs = script.split('\n').filter(l => /^\s*exec /.test(l))
      expect(execs).not.to.be.empty
      for (const line of execs) expect(line).to.match(/exec node "\$app_dir\/packages\/cli\/bin\/gcn\.js" supplier /)
    })
  })

  describe('the entry point outside Docker (real processes)', () => {
    const cpu = stage(file, 'supplier')
    const imageEnv = stageEnv(cpu)
    const check = healthcheck(cpu)
    const apiKey = `gcn-docker-${Math.random().toString(16).slice(2)}`
    let root: string
    let bootAddr: string
    let gatewayUrl: string

    /** The Dockerfile's environment with paths pointing into the temp dir and the checkout, on the local profile. */
    const containerEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
      ...process.env,
      ...imageEnv,
      GCN_APP_DIR: ROOT,
      GCN_DATA_DIR: join(root, 'data'),
      GCN_PROFILE: 'local',
      GCN_LISTEN: '/ip4/127.0.0.1/tcp/0',
      GCN_LOG_LEVEL: 'warn',
      // `node` as the image has it on PATH.
      PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`,
      ...extra
    })

    /** The HEALTHCHECK's command, run as Docker runs it: exec form, the container's environment, its timeout. */
    const runHealthcheck = async (env: NodeJS.ProcessEnv): Promise<number | null> =>
      (await run(check.command[0]!, check.command.slice(1), { env, timeoutMs: durationMs(check.options, 'timeout', 30_000) })).code

    before(async () => {
      root = mkdtempSync(join(tmpdir(), 'gcn-docker-'))
      const local = ['--profile', 'local', '--listen', '/ip4/127.0.0.1/tcp/0', '--log-level', 'warn']
      const boot = gcn(['bootstrap', ...local, '--key-file', join(root, 'bootstrap', 'peer.key')])
      bootAddr = (await boot.waitForLine(/^\s+(\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)$/))[1]!
      const distributor = gcn([
        'distributor',
        ...local,
        '--bootstrap',
        bootAddr,
        '--data-dir',
        join(root, 'distributor'),
        '--gateway-port',
        '0',
        '--api-key',
        `game-1:${apiKey}`
      ])
      gatewayUrl = (await distributor.waitForLine(/^gateway: (http:\/\/\S+)$/))[1]!
    })

    after(async () => {
      await killAll()
      rmSync(root, { recursive: true, force: true })
    })

    it('passes arguments on as gcn supplier flags (--help), and `claim` to gcn supplier claim', async () => {
      const help = await run(ENTRYPOINT, ['--help'], { env: containerEnv() })
      expect(help.code, help.stderr).to.equal(0)
      expect(help.stdout).to.match(/^Usage: gcn supplier \[options\]/)
      const claim = await run(ENTRYPOINT, ['claim', '--help'], { env: containerEnv() })
      expect(claim.code, claim.stderr).to.equal(0)
      expect(claim.stdout).to.match(/^Usage: gcn supplier claim /)
    })

    it('runs the supplier with the image environment: healthy per HEALTHCHECK, joins, serves a chat completion, SIGTERM exits 0', async () => {
      const dataDir = join(root, 'data')
      // The image's /data: created 0700, owned by the supplier's user.
      mkdirSync(dataDir, { mode: 0o700 })
      const statusPort = await freePort()
      const env = containerEnv({ GCN_BOOTSTRAP: bootAddr, GCN_STATUS_PORT: String(statusPort), GCN_SLOTS: '1' })
      // A flag given to the container beats the environment (GCN_SLOTS=1).
      const supplier = new Proc(ENTRYPOINT, ['--slots', '2'], { env })

      await supplier.waitForLine(/^gcn supplier ready$/, 45_000)
      const statusUrl = (await supplier.waitForLine(/^status: (http:\/\/\S+)$/))[1]!
      expect(statusUrl).to.equal(`http://0.0.0.0:${statusPort}`)

      // exec: the process Docker would signal is node running the CLI, not a shell.
      if (existsSync(`/proc/${supplier.child.pid}/cmdline`)) {
        const argv = readFileSync(`/proc/${supplier.child.pid}/cmdline`, 'utf8')
          .split('\0')
          .filter(a => a !== '')
        expect(argv.slice(1)).to.deep.equal([GCN_BIN, 'supplier', '--data-dir', dataDir, '--slots', '2'])
      }

      await waitFor('the HEALTHCHECK command to pass', async () => (await runHealthcheck(env)) === 0, 30_000, 200)
      const health = await fetch(`http://127.0.0.1:${statusPort}/health`)
      expect(health.status).to.equal(200)
      expect(await health.json()).to.deep.equal({ status: 'ok' })
      const status = (await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json()) as {
        peerId: string
        stats: { totalSlots: number }
        completedTasks: number
      }
      expect(status.stats.totalSlots).to.equal(2)

      // The image's defaults: keys and the generated test model in the data dir, the key file private.
      expect(statSync(join(dataDir, 'peer.key')).mode & 0o777).to.equal(0o600)
      expect(existsSync(join(dataDir, 'gcn-tiny.gguf'))).to.equal(true)

      // Joins the network: the gateway lists its model.
      const model = await waitFor(
        'the gateway to list the supplier',
        async () => {
          const entry = (await listModels(`${gatewayUrl}`, apiKey))?.[0]
          return entry !== undefined && (entry.gcn?.suppliers ?? 0) >= 1 ? entry : undefined
        },
        30_000,
        100
      )
      const res = await fetch(`${gatewayUrl}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: model.id, messages: [{ role: 'user', content: 'Hello from the harbour!' }], max_tokens: 8 })
      })
      const body = (await res.json()) as {
        choices: Array<{ message: { role: string; content: string } }>
        usage: { completion_tokens: number }
      }
      expect(res.status, JSON.stringify(body)).to.equal(200)
      expect(body.choices[0]!.message.role).to.equal('assistant')
      expect(body.choices[0]!.message.content).to.be.a('string').that.is.not.empty
      expect(body.usage.completion_tokens).to.be.within(1, 8)
      await waitFor('the supplier to count the task', async () => {
        const s = (await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json()) as { completedTasks: number }
        return s.completedTasks >= 1
      })

      // docker stop: SIGTERM to the entry point's process stops the supplier gracefully.
      const code = await supplier.stop('SIGTERM', 20_000)
      expect(supplier.child.signalCode, `stderr: ${supplier.stderr}`).to.equal(null)
      expect(code, `stderr: ${supplier.stderr}`).to.equal(0)
      expect(await runHealthcheck(env), 'the HEALTHCHECK fails once the supplier is gone').not.to.equal(0)
    })
  })
})
