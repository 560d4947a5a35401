import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { type ConfigSchema, formatHelp, loadConfig } from '../src/config.js'
import { ConfigError } from '../src/errors.js'

const schema = {
  port: { type: 'integer', min: 1, max: 65535, default: 8080, description: 'port' },
  name: { type: 'string', required: true, description: 'name' },
  listen: { type: 'string[]', description: 'addrs' },
  verbose: { type: 'boolean', default: false, description: 'more output' },
  mode: { type: 'string', choices: ['a', 'b'], default: 'a', description: 'mode' }
} satisfies ConfigSchema

describe('loadConfig', () => {
  let dir: string
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'gcn-config-'))
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('applies defaults, then file, then env, then flags', () => {
    const file = join(dir, 'c.json')
    writeFileSync(file, JSON.stringify({ name: 'from-file', port: 1000, mode: 'b' }))
    const env = { GCN_PORT: '2000' }
    const { values, sources } = loadConfig(schema, { argv: ['--config', file, '--listen', '/a', '--listen=/b,/c', '--verbose'], env })
    expect(values).to.deep.equal({ port: 2000, name: 'from-file', listen: ['/a', '/b', '/c'], verbose: true, mode: 'b' })
    expect(sources).to.deep.equal({ port: 'env', name: 'file', listen: 'flag', verbose: 'flag', mode: 'file' })
    const flagWins = loadConfig(schema, { argv: ['--name', 'x', '--port', '3000'], env })
    expect(flagWins.values.port).to.equal(3000)
  })

  it('rejects bad values with a ConfigError naming the option and its source', () => {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['--name', 'x', '--port', 'abc'], {}, /port \(from --port\) must be a number/],
      [['--name', 'x', '--port', '70000'], {}, /port .* must be <= 65535/],
      [['--name', 'x'], { GCN_PORT: '1.5' }, /port \(from env GCN_PORT\) must be an integer/],
      [['--name', 'x', '--mode', 'z'], {}, /mode .* must be one of a, b/],
      [['--name', 'x', '--nope'], {}, /unknown option --nope/],
      [['--name'], {}, /--name needs a value/],
      [[], {}, /missing required option name/],
      [['--name', 'x', 'stray'], {}, /unexpected argument/],
      [['--name', 'x'], { GCN_VERBOSE: 'maybe' }, /verbose .* must be true or false/]
    ]
    for (const [argv, env, pattern] of cases) {
      expect(() => loadConfig(schema, { argv, env }), argv.join(' ')).to.throw(ConfigError, pattern)
    }
  })

  it('rejects unreadable, non-JSON and unknown-key config files', () => {
    const bad = join(dir, 'bad.json')
    writeFileSync(bad, '{ nope')
    expect(() => loadConfig(schema, { argv: ['--config', bad], env: {} })).to.throw(ConfigError, /not valid JSON/)
    const unknown = join(dir, 'unknown.json')
    writeFileSync(unknown, JSON.stringify({ name: 'x', colour: 'red' }))
    expect(() => loadConfig(schema, { argv: ['--config', unknown], env: {} })).to.throw(ConfigError, /unknown key "colour"/)
    expect(() => loadConfig(schema, { argv: ['--config', join(dir, 'missing.json')], env: {} })).to.throw(ConfigError, /cannot read/)
  })

  it('supports --no-flag for booleans and --help without required options', () => {
    expect(loadConfig(schema, { argv: ['--name', 'x', '--no-verbose'], env: { GCN_VERBOSE: 'true' } }).values.verbose).to.equal(false)
    expect(loadConfig(schema, { argv: ['--help'], env: {} }).help).to.equal(true)
  })

  it('documents every flag with its env var in the help text', () => {
    const help = formatHelp('x [options]', 'does x', schema)
    for (const flag of ['--port', '--name', '--listen', '--verbose', '--mode', '--config', 'GCN_PORT', 'GCN_LISTEN']) {
      expect(help).to.include(flag)
    }
  })
})
