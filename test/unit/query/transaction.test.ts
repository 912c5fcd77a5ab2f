import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type pg from 'pg';
import {
  DEFAULT_MAX_ATTEMPTS,
  beginStatement,
  decideTransactionFailure,
  giveUpError,
  resolveTransactionOptions,
  runTransaction,
} from '../../../lib/query/transaction.js';
import type { TransactionClient, TransactionEnv, TransactionFailure, TransactionStage } from '../../../lib/query/transaction.js';
import { AttemptFailure, runWithRetry } from '../../../lib/retry/run-with-retry.js';
import type { FailoverBudget, RetryDeps } from '../../../lib/retry/run-with-retry.js';
import { FailoverTimeoutError, PoolEndedError, RowCountError, TransactionOutcomeUnknownError } from '../../../lib/errors.js';

/** A server error as pg raises it (code + severity). */
function server(code: string, message = `server ${code}`): Error {
  return Object.assign(new Error(message), { code, severity: 'ERROR' });
}
/** A Node.js socket error. */
function net(code: string): Error {
  return Object.assign(new Error(`socket ${code}`), { code });
}
const TERMINATED = (): Error => new Error('Connection terminated unexpectedly');

describe('query/transaction: decideTransactionFailure (table)', () => {
  interface Row {
    name: string;
    stage: TransactionStage;
    error: () => unknown;
    fromDatabase?: boolean;
    lost?: boolean;
    readOnly?: boolean;
    role?: 'primary' | 'replica';
    expect: { action: string; reason?: string; destroy?: boolean; invalidates?: boolean; outcome?: string };
  }
  const rows: Row[] = [
    // before COMMIT: nothing committed
    { name: 'begin: connection lost on a stale pooled connection', stage: 'begin', error: TERMINATED, lost: true, expect: { action: 'replay', reason: 'failover', destroy: true } },
    { name: 'begin: ECONNRESET', stage: 'begin', error: () => net('ECONNRESET'), expect: { action: 'replay', reason: 'failover', destroy: true } },
    { name: 'begin: 57P01 admin shutdown', stage: 'begin', error: () => server('57P01'), expect: { action: 'replay', reason: 'failover', destroy: true } },
    { name: 'body: connection lost mid-transaction', stage: 'body', error: TERMINATED, lost: true, expect: { action: 'replay', reason: 'failover', destroy: true } },
    { name: 'body: 57P01 answered to a statement', stage: 'body', error: () => server('57P01'), expect: { action: 'replay', reason: 'failover', destroy: true } },
    { name: 'body: 57P02 crash shutdown', stage: 'body', error: () => server('57P02'), expect: { action: 'replay', reason: 'failover', destroy: true } },
    { name: 'body: 57P03 cannot connect now', stage: 'body', error: () => server('57P03'), expect: { action: 'replay', reason: 'failover', destroy: false } },
    { name: 'body: 25006 read-only node on the primary path', stage: 'body', error: () => server('25006'), expect: { action: 'replay', reason: 'failover', invalidates: true, destroy: false } },
    { name: 'body: 25006 on the replica path does not invalidate', stage: 'body', error: () => server('25006'), role: 'replica', readOnly: true, expect: { action: 'replay', invalidates: false } },
    { name: 'body: 40001 serialization failure', stage: 'body', error: () => server('40001'), expect: { action: 'replay', reason: 'conflict', destroy: false } },
    { name: 'body: 40P01 deadlock', stage: 'body', error: () => server('40P01'), expect: { action: 'replay', reason: 'conflict', destroy: false } },
    { name: 'body: 23505 unique violation is the caller\'s', stage: 'body', error: () => server('23505'), expect: { action: 'rethrow', outcome: 'executed', destroy: false } },
    { name: 'body: 42601 syntax error', stage: 'body', error: () => server('42601'), expect: { action: 'rethrow' } },
    { name: 'body: pg refusing bad input (no code, connection fine)', stage: 'body', error: () => new Error('bind message supplies 1 parameters'), expect: { action: 'rethrow' } },
    { name: 'body: the callback\'s own error', stage: 'body', error: () => new Error('out of stock'), fromDatabase: false, expect: { action: 'rethrow', outcome: 'not-executed', destroy: false } },
    { name: 'body: the callback\'s own error that looks like a network error', stage: 'body', error: () => net('ECONNRESET'), fromDatabase: false, expect: { action: 'rethrow' } },
    { name: 'body: the callback\'s own error that looks like 40001', stage: 'body', error: () => server('40001'), fromDatabase: false, expect: { action: 'rethrow' } },
    { name: 'body: the callback\'s error after the connection broke', stage: 'body', error: () => new Error('wrapped'), fromDatabase: false, lost: true, expect: { action: 'replay', reason: 'failover', destroy: true } },
    // COMMIT sent
    { name: 'commit: 40001 at commit time is a rejection', stage: 'commit', error: () => server('40001'), expect: { action: 'replay', reason: 'conflict', destroy: false, outcome: 'not-executed' } },
    { name: 'commit: 40P01 at commit time', stage: 'commit', error: () => server('40P01'), expect: { action: 'replay', reason: 'conflict' } },
    { name: 'commit: deferred 23505 rolled back', stage: 'commit', error: () => server('23505'), expect: { action: 'rethrow', outcome: 'executed', destroy: false } },
    { name: 'commit: connection lost', stage: 'commit', error: TERMINATED, lost: true, expect: { action: 'outcome-unknown', outcome: 'unknown', destroy: true } },
    { name: 'commit: ECONNRESET', stage: 'commit', error: () => net('ECONNRESET'), expect: { action: 'outcome-unknown', destroy: true } },
    { name: 'commit: 57P01 terminated while committing', stage: 'commit', error: () => server('57P01'), expect: { action: 'outcome-unknown', destroy: true } },
    { name: 'commit: 57P02', stage: 'commit', error: () => server('57P02'), expect: { action: 'outcome-unknown' } },
    { name: 'commit: query read timeout (no code, connection open)', stage: 'commit', error: () => new Error('Query read timeout'), expect: { action: 'outcome-unknown' } },
    { name: 'commit: read-only, connection lost → replay (nothing to lose)', stage: 'commit', error: TERMINATED, lost: true, readOnly: true, expect: { action: 'replay', reason: 'failover', outcome: 'unknown', destroy: true } },
    { name: 'commit: read-only, 57P01 → replay', stage: 'commit', error: () => server('57P01'), readOnly: true, expect: { action: 'replay', reason: 'failover' } },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const facts: TransactionFailure = {
        stage: r.stage,
        error: r.error(),
        fromDatabase: r.fromDatabase ?? true,
        connectionLost: r.lost ?? false,
        readOnly: r.readOnly ?? false,
        role: r.role ?? 'primary',
      };
      const d = decideTransactionFailure(facts);
      assert.equal(d.action, r.expect.action);
      if (r.expect.reason !== undefined) assert.equal(d.reason, r.expect.reason);
      if (r.expect.destroy !== undefined) assert.equal(d.destroyClient, r.expect.destroy);
      if (r.expect.invalidates !== undefined) assert.equal(d.invalidatesNode, r.expect.invalidates);
      if (r.expect.outcome !== undefined) assert.equal(d.outcome, r.expect.outcome);
      if (d.action !== 'replay') assert.equal(d.reason, undefined);
    });
  }

  it('never reads the message when a SQLSTATE exists', () => {
    const d = decideTransactionFailure({ stage: 'commit', error: server('23505', 'Connection terminated unexpectedly'), fromDatabase: true, connectionLost: false, readOnly: false, role: 'primary' });
    assert.equal(d.action, 'rethrow');
  });
});

