/**
 * Two discovery sources merged into one topology: the primary from one, the replicas from
 * the other (`discovery: 'patroni+health'`: leader from Patroni's KV, replicas from the
 * health endpoint).
 *
 * @module
 */
import type { DiscoveredNode, TopologyUpdate } from '../topology/node.js';
import { SourcePair } from './discovery-source.js';
import type { DiscoveryListener, DiscoverySource } from './discovery-source.js';

/** The `source` label of `patroni+health` updates. */
export const PATRONI_HEALTH_SOURCE = 'patroni+health';

/**
 * Merges the latest answers of two sources (pure):
 * - primaries: the nodes `primaries` calls primary (for Patroni KV: the leader), nothing else
 *   from it;
 * - replicas: the nodes `replicas` calls replica, except one at a primary's address (the
 *   snapshot would drop it anyway) and one the primary source marks `patroni.noloadbalance`;
 * - everything else `replicas` lists (e.g. a health entry still tagged primary during a
 *   switchover, when the leader key already moved) is kept for visibility as role `other`,
 *   so it never competes with the leader.
 * The index is the larger of the two; `walPositions` are those of `primaries` (Patroni's
 * member keys cover the health replicas too: they are matched by address).
 *
 * @param primaries latest update of the source that decides the primary
 * @param replicas latest update of the source that decides the replicas
 * @param source the `source` label of the merged update
 * @returns the merged update
 *
 * @example
 * ```ts
 * mergeTopologies(kvUpdate, healthUpdate, 'patroni+health').nodes.filter((n) => n.role === 'primary'); // the leader only
 * ```
 */
export function mergeTopologies(primaries: TopologyUpdate, replicas: TopologyUpdate, source: string): TopologyUpdate {
  const leaders = primaries.nodes.filter((n) => n.role === 'primary');
  const leaderAddresses = new Set(leaders.map((n) => n.address));
  const noLoadBalance = new Set(primaries.nodes.filter((n) => n.patroni?.noloadbalance === true).map((n) => n.address));
  const nodes: DiscoveredNode[] = [...leaders];
  for (const node of replicas.nodes) {
    if (leaderAddresses.has(node.address)) continue;
    const usable = node.role === 'replica' && !noLoadBalance.has(node.address);
    nodes.push(usable || node.role === 'other' ? node : Object.freeze({ ...node, role: 'other' as const }));
  }
  const merged: TopologyUpdate = { source, index: Math.max(primaries.index, replicas.index), nodes };
  return primaries.walPositions === undefined ? merged : { ...merged, walPositions: primaries.walPositions };
}

/**
 * A {@link DiscoverySource} that runs two sources and reports {@link mergeTopologies} of
 * their latest answers — only once both have answered, then on every answer of either.
 * Errors and skipped entries of both are passed on; the last merged topology stays in force
 * while one of them fails. `refresh()` and `stop()` go to both; `requestCount` is the sum.
 *
 * Consistency: the two loops block independently, so a merged snapshot can combine a fresh
 * answer of one with an older answer of the other. The merge keeps that safe — the leader
 * comes from one source only, and a node is never both primary and replica — but during a
 * switchover the old leader is missing from the replicas until the health endpoint lists it
 * again as a passing replica, and the new leader is dropped from them at once even while
 * the health endpoint still lists it as a replica.
 *
 * @example
 * ```ts
 * const source = new CombinedSource(new PatroniKvSource(kv), new ConsulHealthSource(health));
 * ```
 */
export class CombinedSource implements DiscoverySource {
  readonly #primaries: DiscoverySource;
  readonly #replicas: DiscoverySource;
  readonly #label: string;
  #listener: DiscoveryListener | undefined;
  #lastPrimaries: TopologyUpdate | undefined;
  #lastReplicas: TopologyUpdate | undefined;
  readonly #pair: SourcePair;

  /**
   * @param primaries decides the primary (e.g. a PatroniKvSource)
   * @param replicas decides the replicas (e.g. a ConsulHealthSource)
   * @param label `source` label of merged updates (default {@link PATRONI_HEALTH_SOURCE})
   */
  constructor(primaries: DiscoverySource, replicas: DiscoverySource, label = PATRONI_HEALTH_SOURCE) {
    this.#primaries = primaries;
    this.#replicas = replicas;
    this.#label = label;
    this.#pair = new SourcePair('CombinedSource', primaries, replicas);
  }

  /** Requests made by both sources. */
  get requestCount(): number {
    return this.#pair.requestCount;
  }

  /**
   * Starts both sources.
   *
   * @param listener receives merged updates and both sources' errors
   * @throws Error when called twice or after {@link CombinedSource.stop}
   */
  start(listener: DiscoveryListener): void {
    this.#pair.begin();
    this.#listener = listener;
    const forward = (which: 'primaries' | 'replicas'): DiscoveryListener => ({
      onUpdate: (update) => {
        if (which === 'primaries') this.#lastPrimaries = update;
        else this.#lastReplicas = update;
        this.#emit();
      },
      onError: (error, info) => {
        if (this.#pair.running) this.#listener?.onError(error, info);
      },
      onSkippedEntry: (reason) => {
        if (this.#pair.running) this.#listener?.onSkippedEntry?.(reason);
      },
    });
    this.#primaries.start(forward('primaries'));
    this.#replicas.start(forward('replicas'));
  }

  /** Asks both sources for a fresh answer. */
  refresh(): void {
    this.#pair.refresh();
  }

  /**
   * Stops both sources; no callback afterwards. Idempotent.
   *
   * @returns resolves when both have stopped
   */
  stop(): Promise<void> {
    return this.#pair.stop();
  }

  #emit(): void {
    if (!this.#pair.running || this.#lastPrimaries === undefined || this.#lastReplicas === undefined) return;
    this.#listener?.onUpdate(mergeTopologies(this.#lastPrimaries, this.#lastReplicas, this.#label));
  }
}
