/**
 * `hosts: [...]` (static discovery) against real PostgreSQL 15 (a primary and two streaming
 * replicas), with no Consul at all: roles come from probing each server.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from '../../lib/index.js';
import type { PoolOptions } from '../../lib/index.js';
import { PgCluster } from '../../lib/testing/pg-cluster.js';
import { Workload } from '../../lib/testing/workload.js';
import { assertExitsAfterQuery } from '../support/child-exit.js';

describe('static host discovery (integration: real PostgreSQL, no Consul)', function () {
  this.timeout(120_000);
  let cluster: PgCluster;
  const pools: Pool[] = [];

  const portOf = (name: string): number => cluster.node(name).port;

  function newPool(extra: PoolOptions = {}): Pool {
    const pool = new Pool({
      hosts: cluster.nodes.map((n) => `${n.host}:${n.port}`),
      user: cluster.appUser.user,
      password: cluster.appUser.password,
      database: cluster.appUser.database,
      max: 8,
      ...extra,
    });
    pools.push(pool);
    return pool;
  }

  async function setSyncStandbys(value: string | undefined): Promise<void> {
    for (const n of cluster.nodes) {
      if (!cluster.isRunning(n.name)) continue;
      await cluster.query(n.name, value === undefined ? 'ALTER SYSTEM RESET synchronous_standby_names' : `ALTER SYSTEM SET synchronous_standby_names = '${value}'`);
      await cluster.query(n.name, 'SELECT pg_reload_conf()');
    }
  }

  before(async () => {
    cluster = await PgCluster.start({ replicas: 2 });
  });

  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => (p.ending ? Promise.resolve() : p.end())));
  });

  after(async () => {
    await cluster?.destroy();
  });

  it('finds the roles by probing, with no service and no Consul, and never logs the password', async () => {
    const logged: string[] = [];
    const pool = newPool({ logger: (level, message, fields) => logged.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`) });
    const topology = await pool.ready(10_000);
    assert.equal(pool.service, 'static');
    assert.equal(topology.source, 'static');
    assert.equal(topology.primary?.port, portOf(cluster.primaryName()));
    assert.deepEqual(topology.replicas.map((r) => r.port).sort(), cluster.nodes.filter((n) => n.name !== cluster.primaryName()).map((n) => n.port).sort());
    const w = await pool.query<{ port: number; r: boolean }>('SELECT inet_server_port() AS port, pg_is_in_recovery() AS r');
    assert.deepEqual(w.rows[0], { port: portOf(cluster.primaryName()), r: false });
    const r = await pool.replica.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    assert.equal(r.rows[0]!.r, true);
    assert.equal(pool.discoveryRequestCount, 3, 'one probe per host so far');
    // A wrong password: every probe is refused; the error names the hosts, never the password.
    const wrong = newPool({ password: 'not-the-password-42', logger: (level, message, fields) => logged.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`) });
    const errors: string[] = [];
    wrong.on('discoveryError', (e) => errors.push(e.error.message));
    await assert.rejects(wrong.ready(800));
    assert.ok(errors.length >= 1 && /28P01/.test(errors[0]!), errors[0]);
    const text = logged.join('\n') + errors.join('\n');
    assert.ok(!text.includes(cluster.appUser.password) && !text.includes('not-the-password-42'), 'no password in logs or errors');
  });

  for (const mode of ['end', 'idle'] as const) {
    it(`the process exits by itself ${mode === 'end' ? 'right after end()' : 'once idle connections time out'}, probing in the background`, async () => {
      const { spawn } = await import('node:child_process');
      const lib = new URL('../../lib/index.ts', import.meta.url).pathname;
      const script = `
        const { Pool } = await import(${JSON.stringify(lib)});
        const pool = new Pool({ hosts: process.env.CHILD_HOSTS.split(','), user: process.env.CHILD_USER, password: process.env.CHILD_PASSWORD,
          database: process.env.CHILD_DATABASE, idleTimeoutMillis: 300, probe: { intervalMillis: 200 } });
        await pool.query('SELECT 1');
        await pool.replica.query('SELECT 1');
        process.stdout.write('queried\\n');
        if (process.env.CHILD_MODE === 'end') await pool.end();
      `;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: {
          ...process.env,
          CHILD_HOSTS: cluster.nodes.map((n) => `${n.host}:${n.port}`).join(','),
          CHILD_USER: cluster.appUser.user,
          CHILD_PASSWORD: cluster.appUser.password,
          CHILD_DATABASE: cluster.appUser.database,
          CHILD_MODE: mode,
        },
      });
      await assertExitsAfterQuery(child, mode === 'end' ? 1500 : 3000);
    });
  }

  async function underLoad(name: string, change: (oldPrimary: string, newPrimary: string) => Promise<void>, durable: boolean): Promise<void> {
    const pool = newPool({ options: '-c synchronous_commit=on' });
    await pool.ready();
    const load = await Workload.start({ pool, writers: 4, readers: 4, intervalMillis: 5 });
    try {
      await sleep(700);
      const oldPrimary = cluster.primaryName();
      const newPrimary = cluster.nodes.find((n) => n.name !== oldPrimary)!.name;
      const tStart = Date.now();
      await change(oldPrimary, newPrimary);
      const tPromoted = Date.now();
      const onNew = (): boolean => load.writes.some((w) => !w.error && w.port === portOf(newPrimary));
      // Bounded wait for the first write on the new primary (its assertion below says how long
      // it took), then a while of writes there.
      for (const deadline = Date.now() + 10_000; !onNew() && Date.now() < deadline; ) await sleep(20);
      await sleep(1_000);
      await load.stop();
      const after = load.summary(tPromoted);
      const all = load.summary();
      const firstAck = Math.min(...load.writes.filter((w) => !w.error && w.port === portOf(newPrimary)).map((w) => w.endedAt));
      console.log(
        `      [${name}] change took ${tPromoted - tStart} ms; first write on the new primary ${firstAck - tStart} ms after the change began; ` +
          `longest write gap ${all.longestWriteGapMillis} ms; writes ok ${all.writesOk}, failed ${JSON.stringify(all.writesFailed)}; ` +
          `reads ok ${all.readsOk}, failed ${all.readsFailed}; ${pool.discoveryRequestCount} probes`,
      );
      assert.equal(all.readsFailed, 0, `reads see 0 errors: ${JSON.stringify(load.reads.find((x) => x.error)?.error)}`);
      for (const w of load.writes) if (w.error) assert.equal(w.error.outcome, 'unknown', JSON.stringify(w.error));
      assert.ok(after.writesOk > 20, `writes flowed after the change (${after.writesOk})`);
      assert.equal(after.writesByPort[String(portOf(newPrimary))], after.writesOk, 'all writes issued after the promotion on the new primary');
      assert.ok(firstAck - tPromoted < 1_000, `probing found the new primary quickly (${firstAck - tPromoted} ms)`);
      if (durable) {
        const rows = await cluster.query(newPrimary, `SELECT id FROM ${load.table}`, [], { database: cluster.appUser.database });
        const present = new Set(rows.map((row) => Number(row['id'])));
        assert.deepEqual(load.ackedIds().filter((id) => !present.has(id)), [], 'every acknowledged write is on the new primary');
      }
      // Only the switchover's old primary is needed again (the crash is the last scenario);
      // rejoining a crashed primary can take a minute (restart, then a fresh base backup).
      if (durable) await cluster.rejoinAsReplica(oldPrimary);
    } finally {
      await load.stop();
    }
  }

  it('follows a switchover under write + read load', async () => {
    await underLoad('switchover', async (_old, next) => cluster.switchover(next), true);
  });

  it('follows a crash (immediate stop + promotion) under write + read load', async () => {
    // Acknowledged means replicated: commits wait for a standby, so the promoted one has them.
    await setSyncStandbys('*');
    try {
      await underLoad(
        'crash',
        async (old, next) => {
          await cluster.stop(old, 'immediate');
          await cluster.promote(next);
          const others = cluster.nodes.filter((n) => n.name !== old && n.name !== next).map((n) => n.name);
          await Promise.all(others.map((o) => cluster.follow(o, next)));
        },
        false,
      );
    } finally {
      await setSyncStandbys(undefined);
    }
  });
});
