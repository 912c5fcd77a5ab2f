/**
 * Hot-path microbenchmark: the client-side cost per statement of pg.Pool and of pg-consul,
 * with the network and the server taken out. Both pools get the same in-process fake
 * `Client` (passed through pg's `Client` option) that answers every statement on the next
 * macrotask (`setImmediate`, like a socket read would), so what differs is only the pool
 * code: pg-pool alone vs pg-consul's routing, retry loop and node pools on top of pg-pool.
 * Interleaved rounds; reports ns per statement and the difference.
 *
 * On a real network the difference is added to each statement's round trip: that is what
 * the throughput ratio of `bench/overhead.ts` shows at concurrency 1.
 *
 * `npx tsx bench/hot-path.ts [rounds] [ms per round] [concurrency]`; profile with
 * `node --cpu-prof --import tsx bench/hot-path.ts 3 3000 1 pg-consul`.
 * @module
 */
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { Pool } from '../lib/index.js';
import type { DiscoverySource, DiscoveryListener } from '../lib/index.js';
import { median } from './stats.js';

const ROW = Object.freeze({ '?column?': 1 });

/**
 * A stand-in for pg.Client that never touches the network: connect succeeds at once,
 * every query answers one row on the next macrotask, and `pg_is_in_recovery()` (pg-consul's
 * role check) answers false.
 */
export class FakeClient extends EventEmitter {
  /** Read by pg-pool before reusing a client. */
  _queryable = true;
  /** Read by pg-pool before reusing a client. */
  _ending = false;
  /** Set by pg-pool on checkout. */
  release?: (err?: Error | boolean) => void;

  /** Connects (immediately). */
  connect(cb?: (err?: Error) => void): Promise<void> | void {
    if (cb) {
      setImmediate(cb);
      return;
    }
    return new Promise((resolve) => setImmediate(resolve));
  }

  /** Answers on the next macrotask. */
  query(text: unknown, values?: unknown, cb?: unknown): Promise<unknown> | void {
    const callback = typeof values === 'function' ? values : cb;
    const sql = typeof text === 'string' ? text : (text as { text?: string }).text ?? '';
    const result = sql.includes('pg_is_in_recovery')
      ? { rows: [{ r: false }], rowCount: 1, command: 'SELECT', fields: [] }
      : { rows: [ROW], rowCount: 1, command: 'SELECT', fields: [] };
    if (typeof callback === 'function') {
      setImmediate(() => (callback as (e: Error | null, r: unknown) => void)(null, result));
      return;
    }
    return new Promise((resolve) => setImmediate(() => resolve(result)));
  }

  /** Closes (immediately). */
  end(cb?: () => void): Promise<void> | void {
    this._ending = true;
    if (cb) {
      setImmediate(cb);
      return;
    }
    return Promise.resolve();
  }

  /** No socket to unref. */
  ref(): void {}

  /** No socket to unref. */
  unref(): void {}
}

/** A discovery source that names one primary and one replica once and never changes. */
export function staticDiscovery(): DiscoverySource {
  let stopped = false;
  return {
    requestCount: 0,
    start(listener: DiscoveryListener): void {
      setImmediate(() => {
        if (stopped) return;
        listener.onUpdate({
          source: 'static',
          index: 1,
          nodes: [
            { id: 'fake/p', name: 'p', host: '127.0.0.1', port: 1, address: '127.0.0.1:1', role: 'primary', tags: ['primary'], modifyIndex: 1 },
            { id: 'fake/r', name: 'r', host: '127.0.0.1', port: 2, address: '127.0.0.1:2', role: 'replica', tags: ['replica'], modifyIndex: 1 },
          ],
        });
      });
    },
    refresh(): void {},
    async stop(): Promise<void> {
      stopped = true;
    },
  } as unknown as DiscoverySource;
}

/** One client style under test. */
export interface HotPathClient {
  /** Label. */
  readonly label: string;
  /** Runs one statement. */
  readonly query: () => Promise<unknown>;
}

/** Result per client: median ns per statement over rounds, and per-round values. */
export interface HotPathResult {
  /** Label. */
  readonly label: string;
  /** Median wall ns per statement (per loop). */
  readonly nsPerStatement: number;
  /** Per round. */
  readonly rounds: readonly number[];
  /** Median process CPU ns (user + system) per statement: less sensitive than wall time to other load on the machine. */
  readonly cpuNsPerStatement: number;
}

/**
 * Interleaved rounds of `clients` (order reversed every other round).
 * @param clients what to compare (the first is the baseline)
 * @param rounds rounds
 * @param roundMillis time per client per round
 * @param concurrency loops
 */
export async function measureHotPath(clients: readonly HotPathClient[], rounds: number, roundMillis: number, concurrency: number): Promise<HotPathResult[]> {
  const per = new Map<HotPathClient, number[]>(clients.map((c) => [c, []]));
  const cpu = new Map<HotPathClient, number[]>(clients.map((c) => [c, []]));
  const once = async (c: HotPathClient, ms: number): Promise<number> => {
    let n = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const end = t0 + ms;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < end) {
          await c.query();
          n++;
        }
      }),
    );
    const used = process.cpuUsage(cpu0);
    cpu.get(c)!.push(((used.user + used.system) * 1e3) / Math.max(1, n));
    return ((performance.now() - t0) * 1e6 * concurrency) / Math.max(1, n);
  };
  for (const c of clients) await once(c, Math.min(300, roundMillis));
  for (const c of clients) cpu.get(c)!.length = 0;
  for (let r = 0; r < rounds; r++) {
    for (const c of r % 2 === 0 ? clients : [...clients].reverse()) per.get(c)!.push(await once(c, roundMillis));
  }
  return clients.map((c) => ({
    label: c.label,
    nsPerStatement: Math.round(median(per.get(c)!)),
    rounds: per.get(c)!.map(Math.round),
    cpuNsPerStatement: Math.round(median(cpu.get(c)!)),
  }));
}

/** pg.Pool and pg-consul (primary and replica path) on the fake client. */
export function hotPathClients(max = 10): { clients: HotPathClient[]; end: () => Promise<void> } {
  const Client = FakeClient as unknown as typeof pg.Client;
  const plain = new pg.Pool({ Client, max });
  const consul = new Pool({ Client, max, discovery: staticDiscovery() } as ConstructorParameters<typeof Pool>[0]);
  return {
    clients: [
      { label: 'pg.Pool', query: () => plain.query('SELECT 1') },
      { label: 'pg-consul primary', query: () => consul.query('SELECT 1') },
      { label: 'pg-consul replica', query: () => consul.replica.query('SELECT 1') },
    ],
    end: async () => {
      await plain.end();
      await consul.end();
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''))) {
  const [roundsArg = '7', msArg = '500', concArg = '1', only] = process.argv.slice(2);
  const { clients, end } = hotPathClients();
  const chosen = only ? clients.filter((c) => c.label.startsWith(only)) : clients;
  const results = await measureHotPath(chosen, Number(roundsArg), Number(msArg), Number(concArg));
  const base = results[0]!;
  for (const r of results) {
    console.log(
      `${r.label.padEnd(18)} ${String(r.nsPerStatement).padStart(6)} ns/statement  (+${r.nsPerStatement - base.nsPerStatement} ns vs ${base.label}); ` +
        `CPU ${r.cpuNsPerStatement} ns/statement (+${r.cpuNsPerStatement - base.cpuNsPerStatement} ns)  rounds ${r.rounds.join(' ')}`,
    );
  }
  await end();
}
