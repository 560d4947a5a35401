import { execFileSync } from 'node:child_process'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { expect } from 'chai'
import { MAX_RECORDED_TASK_STEPS, monotonicMs, recordTaskSteps, TASK_STEPS, TASK_STEPS_CHANNEL, traceTaskStep } from '../src/index.js'

describe('task steps', () => {
  it('are recorded in order with their times while a recording runs, and not after it stops', () => {
    const recording = recordTaskSteps()
    const before = monotonicMs()
    traceTaskStep('gateway.request')
    traceTaskStep('gateway.parsed')
    const after = monotonicMs()
    recording.stop()
    traceTaskStep('task.dispatched')
    expect(recording.events.map(e => e.step)).to.deep.equal(['gateway.request', 'gateway.parsed'])
    for (const e of recording.events) expect(e.atMs).to.be.within(before, after)
    expect(recording.events[0]!.atMs).to.be.at.most(recording.events[1]!.atMs)
    expect(recording.dropped).to.equal(0)
  })

  it('publishes nothing when nothing subscribes', () => {
    let seen = 0
    const count = (): void => {
      seen++
    }
    traceTaskStep('gateway.request')
    subscribe(TASK_STEPS_CHANNEL, count)
    traceTaskStep('gateway.request')
    unsubscribe(TASK_STEPS_CHANNEL, count)
    traceTaskStep('gateway.request')
    expect(seen).to.equal(1)
  })

  it('keeps at most maxEvents steps and counts the rest as dropped', () => {
    const recording = recordTaskSteps({ maxEvents: 2 })
    for (let i = 0; i < 5; i++) traceTaskStep('task.firstChunk')
    recording.stop()
    expect(recording.events).to.have.length(2)
    expect(recording.dropped).to.equal(3)
    expect(MAX_RECORDED_TASK_STEPS).to.be.greaterThan(1000)
  })

  it('times steps on a clock another process shares', () => {
    // The benchmark lines up steps of the gateway, distributor and supplier processes.
    const before = monotonicMs()
    const child = Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(Number(process.hrtime.bigint()) / 1e6))']))
    const after = monotonicMs()
    expect(child).to.be.within(before, after)
  })

  it('lists the steps of a streamed request in order, each once', () => {
    expect(new Set(TASK_STEPS).size).to.equal(TASK_STEPS.length)
    expect(TASK_STEPS[0]).to.equal('gateway.request')
    expect(TASK_STEPS.at(-1)).to.equal('gateway.firstWrite')
  })
})