describe('query/transaction: options and BEGIN', () => {
  const cases: Array<[Parameters<typeof resolveTransactionOptions>[0], string]> = [
    [undefined, 'BEGIN'],
    [{}, 'BEGIN'],
    [{ isolationLevel: 'read committed' }, 'BEGIN ISOLATION LEVEL READ COMMITTED'],
    [{ isolationLevel: 'repeatable read', readOnly: true }, 'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY'],
    [{ isolationLevel: 'serializable', readOnly: true, deferrable: true }, 'BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE'],
    [{ readOnly: false, deferrable: false }, 'BEGIN READ WRITE, NOT DEFERRABLE'],
  ];
  for (const [options, sql] of cases) {
    it(`${JSON.stringify(options)} → ${sql}`, () => {
      assert.equal(beginStatement(resolveTransactionOptions(options)), sql);
    });
  }

  it('defaults maxAttempts to 5 and keeps a valid one', () => {
    assert.equal(DEFAULT_MAX_ATTEMPTS, 5);
    assert.equal(resolveTransactionOptions(undefined).maxAttempts, 5);
    assert.equal(resolveTransactionOptions({ maxAttempts: 1 }).maxAttempts, 1);
  });

  const invalid: Array<[string, unknown, RegExp]> = [
    ['an unknown isolation level (no SQL injection)', { isolationLevel: 'serializable; DROP TABLE t' }, /isolationLevel/],
    ['maxAttempts 0', { maxAttempts: 0 }, /maxAttempts/],
    ['maxAttempts 1.5', { maxAttempts: 1.5 }, /maxAttempts/],
    ['maxAttempts Infinity', { maxAttempts: Infinity }, /maxAttempts/],
    ['readOnly as a string', { readOnly: 'yes' }, /readOnly/],
    ['deferrable as a number', { deferrable: 1 }, /deferrable/],
    ['options that are not an object', 'serializable', /object/],
  ];
  for (const [name, options, message] of invalid) {
    it(`rejects ${name} with a TypeError`, () => {
      assert.throws(() => resolveTransactionOptions(options as never), (err: unknown) => err instanceof TypeError && message.test(err.message));
    });
  }
});

