/**
 * pg-consul: a drop-in `pg.Pool` that follows a Patroni PostgreSQL cluster's primary and
 * replicas through Consul.
 *
 * @example
 * ```ts
 * import { Pool } from 'pg-consul';
 * const pool = new Pool({ service: 'pglab', user: 'app', database: 'app' });
 * await pool.query('SELECT 1');
 * await pool.end();
 * ```
 * @module
 */
export { Pool, RolePool } from './pool.js';
export type { PoolOptions } from './pool.js';
export type { ConsulOptions } from './options.js';
export type { Logger, LogLevel } from './log.js';
export type { PoolEvents, TopologyEvent, FailoverEvent, RetryEvent, DiscoveryErrorEvent, UnreachableEvent, ReachableEvent } from './events.js';
export type { TopologySnapshot, InvalidatedNode, UnreachableNode } from './topology/snapshot.js';
export type { DiscoveredNode, NodeRole, TopologyUpdate } from './topology/node.js';
export type { ReadFallback } from './topology/select.js';
export type { DiscoverySource, DiscoveryListener } from './discovery/discovery-source.js';
export { DISCOVERY_REQUEST_CHANNEL } from './discovery/request-budget.js';
export type { DiscoveryRequestMessage } from './discovery/request-budget.js';
export { TOPOLOGY_CHANNEL, FAILOVER_CHANNEL, RETRY_CHANNEL, QUERY_CHANNEL } from './diagnostics.js';
export type { TopologyChannelMessage, TopologySummary, FailoverChannelMessage, RetryChannelMessage, QueryChannelMessage } from './diagnostics.js';
export type { IndexProgress, PacingReason } from './discovery/request-pacing.js';
export {
  PgConsulError,
  NoPrimaryError,
  NoReplicaError,
  FailoverTimeoutError,
  OutcomeUnknownError,
  DiscoveryError,
  NotWritableError,
  PoolEndedError,
  ConnectionFencedError,
} from './errors.js';
export type { Outcome, PgConsulErrorCode, PgConsulErrorOptions } from './errors.js';
export { classify } from './retry/classify.js';
export type { Classification, Phase } from './retry/classify.js';
export { RowCountError, TransactionOutcomeUnknownError } from './errors.js';
export type { RowCountExpectation } from './errors.js';
export type { Queryable, QueryStatement } from './query/helpers.js';
export type { TransactionClient, TransactionOptions, IsolationLevel } from './query/transaction.js';
// Read routing: replica lag limit, read-your-writes sessions, auto read routing.
export type { MaxReplicaLagOptions } from './options.js';
export type { LagEvent } from './events.js';
export type { ReplicaLag } from './topology/snapshot.js';
export type { LagLimit } from './routing/lag.js';
export { Session, SessionReplica } from './routing/session.js';
export { isReadOnlyStatement, readOnlyVerdict } from './query/read-only.js';
export { encodeSessionToken, decodeSessionToken } from './routing/session-token.js';
// Discovery modes: Consul health (default), Patroni's leader lock in KV, prepared queries, static hosts.
export type { DiscoveryMode, PatroniOptions, PreparedQueryOptions, HostProbeOptions } from './options.js';
export type { PatroniMemberInfo, PatroniWalPositions } from './topology/node.js';
// pg-boss's `db` adapter.
export { pgBossDb } from './adapters/pg-boss.js';
export type { PgBossDb, SqlQueryable, SqlResult } from './adapters/pg-boss.js';
