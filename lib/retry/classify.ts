import {
  ConnectionFencedError,
  FailoverTimeoutError,
  NotWritableError,
  OutcomeUnknownError,
  PoolEndedError,
  TransactionOutcomeUnknownError,
  isHookError,
  isTransientConnectError,
} from '../errors.js';
import type { Outcome } from '../errors.js';

/**
 * When an error happened:
 * - `acquire`: while getting a connection (connect, authentication, role check): nothing
 *   was sent;
 * - `query`: after the statement was handed to the connection.
 */
export type Phase = 'acquire' | 'query';

/** What to do about an error, decided once, before any retry. */
export interface Classification {
  /** Whether the statement ran (see {@link Outcome}). */
  readonly outcome: Outcome;
  /**
   * Whether running it again on another (or the same, recovered) node is allowed and useful.
   * Statements with outcome `unknown` are retryable only on a replica (nothing there writes).
   */
  readonly retryable: boolean;
  /** The node refused writes: stop sending writes to it until the topology changes. */
  readonly invalidatesNode: boolean;
  /** The node looked unreachable or is shutting down: ask discovery for a fresh answer. */
  readonly refreshTopology: boolean;
}

/**
 * SQLSTATEs that mean "the server did not run it, try again elsewhere or later":
 * 57P03 cannot_connect_now (starting up / shutting down / in recovery), 53300
 * too_many_connections, 53400 configuration_limit_exceeded, 25006
 * read_only_sql_transaction (a standby rejected a write before running it), 40001
 * serialization_failure and 40P01 deadlock_detected (rolled back whole).
 */
export const NOT_EXECUTED_RETRYABLE_SQLSTATES: ReadonlySet<string> = new Set([
  '57P03',
  '53300',
  '53400',
  '25006',
  '40001',
  '40P01',
]);

/**
 * SQLSTATEs raised when the server shuts down or terminates the session (57P01
 * admin_shutdown, 57P02 crash_shutdown, 57P05 idle_session_timeout): after send the
 * statement may have committed, so its outcome is unknown; before send (during connect)
 * nothing ran.
 */
export const SHUTDOWN_SQLSTATES: ReadonlySet<string> = new Set(['57P01', '57P02', '57P05']);

/**
 * Messages of pg's and pg-pool's codeless errors for a connection lost or timed out while it
 * was being made (or during the role check): a node going away, worth a retry.
 */
export const CONNECT_LOST_MESSAGES: ReadonlySet<string> = new Set([
  'Connection terminated unexpectedly',
  'Connection terminated',
  'Connection terminated due to connection timeout',
  'timeout expired',
  'Query read timeout',
]);

/**
 * Node.js / pg connection-level error codes (no SQLSTATE): the connection could not be
 * made or was lost. Before send: not executed; after send: unknown.
 */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'ENOENT', // unix socket path missing
]);

/**
 * The SQLSTATE of an error the server sent: five digits/upper-case letters AND a severity
 * (pg parsed an ErrorResponse). Node's own codes can look alike (`EPIPE`), so the code alone
 * is not enough.
 */
export function serverSqlState(err: unknown): string | undefined {
  const e = err as { code?: unknown; severity?: unknown } | null | undefined;
  const code = e?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && typeof e?.severity === 'string' ? code : undefined;
}

/** A Node.js / client-side error code (anything that is not a server SQLSTATE). */
export function nodeCodeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && serverSqlState(err) === undefined ? code : undefined;
}

const NOT_RETRYABLE: Classification = Object.freeze({
  outcome: 'executed',
  retryable: false,
  invalidatesNode: false,
  refreshTopology: false,
});

/**
 * The verdict of pg-consul's own final errors. They carry the underlying code (57P01,
 * ECONNREFUSED…) but are never judged again by it: their retries were made, or the
 * statement must not be replayed.
 */
function fixedVerdict(err: unknown): Classification | undefined {
  if (err instanceof PoolEndedError || err instanceof FailoverTimeoutError) return NOT_RETRYABLE_NOT_EXECUTED;
  if (err instanceof OutcomeUnknownError || err instanceof TransactionOutcomeUnknownError) return FINAL_UNKNOWN;
  return undefined;
}

/**
 * A checkout failure without a SQLSTATE (refused, unreachable, timed out, terminated during
 * connect; or refused by pg-pool or the app's hooks): nothing was sent.
 */
function classifyConnectFailure(err: unknown): Classification {
  // pg-pool's checkout timeout (connectionTimeoutMillis, pool full): the pool is busy, not
  // the node gone; and the app's own verify / onConnect refusals: surfaced as pg.Pool does.
  if (isCheckoutTimeout(err) || isHookError(err)) return NOT_RETRYABLE_NOT_EXECUTED;
  const code = nodeCodeOf(err);
  // pg's own connection-lost errors (connect timeout, terminated during startup) carry no
  // code: they are known by their message. Any other codeless error (TLS or SASL
  // configuration, a custom Client's own failure) and other coded errors (TLS certificate
  // problems…) will not go away by retrying: they fail the checkout unchanged, as in pg.Pool.
  const retryable =
    err instanceof AggregateError ||
    isTransientConnectError(err) ||
    (code === undefined ? err instanceof Error && CONNECT_LOST_MESSAGES.has(err.message) : NETWORK_ERROR_CODES.has(code));
  return { outcome: 'not-executed', retryable, invalidatesNode: false, refreshTopology: retryable };
}

