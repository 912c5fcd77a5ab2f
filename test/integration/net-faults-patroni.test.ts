/**
 * Real Patroni, one member per network namespace, Consul (double) behind a forwarder on its
 * own lab host: the leader is partitioned from Consul only (pool ↔ leader still works). Its
 * leader key expires, another member takes over, and — under load through pg-consul's
 * Pool — the new leader takes the writes and the old one gets none.
 */
import assert from 'node:assert/strict';
import pg from 'pg';
import { Pool } from '../../lib/index.js';
import { ConsulDouble } from '../../lib/testing/consul-double.js';
import { FaultLoad } from '../../lib/testing/fault-load.js';
import type { FaultOp } from '../../lib/testing/fault-load.js';
import { freePort } from '../../lib/testing/free-port.js';
import { NetLab } from '../../lib/testing/net-lab.js';
import { PatroniLab } from '../../lib/testing/patroni-lab.js';
import { waitUntil } from '../../lib/testing/wait-until.js';
import { bounded, sleep } from '../support/net-fault-fixture.js';
import { OutcomeUnknownError, PgConsulError } from '../../lib/index.js';

describe('network faults: Patroni leader partitioned from Consul', function () {
  this.timeout(180_000);
  let lab: NetLab | undefined;
  let consul: ConsulDouble | undefined;
  let patroni: PatroniLab | undefined;
  let pool: Pool | undefined;
  after(async () => {
    lab?.healAll();
    if (pool !== undefined) await bounded(pool.end(), 10_000);
    await patroni?.stop();
    await consul?.stop();
    await lab?.destroy();
  });

  it("the leader's key expires, the new leader takes the writes, the old one gets none", async () => {
    lab = await NetLab.start({ hosts: ['node1', 'node2', 'node3', 'consul'] });
    consul = await ConsulDouble.start({ host: lab.bridgeAddress, sessionTtlMinSeconds: 1, checkStagger: false });
    const consulPort = await freePort();
    await lab.forward('consul', consulPort, { host: consul.host, port: consul.port });
    patroni = await PatroniLab.start({
      mode: 'patroni',
      consul,
      network: lab.placement(),
      patroniConsulAddress: `${lab.address('consul')}:${consulPort}`,
      synchronousMode: true,
    });
    const p = patroni;
    const server = (name: string): string => {
      const n = p.nodes.find((x) => x.name === name);
      return `${n?.host ?? '?'}:${n?.pgPort ?? 0}`;
    };
    const oldLeader = await p.leader();
    const leaderNode = p.nodes.find((n) => n.name === oldLeader)!;
    // Acknowledged means replicated to the synchronous standby (the lab runs with synchronous_commit off).
    const admin = new pg.Client({ host: leaderNode.host, port: leaderNode.pgPort, user: 'postgres', database: 'postgres' });
    admin.on('error', () => {});
    await admin.connect();
    await admin.query(`ALTER ROLE ${p.appUser.user} SET synchronous_commit = on`);
    await admin.end();

    pool = new Pool({
      service: p.serviceName,
      consul: { host: lab.address('consul'), port: consulPort, waitSeconds: 5 },
      user: p.appUser.user,
      password: p.appUser.password,
      database: p.appUser.database,
      max: 4,
      failoverTimeoutMillis: 30_000,
      discoveryMinIntervalMillis: 20,
    });
    pool.on('error', () => {});
    const po = pool;
    const load = await FaultLoad.start({ write: (t, v) => po.query(t, v), read: (t) => po.replica.query(t), writers: 4, readers: 2 });
    await waitUntil('writes on the leader', 10_000, async () => load.firstAckOn(server(oldLeader), 0) !== undefined);

    lab.isolate(oldLeader, 'consul');
    const newLeader = await p.waitForLeader((n) => n !== oldLeader, 60_000);
    const movedAt = Date.now();
    await waitUntil(`a write acknowledged by the new leader ${newLeader}`, 30_000, async () => load.firstAckOn(server(newLeader), movedAt) !== undefined).catch(() => undefined);
    await sleep(2_000);

    const bound = 30_000;
    const hung = await load.stop(bound);
    const show = (ops: FaultOp[]): string => ops.slice(0, 5).map((o) => `${o.kind} #${o.id} ${o.endedAt === undefined ? 'pending' : String((o.error as Error | undefined)?.name ?? o.server)}`).join('; ');
    assert.equal(hung.length, 0, `hung callers: ${show(hung)}`);
    assert.equal(load.slowerThan(bound).length, 0, `callers slower than ${bound} ms`);
    for (const op of load.failures()) {
      assert.ok(op.error instanceof PgConsulError, `typed error expected, got ${String((op.error as Error).name)}: ${String((op.error as Error).message)}`);
      if (op.kind === 'write') assert.ok(op.error.outcome === 'not-executed' || op.error instanceof OutcomeUnknownError, `failed write: ${op.error.name}`);
    }
    assert.ok(load.firstAckOn(server(newLeader), movedAt) !== undefined, 'the new leader takes writes');
    const stray = load.ops.filter((o) => o.kind === 'write' && o.error === undefined && o.server === server(oldLeader) && o.startedAt >= movedAt);
    assert.equal(stray.length, 0, `writes acknowledged by the old leader after the new one took over: ${show(stray)}`);
    const n = p.nodes.find((x) => x.name === newLeader)!;
    const check = new pg.Client({ host: n.host, port: n.pgPort, user: 'postgres', database: p.appUser.database });
    check.on('error', () => {});
    await check.connect();
    const rows = (await check.query<{ id: string }>(`SELECT id FROM ${load.table}`)).rows;
    await check.end();
    const present = new Set(rows.map((r) => Number(r.id)));
    assert.deepEqual(load.ackedIds().filter((id) => !present.has(id)), [], 'acknowledged writes missing on the new leader');
  });
});
