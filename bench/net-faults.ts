/**
 * `npx tsx bench/net-faults.ts` (or `npm run bench -- --only=net-faults`): hosts that vanish
 * without a packet (NetLab black holes), four clients side by side in one run on the same
 * nodes — pg-consul, a plain pg.Pool, postgres.js (multi-host, target_session_attrs) and a
 * pg.Pool behind HAProxy (seed checks `inter 3s fall 3 rise 2`, `on-marked-down
 * shutdown-sessions`, against a Patroni-like REST stand-in inside each node's namespace).
 *
 * Scenarios:
 * - `primary-black-hole`: node1 (primary) is black-holed; 1 s later node2 is promoted and
 *   Consul names it. Measured per client: time from the cut to the last caller (in flight at
 *   the cut or issued after it) settled, time from Consul's move to the first write on node2,
 *   errors, callers still hung after a bounded wait (15 s after the cut).
 * - `replica-black-hole`: node3 (a replica) is black-holed; same measures for reads.
 *
 * Prints a table and writes `bench/results/net-faults-<timestamp>.json` + `net-faults-latest.json`.
 * @module
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import postgres from 'postgres';
import { Pool } from '../lib/index.js';
import { ConsulDouble } from '../lib/testing/consul-double.js';
import { FaultLoad } from '../lib/testing/fault-load.js';
import type { FaultLoadQuery } from '../lib/testing/fault-load.js';
import { freePort, freePorts } from '../lib/testing/free-port.js';
import { NetLab } from '../lib/testing/net-lab.js';
import { PgCluster } from '../lib/testing/pg-cluster.js';
import { advertise as playPatroni } from '../test/support/advertise.js';
import { Haproxy } from './haproxy.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const SERVICE = 'pglab';
/** How long after the cut a caller may take before it counts as hung. */
const HUNG_BOUND_MILLIS = 15_000;
const MAX = 4;

/** The scenarios. */
export type NetFaultScenario = 'primary-black-hole' | 'replica-black-hole';

/** One client's numbers in one scenario. */
export interface NetFaultClientResult {
  /** Client name. */
  readonly client: string;
  /** How it was set up. */
  readonly description: string;
  /** Cut → the last caller in flight at the cut or issued within the bound settled, ms (null: some still hung). */
  readonly cutToLastSettledMillis: number | null;
  /**
   * The longest any caller was stuck after the cut: max over the callers pending at the cut or
   * issued after it of (settled − max(issued, cut)), ms (null: some still hung at the bound).
   */
  readonly longestStuckMillis: number | null;
  /** Consul's move → first write acknowledged by the new primary, ms (null: none; primary scenario only). */
  readonly moveToFirstWriteMillis: number | null;
  /** Cut → first write acknowledged by the new primary, ms. */
  readonly cutToFirstWriteMillis: number | null;
  /** Failed operations by error name (writes and reads). */
  readonly errors: Readonly<Record<string, number>>;
  /** Failed reads. */
  readonly readErrors: number;
  /** Callers still pending at cut + 15 s. */
  readonly hung: number;
  /** Writes acknowledged / reads answered during the run. */
  readonly writesOk: number;
  /** Reads answered. */
  readonly readsOk: number;
}

/** One scenario's results. */
export interface NetFaultScenarioResult {
  /** Which. */
  readonly scenario: NetFaultScenario;
  /** Per client. */
  readonly clients: readonly NetFaultClientResult[];
}

/** The whole run. */
export interface NetFaultsResults {
  /** When it started (ISO). */
  readonly startedAt: string;
  /** Hung bound, ms. */
  readonly hungBoundMillis: number;
  /** Per scenario. */
  readonly scenarios: readonly NetFaultScenarioResult[];
}

interface Client {
  readonly name: string;
  readonly description: string;
  readonly write: FaultLoadQuery;
  readonly read: FaultLoadQuery;
  end(): Promise<void>;
}

