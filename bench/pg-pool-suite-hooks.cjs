'use strict';
/**
 * Loaded by bench/pg-pool-suite.ts into mocha (`--require`) in place of pg-pool's own
 * test/setup.js, which exits the process on the first unhandled rejection or warning: this
 * records each one (with the test running at the time) as a JSON line in the file named by
 * `PGPOOL_SUITE_EVENTS`, so the run goes on and every one is counted.
 */
const fs = require('node:fs');

const file = process.env.PGPOOL_SUITE_EVENTS;
let current = '(outside any test)';

function record(kind, value) {
  const text = value instanceof Error ? `${value.name}: ${value.message}` : String(value);
  if (file) fs.appendFileSync(file, `${JSON.stringify({ kind, test: current, text })}\n`);
}

process.on('unhandledRejection', (reason) => record('unhandledRejection', reason));
process.on('warning', (warning) => record('warning', warning));

exports.mochaHooks = {
  beforeEach() {
    current = this.currentTest ? this.currentTest.fullTitle() : current;
  },
};
