/**
 * The longer Consul fuzz run (`npm run bench -- --only=consul-fuzz`): six Pools, each on its
 * own port of a seeded mutating proxy (lib/testing/consul-chaos-proxy.ts) in front of the
 * Consul double, a real PostgreSQL cluster behind the good answers, two query loops per Pool.
 * Four phases, each measured per Pool from what reached the proxy:
 * - `fuzz`: the whole mix of faults and good answers;
 * - `errors`: nothing but errors — requests/s after the first 5 s is the backoff's bound
 *   (goal ≤ 1/s per Pool);
 * - `churn`: valid answers at once with an index that moves every time — the rate limit's
 *   bound (goal ≤ 10/s per Pool);
 * - `hang`: Consul accepts and never answers.
 * Prints requests/s per Pool, the most requests in any one second, settled / rejected
 * queries and the heap after GC; ends every Pool and checks nothing is left open.
 * @module
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { Pool } from '../lib/index.js';
import { ConsulChaosProxy, maxInWindow } from '../lib/testing/consul-chaos-proxy.js';
import type { ChaosMode } from '../lib/testing/consul-chaos-proxy.js';
import { ConsulDouble } from '../lib/testing/consul-double.js';
import { PgCluster } from '../lib/testing/pg-cluster.js';
import { advertise } from '../test/support/advertise.js';

/** Sizes of one run. */
export interface ConsulFuzzConfig {
  /** Pools in the default discovery mode (`consul-health`), each running two query loops. */
  readonly pools: number;
  /**
   * Add one `patroni+health` Pool (two Consul loops — KV and health — sharing one budget).
   * It runs no queries (the double holds no Patroni keys, so it never has a primary): it is
   * there to show that the rate bound holds per Pool, not per loop. Listed last.
   */
  readonly patroniHealthPool?: boolean;
  /** PRNG seed of the proxy. */
  readonly seed: number;
  /** Length of each phase, ms. */
  readonly phases: Readonly<Record<'fuzz' | 'errors' | 'churn' | 'hang', number>>;
}

/** One phase, per Pool. */
export interface ConsulFuzzPhase {
  /** Phase name (= proxy mode, `errors` → `error`). */
  readonly phase: string;
  /** Phase length, ms. */
  readonly millis: number;
  /** Per Pool: discovery mode, requests, requests/s over the phase, requests/s after its first 5 s, most in any 1 s window. */
  readonly perPool: ReadonlyArray<{ discovery: string; requests: number; perSecond: number; perSecondAfter5s: number | null; max1s: number }>;
  /** Queries that succeeded / were rejected during the phase (all Pools). */
  readonly settled: number;
  /** Rejected queries. */
  readonly rejected: number;
  /** Longest time a query took to settle, ms. */
  readonly longestQueryMillis: number;
  /** Heap used after GC at the end of the phase, MB (null without a usable GC). */
  readonly heapMb: number | null;
}

/** The whole run. */
export interface ConsulFuzzResult {
  /** The config used. */
  readonly config: ConsulFuzzConfig;
  /** The phases in order. */
  readonly phases: readonly ConsulFuzzPhase[];
  /** How long ending all Pools took, ms. */
  readonly endMillis: number;
  /** Consul connections still open at the proxy 100 ms after end(). */
  readonly openConnectionsAfterEnd: number;
}

function heapAfterGc(): number | null {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as (() => void) | undefined;
    if (typeof gc !== 'function') return null;
    gc();
    return Math.round((process.memoryUsage().heapUsed / 1024 / 1024) * 10) / 10;
  } catch {
    return null;
  }
}

const round = (x: number): number => Math.round(x * 100) / 100;

/**
 * Runs the phases and returns the numbers.
 *
 * @param config sizes
 * @param log progress lines
 * @returns the result
 */
