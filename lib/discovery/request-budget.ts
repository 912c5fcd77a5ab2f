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
 * the minimum interval.
 *
 * @example
 * ```ts
 * const budget = new RequestBudget();
 * budget.markStart(Date.now());
 * budget.sinceLastStart(Date.now() + 40); // 40
 * ```
 */
export class RequestBudget {
  /** Process-unique id, reported as `budgetId` on the diagnostics channel. */
  readonly id: number = nextBudgetId++;
  #lastStartAt: number | undefined;

  /**
   * @param now the current time, ms
   * @returns ms since the last start, `undefined` when there was none
   */
  sinceLastStart(now: number): number | undefined {
    return this.#lastStartAt === undefined ? undefined : now - this.#lastStartAt;
  }

  /** @param now the time a request starts, ms */
  markStart(now: number): void {
    this.#lastStartAt = now;
  }
}
