/**
 * The typed query helpers (`one`, `maybeOne`, `many`, `any`, `value`) against real
 * PostgreSQL 15 (a primary and a streaming replica on loopback) and the Consul double: row
 * counts, input forms, routing (`pool.replica` reads from the replica) and retry.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, RowCountError } from '../../lib/index.js';
import type { PoolOptions, RowCountExpectation } from '../../lib/index.js';
import { ConsulDouble } from '../../lib/testing/consul-double.js';
import { PgCluster } from '../../lib/testing/pg-cluster.js';
import { advertise as advertiseCluster } from '../support/advertise.js';

const SERVICE = 'pghelpers';

describe('query helpers (integration: real PostgreSQL + Consul double)', function () {
  this.timeout(120_000);
  let cluster: PgCluster;
  let consul: ConsulDouble;
  const pools: Pool[] = [];

  const advertise = (primary: string | undefined): void => advertiseCluster(consul, cluster, SERVICE, primary);


  function newPool(extra: PoolOptions = {}): Pool {
    const pool = new Pool({
      service: SERVICE,
      consul: { host: '127.0.0.1', port: consul.port, waitSeconds: 5 },
      user: cluster.appUser.user,
      password: cluster.appUser.password,
      database: cluster.appUser.database,
      failoverTimeoutMillis: 20_000,
      discoveryMinIntervalMillis: 20,
      readFallback: 'fail',
      ...extra,
    });
    pools.push(pool);
    return pool;
  }

  async function endAll(): Promise<void> {
    await Promise.all(pools.splice(0).map((p) => (p.ending ? Promise.resolve() : p.end())));
  }

  /** Asserts a RowCountError with the given fields. */
  function rowCount(expected: RowCountExpectation, n: number): (err: unknown) => boolean {
    return (err) => {
      assert.ok(err instanceof RowCountError, String(err));
      assert.equal(err.code, 'PGCONSUL_ROW_COUNT');
      assert.equal(err.expected, expected);
      assert.equal(err.rowCount, n);
      assert.equal(err.outcome, 'executed');
      return true;
    };
  }

  before(async () => {
    [cluster, consul] = await Promise.all([PgCluster.start({ replicas: 1 }), ConsulDouble.start()]);
    advertise(cluster.primaryName());
    const pool = newPool();
    await pool.query('CREATE TABLE h (id int PRIMARY KEY, v text, tag text NOT NULL)');
    await pool.query("INSERT INTO h (id, v, tag) VALUES (1, 'one', 'a'), (2, 'two', 'b'), (3, NULL, 'b')");
    for (const n of cluster.nodes) await cluster.waitForReplay(n.name);
    await endAll();
  });

  afterEach(endAll);

  after(async () => {
    await endAll();
    await consul?.stop();
    await cluster?.destroy();
  });

  it('one / maybeOne / many / any / value check the row count and type the rows', async () => {
    const pool = newPool();
    const row = await pool.one<{ id: number; v: string }>('SELECT id, v FROM h WHERE id = $1', [1]);
    assert.deepEqual(row, { id: 1, v: 'one' });
    await assert.rejects(pool.one('SELECT id FROM h WHERE id = $1', [99]), rowCount('one', 0));
    await assert.rejects(pool.one('SELECT id FROM h WHERE tag = $1', ['b']), rowCount('one', 2));

    assert.equal(await pool.maybeOne('SELECT id FROM h WHERE id = 99'), null);
    assert.deepEqual(await pool.maybeOne<{ id: number }>('SELECT id FROM h WHERE id = 2'), { id: 2 });
    await assert.rejects(pool.maybeOne('SELECT id FROM h'), rowCount('maybeOne', 3));

    assert.deepEqual(await pool.many<{ id: number }>('SELECT id FROM h WHERE tag = $1 ORDER BY id', ['b']), [{ id: 2 }, { id: 3 }]);
    await assert.rejects(pool.many('SELECT id FROM h WHERE tag = $1', ['zzz']), rowCount('many', 0));

    assert.deepEqual(await pool.any('SELECT id FROM h WHERE tag = $1', ['zzz']), []);
    assert.equal((await pool.any<{ id: number }>('SELECT id FROM h')).length, 3);

    assert.equal(await pool.value<number>('SELECT count(*)::int FROM h'), 3);
    assert.equal(await pool.value<string | null>('SELECT v FROM h WHERE id = 3'), null, 'SQL NULL is null');
    assert.equal(await pool.value<number>('SELECT 1 AS a, 2 AS a'), 1, 'the first column by position, even with duplicate names');
    await assert.rejects(pool.value('SELECT id FROM h WHERE id = 99'), rowCount('value', 0));
    await assert.rejects(pool.value('SELECT id FROM h'), rowCount('value', 3));
    // RETURNING rows count; a write without RETURNING returns none.
    assert.deepEqual(await pool.one<{ id: number }>("INSERT INTO h (id, v, tag) VALUES (4, 'four', 'c') RETURNING id"), { id: 4 });
    await assert.rejects(pool.one("UPDATE h SET v = 'FOUR' WHERE id = 4"), rowCount('one', 0));
    assert.equal(await pool.value<string>('DELETE FROM h WHERE id = 4 RETURNING v'), 'FOUR');
    // Server errors pass through unchanged.
    await assert.rejects(pool.one('SELECT nope FROM h'), (err: Error & { code?: string }) => err.code === '42703');
  });

  it('accept pool.query\'s inputs: text + values, QueryConfig, rowMode array, named statements', async () => {
    const pool = newPool();
    assert.deepEqual(await pool.one({ text: 'SELECT id, v FROM h WHERE id = $1', values: [2] }), { id: 2, v: 'two' });
    assert.deepEqual(await pool.one({ text: 'SELECT id, v FROM h WHERE id = $1', values: [2], name: 'h-by-id' }), { id: 2, v: 'two' });
    assert.deepEqual(await pool.one({ text: 'SELECT id, v FROM h WHERE id = $1', values: [1], name: 'h-by-id' }), { id: 1, v: 'one' });
    assert.deepEqual(await pool.one<[number, string]>({ text: 'SELECT id, v FROM h WHERE id = $1', values: [1], rowMode: 'array' }), [1, 'one']);
    assert.equal(await pool.value<number>({ text: 'SELECT $1::int + 1', values: [41] }), 42);
    assert.equal(await pool.value<number>({ text: 'SELECT $1::int * 2' }, [21]), 42, 'separate values win like in pg');
    await assert.rejects(pool.any('SELECT 1; SELECT 2'), /single statement/);
  });

  it('never run a multi-statement text: refused before sending, or by PostgreSQL\'s extended protocol', async () => {
    const pool = newPool();
    await pool.query('CREATE TABLE ms (id int)');
    const count = (): Promise<number> => pool.value<number>('SELECT count(*)::int FROM ms');
    // Certainly two statements: a TypeError, and nothing reached the server.
    for (const run of [() => pool.any('INSERT INTO ms VALUES (1); SELECT 1'), () => pool.replica.value('SELECT 1; SELECT 2'), () => pool.value('INSERT INTO ms VALUES (1) RETURNING id; SELECT 1')]) {
      await assert.rejects(run(), (err: unknown) => err instanceof TypeError && /nothing was sent/.test(err.message));
    }
    // A text the lexer cannot split with certainty (a backslash in a plain literal) goes out
    // with the extended protocol: PostgreSQL refuses the second statement (42601) and runs none.
    await assert.rejects(pool.any("INSERT INTO ms SELECT 2 WHERE 'a\\b' <> ''; SELECT 1"), (err: Error & { code?: string }) => err.code === '42601');
    assert.equal(await count(), 0, 'no INSERT ran');
    // Through pg's simple protocol (pool.query without values) the same script does run: the
    // difference the helpers close.
    await pool.query('INSERT INTO ms VALUES (3); SELECT 1');
    assert.equal(await count(), 1);
    // One statement whose body holds `;` (BEGIN ATOMIC) is one statement for the server too.
    await pool.any('CREATE FUNCTION ms_one() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END');
    assert.equal(await pool.value<number>('SELECT ms_one();'), 1);
    await pool.query('DROP FUNCTION ms_one(); DROP TABLE ms');
  });

  it('route like query: pool and pool.primary on the primary, pool.replica on a replica', async () => {
    const pool = newPool();
    const primaryPort = cluster.node(cluster.primaryName()).port;
    const replicaPort = cluster.nodes.find((n) => n.name !== cluster.primaryName())!.port;
    const where = 'SELECT pg_is_in_recovery() AS r, inet_server_port() AS port';
    assert.deepEqual(await pool.one(where), { r: false, port: primaryPort });
    assert.deepEqual(await pool.primary.maybeOne(where), { r: false, port: primaryPort });
    assert.deepEqual(await pool.replica.one(where), { r: true, port: replicaPort });
    assert.deepEqual(await pool.replica.many(where), [{ r: true, port: replicaPort }]);
    assert.deepEqual(await pool.replica.any(where), [{ r: true, port: replicaPort }]);
    assert.equal(await pool.replica.value<boolean>('SELECT pg_is_in_recovery()'), true);
    assert.equal(await pool.primary.value<boolean>('SELECT pg_is_in_recovery()'), false);
    assert.equal(await pool.replica.value<number>('SELECT count(*)::int FROM h'), 3, 'the replica has the rows');
  });

  it('inherit query\'s retry: a helper waits out a primary-less topology and then runs', async () => {
    const pool = newPool();
    await pool.ready();
    advertise(undefined); // Consul lists no primary (a failover under way)
    const deadline = Date.now() + 10_000;
    while (pool.topology.primary && Date.now() < deadline) await sleep(20);
    assert.equal(pool.topology.primary, undefined);
    const pending = pool.value<number>('SELECT 7');
    const settled = pending.then(
      (v) => v,
      (err: unknown) => err,
    );
    await sleep(300);
    assert.ok(pool.waitingCount >= 1, 'the helper is waiting for a primary');
    advertise(cluster.primaryName());
    assert.equal(await settled, 7);
  });

  it('work on transaction clients and on pool.replica read-only transactions', async () => {
    const pool = newPool();
    const got = await pool.transaction(async (tx) => {
      const one = await tx.one<{ id: number }>('SELECT id FROM h WHERE id = 1');
      const none = await tx.maybeOne('SELECT id FROM h WHERE id = 99');
      const many = await tx.many<{ id: number }>('SELECT id FROM h ORDER BY id');
      const any = await tx.any('SELECT id FROM h WHERE false');
      const n = await tx.value<number>('SELECT count(*)::int FROM h');
      const err = await tx.one('SELECT id FROM h').catch((e: unknown) => e);
      return { one, none, many: many.map((r) => r.id), any, n, err };
    });
    assert.deepEqual({ ...got, err: undefined }, { one: { id: 1 }, none: null, many: [1, 2, 3], any: [], n: 3, err: undefined });
    assert.ok(rowCount('one', 3)(got.err));
    const onReplica = await pool.replica.transaction(async (tx) => tx.value<boolean>('SELECT pg_is_in_recovery()'), { readOnly: true });
    assert.equal(onReplica, true);
  });
});