export async function runConsulFuzz(config: ConsulFuzzConfig, log: (line: string) => void = () => {}): Promise<ConsulFuzzResult> {
  const service = 'pgfuzz';
  const [cluster, consul] = await Promise.all([PgCluster.start({ replicas: 2 }), ConsulDouble.start()]);
  advertise(consul, cluster, service, cluster.primaryName());
  const proxy = new ConsulChaosProxy({ upstreamPort: consul.port, seed: config.seed, mode: 'fuzz' });
  const pools: Pool[] = [];
  try {
    const ports: number[] = [];
    const modes: Array<'consul-health' | 'patroni+health'> = Array.from({ length: config.pools }, () => 'consul-health' as const);
    if (config.patroniHealthPool === true) modes.push('patroni+health');
    for (const discovery of modes) {
      const port = await proxy.listen();
      ports.push(port);
      const pool = new Pool({
        service,
        discovery,
        consul: { host: '127.0.0.1', port, waitSeconds: 5, requestTimeoutMillis: 2_000 },
        user: cluster.appUser.user,
        password: cluster.appUser.password,
        database: cluster.appUser.database,
        max: 4,
        failoverTimeoutMillis: 2_000,
        connectionTimeoutMillis: 2_000,
      });
      pool.on('error', () => undefined);
      pools.push(pool);
    }
    const phases: ConsulFuzzPhase[] = [];
    for (const name of ['fuzz', 'errors', 'churn', 'hang'] as const) {
      const millis = config.phases[name];
      if (millis <= 0) continue;
      const mode: ChaosMode = name === 'errors' ? 'error' : name;
      if (name === 'churn') advertise(consul, cluster, service, cluster.primaryName()); // a valid topology under the churn
      proxy.mode = mode;
      const started = Date.now();
      const before = ports.map((p) => proxy.stats(p).arrivals.length);
      let settled = 0;
      let rejected = 0;
      let longest = 0;
      const until = started + millis;
      const loop = async (pool: Pool): Promise<void> => {
        while (Date.now() < until) {
          const t = Date.now();
          try {
            await pool.query('SELECT 1');
            settled += 1;
          } catch {
            rejected += 1;
            await new Promise((r) => setTimeout(r, 20));
          }
          longest = Math.max(longest, Date.now() - t);
        }
      };
      await Promise.all(pools.flatMap((pool, i) => (modes[i] === 'consul-health' ? [loop(pool), loop(pool)] : [new Promise((r) => setTimeout(r, millis))])));
      const ended = Date.now();
      const perPool = ports.map((p, i) => {
        const arrivals = proxy.stats(p).arrivals.slice(before[i] ?? 0);
        const after5 = arrivals.filter((t) => t >= started + 5_000);
        const span = (ended - started) / 1000;
        return {
          discovery: modes[i] ?? '?',
          requests: arrivals.length,
          perSecond: round(arrivals.length / span),
          perSecondAfter5s: span > 6 ? round(after5.length / (span - 5)) : null,
          max1s: maxInWindow(arrivals, 1_000),
        };
      });
      const phase: ConsulFuzzPhase = { phase: name, millis: ended - started, perPool, settled, rejected, longestQueryMillis: longest, heapMb: heapAfterGc() };
      phases.push(phase);
      log(
        `consul-fuzz ${name}: req/s per Pool ${perPool.map((p) => p.perSecond).join(' ')}; after 5 s ${perPool.map((p) => p.perSecondAfter5s ?? '-').join(' ')}; max in 1 s ${perPool.map((p) => p.max1s).join(' ')}; queries ${settled} ok / ${rejected} rejected, longest ${longest} ms; heap ${phase.heapMb ?? '?'} MB`,
      );
    }
    const endStarted = Date.now();
    await Promise.all(pools.splice(0).map((p) => p.end()));
    const endMillis = Date.now() - endStarted;
    await new Promise((r) => setTimeout(r, 100));
    const openConnectionsAfterEnd = proxy.openConnections;
    log(`consul-fuzz: end() of ${modes.length} Pools took ${endMillis} ms; Consul connections left open: ${openConnectionsAfterEnd}`);
    return { config, phases, endMillis, openConnectionsAfterEnd };
  } finally {
    await Promise.all(pools.map((p) => p.end()));
    await proxy.close();
    await consul.stop();
    await cluster.destroy();
  }
}

if (process.argv[1] !== undefined && import.meta.url === `file://${process.argv[1]}`) {
  const seconds = Number(process.env['PGCONSUL_FUZZ_SECONDS'] ?? 28);
  runConsulFuzz(
    { pools: 6, patroniHealthPool: true, seed: Number(process.env['PGCONSUL_FUZZ_SEED'] ?? 15), phases: { fuzz: seconds * 1000, errors: 20_000, churn: 10_000, hang: 5_000 } },
    (line) => console.log(line),
  ).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
