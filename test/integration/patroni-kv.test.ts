/**
 * Patroni-aware discovery against a real Patroni 3.0.2 cluster (PatroniLab on the Consul
 * double): the `patroni` and `patroni+health` modes next to the `consul-health` mode (the
 * default `auto` mode: test/integration/discovery-auto.test.ts), on the same lab run, each pool under its own write + read Workload.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Pool } from '../../lib/index.js';
import type { PoolOptions } from '../../lib/index.js';
import type { DiscoveryMode } from '../../lib/options.js';
import { PatroniLab } from '../../lib/testing/patroni-lab.js';
import { Workload } from '../../lib/testing/workload.js';
import { DEFAULT_MIN_INTERVAL_MILLIS } from '../../lib/discovery/request-pacing.js';

/**
 * How long after the test's own watch saw the leader key go a Pool may still start a write
 * on the old leader: its blocking query may have just returned for another key's change, and
 * two requests of one Pool never start closer than the pacing interval (100 ms); plus 50 ms
 * for the double to answer and the Pool to apply the snapshot. Writes started later than
 * this must never land on the orphan.
 */
const KEY_PROPAGATION_MS = DEFAULT_MIN_INTERVAL_MILLIS + 50;

const MODES = ['patroni', 'patroni+health', 'consul-health'] as const satisfies readonly DiscoveryMode[];
type Mode = (typeof MODES)[number];
/** Modes whose primary is the leader key: no write may land on a node after it lost the key. */
const KEY_MODES: readonly Mode[] = ['patroni', 'patroni+health'];

interface LeaderChange {
  readonly at: number;
  readonly leader: string | undefined;
}

/**
 * The test's own view of the leader key: a blocking watch on `service/<scope>/leader`, as
 * fast as the pools' (same double, same process), recording every change with its time.
 */
class LeaderWatch {
  readonly changes: LeaderChange[] = [];
  readonly #controller = new AbortController();
  readonly #done: Promise<void>;

  constructor(url: string, key: string) {
    this.#done = this.#run(url, key);
  }

  /** When the key stopped naming `name` (deleted or moved), at or after `since`. */
  releasedAt(name: string, since: number): number {
    const change = this.changes.find((c) => c.at >= since && c.leader !== name);
    assert.ok(change, `the leader key stopped naming ${name}`);
    return change.at;
  }

  /** When the key first named someone other than `name`, at or after `since`. */
  movedAt(name: string, since: number): LeaderChange {
    const change = this.changes.find((c) => c.at >= since && c.leader !== undefined && c.leader !== name);
    assert.ok(change, `the leader key moved away from ${name}`);
    return change;
  }

  async stop(): Promise<void> {
    this.#controller.abort();
    await this.#done;
  }

