/**
 * The request budget one Pool's Consul loops share, and the diagnostics channel every Consul
 * request is reported on.
 *
 * @module
 */
import diagnostics from 'node:diagnostics_channel';
import type { IndexProgress, PacingReason } from './request-pacing.js';

/** Name of the diagnostics channel every Consul request of every Pool is published on. */
export const DISCOVERY_REQUEST_CHANNEL = 'pg-consul:discovery:request';

/**
 * One message on {@link DISCOVERY_REQUEST_CHANNEL}: a Consul request ended (answered, failed,
 * timed out). Secret-free: the path carries no token (tokens travel in a header).
 *
 * @example
 * ```ts
 * import diagnostics from 'node:diagnostics_channel';
 * diagnostics.subscribe('pg-consul:discovery:request', (m) => {
 *   const msg = m as DiscoveryRequestMessage;
 *   console.log(msg.budgetId, msg.endpoint, msg.status, msg.durationMillis, msg.delayMillis);
 * });
 * ```
 */
export interface DiscoveryRequestMessage {
  /** The request budget id: one per Pool (all loops of a Pool share it). */
  readonly budgetId: number;
  /** Request path, e.g. `/v1/health/service/pglab` (no query string). */
  readonly endpoint: string;
  /** Whether it was a blocking request (`?index=&wait=`). */
  readonly blocking: boolean;
  /** HTTP status when Consul answered, `undefined` for a network error, timeout or abort. */
  readonly status: number | undefined;
  /** `answer` (a valid answer), `error` or `throttled` (429/503). */
  readonly outcome: 'answer' | 'error' | 'throttled';
  /** For a valid answer: what its index did. */
  readonly index: IndexProgress | undefined;
  /** When it started (epoch ms, the loop's clock): start to start ≥ the minimum interval per Pool. */
  readonly startedAt: number;
  /** How long the request took, ms. */
  readonly durationMillis: number;
  /** The delay chosen before the loop's next request, ms. */
  readonly delayMillis: number;
  /** What set that delay. */
  readonly reason: PacingReason;
  /** Consecutive errors, this one included (0 after a valid answer). */
  readonly failures: number;
  /** Consecutive index anomalies (see docs/consul-requests.md). */
  readonly anomalies: number;
}

const channel = diagnostics.channel(DISCOVERY_REQUEST_CHANNEL);

/**
 * Publishes one message when anybody subscribed; a throwing subscriber is Node's business
 * (diagnostics_channel reports it as an uncaught exception on the next tick), so none of
 * ours ever throw.
 *
 * @param message what to publish
 */
export function publishDiscoveryRequest(message: DiscoveryRequestMessage): void {
  if (channel.hasSubscribers) channel.publish(message);
}

let nextBudgetId = 1;

/**
 * The start time of the last Consul request of one Pool, shared by all of its loops (e.g.
 * `patroni+health` runs two), so the Pool as a whole never starts two requests closer than
 * the minimum interval. A loop that had to wait is first in line the next time, so a loop
 * whose endpoint churns cannot starve the other.
 *
 * @example
 * ```ts
 * const budget = new RequestBudget();
 * const me = Symbol('loop');
 * budget.admit(me, Date.now(), 100);      // 0: go (marked as started)
 * budget.admit(me, Date.now() + 40, 100); // 60: wait
 * ```
 */
export class RequestBudget {
  /** Process-unique id, reported as `budgetId` on the diagnostics channel. */
  readonly id: number = nextBudgetId++;
  #lastStartAt: number | undefined;
  readonly #waiting: symbol[] = [];
  readonly #members = new Set<symbol>();

  /**
   * Loops running on this budget. The discovery loop multiplies its backoff cap by it, so a
   * Pool with two loops (`patroni+health`) sends no more requests to a failing Consul than a
   * Pool with one.
   */
  get members(): number {
    return this.#members.size;
  }

  /** @param who a loop that starts on this budget */
  join(who: symbol): void {
    this.#members.add(who);
  }

  /**
   * @param now the current time, ms
   * @returns ms since the last start, `undefined` when there was none
   */
  sinceLastStart(now: number): number | undefined {
    return this.#lastStartAt === undefined ? undefined : now - this.#lastStartAt;
  }

  /**
   * Whether loop `who` may start a request now. When it may, the start is recorded and 0
   * returned; otherwise it is queued and the ms to wait before asking again are returned.
   * A clock that went backwards counts as "waited long enough" (the decision that scheduled
   * the loop already waited out the interval).
   *
   * @param who the asking loop's token
   * @param now the current time, ms
   * @param minIntervalMillis the minimum interval between two starts
   * @returns 0 to go, else the wait in ms
   */
  admit(who: symbol, now: number, minIntervalMillis: number): number {
    const since = this.sinceLastStart(now);
    const remaining = since === undefined || since < 0 ? 0 : Math.max(0, Math.ceil(minIntervalMillis - since));
    const first = this.#waiting[0];
    if (remaining > 0 || (first !== undefined && first !== who)) {
      if (!this.#waiting.includes(who)) this.#waiting.push(who);
      // Behind another waiting loop: let it go first, then ask again.
      return first !== undefined && first !== who ? Math.max(remaining, minIntervalMillis, 1) : remaining;
    }
    if (first === who) this.#waiting.shift();
    this.#lastStartAt = now;
    return 0;
  }

  /** @param who a loop that stopped: it no longer counts nor waits in line */
  leave(who: symbol): void {
    this.#members.delete(who);
    const i = this.#waiting.indexOf(who);
    if (i >= 0) this.#waiting.splice(i, 1);
  }
}
