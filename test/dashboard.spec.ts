import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { expect } from 'chai'
import { type Browser, chromium } from 'playwright-core'
import { type Network, startNetwork } from './helpers/network.js'
import { killAll, ROOT, waitFor } from './helpers/procs.js'

/** Debian's chromium (apt install chromium), or GCN_CHROMIUM. */
function chromiumPath(): string | undefined {
  const candidates = [process.env.GCN_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(
    (p): p is string => p !== undefined
  )
  return candidates.find(p => existsSync(p))
}

describe('distributor dashboard (headless Chromium)', function () {
  this.timeout(120_000)
  let net: Network | undefined
  let browser: Browser | undefined

  before(async function () {
    const executablePath = chromiumPath()
    if (executablePath === undefined) {
      process.stderr.write('    skipped: no Chromium found (apt install chromium, or set GCN_CHROMIUM=/path/to/chromium)\n')
      this.skip()
    }
    net = await startNetwork({ suppliers: 2, distributorArgs: ['--status-port', '0'] })
    browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu'] })
  })

  after(async () => {
    await browser?.close()
    await net?.stop()
    await killAll()
  })

  it('loads from the distributor and its live values change as requests are served', async () => {
    const statusUrl = (await net!.distributor.proc.waitForLine(/^status: (http:\/\/\S+)$/))[1]!
    const page = await browser!.newPage()
    const errors: string[] = []
    page.on('pageerror', err => errors.push(err.message))
    await page.goto(`${statusUrl}/dashboard`)
    // The page has polled the JSON at least once.
    await page.waitForFunction(() => document.body.dataset.updated !== undefined, undefined, { timeout: 10_000 })
    const text = async (id: string): Promise<string> => (await page.textContent(`#${id}`)) ?? ''
    const totalBefore = Number(await text('total'))
    await waitFor('both suppliers in the table', async () => (await page.locator('#suppliers tr').count()) === 2, 15_000)

    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${net!.gatewayUrl}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${net!.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: net!.modelName, messages: [{ role: 'user', content: `Hello ${i}` }], max_tokens: 8 })
      })
      expect(res.status).to.equal(200)
      await res.json()
    }
    await waitFor('the request counter to rise', async () => Number(await text('total')) >= totalBefore + 4, 10_000)
    await waitFor('a TTFT percentile', async () => /\d/.test(await text('p50')), 10_000)
    const served = await page.$$eval('#suppliers tr', rows =>
      rows.map(r => Number((r.children[6]?.textContent ?? '0 / 0').split('/')[0]!.trim()))
    )
    expect(served.reduce((a, b) => a + b, 0)).to.be.greaterThanOrEqual(4)
    // The latency chart drew something: some pixel of the canvas is not blank.
    const drawn = await page.$eval('#latency', canvas => {
      const c = (canvas as HTMLCanvasElement).getContext('2d')!
      const { data } = c.getImageData(0, 0, (canvas as HTMLCanvasElement).width, (canvas as HTMLCanvasElement).height)
      return data.some((v, i) => i % 4 === 3 && v !== 0)
    })
    expect(drawn).to.equal(true)
    expect(errors).to.deep.equal([])
    const artifacts = join(ROOT, 'artifacts')
    mkdirSync(artifacts, { recursive: true })
    await page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true })
  })
})
