/**
 * What a failed transaction attempt means (replay, rethrow, outcome unknown) and the error to
 * throw when replays run out: pure functions of the failure's stage and error, over the
 * SQLSTATE / Node error code sets of `retry/classify`.
 *
 * @example
 * ```ts
 * decideTransactionFailure({ stage: 'body', error: lost, fromDatabase: true, connectionLost: true, readOnly: false, role: 'primary' }).action; // 'replay'
 * ```
 * @module
 */
import { FailoverTimeoutError } from '../errors.js';
import type { Outcome } from '../errors.js';
import { NETWORK_ERROR_CODES, NOT_EXECUTED_RETRYABLE_SQLSTATES, SHUTDOWN_SQLSTATES, nodeCodeOf, serverSqlState } from '../retry/classify.js';

/**
 * Where a transaction attempt failed:
 * - `begin`: sending `BEGIN`;
 * - `body`: in the callback (its statements, savepoints, or its own code), or the connection
 *   was found lost before `COMMIT` was sent;
 * - `commit`: `COMMIT` was sent (it may have reached the server).
 */
export type TransactionStage = 'begin' | 'body' | 'commit';

/** The facts {@link decideTransactionFailure} decides on. */
export interface TransactionFailure {
  /** Where it failed. */
  readonly stage: TransactionStage;
  /**
   * The error to judge: the database error behind the failure (a statement's, `BEGIN`'s or
   * `COMMIT`'s — also when the callback wrapped it in its own error) or, when there is none,
   * what the callback threw.
   */
  readonly error: unknown;
  /** Whether `error` was raised by this transaction's connection rather than by the callback's own code. */
  readonly fromDatabase: boolean;
  /** Whether the connection was seen closed or broken during the attempt. */
  readonly connectionLost: boolean;
  /** Whether the transaction is `READ ONLY` (then whether COMMIT happened does not matter). */
  readonly readOnly: boolean;
  /** The path: a `25006` on the primary path stops writes to that node for a while. */
  readonly role: 'primary' | 'replica';
}

/** What to do after a failed attempt. */
export interface TransactionDecision {
  /**
   * - `replay`: the transaction did not commit (or, read-only, it does not matter): run the
   *   whole callback again on a fresh connection;
   * - `rethrow`: roll back and throw the callback's error unchanged;
   * - `outcome-unknown`: COMMIT may have committed: throw TransactionOutcomeUnknownError.
   */
  readonly action: 'replay' | 'rethrow' | 'outcome-unknown';
  /** For `replay`: a failover (connection lost, server shutting down or read-only) or a conflict (40001 / 40P01). */
  readonly reason: 'failover' | 'conflict' | undefined;
  /** Whether the failed transaction committed (see {@link Outcome}). */
  readonly outcome: Outcome;
  /** The node refused writes (25006 on the primary path): skip it until the topology changes. */
  readonly invalidatesNode: boolean;
  /** Ask discovery for a fresh answer. */
  readonly refreshTopology: boolean;
  /** Release the client with an error (destroy it) instead of returning it to the pool. */
  readonly destroyClient: boolean;
}

function decision(
  action: TransactionDecision['action'],
  fields: Partial<Omit<TransactionDecision, 'action'>> = {},
): TransactionDecision {
  return Object.freeze({
    action,
    reason: fields.reason,
    outcome: fields.outcome ?? (action === 'outcome-unknown' ? 'unknown' : action === 'replay' ? 'not-executed' : 'executed'),
    invalidatesNode: fields.invalidatesNode ?? false,
    refreshTopology: fields.refreshTopology ?? false,
    destroyClient: fields.destroyClient ?? false,
  });
}

