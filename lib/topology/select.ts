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
 * The node writes go to: the best primary candidate of the snapshot. Pure.
 *
 * @param snapshot current topology
 */
export function selectPrimary(snapshot: TopologySnapshot): Selection {
  return { node: snapshot.primary, role: 'primary' };
}

/**
 * The replica a read goes to: the least busy passing replica (busy = connections checked
 * out plus requests waiting for one, as `load` reports), ties broken by rotating with
 * `turn` so equal replicas share the load evenly. When no replica is available the read goes
 * to the primary if `fallback` is `primary`. Pure.
 *
 * @param snapshot current topology
 * @param load busy-ness of the node pool at an address (0 when it has none yet)
 * @param fallback policy when no replica is available
 * @param turn a counter the caller increments per selection (round-robin among equals)
 *
 * @example
 * ```ts
 * const { node, role } = selectReplica(snapshot, (a) => busy.get(a) ?? 0, 'primary', turn++);
 * ```
 */
export function selectReplica(
  snapshot: TopologySnapshot,
  load: (address: string) => number,
  fallback: ReadFallback,
  turn: number,
): Selection {
  const replicas = snapshot.replicas;
  const n = replicas.length;
  if (n === 0) {
    return fallback === 'primary' ? { node: snapshot.primary, role: 'primary' } : { node: undefined, role: 'replica' };
  }
  let best: DiscoveredNode | undefined;
  let bestLoad = Infinity;
  const start = ((turn % n) + n) % n;
  for (let i = 0; i < n; i++) {
    const node = replicas[(start + i) % n]!;
    const l = load(node.address);
    if (l < bestLoad) {
      best = node;
      bestLoad = l;
    }
  }
  return { node: best, role: 'replica' };
}