async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/**
 * Ends plain pg.Pools within a bound, then destroys the sockets of whatever they still hold:
 * a pg.Pool has no keepalive or connect bound, so a client hung on a black-holed node (whose
 * namespace is then removed) would keep this process alive for ever. pg-pool's `_clients` is
 * its list of clients; the bench reaches into it only to let the process exit.
 */
async function endPlainPools(pools: readonly pg.Pool[]): Promise<void> {
  await within(Promise.all(pools.map((p) => p.end())), 3_000);
  for (const p of pools) {
    for (const c of (p as unknown as { _clients: Array<{ connection?: { stream?: { destroy(): void } } }> })._clients) c.connection?.stream?.destroy();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Env {
  lab: NetLab;
  cluster: PgCluster;
  consul: ConsulDouble;
  consulPort: number;
  haproxy: Haproxy | undefined;
  advertise(primary: string, exclude?: readonly string[]): void;
  stop(): Promise<void>;
}

async function startEnv(log: (line: string) => void): Promise<Env> {
  const lab = await NetLab.start({ hosts: ['node1', 'node2', 'node3', 'consul'] });
  const cluster = await PgCluster.start({ replicas: 2, network: lab.placement() });
  const consul = await ConsulDouble.start({ host: lab.bridgeAddress });
  const consulPort = await freePort();
  await lab.forward('consul', consulPort, { host: consul.host, port: consul.port });
  await cluster.query('node1', "ALTER SYSTEM SET synchronous_standby_names = 'node2'");
  await cluster.query('node1', 'SELECT pg_reload_conf()');
  await cluster.query('node1', `ALTER ROLE ${cluster.appUser.user} SET synchronous_commit = on`);
  const apiPorts = await freePorts(3);
  const agent = join(HERE, 'net-rest-agent.ts');
  for (const [i, n] of cluster.nodes.entries()) {
    await lab.serve(n.name, process.execPath, ['--import', 'tsx', agent, n.host, String(apiPorts[i]), n.host, String(n.port)]);
  }
  const haproxy = Haproxy.available()
    ? await Haproxy.start(cluster.nodes.map((n, i) => ({ name: n.name, pgPort: n.port, apiPort: apiPorts[i] ?? 0, host: n.host })))
    : undefined;
  if (haproxy === undefined) log('net-faults: HAProxy not installed, skipping it');
  else {
    // HAProxy starts with every server up: wait until its checks took the replicas out of
    // `primary` and the primary out of `replicas` (fall 3 × inter 3 s), bounded.
    const down = ['primary/node2 ', 'primary/node3 ', 'replicas/node1_r '];
    const deadline = Date.now() + 30_000;
    while (!down.every((d) => haproxy.events.some((e) => e.line.includes(d) && e.line.includes('DOWN'))) && Date.now() < deadline) await sleep(100);
    log(`net-faults: HAProxy checks settled: ${haproxy.events.filter((e) => e.line.includes('DOWN')).map((e) => e.line.replace(/^.*Server /, '').slice(0, 60)).join(' | ')}`);
  }
  const advertise = (primary: string, exclude: readonly string[] = []): void => playPatroni(consul, cluster, SERVICE, primary, exclude);
  advertise('node1');
  return {
    lab,
    cluster,
    consul,
    consulPort,
    haproxy,
    advertise,
    async stop() {
      lab.healAll();
      await haproxy?.stop();
      await consul.stop();
      await cluster.destroy();
      await lab.destroy();
    },
  };
}

function clients(env: Env): Client[] {
  const { user, password, database } = env.cluster.appUser;
  const node = (name: string): { host: string; port: number } => env.cluster.node(name);
  const out: Client[] = [];
  const pool = new Pool({ service: SERVICE, consul: { host: env.lab.address('consul'), port: env.consulPort, waitSeconds: 5 }, user, password, database, max: MAX, failoverTimeoutMillis: 10_000, discoveryMinIntervalMillis: 20 });
  pool.on('error', () => {});
  out.push({ name: 'pg-consul', description: `pg-consul Pool (max ${MAX}, defaults, failoverTimeoutMillis 10000)`, write: (t, v) => pool.query(t, v), read: (t) => pool.replica.query(t), end: () => pool.end() });
  const plainW = new pg.Pool({ ...node('node1'), user, password, database, max: MAX });
  const plainR = new pg.Pool({ ...node('node3'), user, password, database, max: MAX });
  for (const p of [plainW, plainR]) p.on('error', () => {});
  out.push({ name: 'pg.Pool', description: `plain pg.Pool (max ${MAX}, pg defaults) on node1, reads on node3`, write: (t, v) => plainW.query(t, v), read: (t) => plainR.query(t), end: () => endPlainPools([plainW, plainR]) });
  const hosts = env.cluster.nodes.map((n) => n.host);
  const ports = env.cluster.nodes.map((n) => n.port);
  const pjs = (attrs: 'primary' | 'prefer-standby'): postgres.Sql =>
    postgres({ host: hosts as unknown as string, port: ports as unknown as number, user, password, database, max: MAX, connect_timeout: 5, idle_timeout: 0, target_session_attrs: attrs, onnotice: () => {} });
  const pw = pjs('primary');
  const pr = pjs('prefer-standby');
  const run = async (sql: postgres.Sql, text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }> => ({
    rows: [...(await sql.unsafe(text, (values ?? []) as postgres.ParameterOrJSON<never>[]))] as Record<string, unknown>[],
  });
  out.push({ name: 'postgres.js', description: `postgres.js (max ${MAX}), 3 hosts, target_session_attrs primary / prefer-standby, connect_timeout 5`, write: (t, v) => run(pw, t, v), read: (t) => run(pr, t), end: async () => void (await Promise.all([pw.end({ timeout: 1 }), pr.end({ timeout: 1 })])) });
  if (env.haproxy !== undefined) {
    const hw = new pg.Pool({ host: '127.0.0.1', port: env.haproxy.primaryPort, user, password, database, max: MAX });
    const hr = new pg.Pool({ host: '127.0.0.1', port: env.haproxy.replicasPort, user, password, database, max: MAX });
    for (const p of [hw, hr]) p.on('error', () => {});
    out.push({ name: 'haproxy', description: `pg.Pool (max ${MAX}) behind HAProxy (inter 3s fall 3 rise 2, on-marked-down shutdown-sessions)`, write: (t, v) => hw.query(t, v), read: (t) => hr.query(t), end: () => endPlainPools([hw, hr]) });
  }
  return out;
}

function measure(c: Client, load: FaultLoad, cutAt: number, moveAt: number | undefined, newPrimary: string | undefined): NetFaultClientResult {
  const relevant = load.ops.filter((o) => (o.endedAt ?? Infinity) > cutAt && o.startedAt <= cutAt + HUNG_BOUND_MILLIS);
  const hung = relevant.filter((o) => o.endedAt === undefined).length;
  const lastSettled = relevant.reduce((m, o) => Math.max(m, o.endedAt ?? Infinity), cutAt);
  const longestStuck = relevant.reduce((m, o) => Math.max(m, (o.endedAt ?? Infinity) - Math.max(o.startedAt, cutAt)), 0);
  const errors: Record<string, number> = {};
  for (const o of load.failures()) {
    const name = String((o.error as Error | undefined)?.name ?? 'Error');
    errors[name] = (errors[name] ?? 0) + 1;
  }
  const first = newPrimary === undefined ? undefined : load.firstAckOn(newPrimary, moveAt ?? cutAt);
  return {
    client: c.name,
    description: c.description,
    cutToLastSettledMillis: hung > 0 || !Number.isFinite(lastSettled) ? null : lastSettled - cutAt,
    longestStuckMillis: Number.isFinite(longestStuck) ? longestStuck : null,
    moveToFirstWriteMillis: first?.endedAt === undefined || moveAt === undefined ? null : first.endedAt - moveAt,
    cutToFirstWriteMillis: first?.endedAt === undefined ? null : first.endedAt - cutAt,
    errors,
    readErrors: load.failures('read').length,
    hung,
    writesOk: load.ackedIds().length,
    readsOk: load.ops.filter((o) => o.kind === 'read' && o.endedAt !== undefined && o.error === undefined).length,
  };
}

async function runScenario(scenario: NetFaultScenario, log: (line: string) => void): Promise<NetFaultScenarioResult> {
  const env = await startEnv(log);
  const cs = clients(env);
  try {
    const loads = await Promise.all(
      cs.map((c, i) => FaultLoad.start({ write: c.write, read: c.read, writers: MAX, readers: 2, table: `netfault_${i}`, intervalMillis: 10 })),
    );
    await sleep(2_000);
    const cutAt = Date.now();
    let moveAt: number | undefined;
    let newPrimary: string | undefined;
    if (scenario === 'primary-black-hole') {
      env.lab.blackHole('node1');
      await sleep(1_000);
      await env.cluster.promote('node2');
      env.advertise('node2', ['node1']);
      moveAt = Date.now();
      newPrimary = `${env.cluster.node('node2').host}:${env.cluster.node('node2').port}`;
      log(`net-faults: ${scenario}: cut, Consul moved to node2 at +${moveAt - cutAt} ms`);
    } else {
      env.lab.blackHole('node3');
      log(`net-faults: ${scenario}: node3 cut`);
    }
    await sleep(cutAt + HUNG_BOUND_MILLIS - Date.now());
    await Promise.all(loads.map((l) => l.stop(0)));
    const results = cs.map((c, i) => measure(c, loads[i]!, cutAt, moveAt, newPrimary));
    // Let the clients go: heal (hung sockets resume or die), end them within a bound.
    env.lab.healAll();
    await Promise.all(loads.map((l) => l.stop(3_000)));
    await Promise.all(cs.map((c) => within(c.end(), 5_000)));
    return { scenario, clients: results };
  } finally {
    await env.stop();
  }
}

/** Runs both scenarios. */
export async function runNetFaults(log: (line: string) => void = () => {}): Promise<NetFaultsResults> {
  const startedAt = new Date().toISOString();
  const scenarios: NetFaultScenarioResult[] = [];
  for (const s of ['primary-black-hole', 'replica-black-hole'] as const) scenarios.push(await runScenario(s, log));
  return { startedAt, hungBoundMillis: HUNG_BOUND_MILLIS, scenarios };
}

const ms = (v: number | null): string => (v === null ? '—' : String(v));

/** The results as a markdown table (pure). */
export function netFaultsTable(r: NetFaultsResults): string {
  const lines = [
    `| scenario | client | longest a caller was stuck after the cut (ms) | Consul move → first write on new primary (ms) | hung after ${r.hungBoundMillis / 1000} s | errors | read errors | writes ok | reads ok |`,
    '| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |',
  ];
  for (const s of r.scenarios) {
    for (const c of s.clients) {
      const errors = Object.entries(c.errors).map(([k, v]) => `${k} ${v}`).join(', ') || '0';
      lines.push(`| ${s.scenario} | ${c.client} | ${c.longestStuckMillis === null ? '— (hung)' : ms(c.longestStuckMillis)} | ${s.scenario === 'primary-black-hole' ? ms(c.moveToFirstWriteMillis) : 'n/a'} | ${c.hung} | ${errors} | ${c.readErrors} | ${c.writesOk} | ${c.readsOk} |`);
    }
  }
  return lines.join('\n');
}

/** Writes `net-faults-<stamp>.json` and `net-faults-latest.json` to `dir`. */
export async function writeNetFaults(r: NetFaultsResults, dir = join(HERE, 'results')): Promise<string> {
  await mkdir(dir, { recursive: true });
  const body = `${JSON.stringify(r, null, 2)}\n`;
  const file = join(dir, `net-faults-${r.startedAt.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, body);
  await writeFile(join(dir, 'net-faults-latest.json'), body);
  return file;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const t0 = Date.now();
  const log = (line: string): void => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}`);
  runNetFaults(log)
    .then(async (r) => {
      console.log(netFaultsTable(r));
      log(`wrote ${await writeNetFaults(r)}`);
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
