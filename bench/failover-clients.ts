/**
 * The four client styles the failover benchmark compares, each behind the workload's
 * {@link WorkloadTarget} (write path + read path):
 * - `pg-consul`: this library, following Consul;
 * - `haproxy`: a plain pg.Pool behind HAProxy's `primary` / `replicas` listeners;
 * - `postgres.js`: postgres.js with all three hosts and `target_session_attrs: 'primary'`
 *   (reads: `prefer-standby`);
 * - `pinned`: a plain pg.Pool pinned to the leader's address as it was before the failover
 *   (reads pinned to a replica).
 * @module
 */
import pg from 'pg';
import postgres from 'postgres';
import { Pool } from '../lib/index.js';
import type { FailoverEvent, RetryEvent, TopologyEvent } from '../lib/index.js';
import type { PatroniLab } from '../lib/testing/patroni-lab.js';
import type { WorkloadTarget } from '../lib/testing/workload.js';
import type { Haproxy } from './haproxy.js';

/** The client styles, in report order. */
export const CLIENT_NAMES = ['pg-consul', 'pg-consul-kv', 'pg-consul-auto', 'haproxy', 'postgres.js', 'pinned'] as const;

/** A client style. */
export type ClientName = (typeof CLIENT_NAMES)[number];

/** What pg-consul's events said, with arrival times (ms since the epoch). */
export interface PgConsulTrace {
  /** Every `topology` event: the primary it names afterwards (member name or address). */
  readonly topology: { at: number; primary: string | undefined; version: number }[];
  /** Every `failover` event. */
  readonly failovers: { at: number; from: string | undefined; to: string; durationMillis: number; sinceTopologyChangeMillis: number }[];
  /** `retry` events on the primary path. */
  retriesPrimary: number;
  /** `retry` events on the replica path. */
  retriesReplica: number;
}

/** One client under test. */
export interface BenchClient {
  /** Its style. */
  readonly name: ClientName;
  /** One line saying how it is set up. */
  readonly description: string;
  /** What the workload drives. */
  readonly target: WorkloadTarget;
  /** HTTP requests it made to Consul so far (0 for clients that do not talk to Consul). */
  consulRequests(): number;
  /** pg-consul's event trace (pg-consul only). */
  readonly trace?: PgConsulTrace;
  /** Closes every connection; bounded in time. */
  end(): Promise<void>;
}

/** Connection settings shared by all clients. */
export interface ClientContext {
  /** The lab. */
  readonly lab: PatroniLab;
  /** HAProxy in front of the lab (undefined when not installed). */
  readonly haproxy: Haproxy | undefined;
  /** The leader right now (the `pinned` client sticks to it). */
  readonly leader: string;
  /** Connections per client and path. */
  readonly max: number;
}

const QUERY_TIMEOUT_MILLIS = 10_000;

function plainPool(ctx: ClientContext, port: number, name: string): pg.Pool {
  const { user, password, database } = ctx.lab.appUser;
  const pool = new pg.Pool({
    host: '127.0.0.1',
    port,
    user,
    password,
    database,
    max: ctx.max,
    connectionTimeoutMillis: 5_000,
    query_timeout: QUERY_TIMEOUT_MILLIS,
    application_name: `bench-${name}`,
  });
  pool.on('error', () => {}); // idle clients die during a failover; the workload sees it on its next query
  return pool;
}

function pgTarget(write: pg.Pool, read: pg.Pool): WorkloadTarget {
  return {
    query: (text, values) => write.query(text, values),
    replica: { query: (text, values) => read.query(text, values) },
  };
}

async function endWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.catch(() => {}), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/**
 * pg-consul following the lab's Consul: the health endpoint (`discovery: 'consul-health'`,
 * client name `pg-consul`), Patroni's leader key in KV (`discovery: 'patroni'`, client
 * `pg-consul-kv`) or the default configuration (no `discovery` option, i.e. `auto`, client
 * `pg-consul-auto`).
 */
