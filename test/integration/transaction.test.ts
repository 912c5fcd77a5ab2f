/**
 * `pool.transaction()` against real PostgreSQL 15 (a primary and two streaming replicas on
 * loopback) and the Consul double: commit, rollback, savepoints, replay after a 40001 under
 * SERIALIZABLE contention, replay after a switchover in the middle of the callback, and
 * `TransactionOutcomeUnknownError` (no replay) when the connection dies during COMMIT.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { TransactionOutcomeUnknownError } from '../../lib/index.js';
import type { Pool, PoolOptions, RetryEvent, TransactionClient } from '../../lib/index.js';
import type { PgCluster } from '../../lib/testing/pg-cluster.js';
import { useClusterFixture } from '../support/cluster-fixture.js';

const SERVICE = 'pgtx';
const TOKEN = 'consul-secret-token-tx';

/** A promise the test settles from outside. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * A rendezvous of `parties`: `arrive()` resolves once all arrived, or after `timeoutMillis`
 * (so a party that failed early cannot hang the others).
 */
function barrier(parties: number, timeoutMillis = 3000): () => Promise<void> {
  let arrived = 0;
  const all = deferred();
  return async () => {
    if (++arrived >= parties) all.resolve();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all.promise, new Promise<void>((r) => (timer = setTimeout(r, timeoutMillis)))]);
    clearTimeout(timer);
  };
}

