/**
 * Fuzz: several Pools behind a mutating proxy in front of the Consul double (real PostgreSQL
 * behind the good answers). The proxy answers truncated and non-JSON bodies, wrong types,
 * 20 MiB bodies, index missing / negative / backwards / stale, 403 / 429 / 500, slow drips,
 * resets and hangs (seeded; the seed is printed). Asserts: no crash or unhandled rejection
 * (test/support/setup.ts), every query settles within its bound, each Pool's request rate
 * stays within the documented bound (docs/consul-requests.md), heap roughly flat, nothing
 * left open after end(). The longer run is bench/consul-fuzz.ts.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Pool } from '../../lib/index.js';
import { DISCOVERY_REQUEST_CHANNEL } from '../../lib/discovery/request-budget.js';
import type { DiscoveryRequestMessage } from '../../lib/discovery/request-budget.js';
import { ConsulChaosProxy, maxInWindow } from '../../lib/testing/consul-chaos-proxy.js';
import type { ChaosFault } from '../../lib/testing/consul-chaos-proxy.js';
import { useClusterFixture } from '../support/cluster-fixture.js';

const SEED = Number(process.env['PGCONSUL_FUZZ_SEED'] ?? 15);
const POOLS = 4;
const FUZZ_MILLIS = 6_000;
const ERROR_MILLIS = 4_000;
const FAILOVER_TIMEOUT = 1_500;
/** A query waits at most failoverTimeoutMillis for a primary, then connects (≤ connectionTimeoutMillis) and runs. */
const QUERY_BOUND = FAILOVER_TIMEOUT + 2_000 + 1_000;
const MIN_INTERVAL = 100;

function gcIfPossible(): void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (() => void) | undefined;
  gc?.();
}

interface Worker {
  settled: number;
  rejected: number;
  longest: number;
  codes: Map<string, number>;
}

async function work(pool: Pool, until: number, w: Worker): Promise<void> {
  while (Date.now() < until) {
    const started = Date.now();
    try {
      await pool.query('SELECT 1');
      w.settled += 1;
    } catch (err) {
      w.rejected += 1;
      const code = String((err as { code?: unknown }).code ?? 'none');
      w.codes.set(code, (w.codes.get(code) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 20));
    }
    w.longest = Math.max(w.longest, Date.now() - started);
  }
}

