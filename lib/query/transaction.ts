/**
 * Transactions that survive a failover: `BEGIN … COMMIT` around a callback, replayed whole on
 * a fresh connection to the (new) primary when the server lost or rejected the transaction
 * before it could commit, and never replayed once `COMMIT` may have reached the server.
 *
 * The decisions (replay, rethrow, outcome unknown) are pure functions of the failure's stage
 * and error ({@link decideTransactionFailure}); {@link runTransaction} is the short loop that
 * applies them.
 *
 * @example
 * ```ts
 * const id = await pool.transaction(async (tx) => {
 *   const { id } = await tx.one<{ id: number }>('INSERT INTO orders(customer) VALUES ($1) RETURNING id', [42]);
 *   await tx.query('UPDATE customers SET orders = orders + 1 WHERE id = $1', [42]);
 *   return id;
 * }, { isolationLevel: 'serializable' });
 * ```
 * @module
 */
import type pg from 'pg';
import { FailoverTimeoutError, PoolEndedError, TransactionOutcomeUnknownError, asError } from '../errors.js';
import type { Outcome } from '../errors.js';
import { connectionLost } from '../pooling/node-pool.js';
import { NETWORK_ERROR_CODES, NOT_EXECUTED_RETRYABLE_SQLSTATES, SHUTDOWN_SQLSTATES, nodeCodeOf, serverSqlState } from '../retry/classify.js';
import type { FailoverBudget, RetryDeps } from '../retry/run-with-retry.js';
import { formatAddress } from '../topology/node.js';
import { queryAny, queryMany, queryMaybeOne, queryOne, queryValue } from './helpers.js';
import type { Queryable, QueryStatement } from './helpers.js';

/** Isolation levels `transaction()` accepts (PostgreSQL runs `read uncommitted` as `read committed`). */
export type IsolationLevel = 'read committed' | 'repeatable read' | 'serializable';

/**
 * Options of `pool.transaction()`.
 *
 * @example
 * ```ts
 * await pool.transaction(work, { isolationLevel: 'serializable', maxAttempts: 10 });
 * await pool.replica.transaction(report, { readOnly: true, isolationLevel: 'repeatable read' });
 * ```
 */
export interface TransactionOptions {
  /** `BEGIN ISOLATION LEVEL …`; default: the server's `default_transaction_isolation`. */
  isolationLevel?: IsolationLevel;
  /** `READ ONLY` (true) or `READ WRITE` (false); default: the server's. Required (true) on `pool.replica`. */
  readOnly?: boolean;
  /** `DEFERRABLE` (true) or `NOT DEFERRABLE` (false); only matters for serializable read-only transactions. */
  deferrable?: boolean;
  /** Runs of the callback at most, the first included (integer ≥ 1). Default 5. */
  maxAttempts?: number;
}

/** Default of {@link TransactionOptions.maxAttempts}. */
export const DEFAULT_MAX_ATTEMPTS = 5;

/** {@link TransactionOptions} after validation. */
export interface ResolvedTransactionOptions {
  /** See {@link TransactionOptions.isolationLevel}. */
  readonly isolationLevel: IsolationLevel | undefined;
  /** See {@link TransactionOptions.readOnly}. */
  readonly readOnly: boolean | undefined;
  /** See {@link TransactionOptions.deferrable}. */
  readonly deferrable: boolean | undefined;
  /** See {@link TransactionOptions.maxAttempts}; the default filled in. */
  readonly maxAttempts: number;
}

const ISOLATION_LEVELS: ReadonlySet<string> = new Set<IsolationLevel>(['read committed', 'repeatable read', 'serializable']);

function optionalBoolean(options: TransactionOptions, name: 'readOnly' | 'deferrable'): boolean | undefined {
  const v = options[name];
  if (v !== undefined && typeof v !== 'boolean') throw new TypeError(`pg-consul: transaction option "${name}" must be a boolean`);
  return v;
}

