import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { classify } from '../../../lib/retry/classify.js';
import type { Phase } from '../../../lib/retry/classify.js';
import {
  ConnectionFencedError,
  FailoverTimeoutError,
  NotWritableError,
  OutcomeUnknownError,
  PoolEndedError,
  TransactionOutcomeUnknownError,
  isHookError,
  markHookError,
  markTransientConnectError,
} from '../../../lib/errors.js';

interface Case {
  name: string;
  error: { code?: string; severity?: string; message?: string; aggregate?: boolean };
  phase: Phase;
  role: 'primary' | 'replica';
  lost?: boolean;
  expect: { outcome: string; retryable: boolean; invalidatesNode: boolean };
}

const cases = JSON.parse(readFileSync(new URL('../../fixtures/classification.json', import.meta.url), 'utf8')) as Case[];

function makeError(spec: Case['error']): Error {
  const err = spec.aggregate ? new AggregateError([new Error('x')], spec.message ?? '') : new Error(spec.message ?? 'boom');
  if (spec.code !== undefined) Object.assign(err, { code: spec.code });
  if (spec.severity !== undefined) Object.assign(err, { severity: spec.severity });
  return err;
}

describe('retry/classify (table: test/fixtures/classification.json)', () => {
  for (const c of cases) {
    it(c.name, () => {
      const got = classify(makeError(c.error), c.phase, c.role, c.lost ?? true);
      assert.deepEqual(
        { outcome: got.outcome, retryable: got.retryable, invalidatesNode: got.invalidatesNode },
        c.expect,
      );
    });
  }

  it('the role check failure is retryable and invalidates', () => {
    const got = classify(new NotWritableError('x'), 'acquire', 'primary');
    assert.equal(got.retryable, true);
    assert.equal(got.invalidatesNode, true);
  });

  it('a pool that ended is never retried', () => {
    assert.equal(classify(new PoolEndedError(), 'acquire', 'primary').retryable, false);
  });

  it('never reads the message when a code exists', () => {
    const a = makeError({ code: '23505', severity: 'ERROR', message: 'Connection terminated unexpectedly' });
    assert.equal(classify(a, 'query', 'primary', false).outcome, 'executed');
  });

  describe('ConnectionFencedError (pg-consul closed the socket of a fenced node)', () => {
    const rows: [string, boolean, Phase, 'primary' | 'replica', string, boolean][] = [
      ['fenced before send, primary', false, 'query', 'primary', 'not-executed', true],
      ['fenced before send, replica', false, 'query', 'replica', 'not-executed', true],
      ['fenced while connecting', true, 'acquire', 'primary', 'not-executed', true],
      ['in flight on the primary', true, 'query', 'primary', 'unknown', false],
      ['in flight on a replica', true, 'query', 'replica', 'unknown', true],
    ];
    for (const [name, sent, phase, role, outcome, retryable] of rows) {
      it(`${name} → ${outcome}, ${retryable ? 'retried' : 'surfaced'}`, () => {
        const c = classify(new ConnectionFencedError('h:1', 'gone', sent), phase, role, true);
        assert.equal(c.outcome, outcome);
        assert.equal(c.retryable, retryable);
        assert.equal(c.refreshTopology, true);
        assert.equal(c.invalidatesNode, false);
      });
    }
  });
});

describe('retry/classify: pg-pool checkout refusals surface unchanged', () => {
  const NOT_RETRIED = { outcome: 'not-executed', retryable: false, invalidatesNode: false, refreshTopology: false };
  it('pg-pool\'s checkout timeout (connectionTimeoutMillis, pool full) is not retried', () => {
    assert.deepEqual({ ...classify(new Error('timeout exceeded when trying to connect'), 'acquire', 'primary') }, NOT_RETRIED);
    assert.deepEqual({ ...classify(new Error('timeout exceeded when trying to connect'), 'acquire', 'replica') }, NOT_RETRIED);
  });
  it('codeless connect errors: only pg\'s connection-lost ones and pg-consul\'s transient ones are retried', () => {
    for (const m of ['Connection terminated unexpectedly', 'Connection terminated', 'timeout expired', 'Query read timeout']) {
      assert.equal(classify(new Error(m), 'acquire', 'primary').retryable, true, m);
    }
    for (const m of ['The server does not support SSL connections', 'Temporary connection failure']) {
      assert.deepEqual({ ...classify(new Error(m), 'acquire', 'primary') }, NOT_RETRIED, m);
    }
    assert.equal(classify(markTransientConnectError(new Error('pool closed')), 'acquire', 'primary').retryable, true);
  });
  it('a new connection\'s connect timeout still is (the node may be gone)', () => {
    assert.equal(classify(new Error('Connection terminated due to connection timeout'), 'acquire', 'primary').retryable, true);
  });
  it('an error from the app\'s verify / onConnect hook is not retried; the same message unmarked is', () => {
    const hook = new Error('verify says no');
    markHookError(hook);
    assert.deepEqual({ ...classify(hook, 'acquire', 'primary') }, NOT_RETRIED);
    assert.equal(classify(new Error('verify says no'), 'acquire', 'primary').retryable, false, 'a codeless error pg never raises is not a network failure');
    assert.equal(isHookError(hook), true);
    assert.equal(isHookError('text'), false);
  });
});

describe('retry/classify: pg-consul\'s final verdicts are never judged again by the code they adopted', () => {
  const terminated = (): Error => Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01', severity: 'FATAL' });
  for (const phase of ['acquire', 'query'] as const) {
    for (const role of ['primary', 'replica'] as const) {
      it(`${phase} on the ${role} path`, () => {
        const unknown = new OutcomeUnknownError('lost after send', { cause: terminated() });
        assert.equal(unknown.code, '57P01', 'precondition: it carries a retryable-looking SQLSTATE');
        assert.deepEqual(classify(unknown, phase, role), { outcome: 'unknown', retryable: false, invalidatesNode: false, refreshTopology: false });
        const txUnknown = new TransactionOutcomeUnknownError('lost during COMMIT', { cause: terminated() });
        assert.equal(classify(txUnknown, phase, role).retryable, false);
        const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
        const gaveUp = new FailoverTimeoutError('gave up', { cause: refused });
        assert.deepEqual(classify(gaveUp, phase, role), { outcome: 'not-executed', retryable: false, invalidatesNode: false, refreshTopology: false });
      });
    }
  }
});
