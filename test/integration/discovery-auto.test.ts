/**
 * `discovery: 'auto'` (the default) end to end: on real Patroni it takes the KV path and
 * follows a switchover by the leader key; on the Consul double without Patroni's keys it
 * falls back to consul-health with one info line; keys written later switch it at run time.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Pool } from '../../lib/index.js';
import type { PoolOptions } from '../../lib/index.js';
import { PatroniLab } from '../../lib/testing/patroni-lab.js';
import { Workload } from '../../lib/testing/workload.js';
import { useClusterFixture } from '../support/cluster-fixture.js';

interface Line {
  readonly level: string;
  readonly message: string;
}

/** A logger recording pg-consul's lines, and the `discovery auto:` info lines among them. */
function recorder(): { lines: Line[]; auto: () => string[]; logger: NonNullable<PoolOptions['logger']> } {
  const lines: Line[] = [];
  return {
    lines,
    auto: () => lines.filter((l) => l.level === 'info' && l.message.startsWith('discovery auto:')).map((l) => l.message),
    logger: (level, message) => lines.push({ level, message }),
  };
}

async function until(what: string, predicate: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    assert.ok(Date.now() < deadline, `${what} within ${timeoutMs} ms`);
    await sleep(10);
  }
}

describe('discovery auto on real Patroni (PatroniLab)', function () {
  this.timeout(240_000);
  let lab: PatroniLab;
  const pools: Pool[] = [];

  before(async () => {
    lab = await PatroniLab.start();
    console.log(`      lab mode: ${lab.mode}`);
  });
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.end()));
  });
  after(async () => {
    await lab?.stop();
  });

  it('picks the KV path with no discovery option and follows a switchover by the leader key, 0 writes on the old leader after the move', async () => {
    const log = recorder();
    const pool = new Pool({
      service: lab.serviceName,
      consul: { host: lab.consul.host, port: lab.consul.port, waitSeconds: 30 },
      user: lab.appUser.user,
      password: lab.appUser.password,
      database: lab.appUser.database,
      max: 6,
      failoverTimeoutMillis: 30_000,
      discoveryMinIntervalMillis: 20,
      logger: log.logger,
    });
    pools.push(pool);
    const { primary } = await lab.waitForHealthy();
    const portOf = (name: string): number => lab.nodes.find((n) => n.name === name)!.pgPort;
    const topology = await pool.ready(20_000);
    assert.equal(topology.source, 'patroni+health');
    assert.equal(topology.primary?.port, portOf(primary));
    assert.equal(topology.primary?.patroni?.leader, true, 'the primary comes from the leader key');
    assert.deepEqual(log.auto(), [`discovery auto: patroni+health — Patroni's keys exist under "service/${lab.scope}/": the primary follows the leader key, replicas come from the health endpoint`]);

    const load = await Workload.start({ pool, writers: 2, readers: 2, intervalMillis: 5, table: 'wl_auto' });
    await sleep(500);
    const t = await lab.switchover();
    await until('the pool follows the new leader', () => pool.topology.primary?.port === portOf(t.to), 30_000);
    await sleep(1_000);
    await load.stop();

    const s = load.summary();
    const acked = load.writes.filter((w) => !w.error);
    const onOldAfterMove = acked.filter((w) => w.port === portOf(t.from) && w.startedAt >= t.leaderKeyMovedAt);
    const firstOnNew = Math.min(...acked.filter((w) => w.port === portOf(t.to)).map((w) => w.endedAt));
    console.log(
      `      switchover ${t.from} -> ${t.to}: leader key +${t.leaderKeyMovedAt - t.startedAt} ms; first write on ${t.to} ${firstOnNew - t.leaderKeyMovedAt} ms after the key moved; ` +
        `longest write gap ${s.longestWriteGapMillis} ms; writes failed ${JSON.stringify(s.writesFailed)}`,
    );
    assert.deepEqual(onOldAfterMove, [], 'no write issued after the key moved landed on the old leader');
    assert.ok(firstOnNew > t.startedAt, 'writes reached the new leader');
    assert.equal(s.readsFailed, 0);
    for (const w of load.writes) if (w.error) assert.equal(w.error.outcome, 'unknown', JSON.stringify(w.error));
    const client = new pg.Client({ host: '127.0.0.1', port: portOf(t.to), user: lab.appUser.user, password: lab.appUser.password, database: lab.appUser.database });
    await client.connect();
    try {
      const rows = await client.query<{ id: string }>('SELECT id FROM wl_auto');
      const present = new Set(rows.rows.map((r) => Number(r.id)));
      assert.deepEqual(load.ackedIds().filter((id) => !present.has(id)), [], 'every acknowledged write is on the new leader');
    } finally {
      await client.end();
    }
    assert.equal(pool.topology.source, 'patroni+health');
    assert.equal(log.auto().length, 1, 'no path change during the switchover');
    await lab.waitForHealthy();
  });
});

