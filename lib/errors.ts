/**
 * Typed errors. Every error pg-consul raises is a {@link PgConsulError}: match on the class
 * or on `code`, never on the message.
 *
 * @example
 * ```ts
 * import { PgConsulError } from 'pg-consul';
 * try {
 *   await pool.query('INSERT INTO t VALUES (1)');
 * } catch (err) {
 *   if (err instanceof PgConsulError && err.outcome === 'unknown') {
 *     // the INSERT may or may not have committed: check before repeating it
 *   }
 * }
 * ```
 * @module
 */

/**
 * Whether the statement that failed ran on the server.
 * - `not-executed`: it certainly did not run (safe to repeat);
 * - `unknown`: it may have run and even committed (the connection was lost after sending);
 * - `executed`: the server ran it and answered with an error (a constraint violation…).
 */
export type Outcome = 'not-executed' | 'unknown' | 'executed';

/** Machine-readable codes of pg-consul's own errors. */
export type PgConsulErrorCode =
  | 'PGCONSUL_NO_PRIMARY'
  | 'PGCONSUL_NO_REPLICA'
  | 'PGCONSUL_FAILOVER_TIMEOUT'
  | 'PGCONSUL_OUTCOME_UNKNOWN'
  | 'PGCONSUL_DISCOVERY'
  | 'PGCONSUL_NOT_WRITABLE'
  | 'PGCONSUL_POOL_ENDED'
  | 'PGCONSUL_TRANSACTION_OUTCOME_UNKNOWN'
  | 'PGCONSUL_ROW_COUNT'
  | 'PGCONSUL_CONNECTION_FENCED';

/** Options common to every {@link PgConsulError}. */
export interface PgConsulErrorOptions {
  /** The underlying error (pg's, Node's or Consul's). */
  cause?: unknown;
  /** Whether the failed statement ran. Defaults to `not-executed`. */
  outcome?: Outcome;
  /** Address (`host:port`) of the node involved, if any. */
  node?: string | undefined;
  /** How many attempts were made before giving up. */
  attempts?: number;
  /**
   * Take `code`, `message` and PostgreSQL's error fields from `cause` (when it is pg's or
   * Node's error, not pg-consul's): set by the errors that stand for an underlying failure
   * ({@link FailoverTimeoutError}, {@link OutcomeUnknownError},
   * {@link TransactionOutcomeUnknownError}), so code written for pg.Pool sees the error it
   * handles. @internal
   */
  adoptCause?: boolean;
}

/**
 * The fields of pg's `DatabaseError` (PostgreSQL's ErrorResponse) an error adopts from its
 * cause, besides `code` and `message`.
 */
const DATABASE_ERROR_FIELDS = [
  'severity', 'detail', 'hint', 'position', 'internalPosition', 'internalQuery', 'where',
  'schema', 'table', 'column', 'dataType', 'constraint', 'file', 'line', 'routine',
] as const;

/** The cause an error adopts its identity from: an Error that is not pg-consul's own. */
function adoptable(options: PgConsulErrorOptions): (Error & Record<string, unknown>) | undefined {
  const cause = options.cause;
  if (options.adoptCause !== true || !(cause instanceof Error) || cause instanceof PgConsulError) return undefined;
  return cause as Error & Record<string, unknown>;
}

/**
 * Base class of all pg-consul errors.
 *
 * An error that stands for an underlying failure (a lost connection, a refused connect)
 * keeps that failure's identity, as pg.Pool would have reported it: `code` and `message`
 * are the underlying error's (`'57P01'`, `'ECONNREFUSED'`…), PostgreSQL's fields
 * (`severity`, `detail`, `routine`…) are copied, and `cause` is the error itself.
 * pg-consul's own identity is always in `pgConsulCode` and `pgConsulMessage` (for every
 * other error they equal `code` and `message`). Match on the class or on `pgConsulCode`.
 */
