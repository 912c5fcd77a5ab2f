import assert from 'node:assert/strict';
import pg from 'pg';
import {
  ConnectionFencedError,
  DiscoveryError,
  FailoverTimeoutError,
  NoPrimaryError,
  OutcomeUnknownError,
  PgConsulError,
  TransactionOutcomeUnknownError,
} from '../../lib/errors.js';

/** pg's DatabaseError as the protocol parser builds it for a FATAL 57P01. */
function terminated(): pg.DatabaseError {
  const e = new pg.DatabaseError('terminating connection due to administrator command', 116, 'error');
  Object.assign(e, { severity: 'FATAL', code: '57P01', file: 'postgres.c', line: '3204', routine: 'ProcessInterrupts' });
  return e;
}

const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED', errno: -111 });

describe('errors: identity of the errors that stand for an underlying failure', () => {
  for (const [name, make] of [
    ['OutcomeUnknownError', (cause: unknown) => new OutcomeUnknownError('lost after send', { cause, node: 'n:1' })],
    ['FailoverTimeoutError', (cause: unknown) => new FailoverTimeoutError('gave up after 3 attempts', { cause, node: 'n:1', attempts: 3 })],
    ['TransactionOutcomeUnknownError', (cause: unknown) => new TransactionOutcomeUnknownError('lost during COMMIT', { cause })],
  ] as const) {
    it(`${name} takes code, message and PostgreSQL's fields from pg's DatabaseError`, () => {
      const cause = terminated();
      const err = make(cause);
      assert.ok(err instanceof PgConsulError);
      assert.equal(err.name, name);
      assert.equal(err.code, '57P01');
      assert.equal(err.message, 'terminating connection due to administrator command');
      assert.equal(err.severity, 'FATAL');
      assert.equal(err.routine, 'ProcessInterrupts');
      assert.equal((err as unknown as { file?: string }).file, 'postgres.c');
      assert.equal(err.sqlState, '57P01');
      assert.equal(err.cause, cause);
      assert.match(err.pgConsulMessage, /lost|gave up/);
      assert.ok(err.pgConsulCode.startsWith('PGCONSUL_'));
      assert.ok(String(err.stack).startsWith(`${name}: terminating connection`), 'the stack names the class');
    });

    it(`${name} takes Node's code and message (ECONNREFUSED); no code when the cause has none, as pg's error`, () => {
      const err = make(refused());
      assert.equal(err.code, 'ECONNREFUSED');
      assert.equal(err.message, 'connect ECONNREFUSED 127.0.0.1:5432');
      assert.equal(err.sqlState, undefined);
      assert.equal(err.severity, undefined);
      const bare = make(new Error('Connection terminated unexpectedly'));
      assert.equal(bare.code, undefined);
      assert.ok(bare.pgConsulCode.startsWith('PGCONSUL_'));
      assert.equal(bare.message, 'Connection terminated unexpectedly');
    });

    it(`${name} keeps its own identity without a cause, or when the cause is pg-consul's`, () => {
      const alone = make(undefined);
      assert.equal(alone.code, alone.pgConsulCode);
      assert.equal(alone.message, alone.pgConsulMessage);
      const fenced = make(new ConnectionFencedError('n:1', 'left its primary role', true));
      assert.equal(fenced.code, fenced.pgConsulCode);
      assert.match(fenced.message, /lost|gave up/);
    });
  }

  it('the other errors never adopt their cause: code and message are pg-consul\'s', () => {
    const noPrimary = new NoPrimaryError('no writable primary is known right now', { cause: refused() });
    assert.equal(noPrimary.code, 'PGCONSUL_NO_PRIMARY');
    assert.equal(noPrimary.pgConsulCode, 'PGCONSUL_NO_PRIMARY');
    assert.equal(noPrimary.message, 'no writable primary is known right now');
    const discovery = new DiscoveryError('Consul answered 500', { cause: refused(), status: 500 });
    assert.equal(discovery.code, 'PGCONSUL_DISCOVERY');
    assert.equal(discovery.pgConsulMessage, discovery.message);
  });

  it('the adopted fields are enumerable own properties, as on pg\'s DatabaseError (loggers print them)', () => {
    const err = new OutcomeUnknownError('lost after send', { cause: terminated() });
    const keys = Object.keys(err);
    for (const k of ['code', 'severity', 'routine', 'pgConsulCode', 'outcome']) assert.ok(keys.includes(k), k);
    assert.ok(!keys.includes('detail'), 'absent fields are not added');
  });
});