export function pgConsulClient(ctx: ClientContext, discovery: 'consul-health' | 'patroni' | 'auto' = 'consul-health'): BenchClient {
  const { user, password, database } = ctx.lab.appUser;
  const name: ClientName = discovery === 'patroni' ? 'pg-consul-kv' : discovery === 'auto' ? 'pg-consul-auto' : 'pg-consul';
  const pool = new Pool({
    service: ctx.lab.serviceName,
    ...(discovery === 'auto' ? {} : { discovery }),
    consul: { host: ctx.lab.consul.host, port: ctx.lab.consul.port },
    user,
    password,
    database,
    max: ctx.max,
    application_name: `bench-${name}`,
  });
  pool.on('error', () => {});
  const byAddress = new Map(ctx.lab.nodes.map((n) => [`127.0.0.1:${n.pgPort}`, n.name]));
  const trace: PgConsulTrace = { topology: [], failovers: [], retriesPrimary: 0, retriesReplica: 0 };
  pool.on('topology', (e: TopologyEvent) => {
    const a = e.current.primary?.address;
    trace.topology.push({ at: Date.now(), primary: a === undefined ? undefined : (byAddress.get(a) ?? a), version: e.current.version });
  });
  pool.on('failover', (e: FailoverEvent) => {
    trace.failovers.push({
      at: Date.now(),
      from: e.from ? (byAddress.get(e.from.address) ?? e.from.address) : undefined,
      to: byAddress.get(e.to.address) ?? e.to.address,
      durationMillis: e.durationMillis,
      sinceTopologyChangeMillis: e.sinceTopologyChangeMillis,
    });
  });
  pool.on('retry', (e: RetryEvent) => {
    if (e.role === 'primary') trace.retriesPrimary++;
    else trace.retriesReplica++;
  });
  return {
    name,
    description:
      discovery === 'patroni'
        ? `pg-consul Pool with discovery 'patroni' (blocks on Patroni's keys in Consul KV: the leader key names the primary)`
        : discovery === 'auto'
          ? `pg-consul Pool in its default configuration (discovery 'auto': Patroni's leader key while its keys are readable in KV, replicas from the health endpoint)`
          : `pg-consul Pool with discovery 'consul-health' (max ${ctx.max} per node and path, blocking wait 300 s, min interval 100 ms)`,
    target: {
      query: (text, values) => pool.query(text, values),
      replica: { query: (text, values) => pool.replica.query(text, values) },
    },
    consulRequests: () => pool.discoveryRequestCount,
    trace,
    end: () => endWithin(pool.end(), 15_000),
  };
}

/** A plain pg.Pool behind HAProxy. */
export function haproxyClient(ctx: ClientContext): BenchClient {
  if (!ctx.haproxy) throw new Error('HAProxy is not running');
  const write = plainPool(ctx, ctx.haproxy.primaryPort, 'haproxy');
  const read = plainPool(ctx, ctx.haproxy.replicasPort, 'haproxy-r');
  return {
    name: 'haproxy',
    description: `pg.Pool (max ${ctx.max}) → HAProxy 2.6 primary/replicas listeners (httpchk OPTIONS /primary|/replica, inter 3s fall 3 rise 2, shutdown-sessions)`,
    target: pgTarget(write, read),
    consulRequests: () => 0,
    end: () => endWithin(Promise.all([write.end(), read.end()]), 15_000),
  };
}

/** postgres.js with every member listed and `target_session_attrs`. */
export function postgresJsClient(ctx: ClientContext): BenchClient {
  const { user, password, database } = ctx.lab.appUser;
  const hosts = ctx.lab.nodes.map(() => '127.0.0.1');
  const ports = ctx.lab.nodes.map((n) => n.pgPort);
  const make = (attrs: 'primary' | 'prefer-standby', app: string): postgres.Sql =>
    postgres({
      // postgres.js accepts arrays here (multi-host); its typings only declare one host/port.
      host: hosts as unknown as string,
      port: ports as unknown as number,
      user,
      password,
      database,
      max: ctx.max,
      connect_timeout: 5,
      idle_timeout: 0,
      target_session_attrs: attrs,
      onnotice: () => {},
      connection: { application_name: app },
    });
  const write = make('primary', 'bench-postgresjs');
  const read = make('prefer-standby', 'bench-postgresjs-r');
  const run = async (sql: postgres.Sql, text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }> => {
    const rows = await sql.unsafe(text, (values ?? []) as postgres.ParameterOrJSON<never>[]);
    return { rows: [...rows] as Record<string, unknown>[] };
  };
  return {
    name: 'postgres.js',
    description: `postgres.js 3.4 (max ${ctx.max}), host × 3 / port [${ports.join(', ')}], target_session_attrs primary (reads: prefer-standby)`,
    target: { query: (t, v) => run(write, t, v), replica: { query: (t, v) => run(read, t, v) } },
    consulRequests: () => 0,
    end: () => endWithin(Promise.all([write.end({ timeout: 2 }), read.end({ timeout: 2 })]), 15_000),
  };
}

/** A plain pg.Pool pinned to the current leader's address (reads: to a replica's). */
export function pinnedClient(ctx: ClientContext): BenchClient {
  const leader = ctx.lab.nodes.find((n) => n.name === ctx.leader);
  const replica = ctx.lab.nodes.find((n) => n.name !== ctx.leader);
  if (!leader || !replica) throw new Error(`no member ${ctx.leader}`);
  const write = plainPool(ctx, leader.pgPort, 'pinned');
  const read = plainPool(ctx, replica.pgPort, 'pinned-r');
  return {
    name: 'pinned',
    description: `pg.Pool (max ${ctx.max}) pinned to the old leader ${leader.name} (:${leader.pgPort}); reads pinned to ${replica.name}`,
    target: pgTarget(write, read),
    consulRequests: () => 0,
    end: () => endWithin(Promise.all([write.end(), read.end()]), 15_000),
  };
}