/**
 * Validates transaction options and fills in defaults. Pure.
 *
 * @param options what the caller passed (may be undefined)
 * @throws TypeError naming the option when one is invalid
 *
 * @example
 * ```ts
 * resolveTransactionOptions({ isolationLevel: 'serializable' });
 * // → { isolationLevel: 'serializable', readOnly: undefined, deferrable: undefined, maxAttempts: 5 }
 * ```
 */
export function resolveTransactionOptions(options: TransactionOptions | undefined): ResolvedTransactionOptions {
  const o = options ?? {};
  if (typeof o !== 'object' || o === null) throw new TypeError('pg-consul: transaction options must be an object');
  const { isolationLevel, maxAttempts } = o;
  if (isolationLevel !== undefined && !ISOLATION_LEVELS.has(isolationLevel)) {
    throw new TypeError(`pg-consul: transaction option "isolationLevel" must be one of ${[...ISOLATION_LEVELS].map((l) => `'${l}'`).join(', ')}`);
  }
  if (maxAttempts !== undefined && !(Number.isInteger(maxAttempts) && maxAttempts >= 1)) {
    throw new TypeError('pg-consul: transaction option "maxAttempts" must be an integer ≥ 1');
  }
  return Object.freeze({
    isolationLevel,
    readOnly: optionalBoolean(o, 'readOnly'),
    deferrable: optionalBoolean(o, 'deferrable'),
    maxAttempts: maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
  });
}

/**
 * The `BEGIN` statement for resolved options. Pure.
 *
 * @param o validated options
 *
 * @example
 * ```ts
 * beginStatement(resolveTransactionOptions({ isolationLevel: 'serializable', readOnly: true, deferrable: true }));
 * // → 'BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE'
 * ```
 */
export function beginStatement(o: ResolvedTransactionOptions): string {
  const modes: string[] = [];
  if (o.isolationLevel !== undefined) modes.push(`ISOLATION LEVEL ${o.isolationLevel.toUpperCase()}`);
  if (o.readOnly !== undefined) modes.push(o.readOnly ? 'READ ONLY' : 'READ WRITE');
  if (o.deferrable !== undefined) modes.push(o.deferrable ? 'DEFERRABLE' : 'NOT DEFERRABLE');
  return modes.length === 0 ? 'BEGIN' : `BEGIN ${modes.join(', ')}`;
}

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

/** Creates transaction clients (their constructor is private: only this module makes them). */
let newTransactionClient: (state: AttemptState, depth: number) => TransactionClient;

/** Transaction clients whose transaction (or savepoint) is over. */
const closedClients = new WeakSet<TransactionClient>();

/** The state of one attempt: its connection, and what went wrong on it. */
class AttemptState {
  readonly client: pg.PoolClient;
  readonly attempt: number;
  /** Errors raised by this attempt's statements (identity), to tell them from the callback's own. */
  readonly #statementErrors = new WeakSet<object>();
  /** The last error a statement raised. */
  lastStatementError: unknown;
  /** The first error the connection emitted (lost while idle in the transaction, or after an answer). */
  connectionError: unknown;
  #lostByEvent = false;
  #savepoints = 0;

  constructor(client: pg.PoolClient, attempt: number) {
    this.client = client;
    this.attempt = attempt;
  }

  /** Whether the connection ended or failed. */
  get lost(): boolean {
    return this.#lostByEvent || connectionLost(this.client);
  }

  /** Records a connection `error` / `end` event. */
  markLost(err?: unknown): void {
    this.#lostByEvent = true;
    if (err !== undefined) this.connectionError ??= err;
  }

  /** A fresh savepoint name. */
  nextSavepoint(): string {
    return `pgconsul_sp_${++this.#savepoints}`;
  }

