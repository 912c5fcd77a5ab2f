/**
 * What read routing costs per statement, measured against a real 3-node PostgreSQL cluster
 * on loopback (PgCluster) behind the Consul double: read-your-writes reads when the session
 * is clean, when a replica is known to have its write, and when no replica has it (with and
 * without the lag monitor); the extra round trip of a session write; the classifier of
 * `autoReadRouting`. Sequential statements (concurrency 1), cases interleaved over several
 * rounds; each case also reports the statements actually sent per operation (counted on
 * pg.Client), which is the round-trip count.
 *
 *   npx tsx bench/ryw-cost.ts                    # 2000 ops per case per round, 3 rounds
 *   RYW_BENCH_OPS=500 RYW_BENCH_ROUNDS=2 npx tsx bench/ryw-cost.ts
 *
 * Prints a table and, last, one JSON line with every number.
 * @module
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Pool, isReadOnlyStatement } from '../lib/index.js';
import { isCertainlyReadOnly } from '../lib/routing/read-paths.js';
import type { PoolOptions, Session } from '../lib/index.js';
import { ConsulDouble } from '../lib/testing/consul-double.js';
import { PgCluster } from '../lib/testing/pg-cluster.js';
import { median, percentile, round } from './stats.js';

const OPS = Number(process.env['RYW_BENCH_OPS'] ?? 2000);
const ROUNDS = Number(process.env['RYW_BENCH_ROUNDS'] ?? 3);
const SERVICE = 'pglab';

/** Counts statements sent by every pg.Client (node pools included). */
let statements = 0;
const originalQuery = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  statements++;
  return (originalQuery as (...a: unknown[]) => unknown).apply(this, args);
} as typeof pg.Client.prototype.query;

interface Case {
  readonly name: string;
  readonly op: () => Promise<unknown>;
  readonly latencies: number[];
  statements: number;
  ops: number;
}

async function runCase(c: Case, n: number): Promise<void> {
  const before = statements;
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await c.op();
    c.latencies.push(performance.now() - s);
  }
  c.statements += statements - before;
  c.ops += n;
}

