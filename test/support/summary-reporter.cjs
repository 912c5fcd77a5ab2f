// Spec reporter plus one plain closing line, "N passed, N failed", that CI can read.
'use strict';
const Mocha = require('mocha');
const { Spec } = Mocha.reporters;
const { EVENT_RUN_END } = Mocha.Runner.constants;

class SummaryReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats ?? { passes: 0, failures: 0, pending: 0 };
      const line = `${s.passes} passed, ${s.failures} failed` + (s.pending ? `, ${s.pending} skipped` : '');
      process.stdout.write(`\n${line}\n`);
    });
  }
}
module.exports = SummaryReporter;
