/**
 * The byte lag limit fed by Patroni's member keys, against a real Patroni 3.0.2 cluster
 * (PatroniLab on the Consul double, loop_wait 1 s): in the `patroni` and `patroni+health`
 * modes with `maxReplicaLag: { bytes }` alone, no lag-monitor connection is opened and a
 * replica that stops receiving WAL leaves the read path once Patroni's keys show it behind.
 *
 * How a replica is held back: Patroni reports a replica's `xlog_location` as the higher of
 * its received and replayed positions, and on PostgreSQL ≥ 14 it resumes a paused replay
 * in its next cycle (`handle_parameter_change`), so `pg_wal_replay_pause()` neither holds a
 * Patroni replica back nor shows in its key. Stopping the replica's WAL receiver (SIGSTOP)
 * does both: nothing more is received, and Patroni keeps reporting the frozen position.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Pool } from '../../lib/index.js';
import type { LagEvent, TopologyEvent } from '../../lib/index.js';
import { PatroniLab } from '../../lib/testing/patroni-lab.js';

const MODES = ['patroni', 'patroni+health'] as const;
/** Far above what the lab writes per loop_wait (~0.6 MB), so healthy replicas never flap. */
const LIMIT = 2 * 1024 * 1024;

interface Watched {
  readonly mode: (typeof MODES)[number];
  readonly pool: Pool;
  readonly topology: TopologyEvent[];
  readonly lag: LagEvent[];
}

