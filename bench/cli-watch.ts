/**
 * How long after Consul's change `pg-consul watch` prints it. A real PostgreSQL primary + 2
 * replicas (PgCluster), the Consul double advertising them like Patroni does, and the CLI
 * spawned as a process (`watch`, text output). Each sample: the bench changes the
 * registration in the double (its index bumps synchronously) and takes the time; the sample
 * ends when the change line arrives on the CLI's stdout. Changes: a replica leaving and
 * returning (`PGCONSUL_WATCH_ROUNDS` pairs, default 10) and planned switchovers
 * (`PGCONSUL_WATCH_SWITCHOVERS`, default 3; Consul is changed once PostgreSQL switched, as
 * Patroni's re-registration does). Also reported: the CLI's own timestamp on the line minus
 * the change (what the pool saw), so the pipe's share shows.
 *
 * `tsx bench/cli-watch.ts` — prints a JSON summary (min / median / max in ms). Goal of issue
 * 13: ≤ 100 ms. Never asserted in tests.
 * @module
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ConsulDouble } from '../lib/testing/consul-double.js';
import { PgCluster } from '../lib/testing/pg-cluster.js';
import { advertise } from '../test/support/advertise.js';
import { median, round } from './stats.js';

const SERVICE = 'pgwatch';
const ENTRY = fileURLToPath(new URL('../lib/cli/index.ts', import.meta.url));
const TSX = fileURLToPath(new URL('../node_modules/tsx/dist/cli.mjs', import.meta.url));
const rounds = Number(process.env['PGCONSUL_WATCH_ROUNDS'] ?? 10);
const switchovers = Number(process.env['PGCONSUL_WATCH_SWITCHOVERS'] ?? 3);

interface Sample {
  readonly kind: 'replica-leaves' | 'replica-returns' | 'switchover';
  /** Change → line received by this process (ms). */
  readonly receivedMillis: number;
  /** Change → the CLI's own timestamp on the line (ms). */
  readonly stampedMillis: number;
}

const summary = (values: readonly number[]): { min: number; median: number; max: number } => ({
  min: round(Math.min(...values), 1),
  median: round(median(values), 1),
  max: round(Math.max(...values), 1),
});

const [cluster, consul] = await Promise.all([PgCluster.start({ replicas: 2 }), ConsulDouble.start()]);
advertise(consul, cluster, SERVICE, cluster.primaryName());
const child = spawn(process.execPath, [TSX, ENTRY, 'watch'], {
  env: {
    PATH: process.env['PATH'],
    HOME: process.env['HOME'],
    CONSUL_HTTP_ADDR: consul.address,
    PGCONSUL_SERVICE: SERVICE,
    PGUSER: cluster.appUser.user,
    PGPASSWORD: cluster.appUser.password,
    PGDATABASE: cluster.appUser.database,
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
let buffered = '';
let waiter: { readonly pattern: RegExp; readonly resolve: (line: { at: number; stamp: number }) => void } | undefined;
child.stdout.on('data', (chunk: Buffer) => {
  const at = performance.timeOrigin + performance.now();
  buffered += chunk.toString();
  const lines = buffered.split('\n');
  buffered = lines.pop() ?? '';
  for (const line of lines) {
    if (waiter !== undefined && waiter.pattern.test(line)) {
      const w = waiter;
      waiter = undefined;
      w.resolve({ at, stamp: Date.parse(line.slice(0, 24)) });
    }
  }
});
const nextLine = (pattern: RegExp, what: string): Promise<{ at: number; stamp: number }> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within 30 s`)), 30_000);
    waiter = {
      pattern,
      resolve: (line) => {
        clearTimeout(timer);
        resolve(line);
      },
    };
  });
const samples: Sample[] = [];
const measure = async (kind: Sample['kind'], pattern: RegExp, change: () => void): Promise<void> => {
  const line = nextLine(pattern, kind);
  const changedAt = performance.timeOrigin + performance.now();
  change();
  const { at, stamp } = await line;
  samples.push({ kind, receivedMillis: at - changedAt, stampedMillis: stamp - changedAt });
  // Let the status table that follows every change line be rendered (role probes).
  await new Promise((r) => setTimeout(r, 300));
};
const addr = (name: string): string => `127.0.0.1:${cluster.node(name).port}`;
try {
  await nextLine(/\| writes/, 'first table');
  // PGCONSUL_WATCH_SETTLE_MS: wait this long after the first table before the first change.
  await new Promise((r) => setTimeout(r, Number(process.env['PGCONSUL_WATCH_SETTLE_MS'] ?? 0)));
  for (let i = 0; i < rounds; i++) {
    const primary = cluster.primaryName();
    const replica = cluster.nodes.find((n) => n.name !== primary)!.name;
    const others = cluster.nodes.filter((n) => n.name !== primary && n.name !== replica).map((n) => addr(n.name));
    await measure('replica-leaves', new RegExp(`topology v\\d+: primary ${addr(primary)}, replicas ${others.join(',')}$`), () =>
      advertise(consul, cluster, SERVICE, primary, [replica]));
    await measure('replica-returns', /topology v\d+: primary [\d.:]+, replicas [\d.:]+,[\d.:]+$/, () => advertise(consul, cluster, SERVICE, primary));
  }
  for (let i = 0; i < switchovers; i++) {
    const from = cluster.primaryName();
    const to = cluster.nodes.find((n) => n.name !== from)!.name;
    await cluster.switchover(to, { rejoinOld: true });
    await measure('switchover', new RegExp(`primary ${addr(from)} -> ${addr(to)}`), () => advertise(consul, cluster, SERVICE, to));
  }
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('close', r));
  await Promise.all([cluster.destroy(), consul.stop()]);
}
const kinds = ['replica-leaves', 'replica-returns', 'switchover'] as const;
const result = {
  goalMillis: 100,
  samples: samples.map((s) => `${s.kind} ${round(s.receivedMillis, 1)}/${round(s.stampedMillis, 1)}`),
  all: { n: samples.length, received: summary(samples.map((s) => s.receivedMillis)), stamped: summary(samples.map((s) => s.stampedMillis)) },
  ...Object.fromEntries(kinds.map((k) => {
    const of = samples.filter((s) => s.kind === k);
    return [k, { n: of.length, received: summary(of.map((s) => s.receivedMillis)), stamped: summary(of.map((s) => s.stampedMillis)) }];
  })),
};
console.log(JSON.stringify(result, null, 2));
