/**
 * The waits of a Cluster on its topology: for a primary (`pool.ready()`), for discovery's
 * first answer (`end()`), and who waits (for the counters: see {@link WaitCounts}).
 * @module
 */
import { NoPrimaryError, PoolEndedError } from './errors.js';
import type { TopologySnapshot } from './topology/snapshot.js';

/** What the waits read of a Cluster. */
export interface TopologyWatch {
  /** The topology now in force. */
  topology(): TopologySnapshot;
  /** Resolves after `ms`, or earlier when the topology changes or the pool ends. */
  wait(ms: number): Promise<void>;
  /** Current time in ms. */
  now(): number;
}

/** What {@link waitForPrimary} also needs. */
export interface PrimaryWatch extends TopologyWatch {
  /** Whether the cluster is shutting down. */
  closing(): boolean;
  /** Why no primary is available, worded as the fix. */
  noPrimaryHint(): string | undefined;
  /** The last discovery error (the cause of the timeout). */
  lastDiscoveryError(): Error | undefined;
}

/**
 * Resolves with the topology once it names a primary; rejects with NoPrimaryError after
 * `timeoutMillis`, or PoolEndedError when the cluster shuts down first.
 *
 * @param watch the cluster's side
 * @param timeoutMillis the longest wait
 * @returns the topology with a primary
 */
export async function waitForPrimary(watch: PrimaryWatch, timeoutMillis: number): Promise<TopologySnapshot> {
  const deadline = watch.now() + timeoutMillis;
  for (;;) {
    if (watch.closing()) throw new PoolEndedError();
    const topology = watch.topology();
    if (topology.primary) return topology;
    const remaining = deadline - watch.now();
    if (remaining <= 0) {
      const why = watch.noPrimaryHint() ?? (topology.discovered ? 'no primary is listed' : 'discovery has not answered');
      throw new NoPrimaryError(`no primary after ${timeoutMillis} ms: ${why}`, { cause: watch.lastDiscoveryError() });
    }
    await watch.wait(remaining);
  }
}

/**
 * Waits, at most `ms`, for discovery's first answer; then one macrotask more, so that the
 * statements that answer woke reach their node pools (checkouts there finish before the
 * node pools end).
 *
 * @param watch the cluster's side
 * @param ms the longest wait
 */
export async function awaitFirstAnswer(watch: TopologyWatch, ms: number): Promise<void> {
  const deadline = watch.now() + ms;
  while (!watch.topology().discovered && watch.now() < deadline) await watch.wait(deadline - watch.now());
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Counts pending waits by who waits: a path's retry loops while discovery has not answered
 * yet (`primary`, `replica`), or `end()` waiting for that first answer (`end`). pg-pool
 * counts a checkout that opens a new client in `totalCount` from the moment it is asked for
 * (while the host name resolves and the connection opens); a pg-consul statement waiting for
 * discovery to name its node is at that same step, so the counters count it the same way
 * (see `RoutedPool`), and `end()`'s own wait is no statement's.
 */
export class WaitCounts {
  readonly #counts = { primary: 0, replica: 0, end: 0 };

  /**
   * Counts `wait` under `who` until it settles.
   * @param who who waits
   * @param wait the wait
   * @returns a promise settling like `wait`, after the count dropped
   */
  track(who: 'primary' | 'replica' | 'end', wait: Promise<void>): Promise<void> {
    this.#counts[who]++;
    return wait.finally(() => this.#counts[who]--);
  }

  /**
   * Pending waits of `who`.
   * @param who who waits
   */
  count(who: 'primary' | 'replica' | 'end'): number {
    return this.#counts[who];
  }
}