export class PgConsulError extends Error {
  /**
   * When this error stands for an underlying pg or Node error (see the class description),
   * that error's `code` — `undefined` when it has none, as pg's own `Connection terminated
   * unexpectedly` — else {@link pgConsulCode}. Always set: {@link pgConsulCode}.
   */
  readonly code: string | undefined;
  /** pg-consul's stable machine-readable code. */
  readonly pgConsulCode: PgConsulErrorCode;
  /** pg-consul's description (what it tried, for how long, what it means for the outcome). */
  readonly pgConsulMessage: string;
  /** Whether the failed statement ran: see {@link Outcome}. */
  readonly outcome: Outcome;
  /** Address of the node involved, when one was. */
  readonly node: string | undefined;
  /** Attempts made (1 when nothing was retried). */
  readonly attempts: number;
  /** The SQLSTATE of the underlying PostgreSQL error, when there was one. */
  readonly sqlState: string | undefined;
  /** PostgreSQL's `severity` of the underlying server error, when adopted from it. */
  declare readonly severity?: string;
  /** PostgreSQL's `detail` of the underlying server error, when adopted from it. */
  declare readonly detail?: string;
  /** PostgreSQL's `hint` of the underlying server error, when adopted from it. */
  declare readonly hint?: string;
  /** PostgreSQL's `routine` of the underlying server error, when adopted from it. */
  declare readonly routine?: string;

  /** @param message human-readable, never contains secrets */
  constructor(code: PgConsulErrorCode, message: string, options: PgConsulErrorOptions = {}) {
    const underlying = adoptable(options);
    super(underlying?.message ?? message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    const underlyingCode = underlying?.code;
    this.code = underlying === undefined ? code : typeof underlyingCode === 'string' && underlyingCode !== '' ? underlyingCode : undefined;
    this.pgConsulCode = code;
    this.pgConsulMessage = message;
    this.outcome = options.outcome ?? 'not-executed';
    this.node = options.node;
    this.attempts = options.attempts ?? 1;
    const cause = options.cause as { code?: unknown; severity?: unknown } | null | undefined;
    const causeCode = cause?.code;
    this.sqlState =
      typeof causeCode === 'string' && /^[0-9A-Z]{5}$/.test(causeCode) && typeof cause?.severity === 'string'
        ? causeCode
        : undefined;
    if (underlying !== undefined) {
      for (const field of DATABASE_ERROR_FIELDS) {
        if (underlying[field] !== undefined) Object.defineProperty(this, field, { value: underlying[field], enumerable: true });
      }
    }
  }
}

/** No writable primary could be found before `failoverTimeoutMillis` ran out. Nothing ran. */
export class NoPrimaryError extends PgConsulError {
  /** @param message description; @param options see {@link PgConsulErrorOptions} */
  constructor(message: string, options: PgConsulErrorOptions = {}) {
    super('PGCONSUL_NO_PRIMARY', message, { ...options, outcome: 'not-executed' });
  }
}

/** No replica is passing and `readFallback` is `'fail'`. Nothing ran. */
export class NoReplicaError extends PgConsulError {
  /** @param message description; @param options see {@link PgConsulErrorOptions} */
  constructor(message: string, options: PgConsulErrorOptions = {}) {
    super('PGCONSUL_NO_REPLICA', message, { ...options, outcome: 'not-executed' });
  }
}

/**
 * Every attempt failed with an error that means "did not run" until `failoverTimeoutMillis`
 * ran out. `cause` is the first meaningful error seen, and `code` / `message` are its own
 * (`ECONNREFUSED`, `57P03`…, as pg.Pool would have failed); `pgConsulMessage` says how many
 * attempts were made for how long. Nothing ran: safe to repeat later.
 */
export class FailoverTimeoutError extends PgConsulError {
  /** @param message description; @param options see {@link PgConsulErrorOptions} */
  constructor(message: string, options: PgConsulErrorOptions = {}) {
    super('PGCONSUL_FAILOVER_TIMEOUT', message, { ...options, adoptCause: true, outcome: 'not-executed' });
  }
}

/**
 * The connection was lost after the statement was sent to the primary (a failover under
 * way): it may or may not have run and committed. Never retried automatically. `code`,
 * `message` and PostgreSQL's fields are the connection error's (`57P01`, `ECONNRESET`…),
 * which is also `cause`.
 */
export class OutcomeUnknownError extends PgConsulError {
  /** @param message description; @param options see {@link PgConsulErrorOptions} */
  constructor(message: string, options: PgConsulErrorOptions = {}) {
    super('PGCONSUL_OUTCOME_UNKNOWN', message, { ...options, adoptCause: true, outcome: 'unknown' });
  }
}

/**
 * Consul could not be asked or answered something unusable. Emitted as a `discoveryError`
 * event (the last good topology stays in force); thrown only when no topology was ever
 * received before `failoverTimeoutMillis`.
 */
export class DiscoveryError extends PgConsulError {
  /** HTTP status Consul answered with, if it answered. */
  readonly status: number | undefined;
  /** @param message description; @param options see {@link PgConsulErrorOptions} plus `status` */
  constructor(message: string, options: PgConsulErrorOptions & { status?: number } = {}) {
    super('PGCONSUL_DISCOVERY', message, { ...options, outcome: 'not-executed' });
    this.status = options.status;
  }
}

/**
 * A node Consul lists as primary is in recovery (read-only): its role check failed, or it
 * rejected a write with `25006`. The node is skipped until the topology changes.
 */
export class NotWritableError extends PgConsulError {
  /** @param message description; @param options see {@link PgConsulErrorOptions} */
  constructor(message: string, options: PgConsulErrorOptions = {}) {
    super('PGCONSUL_NOT_WRITABLE', message, { ...options, outcome: 'not-executed' });
  }
}

/**
 * The connection was closed by pg-consul because its node was fenced: it left its role
 * (gone from discovery, failing its checks, demoted) or stopped answering pg-consul's
 * dead-peer probe. Every socket to a fenced node is destroyed at once, in use or not, so no
 * caller waits on a server that vanished without a packet.
 *
 * `sent` tells whether the statement had been handed to the connection: a statement on a
 * client that was already fenced (`sent: false`, outcome `not-executed`) certainly did not
 * run; one in flight (`sent: true`, outcome `unknown`) may have. Always `retryable`: the
 * work can be repeated on the node that replaces it — after checking, when the outcome is
 * unknown. `pool.query` retries `not-executed` statements and reads by itself; a write in
 * flight surfaces as {@link OutcomeUnknownError} with this error as its `cause`.
 *
 * @example
 * ```ts
 * const client = await pool.connect();
 * try {
 *   await client.query('UPDATE accounts SET n = n + 1 WHERE id = 1');
 * } catch (err) {
 *   if (err instanceof ConnectionFencedError) client.release(err); // then retry the unit of work
 * }
 * ```
 */
export class ConnectionFencedError extends PgConsulError {
  /** Whether the statement had been handed to the connection (then it may have run). */
  readonly sent: boolean;
  /** Always true: the work may be repeated on the node that replaces the fenced one. */
  readonly retryable = true;
  /** Why the node was fenced (e.g. `left its primary role`, `dead-peer probe failed: ETIMEDOUT`). */
  readonly reason: string;

