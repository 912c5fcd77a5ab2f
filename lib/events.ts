import type pg from 'pg';
import type { DiscoveredNode } from './topology/node.js';
import type { TopologySnapshot } from './topology/snapshot.js';
import type { Outcome } from './errors.js';

/**
 * Payload of the `topology` event: fired only when the snapshot changed in a way that
 * affects routing (a new primary, a replica came or went, a node was invalidated, a replica
 * was excluded from or readmitted to reads for lag…), never for a Consul index bump or new
 * lag numbers alone (see `lag`).
 */
export interface TopologyEvent {
  /** The snapshot before the change. */
  readonly previous: TopologySnapshot;
  /** The snapshot now in force. */
  readonly current: TopologySnapshot;
}

/**
 * Payload of the `failover` event: fired when the first connection to a new primary passed
 * its role check (writes can flow again).
 */
export interface FailoverEvent {
  /** The primary writes went to before (undefined if none was ever confirmed). */
  readonly from: DiscoveredNode | undefined;
  /** The new, confirmed writable primary. */
  readonly to: DiscoveredNode;
  /**
   * Milliseconds from the first sign of trouble (first failed attempt on the old primary, or
   * the topology change that removed it, whichever came first) to the confirmation.
   */
  readonly durationMillis: number;
  /** Milliseconds from the topology change that named the new primary to the confirmation. */
  readonly sinceTopologyChangeMillis: number;
}

/** Payload of the `retry` event: an attempt failed in a way that is safe to repeat. */
export interface RetryEvent {
  /** The path: `primary` (writes, `pool.query`) or `replica` (`pool.replica`). */
  readonly role: 'primary' | 'replica';
  /** 1 for the first failed attempt. */
  readonly attempt: number;
  /** The longest the next attempt waits (it starts earlier if the topology changes). */
  readonly delayMillis: number;
  /** Address of the node that failed, when one was tried. */
  readonly node: string | undefined;
  /** The error of this attempt. */
  readonly error: Error;
  /** Whether the failed attempt ran: `not-executed`, or `unknown` on a replica. */
  readonly outcome: Outcome;
}

/**
 * Payload of the `lag` event: fired after every lag-monitor round that changed the numbers of
 * `topology.lag` (only when `maxReplicaLag` is set; about once per `lagCheckIntervalMillis`),
 * or, when Patroni's member keys measure the lag (Patroni modes, byte limit only), after
 * every Patroni KV answer (a few per Patroni `loop_wait` while WAL moves). When it also
 * changes which replicas are excluded from reads, `topology` fires too.
 *
 * @example
 * ```ts
 * pool.on('lag', ({ current }) => {
 *   for (const [address, lag] of current.lag) metrics.gauge('replica_lag_bytes', lag.bytes ?? -1, { address });
 * });
 * ```
 */
export interface LagEvent {
  /** The snapshot before the round. */
  readonly previous: TopologySnapshot;
  /** The snapshot with the new lag numbers (`current.lag`). */
  readonly current: TopologySnapshot;
}

/** Payload of the `discoveryError` event: a discovery round failed; the last topology stays. */
export interface DiscoveryErrorEvent {
  /** What went wrong (never contains the Consul token). */
  readonly error: Error;
  /** Consecutive failed rounds, 1 for the first. */
  readonly attempt: number;
  /** When the next round starts. */
  readonly retryInMillis: number;
}

/**
 * Payload of the `unreachable` event: a statement hung on a node that discovery still lists,
 * and the node did not answer pg-consul's dead-peer probe (a fresh TCP connection and an
 * SSLRequest, `deadPeerTimeoutMillis` each, twice). The node is skipped by routing and every
 * socket to it was destroyed; it is probed again until it answers (`reachable`) or leaves
 * the discovery answer.
 */
export interface UnreachableEvent {
  /** The node. */
  readonly node: DiscoveredNode;
  /** The probe's secret-free reason (`no answer within 1000 ms`, `ECONNREFUSED`…). */
  readonly reason: string;
}

/** Payload of the `reachable` event: a node reported `unreachable` answered a probe again; routing to it resumes. */
export interface ReachableEvent {
  /** The node. */
  readonly node: DiscoveredNode;
}

/**
 * Every event a {@link Pool} (and its `primary` / `replica` views) emits, with listener
 * arguments. The first five are pg.Pool's own, with the same meaning.
 *
 * @example
 * ```ts
 * pool.on('failover', ({ from, to, durationMillis }) =>
 *   console.log(`writes moved ${from?.name} → ${to.name} in ${durationMillis} ms`));
 * pool.on('error', (err) => console.error('idle client error', err));
 * ```
 */
export interface PoolEvents {
  /** A new client connected (and, on the primary path, passed its role check). */
  connect: [client: pg.PoolClient];
  /** A client was checked out. */
  acquire: [client: pg.PoolClient];
  /** A client was returned (`err` set when it was released with an error). */
  release: [err: Error | undefined, client: pg.PoolClient];
  /** A client was closed and removed. */
  remove: [client: pg.PoolClient];
  /**
   * An idle client failed (its server went away). Emitted only when a listener exists;
   * otherwise the error is logged (level `warn`) and the process does not crash.
   */
  error: [err: Error, client: pg.PoolClient];
  /** The topology changed. */
  topology: [event: TopologyEvent];
  /** Writes moved to a new confirmed primary. */
  failover: [event: FailoverEvent];
  /** An attempt is being retried. */
  retry: [event: RetryEvent];
  /** A discovery round failed. */
  discoveryError: [event: DiscoveryErrorEvent];
  /** New replica lag numbers: a lag-monitor round or a Patroni KV answer (only with `maxReplicaLag`). */
  lag: [event: LagEvent];
  /** A node discovery still lists did not answer the dead-peer probe: it is fenced and skipped. */
  unreachable: [event: UnreachableEvent];
  /** A node reported `unreachable` answers again. */
  reachable: [event: ReachableEvent];
}
