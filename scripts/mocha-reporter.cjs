'use strict'
// Mocha's spec reporter plus one closing line, "N passed, N failed, N skipped",
// in the plain form CI reads.
const Mocha = require('mocha')
const { EVENT_RUN_END } = Mocha.Runner.constants

class GcnReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options)
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats ?? {}
      process.stdout.write(`\n${s.passes ?? 0} passed, ${s.failures ?? 0} failed, ${s.pending ?? 0} skipped\n`)
    })
  }
}
module.exports = GcnReporter