/**
 * Decides, from the error's SQLSTATE or Node error code and the phase it happened in,
 * whether the statement ran and whether to retry. Pure; never looks at message text where a
 * code exists.
 *
 * @param err the error pg (or the role check) raised
 * @param phase when it happened
 * @param role the path the statement was on: on a replica an unknown outcome is retryable
 * @param connectionLost for `query`-phase errors without a SQLSTATE: whether the
 *   connection was closed (then the statement may have run). An error raised while the
 *   connection is intact and without a code is pg refusing bad input before sending: it
 *   passes through. pg's `Query read timeout` has no code and leaves the connection open,
 *   yet the server may have run the statement, so it counts as unknown.
 *
 * @example
 * ```ts
 * classify(Object.assign(new Error(''), { code: 'ECONNREFUSED' }), 'acquire', 'primary');
 * // → { outcome: 'not-executed', retryable: true, invalidatesNode: false, refreshTopology: true }
 * ```
 */
export function classify(
  err: unknown,
  phase: Phase,
  role: 'primary' | 'replica',
  connectionLost = true,
): Classification {
  const fixed = fixedVerdict(err);
  if (fixed !== undefined) return fixed;
  if (err instanceof ConnectionFencedError) {
    // pg-consul closed the connection because its node was fenced: before send nothing ran;
    // in flight, the outcome is unknown (retryable only on the read path).
    if (!err.sent || phase === 'acquire') return { outcome: 'not-executed', retryable: true, invalidatesNode: false, refreshTopology: true };
    return { outcome: 'unknown', retryable: role === 'replica', invalidatesNode: false, refreshTopology: true };
  }
  if (err instanceof NotWritableError) {
    return { outcome: 'not-executed', retryable: true, invalidatesNode: true, refreshTopology: true };
  }
  const state = serverSqlState(err);
  if (state !== undefined) {
    if (state === '25006') {
      // A standby (or a demoted primary) rejected a write before running it. On the primary
      // path the node is stale: skip it and retry elsewhere. On the replica path the caller
      // sent a write to the read pool: every replica would refuse it, so surface it at once.
      if (role === 'replica') return NOT_RETRYABLE_NOT_EXECUTED;
      return { outcome: 'not-executed', retryable: true, invalidatesNode: true, refreshTopology: true };
    }
    if (NOT_EXECUTED_RETRYABLE_SQLSTATES.has(state)) {
      return { outcome: 'not-executed', retryable: true, invalidatesNode: false, refreshTopology: state === '57P03' };
    }
    if (SHUTDOWN_SQLSTATES.has(state)) {
      if (phase === 'acquire') {
        return { outcome: 'not-executed', retryable: true, invalidatesNode: false, refreshTopology: true };
      }
      return { outcome: 'unknown', retryable: role === 'replica', invalidatesNode: false, refreshTopology: true };
    }
    if (phase === 'acquire') {
      // Authentication, missing database, bad options: retrying elsewhere will not help.
      return { outcome: 'not-executed', retryable: false, invalidatesNode: false, refreshTopology: false };
    }
    // The server ran the statement and answered with an error (constraint, syntax, …).
    return NOT_RETRYABLE;
  }
  if (phase === 'acquire') return classifyConnectFailure(err);
  const code = nodeCodeOf(err);
  const lost = connectionLost || (code !== undefined && NETWORK_ERROR_CODES.has(code)) || isQueryReadTimeout(err);
  if (!lost) return NOT_RETRYABLE_NOT_EXECUTED;
  // After send, a lost connection leaves the outcome unknown.
  return { outcome: 'unknown', retryable: role === 'replica', invalidatesNode: false, refreshTopology: true };
}

const FINAL_UNKNOWN: Classification = Object.freeze({
  outcome: 'unknown',
  retryable: false,
  invalidatesNode: false,
  refreshTopology: false,
});

const NOT_RETRYABLE_NOT_EXECUTED: Classification = Object.freeze({
  outcome: 'not-executed',
  retryable: false,
  invalidatesNode: false,
  refreshTopology: false,
});


/** pg-pool's error for a checkout that waited `connectionTimeoutMillis` for a free client (no code). */
export const CHECKOUT_TIMEOUT_MESSAGE = 'timeout exceeded when trying to connect';

function isCheckoutTimeout(err: unknown): boolean {
  return err instanceof Error && (err as { code?: unknown }).code === undefined && err.message === CHECKOUT_TIMEOUT_MESSAGE;
}

/** pg's client-side `query_timeout` error: it has no code, so the message is all there is. */
function isQueryReadTimeout(err: unknown): boolean {
  return err instanceof Error && (err as { code?: unknown }).code === undefined && err.message === 'Query read timeout';
}