describe('pool.transaction (integration: real PostgreSQL + Consul double)', function () {
  this.timeout(120_000);
  const fx = useClusterFixture(SERVICE, TOKEN);
  let cluster: PgCluster;


  const advertise = (primary: string, opts: { exclude?: string[] } = {}): void => fx.advertise(primary, opts.exclude);

  const newPool = (extra: PoolOptions = {}): Pool => fx.newPool(extra);

  const endAll = (): Promise<void> => fx.endPools();

  async function onPrimary<T extends Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await cluster.query(cluster.primaryName(), sql, params, { database: cluster.appUser.database })) as T[];
  }

  before(async () => {
    ({ cluster } = fx);
    const pool = newPool();
    await pool.query('CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL)');
    await pool.query('CREATE TABLE skew (k int NOT NULL, v int NOT NULL)');
    await pool.query('CREATE TABLE once (k text PRIMARY KEY, attempt int NOT NULL)');
    await pool.query('CREATE TABLE slow_commit (id int PRIMARY KEY)');
    await pool.query(`CREATE FUNCTION slow_commit_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$`);
    await pool.query(
      'CREATE CONSTRAINT TRIGGER slow_commit_trg AFTER INSERT ON slow_commit DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit_fn()',
    );
    await endAll();
  });


  it('commits on the primary, rolls back on the callback\'s error (rethrown unchanged, no replay)', async () => {
    const pool = newPool();
    await pool.ready(); // retry events from here on are replays, not the wait for discovery
    const retries: RetryEvent[] = [];
    pool.on('retry', (e) => retries.push(e));
    const result = await pool.transaction(async (tx) => {
      await tx.query('INSERT INTO items (id, v) VALUES ($1, $2), ($3, $4)', [1, 'one', 2, 'two']);
      const r = await tx.one<{ r: boolean; ro: string }>("SELECT pg_is_in_recovery() AS r, current_setting('transaction_read_only') AS ro");
      return { ...r, n: await tx.value<number>('SELECT count(*)::int FROM items') };
    });
    assert.deepEqual(result, { r: false, ro: 'off', n: 2 });
    assert.deepEqual(await onPrimary('SELECT id FROM items ORDER BY id'), [{ id: 1 }, { id: 2 }]);

    const mine = new Error('out of stock');
    let runs = 0;
    await assert.rejects(
      pool.transaction(async (tx) => {
        runs++;
        await tx.query('INSERT INTO items (id, v) VALUES (3, $1)', ['three']);
        throw mine;
      }),
      (err) => err === mine,
    );
    assert.equal(runs, 1);
    await assert.rejects(
      pool.transaction(async (tx) => {
        runs++;
        await tx.query('INSERT INTO items (id, v) VALUES (1, $1)', ['dup']); // 23505: the caller's problem
      }),
      (err: Error & { code?: string }) => err.code === '23505',
    );
    assert.equal(runs, 2, 'a server error of the callback is not replayed');
    assert.deepEqual(await onPrimary('SELECT id, v FROM items ORDER BY id'), [{ id: 1, v: 'one' }, { id: 2, v: 'two' }]);
    assert.deepEqual(retries, []);
  });

  it('nested savepoints roll back only the inner part', async () => {
    const pool = newPool();
    const inner = new Error('inner part failed');
    await pool.primary.transaction(async (tx) => {
      await tx.query('INSERT INTO items (id, v) VALUES (10, $1)', ['outer']);
      await tx.transaction(async (sp) => {
        await sp.query('INSERT INTO items (id, v) VALUES (11, $1)', ['kept savepoint']);
        await sp
          .transaction(async (sp2) => {
            await sp2.query('INSERT INTO items (id, v) VALUES (12, $1)', ['rolled back']);
            throw inner;
          })
          .catch((err: unknown) => assert.equal(err, inner));
        assert.equal(await sp.maybeOne('SELECT 1 FROM items WHERE id = 12'), null, 'the inner insert is undone already');
      });
      const failed = await tx
        .transaction(async (sp) => {
          await sp.query('INSERT INTO items (id, v) VALUES (13, $1)', ['rolled back']);
          await sp.query('INSERT INTO items (id, v) VALUES (10, $1)', ['duplicate key']); // 23505 inside the savepoint
        })
        .then(
          () => undefined,
          (err: Error & { code?: string }) => err.code,
        );
      assert.equal(failed, '23505');
      await tx.query('INSERT INTO items (id, v) VALUES (14, $1)', ['after the failed savepoint']);
    });
    const rows = await onPrimary<{ id: number }>('SELECT id FROM items WHERE id >= 10 ORDER BY id');
    assert.deepEqual(rows.map((r) => r.id), [10, 11, 14]);
  });

  it('replays a transaction that lost a SERIALIZABLE conflict (40001) until both commit', async () => {
    const pool = newPool();
    await pool.query('TRUNCATE skew');
    await pool.query('INSERT INTO skew (k, v) VALUES (1, 10), (2, 20)');
    const retries: RetryEvent[] = [];
    pool.on('retry', (e) => retries.push(e));
    const afterRead = barrier(2);
    const afterWrite = barrier(2);
    // Write skew: each reads the other's rows and writes its own; serializable must abort one.
    const move = (mine: number, theirs: number): Promise<number> =>
      pool.transaction(
        async (tx: TransactionClient) => {
          const sum = await tx.value<number>('SELECT sum(v)::int FROM skew WHERE k = $1', [theirs]);
          if (tx.attempt === 1) await afterRead();
          await tx.query('INSERT INTO skew (k, v) VALUES ($1, $2)', [mine, sum]);
          if (tx.attempt === 1) await afterWrite();
          return tx.attempt;
        },
        { isolationLevel: 'serializable' },
      );
    const [a, b] = await Promise.all([move(1, 2), move(2, 1)]);
    assert.ok(a + b > 2, `at least one was replayed (attempts ${a} and ${b})`);
    assert.ok(retries.length >= 1, 'a retry event per replay');
    assert.ok(
      retries.every((r) => (r.error as Error & { code?: string }).code === '40001' && r.outcome === 'not-executed' && r.role === 'primary'),
      JSON.stringify(retries.map((r) => r.error.message)),
    );
    const rows = await onPrimary<{ n: number }>('SELECT count(*)::int AS n FROM skew');
    assert.equal(rows[0]!.n, 4, 'both transactions committed exactly once');
  });

  it('a connection lost while COMMIT is in flight surfaces TransactionOutcomeUnknownError, without replay', async () => {
    const pool = newPool();
    await pool.ready(); // retry events from here on are replays, not the wait for discovery
    const retries: RetryEvent[] = [];
    pool.on('retry', (e) => retries.push(e));
    let runs = 0;
    const pid = deferred<number>();
    const pending = pool.transaction(async (tx) => {
      runs++;
      pid.resolve(await tx.value<number>('SELECT pg_backend_pid()'));
      await tx.query('INSERT INTO slow_commit (id) VALUES (1)'); // its deferred trigger sleeps 2 s at COMMIT
    });
    // Handled at once: it rejects while the test is still busy terminating the backend.
    const settled = pending.then(
      () => new Error('the transaction committed'),
      (err: unknown) => err,
    );
    const backend = await pid.promise;
    const deadline = Date.now() + 10_000;
    let committing = false;
    while (!committing && Date.now() < deadline) {
      const rows = await onPrimary("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query = 'COMMIT'", [backend]);
      committing = rows.length === 1;
      if (!committing) await sleep(20);
    }
    assert.ok(committing, 'COMMIT is running');
    await onPrimary('SELECT pg_terminate_backend($1)', [backend]);
    const err = await settled;
    assert.ok(err instanceof TransactionOutcomeUnknownError, String(err));
    assert.equal(err.pgConsulCode, 'PGCONSUL_TRANSACTION_OUTCOME_UNKNOWN');
    // The error pg.Pool code would have seen: PostgreSQL's code, message and severity.
    assert.equal(err.code, '57P01');
    assert.match(err.message, /terminating connection due to administrator command/);
    assert.equal(err.severity, 'FATAL');
    assert.match(err.pgConsulMessage, /may or may not have committed/);
    assert.equal(err.outcome, 'unknown');
    assert.equal(err.attempts, 1);
    assert.equal(err.sqlState, '57P01', 'the cause is the termination');
    assert.ok(!err.message.includes(cluster.appUser.password));
    assert.equal(runs, 1, 'never replayed');
    assert.deepEqual(retries, []);
    // (Terminated inside the deferred trigger, the transaction in fact rolled back.)
    assert.deepEqual(await onPrimary('SELECT id FROM slow_commit'), []);
    // The pool carries on.
    assert.equal(await pool.value<number>('SELECT 1'), 1);
  });

  it('pool.replica.transaction runs read-only transactions on a replica, and only those', async () => {
    const pool = newPool();
    await assert.rejects(pool.replica.transaction(async () => 1), TypeError);
    await assert.rejects(pool.replica.transaction(async () => 1, { readOnly: false }), TypeError);
    const r = await pool.replica.transaction(
      async (tx) => tx.one<{ r: boolean; ro: string; iso: string }>("SELECT pg_is_in_recovery() AS r, current_setting('transaction_read_only') AS ro, current_setting('transaction_isolation') AS iso"),
      { readOnly: true, isolationLevel: 'repeatable read' },
    );
    assert.deepEqual(r, { r: true, ro: 'on', iso: 'repeatable read' });
    const p = await pool.transaction(async (tx) => tx.value<string>("SELECT current_setting('transaction_read_only')"), { readOnly: true });
    assert.equal(p, 'on', 'a read-only transaction on the primary is fine too');
  });

  it('a switchover in the middle of the callback: replayed on the new primary, committed exactly once', async () => {
    const pool = newPool();
    await pool.ready(); // retry events from here on are replays, not the wait for discovery
    const retries: RetryEvent[] = [];
    pool.on('retry', (e) => retries.push(e));
    const key = `order-${Date.now()}`;
    const inside = deferred();
    const gate = deferred();
    const runs: Array<{ attempt: number; port: number }> = [];
    const pending = pool.transaction(async (tx) => {
      const port = await tx.value<number>('SELECT inet_server_port()');
      runs.push({ attempt: tx.attempt, port });
      await tx.query('INSERT INTO once (k, attempt) VALUES ($1, $2)', [key, tx.attempt]);
      inside.resolve();
      await gate.promise; // the test fails the primary over here (attempt 1 only: later runs pass at once)
      await tx.query('UPDATE once SET attempt = $2 WHERE k = $1', [key, tx.attempt]);
      return tx.attempt;
    });
    const settled = pending.then(
      (attempt) => attempt,
      (err: unknown) => err,
    );
    await inside.promise;
    const oldPrimary = cluster.primaryName();
    const newPrimary = cluster.nodes.find((n) => n.name !== oldPrimary && cluster.isRunning(n.name))!.name;
    const others = cluster.nodes.filter((n) => n.name !== oldPrimary && n.name !== newPrimary).map((n) => n.name);
    try {
      await cluster.stop(oldPrimary, 'fast');
      await cluster.promote(newPrimary);
      advertise(newPrimary, { exclude: [oldPrimary] });
      gate.resolve();
      const attempt = await settled;
      assert.ok(typeof attempt === 'number', `committed: ${String(attempt)}`);
      assert.ok(attempt >= 2, `replayed (attempt ${attempt})`);
      assert.equal(runs[0]!.port, cluster.node(oldPrimary).port);
      assert.equal(runs.at(-1)!.port, cluster.node(newPrimary).port, 'the committed run was on the new primary');
      const rows = await onPrimary<{ k: string; attempt: number }>('SELECT k, attempt FROM once WHERE k = $1', [key]);
      assert.deepEqual(rows, [{ k: key, attempt }], 'exactly one row, from the committed run');
      assert.ok(retries.length >= 1 && retries.every((r) => r.role === 'primary'));
      assert.equal(retries.filter((r) => r.node === `127.0.0.1:${cluster.node(oldPrimary).port}`).length >= 1, true, 'the replay names the old primary');
    } finally {
      gate.resolve();
      await settled;
      await Promise.all(others.map((o) => cluster.follow(o, newPrimary)));
      await cluster.rejoinAsReplica(oldPrimary);
      advertise(newPrimary);
    }
  });
});
