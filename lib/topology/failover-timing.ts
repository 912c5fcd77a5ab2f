/**
 * When writes moved to a new primary, and how long it took: the `failover` event's numbers.
 * @module
 */
import type { FailoverEvent } from '../events.js';
import type { DiscoveredNode } from './node.js';
import type { TopologySnapshot } from './snapshot.js';

/**
 * The failover clock of one Pool. Trouble starts at the first sign that the primary is going
 * away (a failed attempt on it, or a topology change that removed it); a failover ends when
 * the first connection to a new primary passes its role check. Times are in the caller's
 * clock; nothing here reads a clock.
 *
 * @example
 * ```ts
 * const timing = new FailoverTiming();
 * timing.topologyChanged(previous, next, now);   // on every routing change
 * timing.trouble(now);                           // a write attempt on the primary failed
 * const event = timing.confirmed(node, now);     // a new connection passed the role check
 * if (event) pool.emit('failover', event);
 * ```
 */
export class FailoverTiming {
  #confirmed: DiscoveredNode | undefined;
  #troubleSince: number | undefined;
  #primaryNamedAt: number | undefined;

  /**
   * A sign of trouble on the primary path (kept if an earlier one is pending).
   * @param now the time
   */
  trouble(now: number): void {
    this.#troubleSince ??= now;
  }

  /**
   * Records a routing change: when a new primary was named, and trouble when the previous
   * primary was removed.
   * @param previous the snapshot before
   * @param next the snapshot now in force
   * @param now the time
   */
  topologyChanged(previous: TopologySnapshot, next: TopologySnapshot, now: number): void {
    if (next.primary && next.primary.address !== this.#confirmed?.address && next.primary.address !== previous.primary?.address) {
      this.#primaryNamedAt = now;
    }
    if (previous.primary && next.primary?.address !== previous.primary.address) this.#troubleSince ??= now;
  }

  /**
   * A new connection to `node` passed the primary role check. Ends any trouble; returns the
   * failover when writes moved from another confirmed primary to `node`, else undefined.
   * @param node the confirmed primary
   * @param now the time
   */
  confirmed(node: DiscoveredNode, now: number): FailoverEvent | undefined {
    const from = this.#confirmed;
    let event: FailoverEvent | undefined;
    if (from?.address !== node.address) {
      if (from) {
        const since = this.#troubleSince ?? this.#primaryNamedAt ?? now;
        event = { from, to: node, durationMillis: now - since, sinceTopologyChangeMillis: now - (this.#primaryNamedAt ?? now) };
      }
      this.#confirmed = node;
    }
    this.#troubleSince = undefined;
    return event;
  }
}
