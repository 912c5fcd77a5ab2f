/**
 * pg-consul against a real Patroni 3.0.2 cluster (3 nodes, PostgreSQL 15) whose DCS is the
 * Consul double: Patroni registers the service itself, and pg-consul must follow a planned
 * switchover and a crash failover under a concurrent write + read load.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from '../../lib/index.js';
import type { TopologyEvent } from '../../lib/index.js';
import { PatroniLab } from '../../lib/testing/patroni-lab.js';
import { Workload } from '../../lib/testing/workload.js';
import { crashDrill, switchoverDrill, writeStall } from '../../lib/testing/failover-drill.js';
import type { DrillTiming } from '../../lib/testing/failover-drill.js';

interface HealthEntry {
  Service: { ID: string; Tags: string[]; Port: number };
}

describe('Pool on a real Patroni cluster (integration)', function () {
  this.timeout(180_000);
  let lab: PatroniLab;
  let pool: Pool;
  const topologies: TopologyEvent[] = [];
  const ports: Record<string, number> = {};

  before(async () => {
    lab = await PatroniLab.start({ synchronousMode: true });
    for (const n of lab.nodes) ports[n.name] = n.pgPort;
    pool = new Pool({
      service: lab.serviceName,
      consul: { host: '127.0.0.1', port: lab.consul.port, waitSeconds: 30 },
      user: lab.appUser.user,
      password: lab.appUser.password,
      database: lab.appUser.database,
      // Acknowledged = on the synchronous standby, which is the one Patroni promotes.
      options: '-c synchronous_commit=on',
      max: 8,
      failoverTimeoutMillis: 60_000,
    });
    pool.on('topology', (e) => topologies.push(e));
    await pool.ready();
  });

  after(async () => {
    await pool?.end();
    await lab?.stop();
  });

  it('Patroni registers the leader with master + primary and the replicas with replica, all passing', async () => {
    const res = await fetch(`${lab.consul.url}/v1/health/service/${lab.serviceName}?passing`);
    const entries = (await res.json()) as HealthEntry[];
    const leader = await lab.leader();
    assert.equal(entries.length, 3);
    for (const e of entries) {
      const name = e.Service.ID.split('/')[1]!;
      if (name === leader) {
        assert.ok(e.Service.Tags.includes('master') && e.Service.Tags.includes('primary'), `leader tags ${e.Service.Tags}`);
      } else {
        assert.deepEqual(e.Service.Tags, ['replica']);
      }
    }
    assert.equal(pool.topology.primary?.name, leader);
    assert.deepEqual(pool.topology.replicas.map((r) => r.name).sort(), lab.nodes.map((n) => n.name).filter((n) => n !== leader).sort());
  });

  async function drillUnderLoad(run: () => Promise<DrillTiming>): Promise<void> {
    const load = await Workload.start({ pool, writers: 4, readers: 4, intervalMillis: 5, table: 'patroni_drill' });
    let t: DrillTiming;
    try {
      await sleep(1000);
      topologies.length = 0;
      t = await run();
      // Let writes flow on the new leader for a while.
      const until = Date.now() + 15_000;
      while (Date.now() < until && !load.writes.some((w) => !w.error && w.port === ports[t.to] && w.startedAt > t.registeredAt + 1000)) {
        await sleep(100);
      }
      await sleep(500);
    } finally {
      await load.stop();
    }
    const all = load.summary();
    const afterRegistration = load.summary(t.registeredAt);
    const stall = writeStall(load, t, ports);
    console.log(
      `      [${t.kind}] ${t.from} → ${t.to}: leader key +${t.leaderKeyMovedAt - t.startedAt} ms, registered +${t.registeredAt - t.startedAt} ms; ` +
        `first write on ${t.to} +${(stall.firstNewAckAt ?? NaN) - t.startedAt} ms (${(stall.firstNewAckAt ?? NaN) - t.registeredAt} ms after registration); ` +
        `write stall ${stall.millis} ms; writes ok ${all.writesOk} failed ${JSON.stringify(all.writesFailed)}; reads ok ${all.readsOk} failed ${all.readsFailed}`,
    );
    assert.equal(all.readsFailed, 0, `reads: 0 errors (${JSON.stringify(load.reads.find((r) => r.error)?.error)})`);
    assert.deepEqual(afterRegistration.writesFailed, {}, 'writes issued after the new leader registered: 0 errors');
    for (const w of load.writes) if (w.error) assert.equal(w.error.outcome, 'unknown', `failed write typed unknown: ${JSON.stringify(w.error)}`);
    const rows = await pool.query<{ id: string }>(`SELECT id FROM ${load.table}`);
    const present = new Set(rows.rows.map((r) => Number(r.id)));
    assert.deepEqual(load.ackedIds().filter((id) => !present.has(id)), [], 'every acknowledged write is on the new leader');
    const last = await pool.query<{ port: number }>('SELECT inet_server_port() AS port');
    assert.equal(last.rows[0]!.port, ports[t.to], 'pool.query goes to the new leader');
    const named = topologies.find((e) => e.current.primary?.name === t.to);
    assert.ok(named, `a topology event names ${t.to} as primary`);
    assert.notEqual(named.previous.primary?.name, t.to);
  }

  it('follows a planned switchover (Patroni REST /switchover) under load', async () => {
    await drillUnderLoad(() => switchoverDrill(lab));
    await lab.waitForHealthy(60_000);
  });

  it('follows a crash failover (kill -9 of the leader postmaster) under load', async () => {
    await drillUnderLoad(() => crashDrill(lab));
    await lab.waitForHealthy(90_000);
  });
});