  /** Runs a statement on the connection, recording its error. */
  async run(text: unknown, values: unknown): Promise<pg.QueryResult> {
    try {
      return await this.client.query(text as pg.QueryConfig, values as unknown[] | undefined);
    } catch (err) {
      this.lastStatementError = err;
      if (typeof err === 'object' && err !== null) this.#statementErrors.add(err);
      throw err;
    }
  }

  /** The error raised by one of this attempt's statements that `err` is or wraps (via `cause`), if any. */
  statementErrorIn(err: unknown): unknown {
    let e = err;
    for (let depth = 0; depth < 8 && typeof e === 'object' && e !== null; depth++) {
      if (this.#statementErrors.has(e)) return e;
      e = (e as { cause?: unknown }).cause;
    }
    return undefined;
  }

  /** `ROLLBACK TO SAVEPOINT` + `RELEASE`, best effort (a broken connection fails the whole attempt anyway). */
  async rollbackTo(name: string): Promise<void> {
    if (this.lost) return;
    try {
      await this.client.query(`ROLLBACK TO SAVEPOINT ${name}`);
      await this.client.query(`RELEASE SAVEPOINT ${name}`);
    } catch {
      // The connection broke or the transaction is unusable: the outer attempt sees it.
    }
  }
}

/**
 * The client a `transaction()` callback receives: pg's promise `query`, the typed helpers
 * (`one`, `maybeOne`, `many`, `any`, `value`) and nested `transaction()` (a savepoint), all
 * on the transaction's connection. Nothing inside is retried statement by statement: the
 * whole callback is replayed when the transaction fails over (see `pool.transaction`).
 *
 * Use it only inside its callback, one statement or savepoint at a time (await each); after
 * the callback settles every method rejects.
 *
 * @example
 * ```ts
 * await pool.transaction(async (tx) => {
 *   const n = await tx.value<number>('SELECT count(*)::int FROM items WHERE order_id = $1', [7]);
 *   await tx.transaction(async (sp) => { await sp.query('DELETE FROM items WHERE order_id = $1', [7]); });
 *   return n;
 * });
 * ```
 */
export class TransactionClient implements Queryable {
  readonly #state: AttemptState;
  readonly #depth: number;

  static {
    newTransactionClient = (state, depth) => new TransactionClient(state, depth);
  }

  private constructor(state: AttemptState, depth: number) {
    this.#state = state;
    this.#depth = depth;
  }

  /** Which run of the callback this is: 1 the first time, 2 on the first replay, … */
  get attempt(): number {
    return this.#state.attempt;
  }

  /** Savepoint nesting: 0 for the transaction itself, 1 inside `tx.transaction(…)`, … */
  get depth(): number {
    return this.#depth;
  }

  #ensureOpen(): void {
    if (closedClients.has(this)) {
      throw new Error(`pg-consul: this ${this.#depth === 0 ? 'transaction' : 'savepoint'} is over; use its client only inside its callback`);
    }
  }

  /**
   * Runs a statement in the transaction (pg's promise overloads; no callback or Submittable
   * form). Not retried on its own: a failover fails it, and then the whole callback replays.
   *
   * @example
   * ```ts
   * const { rows } = await tx.query<{ id: number }>('SELECT id FROM t WHERE v = $1 FOR UPDATE', ['x']);
   * ```
   */
  query<R extends unknown[] = unknown[], I = unknown[]>(queryConfig: pg.QueryArrayConfig<I>, values?: pg.QueryConfigValues<I>): Promise<pg.QueryArrayResult<R>>;
  query<R extends pg.QueryResultRow = pg.QueryResultRow, I = unknown[]>(queryConfig: pg.QueryConfig<I>): Promise<pg.QueryResult<R>>;
  query<R extends pg.QueryResultRow = pg.QueryResultRow, I = unknown[]>(queryTextOrConfig: string | pg.QueryConfig<I>, values?: pg.QueryConfigValues<I>): Promise<pg.QueryResult<R>>;
  async query(text: unknown, values?: unknown): Promise<unknown> {
    this.#ensureOpen();
    if (typeof values === 'function' || typeof (text as { submit?: unknown } | null)?.submit === 'function') {
      throw new TypeError('pg-consul: transaction clients support the promise form of query only (no callback, no Submittable)');
    }
    return this.#state.run(text, values);
  }