describe('replica lag limit from Patroni member keys (integration: real Patroni + Consul double)', function () {
  this.timeout(180_000);
  let lab: PatroniLab;
  const pools: Pool[] = [];

  const portOf = (name: string): number => lab.nodes.find((n) => n.name === name)!.pgPort;
  const addressOf = (name: string): string => `127.0.0.1:${portOf(name)}`;

  /** A statement as the superuser on one node (loopback trust in the lab's pg_hba). */
  async function superuser<T extends pg.QueryResultRow>(name: string, text: string): Promise<T[]> {
    const client = new pg.Client({ host: '127.0.0.1', port: portOf(name), user: 'postgres', database: 'postgres' });
    await client.connect();
    try {
      return (await client.query<T>(text)).rows;
    } finally {
      await client.end();
    }
  }

  async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(50);
    }
  }

  function watch(mode: (typeof MODES)[number]): Watched {
    const pool = new Pool({
      service: lab.serviceName,
      discovery: mode,
      consul: { host: lab.consul.host, port: lab.consul.port, waitSeconds: 30 },
      user: lab.appUser.user,
      password: lab.appUser.password,
      database: lab.appUser.database,
      max: 4,
      failoverTimeoutMillis: 20_000,
      discoveryMinIntervalMillis: 20,
      maxReplicaLag: { bytes: LIMIT },
    });
    pools.push(pool);
    const w: Watched = { mode, pool, topology: [], lag: [] };
    pool.on('topology', (e) => w.topology.push(e));
    pool.on('lag', (e) => w.lag.push(e));
    return w;
  }

  /** Ports that `reads` replica reads landed on. */
  async function readPorts(pool: Pool, reads: number): Promise<Set<number>> {
    const ports = new Set<number>();
    for (let i = 0; i < reads; i++) {
      const res = await pool.replica.query<{ port: number; r: boolean }>('SELECT inet_server_port() AS port, pg_is_in_recovery() AS r');
      assert.equal(res.rows[0]!.r, true, 'replica reads run on a replica');
      ports.add(res.rows[0]!.port);
    }
    return ports;
  }

  /** Writes ~110 kB of WAL on the leader every 200 ms until stopped. */
  function writeWal(pool: Pool): { stop(): Promise<number> } {
    let running = true;
    let writes = 0;
    const done = (async () => {
      while (running) {
        await pool.query("INSERT INTO lagkv(v) SELECT repeat('x', 1000) FROM generate_series(1, 100)");
        writes++;
        await sleep(200);
      }
    })();
    return {
      async stop() {
        running = false;
        await done;
        return writes;
      },
    };
  }

  before(async () => {
    lab = await PatroniLab.start({ mode: 'patroni' });
    await lab.waitForHealthy();
  });

  after(async () => {
    await Promise.all(pools.splice(0).map((p) => p.end()));
    await lab?.stop();
  });

  it('excludes a replica that stops receiving WAL, by KV positions alone (no monitor connection), and readmits it', async () => {
    const { primary, replicas } = await lab.waitForHealthy();
    const [lagging, healthy] = replicas as [string, string];
    const runs = MODES.map(watch);
    for (const w of runs) {
      await w.pool.ready(20_000);
      await until(`[${w.mode}] both replicas readable`, () => w.pool.topology.readReplicas.length === 2);
      for (const name of replicas) {
        const e = w.pool.topology.lag.get(addressOf(name));
        assert.equal(e?.measuredBy, 'patroni-kv', `[${w.mode}] ${name} measured from KV`);
        assert.match(e?.patroniLsn ?? '', /^[0-9A-F]+\/[0-9A-F]+$/);
        assert.equal(e?.seconds, undefined);
      }
    }
    await runs[0]!.pool.query('CREATE TABLE IF NOT EXISTS lagkv (id serial PRIMARY KEY, v text NOT NULL)');

    // No lag-monitor connection anywhere, not even one.
    for (const n of [primary, ...replicas]) {
      const [row] = await superuser<{ n: string }>(n, "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'pg-consul lag monitor'");
      assert.equal(Number(row!.n), 0, `no monitor connection on ${n}`);
    }

    // 1. WAL moves on every member: lag events, no topology event.
    const topologyBefore = runs.map((w) => w.topology.length);
    const lagBefore = runs.map((w) => w.lag.length);
    const writer = writeWal(runs[0]!.pool);
    await sleep(3000);
    runs.forEach((w, i) => {
      assert.equal(w.topology.length, topologyBefore[i], `[${w.mode}] WAL movement fires no topology event`);
      assert.ok(w.lag.length > lagBefore[i]! + 2, `[${w.mode}] lag events follow the member keys (${w.lag.length - lagBefore[i]!})`);
      assert.equal(w.pool.topology.readReplicas.length, 2);
    });

    // 2. The lagging replica stops receiving: the leader's key moves on, its key does not.
    const [receiver] = await superuser<{ pid: number }>(lagging, 'SELECT pid FROM pg_stat_wal_receiver');
    assert.ok(receiver?.pid, `${lagging} has a WAL receiver`);
    const stoppedAt = Date.now();
    process.kill(receiver.pid, 'SIGSTOP');
    try {
      for (const w of runs) {
        await until(`[${w.mode}] ${lagging} excluded`, () => !w.pool.topology.readReplicas.some((r) => r.name === lagging), 30_000);
        const e = w.pool.topology.lag.get(addressOf(lagging))!;
        assert.equal(e.excluded, true);
        assert.ok(e.bytes! > LIMIT, `[${w.mode}] over the limit by KV positions (${e.bytes} bytes)`);
        console.log(`      [${w.mode}] ${lagging} excluded ${Date.now() - stoppedAt} ms after its WAL receiver stopped (${e.bytes} bytes behind)`);
      }
      for (const w of runs) {
        const ports = await readPorts(w.pool, 12);
        assert.deepEqual([...ports], [portOf(healthy)], `[${w.mode}] reads land only on ${healthy}`);
      }
      // Further WAL while excluded: numbers change, routing does not.
      const excludedTopology = runs.map((w) => w.topology.length);
      const excludedBytes = runs.map((w) => w.pool.topology.lag.get(addressOf(lagging))!.bytes!);
      await sleep(2500);
      runs.forEach((w, i) => {
        assert.equal(w.topology.length, excludedTopology[i], `[${w.mode}] still excluded: no topology event`);
        assert.ok(w.pool.topology.lag.get(addressOf(lagging))!.bytes! > excludedBytes[i]!, `[${w.mode}] falls further behind`);
      });
      const writes = await writer.stop();
      assert.ok(writes > 20, `WAL was written (${writes} batches)`);
    } finally {
      process.kill(receiver.pid, 'SIGCONT');
    }

    // 3. It receives again, catches up, and its next member key readmits it.
    const resumedAt = Date.now();
    for (const w of runs) {
      await until(`[${w.mode}] ${lagging} readmitted`, () => w.pool.topology.readReplicas.some((r) => r.name === lagging), 30_000);
      console.log(`      [${w.mode}] ${lagging} readmitted ${Date.now() - resumedAt} ms after its WAL receiver resumed`);
      const ports = await readPorts(w.pool, 12);
      assert.deepEqual([...ports].sort(), [portOf(healthy), portOf(lagging)].sort(), `[${w.mode}] reads use both replicas again`);
    }
    for (const w of runs) {
      // Exactly the routing changes: out once, back once; the healthy replica never left.
      const changes = w.topology.slice(topologyBefore[runs.indexOf(w)]);
      assert.deepEqual(
        changes.map((e) => e.current.readReplicas.map((r) => r.name).sort()),
        [[healthy], [healthy, lagging].sort()],
        `[${w.mode}] topology events: excluded, readmitted`,
      );
    }
    for (const n of [primary, ...replicas]) {
      const [row] = await superuser<{ n: string }>(n, "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'pg-consul lag monitor'");
      assert.equal(Number(row!.n), 0, `still no monitor connection on ${n}`);
    }
  });
});