describe('query/transaction: giveUpError', () => {
  it('surfaces the last conflict error unchanged', () => {
    const last = server('40001');
    assert.equal(giveUpError('conflict', { first: server('40001'), last, attempts: 5, node: 'a:1', elapsedMillis: 10, role: 'primary' }), last);
  });
  it('turns failover failures into FailoverTimeoutError with the first error as cause', () => {
    const first = server('57P01');
    const err = giveUpError('failover', { first, last: TERMINATED(), attempts: 3, node: 'a:1', elapsedMillis: 10, role: 'primary' });
    assert.ok(err instanceof FailoverTimeoutError);
    assert.equal(err.cause, first);
    assert.equal(err.attempts, 3);
    assert.equal(err.outcome, 'not-executed');
    assert.equal(err.sqlState, '57P01');
    assert.equal(err.code, '57P01', "the first error's identity");
    assert.equal(err.message, 'server 57P01');
    assert.match(err.pgConsulMessage, /did not commit/);
  });
});

// ---------------------------------------------------------------------------------------
// The loop, with a scripted fake client.
// ---------------------------------------------------------------------------------------

type Reply = pg.QueryResult | Error | ((client: FakeClient) => pg.QueryResult | Error | Promise<pg.QueryResult | Error>);

function ok(command = 'SELECT', rows: unknown[] = []): pg.QueryResult {
  return { command, rowCount: rows.length, oid: 0, fields: [], rows } as pg.QueryResult;
}

/** A pg.PoolClient stand-in: answers statements from a script, records what it was sent. */
class FakeClient extends EventEmitter {
  readonly host = '10.0.0.1';
  readonly port: number;
  readonly sent: string[] = [];
  released: { destroyed: boolean } | undefined;
  readonly #script: (text: string) => Reply | undefined;

  constructor(port: number, script: (text: string) => Reply | undefined = () => undefined) {
    super();
    this.port = port;
    this.#script = script;
  }

  async query(text: string | { text: string }): Promise<pg.QueryResult> {
    const sql = typeof text === 'string' ? text : text.text;
    this.sent.push(sql);
    let reply = this.#script(sql) ?? ok(sql.split(' ')[0]!.toUpperCase());
    if (typeof reply === 'function') reply = await reply(this);
    await Promise.resolve();
    if (reply instanceof Error) throw reply;
    return reply;
  }

  release(err?: unknown): void {
    if (this.released) throw new Error('released twice');
    this.released = { destroyed: Boolean(err) };
  }

  /** The connection breaks: pg emits `error` then `end`. */
  breakConnection(): void {
    this.emit('error', TERMINATED());
    this.emit('end');
  }
}

function harness(scripts: Array<(text: string) => Reply | undefined>, overrides: Partial<RetryDeps> = {}) {
  let clock = 0;
  const clients: FakeClient[] = [];
  const log = { retries: [] as Array<{ attempt: number; error: Error; outcome: string; node: string | undefined }>, waits: [] as number[], invalidated: [] as string[], refreshes: 0 };
  const deps: RetryDeps = {
    select: () => {
      throw new Error('not used');
    },
    invalidate: (a) => log.invalidated.push(a),
    refresh: () => {
      log.refreshes++;
    },
    waitForChange: async (ms) => {
      log.waits.push(ms);
      clock += ms;
    },
    isEnding: () => false,
    now: () => clock,
    backoff: (n) => 10 * 2 ** (n - 1),
    failoverTimeoutMillis: 10_000,
    discovered: () => true,
    lastDiscoveryError: () => undefined,
    onRetry: (info) => log.retries.push({ attempt: info.attempt, error: info.error, outcome: info.outcome, node: info.node }),
    ...overrides,
  };
  const env: TransactionEnv = {
    deps,
    role: 'primary',
    acquire: async () => {
      const script = scripts[Math.min(clients.length, scripts.length - 1)] ?? (() => undefined);
      const c = new FakeClient(5000 + clients.length, script);
      clients.push(c);
      return c as unknown as pg.PoolClient;
    },
  };
  return { env, clients, log, tick: (ms: number) => (clock += ms) };
}

