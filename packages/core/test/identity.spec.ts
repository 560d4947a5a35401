import { execFileSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { expect } from 'chai'
import { GcnError, InsecureKeyFileError, InvalidKeyError } from '../src/errors.js'
import { KeyFileNotFoundError, loadOrCreateIdentity } from '../src/identity.js'

async function expectRejects(promise: Promise<unknown>, type: abstract new (...args: never[]) => Error): Promise<Error> {
  try {
    await promise
  } catch (err) {
    expect(err).to.be.instanceOf(type)
    return err as Error
  }
  throw new Error(`expected ${type.name}`)
}

describe('identity', () => {
  const dirs: string[] = []
  const tempDir = async (): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'gcn-identity-'))
    dirs.push(dir)
    return dir
  }

  after(async () => {
    await Promise.all(dirs.map(dir => rm(dir, { recursive: true, force: true })))
  })

  it('creates a 0600 key file in a new 0700 directory and reloads the same peer id', async () => {
    const dir = join(await tempDir(), 'nested', 'keys')
    const path = join(dir, 'peer.key')
    const first = await loadOrCreateIdentity(path)
    expect(first.created).to.equal(true)
    expect(first.privateKey.type).to.equal('Ed25519')
    expect((await stat(path)).mode & 0o777).to.equal(0o600)
    expect((await stat(dir)).mode & 0o777).to.equal(0o700)
    expect(await readdir(dir)).to.deep.equal(['peer.key'])

    // Stored as libp2p protobuf private-key bytes.
    const stored = privateKeyFromProtobuf(await readFile(path))
    expect(stored.equals(first.privateKey)).to.equal(true)

    const second = await loadOrCreateIdentity(path)
    expect(second.created).to.equal(false)
    expect(second.peerId.equals(first.peerId)).to.equal(true)
    expect(second.peerId.toString()).to.equal(first.peerId.toString())
  })

  for (const mode of [0o644, 0o640, 0o604, 0o660, 0o610]) {
    it(`refuses a key file with mode ${mode.toString(8)}`, async () => {
      const path = join(await tempDir(), 'peer.key')
      await loadOrCreateIdentity(path)
      await chmod(path, mode)
      const err = await expectRejects(loadOrCreateIdentity(path), InsecureKeyFileError)
      expect((err as InsecureKeyFileError).hint).to.equal(`chmod 600 ${path}`)
      expect(err.message).to.contain(path)
      // The refused key is left alone.
      expect((await stat(path)).mode & 0o777).to.equal(mode)
    })
  }

  it('accepts an owner-only mode other than 0600', async () => {
    const path = join(await tempDir(), 'peer.key')
    const { peerId } = await loadOrCreateIdentity(path)
    await chmod(path, 0o400)
    expect((await loadOrCreateIdentity(path)).peerId.equals(peerId)).to.equal(true)
  })

  it('refuses garbage content with InvalidKeyError naming the path', async () => {
    const path = join(await tempDir(), 'peer.key')
    await writeFile(path, 'not a key at all', { mode: 0o600 })
    const err = await expectRejects(loadOrCreateIdentity(path), InvalidKeyError)
    expect(err.message).to.contain(path)
    // Never overwritten with a fresh key.
    expect(await readFile(path, 'utf8')).to.equal('not a key at all')
  })

  it('refuses an empty file', async () => {
    const path = join(await tempDir(), 'peer.key')
    await writeFile(path, new Uint8Array(0), { mode: 0o600 })
    await expectRejects(loadOrCreateIdentity(path), InvalidKeyError)
  })

  it('refuses a key whose public half does not match', async () => {
    const path = join(await tempDir(), 'peer.key')
    await loadOrCreateIdentity(path)
    const bytes = await readFile(path)
    bytes[bytes.length - 1]! ^= 1
    await writeFile(path, bytes)
    await expectRejects(loadOrCreateIdentity(path), InvalidKeyError)
  })

  it('refuses a non-Ed25519 key', async () => {
    const path = join(await tempDir(), 'peer.key')
    await writeFile(path, privateKeyToProtobuf(await generateKeyPair('secp256k1')), { mode: 0o600 })
    const err = await expectRejects(loadOrCreateIdentity(path), InvalidKeyError)
    expect(err.message).to.match(/secp256k1/)
  })

  it('refuses a directory at the key path', async () => {
    const path = join(await tempDir(), 'peer.key')
    await mkdir(path, { mode: 0o700 })
    const err = await expectRejects(loadOrCreateIdentity(path), InvalidKeyError)
    expect(err.message).to.match(/regular file/)
  })

  it('refuses a FIFO at the key path without hanging', async function () {
    const path = join(await tempDir(), 'peer.key')
    try {
      execFileSync('mkfifo', ['-m', '600', path])
    } catch {
      this.skip()
    }
    await expectRejects(loadOrCreateIdentity(path), InvalidKeyError)
  })

  it('with create: false, fails on a missing file and creates nothing', async () => {
    const dir = await tempDir()
    const path = join(dir, 'missing', 'peer.key')
    const err = await expectRejects(loadOrCreateIdentity(path, { create: false }), KeyFileNotFoundError)
    expect(err).to.be.instanceOf(GcnError)
    expect((err as KeyFileNotFoundError).code).to.equal('ERR_KEY_FILE_NOT_FOUND')
    expect(err.message).to.contain(path)
    expect(await readdir(dir)).to.deep.equal([])
  })

  it('with create: false, loads an existing key', async () => {
    const path = join(await tempDir(), 'peer.key')
    const { peerId } = await loadOrCreateIdentity(path)
    const loaded = await loadOrCreateIdentity(path, { create: false })
    expect(loaded.created).to.equal(false)
    expect(loaded.peerId.equals(peerId)).to.equal(true)
  })

  it('concurrent first starts agree on one key', async () => {
    const dir = await tempDir()
    const path = join(dir, 'peer.key')
    const results = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateIdentity(path)))
    expect(results.filter(r => r.created)).to.have.length(1)
    const ids = new Set(results.map(r => r.peerId.toString()))
    expect(ids.size).to.equal(1)
    expect(await readdir(dir)).to.deep.equal(['peer.key'])
  })
})
