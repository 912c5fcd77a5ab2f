/**
 * The node pools of one Pool: one per node and role, created on first use, retired (drained)
 * or fenced when their node leaves that role, and ended within a bound by `end()`.
 * @module
 */
import type pg from 'pg';
import type { Logger } from '../log.js';
import type { DiscoveredNode } from '../topology/node.js';
import type { TopologySnapshot } from '../topology/snapshot.js';
import type { WatchedNode } from './dead-peer.js';
import type { NodePool } from './node-pool.js';
import type { ProbeReachable } from './reachability-probe.js';

/** Probe deadline at `end()`: a node that answers nothing this fast while work is pending on it is fenced. */
const END_PROBE_MILLIS = 500;

/** A pg.Pool counter pg-consul sums over its node pools. */
export type PoolCounter = 'totalCount' | 'idleCount' | 'waitingCount' | 'expiredCount';

/** How `end()` drains the node pools. */
export interface DrainSettings {
  /** How long checkouts queued at `end()` may wait for a client (`failoverTimeoutMillis`). */
  readonly queuedMillis: number;
  /** The longest `end()` waits for checked-out clients before fencing what is left, ms (0: no bound). */
  readonly endTimeoutMillis: number;
  /** The reachability probe of busy nodes. */
  readonly probe: ProbeReachable;
}

/**
 * The node pools by role and address, with a one-entry cache per role in front (almost every
 * statement goes to the node the previous one of its role went to) and the replica pools by
 * address for the per-read load lookup. Pools that left the topology stay counted until they
 * have drained or been fenced.
 */
export class NodePoolSet {
  readonly #pools = new Map<string, NodePool>();
  readonly #retiring = new Set<NodePool>();
  /** The node pool each role used last. */
  readonly #lastPool: { primary?: NodePool; replica?: NodePool } = {};
  /** Replica node pools by address (the same objects as in #pools). */
  readonly #replicaPools = new Map<string, NodePool>();
  readonly #create: (node: DiscoveredNode, role: 'primary' | 'replica') => NodePool;
  readonly #log: Logger;

  /**
   * @param create makes the node pool of a node in a role (throws once the Pool is ending)
   * @param log logger (already redacting)
   */
  constructor(create: (node: DiscoveredNode, role: 'primary' | 'replica') => NodePool, log: Logger) {
    this.#create = create;
    this.#log = log;
  }

  /** Busy-ness of the replica pool at `address` (0 when there is none yet), as `selectReplica` wants it. */
  readonly replicaLoad = (address: string): number => this.#replicaPools.get(address)?.load ?? 0;

  /**
   * The node pool for a node in a role, created on first use.
   * @param node the node
   * @param role the role it is used in
   */
  get(node: DiscoveredNode, role: 'primary' | 'replica'): NodePool {
    const hit = this.#lastPool[role];
    // Compare addresses: every discovery answer brings new node objects.
    if (hit !== undefined && hit.address === node.address && !hit.retired) return hit;
    const key = `${role}|${node.address}`;
    let pool = this.#pools.get(key);
    if (!pool) {
      pool = this.#create(node, role);
      this.#pools.set(key, pool);
      if (role === 'replica') this.#replicaPools.set(node.address, pool);
    }
    this.#lastPool[role] = pool;
    return pool;
  }

