/**
 * `discovery: 'prepared-query'` against real PostgreSQL 15 (a primary and two streaming
 * replicas) and the Consul double's prepared queries (created with the npm `consul` client).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import Consul from 'consul';
import { NoPrimaryError, Pool } from '../../lib/index.js';
import type { DiscoveryErrorEvent, PoolOptions } from '../../lib/index.js';
import { ConsulDouble } from '../../lib/testing/consul-double.js';
import { PgCluster } from '../../lib/testing/pg-cluster.js';
import { Workload } from '../../lib/testing/workload.js';
import { advertise as advertiseCluster } from '../support/advertise.js';

const SERVICE = 'pglab';
const QUERY = 'pglab-pq';

describe('prepared-query discovery (integration: real PostgreSQL + Consul double)', function () {
  this.timeout(120_000);
  let cluster: PgCluster;
  let consul: ConsulDouble;
  let client: Consul;
  const pools: Pool[] = [];

  const advertise = (primary: string, exclude: readonly string[] = []): void => advertiseCluster(consul, cluster, SERVICE, primary, exclude);


  const portOf = (name: string): number => cluster.node(name).port;

  function newPool(extra: PoolOptions = {}): Pool {
    const pool = new Pool({
      service: SERVICE,
      discovery: 'prepared-query',
      preparedQuery: { name: QUERY, intervalMillis: 500 },
      consul: { host: '127.0.0.1', port: consul.port },
      user: cluster.appUser.user,
      password: cluster.appUser.password,
      database: cluster.appUser.database,
      max: 8,
      discoveryMinIntervalMillis: 20,
      ...extra,
    });
    pools.push(pool);
    return pool;
  }

  before(async () => {
    [cluster, consul] = await Promise.all([PgCluster.start({ replicas: 2 }), ConsulDouble.start()]);
    advertise(cluster.primaryName());
    // No ACL token here: the npm client's query.create moves a `token` option into the body
    // (as the query's own token) instead of sending it as X-Consul-Token.
    client = new Consul({ host: '127.0.0.1', port: consul.port });
    await client.query.create({ name: QUERY, service: { service: SERVICE, onlypassing: true } });
  });

  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => (p.ending ? Promise.resolve() : p.end())));
  });

  after(async () => {
    client?.destroy();
    await consul?.stop();
    await cluster?.destroy();
  });

  it('routes by the tags of the nodes the query returns, re-executing it on the interval', async () => {
    const pool = newPool();
    const topology = await pool.ready(10_000);
    assert.equal(topology.source, 'prepared-query');
    assert.equal(topology.primary?.port, portOf(cluster.primaryName()));
    assert.equal(topology.replicas.length, 2);
    const w = await pool.query<{ port: number; r: boolean }>('SELECT inet_server_port() AS port, pg_is_in_recovery() AS r');
    assert.deepEqual(w.rows[0], { port: portOf(cluster.primaryName()), r: false });
    const r = await pool.replica.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    assert.equal(r.rows[0]!.r, true);
    const before = consul.requestCount(`/v1/query/${QUERY}/execute`);
    await sleep(2_100);
    const executions = consul.requestCount(`/v1/query/${QUERY}/execute`) - before;
    assert.ok(executions >= 3 && executions <= 6, `about one execution per 500 ms (${executions} in 2.1 s)`);
    // A replica whose check fails drops out at the next execution (Consul filters server-side).
    const replica = cluster.nodes.find((n) => n.name !== cluster.primaryName())!;
    consul.setCheckStatus(`${SERVICE}/${replica.name}`, 'critical');
    try {
      const t0 = Date.now();
      while (pool.topology.replicas.length !== 1) {
        assert.ok(Date.now() - t0 < 2_000, 'the failing replica left the topology within an interval');
        await sleep(20);
      }
      console.log(`      failing replica dropped after ${Date.now() - t0} ms (interval 500 ms)`);
    } finally {
      consul.setCheckStatus(`${SERVICE}/${replica.name}`, 'passing');
    }
  });

  it('reports a missing query as a discovery error and names no primary', async () => {
    const pool = newPool({ preparedQuery: { name: 'no-such-query' } });
    const errors: DiscoveryErrorEvent[] = [];
    pool.on('discoveryError', (e) => errors.push(e));
    await assert.rejects(pool.ready(1_500), NoPrimaryError);
    assert.ok(errors.length >= 1);
    assert.match(errors[0]!.error.message, /404/);
  });

  it('follows a failover under write + read load (switchover, then the double re-registers the nodes)', async () => {
    const pool = newPool();
    await pool.ready();
    const load = await Workload.start({ pool, writers: 4, readers: 4, intervalMillis: 5 });
    try {
      await sleep(700);
      const oldPrimary = cluster.primaryName();
      const newPrimary = cluster.nodes.find((n) => n.name !== oldPrimary)!.name;
      const tStart = Date.now();
      await cluster.switchover(newPrimary);
      const tUpdate = Date.now();
      advertise(newPrimary, [oldPrimary]);
      await sleep(1_500);
      await load.stop();
      const after = load.summary(tUpdate);
      const all = load.summary();
      const firstAck = Math.min(...load.writes.filter((w) => !w.error && w.endedAt >= tUpdate).map((w) => w.endedAt));
      console.log(
        `      switchover took ${tUpdate - tStart} ms; first write ${firstAck - tUpdate} ms after the Consul update; ` +
          `longest write gap ${all.longestWriteGapMillis} ms; writes ok ${all.writesOk}, failed ${JSON.stringify(all.writesFailed)}; ` +
          `reads ok ${all.readsOk}, failed ${all.readsFailed}; ${pool.discoveryRequestCount} executions`,
      );
      assert.equal(all.readsFailed, 0, `reads see 0 errors: ${JSON.stringify(load.reads.find((x) => x.error)?.error)}`);
      for (const w of load.writes) if (w.error) assert.equal(w.error.outcome, 'unknown', JSON.stringify(w.error));
      assert.deepEqual(after.writesFailed, {}, 'writes issued after the update see no errors');
      assert.ok(after.writesOk > 20, `writes flowed after the update (${after.writesOk})`);
      assert.equal(after.writesByPort[String(portOf(newPrimary))], after.writesOk, 'all later writes on the new primary');
      const rows = await cluster.query(newPrimary, `SELECT id FROM ${load.table}`, [], { database: cluster.appUser.database });
      const present = new Set(rows.map((row) => Number(row['id'])));
      assert.deepEqual(load.ackedIds().filter((id) => !present.has(id)), [], 'every acknowledged write is on the new primary');
      assert.ok(firstAck - tUpdate < 1_500, `writes resumed within an interval or so of the update (${firstAck - tUpdate} ms)`);
      await cluster.rejoinAsReplica(oldPrimary);
      advertise(newPrimary);
    } finally {
      await load.stop();
    }
  });
});
