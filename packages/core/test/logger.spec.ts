import { expect } from 'chai'
import { createLogger } from '../src/logger.js'

describe('logger', () => {
  it('writes JSON lines with component names and respects the level', () => {
    const lines: string[] = []
    const log = createLogger({ component: 'gcn:test', level: 'info', sink: l => lines.push(l) })
    log.debug('hidden')
    log.child('sub').info('hello', { n: 1, big: 2n, err: new Error('boom') })
    expect(lines).to.have.length(1)
    const rec = JSON.parse(lines[0]!)
    expect(rec).to.include({ level: 'info', component: 'gcn:test:sub', msg: 'hello', n: 1, big: '2' })
    expect(rec.err).to.deep.include({ name: 'Error', message: 'boom' })
  })

  it('never writes prompts, outputs or keys even when passed by mistake', () => {
    const lines: string[] = []
    const log = createLogger({ sink: l => lines.push(l) })
    log.info('oops', { prompt: 'secret prompt', output: 'secret output', privateKey: 'k', nonce: new Uint8Array(32) })
    expect(lines[0]).to.not.include('secret')
    expect(JSON.parse(lines[0]!).prompt).to.equal('[redacted]')
  })
})