describe('discovery auto on the Consul double without Patroni (PgCluster)', function () {
  this.timeout(120_000);
  const fx = useClusterFixture('pgauto');

  it('falls back to consul-health with one info line saying why, and keeps working', async () => {
    const log = recorder();
    const pool = fx.newPool({ logger: log.logger });
    const topology = await pool.ready(10_000);
    assert.equal(topology.source, 'consul-health');
    assert.equal(topology.primary?.port, fx.portOf(fx.cluster.primaryName()));
    const res = await pool.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    assert.equal(res.rows[0]!.r, false);
    await sleep(300);
    assert.deepEqual(log.auto(), ['discovery auto: consul-health — no Patroni leader or member key under "service/pgauto/": the primary and replicas come from the health endpoint']);
    assert.deepEqual(log.lines.filter((l) => l.level === 'warn' || l.level === 'error'), []);
    assert.ok(fx.consul.requestLog.some((r) => r.path === '/v1/kv/service/pgauto/'), 'the KV prefix was read');
  });

  it('switches at run time: keys appear → the leader key decides; keys vanish → back to consul-health', async () => {
    const log = recorder();
    const pool = fx.newPool({ logger: log.logger, patroni: { confirmPromotion: false } });
    await pool.ready(10_000);
    assert.equal(pool.topology.source, 'consul-health');
    const member = (name: string, role: string): string =>
      JSON.stringify({ conn_url: `postgres://127.0.0.1:${fx.portOf(name)}/postgres`, api_url: `http://127.0.0.1:1/patroni`, state: 'running', role, version: '3.0.2', xlog_location: 1, timeline: 1 });
    const primary = fx.cluster.primaryName();
    const replica = fx.cluster.nodes.map((n) => n.name).find((n) => n !== primary)!;
    // The health endpoint keeps saying `primary`; the KV layout names it as leader too.
    fx.consul.kvPut(`service/pgauto/members/${primary}`, member(primary, 'master'));
    fx.consul.kvPut(`service/pgauto/members/${replica}`, member(replica, 'replica'));
    fx.consul.kvPut('service/pgauto/leader', primary);
    const appeared = Date.now();
    await until('auto switches to the KV path', () => pool.topology.source === 'patroni+health');
    console.log(`      keys appeared → KV path in ${Date.now() - appeared} ms`);
    assert.equal(pool.topology.primary?.port, fx.portOf(primary));
    assert.equal(pool.topology.primary?.patroni?.leader, true);
    assert.equal((await pool.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r, false);

    // The leader key goes (Patroni's session expired): no primary on the KV path, though health still lists one.
    fx.consul.kvDelete('service/pgauto/leader');
    await until('no primary without a leader key', () => pool.topology.primary === undefined);
    assert.equal(pool.topology.source, 'patroni+health');

    // Every Patroni key vanishes: back to the health endpoint, which names the primary again.
    for (const name of [primary, replica]) fx.consul.kvDelete(`service/pgauto/members/${name}`);
    await until('auto switches back to consul-health', () => pool.topology.source === 'consul-health');
    assert.equal(pool.topology.primary?.port, fx.portOf(primary));
    assert.deepEqual(
      log.auto().map((m) => m.split(' — ')[0]),
      ['discovery auto: consul-health', 'discovery auto: patroni+health', 'discovery auto: consul-health'],
    );
  });
});
