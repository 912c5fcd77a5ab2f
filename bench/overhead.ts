/**
 * Overhead benchmark: plain `pg.Pool` against pg-consul on the same real PostgreSQL, for the
 * primary path (`pool.query` vs a pg.Pool on the primary) and the replica path
 * (`pool.replica.query` vs a pg.Pool on the replica), with `SELECT 1` and a ~1 KB row, at
 * several concurrency levels. Every case runs twice: `alternating` rounds (A B, B A, A B, …)
 * and `simultaneous` rounds (A and B at the same time on one event loop, so bursts of load
 * from elsewhere hit both alike); the ratio is the median of per-round throughput ratios, so
 * slow drifts of a shared machine cancel out. A/A cases (pg.Pool against a second, identical
 * pg.Pool, at concurrency 1 and the pool size) show the noise floor of each pairing.
 * @module
 */
import pg from 'pg';
import { Pool } from '../lib/index.js';
import { ConsulDouble } from '../lib/testing/consul-double.js';
import { PgCluster } from '../lib/testing/pg-cluster.js';
import type { BenchConfig } from './config.js';
import { pinCpus } from './cpu-pinning.js';
import { concat, drive, median, percentile, round } from './stats.js';
import type { DriveResult } from './stats.js';

/** A statement the overhead benchmark runs. */
export interface OverheadStatement {
  /** Short id used in results. */
  readonly id: string;
  /** SQL text. */
  readonly text: string;
}

/** The statements compared. */
export const OVERHEAD_STATEMENTS: readonly OverheadStatement[] = [
  { id: 'select1', text: 'SELECT 1' },
  { id: 'row1k', text: "SELECT repeat('x', 1000) AS v" },
];

/** Throughput and latency of one client over all rounds of a case. */
export interface OverheadClientStats {
  /** Client label (`pg.Pool`, `pg-consul`, `pg.Pool #2`). */
  readonly client: string;
  /** Median of the per-round throughputs, statements/s. */
  readonly opsPerSec: number;
  /** Per-round throughputs, statements/s, in round order. */
  readonly opsPerSecRounds: readonly number[];
  /** Median latency over every statement of every round, ms. */
  readonly p50Ms: number;
  /** 99th percentile latency, ms. */
  readonly p99Ms: number;
  /** Statements that succeeded. */
  readonly ops: number;
  /** Statements that failed (should be 0). */
  readonly errors: number;
  /** Median over rounds of the process's CPU time per statement, µs (less sensitive to other load than throughput). */
  readonly cpuMicrosPerOp: number;
}

/** One comparison: a statement, a concurrency and a path. */
export interface OverheadCase {
  /** Statement id (see {@link OVERHEAD_STATEMENTS}). */
  readonly statement: string;
  /** Concurrent loops. */
  readonly concurrency: number;
  /** `primary` (`pool.query`), `replica` (`pool.replica.query`) or `calibration` (pg.Pool vs pg.Pool). */
  readonly path: 'primary' | 'replica' | 'calibration';
  /**
   * How A and B shared the machine: `alternating` — one after the other within a round (A B,
   * then B A); `simultaneous` — both at once on the same event loop for the whole round, so
   * whatever else loads the machine hits both alike (the B/A ratio of a round then compares
   * their costs under the very same conditions). CPU time per statement is not measured
   * per client in that case (one process).
   */
  readonly pairing: 'alternating' | 'simultaneous';
  /** The plain pg.Pool (A). */
  readonly baseline: OverheadClientStats;
  /** pg-consul (B), or the second pg.Pool for calibration. */
  readonly candidate: OverheadClientStats;
  /** Median of per-round B/A throughput ratios (target ≥ 0.99). */
  readonly ratio: number;
  /** The per-round ratios. */
  readonly ratioRounds: readonly number[];
}

/** Everything the overhead benchmark measured. */
export interface OverheadResult {
  /** Rounds per case. */
  readonly rounds: number;
  /** Time budget per client per round, ms. */
  readonly roundMillis: number;
  /** Pool size of every client (`max`). */
  readonly poolMax: number;
  /** `SHOW server_version`. */
  readonly serverVersion: string;
  /** How PostgreSQL and the benchmark shared the CPUs (see bench/cpu-pinning.ts). */
  readonly cpuPinning?: string;
  /** The comparisons. */
  readonly cases: readonly OverheadCase[];
}