async function main(): Promise<void> {
  const [cluster, consul] = await Promise.all([PgCluster.start({ replicas: 2 }), ConsulDouble.start()]);
  const pools: Pool[] = [];
  try {
    const primary = cluster.primaryName();
    const replicas = cluster.nodes.map((n) => n.name).filter((n) => n !== primary);
    for (const n of cluster.nodes) {
      consul.registerService({
        id: `${SERVICE}/${n.name}`,
        name: SERVICE,
        address: '127.0.0.1',
        port: n.port,
        tags: n.name === primary ? ['master', 'primary'] : ['replica'],
        node: n.name,
        nodeAddress: '127.0.0.1',
      });
    }
    const newPool = (extra: PoolOptions = {}): Pool => {
      const p = new Pool({
        service: SERVICE,
        consul: { host: '127.0.0.1', port: consul.port, waitSeconds: 30 },
        user: cluster.appUser.user,
        password: cluster.appUser.password,
        database: cluster.appUser.database,
        max: 4,
        ...extra,
      });
      pools.push(p);
      return p;
    };
    const plain = newPool();
    const monitored = newPool({ maxReplicaLag: { bytes: 1e12 }, lagCheckIntervalMillis: 100 });
    const auto = newPool({ autoReadRouting: true });
    await plain.query('CREATE TABLE ryw (id bigserial PRIMARY KEY, v int NOT NULL)');
    for (const r of replicas) await cluster.waitForReplay(r);
    while (monitored.topology.readReplicas.length < 2) await sleep(20);

    const caughtUpPlain = plain.session();
    const caughtUpMonitored = monitored.session();
    await caughtUpPlain.query('INSERT INTO ryw(v) VALUES (1)');
    await caughtUpMonitored.query('INSERT INTO ryw(v) VALUES (1)');
    for (const r of replicas) await cluster.waitForReplay(r);
    await sleep(300); // monitor rounds see the replay
    for (let i = 0; i < 20; i++) await caughtUpPlain.replica.query('SELECT 1'); // both replicas become known

    const read = (s: { query: (t: string) => Promise<unknown> }) => () => s.query('SELECT 1');
    const clean: Session = plain.session();
    const readCases: Case[] = [
      { name: 'pool.replica.query (baseline)', op: read(plain.replica), latencies: [], statements: 0, ops: 0 },
      { name: 'session, clean', op: read(clean.replica), latencies: [], statements: 0, ops: 0 },
      { name: 'session, pending, replica known caught up (no monitor)', op: read(caughtUpPlain.replica), latencies: [], statements: 0, ops: 0 },
      { name: 'session, pending, replica caught up (lag monitor)', op: read(caughtUpMonitored.replica), latencies: [], statements: 0, ops: 0 },
    ];
    const writes = plain.session();
    const writeCases: Case[] = [
      { name: 'pool.query INSERT (baseline)', op: () => plain.query('INSERT INTO ryw(v) VALUES (2)'), latencies: [], statements: 0, ops: 0 },
      { name: 'session.query INSERT (records position)', op: () => writes.query('INSERT INTO ryw(v) VALUES (3)'), latencies: [], statements: 0, ops: 0 },
      { name: 'pool.query INSERT, autoReadRouting on', op: () => auto.query('INSERT INTO ryw(v) VALUES (4)'), latencies: [], statements: 0, ops: 0 },
      { name: 'pool.replica.query SELECT 1 (baseline)', op: () => auto.replica.query('SELECT 1'), latencies: [], statements: 0, ops: 0 },
      { name: 'pool.query SELECT 1, autoReadRouting on (→ replica)', op: () => auto.query('SELECT 1'), latencies: [], statements: 0, ops: 0 },
    ];
    const interleave = async (cases: Case[]): Promise<void> => {
      for (const c of cases) await runCase(c, Math.min(200, OPS)); // warm-up
      for (const c of cases) {
        c.latencies.length = 0;
        c.statements = 0;
        c.ops = 0;
      }
      for (let r = 0; r < ROUNDS; r++) {
        const order = r % 2 === 0 ? cases : [...cases].reverse();
        for (const c of order) await runCase(c, OPS);
      }
    };
    await interleave(readCases);
    await interleave(writeCases);

    // No replica has the session's write: replay paused everywhere.
    for (const r of replicas) await cluster.query(r, 'SELECT pg_wal_replay_pause()');
    const behindPlain = plain.session();
    const behindMonitored = monitored.session();
    await behindPlain.query('INSERT INTO ryw(v) VALUES (5)');
    await behindMonitored.query('INSERT INTO ryw(v) VALUES (5)');
    const behindCases: Case[] = [
      { name: 'pool.primary.query SELECT 1 (baseline)', op: () => plain.primary.query('SELECT 1'), latencies: [], statements: 0, ops: 0 },
      { name: 'session, pending, no replica has it (no monitor: check + primary)', op: read(behindPlain.replica), latencies: [], statements: 0, ops: 0 },
      { name: 'session, pending, no replica has it (lag monitor: primary)', op: read(behindMonitored.replica), latencies: [], statements: 0, ops: 0 },
    ];
    await interleave(behindCases);
    for (const r of replicas) await cluster.query(r, 'SELECT pg_wal_replay_resume()');

    // The classifier alone.
    const texts = [
      'SELECT o.id, o.total, c.email FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.status = $1 AND o.created_at > now() - interval \'1 day\' ORDER BY o.id DESC LIMIT 50',
      'INSERT INTO orders(customer_id, total, status) VALUES ($1, $2, $3) RETURNING id',
      'SELECT 1',
    ];
    const timeCalls = (fn: (t: string) => boolean, t: string): number => {
      const n = 200_000;
      let hits = 0;
      for (let i = 0; i < 20_000; i++) if (fn(t)) hits++;
      const s = performance.now();
      for (let i = 0; i < n; i++) if (fn(t)) hits++;
      return hits >= 0 ? round(((performance.now() - s) * 1e6) / n, 0) : NaN;
    };
    const classifier = texts.map((t) => ({
      text: t.length > 40 ? `${t.slice(0, 37)}...` : t,
      chars: t.length,
      readOnly: isReadOnlyStatement(t),
      nsPerScan: timeCalls(isReadOnlyStatement, t),
      nsPerCachedLookup: timeCalls(isCertainlyReadOnly, t),
    }));

    const summary = (c: Case) => ({
      case: c.name,
      ops: c.ops,
      medianMs: round(median(c.latencies), 4),
      p99Ms: round(percentile(Float64Array.from(c.latencies), 99), 4),
      statementsPerOp: round(c.statements / c.ops, 3),
    });
    const results = {
      opsPerCasePerRound: OPS,
      rounds: ROUNDS,
      reads: readCases.map(summary),
      writes: writeCases.map(summary),
      noReplicaHasTheWrite: behindCases.map(summary),
      classifier,
    };
    for (const [title, rows] of [
      ['reads (replicas caught up)', results.reads],
      ['writes and auto routing', results.writes],
      ['reads when no replica has the write', results.noReplicaHasTheWrite],
    ] as const) {
      console.log(`\n${title}`);
      console.table(rows);
    }
    console.log('\nclassifier');
    console.table(classifier);
    console.log(JSON.stringify(results));
  } finally {
    await Promise.all(pools.map((p) => p.end()));
    await consul.stop();
    await cluster.destroy();
  }
}

await main();