  /**
   * Exactly one row, else RowCountError (`expected: 'one'`).
   * @example
   * ```ts
   * const { id } = await tx.one<{ id: number }>('INSERT INTO t(v) VALUES ($1) RETURNING id', ['x']);
   * ```
   */
  one<T = pg.QueryResultRow>(statement: QueryStatement, values?: unknown[]): Promise<T> {
    return queryOne<T>(this, statement, values);
  }

  /**
   * The row, or `null` when there is none; RowCountError (`expected: 'maybeOne'`) for several.
   * @example
   * ```ts
   * const row = await tx.maybeOne<{ id: number }>('SELECT id FROM t WHERE v = $1', ['x']);
   * ```
   */
  maybeOne<T = pg.QueryResultRow>(statement: QueryStatement, values?: unknown[]): Promise<T | null> {
    return queryMaybeOne<T>(this, statement, values);
  }

  /**
   * One row or more, else RowCountError (`expected: 'many'`).
   * @example
   * ```ts
   * const rows = await tx.many<{ id: number }>('SELECT id FROM t');
   * ```
   */
  many<T = pg.QueryResultRow>(statement: QueryStatement, values?: unknown[]): Promise<T[]> {
    return queryMany<T>(this, statement, values);
  }

  /**
   * All rows (possibly none).
   * @example
   * ```ts
   * const rows = await tx.any<{ id: number }>('SELECT id FROM t WHERE v = $1', ['x']);
   * ```
   */
  any<T = pg.QueryResultRow>(statement: QueryStatement, values?: unknown[]): Promise<T[]> {
    return queryAny<T>(this, statement, values);
  }

  /**
   * The first column of exactly one row, else RowCountError (`expected: 'value'`).
   * @example
   * ```ts
   * const n = await tx.value<number>('SELECT count(*)::int FROM t');
   * ```
   */
  value<V = unknown>(statement: QueryStatement, values?: unknown[]): Promise<V> {
    return queryValue<V>(this, statement, values);
  }

