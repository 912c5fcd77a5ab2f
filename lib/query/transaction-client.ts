/**
 * The client a `transaction()` callback receives ({@link TransactionClient}) and the state of
 * one attempt on its checked-out connection ({@link AttemptState}): which statements failed,
 * whether the connection was lost, savepoint names.
 *
 * @example
 * ```ts
 * const state = new AttemptState(client, 1);
 * const tx = openTransactionClient(state, 0);
 * await tx.query('SELECT 1');
 * closeTransactionClient(tx);
 * ```
 * @module
 */
import type pg from 'pg';
import { connectionLost } from '../pooling/node-pool.js';
import { QueryHelpers } from './helpers.js';

/** Creates transaction clients (their constructor is private: only this module makes them). */
let newTransactionClient: (state: AttemptState, depth: number) => TransactionClient;

/** Transaction clients whose transaction (or savepoint) is over. */
const closedClients = new WeakSet<TransactionClient>();

/** The state of one attempt: its connection, and what went wrong on it. */
export class AttemptState {
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
 * (`one`, `maybeOne`, `many`, `any`, `value`, through its `query`) and nested `transaction()`
 * (a savepoint), all on the transaction's connection. Nothing inside is retried statement by statement: the
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
export class TransactionClient extends QueryHelpers {
  readonly #state: AttemptState;
  readonly #depth: number;

  static {
    newTransactionClient = (state, depth) => new TransactionClient(state, depth);
  }

  private constructor(state: AttemptState, depth: number) {
    super();
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

/**
 * A transaction client on an attempt's connection, open until {@link closeTransactionClient}.
 *
 * @param state the attempt
 * @param depth 0 for the transaction itself, 1 for a savepoint in it, …
 */
export function openTransactionClient(state: AttemptState, depth: number): TransactionClient {
  return newTransactionClient(state, depth);
}

/**
 * Ends a transaction client: its callback settled, every method rejects from now on.
 *
 * @param tx the client
 */
export function closeTransactionClient(tx: TransactionClient): void {
  closedClients.add(tx);
}