describe('query/transaction: runTransaction', () => {
  it('runs BEGIN, the callback, COMMIT on one client and returns the result', async () => {
    const { env, clients, log } = harness([() => undefined]);
    const result = await runTransaction(env, async (tx) => {
      assert.equal(tx.attempt, 1);
      assert.equal(tx.depth, 0);
      await tx.query('INSERT INTO t VALUES ($1)', [1]);
      return 'done';
    }, { isolationLevel: 'serializable' });
    assert.equal(result, 'done');
    assert.deepEqual(clients[0]!.sent, ['BEGIN ISOLATION LEVEL SERIALIZABLE', 'INSERT INTO t VALUES ($1)', 'COMMIT']);
    assert.deepEqual(clients[0]!.released, { destroyed: false });
    assert.equal(clients[0]!.listenerCount('error'), 0, 'its error listener is removed before release');
    assert.deepEqual(log.retries, []);
  });

  it('rolls back and rethrows the callback\'s own error unchanged, without replay', async () => {
    const { env, clients, log } = harness([() => undefined]);
    const mine = new Error('out of stock');
    let runs = 0;
    await assert.rejects(
      runTransaction(env, async (tx) => {
        runs++;
        await tx.query('SELECT 1');
        throw mine;
      }),
      (err) => err === mine,
    );
    assert.equal(runs, 1);
    assert.deepEqual(clients[0]!.sent, ['BEGIN', 'SELECT 1', 'ROLLBACK']);
    assert.deepEqual(clients[0]!.released, { destroyed: false });
    assert.equal(log.retries.length, 0);
  });

  it('rethrows a server error of the callback (23505) unchanged after ROLLBACK', async () => {
    const dup = server('23505');
    const { env, clients } = harness([(sql) => (sql.startsWith('INSERT') ? dup : undefined)]);
    await assert.rejects(runTransaction(env, (tx) => tx.query('INSERT INTO t VALUES (1)')), (err) => err === dup);
    assert.equal(clients.length, 1);
    assert.equal(clients[0]!.sent.at(-1), 'ROLLBACK');
  });

  it('replays the whole callback after a 40001 in a statement, with a retry event', async () => {
    const conflict = server('40001');
    const { env, clients, log } = harness([(sql) => (sql.startsWith('UPDATE') ? conflict : undefined), () => undefined]);
    const attempts: number[] = [];
    const result = await runTransaction(env, async (tx) => {
      attempts.push(tx.attempt);
      await tx.query('UPDATE t SET v = v + 1');
      return tx.attempt;
    });
    assert.equal(result, 2);
    assert.deepEqual(attempts, [1, 2]);
    assert.deepEqual(clients[0]!.sent, ['BEGIN', 'UPDATE t SET v = v + 1', 'ROLLBACK']);
    assert.deepEqual(clients[0]!.released, { destroyed: false });
    assert.deepEqual(clients[1]!.sent, ['BEGIN', 'UPDATE t SET v = v + 1', 'COMMIT']);
    assert.equal(log.retries.length, 1);
    assert.equal(log.retries[0]!.error, conflict);
    assert.equal(log.retries[0]!.outcome, 'not-executed');
    assert.equal(log.retries[0]!.node, '10.0.0.1:5000');
    assert.deepEqual(log.waits, [10]);
  });

  it('replays when the callback wraps the database error in its own (cause chain)', async () => {
    const conflict = server('40P01');
    const { env, clients } = harness([(sql) => (sql.startsWith('UPDATE') ? conflict : undefined), () => undefined]);
    await runTransaction(env, async (tx) => {
      try {
        await tx.query('UPDATE t SET v = 1');
      } catch (err) {
        throw new Error('could not update', { cause: err });
      }
    });
    assert.equal(clients.length, 2);
  });

  it('replays a COMMIT answered with 40001 (serializable commit-time failure)', async () => {
    const { env, clients } = harness([(sql) => (sql === 'COMMIT' ? server('40001') : undefined), () => undefined]);
    let runs = 0;
    await runTransaction(env, async () => {
      runs++;
    });
    assert.equal(runs, 2);
    assert.deepEqual(clients[0]!.sent, ['BEGIN', 'COMMIT'], 'no ROLLBACK after a COMMIT the server answered');
    assert.deepEqual(clients[0]!.released, { destroyed: false });
  });

  it('a connection lost while COMMIT is in flight throws TransactionOutcomeUnknownError and never replays', async () => {
    const lost = TERMINATED();
    const { env, clients, log } = harness([
      (sql) =>
        sql === 'COMMIT'
          ? (c) => {
              c.breakConnection();
              return lost;
            }
          : undefined,
    ]);
    let runs = 0;
    await assert.rejects(
      runTransaction(env, async (tx) => {
        runs++;
        await tx.query('INSERT INTO t VALUES (1)');
      }),
      (err: unknown) => {
        assert.ok(err instanceof TransactionOutcomeUnknownError);
        assert.equal(err.pgConsulCode, 'PGCONSUL_TRANSACTION_OUTCOME_UNKNOWN');
        assert.equal(err.code, undefined, 'the cause has no code: neither has this error, as with pg.Pool');
        assert.equal(err.message, 'Connection terminated unexpectedly', "the cause's message");
        assert.equal(err.outcome, 'unknown');
        assert.equal(err.cause, lost);
        assert.equal(err.node, '10.0.0.1:5000');
        assert.equal(err.attempts, 1);
        return true;
      },
    );
    assert.equal(runs, 1);
    assert.equal(clients.length, 1);
    assert.deepEqual(clients[0]!.released, { destroyed: true });
    assert.equal(log.retries.length, 0);
    assert.ok(log.refreshes >= 1);
  });

  it('a 57P01 answered to COMMIT (backend terminated while committing) is an unknown outcome', async () => {
    const { env, clients } = harness([(sql) => (sql === 'COMMIT' ? server('57P01') : undefined)]);
    await assert.rejects(runTransaction(env, async () => undefined), TransactionOutcomeUnknownError);
    assert.equal(clients.length, 1);
  });

  it('a read-only transaction whose COMMIT was lost is replayed (it changed nothing)', async () => {
    const { env, clients, log } = harness([(sql) => (sql === 'COMMIT' ? TERMINATED() : undefined), () => undefined]);
    assert.equal(await runTransaction(env, async (tx) => tx.attempt, { readOnly: true }), 2);
    assert.equal(clients[0]!.sent[0], 'BEGIN READ ONLY');
    assert.equal(log.retries[0]!.outcome, 'unknown');
  });

  it('a connection lost while the callback awaits something else: destroyed and replayed', async () => {
    const { env, clients, log } = harness([() => undefined]);
    const results = await runTransaction(env, async (tx) => {
      await tx.query('INSERT INTO t VALUES (1)');
      if (tx.attempt === 1) {
        // The server goes away between statements: without a listener pg would crash the process.
        clients[0]!.breakConnection();
        await tx.query('INSERT INTO t VALUES (2)').catch(() => undefined); // the callback even swallows it
      }
      return tx.attempt;
    });
    assert.equal(results, 2);
    assert.deepEqual(clients[0]!.released, { destroyed: true });
    assert.ok(!clients[0]!.sent.includes('COMMIT'), 'COMMIT never sent on the broken connection');
    assert.ok(!clients[0]!.sent.includes('ROLLBACK'));
    assert.equal(log.retries.length, 1);
    assert.ok(log.refreshes >= 1);
  });

  it('a stale pooled connection failing BEGIN is replaced', async () => {
    const { env, clients } = harness([() => net('EPIPE'), () => undefined]);
    let runs = 0;
    await runTransaction(env, async () => {
      runs++;
    });
    assert.equal(runs, 1, 'the callback did not run on the broken connection');
    assert.deepEqual(clients[0]!.released, { destroyed: true });
    assert.equal(clients.length, 2);
  });

  it('a 25006 on the primary path invalidates that node before replaying', async () => {
    const { env, log } = harness([(sql) => (sql.startsWith('INSERT') ? server('25006') : undefined), () => undefined]);
    await runTransaction(env, (tx) => tx.query('INSERT INTO t VALUES (1)'));
    assert.deepEqual(log.invalidated, ['10.0.0.1:5000']);
  });

  it('stops after maxAttempts: a conflict surfaces as the last 40001, unchanged', async () => {
    const errors: Error[] = [];
    const { env, clients, log } = harness([
      (sql) => {
        if (!sql.startsWith('UPDATE')) return undefined;
        const e = server('40001');
        errors.push(e);
        return e;
      },
    ]);
    await assert.rejects(runTransaction(env, (tx) => tx.query('UPDATE t SET v = 1'), { maxAttempts: 3 }), (err) => err === errors[2]);
    assert.equal(clients.length, 3);
    assert.equal(log.retries.length, 2);
  });

  it('stops after maxAttempts: failover failures become FailoverTimeoutError (did not commit)', async () => {
    const { env, clients } = harness([() => server('57P01')]);
    await assert.rejects(runTransaction(env, async () => undefined), (err: unknown) => {
      assert.ok(err instanceof FailoverTimeoutError);
      assert.equal(err.attempts, DEFAULT_MAX_ATTEMPTS);
      assert.equal(err.sqlState, '57P01');
      return true;
    });
    assert.equal(clients.length, DEFAULT_MAX_ATTEMPTS);
  });

  it('stops replaying once failoverTimeoutMillis passed since the first failure', async () => {
    const { env, clients, log } = harness([() => net('ECONNRESET')], { failoverTimeoutMillis: 25, backoff: () => 20 });
    await assert.rejects(runTransaction(env, async () => undefined, { maxAttempts: 100 }), FailoverTimeoutError);
    assert.deepEqual(log.waits, [20, 5], 'the last wait is cut to the time left');
    assert.equal(clients.length, 3);
  });

  it('a callback that swallowed an error and resolved: COMMIT answers ROLLBACK, the error surfaces', async () => {
    const dup = server('23505');
    const { env, clients } = harness([(sql) => (sql.startsWith('INSERT') ? dup : sql === 'COMMIT' ? ok('ROLLBACK') : undefined)]);
    await assert.rejects(
      runTransaction(env, async (tx) => {
        await tx.query('INSERT INTO t VALUES (1)').catch(() => undefined);
        return 'pretends it worked';
      }),
      (err) => err === dup,
    );
    assert.equal(clients.length, 1);
  });

  it('… and when the swallowed error was a 40001, the transaction is replayed', async () => {
    const { env, clients } = harness([(sql) => (sql.startsWith('INSERT') ? server('40001') : sql === 'COMMIT' ? ok('ROLLBACK') : undefined), () => undefined]);
    await runTransaction(env, async (tx) => {
      await tx.query('INSERT INTO t VALUES (1)').catch(() => undefined);
    });
    assert.equal(clients.length, 2);
  });

  it('savepoints: RELEASE on success, ROLLBACK TO on error (rethrown), nested names', async () => {
    const { env, clients } = harness([() => undefined]);
    const inner = new Error('inner failed');
    await runTransaction(env, async (tx) => {
      await tx.query('INSERT INTO t VALUES (1)');
      const v = await tx.transaction(async (sp) => {
        assert.equal(sp.depth, 1);
        await sp.query('INSERT INTO t VALUES (2)');
        return sp.transaction(async (sp2) => {
          assert.equal(sp2.depth, 2);
          return 'deep';
        });
      });
      assert.equal(v, 'deep');
      await assert.rejects(
        tx.transaction(async (sp) => {
          await sp.query('INSERT INTO t VALUES (3)');
          throw inner;
        }),
        (err) => err === inner,
      );
    });
    assert.deepEqual(clients[0]!.sent, [
      'BEGIN',
      'INSERT INTO t VALUES (1)',
      'SAVEPOINT pgconsul_sp_1',
      'INSERT INTO t VALUES (2)',
      'SAVEPOINT pgconsul_sp_2',
      'RELEASE SAVEPOINT pgconsul_sp_2',
      'RELEASE SAVEPOINT pgconsul_sp_1',
      'SAVEPOINT pgconsul_sp_3',
      'INSERT INTO t VALUES (3)',
      'ROLLBACK TO SAVEPOINT pgconsul_sp_3',
      'RELEASE SAVEPOINT pgconsul_sp_3',
      'COMMIT',
    ]);
  });

  it('a 40001 inside a savepoint replays the whole outer transaction', async () => {
    const { env, clients } = harness([(sql) => (sql.startsWith('UPDATE') ? server('40001') : undefined), () => undefined]);
    await runTransaction(env, async (tx) => {
      await tx.transaction(async (sp) => {
        await sp.query(tx.attempt === 1 ? 'UPDATE t SET v = 1' : 'SELECT 1');
      });
    });
    assert.equal(clients.length, 2);
    assert.deepEqual(clients[0]!.sent, ['BEGIN', 'SAVEPOINT pgconsul_sp_1', 'UPDATE t SET v = 1', 'ROLLBACK TO SAVEPOINT pgconsul_sp_1', 'RELEASE SAVEPOINT pgconsul_sp_1', 'ROLLBACK']);
  });

  it('the client refuses use after its callback settled, and the callback/Submittable forms', async () => {
    const { env } = harness([() => undefined]);
    let leaked: TransactionClient | undefined;
    await runTransaction(env, async (tx) => {
      leaked = tx;
      await assert.rejects(tx.query('SELECT 1', (() => undefined) as never), TypeError);
      await assert.rejects(tx.query({ submit: () => undefined } as never), TypeError);
    });
    await assert.rejects(leaked!.query('SELECT 1'), /transaction is over/);
    await assert.rejects(leaked!.transaction(async () => 1), /transaction is over/);
  });

  it('helpers on the transaction client check row counts (not replayed)', async () => {
    const { env, clients } = harness([(sql) => (sql.startsWith('SELECT') ? ok('SELECT', [{ id: 1 }, { id: 2 }]) : undefined)]);
    await assert.rejects(
      runTransaction(env, (tx) => tx.one<{ id: number }>('SELECT id FROM t')),
      (err: unknown) => err instanceof RowCountError && err.rowCount === 2 && err.expected === 'one',
    );
    assert.equal(clients.length, 1);
    assert.equal(clients[0]!.sent.at(-1), 'ROLLBACK');
  });

  it('a failing ROLLBACK destroys the client', async () => {
    const { env, clients } = harness([(sql) => (sql === 'ROLLBACK' ? server('XX000') : undefined)]);
    await assert.rejects(runTransaction(env, async () => {
      throw new Error('mine');
    }), /mine/);
    assert.deepEqual(clients[0]!.released, { destroyed: true });
  });

  it('does not start when the pool is ending, and rejects a missing callback', async () => {
    const { env } = harness([() => undefined], { isEnding: () => true });
    await assert.rejects(runTransaction(env, async () => 1), PoolEndedError);
    await assert.rejects(runTransaction(env, undefined as never), TypeError);
  });

  it('passes checkout errors through unchanged', async () => {
    const { env } = harness([() => undefined]);
    const noPrimary = new FailoverTimeoutError('no primary');
    await assert.rejects(runTransaction({ ...env, acquire: () => Promise.reject(noPrimary) }, async () => 1), (err) => err === noPrimary);
  });
});