  /**
   * Runs `callback` inside a savepoint: `SAVEPOINT`, then `RELEASE SAVEPOINT` when it
   * resolves, or `ROLLBACK TO SAVEPOINT` when it throws (only the savepoint's changes are
   * undone) and the error is rethrown — catch it to carry on with the outer transaction.
   * A failover inside still replays the whole outer transaction.
   *
   * @param callback receives a client for the savepoint (same methods)
   * @returns what `callback` resolved with
   *
   * @example
   * ```ts
   * await tx.transaction(async (sp) => { await sp.query('INSERT INTO audit(v) VALUES ($1)', ['x']); })
   *   .catch(() => undefined); // the audit row is optional
   * ```
   */
  async transaction<T>(callback: (tx: TransactionClient) => Promise<T>): Promise<T> {
    this.#ensureOpen();
    const state = this.#state;
    const name = state.nextSavepoint();
    await state.run(`SAVEPOINT ${name}`, undefined);
    const inner = newTransactionClient(state, this.#depth + 1);
    let value: T;
    try {
      value = await callback(inner);
    } catch (err) {
      closedClients.add(inner);
      await state.rollbackTo(name);
      throw err;
    }
    closedClients.add(inner);
    try {
      await state.run(`RELEASE SAVEPOINT ${name}`, undefined);
    } catch (err) {
      await state.rollbackTo(name);
      throw err;
    }
    return value;
  }
}

/** What {@link runTransaction} needs from the pool. */
export interface TransactionEnv {
  /** The pool's retry dependencies: clock, backoff, waits, `retry` events, invalidation. */
  readonly deps: RetryDeps;
  /** The path: `primary`, or `replica` for read-only transactions. */
  readonly role: 'primary' | 'replica';
  /**
   * Checks out a client on the path, waiting out a failover by itself within `budget`: no
   * checkout attempt after the first may start later than `budget.since +
   * deps.failoverTimeoutMillis`, and a checkout that has to wait while `budget.since` is
   * unset sets it (to when the checkout started). `pool.acquire(budget)` does this.
   *
   * @param budget the transaction's failover budget, shared by all its checkouts and replays
   */
  acquire(budget: FailoverBudget): Promise<pg.PoolClient>;
}

type AttemptResult<T> =
  | { readonly kind: 'committed'; readonly value: T }
  | { readonly kind: 'failed'; readonly decision: TransactionDecision; readonly thrown: unknown; readonly error: unknown; readonly node: string | undefined };

function addressOf(client: pg.PoolClient): string | undefined {
  const { host, port } = client as unknown as { host?: unknown; port?: unknown };
  return typeof host === 'string' && typeof port === 'number' ? formatAddress(host, port) : undefined;
}

/** Returns the client to the pool, or destroys it. */
function release(client: pg.PoolClient, destroy: boolean, reason: unknown): void {
  client.release(destroy ? asError(reason ?? new Error('pg-consul: transaction connection broke')) : undefined);
}

/**
 * One run: BEGIN, the callback, COMMIT, on one checked-out client; always releases it.
 */
async function runAttempt<T>(
  client: pg.PoolClient,
  attempt: number,
  begin: string,
  readOnly: boolean,
  role: 'primary' | 'replica',
  callback: (tx: TransactionClient) => Promise<T>,
): Promise<AttemptResult<T>> {
  const state = new AttemptState(client, attempt);
  const node = addressOf(client);
  // A checked-out pg client has no `error` listener: without one, a server going away while
  // the callback awaits something else would crash the process.
  const onError = (err: unknown): void => state.markLost(err);
  const onEnd = (): void => state.markLost();
  client.on('error', onError);
  client.on('end', onEnd);
  const finish = (destroy: boolean, reason: unknown): void => {
    client.removeListener('error', onError);
    client.removeListener('end', onEnd);
    release(client, destroy || state.lost, reason ?? state.connectionError);
  };
  const fail = async (stage: TransactionStage, thrown: unknown): Promise<AttemptResult<T>> => {
    const dbError = stage === 'body' ? state.statementErrorIn(thrown) : thrown;
    const fromDatabase = dbError !== undefined || stage !== 'body';
    const error = dbError ?? (state.lost ? (state.connectionError ?? thrown) : thrown);
    const d = decideTransactionFailure({ stage, error, fromDatabase, connectionLost: state.lost, readOnly, role });
    let destroy = d.destroyClient;
    if (stage !== 'commit' && !destroy && !state.lost) {
      try {
        await client.query('ROLLBACK');
      } catch {
        destroy = true;
      }
    }
    finish(destroy, error);
    return { kind: 'failed', decision: d, thrown, error, node };
  };

  try {
    await state.run(begin, undefined);
  } catch (err) {
    return fail('begin', err);
  }
  const tx = newTransactionClient(state, 0);
  let value: T;
  try {
    value = await callback(tx);
  } catch (err) {
    closedClients.add(tx);
    return fail('body', err);
  }
  closedClients.add(tx);
  if (state.lost) {
    // Lost before COMMIT was sent (the callback swallowed the errors): nothing committed.
    return fail('body', state.lastStatementError ?? state.connectionError ?? new Error('pg-consul: the connection was lost before COMMIT'));
  }
  let committed: pg.QueryResult;
  try {
    committed = await client.query('COMMIT');
  } catch (err) {
    return fail('commit', err);
  }
  if (committed.command === 'ROLLBACK') {
    // The transaction was aborted by an error the callback caught: COMMIT rolled it back.
    const cause = state.lastStatementError ?? new Error('pg-consul: the transaction was aborted; COMMIT rolled it back');
    const d = decideTransactionFailure({ stage: 'body', error: cause, fromDatabase: true, connectionLost: false, readOnly, role });
    finish(d.destroyClient, cause);
    return { kind: 'failed', decision: d, thrown: cause, error: cause, node };
  }
  finish(false, undefined);
  return { kind: 'committed', value };
}

/**
 * Runs `callback` in a transaction on a client from `env.acquire()`, replaying the whole
 * callback on a fresh connection while {@link decideTransactionFailure} says `replay`, at
 * most `maxAttempts` runs, waiting the pool's backoff between runs (cut short by a topology
 * change) and emitting a `retry` event for each replay.
 *
 * One {@link FailoverBudget} of `failoverTimeoutMillis` bounds the whole transaction's
 * waiting out of a failover — checkouts, replays and the waits between them together. It
 * starts at the first failure: of a run (when it failed), or of the first checkout (when it
 * started) if no node could be used at once. No replay and no checkout attempt starts after
 * it is spent; one under way is not interrupted. While nothing fails there is no limit: a
 * slow first run that commits is never cut short, and one that fails gets the whole budget
 * from its failure.
 *
 * @param env the pool's side
 * @param callback the transaction's work; it must have no effects outside the database
 * @param options transaction options
 * @returns what `callback` resolved with, once COMMIT succeeded
 * @throws the callback's own error unchanged (after ROLLBACK); a server error unchanged;
 *   TransactionOutcomeUnknownError when the connection was lost during COMMIT;
 *   FailoverTimeoutError (or the last 40001 / 40P01 error) when replays ran out; whatever
 *   `env.acquire()` throws (NoPrimaryError, FailoverTimeoutError, PoolEndedError)
 *
 * @example
 * ```ts
 * await runTransaction({ deps: cluster.retryDeps('primary'), role: 'primary', acquire: (budget) => pool.acquire(budget) },
 *   async (tx) => tx.query('UPDATE t SET v = v + 1'), { isolationLevel: 'serializable' });
 * ```
 */
export async function runTransaction<T>(
  env: TransactionEnv,
  callback: (tx: TransactionClient) => Promise<T>,
  options?: TransactionOptions,
): Promise<T> {
  if (typeof callback !== 'function') throw new TypeError('pg-consul: transaction() needs a callback');
  const settings = resolveTransactionOptions(options);
  const begin = beginStatement(settings);
  const { deps } = env;
  const start = deps.now();
  const budget: FailoverBudget = { since: undefined };
  let firstError: unknown;
  for (let attempt = 1; ; attempt++) {
    if (deps.isEnding()) throw new PoolEndedError();
    const client = await env.acquire(budget);
    const result = await runAttempt(client, attempt, begin, settings.readOnly === true, env.role, callback);
    if (result.kind === 'committed') return result.value;
    const { decision: d, node, error } = result;
    if (d.invalidatesNode && node !== undefined) deps.invalidate(node);
    if (d.refreshTopology) deps.refresh();
    if (d.action === 'rethrow') throw result.thrown;
    if (d.action === 'outcome-unknown') {
      throw new TransactionOutcomeUnknownError(
        `connection to ${node ?? 'the server'} was lost while COMMIT was in flight; the transaction may or may not have committed`,
        { cause: error, node, attempts: attempt },
      );
    }
    firstError ??= error;
    budget.since ??= deps.now();
    const remaining = budget.since + deps.failoverTimeoutMillis - deps.now();
    if (attempt >= settings.maxAttempts || remaining <= 0) {
      throw giveUpError(d.reason ?? 'failover', { first: firstError, last: error, attempts: attempt, node, elapsedMillis: deps.now() - start, role: env.role });
    }
    const delayMillis = Math.min(deps.backoff(attempt), remaining);
    deps.onRetry({ attempt, delayMillis, node, error: asError(error), outcome: d.outcome });
    await deps.waitForChange(delayMillis);
  }
}