  /**
   * @param node address (`host:port`) of the fenced node
   * @param reason why it was fenced (secret-free)
   * @param sent whether the statement had been handed to the connection
   */
  constructor(node: string, reason: string, sent: boolean) {
    super(
      'PGCONSUL_CONNECTION_FENCED',
      `connection to ${node} was closed by pg-consul: the node was fenced (${reason})${sent ? '; a statement in flight may or may not have run' : ''}`,
      { node, outcome: sent ? 'unknown' : 'not-executed' },
    );
    this.sent = sent;
    this.reason = reason;
  }
}

/** The pool was ended (`end()` was called). Nothing ran. */
export class PoolEndedError extends PgConsulError {
  /** @param message description */
  constructor(message = 'Cannot use a pool after calling end on the pool') {
    super('PGCONSUL_POOL_ENDED', message, { outcome: 'not-executed' });
  }
}

/**
 * What a query helper expected of a statement's rows: `one` exactly one, `maybeOne` zero or
 * one, `many` one or more, `value` exactly one row (whose first column is returned).
 */
export type RowCountExpectation = 'one' | 'maybeOne' | 'many' | 'value';

const ROW_COUNT_WANTED: Readonly<Record<RowCountExpectation, string>> = {
  one: 'exactly one row',
  maybeOne: 'at most one row',
  many: 'at least one row',
  value: 'exactly one row (for a single value)',
};

/**
 * A query helper (`one`, `maybeOne`, `many`, `value`) got a number of rows it does not
 * accept. The statement ran (outcome `executed`): inside a transaction it is an error of the
 * callback like any other (the transaction rolls back and nothing is replayed). The message
 * never contains the statement or its values.
 *
 * @example
 * ```ts
 * import { RowCountError } from 'pg-consul';
 * try {
 *   await pool.one<{ id: number }>('SELECT id FROM users WHERE email = $1', [email]);
 * } catch (err) {
 *   if (err instanceof RowCountError && err.rowCount === 0) return undefined; // not found
 *   throw err;
 * }
 * ```
 */
export class RowCountError extends PgConsulError {
  /** Which helper raised it, i.e. what it expected. */
  readonly expected: RowCountExpectation;
  /** How many rows the statement returned. */
  readonly rowCount: number;

