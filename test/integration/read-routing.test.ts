/**
 * Read routing against real PostgreSQL (a primary and two streaming replicas on loopback)
 * and the Consul double: the replica lag limit (replay paused with pg_wal_replay_pause()),
 * read-your-writes sessions and their tokens, and auto read routing.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import sinon from 'sinon';
import { NoReplicaError, Pool } from '../../lib/index.js';
import type { LagEvent, PoolOptions, TopologyEvent } from '../../lib/index.js';
import { REPLAY_POSITION_QUERY } from '../../lib/routing/read-paths.js';
import { INSERT_POSITION_QUERY } from '../../lib/routing/session.js';
import { ConsulDouble } from '../../lib/testing/consul-double.js';
import { PgCluster } from '../../lib/testing/pg-cluster.js';

const SERVICE = 'pglab';

describe('read routing (integration: real PostgreSQL + Consul double)', function () {
  this.timeout(120_000);
  let cluster: PgCluster;
  let consul: ConsulDouble;
  const pools: Pool[] = [];
  let replicaNames: string[] = [];

  function portOf(name: string): number {
    return cluster.node(name).port;
  }

  function addressOf(name: string): string {
    return `127.0.0.1:${portOf(name)}`;
  }

  function newPool(extra: PoolOptions = {}): Pool {
    const pool = new Pool({
      service: SERVICE,
      consul: { host: '127.0.0.1', port: consul.port, waitSeconds: 5 },
      user: cluster.appUser.user,
      password: cluster.appUser.password,
      database: cluster.appUser.database,
      max: 8,
      failoverTimeoutMillis: 10_000,
      discoveryMinIntervalMillis: 20,
      ...extra,
    });
    pools.push(pool);
    return pool;
  }

  async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(20);
    }
  }

  async function pause(name: string): Promise<void> {
    await cluster.query(name, 'SELECT pg_wal_replay_pause()');
    await until(`${name} to pause replay`, async () => {
      const [row] = await cluster.query(name, 'SELECT pg_get_wal_replay_pause_state() AS s');
      return row?.['s'] === 'paused';
    });
  }

  async function resume(name: string): Promise<void> {
    await cluster.query(name, 'SELECT pg_wal_replay_resume()');
  }

  /** Primary WAL that a paused replica cannot have: ~600 kB of rows, flushed. */
  async function writeWal(pool: Pool): Promise<void> {
    await pool.query("INSERT INTO rr(v) SELECT repeat('x', 1000) FROM generate_series(1, 500)");
    await cluster.query(cluster.primaryName(), 'SELECT pg_switch_wal()');
  }

  async function endAll(): Promise<void> {
    await Promise.all(pools.splice(0).map((p) => (p.ending ? Promise.resolve() : p.end())));
  }

  before(async () => {
    [cluster, consul] = await Promise.all([PgCluster.start({ replicas: 2 }), ConsulDouble.start()]);
    const primary = cluster.primaryName();
    replicaNames = cluster.nodes.map((n) => n.name).filter((n) => n !== primary);
    for (const n of [primary, ...replicaNames]) {
      consul.registerService({
        id: `${SERVICE}/${n}`,
        name: SERVICE,
        address: '127.0.0.1',
        port: portOf(n),
        tags: n === primary ? ['master', 'primary'] : ['replica'],
        node: n,
        nodeAddress: '127.0.0.1',
      });
    }
    const app = new pg.Client({ host: '127.0.0.1', port: portOf(primary), ...cluster.appUser });
    await app.connect();
    try {
      await app.query('CREATE TABLE rr (id serial PRIMARY KEY, v text NOT NULL)');
      await app.query('CREATE SEQUENCE rr_seq');
      await app.query("CREATE FUNCTION rr_write() RETURNS int LANGUAGE sql AS $$ INSERT INTO rr(v) VALUES ('by function') RETURNING id $$");
    } finally {
      await app.end();
    }
    for (const n of replicaNames) await cluster.waitForReplay(n);
  });

  afterEach(async () => {
    sinon.restore();
    await endAll();
    for (const n of replicaNames) await resume(n);
  });

  after(async () => {
    await endAll();
    await consul?.stop();
    await cluster?.destroy();
  });

  describe('replica lag limit', () => {
    it('excludes a replica whose replay is paused once it is over the byte limit, and readmits it when it catches up', async () => {
      const pool = newPool({ maxReplicaLag: { bytes: 64 * 1024 }, lagCheckIntervalMillis: 100 });
      const topologyEvents: TopologyEvent[] = [];
      const lagEvents: LagEvent[] = [];
      pool.on('topology', (e) => topologyEvents.push(e));
      pool.on('lag', (e) => lagEvents.push(e));
      await until('both replicas measured and readable', () => pool.topology.readReplicas.length === 2);
      const [lagging, healthy] = replicaNames as [string, string];

      // Lag numbers alone do not make topology events.
      const before = topologyEvents.length;
      const lagBefore = lagEvents.length;
      await sleep(600);
      assert.equal(topologyEvents.length, before, 'no topology event while nothing changes');
      assert.ok(lagEvents.length > lagBefore, 'lag events keep coming (one per measurement round)');
      const quiet = pool.topology.lag.get(addressOf(lagging))!;
      assert.ok(quiet.bytes !== undefined && quiet.bytes < 64 * 1024, `an idle, caught-up replica lags ~0 bytes (${quiet.bytes})`);
      assert.ok(quiet.seconds !== undefined && quiet.seconds <= 0.5, `and ~0 seconds: an idle primary is not lag (${quiet.seconds})`);
      assert.equal(quiet.excluded, false);

      await pause(lagging);
      await writeWal(pool);
      await until('the paused replica to be excluded', () => pool.topology.lag.get(addressOf(lagging))?.excluded === true);
      const lag = pool.topology.lag.get(addressOf(lagging))!;
      assert.ok(lag.bytes! > 64 * 1024, `bytes behind reported (${lag.bytes})`);
      assert.match(lag.replayLsn!, /^[0-9A-F]+\/[0-9A-F]+$/);
      // The healthy replica may itself be briefly over the limit right after the WAL burst
      // (a loaded machine replays 64 KB in more than one measurement round): wait for it.
      await until('the healthy replica alone to be readable', () => pool.topology.readReplicas.map((r) => r.name).join() === healthy);
      assert.equal(pool.topology.lag.get(addressOf(lagging))?.excluded, true, 'the paused replica stays excluded');
      assert.ok(pool.topology.replicas.length === 2, 'it is still a replica, just not readable');
      const exclusion = topologyEvents.find((e) => e.current.readReplicas.length === 1 && e.previous.readReplicas.length === 2);
      assert.ok(exclusion, 'the exclusion was a topology event');

      const ports = new Set<number>();
      for (let i = 0; i < 20; i++) {
        const r = await pool.replica.query<{ port: number }>('SELECT inet_server_port() AS port');
        ports.add(r.rows[0]!.port);
      }
      assert.deepEqual([...ports], [portOf(healthy)], 'reads only go to the replica within the limit');

      await resume(lagging);
      await until('the replica to be readmitted', () => pool.topology.readReplicas.length === 2);
      assert.ok(topologyEvents.some((e) => e.previous.readReplicas.length === 1 && e.current.readReplicas.length === 2), 'readmission was a topology event');
      await until('reads to reach the readmitted replica', async () => {
        const r = await pool.replica.query<{ port: number }>('SELECT inet_server_port() AS port');
        return r.rows[0]!.port === portOf(lagging);
      });
    });

    it('excludes on the seconds limit (time behind, not primary idle time)', async () => {
      const pool = newPool({ maxReplicaLag: { seconds: 1 }, lagCheckIntervalMillis: 100 });
      await until('both replicas readable', () => pool.topology.readReplicas.length === 2);
      await sleep(1500); // an idle primary for longer than the limit: nobody is excluded
      assert.equal(pool.topology.readReplicas.length, 2);
      const [lagging] = replicaNames as [string, string];
      await pause(lagging);
      const paused = Date.now();
      await pool.query("INSERT INTO rr(v) VALUES ('one small write')");
      await cluster.query(cluster.primaryName(), 'SELECT pg_switch_wal()');
      await until('the paused replica to be excluded', () => pool.topology.lag.get(addressOf(lagging))?.excluded === true);
      const elapsed = Date.now() - paused;
      assert.ok(elapsed >= 900, `excluded only once over a second behind (${elapsed} ms)`);
      assert.ok(pool.topology.lag.get(addressOf(lagging))!.seconds! > 1);
      await resume(lagging);
      await until('the replica to be readmitted', () => pool.topology.readReplicas.length === 2);
    });

    it('applies readFallback when every replica lags: primary, or NoReplicaError with fail', async () => {
      const toPrimary = newPool({ maxReplicaLag: { bytes: 64 * 1024 }, lagCheckIntervalMillis: 100 });
      const failing = newPool({ maxReplicaLag: { bytes: 64 * 1024 }, lagCheckIntervalMillis: 100, readFallback: 'fail', failoverTimeoutMillis: 300 });
      await until('replicas readable', () => toPrimary.topology.readReplicas.length === 2 && failing.topology.readReplicas.length === 2);
      for (const n of replicaNames) await pause(n);
      await writeWal(toPrimary);
      await until('every replica excluded', () => toPrimary.topology.readReplicas.length === 0 && failing.topology.readReplicas.length === 0);
      const r = await toPrimary.replica.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
      assert.equal(r.rows[0]!.r, false, 'reads fell back to the primary');
      await assert.rejects(failing.replica.query('SELECT 1'), NoReplicaError);
    });

    it('stops the monitor on end(): its connections close', async () => {
      const pool = newPool({ maxReplicaLag: { seconds: 30 }, lagCheckIntervalMillis: 50 });
      const monitorConnections = async (): Promise<number> => {
        let n = 0;
        for (const node of cluster.nodes) {
          const [row] = await cluster.query(node.name, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'pg-consul lag monitor'");
          n += Number(row?.['n']);
        }
        return n;
      };
      await until('the monitor to connect to every node', async () => (await monitorConnections()) === 3);
      await pool.end();
      await until('the monitor connections to close', async () => (await monitorConnections()) === 0, 5000);
    });
  });

  describe('read-your-writes sessions', () => {
    for (const monitored of [false, true]) {
      it(`reads its own write at once while every replica has replay paused (${monitored ? 'lag monitor on' : 'no lag monitor'})`, async () => {
        const pool = newPool(monitored ? { maxReplicaLag: { bytes: 1e12 }, lagCheckIntervalMillis: 100 } : {});
        if (monitored) await until('replicas readable', () => pool.topology.readReplicas.length === 2);
        for (const n of replicaNames) await pause(n);
        const s = pool.session();
        assert.equal(s.lsn, undefined);
        const id = await s.value<number>('INSERT INTO rr(v) VALUES ($1) RETURNING id', ['mine']);
        assert.match(s.lsn!, /^[0-9A-F]+\/[0-9A-F]+$/);
        const row = await s.replica.maybeOne<{ v: string; r: boolean }>('SELECT v, pg_is_in_recovery() AS r FROM rr WHERE id = $1', [id]);
        assert.deepEqual(row, { v: 'mine', r: false }, 'read from the primary, which has the write');
        const stale = await pool.replica.maybeOne('SELECT v FROM rr WHERE id = $1', [id]);
        assert.equal(stale, null, 'a plain replica read does not see it (the test is meaningful)');
      });
    }

    it('reads from a replica once one has replayed the write, seeing it every time', async () => {
      const pool = newPool();
      const s = pool.session();
      const id = await s.value<number>('INSERT INTO rr(v) VALUES ($1) RETURNING id', ['eventually on a replica']);
      let fromReplica = 0;
      let fromPrimary = 0;
      await until('a replica to serve the session', async () => {
        const row = await s.replica.one<{ v: string; r: boolean }>('SELECT v, pg_is_in_recovery() AS r FROM rr WHERE id = $1', [id]);
        assert.equal(row.v, 'eventually on a replica', 'the write is always visible');
        if (row.r) fromReplica++;
        else fromPrimary++;
        return fromReplica >= 5;
      }, 10_000);
      assert.ok(fromReplica >= 5, `replica reads ${fromReplica}, primary reads ${fromPrimary}`);
    });

    it('adds no round trip to reads while clean, and none once a replica is known to be caught up', async () => {
      const pool = newPool();
      await pool.replica.query('SELECT 1');
      const spy = sinon.spy(pg.Client.prototype, 'query');
      const sent = (text: string): number => spy.getCalls().filter((c) => c.args[0] === text).length;
      const clean = pool.session();
      for (let i = 0; i < 10; i++) await clean.replica.query('SELECT 1');
      assert.equal(sent(REPLAY_POSITION_QUERY), 0, 'no position: no check');
      assert.equal(sent(INSERT_POSITION_QUERY), 0);
      assert.equal(await clean.replica.value('SELECT 7'), 7, 'helpers work on the read path');

      const writer = pool.session();
      await writer.query("INSERT INTO rr(v) VALUES ('x')");
      assert.equal(sent(INSERT_POSITION_QUERY), 1, 'one position query per write');
      await writer.query('SELECT 1');
      assert.equal(sent(INSERT_POSITION_QUERY), 1, 'a certainly read-only statement records nothing');
      for (const n of replicaNames) await cluster.waitForReplay(n);
      await until('both replicas known to have replayed the write', async () => {
        await writer.replica.query('SELECT 1');
        await writer.replica.query('SELECT 1');
        const checks = sent(REPLAY_POSITION_QUERY);
        await writer.replica.query('SELECT 1');
        await writer.replica.query('SELECT 1');
        return sent(REPLAY_POSITION_QUERY) === checks;
      });
      const checks = sent(REPLAY_POSITION_QUERY);
      for (let i = 0; i < 10; i++) {
        const r = await writer.replica.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
        assert.equal(r.rows[0]!.r, true);
      }
      assert.equal(sent(REPLAY_POSITION_QUERY), checks, 'known caught-up replicas are not checked again');
    });

    it('carries the position across two Pool instances in its token; rejects malformed tokens', async () => {
      const a = newPool();
      const b = newPool();
      for (const n of replicaNames) await pause(n);
      const sa = a.session();
      const id = await sa.value<number>('INSERT INTO rr(v) VALUES ($1) RETURNING id', ['across pools']);
      const token = sa.token;
      assert.match(token, /^[A-Za-z0-9_-]{12}$/);
      const sb = b.session(token);
      assert.equal(sb.lsn, sa.lsn);
      const row = await sb.replica.maybeOne<{ v: string }>('SELECT v FROM rr WHERE id = $1', [id]);
      assert.deepEqual(row, { v: 'across pools' });
      assert.equal(await b.replica.maybeOne('SELECT v FROM rr WHERE id = $1', [id]), null);
      for (const bad of ['nonsense', 'AQAAAAADAAF', '!QAAAAADAAFI', 'AgAAAAADAAFI']) {
        assert.throws(() => b.session(bad), (err: unknown) => err instanceof TypeError && !err.message.includes(bad));
      }
      assert.equal(b.session('').lsn, undefined);
    });

    it("pins reads to the primary when a write's position cannot be read, without failing the write", async () => {
      const pool = newPool();
      const db = { database: cluster.appUser.database };
      await cluster.query(cluster.primaryName(), 'REVOKE EXECUTE ON FUNCTION pg_current_wal_insert_lsn() FROM PUBLIC', [], db);
      const s = pool.session();
      let id: number;
      try {
        id = await s.value<number>('INSERT INTO rr(v) VALUES ($1) RETURNING id', ['pinned']);
      } finally {
        await cluster.query(cluster.primaryName(), 'GRANT EXECUTE ON FUNCTION pg_current_wal_insert_lsn() TO PUBLIC', [], db);
      }
      assert.equal(s.lsn, 'FFFFFFFF/FFFFFFFF', 'position unknown: pinned');
      const spy = sinon.spy(pg.Client.prototype, 'query');
      for (let i = 0; i < 3; i++) {
        const row = await s.replica.one<{ v: string; r: boolean }>('SELECT v, pg_is_in_recovery() AS r FROM rr WHERE id = $1', [id]);
        assert.deepEqual(row, { v: 'pinned', r: false });
      }
      assert.equal(spy.getCalls().filter((c) => c.args[0] === REPLAY_POSITION_QUERY).length, 0, 'a pinned session checks no replica');
      await s.query("INSERT INTO rr(v) VALUES ('unpinned')");
      assert.notEqual(s.lsn, 'FFFFFFFF/FFFFFFFF', 'the next recorded write unpins it');
    });

    it('records the position after a transaction', async () => {
      const pool = newPool();
      for (const n of replicaNames) await pause(n);
      const s = pool.session();
      const id = await s.transaction(async (tx) => tx.value<number>("INSERT INTO rr(v) VALUES ('in a transaction') RETURNING id"));
      assert.ok(s.lsn !== undefined);
      const row = await s.replica.one<{ v: string }>('SELECT v FROM rr WHERE id = $1', [id]);
      assert.equal(row.v, 'in a transaction');
    });
  });

  describe('auto read routing', () => {
    it('sends certainly read-only pool.query statements to replicas, everything else to the primary', async () => {
      const pool = newPool({ autoReadRouting: true });
      const recovery = async (sql: string): Promise<boolean> => (await pool.query<{ r: boolean }>(sql)).rows[0]!.r;
      assert.equal(await recovery('SELECT pg_is_in_recovery() AS r'), true, 'SELECT → replica');
      assert.equal(await recovery('/* hint */ WITH x AS (SELECT 1) SELECT pg_is_in_recovery() AS r FROM x'), true, 'WITH … SELECT → replica');
      assert.equal(await recovery("INSERT INTO rr(v) VALUES ('auto') RETURNING pg_is_in_recovery() AS r"), false, 'INSERT → primary');
      assert.equal(await recovery("SELECT nextval('rr_seq') AS n, pg_is_in_recovery() AS r"), false, 'nextval() → primary');
      assert.equal(await recovery('SELECT pg_is_in_recovery() AS r FROM rr LIMIT 1 FOR UPDATE'), false, 'FOR UPDATE → primary');
      assert.equal(await pool.value('SELECT pg_is_in_recovery()'), true, 'helpers follow pool.query');
      assert.equal((await pool.primary.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r, false, 'pool.primary never moves');
      const client = await pool.connect();
      try {
        assert.equal((await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r, false, 'checked-out clients are the primary');
      } finally {
        client.release();
      }
      assert.equal(await pool.transaction((tx) => tx.value('SELECT pg_is_in_recovery()')), false, 'transactions stay on the primary');
      const viaCallback = await new Promise<boolean>((resolve, reject) =>
        pool.query('SELECT pg_is_in_recovery() AS r', (err, res) => (err ? reject(err) : resolve(res.rows[0]!.r as boolean))),
      );
      assert.equal(viaCallback, true, 'callback form is routed too');
    });

    it('runs a statement a replica refuses as a write (25006) on the primary instead', async () => {
      const pool = newPool({ autoReadRouting: true });
      const res = await pool.query<{ id: number; r: boolean }>('SELECT rr_write() AS id, pg_is_in_recovery() AS r');
      assert.equal(res.rows[0]!.r, false);
      const [row] = await cluster.query(cluster.primaryName(), 'SELECT v FROM rr WHERE id = $1', [res.rows[0]!.id], { database: cluster.appUser.database });
      assert.equal(row?.['v'], 'by function', 'the write happened once, on the primary');
    });

    it('session.query routes reads like pool.query and keeps read-your-writes', async () => {
      const pool = newPool({ autoReadRouting: true });
      for (const n of replicaNames) await pause(n);
      const s = pool.session();
      assert.equal((await s.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r, true, 'clean session: replica');
      const id = await s.value<number>("INSERT INTO rr(v) VALUES ('auto session') RETURNING id");
      const row = await s.one<{ v: string; r: boolean }>('SELECT v, pg_is_in_recovery() AS r FROM rr WHERE id = $1', [id]);
      assert.deepEqual(row, { v: 'auto session', r: false });
    });
  });
});
