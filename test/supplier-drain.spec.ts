import { expect } from 'chai'
import { type Network, startNetwork } from './helpers/network.js'
import { killAll, waitFor } from './helpers/procs.js'

describe('supplier graceful shutdown (real processes)', function () {
  this.timeout(90_000)
  let net: Network | undefined

  before(async () => {
    // Each generation waits 1.5 s first, so a task is surely in flight when SIGTERM arrives.
    net = await startNetwork({ suppliers: 1, supplierArgs: ['--test-stall-ms', '1500', '--drain-ms', '8000'] })
  })

  after(async () => {
    await net?.stop()
    await killAll()
  })

  it('finishes the task in flight on SIGTERM, then exits 0', async () => {
    const supplier = net!.suppliers[0]!
    const request = fetch(`${net!.gatewayUrl}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${net!.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: net!.modelName, messages: [{ role: 'user', content: 'Last order!' }], max_tokens: 8 })
    })
    // The task stream is open (the supplier stalls before generating).
    await waitFor(
      'the task to reach the supplier',
      async () => ((await supplier.status()) as unknown as { openTaskStreams: number }).openTaskStreams > 0,
      10_000,
      20
    )
    const exit = supplier.proc.stop('SIGTERM', 20_000)
    const res = await request
    expect(res.status).to.equal(200)
    const body = (await res.json()) as { choices: Array<{ message: { content: string }; finish_reason: string }> }
    expect(body.choices[0]!.finish_reason).to.be.oneOf(['stop', 'length'])
    expect(await exit).to.equal(0)
  })
})