  /**
   * @param expected which helper raised it
   * @param rowCount the number of rows the statement returned
   * @param options see {@link PgConsulErrorOptions} (the outcome is always `executed`)
   */
  constructor(expected: RowCountExpectation, rowCount: number, options: PgConsulErrorOptions = {}) {
    super('PGCONSUL_ROW_COUNT', `${expected}(): expected ${ROW_COUNT_WANTED[expected]}, got ${rowCount}`, {
      ...options,
      outcome: 'executed',
    });
    this.expected = expected;
    this.rowCount = rowCount;
  }
}

/**
 * The connection to the server was lost while a transaction's `COMMIT` was in flight (a
 * failover under way, the backend terminated): the transaction may or may not have
 * committed. `pool.transaction()` never replays in this case; check whether the changes are
 * there (e.g. by a unique key) before running it again. `cause` is the connection error,
 * whose `code`, `message` and PostgreSQL fields this error carries.
 *
 * @example
 * ```ts
 * import { TransactionOutcomeUnknownError } from 'pg-consul';
 * try {
 *   await pool.transaction(async (tx) => { await tx.query('INSERT INTO orders(id) VALUES ($1)', [id]); });
 * } catch (err) {
 *   if (err instanceof TransactionOutcomeUnknownError) {
 *     const done = await pool.maybeOne('SELECT 1 FROM orders WHERE id = $1', [id]);
 *     // …
 *   }
 * }
 * ```
 */
export class TransactionOutcomeUnknownError extends PgConsulError {
  /** @param message description; @param options see {@link PgConsulErrorOptions} (outcome is always `unknown`) */
  constructor(message: string, options: PgConsulErrorOptions = {}) {
    super('PGCONSUL_TRANSACTION_OUTCOME_UNKNOWN', message, { ...options, adoptCause: true, outcome: 'unknown' });
  }
}

/**
 * `e` itself when it is an Error, else an Error whose message is `String(e)` (for values
 * thrown by callers that are not Errors). Internal helper.
 *
 * @param e anything thrown
 */
export function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** Errors raised by the application's own pool hooks (`verify`, `onConnect`). */
const hookErrors = new WeakSet<object>();

/**
 * Records that `err` came from the application's `verify` / `onConnect` hook: as with
 * pg.Pool, it fails the checkout unchanged instead of being retried on another node.
 * @internal
 */
export function markHookError(err: unknown): void {
  if (typeof err === 'object' && err !== null) hookErrors.add(err);
}

/** pg-consul's own codeless connect-phase errors that a retry elsewhere can cure. */
const transientConnectErrors = new WeakSet<object>();

/**
 * Records that `err` (raised by pg-consul while getting a connection, without a code) is
 * transient: the checkout is retried, e.g. on a node pool closed because its node lost its role.
 * @internal
 */
export function markTransientConnectError<E extends object>(err: E): E {
  transientConnectErrors.add(err);
  return err;
}

/** Whether `err` was marked by {@link markTransientConnectError}. @internal */
export function isTransientConnectError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && transientConnectErrors.has(err);
}

/** Whether `err` was raised by an application hook (see {@link markHookError}). @internal */
export function isHookError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && hookErrors.has(err);
}
