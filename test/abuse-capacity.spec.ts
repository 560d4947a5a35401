/**
 * A supplier that advertises capacity it does not have: it claims 32 free
 * slots but runs one task at a time and refuses any other (no queue). The
 * distributor must not believe it: every game request still completes (a
 * refused task fails over to another supplier before any text is sent), the
 * liar is held to what it showed it can run, and its refusals stay few instead
 * of growing with the load.
 */
import { expect } from 'chai'
import { type Network, startNetwork } from './helpers/network.js'

const REQUESTS = 60
const CONCURRENCY = 8

interface DashboardSupplier {
  peerId: string
  slots: number
  believedSlots: number
  refusals: number
  successes: number
  failures: number
}

describe('abuse: a supplier advertising capacity it does not have', function () {
  this.timeout(180_000)
  let net: Network | undefined

  before(async () => {
    net = await startNetwork({
      suppliers: 3,
      // Supplier 1 lies: 1 real slot, no queue, 32 advertised. Later flags win over the helper's --slots 2.
      supplierArgs: i => (i === 0 ? ['--slots', '1', '--max-queue', '0', '--test-advertise-slots', '32'] : []),
      distributorArgs: ['--key-max-concurrent', String(CONCURRENCY * 2), '--key-rate-per-minute', '100000']
    })
  })

  after(async () => {
    await net?.stop()
  })

  it('serves every request, holds the liar to one slot and keeps its refusals bounded', async () => {
    const n = net!
    const liar = n.suppliers[0]!
    const liarStatus = await liar.status()
    expect(liarStatus.stats.totalSlots, 'the liar really has one slot').to.equal(1)
    const statusUrl = n.distributor.proc.lines.find(l => l.startsWith('status: '))!.slice('status: '.length)
    const dashboard = async (): Promise<DashboardSupplier[]> =>
      ((await (await fetch(`${statusUrl}/dashboard/data.json`)).json()) as { suppliers: DashboardSupplier[] }).suppliers
    const before = (await dashboard()).find(s => s.peerId === liar.peerId)!
    expect(before.slots, 'the distributor heard the lie').to.equal(32)

    let next = 0
    const statuses: number[] = []
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < REQUESTS) {
          const i = next++
          const res = await fetch(`${n.gatewayUrl}/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${n.apiKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: n.modelName, messages: [{ role: 'user', content: `Request ${i}, please.` }], max_tokens: 16 }),
            signal: AbortSignal.timeout(60_000)
          })
          await res.arrayBuffer()
          statuses.push(res.status)
        }
      })
    )
    expect(
      statuses.filter(s => s !== 200),
      'requests that did not complete'
    ).to.deep.equal([])

    const after = (await dashboard()).find(s => s.peerId === liar.peerId)!
    const served = (await liar.status()).completedTasks
    console.log(
      `      liar: advertised ${after.slots} slots, believed ${after.believedSlots}; ${after.refusals} refusals, ${served} tasks served of ${REQUESTS}`
    )
    expect(after.refusals, 'the lie was caught by a refusal').to.be.greaterThan(0)
    expect(after.believedSlots, 'slots the distributor now believes the liar has').to.be.at.most(2)
    // Held to its real slot, it refuses again only when the hold ends or another task overlaps: a handful, not one per request.
    expect(after.refusals, 'refusals over the run').to.be.at.most(6)
    // Still used within what it can do: not banned, just not believed.
    expect(served, 'tasks the liar served').to.be.greaterThan(0)
  })
})
