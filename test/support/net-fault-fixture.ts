/**
 * The environment of the network-fault suites: a NetLab with hosts node1…nodeN and `consul`,
 * a PgCluster with one node per namespace (node1 primary, synchronous standby node2, so an
 * acknowledged write survives promoting node2), the Consul double on the bridge address and
 * reached by the pools through a forwarder on the `consul` host (so Consul can be
 * black-holed too), and the checks every scenario makes on its load.
 */
import assert from 'node:assert/strict';
import { Pool, OutcomeUnknownError, PgConsulError } from '../../lib/index.js';
import type { PoolOptions } from '../../lib/index.js';
import { ConsulDouble } from '../../lib/testing/consul-double.js';
import type { FaultLoad } from '../../lib/testing/fault-load.js';
import type { FaultOp } from '../../lib/testing/fault-load.js';
import { freePort } from '../../lib/testing/free-port.js';
import { NetLab } from '../../lib/testing/net-lab.js';
import { PgCluster } from '../../lib/testing/pg-cluster.js';
import { advertise } from './advertise.js';

/** Service name the suites register. */
export const SERVICE = 'pglab';

/** A started environment; {@link NetFaultEnv.stop} tears it all down (bounded). */
export interface NetFaultEnv {
  readonly lab: NetLab;
  readonly cluster: PgCluster;
  readonly consul: ConsulDouble;
  /** Where the pools reach Consul: the forwarder on the `consul` host. */
  readonly consulAddress: { readonly host: string; readonly port: number };
  /** `host:port` of a node, as the load records it. */
  server(name: string): string;
  /** A pg-consul Pool on the cluster through the lab's Consul address (ended by `stop`). */
  newPool(extra?: PoolOptions): Pool;
  /** Registers `primary` as primary, every other running node not `exclude`d as replica. */
  advertise(primary: string | undefined, exclude?: readonly string[]): void;
  /** Ids present in `table` on a node (asked directly, as the superuser). */
  idsOn(name: string, table: string): Promise<Set<number>>;
  /** Heals every fault, ends the pools (bounded), stops everything. */
  stop(): Promise<void>;
}

/** How long `stop` waits for a pool's `end()` once the network is healed. */
const END_BOUND_MILLIS = 10_000;

