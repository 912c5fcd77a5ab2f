/**
 * The Consul discovery source: one blocking-query loop on `/v1/health/service/<service>`.
 *
 * @module
 */
import { parseHealthEntries } from './consul-entries.js';
import { consulGet } from './consul-http.js';
import { WatchLoopSource } from './watch-loop-source.js';
import type { ConsulTransport, ConsulWatchSettings } from './consul-watch-loop.js';

export { MAX_WAIT_SECONDS } from './consul-watch-loop.js';
export type { ConsulTransport, DiscoveryLogger, DiscoveryLogLevel } from './consul-watch-loop.js';

/** The `source` label of every update this source emits. */
export const CONSUL_HEALTH_SOURCE = 'consul-health';

/** Options of {@link ConsulHealthSource}. */
export interface ConsulHealthSourceOptions extends ConsulWatchSettings {
  /** Consul service name (the Patroni scope, normalised). */
  readonly service: string;
  /** Tags marking the primary (case-insensitive), e.g. `['master', 'primary']`. */
  readonly primaryTags: readonly string[];
  /** Tags marking replicas (case-insensitive), e.g. `['replica']`. */
  readonly replicaTags: readonly string[];
  /**
   * Sent as `?near=<node>` (`_agent` = the agent answering): Consul then sorts the entries
   * by estimated round-trip time from that node, nearest first, and the order is kept in the
   * topology. Default: not sent (Consul's own order).
   */
  readonly near?: string | undefined;
}

/**
 * Follows a service's passing instances in Consul with one blocking query at a time:
 * `GET /v1/health/service/<service>?passing&index=<i>&wait=<w>s` (plus `&near=` when set).
 * The loop itself (index rules, rate limit, backoff, refresh, stop) is the shared
 * {@link ConsulWatchLoop}.
 *
 * - The first request (and the first after an error, a refresh or an index reset) uses
 *   index 0 and does not block; later ones block on the last `X-Consul-Index`
 *   (see `nextIndex`: reset to 0 when it goes backwards).
 * - Every successful answer is reported through `listener.onUpdate` (changed or not; the
 *   consumer dedupes); skipped entries through `onSkippedEntry` and a debug log.
 * - A failed round (network error, timeout, non-2xx, non-JSON, body not an array) is reported
 *   through `listener.onError` with the attempt number and the delay before the next try,
 *   computed with `backoffDelay` (full jitter); the source never gives up until `stop()`.
 * - Two requests never start closer than `minIntervalMillis`, whatever Consul does.
 * - Listener and logger exceptions are caught and logged; nothing escapes as an unhandled
 *   rejection. Timers are `unref()`ed, and so is the socket of a parked blocking request: a
 *   started source keeps the process alive only during its short non-blocking requests
 *   (the first one, and those after an error, a reset or a refresh). Code that waits for a
 *   topology must hold its own ref'd timer (its deadline) if the process should wait too.
 *
 * p-retry was considered for the retry loop and not used: `onError` must be told the delay
 * before it starts, `refresh()` must be able to cut a backoff short, and the loop never
 * ends — p-retry computes its delays internally and only cancels by rejecting.
 *
 * @example
 * ```ts
 * const source = new ConsulHealthSource({
 *   consul, service: 'pglab', primaryTags: ['master', 'primary'], replicaTags: ['replica'],
 *   waitSeconds: 30, requestTimeoutMillis: 5_000, minIntervalMillis: 100,
 *   backoff: { initialMillis: 100, maxMillis: 5_000 },
 * });
 * source.start({
 *   onUpdate: (update) => topology.apply(update),
 *   onError: (err, { retryInMillis }) => emit('discoveryError', err, retryInMillis),
 * });
 * // …
 * await source.stop();
 * ```
 */
export class ConsulHealthSource extends WatchLoopSource {
  /**
   * @param options see {@link ConsulHealthSourceOptions}; validated here
   * @param transport the HTTP transport (tests inject a fake); it must honour `signal`
   * @throws TypeError / RangeError on invalid options
   */
  constructor(options: ConsulHealthSourceOptions, transport: ConsulTransport = consulGet) {
    if (typeof options.service !== 'string' || options.service.length === 0) {
      throw new TypeError('ConsulHealthSource: service must be a non-empty string');
    }
    if (options.near !== undefined && (typeof options.near !== 'string' || options.near.length === 0)) {
      throw new TypeError('ConsulHealthSource: near must be a non-empty string when given');
    }
    const tags = { primary: options.primaryTags, replica: options.replicaTags };
    super(
      'ConsulHealthSource',
      options,
      {
        mode: 'blocking',
        path: `/v1/health/service/${encodeURIComponent(options.service)}`,
        query: options.near === undefined ? { passing: true } : { passing: true, near: options.near },
        what: 'Consul health discovery',
        entryLabel: 'Consul health entry',
        failureLabel: `Consul health query for "${options.service}"`,
        logFields: { source: CONSUL_HEALTH_SOURCE, service: options.service },
        interpret: (res, index) => {
          const parsed = parseHealthEntries(res.body, tags);
          return { update: { source: CONSUL_HEALTH_SOURCE, index, nodes: parsed.nodes }, skipped: parsed.skipped };
        },
      },
      transport,
    );
  }
}
