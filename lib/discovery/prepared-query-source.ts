/**
 * The prepared-query discovery source: `GET /v1/query/<name>/execute`, re-executed on an
 * interval (prepared queries cannot block) and at once on `refresh()`.
 *
 * @module
 */
import { DiscoveryError } from '../errors.js';
import { parseHealthEntries } from './consul-entries.js';
import { consulGet } from './consul-http.js';
import { WatchLoopSource } from './watch-loop-source.js';
import type { ConsulTransport, ConsulWatchSettings, Interpretation } from './consul-watch-loop.js';

/** The `source` label of every update this source emits. */
export const PREPARED_QUERY_SOURCE = 'prepared-query';

/** Options of {@link PreparedQuerySource}. */
export interface PreparedQuerySourceOptions extends Omit<ConsulWatchSettings, 'waitSeconds'> {
  /** Name or ID of the prepared query. */
  readonly name: string;
  /** Time between an answer and the next execution, ms. */
  readonly intervalMillis: number;
  /** Tags marking the primary (case-insensitive). */
  readonly primaryTags: readonly string[];
  /** Tags marking replicas (case-insensitive). */
  readonly replicaTags: readonly string[];
  /** Sent as `?near=` (e.g. `_agent`): overrides the query's own `Near` sort. */
  readonly near?: string | undefined;
}

/**
 * Reads the body of `GET /v1/query/<name>/execute` (pure): its `Nodes` are health entries.
 *
 * @param body parsed JSON body
 * @param tags which tags make a node primary / replica
 * @param index the answer's `X-Consul-Index` (0 when none)
 * @returns the update (nodes in Consul's order) and skip reasons
 * @throws DiscoveryError when the body is not an object with a `Nodes` array
 *
 * @example
 * ```ts
 * interpretPreparedQuery({ Service: 'pglab', Nodes: [entry], Datacenter: 'dc1', Failovers: 0 }, tags, 42);
 * ```
 */
export function interpretPreparedQuery(
  body: unknown,
  tags: { readonly primary: readonly string[]; readonly replica: readonly string[] },
  index: number,
): Interpretation {
  const nodes = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>)['Nodes'] : undefined;
  if (!Array.isArray(nodes)) throw new DiscoveryError('malformed prepared query response: expected an object with a Nodes array');
  const parsed = parseHealthEntries(nodes, tags);
  return { update: { source: PREPARED_QUERY_SOURCE, index, nodes: parsed.nodes }, skipped: parsed.skipped };
}

/**
 * Follows a Consul prepared query by executing it every `intervalMillis` (one request in
 * flight; the shared {@link ConsulWatchLoop} in polling mode: rate limit, backoff after
 * failures). `refresh()` — which the pool calls when a connection fails — executes it as
 * soon as `minIntervalMillis` allows. Roles come from the returned nodes' tags, exactly as
 * with the health endpoint.
 *
 * Consul does the rest server-side: only healthy instances are returned (the query's
 * `OnlyPassing` decides whether `warning` counts), `Near` sorts them, and when no local
 * instance is healthy the query's `Failover` (`NearestN`, `Datacenters`) answers from
 * another datacenter — the pool then simply connects to those nodes.
 *
 * @example
 * ```ts
 * const source = new PreparedQuerySource({
 *   consul, name: 'pglab-geo', intervalMillis: 1_000, primaryTags: ['leader'], replicaTags: ['follower'],
 *   requestTimeoutMillis: 5_000, minIntervalMillis: 100, backoff: { initialMillis: 50, maxMillis: 5_000 },
 * });
 * ```
 */
export class PreparedQuerySource extends WatchLoopSource {
  /**
   * @param options see {@link PreparedQuerySourceOptions}; validated here
   * @param transport the HTTP transport (tests inject a fake); it must honour `signal`
   * @throws TypeError / RangeError on invalid options
   */
  constructor(options: PreparedQuerySourceOptions, transport: ConsulTransport = consulGet) {
    if (typeof options.name !== 'string' || options.name.length === 0) {
      throw new TypeError('PreparedQuerySource: name must be a non-empty string');
    }
    if (!Number.isFinite(options.intervalMillis) || options.intervalMillis < 1) {
      throw new RangeError(`PreparedQuerySource: intervalMillis must be a number ≥ 1, got ${options.intervalMillis}`);
    }
    const settings: ConsulWatchSettings = { ...options, waitSeconds: 1 };
    const tags = { primary: options.primaryTags, replica: options.replicaTags };
    super(
      'PreparedQuerySource',
      settings,
      {
        mode: 'polling',
        pollIntervalMillis: options.intervalMillis,
        path: `/v1/query/${encodeURIComponent(options.name)}/execute`,
        query: options.near === undefined ? {} : { near: options.near },
        what: 'prepared query discovery',
        entryLabel: 'prepared query entry',
        failureLabel: `execution of prepared query "${options.name}"`,
        logFields: { source: PREPARED_QUERY_SOURCE, query: options.name },
        interpret: (res, index) => interpretPreparedQuery(res.body, tags, index),
      },
      transport,
    );
  }
}