interface Client {
  readonly label: string;
  readonly query: (text: string) => Promise<unknown>;
}

const SERVICE = 'bench';

/**
 * Runs the overhead benchmark on its own PgCluster (primary + 1 replica) and ConsulDouble.
 *
 * @param config sizes (see {@link BenchConfig})
 * @param log progress lines
 */
export async function runOverhead(config: BenchConfig, log: (line: string) => void = () => {}): Promise<OverheadResult> {
  const o = config.overhead;
  const poolMax = Math.max(...o.concurrencies);
  const [cluster, consul] = await Promise.all([PgCluster.start({ replicas: 1 }), ConsulDouble.start()]);
  const pools: { end(): Promise<void> }[] = [];
  // Quick and full runs pin PostgreSQL and this process to different CPUs (smoke runs in CI
  // leave the machine alone).
  const pinning = config.mode === 'smoke' ? { description: 'not pinned (smoke run)', restore: () => {} } : pinCpus(cluster.nodes.map((n) => n.dataDir));
  log(`overhead: ${pinning.description}`);
  try {
    const primary = cluster.node(cluster.primaryName());
    const replica = cluster.nodes.find((n) => n.name !== primary.name)!;
    for (const n of [primary, replica]) {
      consul.registerService({
        id: `${SERVICE}/${n.name}`,
        name: SERVICE,
        address: n.host,
        port: n.port,
        tags: n === primary ? ['master', 'primary'] : ['replica'],
        node: n.name,
        nodeAddress: '127.0.0.1',
      });
    }
    const { user, password, database } = cluster.appUser;
    const pgOptions = { user, password, database, max: poolMax, idleTimeoutMillis: 60_000 };
    const plain = (port: number): pg.Pool => {
      const p = new pg.Pool({ ...pgOptions, host: '127.0.0.1', port });
      p.on('error', () => {});
      pools.push(p);
      return p;
    };
    const plainPrimary = plain(primary.port);
    const plainPrimary2 = plain(primary.port);
    const plainReplica = plain(replica.port);
    const consulPool = new Pool({ ...pgOptions, service: SERVICE, consul: { host: '127.0.0.1', port: consul.port } });
    consulPool.on('error', () => {});
    pools.push(consulPool);
    await consulPool.ready(10_000);
    const serverVersion = String((await plainPrimary.query('SHOW server_version')).rows[0]?.server_version ?? '?');

    const clients = {
      pgPrimary: { label: 'pg.Pool', query: (t: string) => plainPrimary.query(t) } satisfies Client,
      pgPrimary2: { label: 'pg.Pool #2', query: (t: string) => plainPrimary2.query(t) } satisfies Client,
      pgReplica: { label: 'pg.Pool', query: (t: string) => plainReplica.query(t) } satisfies Client,
      consulPrimary: { label: 'pg-consul', query: (t: string) => consulPool.query(t) } satisfies Client,
      consulReplica: { label: 'pg-consul', query: (t: string) => consulPool.replica.query(t) } satisfies Client,
    };
    // Sanity: every client reaches the node it should.
    const portOf = async (c: Client): Promise<number> => Number(((await c.query('SELECT inet_server_port() AS p')) as pg.QueryResult).rows[0]?.p);
    if ((await portOf(clients.consulPrimary)) !== primary.port) throw new Error('pg-consul primary path does not reach the primary');
    if ((await portOf(clients.consulReplica)) !== replica.port) throw new Error('pg-consul replica path does not reach the replica');

    // Open every connection once, so no round pays for connection setup (SCRAM).
    for (const c of Object.values(clients)) await drive(() => c.query('SELECT 1'), poolMax, Math.max(50, o.warmupMillis), 20 * poolMax);

    const cases: OverheadCase[] = [];
    const record = (result: Omit<OverheadCase, 'path'>, path: OverheadCase['path'], a: Client, b: Client): void => {
      cases.push({ ...result, path });
      log(`overhead ${result.pairing} ${result.statement} c=${result.concurrency} ${path}: ${a.label} ${result.baseline.opsPerSec.toFixed(0)}/s, ${b.label} ${result.candidate.opsPerSec.toFixed(0)}/s, ratio ${result.ratio.toFixed(3)}`);
    };
    const plan: { path: OverheadCase['path']; a: Client; b: Client }[] = [
      { path: 'primary', a: clients.pgPrimary, b: clients.consulPrimary },
      { path: 'replica', a: clients.pgReplica, b: clients.consulReplica },
    ];
    for (const st of OVERHEAD_STATEMENTS) {
      for (const c of o.concurrencies) {
        for (const { path, a, b } of plan) {
          for (const pairing of ['alternating', 'simultaneous'] as const) record(await compare(a, b, st, c, o, pairing), path, a, b);
        }
      }
    }
    if (config.mode !== 'smoke') {
      const st = OVERHEAD_STATEMENTS[0]!;
      for (const c of [1, poolMax]) {
        for (const pairing of ['alternating', 'simultaneous'] as const) {
          record(await compare(clients.pgPrimary, clients.pgPrimary2, st, c, o, pairing), 'calibration', clients.pgPrimary, clients.pgPrimary2);
        }
      }
    }
    return { rounds: o.rounds, roundMillis: o.roundMillis, poolMax, serverVersion, cpuPinning: pinning.description, cases };
  } finally {
    pinning.restore();
    await Promise.all(pools.map((p) => p.end().catch(() => {})));
    await consul.stop();
    await cluster.destroy();
  }
}