/** Starts the environment: `replicas` replicas (default 2), synchronous standby node2. */
export async function startNetFaultEnv(replicas = 2): Promise<NetFaultEnv> {
  const names = Array.from({ length: replicas + 1 }, (_, i) => `node${i + 1}`);
  const lab = await NetLab.start({ hosts: [...names, 'consul'] });
  let cluster: PgCluster | undefined;
  let consul: ConsulDouble | undefined;
  const pools: Pool[] = [];
  const stop = async (): Promise<void> => {
    lab.healAll();
    await Promise.all(pools.map((p) => bounded(p.ending ? Promise.resolve() : p.end(), END_BOUND_MILLIS).catch(() => undefined)));
    await consul?.stop();
    await cluster?.destroy();
    await lab.destroy();
  };
  try {
    [cluster, consul] = await Promise.all([PgCluster.start({ replicas, network: lab.placement() }), ConsulDouble.start({ host: lab.bridgeAddress })]);
    const consulPort = await freePort();
    await lab.forward('consul', consulPort, { host: consul.host, port: consul.port });
    const c = cluster;
    const d = consul;
    if (replicas > 0) {
      await c.query('node1', "ALTER SYSTEM SET synchronous_standby_names = 'node2'");
      await c.query('node1', 'SELECT pg_reload_conf()');
    }
    await c.query('node1', `ALTER ROLE ${c.appUser.user} SET synchronous_commit = on`);
    const env: NetFaultEnv = {
      lab,
      cluster: c,
      consul: d,
      consulAddress: { host: lab.address('consul'), port: consulPort },
      server: (name) => `${c.node(name).host}:${c.node(name).port}`,
      newPool(extra: PoolOptions = {}): Pool {
        const pool = new Pool({
          service: SERVICE,
          consul: { host: lab.address('consul'), port: consulPort, waitSeconds: 5 },
          user: c.appUser.user,
          password: c.appUser.password,
          database: c.appUser.database,
          max: 4,
          discoveryMinIntervalMillis: 20,
          ...extra,
        });
        pool.on('error', () => {});
        pools.push(pool);
        return pool;
      },
      advertise: (primary, exclude = []) => advertise(d, c, SERVICE, primary, exclude),
      async idsOn(name: string, table: string): Promise<Set<number>> {
        const rows = await c.query(name, `SELECT id FROM ${table}`, [], { database: c.appUser.database });
        return new Set(rows.map((r) => Number(r['id'])));
      },
      stop,
    };
    env.advertise('node1');
    return env;
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

/** Settles like `p`, or resolves with 'pending' after `ms` (the timer is cleared either way). */
export async function bounded<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<'pending'>((r) => (timer = setTimeout(() => r('pending'), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function show(ops: readonly FaultOp[]): string {
  return ops
    .slice(0, 5)
    .map((o) => `${o.kind} #${o.id} +${(o.endedAt ?? Date.now()) - o.startedAt} ms ${o.error === undefined ? (o.endedAt === undefined ? 'pending' : `ok ${o.server ?? ''}`) : String((o.error as Error).name)}`)
    .join('; ');
}

/** What {@link checkLoad} asserts beyond the common invariants. */
export interface LoadExpectations {
  /** Every caller settles within this, ms. */
  readonly settleBoundMillis: number;
  /** Node whose table must hold every acknowledged write. */
  readonly finalPrimary: string;
  /** Servers that must acknowledge no write issued at or after `since` (nodes no longer primary). */
  readonly notPrimary?: readonly { readonly server: string; readonly since: number }[];
  /** Allow no failed read at all. */
  readonly noReadErrors?: boolean;
}

/**
 * Stops the load (waiting at most the settle bound) and asserts: 0 hung callers, every caller
 * settled within the bound, only pg-consul's typed errors (a failed write either did not run
 * or is an OutcomeUnknownError), 0 acknowledged writes lost on the final primary, 0 writes
 * acknowledged by a node that was no longer the primary.
 */
export async function checkLoad(env: NetFaultEnv, load: FaultLoad, expect: LoadExpectations): Promise<void> {
  const hung = await load.stop(expect.settleBoundMillis);
  assert.equal(hung.length, 0, `hung callers: ${show(hung)}`);
  const slow = load.slowerThan(expect.settleBoundMillis);
  assert.equal(slow.length, 0, `callers slower than ${expect.settleBoundMillis} ms: ${show(slow)}`);
  for (const op of load.failures()) {
    assert.ok(op.error instanceof PgConsulError, `typed error expected, got ${String((op.error as Error)?.name)}: ${String((op.error as Error)?.message)}`);
    if (op.kind === 'write') {
      assert.ok(op.error.outcome === 'not-executed' || op.error instanceof OutcomeUnknownError, `a failed write did not run or is OutcomeUnknownError, got ${op.error.name} (${op.error.outcome})`);
    }
  }
  if (expect.noReadErrors === true) assert.equal(load.failures('read').length, 0, `read errors: ${show(load.failures('read'))}`);
  const present = await env.idsOn(expect.finalPrimary, load.table);
  const lost = load.ackedIds().filter((id) => !present.has(id));
  assert.deepEqual(lost, [], 'acknowledged writes missing on the final primary');
  for (const { server, since } of expect.notPrimary ?? []) {
    const stray = load.ops.filter((o) => o.kind === 'write' && o.error === undefined && o.server === server && o.startedAt >= since);
    assert.equal(stray.length, 0, `writes acknowledged by ${server}, no longer the primary: ${show(stray)}`);
  }
}