  async #run(url: string, key: string): Promise<void> {
    let index = 0;
    let last: string | undefined | null = null;
    while (!this.#controller.signal.aborted) {
      try {
        const res = await get(`${url}/v1/kv/${key}?index=${index}&wait=5s`, this.#controller.signal);
        const next = Number(res.headers['x-consul-index']);
        index = next >= index ? next : 0;
        const leader = res.status === 200 ? Buffer.from((JSON.parse(res.body) as { Value: string }[])[0]?.Value ?? '', 'base64').toString() : undefined;
        if (leader !== last) {
          this.changes.push({ at: Date.now(), leader });
          last = leader;
        }
      } catch {
        if (!this.#controller.signal.aborted) await sleep(50);
      }
    }
  }
}

function get(url: string, signal: AbortSignal): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

interface Run {
  readonly mode: Mode;
  readonly pool: Pool;
  readonly load: Workload;
}

describe('Patroni-aware discovery (integration: real Patroni + Consul double)', function () {
  this.timeout(300_000);
  let lab: PatroniLab;
  let watch: LeaderWatch;
  const pools: Pool[] = [];

  const portOf = (name: string): number => lab.nodes.find((n) => n.name === name)!.pgPort;

  function newPool(mode: Mode, extra: PoolOptions = {}): Pool {
    const pool = new Pool({
      service: lab.serviceName,
      discovery: mode,
      consul: { host: lab.consul.host, port: lab.consul.port, waitSeconds: 30 },
      user: lab.appUser.user,
      password: lab.appUser.password,
      database: lab.appUser.database,
      max: 6,
      failoverTimeoutMillis: 30_000,
      discoveryMinIntervalMillis: 20,
      ...extra,
    });
    pools.push(pool);
    return pool;
  }

  async function endAll(): Promise<void> {
    await Promise.all(pools.splice(0).map((p) => (p.ending ? Promise.resolve() : p.end())));
  }

  async function untilPrimary(pool: Pool, port: number, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (pool.topology.primary?.port !== port) {
      assert.ok(Date.now() < deadline, `pool reached primary ${port} (has ${pool.topology.primary?.port})`);
      await sleep(20);
    }
  }

  async function rowsOn(name: string, table: string): Promise<Map<number, number>> {
    const client = new pg.Client({ host: '127.0.0.1', port: portOf(name), user: lab.appUser.user, password: lab.appUser.password, database: lab.appUser.database });
    await client.connect();
    try {
      const res = await client.query<{ id: string; at: number }>(`SELECT id, extract(epoch FROM at) * 1000 AS at FROM ${table}`);
      return new Map(res.rows.map((r) => [Number(r.id), Number(r.at)]));
    } finally {
      await client.end();
    }
  }

  async function inRecovery(name: string): Promise<boolean> {
    const client = new pg.Client({ host: '127.0.0.1', port: portOf(name), user: lab.appUser.user, password: lab.appUser.password, database: lab.appUser.database });
    await client.connect();
    try {
      return (await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r;
    } finally {
      await client.end();
    }
  }

  async function startRuns(): Promise<Run[]> {
    const runs: Run[] = [];
    for (const mode of MODES) {
      const pool = newPool(mode);
      await pool.ready();
      const table = `wl_${mode.replace(/[^a-z]/g, '_')}`;
      runs.push({ mode, pool, load: await Workload.start({ pool, writers: 2, readers: 2, intervalMillis: 5, table }) });
    }
    return runs;
  }

  /** The first acknowledged write on `port` at or after `t`, and the longest gap between acks around it. */
  function gapAfter(load: Workload, port: number, t: number): { firstAck: number; longestGap: number } {
    const firstAck = Math.min(...load.writes.filter((w) => !w.error && w.port === port && w.endedAt >= t).map((w) => w.endedAt));
    return { firstAck: firstAck - t, longestGap: load.summary().longestWriteGapMillis };
  }

  function commonAssertions(run: Run): void {
    const all = run.load.summary();
    assert.equal(all.readsFailed, 0, `[${run.mode}] reads see 0 errors: ${JSON.stringify(run.load.reads.find((r) => r.error)?.error)}`);
    for (const w of run.load.writes) {
      if (w.error) assert.equal(w.error.outcome, 'unknown', `[${run.mode}] a failed write is typed unknown: ${JSON.stringify(w.error)}`);
    }
    assert.ok(all.writesOk > 50, `[${run.mode}] writes flowed (${all.writesOk})`);
  }

  /** Writes issued after `since` whose acknowledgement says they ran on `port`. */
  function ackedOn(run: Run, port: number, since: number): number[] {
    return run.load.writes.filter((w) => !w.error && w.port === port && w.startedAt >= since).map((w) => w.id);
  }

  before(async function () {
    lab = await PatroniLab.start();
    console.log(`      lab mode: ${lab.mode}`);
    watch = new LeaderWatch(lab.consul.url, `service/${lab.scope}/leader`);
  });

  afterEach(endAll);

  after(async () => {
    await endAll();
    await watch?.stop();
    await lab?.stop();
  });

  it('bootstrap: every mode finds the leader and the replicas; Patroni mode nodes carry WAL position and timeline', async () => {
    const { primary, replicas } = await lab.waitForHealthy();
    const replicaPorts = replicas.map(portOf).sort();
    for (const mode of MODES) {
      const pool = newPool(mode);
      const t0 = Date.now();
      const topology = await pool.ready(20_000);
      const readyMs = Date.now() - t0;
      assert.equal(topology.primary?.port, portOf(primary), `[${mode}] primary`);
      assert.equal(topology.source, mode);
      assert.deepEqual(topology.replicas.map((r) => r.port).sort(), replicaPorts, `[${mode}] replicas`);
      const w = await pool.query<{ port: number; r: boolean }>('SELECT inet_server_port() AS port, pg_is_in_recovery() AS r');
      assert.deepEqual(w.rows[0], { port: portOf(primary), r: false });
      const r = await pool.replica.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
      assert.equal(r.rows[0]!.r, true);
      if (mode !== 'consul-health') {
        const leader = topology.primary!;
        assert.equal(leader.patroni?.leader, true);
        assert.equal(leader.patroni?.member, primary);
        assert.ok(leader.patroni?.role === 'master' || leader.patroni?.role === 'primary', `leader role ${leader.patroni?.role}`);
        assert.equal(leader.patroni?.state, 'running');
        assert.ok((leader.patroni?.timeline ?? 0) >= 1, 'leader timeline');
        for (const node of topology.replicas) {
          assert.equal(node.patroni === undefined, mode === 'patroni+health', `[${mode}] replicas come from ${mode === 'patroni' ? 'KV' : 'health'}`);
        }
        if (mode === 'patroni') {
          for (const node of topology.replicas) {
            assert.equal(node.patroni?.role, 'replica');
            assert.equal(typeof node.patroni?.xlogLocation, 'number', 'replica xlog_location');
          }
        }
      }
      console.log(`      [${mode}] ready in ${readyMs} ms, ${pool.discoveryRequestCount} Consul requests`);
    }
  });

  it('switchover under write + read load: writes follow the leader key; key modes never write to the old leader after it moved', async () => {
    const runs = await startRuns();
    await sleep(700);
    const t = await lab.switchover();
    const released = watch.releasedAt(t.from, t.startedAt);
    const moved = watch.movedAt(t.from, t.startedAt);
    assert.equal(moved.leader, t.to);
    for (const run of runs) await untilPrimary(run.pool, portOf(t.to));
    await sleep(1500);
    await Promise.all(runs.map((r) => r.load.stop()));

    const rows = new Map<Mode, Map<number, number>>();
    for (const run of runs) rows.set(run.mode, await rowsOn(t.to, run.load.table));
    console.log(
      `      switchover ${t.from} -> ${t.to}: key released +${released - t.startedAt} ms, named ${t.to} +${moved.at - t.startedAt} ms, ` +
        `sole passing primary in health +${t.registeredAt - t.startedAt} ms`,
    );
    for (const run of runs) {
      const { firstAck, longestGap } = gapAfter(run.load, portOf(t.to), moved.at);
      const s = run.load.summary();
      console.log(
        `      [${run.mode}] first write on the new leader ${firstAck} ms after the key named it; longest write gap ${longestGap} ms; ` +
          `writes ok ${s.writesOk}, failed ${JSON.stringify(s.writesFailed)}; reads ok ${s.readsOk}; ${run.pool.discoveryRequestCount} Consul requests`,
      );
      commonAssertions(run);
      const present = rows.get(run.mode)!;
      const lost = run.load.ackedIds().filter((id) => !present.has(id));
      assert.deepEqual(lost, [], `[${run.mode}] every acknowledged write is on the new leader`);
      if (KEY_MODES.includes(run.mode)) {
        assert.deepEqual(ackedOn(run, portOf(t.from), released), [], `[${run.mode}] 0 writes on the old leader after the key left it`);
        assert.ok(firstAck < 1000, `[${run.mode}] writes resumed within 1 s of the key move (${firstAck} ms)`);
      }
    }
    await lab.waitForHealthy();
  });

  it("kill -9 of the leader's Patroni (split brain: its PostgreSQL stays writable): key modes stop writing to it when the key goes", async () => {
    const { primary: old } = await lab.waitForHealthy();
    const runs = await startRuns();
    await sleep(700);
    const killedAt = Date.now();
    await lab.killPatroni(old);
    const next = await lab.waitForLeader((n) => n !== old, 60_000);
    const released = watch.releasedAt(old, killedAt);
    const moved = watch.movedAt(old, killedAt);
    for (const run of runs) await untilPrimary(run.pool, portOf(next));
    await sleep(1500);
    await Promise.all(runs.map((r) => r.load.stop()));
    // The orphan is still a writable primary: read what landed on it before Patroni is back.
    const orphanWritable = await inRecovery(old).then((r) => !r);
    const onOld = new Map<Mode, Map<number, number>>();
    for (const run of runs) onOld.set(run.mode, await rowsOn(old, run.load.table));
    console.log(
      `      kill -9 patroni on ${old}: key released +${released - killedAt} ms, named ${next} +${moved.at - killedAt} ms; orphan still writable: ${orphanWritable}`,
    );
    for (const run of runs) {
      const { firstAck, longestGap } = gapAfter(run.load, portOf(next), moved.at);
      const s = run.load.summary();
      const lastOnOld = Math.max(...run.load.writes.filter((w) => !w.error && w.port === portOf(old)).map((w) => w.endedAt));
      const startOf = (id: number): number => run.load.writes.find((w) => w.id === id)?.startedAt ?? 0;
      const orphanIds = [...onOld.get(run.mode)!.keys()];
      const latestStart = orphanIds.length === 0 ? undefined : Math.max(...orphanIds.map(startOf)) - released;
      const byStart = orphanIds.filter((id) => startOf(id) >= released + KEY_PROPAGATION_MS);
      console.log(
        `      [${run.mode}] last write on the orphan ${lastOnOld - killedAt} ms after the kill (${lastOnOld - released} ms vs key release); ` +
          `first write on the new leader ${firstAck} ms after the key named it; longest write gap ${longestGap} ms; ` +
          `writes ok ${s.writesOk}, failed ${JSON.stringify(s.writesFailed)}; reads ok ${s.readsOk}; latest write landing on the orphan started ${latestStart ?? '-'} ms vs key release`,
      );
      commonAssertions(run);
      if (KEY_MODES.includes(run.mode)) {
        assert.deepEqual(byStart, [], `[${run.mode}] 0 writes issued ${KEY_PROPAGATION_MS} ms after the key release are on the orphan`);
        assert.deepEqual(ackedOn(run, portOf(old), released + KEY_PROPAGATION_MS), [], `[${run.mode}] 0 acknowledged writes on the orphan issued ${KEY_PROPAGATION_MS} ms after the key release`);
        assert.ok(firstAck < 1000, `[${run.mode}] writes resumed within 1 s of the key move (${firstAck} ms)`);
      }
    }
    await lab.restartPatroni(old);
    await lab.waitForHealthy(120_000);
  });
});