  /**
   * Sums a pg.Pool counter over the node pools (optionally of one role), retiring ones included.
   * @param counter the counter
   * @param role only pools of this role
   */
  count(counter: PoolCounter, role?: 'primary' | 'replica'): number {
    let sum = 0;
    for (const p of this.#pools.values()) if (!role || p.role === role) sum += p.pg[counter];
    for (const p of this.#retiring) if (!role || p.role === role) sum += p.pg[counter];
    return sum;
  }

  /**
   * The clients of the node pools (optionally of one role), retiring ones included.
   * @param role only pools of this role
   */
  clients(role?: 'primary' | 'replica'): pg.Client[] {
    const out: pg.Client[] = [];
    for (const p of [...this.#pools.values(), ...this.#retiring]) if (!role || p.role === role) out.push(...p.clients);
    return out;
  }

  /**
   * Stops using node pools whose node lost the role they were opened for in `t`. A replica
   * promoted to primary drains (its reads finish); every other departure — gone from
   * discovery, failing its checks, demoted, found read-only or unreachable — fences: every
   * socket to the node is destroyed at once, in use or not.
   * @param t the topology now in force
   */
  reconcile(t: TopologySnapshot): void {
    const replicas = new Set(t.replicas.map((r) => r.address));
    for (const [key, pool] of this.#pools) {
      const keep = pool.role === 'primary' ? pool.address === t.primary?.address : replicas.has(pool.address);
      if (keep) continue;
      this.#pools.delete(key);
      if (this.#replicaPools.get(pool.address) === pool) this.#replicaPools.delete(pool.address);
      if (this.#lastPool[pool.role] === pool) this.#lastPool[pool.role] = undefined;
      this.#retiring.add(pool);
      const promoted = pool.role === 'replica' && pool.address === t.primary?.address;
      const why = promoted ? undefined : departureReason(pool, t);
      this.#log('debug', promoted ? 'draining read connections of a promoted replica' : 'fencing a node that left its role', {
        node: pool.address,
        role: pool.role,
        reason: why,
      });
      void (why === undefined ? pool.retire() : pool.fence(why)).then(() => this.#retiring.delete(pool));
    }
  }

  /**
   * Fences every current pool of the node at `address`.
   * @param address the node
   * @param reason why (secret-free)
   */
  fence(address: string, reason: string): void {
    for (const pool of this.#pools.values()) if (pool.address === address) void pool.fence(reason);
  }

  /**
   * The nodes the dead-peer detector watches: those with node pools (their oldest checkout
   * and latest release over both roles), and those `t` marks unreachable.
   * @param t the topology now in force
   */
  watched(t: TopologySnapshot): WatchedNode[] {
    const byAddress = new Map<string, WatchedNode>();
    for (const pool of this.#pools.values()) {
      const seen = byAddress.get(pool.address);
      byAddress.set(pool.address, {
        address: pool.address,
        host: pool.node.host,
        port: pool.node.port,
        oldestCheckoutTick: lowest(seen?.oldestCheckoutTick, pool.oldestCheckoutTick),
        lastReleaseTick: highest(seen?.lastReleaseTick, pool.lastReleaseTick),
        dead: false,
      });
    }
    for (const address of t.unreachable.keys()) {
      const node = t.nodes.find((n) => n.address === address);
      if (node) byAddress.set(address, { address, host: node.host, port: node.port, oldestCheckoutTick: undefined, dead: true });
    }
    return [...byAddress.values()];
  }

  /**
   * Ends every node pool, within a bound: checkouts already queued are served as clients come
   * back, then the pools end (idle connections close at once, checked-out ones on release). A
   * node with work pending that does not answer a quick probe is fenced at once (a black-holed
   * node costs about 0.5 s, not a TCP timeout), and whatever is still open after
   * `endTimeoutMillis` is fenced. Nothing is left open when it resolves.
   * @param settings the bounds and the probe
   */
  async endAll(settings: DrainSettings): Promise<void> {
    const pools = [...this.#pools.values(), ...this.#retiring];
    this.#pools.clear();
    this.#replicaPools.clear();
    this.#lastPool.primary = this.#lastPool.replica = undefined;
    const drained = (async () => {
      await Promise.all(pools.map((p) => p.drained(settings.queuedMillis)));
      await Promise.all(pools.map((p) => p.retire()));
    })();
    const busy = [...new Map(pools.filter((p) => p.busy).map((p) => [p.address, p])).values()];
    const abort = new AbortController();
    const probes = busy.map(async (p) => {
      const r = await settings.probe(p.node.host, p.node.port, END_PROBE_MILLIS, abort.signal);
      if (r.reachable || abort.signal.aborted) return;
      this.#log('warn', 'end(): a node with work pending did not answer; closing its connections', { node: p.address, reason: r.reason });
      for (const q of pools) if (q.address === p.address) void q.fence(`no answer at end(): ${r.reason}`);
    });
    try {
      await this.#drainWithin(pools, drained, settings.endTimeoutMillis);
    } finally {
      // The probes' sockets are closed too.
      abort.abort();
      await Promise.all(probes);
      this.#retiring.clear();
    }
  }

  /** Waits for `drained`, fencing every pool once `limit` ms have passed (0: no limit). */
  async #drainWithin(pools: readonly NodePool[], drained: Promise<unknown>, limit: number): Promise<void> {
    if (limit === 0) {
      await drained;
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const overdue = new Promise<'overdue'>((resolve) => {
      timer = setTimeout(() => resolve('overdue'), limit);
      timer.unref();
    });
    const first = await Promise.race([drained, overdue]);
    clearTimeout(timer);
    if (first === 'overdue') {
      this.#log('warn', `end(): connections still checked out after endTimeoutMillis (${limit} ms); closing them`, {});
      await Promise.all(pools.map((p) => p.fence(`end() waited ${limit} ms`)));
    }
  }
}

/** The lower of two optional numbers (undefined when both are). */
function lowest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

/** The higher of two optional numbers (undefined when both are). */
function highest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.max(a, b);
}

/** Why a node pool's node left its role in `t` (secret-free, for logs and errors). */
function departureReason(pool: NodePool, t: TopologySnapshot): string {
  const unreachable = t.unreachable.get(pool.address);
  if (unreachable) return `dead-peer probe failed: ${unreachable.reason}`;
  const listed = t.nodes.find((n) => n.address === pool.address);
  if (!listed) return 'gone from discovery (deregistered or failing its checks)';
  if (t.invalidated.has(pool.address)) return 'found read-only';
  return pool.role === 'primary' ? `no longer the primary (now ${listed.role})` : `no longer a replica (now ${listed.role})`;
}
