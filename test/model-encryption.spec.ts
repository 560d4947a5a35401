import { createHash } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { makeTestModel, type Network, startNetwork, type TestModel } from './helpers/network.js'
import { gcn, killAll, waitFor } from './helpers/procs.js'

/** Every regular file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  const out: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...filesUnder(path))
    else if (entry.isFile()) out.push(path)
  }
  return out
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

describe('encrypted models (real processes)', function () {
  this.timeout(120_000)
  let dir: string
  let plain: TestModel
  let encPath: string
  let keyFile: string
  let net: Network | undefined

  before(async function () {
    if (process.platform !== 'linux') this.skip()
    dir = mkdtempSync(join(tmpdir(), 'gcn-enc-'))
    plain = await makeTestModel(join(dir, 'tiny.gguf'))
    encPath = join(dir, 'tiny.gguf.enc')
    keyFile = join(dir, 'tiny.key')
    const enc = gcn(['model', 'encrypt', '--in', plain.path, '--out', encPath, '--key-file', keyFile])
    const [, id] = (await enc.waitForLine(/^model id \(sha256 of the plain file\): ([0-9a-f]{64})$/, 60_000)) as RegExpMatchArray
    expect(id).to.equal(plain.sha256)
    await waitFor('gcn model encrypt to exit', () => enc.exited, 30_000)
    expect(enc.child.exitCode).to.equal(0)
    expect((statSync(keyFile).mode & 0o777).toString(8)).to.equal('600')
    // Only the distributor holds the key; the supplier gets the encrypted file.
    net = await startNetwork({
      suppliers: 1,
      dir: join(dir, 'net'),
      // The network's own model is our plain file (no second copy); the supplier is pointed at the encrypted one.
      model: plain,
      distributorArgs: ['--model-key', keyFile],
      supplierArgs: ['--model', encPath, '--model-sha256', plain.sha256, '--model-key-timeout-ms', '20000']
    })
  })

  after(async () => {
    await net?.stop()
    await killAll()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  it('serves an encrypted model once the distributor delivered its key, with no decrypted copy on disk', async () => {
    const res = await fetch(`${net!.gatewayUrl}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${net!.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: net!.modelName, messages: [{ role: 'user', content: 'Hello, innkeeper!' }], max_tokens: 8 })
    })
    expect(res.status).to.equal(200)
    const body = (await res.json()) as { model: string; choices: Array<{ message: { content: string } }> }
    expect(body.choices[0]!.message.content).to.not.equal('')
    // The model id on the network is the plain file's sha256.
    const status = await net!.suppliers[0]!.status()
    expect(status.model.id).to.equal(plain.sha256)

    // No file anywhere under the test dir, /dev/shm or the temp dir holds the plaintext model.
    const plainBytes = readFileSync(plain.path)
    const candidates = [...filesUnder(dir), ...filesUnder('/dev/shm')].filter(p => p !== plain.path)
    for (const path of candidates) {
      let size: number
      try {
        size = statSync(path).size
      } catch {
        continue
      }
      if (size !== plainBytes.length) continue
      expect(sha256(readFileSync(path)), path).to.not.equal(plain.sha256)
    }
    // The supplier holds it only through an unlinked RAM file.
    const pid = net!.suppliers[0]!.proc.child.pid!
    const links = readdirSync(`/proc/${pid}/fd`).map(fd => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`)
      } catch {
        return ''
      }
    })
    expect(
      links.some(l => /^\/dev\/shm\/\.gcn-model-[0-9a-f]+ \(deleted\)$/.test(l)),
      links.join('\n')
    ).to.equal(true)
  })

  it('refuses with a clear error when no distributor holds the key', async () => {
    const other = mkdtempSync(join(dir, 'nokey-'))
    const supplier = gcn([
      'supplier',
      '--profile',
      'local',
      '--listen',
      '/ip4/127.0.0.1/tcp/0',
      '--bootstrap',
      net!.bootstrap.addr,
      '--data-dir',
      other,
      '--model',
      encPath,
      // A different model id than the distributor has a key for cannot be asked for; ask for ours from a peer without keys.
      '--model-key-from',
      `${net!.bootstrap.addr}`,
      '--model-key-timeout-ms',
      '3000'
    ])
    await waitFor('the supplier to give up', () => supplier.exited, 30_000)
    expect(supplier.child.exitCode).to.equal(1)
    expect(supplier.stderr).to.match(/no distributor gave the key of model/)
  })

  it('refuses a tampered encrypted file with a clear error', async () => {
    const tampered = join(dir, 'tampered.gguf.enc')
    const bytes = readFileSync(encPath)
    bytes[bytes.length - 200]! ^= 0x40
    writeFileSync(tampered, bytes)
    const supplier = gcn([
      'supplier',
      '--profile',
      'local',
      '--listen',
      '/ip4/127.0.0.1/tcp/0',
      '--bootstrap',
      net!.bootstrap.addr,
      '--data-dir',
      mkdtempSync(join(dir, 'tampered-')),
      '--model',
      tampered,
      '--model-key-timeout-ms',
      '20000'
    ])
    await waitFor('the supplier to refuse the file', () => supplier.exited, 60_000)
    expect(supplier.child.exitCode).to.equal(1)
    expect(supplier.stderr).to.match(/cannot decrypt .*wrong model key or altered file/)
    expect(readdirSync('/dev/shm').filter(f => f.startsWith('.gcn-model-'))).to.deep.equal([])
  })
})
