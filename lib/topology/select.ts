import type { DiscoveredNode } from './node.js';
import type { TopologySnapshot } from './snapshot.js';

/**
 * Where a read goes when no replica is available.
 * - `primary`: to the primary (the default; reads keep working during replica outages);
 * - `fail`: nowhere: the read fails with {@link NoReplicaError} after `failoverTimeoutMillis`.
 */
export type ReadFallback = 'primary' | 'fail';

/** The outcome of selecting a node for an intent. */
export interface Selection {
  /** The node to use, or undefined when none is available right now. */
  readonly node: DiscoveredNode | undefined;
  /** The role the node is used in (a read may be served by the primary as a fallback). */
  readonly role: 'primary' | 'replica';
}

/**
 * How {@link selectReplica} breaks ties among equally busy replicas:
 * - `rotate`: round-robin with the caller's `turn` (the default: equal replicas share the load);
 * - `listed`: the first in `readReplicas` order, i.e. the discovery source's order — nearest
 *   first when Consul sorts by `consul.near` (the pool uses it then).
 */
export type ReplicaTieBreak = 'rotate' | 'listed';

/**
 * The node writes go to: the best primary candidate of the snapshot. Pure.
 *
 * @param snapshot current topology
 */
export function selectPrimary(snapshot: TopologySnapshot): Selection {
  return { node: snapshot.primary, role: 'primary' };
}

/** Where the scan over `n` replicas starts: the rotation of `turn`, or 0 for `listed`. */
function startAt(n: number, turn: number, tieBreak: ReplicaTieBreak): number {
  return tieBreak === 'listed' || n === 0 ? 0 : ((turn % n) + n) % n;
}

/**
 * The replica a read goes to: the least busy passing replica (busy = connections checked
 * out plus requests waiting for one, as `load` reports), ties broken by `tieBreak`: by
 * rotating with `turn` so equal replicas share the load evenly (default), or by taking the
 * first in `readReplicas` order (`listed`: nearest first with `consul.near`; a busier near
 * replica still loses to an idler far one). Only `readReplicas` count (replicas over
 * `maxReplicaLag` are excluded). When no replica is available the read goes to the primary
 * if `fallback` is `primary`. Pure.
 *
 * @param snapshot current topology
 * @param load busy-ness of the node pool at an address (0 when it has none yet)
 * @param fallback policy when no replica is available
 * @param turn a counter the caller increments per selection (round-robin among equals)
 * @param tieBreak how equally busy replicas are ordered (default `rotate`)
 *
 * @example
 * ```ts
 * const { node, role } = selectReplica(snapshot, (a) => busy.get(a) ?? 0, 'primary', turn++);
 * const nearest = selectReplica(snapshot, (a) => busy.get(a) ?? 0, 'primary', turn++, 'listed');
 * ```
 */
export function selectReplica(
  snapshot: TopologySnapshot,
  load: (address: string) => number,
  fallback: ReadFallback,
  turn: number,
  tieBreak: ReplicaTieBreak = 'rotate',
): Selection {
  const replicas = snapshot.readReplicas;
  const n = replicas.length;
  if (n === 0) {
    return fallback === 'primary' ? { node: snapshot.primary, role: 'primary' } : { node: undefined, role: 'replica' };
  }
  return { node: leastBusy(replicas, load, startAt(n, turn, tieBreak), undefined), role: 'replica' };
}

/**
 * The least busy of `replicas` that `accept` admits (every one when it is undefined),
 * scanning from index `start` round the list, so the first of equally busy ones wins.
 */
function leastBusy(
  replicas: readonly DiscoveredNode[],
  load: (address: string) => number,
  start: number,
  accept: ((node: DiscoveredNode) => boolean) | undefined,
): DiscoveredNode | undefined {
  const n = replicas.length;
  let best: DiscoveredNode | undefined;
  let bestLoad = Infinity;
  for (let i = 0; i < n; i++) {
    const node = replicas[(start + i) % n]!;
    if (accept !== undefined && !accept(node)) continue;
    const l = load(node.address);
    if (l < bestLoad) {
      best = node;
      bestLoad = l;
    }
  }
  return best;
}

/** A {@link Selection} for a read that must see a WAL position. */
export interface CaughtUpSelection extends Selection {
  /**
   * The replica is not known to have replayed the position: check its
   * `pg_last_wal_replay_lsn()` first (one round trip) and read from the primary if it has not.
   */
  readonly verify: boolean;
}

/**
 * The node a read-your-writes read goes to: a read that must see everything up to WAL
 * position `position`. Pure.
 *
 * Ties among equally busy replicas are broken as in {@link selectReplica}.
 *
 * 1. The least busy readable replica known to have replayed `position` (`replayed` reports
 *    the highest replay position seen on each replica, from the lag monitor or earlier
 *    checks): no check needed (`verify: false`).
 * 2. Else, when `canVerify`, the least busy readable replica, with `verify: true`.
 * 3. Else the primary, which always has the position (whatever `readFallback` says: the
 *    caller asked for its own writes).
 *
 * @param snapshot current topology
 * @param load busy-ness of the node pool at an address
 * @param replayed highest replay position known for an address (undefined when unknown)
 * @param position the position the read must see (> 0)
 * @param canVerify whether an unknown replica may be checked (false when the lag monitor
 *   is on: its data is used instead)
 * @param turn a counter the caller increments per selection
 * @param tieBreak how equally busy replicas are ordered (default `rotate`; see {@link selectReplica})
 *
 * @example
 * ```ts
 * const s = selectCaughtUpReplica(snapshot, load, (a) => known.get(a), 0x3000148n, true, turn++);
 * if (s.verify) { ... check pg_last_wal_replay_lsn() on s.node first ... }
 * ```
 */
export function selectCaughtUpReplica(
  snapshot: TopologySnapshot,
  load: (address: string) => number,
  replayed: (address: string) => bigint | undefined,
  position: bigint,
  canVerify: boolean,
  turn: number,
  tieBreak: ReplicaTieBreak = 'rotate',
): CaughtUpSelection {
  const replicas = snapshot.readReplicas;
  const start = startAt(replicas.length, turn, tieBreak);
  const caught = leastBusy(replicas, load, start, (node) => {
    const r = replayed(node.address);
    return r !== undefined && r >= position;
  });
  if (caught) return { node: caught, role: 'replica', verify: false };
  const any = canVerify ? leastBusy(replicas, load, start, undefined) : undefined;
  if (any) return { node: any, role: 'replica', verify: true };
  return { node: snapshot.primary, role: 'primary', verify: false };
}