describe('Consul fuzz (seeded mutating proxy, several Pools, real PostgreSQL)', function () {
  this.timeout(120_000);
  const fx = useClusterFixture('pgfuzz');

  it(`no crash, every query settles in time, ≤ 10 requests/s per Pool, heap flat, nothing left after end() (seed ${SEED})`, async () => {
    const proxy = new ConsulChaosProxy({ upstreamPort: fx.consul.port, seed: SEED, mode: 'fuzz', dripMillis: 100 });
    // The Pools' own view: start times per request budget (one per Pool).
    const starts = new Map<number, number[]>();
    const onRequest = (m: unknown): void => {
      const msg = m as DiscoveryRequestMessage;
      starts.set(msg.budgetId, [...(starts.get(msg.budgetId) ?? []), msg.startedAt]);
    };
    diagnostics.subscribe(DISCOVERY_REQUEST_CHANNEL, onRequest);
    try {
      gcIfPossible();
      const heapBefore = process.memoryUsage().heapUsed;
      const ports: number[] = [];
      const pools: Pool[] = [];
      for (let i = 0; i < POOLS; i++) {
        const port = await proxy.listen();
        ports.push(port);
        const pool = fx.newPool({
          consul: { host: '127.0.0.1', port, waitSeconds: 2, requestTimeoutMillis: 1_000, connectTimeoutMillis: 500 },
          discoveryMinIntervalMillis: MIN_INTERVAL,
          failoverTimeoutMillis: FAILOVER_TIMEOUT,
          connectionTimeoutMillis: 2_000,
        });
        pool.on('error', () => undefined);
        pools.push(pool);
      }
      const workers: Worker[] = pools.map(() => ({ settled: 0, rejected: 0, longest: 0, codes: new Map() }));
      const fuzzEnd = Date.now() + FUZZ_MILLIS;
      await Promise.all(pools.flatMap((pool, i) => [work(pool, fuzzEnd, workers[i] as Worker), work(pool, fuzzEnd, workers[i] as Worker)]));

      // Then Consul only fails: the backoff must thin the requests out.
      proxy.mode = 'error';
      const errorStart = Date.now();
      const errorArrivalsBefore = ports.map((p) => proxy.stats(p).arrivals.length);
      await Promise.all(pools.map((pool, i) => work(pool, errorStart + ERROR_MILLIS, workers[i] as Worker)));
      const errorRequests = ports.map((p, i) => proxy.stats(p).arrivals.length - (errorArrivalsBefore[i] ?? 0));

      const endStarted = Date.now();
      await fx.endPools();
      const endMillis = Date.now() - endStarted;
      await new Promise((r) => setTimeout(r, 50)); // the proxy's side of the closes
      const open = proxy.openConnections;

      const faults = new Map<ChaosFault, number>();
      for (const port of ports) for (const [f, n] of proxy.stats(port).faults) faults.set(f, (faults.get(f) ?? 0) + n);
      const minGap = (a: readonly number[]): number => Math.min(...a.slice(1).map((t, i) => t - (a[i] ?? 0)));
      const rates = ports.map((p) => {
        const a = proxy.stats(p).arrivals;
        return { requests: a.length, max1s: maxInWindow(a, 1_000), minGapOnArrival: minGap(a) };
      });
      const clientGaps = [...starts.values()].map((s) => minGap([...s].sort((x, y) => x - y)));
      console.log(`      seed ${SEED}; faults ${JSON.stringify(Object.fromEntries(faults))}`);
      console.log(`      per Pool: ${JSON.stringify(rates)}; shortest start-to-start per Pool ${JSON.stringify(clientGaps)} ms; requests in ${ERROR_MILLIS} ms of errors ${JSON.stringify(errorRequests)}`);
      console.log(`      queries ${JSON.stringify(workers.map((w) => ({ ok: w.settled, rejected: w.rejected, longest: w.longest, codes: Object.fromEntries(w.codes) })))}; end() ${endMillis} ms`);

      assert.ok([...faults.keys()].length >= 12, 'the proxy served most fault kinds');
      for (const [i, w] of workers.entries()) {
        assert.ok(w.settled > 0, `pool ${i} ran queries on the good answers`);
        assert.ok(w.longest <= QUERY_BOUND, `pool ${i}: longest query ${w.longest} ms > ${QUERY_BOUND}`);
      }
      assert.equal(starts.size, POOLS, 'every Pool reported its requests');
      for (const gap of clientGaps) assert.ok(gap >= MIN_INTERVAL, `two requests of one Pool started ${gap} ms apart`);
      for (const [i, r] of rates.entries()) {
        // The rate limit is start-to-start on the Pool's clock; arrival times at the proxy
        // (same event loop, busy with 20 MiB bodies) jitter, hence the slack of one.
        assert.ok(r.max1s <= 11, `pool ${i}: ${r.max1s} requests within one second`);
        // The default discovery ('auto') runs two loops (Patroni's keys and the health
        // endpoint), each backing off with full jitter from 100 ms: about 7 requests each in
        // the first 4 s of errors, then at most one per 10 s each (bench/consul-fuzz.ts).
        assert.ok((errorRequests[i] ?? 0) <= 24, `pool ${i}: ${errorRequests[i]} requests in ${ERROR_MILLIS} ms of errors (the rate limit alone would allow 40)`);
      }
      assert.ok(endMillis < 1_000, `end() took ${endMillis} ms`);
      assert.equal(open, 0, 'no Consul connection left after end()');
      gcIfPossible();
      const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
      console.log(`      heap growth ${(heapGrowth / 1024 / 1024).toFixed(1)} MiB`);
      assert.ok(heapGrowth < 48 * 1024 * 1024, `heap grew by ${heapGrowth} bytes`);
    } finally {
      diagnostics.unsubscribe(DISCOVERY_REQUEST_CHANNEL, onRequest);
      await proxy.close();
    }
  });
});
