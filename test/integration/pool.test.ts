/**
 * The core Pool against real PostgreSQL 15 (a primary and two streaming replicas on
 * loopback) and the Consul double serving /v1/health/service with real blocking semantics.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kysely, PostgresDialect, sql } from 'kysely';
import type pg from 'pg';
import { FailoverTimeoutError, OutcomeUnknownError, PoolEndedError } from '../../lib/index.js';
import type { FailoverEvent, Pool, PoolOptions, RetryEvent, TopologyEvent } from '../../lib/index.js';
import type { ConsulDouble } from '../../lib/testing/consul-double.js';
import type { PgCluster } from '../../lib/testing/pg-cluster.js';
import { Workload } from '../../lib/testing/workload.js';
import { useClusterFixture } from '../support/cluster-fixture.js';
import { assertExitsAfterQuery } from '../support/child-exit.js';

const SERVICE = 'pglab';
const TOKEN = 'consul-secret-token-0123';

describe('Pool (integration: real PostgreSQL + Consul double)', function () {
  this.timeout(120_000);
  const fx = useClusterFixture(SERVICE, TOKEN);
  let cluster: PgCluster;
  let consul: ConsulDouble;

  const advertise = (primary: string, opts: { exclude?: string[] } = {}): void => fx.advertise(primary, opts.exclude);

  const portOf = (name: string): number => fx.portOf(name);

  const newPool = (extra: PoolOptions = {}): Pool => fx.newPool(extra);

  before(() => {
    ({ cluster, consul } = fx);
  });

  it('routes writes to the primary and spreads reads over both replicas', async () => {
    const pool = newPool();
    const primaryPort = portOf(cluster.primaryName());
    const replicaPorts = cluster.nodes.map((n) => n.port).filter((p) => p !== primaryPort).sort();
    const w = await pool.query<{ port: number; r: boolean }>('SELECT inet_server_port() AS port, pg_is_in_recovery() AS r');
    assert.deepEqual(w.rows[0], { port: primaryPort, r: false });
    const p = await pool.primary.query<{ port: number }>('SELECT inet_server_port() AS port');
    assert.equal(p.rows[0]!.port, primaryPort);
    const seen = new Map<number, number>();
    await Promise.all(
      Array.from({ length: 40 }, async () => {
        const r = await pool.replica.query<{ port: number; r: boolean }>('SELECT inet_server_port() AS port, pg_is_in_recovery() AS r, pg_sleep(0.01)');
        assert.equal(r.rows[0]!.r, true, 'reads run on a server in recovery');
        seen.set(r.rows[0]!.port, (seen.get(r.rows[0]!.port) ?? 0) + 1);
      }),
    );
    assert.deepEqual([...seen.keys()].sort(), replicaPorts, 'both replicas served reads');
    for (const n of seen.values()) assert.ok(n >= 10, `reads are balanced (${[...seen.values()]})`);
    const client = await pool.connect();
    try {
      const c = await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
      assert.equal(c.rows[0]!.r, false, 'pool.connect() gives a primary client');
    } finally {
      client.release();
    }
    assert.equal(pool.topology.primary?.port, primaryPort);
    assert.ok(pool.discoveryRequestCount >= 1);
  });

  it('behaves like pg.Pool: callbacks, events, counters, options, end semantics', async () => {
    const pool = newPool({ max: 3 });
    const events: string[] = [];
    for (const e of ['connect', 'acquire', 'release', 'remove'] as const) pool.on(e, () => events.push(e));
    const viaCb = await new Promise<pg.QueryResult>((resolve, reject) =>
      pool.query('SELECT $1::int AS n', [7], (err, res) => (err ? reject(err) : resolve(res))),
    );
    assert.equal(viaCb.rows[0]?.n, 7);
    const viaCb2 = await new Promise<pg.QueryResult>((resolve, reject) =>
      pool.query('SELECT 8 AS n', (err, res) => (err ? reject(err) : resolve(res))),
    );
    assert.equal(viaCb2.rows[0]?.n, 8);
    const arr = await pool.query<[number]>({ text: 'SELECT 9', rowMode: 'array' });
    assert.deepEqual(arr.rows, [[9]]);
    await new Promise<void>((resolve, reject) =>
      pool.connect((err, client, done) => {
        if (err || !client) return reject(err);
        client.query('SELECT 1', (qerr: Error | null) => {
          done();
          return qerr ? reject(qerr) : resolve();
        });
      }),
    );
    assert.ok(events.includes('connect') && events.includes('acquire') && events.includes('release'));
    assert.equal(pool.options.max, 3);
    assert.ok(pool.totalCount >= 1);
    assert.equal(pool.idleCount, pool.totalCount);
    assert.equal(pool.waitingCount, 0);
    await assert.rejects(pool.query('SELECT * FROM no_such_table'), (err: Error & { code?: string }) => err.code === '42P01');
    for (let i = 0; i < 100 && !events.includes('remove'); i++) await sleep(10);
    assert.ok(events.includes('remove'), 'a query error destroys the client, as in pg.Pool');
    // As pg-pool: the function is taken as the callback and receives the error.
    const fnErr = await new Promise<Error>((res) => assert.equal(pool.query(((e: Error) => res(e)) as unknown as string), undefined));
    assert.match(fnErr.message, /not supported/);
    await pool.end();
    assert.equal(pool.ended, true);
    assert.equal(pool.totalCount, 0);
    await assert.rejects(pool.query('SELECT 1'), PoolEndedError);
    await assert.rejects(pool.end(), /Called end on pool more than once/);
  });

  it('runs Kysely queries on the Pool and on pool.replica', async () => {
    const pool = newPool();
    interface DB {
      kx: { id: number; v: string };
    }
    const writes = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
    const reads = new Kysely<DB>({ dialect: new PostgresDialect({ pool: pool.replica }) });
    await sql`DROP TABLE IF EXISTS kx`.execute(writes);
    await sql`CREATE TABLE kx (id int PRIMARY KEY, v text NOT NULL)`.execute(writes);
    await writes.insertInto('kx').values({ id: 1, v: 'one' }).execute();
    await cluster.waitForReplay(cluster.nodes.find((n) => n.name !== cluster.primaryName())!.name);
    for (const n of cluster.nodes) if (n.name !== cluster.primaryName()) await cluster.waitForReplay(n.name);
    const row = await reads.selectFrom('kx').select(['id', 'v']).where('id', '=', 1).executeTakeFirstOrThrow();
    assert.deepEqual(row, { id: 1, v: 'one' });
    const inRecovery = await sql<{ r: boolean }>`SELECT pg_is_in_recovery() AS r`.execute(reads);
    assert.equal(inRecovery.rows[0]!.r, true);
    await writes.destroy(); // ends the whole pool
    await reads.destroy(); // second end through a view: same promise, no error
    assert.equal(pool.ended, true);
  });

  it('forwards idle-client errors to an error listener, and survives them without one', async () => {
    const logged: string[] = [];
    const withListener = newPool({ idleTimeoutMillis: 60_000 });
    const withoutListener = newPool({ idleTimeoutMillis: 60_000, logger: (_level, message) => logged.push(message) });
    const errors: Error[] = [];
    withListener.on('error', (err) => errors.push(err));
    await withListener.query("SET application_name = 'pgconsul_idle_a'");
    await withoutListener.query("SET application_name = 'pgconsul_idle_b'");
    await cluster.query(cluster.primaryName(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name IN ('pgconsul_idle_a', 'pgconsul_idle_b')");
    const deadline = Date.now() + 5000;
    while ((errors.length === 0 || !logged.some((m) => m.includes('idle client error'))) && Date.now() < deadline) await sleep(20);
    assert.equal(errors.length, 1);
    assert.ok(logged.some((m) => m.includes('idle client error')), 'logged instead of crashing');
    // Both pools still work.
    assert.equal((await withListener.query('SELECT 1 AS n')).rows[0]?.n, 1);
    assert.equal((await withoutListener.query('SELECT 1 AS n')).rows[0]?.n, 1);
  });

  it('keeps serving on the last good topology while Consul answers 500 or hangs, then recovers', async () => {
    const pool = newPool();
    const discoveryErrors: string[] = [];
    pool.on('discoveryError', (e) => discoveryErrors.push(e.error.message));
    await pool.query('SELECT 1');
    consul.injectFault(`/v1/health/service/${SERVICE}`, { kind: 'status', status: 500, body: 'rpc error: No cluster leader' });
    try {
      const until = Date.now() + 7000; // waitSeconds is 5: the blocking request returns and the next one fails
      while (discoveryErrors.length === 0 && Date.now() < until) {
        await pool.query('SELECT 1');
        await pool.replica.query('SELECT 1');
        await sleep(50);
      }
      assert.ok(discoveryErrors.length >= 1, 'a discoveryError event was emitted');
      assert.ok(!discoveryErrors.join(' ').includes(TOKEN), 'the token never appears');
      consul.clearFaults();
      consul.injectFault(`/v1/health/service/${SERVICE}`, { kind: 'hang' });
      const hangUntil = Date.now() + 10_000;
      let ok = 0;
      while (Date.now() < hangUntil) {
        await pool.query('SELECT 1');
        await pool.replica.query('SELECT 1');
        ok++;
        await sleep(100);
      }
      assert.ok(ok > 50, `queries kept flowing during the hang (${ok})`);
    } finally {
      consul.clearFaults();
    }
    // Discovery recovers: a change made now is seen.
    const seen = new Promise<TopologyEvent>((resolve) => pool.once('topology', resolve));
    const replica = cluster.nodes.find((n) => n.name !== cluster.primaryName())!;
    consul.updateService(`${SERVICE}/${replica.name}`, { tags: ['replica', 'after-outage'] });
    const timeout = new AbortController();
    const ev = await Promise.race([seen, sleep(20_000, undefined, { signal: timeout.signal }).catch(() => undefined)]);
    timeout.abort();
    assert.ok(ev, 'topology change seen after Consul recovered');
    consul.updateService(`${SERVICE}/${replica.name}`, { tags: ['replica'] });
  });

  it('skips malformed Consul entries without crashing', async () => {
    consul.registerService({ id: `${SERVICE}/bad-port`, name: SERVICE, address: '127.0.0.1', port: 0, tags: ['replica'] });
    consul.registerService({ id: `${SERVICE}/bad-host`, name: SERVICE, address: 'not a host', port: 5432, tags: ['replica'] });
    try {
      const skipped: string[] = [];
      const pool = newPool({ logger: (_l, message, fields) => message.includes('malformed') && skipped.push(String(fields?.['reason'])) });
      const r = await pool.replica.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
      assert.equal(r.rows[0]!.r, true);
      assert.equal(pool.topology.replicas.length, 2);
      assert.ok(skipped.length >= 2, `malformed entries logged (${skipped.length})`);
    } finally {
      consul.deregisterService(`${SERVICE}/bad-port`);
      consul.deregisterService(`${SERVICE}/bad-host`);
    }
  });

  it('never writes to a node Consul calls primary that is in recovery (role check)', async () => {
    const primary = cluster.primaryName();
    const standby = cluster.nodes.find((n) => n.name !== primary)!;
    // A stale entry: the standby advertised as primary, newer than the real one.
    consul.registerService({
      id: `${SERVICE}/stale-${standby.name}`,
      name: SERVICE,
      address: standby.host,
      port: standby.port,
      tags: ['master', 'primary'],
      node: `stale-${standby.name}`,
      nodeAddress: '127.0.0.1',
    });
    try {
      const pool = newPool();
      const retries: RetryEvent[] = [];
      pool.on('retry', (e) => retries.push(e));
      const res = await pool.query<{ port: number; r: boolean }>('SELECT inet_server_port() AS port, pg_is_in_recovery() AS r');
      assert.deepEqual(res.rows[0], { port: portOf(primary), r: false });
      // Rounds before discovery's first answer (no node) are not the point here.
      const onNodes = retries.filter((e) => e.node !== undefined);
      assert.ok(onNodes.length <= 2, `at most a retry or two on a node (${onNodes.length})`);
      assert.ok(pool.topology.invalidated.has(standby.host + ':' + standby.port));
    } finally {
      consul.deregisterService(`${SERVICE}/stale-${standby.name}`);
    }
  });

  it('a read-only primary (25006) is invalidated and re-checked without a tight loop', async () => {
    const primary = cluster.primaryName();
    await cluster.query(primary, 'CREATE TABLE IF NOT EXISTS ro_probe (id int)', [], { database: cluster.appUser.database });
    await cluster.query(primary, 'GRANT ALL ON ro_probe TO ' + cluster.appUser.user, [], { database: cluster.appUser.database });
    await cluster.query(primary, 'ALTER SYSTEM SET default_transaction_read_only = on');
    await cluster.query(primary, 'SELECT pg_reload_conf()');
    try {
      const pool = newPool({ failoverTimeoutMillis: 4000 });
      const t0 = Date.now();
      await assert.rejects(pool.query('INSERT INTO ro_probe VALUES (1)'), (err: unknown) => {
        assert.ok(err instanceof FailoverTimeoutError, String(err));
        assert.equal(err.outcome, 'not-executed');
        assert.equal(err.sqlState, '25006');
        assert.ok(err.attempts >= 2 && err.attempts <= 6, `tries on the node bounded (${err.attempts}): re-checked about once a second`);
        return true;
      });
      const elapsed = Date.now() - t0;
      assert.ok(elapsed >= 3900 && elapsed < 6000, `waited the failover timeout (${elapsed} ms)`);
    } finally {
      await cluster.query(primary, 'ALTER SYSTEM RESET default_transaction_read_only');
      await cluster.query(primary, 'SELECT pg_reload_conf()');
    }
    const pool = newPool();
    assert.equal((await pool.query('INSERT INTO ro_probe VALUES (2)')).rowCount, 1);
  });

  async function setSyncStandbys(value: string | undefined): Promise<void> {
    for (const n of cluster.nodes) {
      if (!cluster.isRunning(n.name)) continue;
      await cluster.query(n.name, value === undefined ? 'ALTER SYSTEM RESET synchronous_standby_names' : `ALTER SYSTEM SET synchronous_standby_names = '${value}'`);
      await cluster.query(n.name, 'SELECT pg_reload_conf()');
    }
  }

  /** The running replica that received the most WAL (what Patroni promotes on a failover). */
  async function mostAdvancedReplica(except: string): Promise<string> {
    let best = '';
    let bestPos = -1n;
    for (const n of cluster.nodes) {
      if (n.name === except || !cluster.isRunning(n.name)) continue;
      const [row] = await cluster.query(n.name, "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::text AS pos");
      const pos = BigInt(String(row?.['pos'] ?? '0').split('.')[0]!);
      if (pos > bestPos) {
        best = n.name;
        bestPos = pos;
      }
    }
    return best;
  }

  async function failover(stopMode: 'fast' | 'immediate'): Promise<void> {
    // Acknowledged means replicated: a crash of an asynchronous primary would lose
    // acknowledged commits whatever the client does, so the writers commit synchronously
    // to at least one replica, and the most advanced replica is promoted.
    await setSyncStandbys('*');
    try {
      await failoverOnce(stopMode);
    } finally {
      await setSyncStandbys(undefined);
    }
  }

  async function failoverOnce(stopMode: 'fast' | 'immediate'): Promise<void> {
    const pool = newPool({ options: '-c synchronous_commit=on' });
    const failovers: FailoverEvent[] = [];
    const topologies: TopologyEvent[] = [];
    pool.on('failover', (e) => failovers.push(e));
    pool.on('topology', (e) => topologies.push(e));
    await pool.query('SELECT 1');
    const load = await Workload.start({ pool, writers: 4, readers: 4, intervalMillis: 5 });
    try {
      await failoverUnderLoad(pool, load, stopMode, failovers, topologies);
    } finally {
      await load.stop();
    }
  }

  async function failoverUnderLoad(
    pool: Pool,
    load: Workload,
    stopMode: 'fast' | 'immediate',
    failovers: FailoverEvent[],
    topologies: TopologyEvent[],
  ): Promise<void> {
    await sleep(700);
    const oldPrimary = cluster.primaryName();
    const tStop = Date.now();
    await cluster.stop(oldPrimary, stopMode);
    const newPrimary = await mostAdvancedReplica(oldPrimary);
    const others = cluster.nodes.filter((n) => n.name !== oldPrimary && n.name !== newPrimary).map((n) => n.name);
    await cluster.promote(newPrimary);
    const tUpdate = Date.now();
    advertise(newPrimary, { exclude: [oldPrimary] });
    await Promise.all(others.map((o) => cluster.follow(o, newPrimary)));
    await sleep(1500);
    await load.stop();

    const after = load.summary(tUpdate);
    const all = load.summary();
    const firstAckAfterUpdate = Math.min(...load.writes.filter((w) => !w.error && w.endedAt >= tUpdate).map((w) => w.endedAt));
    const stall = firstAckAfterUpdate - tUpdate;
    console.log(
      `      [${stopMode}] writes ok ${all.writesOk}, failed ${JSON.stringify(all.writesFailed)}; reads ok ${all.readsOk}, failed ${all.readsFailed}; ` +
        `stop→update ${tUpdate - tStop} ms; write stall after the Consul update ${stall} ms; longest write gap ${all.longestWriteGapMillis} ms`,
    );
    assert.equal(all.readsFailed, 0, `reads see 0 errors: ${JSON.stringify(load.reads.find((r) => r.error)?.error)}`);
    assert.deepEqual(after.writesFailed, {}, 'writes issued after the Consul update see 0 errors');
    for (const w of load.writes) if (w.error) assert.equal(w.error.outcome, 'unknown', `a failed write is typed unknown: ${JSON.stringify(w.error)}`);
    assert.ok(load.writes.filter((w) => w.error).every((w) => w.error!.name === OutcomeUnknownError.name));
    const rows = await cluster.query(newPrimary, `SELECT id FROM ${load.table}`, [], { database: cluster.appUser.database });
    const present = new Set(rows.map((r) => Number(r['id'])));
    const missing = load.ackedIds().filter((id) => !present.has(id));
    assert.deepEqual(missing, [], 'every acknowledged write is on the new primary');
    assert.ok(after.writesOk > 20, `writes flowed after the update (${after.writesOk})`);
    assert.equal(after.writesByPort[String(portOf(newPrimary))], after.writesOk, 'all later writes on the new primary');
    assert.equal(failovers.length, 1, 'one failover event');
    assert.equal(failovers[0]!.from?.port, portOf(oldPrimary));
    assert.equal(failovers[0]!.to.port, portOf(newPrimary));
    assert.ok(topologies.some((t) => t.current.primary?.port === portOf(newPrimary)));
    await pool.end();
    // Bring the old primary back as a replica for the next scenario.
    await cluster.rejoinAsReplica(oldPrimary);
    advertise(newPrimary);
  }

  it('follows a planned switchover under write + read load', async () => {
    await failover('fast');
  });

  it('follows a crash failover (immediate stop) under write + read load', async () => {
    await failover('immediate');
  });

  for (const mode of ['end', 'idle'] as const) {
    it(`the process exits by itself ${mode === 'end' ? 'right after end()' : 'once idle connections time out, as with pg.Pool'}`, async () => {
      const { spawn } = await import('node:child_process');
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', new URL('../support/idle-child.ts', import.meta.url).pathname, String(consul.port), cluster.appUser.user, cluster.appUser.password, cluster.appUser.database, mode],
        { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, CHILD_CONSUL_TOKEN: TOKEN } },
      );
      await assertExitsAfterQuery(child, mode === 'end' ? 1500 : 3000);
    });
  }

  it('end() during a failover resolves and fails waiting statements with PoolEndedError', async () => {
    const pool = newPool();
    await pool.query('SELECT 1');
    const primary = cluster.primaryName();
    // Consul points at a primary that is down: statements wait for a topology change.
    await cluster.stop(primary, 'fast');
    try {
      const pending = pool.query('SELECT 1');
      const pendingRead = pool.replica.query('SELECT 1');
      await sleep(300);
      assert.ok(pool.waitingCount >= 1);
      // Watch the waiting statement before end(): it may fail while end() is still closing.
      const pendingFails = assert.rejects(pending, PoolEndedError);
      const t0 = Date.now();
      await pool.end();
      assert.ok(Date.now() - t0 < 2000, 'end() does not wait for the failover timeout');
      await pendingFails;
      assert.ok((await pendingRead).rows.length === 1, 'reads on replicas were unaffected');
    } finally {
      await cluster.start(primary);
    }
  });
});
