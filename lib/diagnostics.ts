/**
 * The `node:diagnostics_channel` channels pg-consul publishes on (besides
 * `pg-consul:discovery:request`, see `DISCOVERY_REQUEST_CHANNEL`). Every channel is
 * process-wide: all Pools publish on it. A message is built only when the channel has a
 * subscriber, so an unobserved channel costs one boolean check.
 *
 * @example
 * ```ts
 * import diagnostics from 'node:diagnostics_channel';
 * import { FAILOVER_CHANNEL, QUERY_CHANNEL } from 'pg-consul';
 * diagnostics.subscribe(FAILOVER_CHANNEL, (m) => console.log('failover', m));
 * diagnostics.subscribe(QUERY_CHANNEL, (m) => console.log('routed', m));
 * ```
 * @module
 */
import diagnostics from 'node:diagnostics_channel';
import type { FailoverEvent, RetryEvent, TopologyEvent } from './events.js';
import type { DiscoveredNode } from './topology/node.js';
import type { TopologySnapshot } from './topology/snapshot.js';

/** Channel of routing changes: one {@link TopologyChannelMessage} per `topology` event. */
export const TOPOLOGY_CHANNEL = 'pg-consul:topology';
/** Channel of confirmed failovers: the `failover` event's payload ({@link FailoverEvent}). */
export const FAILOVER_CHANNEL = 'pg-consul:failover';
/** Channel of retried attempts: the `retry` event's payload ({@link RetryEvent}). */
export const RETRY_CHANNEL = 'pg-consul:retry';
/** Channel of routed statements: one {@link QueryChannelMessage} per attempt of `pool.query` / `pool.replica.query`. */
export const QUERY_CHANNEL = 'pg-consul:query';

/** What {@link TopologyChannelMessage} says about one snapshot: addresses only (`host:port`). */
export interface TopologySummary {
  /** The snapshot's version (bumped on every routing change). */
  readonly version: number;
  /** Where the snapshot came from (e.g. `consul-health`, `static`). */
  readonly source: string;
  /** Address of the primary, if any. */
  readonly primary: string | undefined;
  /** Addresses of the replicas. */
  readonly replicas: readonly string[];
  /** Addresses of the replicas reads may use (lag limit applied). */
  readonly readReplicas: readonly string[];
  /** Addresses of nodes fenced as unreachable. */
  readonly unreachable: readonly string[];
}

/** A message on {@link TOPOLOGY_CHANNEL}: the routing before and after a change. */
export interface TopologyChannelMessage {
  /** The snapshot before the change. */
  readonly previous: TopologySummary;
  /** The snapshot now in force. */
  readonly current: TopologySummary;
}

/** A message on {@link FAILOVER_CHANNEL}: the same object the `failover` event carries. */
export type FailoverChannelMessage = FailoverEvent;

/** A message on {@link RETRY_CHANNEL}: the same object the `retry` event carries. */
export type RetryChannelMessage = RetryEvent;

/** A message on {@link QUERY_CHANNEL}: where one attempt of a statement was routed. */
export interface QueryChannelMessage {
  /** The path the statement took: `primary` (`pool.query`) or `replica` (`pool.replica.query`). */
  readonly intent: 'primary' | 'replica';
  /** The role of the node pool it runs on (a replica read can fall back to the primary). */
  readonly role: 'primary' | 'replica';
  /** The node's address (`host:port`). */
  readonly node: string;
  /** The node's name (Consul node or Patroni member). */
  readonly name: string;
  /** 1 for the statement's first attempt, 2 for the first retry… */
  readonly attempt: number;
}

const topologyChannel = diagnostics.channel(TOPOLOGY_CHANNEL);
const failoverChannel = diagnostics.channel(FAILOVER_CHANNEL);
const retryChannel = diagnostics.channel(RETRY_CHANNEL);

/** The channel object of {@link QUERY_CHANNEL}; the statement path checks `hasSubscribers` itself. */
export const queryChannel: diagnostics.Channel = diagnostics.channel(QUERY_CHANNEL);

/**
 * Returns the channel summary of a snapshot.
 * @param snapshot the snapshot
 */
export function summarizeTopology(snapshot: TopologySnapshot): TopologySummary {
  return {
    version: snapshot.version,
    source: snapshot.source,
    primary: snapshot.primary?.address,
    replicas: snapshot.replicas.map((n) => n.address),
    readReplicas: snapshot.readReplicas.map((n) => n.address),
    unreachable: [...snapshot.unreachable.keys()],
  };
}

/**
 * Publishes a Pool event on its channel when the event has one and somebody subscribed.
 * @param event the event name
 * @param payload its (first) argument
 */
export function publishEvent(event: string, payload: unknown): void {
  if (event === 'topology') {
    if (!topologyChannel.hasSubscribers) return;
    const { previous, current } = payload as TopologyEvent;
    topologyChannel.publish({ previous: summarizeTopology(previous), current: summarizeTopology(current) } satisfies TopologyChannelMessage);
  } else if (event === 'failover') {
    if (failoverChannel.hasSubscribers) failoverChannel.publish(payload as FailoverChannelMessage);
  } else if (event === 'retry') {
    if (retryChannel.hasSubscribers) retryChannel.publish(payload as RetryChannelMessage);
  }
}

/**
 * Publishes one routed attempt on {@link QUERY_CHANNEL} (callers check `queryChannel.hasSubscribers` first).
 * @param intent the statement's path
 * @param role the role of the node pool
 * @param node the node
 * @param attempt 1 for the statement's first attempt
 */
export function publishQuery(intent: 'primary' | 'replica', role: 'primary' | 'replica', node: DiscoveredNode, attempt: number): void {
  queryChannel.publish({ intent, role, node: node.address, name: node.name, attempt } satisfies QueryChannelMessage);
}