/**
 * Decides what a failed transaction attempt means. Pure; uses the SQLSTATE / Node error code
 * sets of `retry/classify`, never message text.
 *
 * Before COMMIT was sent (`begin`, `body`) nothing is committed, so any failure of the
 * connection or the server is replayed: a lost connection, a server shutting down or
 * terminating the session (57P01, 57P02, 57P05), not accepting connections (57P03), a
 * read-only node (25006), a serialization failure (40001) or a deadlock (40P01). Other server
 * errors (a constraint violation…) and errors of the callback's own code are rethrown.
 *
 * After COMMIT was sent, only a server *answer* that rejected it (40001 at commit time,
 * 40P01…) is replayed; a lost connection, a shutdown error or any error without a SQLSTATE
 * means the transaction may have committed: `outcome-unknown` — except for a read-only
 * transaction, which changed nothing and is replayed. Another server error (a deferred
 * constraint) rolled the transaction back: rethrown.
 *
 * @param f the facts
 *
 * @example
 * ```ts
 * const lost = Object.assign(new Error('Connection terminated unexpectedly'));
 * decideTransactionFailure({ stage: 'body', error: lost, fromDatabase: true, connectionLost: true, readOnly: false, role: 'primary' }).action; // 'replay'
 * decideTransactionFailure({ stage: 'commit', error: lost, fromDatabase: true, connectionLost: true, readOnly: false, role: 'primary' }).action; // 'outcome-unknown'
 * ```
 */
export function decideTransactionFailure(f: TransactionFailure): TransactionDecision {
  const state = f.fromDatabase ? serverSqlState(f.error) : undefined;
  const code = f.fromDatabase ? nodeCodeOf(f.error) : undefined;
  const networkCode = code !== undefined && NETWORK_ERROR_CODES.has(code);
  const shutdown = state !== undefined && SHUTDOWN_SQLSTATES.has(state);
  const rejected = state !== undefined && NOT_EXECUTED_RETRYABLE_SQLSTATES.has(state);
  const reasonOf = (s: string): 'failover' | 'conflict' => (s.startsWith('40') ? 'conflict' : 'failover');

  if (f.stage === 'commit') {
    if (rejected) {
      return decision('replay', {
        reason: reasonOf(state),
        invalidatesNode: state === '25006' && f.role === 'primary',
        refreshTopology: state === '25006' || state === '57P03',
        destroyClient: f.connectionLost,
      });
    }
    if (state !== undefined && !shutdown) {
      // The server answered COMMIT with an error (a deferred constraint, a trigger): rolled back.
      return decision('rethrow', { destroyClient: f.connectionLost });
    }
    // Lost, shut down, timed out or anything without a SQLSTATE: COMMIT may be durable.
    if (f.readOnly) return decision('replay', { reason: 'failover', outcome: 'unknown', refreshTopology: true, destroyClient: true });
    return decision('outcome-unknown', { refreshTopology: true, destroyClient: true });
  }

  if (f.connectionLost || networkCode || shutdown) {
    return decision('replay', { reason: 'failover', refreshTopology: true, destroyClient: true });
  }
  if (rejected) {
    return decision('replay', {
      reason: reasonOf(state),
      invalidatesNode: state === '25006' && f.role === 'primary',
      refreshTopology: state === '25006' || state === '57P03',
    });
  }
  // A server error about the statement itself, pg refusing bad input, or the callback's own error.
  return decision('rethrow', { outcome: f.fromDatabase ? 'executed' : 'not-executed' });
}

/**
 * The error to throw when replays run out. Pure. Conflicts (40001 / 40P01) surface as the
 * server's last error, unchanged, as with plain pg; failover failures become a
 * {@link FailoverTimeoutError} (outcome `not-executed`: the transaction did not commit) whose
 * cause is the first error.
 *
 * @param reason why the last attempt was to be replayed
 * @param info errors, attempts, node, elapsed time and path
 *
 * @example
 * ```ts
 * giveUpError('failover', { first: lost, last: lost, attempts: 5, node: '10.0.0.1:5432', elapsedMillis: 30000, role: 'primary' });
 * // → FailoverTimeoutError { attempts: 5, cause: lost }
 * ```
 */
export function giveUpError(
  reason: 'failover' | 'conflict',
  info: { first: unknown; last: unknown; attempts: number; node: string | undefined; elapsedMillis: number; role: 'primary' | 'replica' },
): unknown {
  if (reason === 'conflict') return info.last;
  const firstMessage = info.first instanceof Error ? info.first.message : String(info.first);
  return new FailoverTimeoutError(
    `transaction gave up after ${info.attempts} attempts in ${info.elapsedMillis} ms on the ${info.role} path; it did not commit (first error: ${firstMessage})`,
    { cause: info.first, node: info.node, attempts: info.attempts },
  );
}