async function compare(
  a: Client,
  b: Client,
  st: OverheadStatement,
  concurrency: number,
  o: BenchConfig['overhead'],
  pairing: OverheadCase['pairing'],
): Promise<Omit<OverheadCase, 'path'>> {
  const runs = new Map<Client, { tput: number[]; cpu: number[]; lat: Float64Array[]; ops: number; errors: number }>([
    [a, { tput: [], cpu: [], lat: [], ops: 0, errors: 0 }],
    [b, { tput: [], cpu: [], lat: [], ops: 0, errors: 0 }],
  ]);
  // A short warm-up of each at this concurrency and statement (JIT, buffers).
  for (const c of [a, b]) await drive(() => c.query(st.text), concurrency, o.warmupMillis, o.maxOpsPerRound);
  const ratios: number[] = [];
  for (let r = 0; r < o.rounds; r++) {
    const order = r % 2 === 0 ? [a, b] : [b, a];
    const tput = new Map<Client, number>();
    const results =
      pairing === 'simultaneous'
        ? await Promise.all(order.map((c) => drive(() => c.query(st.text), concurrency, o.roundMillis, o.maxOpsPerRound)))
        : await order.reduce<Promise<DriveResult[]>>(
            async (done, c) => [...(await done), await drive(() => c.query(st.text), concurrency, o.roundMillis, o.maxOpsPerRound)],
            Promise.resolve([]),
          );
    for (const [k, c] of order.entries()) {
      const res = results[k]!;
      const acc = runs.get(c)!;
      acc.tput.push(res.opsPerSec);
      acc.cpu.push(res.cpuMicrosPerOp);
      acc.lat.push(res.latencies);
      acc.ops += res.ops;
      acc.errors += res.errors;
      tput.set(c, res.opsPerSec);
    }
    ratios.push(tput.get(b)! / tput.get(a)!);
  }
  const stats = (c: Client): OverheadClientStats => {
    const acc = runs.get(c)!;
    const all = concat(acc.lat);
    return {
      client: c.label,
      opsPerSec: round(median(acc.tput), 1),
      opsPerSecRounds: acc.tput.map((x) => round(x, 1)),
      p50Ms: round(percentile(all, 50), 4),
      p99Ms: round(percentile(all, 99), 4),
      ops: acc.ops,
      errors: acc.errors,
      cpuMicrosPerOp: pairing === 'simultaneous' ? Number.NaN : round(median(acc.cpu), 3),
    };
  };
  return {
    statement: st.id,
    concurrency,
    pairing,
    baseline: stats(a),
    candidate: stats(b),
    ratio: round(median(ratios), 4),
    ratioRounds: ratios.map((x) => round(x, 4)),
  };
}