// ---------------------------------------------------------------------------------------
// One failoverTimeoutMillis budget for the whole transaction: the checkouts are the pool's
// real retry loop (runWithRetry) over a primary that refuses connections while `down(t)`.
// ---------------------------------------------------------------------------------------

describe('query/transaction: one failoverTimeoutMillis budget for checkouts, replays and waits (table)', () => {
  const T = 1000;
  const STEP = 100; // every backoff wait
  const PRIMARY = { id: 'pglab/n1', name: 'n1', host: '10.0.0.1', port: 5432, address: '10.0.0.1:5432', role: 'primary' as const, tags: ['primary'], modifyIndex: 1 };

  interface Run {
    /** How long the callback works (virtual ms) before its UPDATE. */
    readonly takes?: number;
    /** The UPDATE's error, if the run fails. */
    readonly error?: () => Error;
  }
  interface Row {
    readonly name: string;
    /** Whether a connect started at virtual time `t` is refused. */
    readonly down: (t: number) => boolean;
    /** What run `n` (1, 2, …) does; runs past the list commit at once. */
    readonly runs: readonly Run[];
    /** When the budget starts (the first failure); undefined: nothing fails. */
    readonly budgetFrom: number | undefined;
    /** `commit` with the run that committed, or the error class. */
    readonly expect: { readonly commitsOnRun: number } | { readonly rejects: new (...args: never[]) => Error };
    /** The end, in virtual ms. */
    readonly endsAt: number;
    /** Where the old two-budget behaviour ended (for the record; not asserted). */
    readonly before?: string;
  }
  const fails = (takes = 0): Run => ({ takes, error: () => server('57P01') });

  const rows: Row[] = [
    { name: 'nothing fails: one checkout, one run, no wait', down: () => false, runs: [{}], budgetFrom: undefined, expect: { commitsOnRun: 1 }, endsAt: 0 },
    { name: 'a slow first run that commits is not limited', down: () => false, runs: [{ takes: 5 * T }], budgetFrom: undefined, expect: { commitsOnRun: 1 }, endsAt: 5 * T },
    {
      name: 'a slow first run that fails gets the whole budget from its failure',
      down: (t) => t > 5000 && t < 5800,
      runs: [fails(5000)],
      budgetFrom: 5000,
      expect: { commitsOnRun: 2 },
      endsAt: 5800,
    },
    {
      name: 'the first checkout waits 600 ms, the run fails, the primary is back at 800: commits',
      down: (t) => t < 600 || (t > 600 && t < 800),
      runs: [fails()],
      budgetFrom: 0,
      expect: { commitsOnRun: 2 },
      endsAt: 800,
    },
    {
      name: 'the first checkout waits 900 ms, the run fails, the primary stays down: gives up at 1000',
      down: (t) => t !== 900,
      runs: [fails()],
      budgetFrom: 0,
      expect: { rejects: FailoverTimeoutError },
      endsAt: T,
      before: 'gave up at 1900 (checkout budget, then a fresh replay budget from the failure at 900)',
    },
    {
      name: 'the first checkout waits 600 ms, the run fails, the primary is back only at 1200: gives up at 1000',
      down: (t) => t < 600 || (t > 600 && t < 1200),
      runs: [fails()],
      budgetFrom: 0,
      expect: { rejects: FailoverTimeoutError },
      endsAt: T,
      before: 'committed at 1200, 1.2 × failoverTimeoutMillis after the start',
    },
    {
      name: 'the run fails at once and the primary stays down: the replay checkouts share the budget',
      down: (t) => t > 0,
      runs: [fails()],
      budgetFrom: 0,
      expect: { rejects: FailoverTimeoutError },
      endsAt: T,
      before: 'gave up at 1100: the replay checkout at 100 had a budget of its own',
    },
    {
      name: 'runs of 300 ms that keep failing: no replay starts after the budget, the one under way finishes',
      down: () => false,
      runs: [fails(300), fails(300), fails(300), fails(300), fails(300)],
      budgetFrom: 300,
      expect: { rejects: FailoverTimeoutError },
      endsAt: 1500, // runs start at 0, 400, 800, 1200 (≤ 1300); the last ends at 1500
    },
    {
      name: 'conflicts share the budget too: the last 40001 surfaces when it is spent',
      down: () => false,
      runs: Array.from({ length: 20 }, () => ({ error: () => server('40001') })),
      budgetFrom: 0,
      expect: { rejects: Error },
      endsAt: T,
    },
  ];

  for (const row of rows) {
    it(row.name, async () => {
      let clock = 0;
      const connectsAt: number[] = [];
      const runsAt: number[] = [];
      const budgets = new Set<FailoverBudget>();
      const clients: FakeClient[] = [];
      const deps: RetryDeps = {
        select: () => ({ node: PRIMARY, role: 'primary' }),
        invalidate: () => undefined,
        refresh: () => undefined,
        waitForChange: async (ms) => {
          clock += ms;
        },
        isEnding: () => false,
        now: () => clock,
        backoff: () => STEP,
        failoverTimeoutMillis: T,
        discovered: () => true,
        lastDiscoveryError: () => undefined,
        onRetry: () => undefined,
      };
      const env: TransactionEnv = {
        deps,
        role: 'primary',
        acquire: (budget) => {
          budgets.add(budget);
          return runWithRetry(
            deps,
            'primary',
            async () => {
              connectsAt.push(clock);
              if (row.down(clock)) throw new AttemptFailure(net('ECONNREFUSED'), 'acquire');
              const run = row.runs[clients.length] ?? {};
              const c = new FakeClient(5000 + clients.length, (sql) => (sql.startsWith('UPDATE') && run.error ? run.error() : undefined));
              clients.push(c);
              return c as unknown as pg.PoolClient;
            },
            budget,
          );
        },
      };
      const outcome = await runTransaction(
        env,
        async (tx) => {
          runsAt.push(clock);
          clock += row.runs[tx.attempt - 1]?.takes ?? 0;
          await tx.query('UPDATE t SET v = v + 1');
          return tx.attempt;
        },
        { maxAttempts: 100 },
      ).then(
        (attempt) => ({ attempt }),
        (error: unknown) => ({ error }),
      );

      if ('commitsOnRun' in row.expect) {
        assert.deepEqual(outcome, { attempt: row.expect.commitsOnRun });
      } else {
        assert.ok('error' in outcome && outcome.error instanceof row.expect.rejects, `rejects with ${row.expect.rejects.name}: ${String((outcome as { error?: unknown }).error)}`);
      }
      assert.equal(clock, row.endsAt, 'ends when expected');
      if (row.budgetFrom === undefined) {
        assert.deepEqual([connectsAt.length, runsAt.length], [1, 1], 'one checkout, one run');
      } else {
        const deadline = row.budgetFrom + T;
        for (const t of [...connectsAt, ...runsAt]) assert.ok(t <= deadline, `an attempt started at ${t}, after the deadline ${deadline}`);
        const longest = Math.max(0, ...row.runs.map((r) => r.takes ?? 0));
        assert.ok(clock <= deadline + longest, `ended at ${clock}: more than failoverTimeoutMillis (+ one run) after the first failure`);
      }
      for (const c of clients) assert.ok(c.released, 'every client is released');
      assert.equal(budgets.size, 1, 'every checkout gets the same budget');
    });
  }
});
