import pg from 'pg';
import type { Cluster } from './cluster.js';
import type { PoolEvents } from './events.js';
import { NoPrimaryError, NoReplicaError, PoolEndedError } from './errors.js';
import { AttemptFailure, runWithRetry } from './retry/run-with-retry.js';
import type { FailoverBudget } from './retry/run-with-retry.js';
import { runStatementWithRetry } from './pooling/statement-attempt.js';
import type { DiscoveredNode } from './topology/node.js';
import { queryAny, queryMany, queryMaybeOne, queryOne, queryValue } from './query/helpers.js';
import type { Queryable, QueryStatement } from './query/helpers.js';
import { runTransaction } from './query/transaction.js';
import type { TransactionClient, TransactionOptions } from './query/transaction.js';
import { isCertainlyReadOnly, runAutoRead } from './routing/read-paths.js';
import { invoke, isSubmittable, settle } from './query/callback-form.js';
import type { Callback } from './query/callback-form.js';

/** pg-pool's constructor writes `ending = false` / `ended = false`; the cluster's state rules. */
function ignoreWrite(): void {}

/** The options pg-pool's own constructor acts on, without connection settings or secrets. */
function lifecycleOptions(options: pg.PoolOptions): pg.PoolConfig {
  const { max, min, maxUses, allowExitOnIdle, maxLifetimeSeconds, idleTimeoutMillis, log, Client, Promise: P } = options as pg.PoolOptions & { Promise?: PromiseConstructorLike };
  return { max, min, maxUses, allowExitOnIdle, maxLifetimeSeconds, idleTimeoutMillis, log, Client, ...(P ? { Promise: P } : {}) } as pg.PoolConfig;
}

/** The members of pg.Pool that pg-consul reports from the shared cluster (as accessors). */
type ClusterReported = 'totalCount' | 'idleCount' | 'waitingCount' | 'expiredCount' | 'ending' | 'ended' | '_clients';

/**
 * The pg.Pool-compatible surface shared by {@link Pool} and its `primary` / `replica` views:
 * `query`, `connect`, `end`, the counters and pg.Pool's events, with every statement routed
 * by intent and retried across failovers. Not exported: use `Pool`, `pool.primary` or
 * `pool.replica`.
 */
export abstract class RoutedPool extends pg.Pool {
  /** The pg options every node pool is created with (defaults filled in like pg.Pool's). */
  override options: pg.PoolOptions;
  /** @internal */
  protected readonly cluster: Cluster;
  /** @internal */
  protected readonly intent: 'primary' | 'replica';
  /**
   * Whether `run` sends certainly-read-only statements to the read path (`autoReadRouting`;
   * set by the Pool only, never on its views).
   * @internal
   */
  protected autoReadRouting = false;

  /**
   * @param cluster the shared state
   * @param intent `primary` for writes, `replica` for reads
   * @param options pg options as reported by `options`
   * @internal
   */
  protected constructor(cluster: Cluster, intent: 'primary' | 'replica', options: pg.PoolOptions) {
    // pg-pool's constructor reads only its lifecycle options here (Client, log, Promise…);
    // connection settings (password, ssl) stay out of it: the node pools get them.
    super(lifecycleOptions(options));
    this.cluster = cluster;
    this.intent = intent;
    this.options = options;
  }

  // pg's typings declare the counters and `ending` / `ended` as data properties; pg-consul
  // reports them from the shared cluster through accessors on this prototype (static block).

  /** Connections open or being opened (idle or checked out) to the nodes of this path. */
  declare readonly totalCount: number;
  /** Idle connections of this path. */
  declare readonly idleCount: number;
  /** Requests waiting for a connection, including those waiting out a failover. */
  declare readonly waitingCount: number;
  /** Connections closed because they reached `maxLifetimeSeconds`. */
  declare readonly expiredCount: number;
  /** Whether `end()` was called. */
  declare readonly ending: boolean;
  /** Whether `end()` finished. */
  declare readonly ended: boolean;

  static {
    // pg-pool's constructor initialises `ending` / `ended` (`this.ending = false`): the setter
    // ignores that write, so no own data property hides the cluster's state.
    const accessor = (read: (pool: RoutedPool) => unknown): PropertyDescriptor => ({
      get(this: RoutedPool) {
        return read(this);
      },
      set: ignoreWrite,
      enumerable: false,
      configurable: true,
    });
    Object.defineProperties(RoutedPool.prototype, {
      totalCount: accessor((p) => p.cluster.count('totalCount', p.#role) + p.#opening),
      idleCount: accessor((p) => p.cluster.count('idleCount', p.#role)),
      waitingCount: accessor((p) => p.cluster.count('waitingCount', p.#role) + Math.max(0, p.cluster.waiters - p.#opening)),
      expiredCount: accessor((p) => p.cluster.count('expiredCount', p.#role)),
      ending: accessor((p) => p.cluster.ending),
      ended: accessor((p) => p.cluster.ended),
      // pg-pool's `_clients` (connecting, idle and checked-out clients), which monitoring code
      // and pg-pool's own tests read: a fresh array of this path's node-pool clients.
      _clients: accessor((p) => p.cluster.clients(p.#role)),
    } satisfies Record<ClusterReported, PropertyDescriptor>);
  }

  /** The role whose node pools the counters sum (all roles for the Pool itself). */
  get #role(): 'primary' | 'replica' | undefined {
    return this.countsAllRoles ? undefined : this.intent;
  }

  /**
   * Statements waiting for discovery's first answer that count as connections being opened,
   * as pg-pool counts a checkout that opens a client: up to `max` per path (the rest wait).
   */
  get #opening(): number {
    const opening = (intent: 'primary' | 'replica'): number => Math.min(this.cluster.undiscovered(intent), this.options.max ?? 10);
    return this.#role ? opening(this.#role) : opening('primary') + opening('replica');
  }

  /** Whether counters cover every node pool (the Pool) or only this path's (the views). @internal */
  protected abstract get countsAllRoles(): boolean;

  /**
   * Runs a statement: on the primary for `pool` and `pool.primary`, on a replica for
   * `pool.replica`. Same overloads as pg.Pool's `query` (promise and callback). Statements
   * that certainly did not run are retried until `failoverTimeoutMillis`; see docs/failures-and-retries.md for
   * exactly which failures are retried. With `autoReadRouting`, `pool.query` (not
   * `pool.primary.query`) sends statements that are certainly read-only to the read path.
   *
   * @example
   * ```ts
   * const { rows } = await pool.replica.query<{ n: number }>('SELECT count(*)::int AS n FROM t');
   * ```
   */
  override query<T extends pg.Submittable>(queryStream: T): T;
  override query<R extends unknown[] = unknown[], I = unknown[]>(queryConfig: pg.QueryArrayConfig<I>, values?: pg.QueryConfigValues<I>): Promise<pg.QueryArrayResult<R>>;
  override query<R extends pg.QueryResultRow = pg.QueryResultRow, I = unknown[]>(queryConfig: pg.QueryConfig<I>): Promise<pg.QueryResult<R>>;
  override query<R extends pg.QueryResultRow = pg.QueryResultRow, I = unknown[]>(queryTextOrConfig: string | pg.QueryConfig<I>, values?: pg.QueryConfigValues<I>): Promise<pg.QueryResult<R>>;
  override query<R extends unknown[] = unknown[], I = unknown[]>(queryConfig: pg.QueryArrayConfig<I>, callback: (err: Error, result: pg.QueryArrayResult<R>) => void): void;
  override query<R extends pg.QueryResultRow = pg.QueryResultRow, I = unknown[]>(queryTextOrConfig: string | pg.QueryConfig<I>, callback: (err: Error, result: pg.QueryResult<R>) => void): void;
  override query<R extends pg.QueryResultRow = pg.QueryResultRow, I = unknown[]>(queryText: string, values: pg.QueryConfigValues<I>, callback: (err: Error, result: pg.QueryResult<R>) => void): void;
  override query(text: unknown, values?: unknown, callback?: unknown): unknown {
    if (typeof text === 'function') {
      // As pg-pool: the function is taken as the callback and receives the error.
      const err = new Error('Passing a function as the first parameter to pool.query is not supported');
      setImmediate(() => invoke(() => (text as Callback<unknown>)(err)));
      return undefined;
    }
    if (typeof values === 'function') {
      callback = values;
      values = undefined;
    }
    if (isSubmittable(text)) return this.#submit(text);
    const promise = this.run(text as string | pg.QueryConfig, values as unknown[] | undefined);
    if (typeof callback === 'function') {
      settle(promise, callback as Callback<pg.QueryResult>);
      return undefined;
    }
    return promise;
  }

  /**
   * Runs one statement with routing and retry. The entry point the query helpers build on.
   * @internal
   */
  run<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | pg.QueryConfig, values?: unknown[]): Promise<pg.QueryResult<R>> {
    if (this.cluster.ending) return Promise.reject(new PoolEndedError());
    if (this.autoReadRouting && isCertainlyReadOnly(typeof text === 'string' ? text : text?.text)) {
      return runAutoRead<R>(this.cluster, text, values);
    }
    return runStatementWithRetry<R>(this.cluster.retryDeps(this.intent), this.intent, this.cluster.nodePools, text, values);
  }

  /** A Submittable (cursor, stream) runs once, on the node selected now: it cannot be retried. */
  #submit<T extends pg.Submittable>(submittable: T): T {
    const { node, role } = this.cluster.select(this.intent);
    if (!node || this.cluster.ending) {
      const err = this.cluster.ending
        ? new PoolEndedError()
        : this.intent === 'primary'
          ? new NoPrimaryError('no writable primary is known right now (a Submittable is not retried)')
          : new NoReplicaError('no replica is available right now (a Submittable is not retried)');
      process.nextTick(() => (submittable as unknown as { handleError?: (e: Error) => void }).handleError?.(err));
      return submittable;
    }
    return this.cluster.nodePool(node, role).pg.query(submittable);
  }

  /**
   * Checks out a client on this path's node (the primary for `pool.connect()`), retrying
   * failed acquisitions across a failover like `query`. Inside the client nothing is retried
   * (pg semantics); release it with `client.release()`, or `client.release(err)` to destroy
   * it. A client whose node lost its role is destroyed on release.
   *
   * @example
   * ```ts
   * const client = await pool.connect();
   * try { await client.query('BEGIN'); … await client.query('COMMIT'); } finally { client.release(); }
   * ```
   */
  override connect(): Promise<pg.PoolClient>;
  override connect(callback: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void): void;
  override connect(callback?: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void): Promise<pg.PoolClient> | void {
    const promise = this.acquire();
    if (!callback) return promise;
    promise.then(
      (client) => invoke(() => callback(undefined, client, (release?: unknown) => client.release(release as boolean | Error | undefined))),
      (err: Error) => invoke(() => callback(err, undefined, () => undefined)),
    );
  }

  /**
   * Acquisition with routing and retry (the promise form of `connect`).
   * @param budget a failover budget shared with other retry loops (a transaction's); without
   *   one the checkout waits out a failover for up to `failoverTimeoutMillis` on its own
   * @internal
   */
  acquire(budget?: FailoverBudget): Promise<pg.PoolClient> {
    if (this.cluster.ending) return Promise.reject(new PoolEndedError());
    return runWithRetry(
      this.cluster.retryDeps(this.intent),
      this.intent,
      async (node: DiscoveredNode, role) => {
        try {
          return await this.cluster.nodePool(node, role).checkout();
        } catch (err) {
          throw new AttemptFailure(err, 'acquire');
        }
      },
      budget,
    );
  }

  /** Ends the pool. See {@link Pool.end}. */
  abstract override end(): Promise<void>;
  abstract override end(callback: () => void): void;

  /**
   * Adds a listener; typed for pg-consul's events and pg.Pool's.
   * @param event event name (see {@link PoolEvents})
   * @param listener its listener
   */
  override on<K extends keyof PoolEvents>(event: K, listener: (...args: PoolEvents[K]) => void): this;
  override on<E extends string | symbol>(event: Exclude<E, keyof PoolEvents>, listener: (...args: any[]) => void): this; // eslint-disable-line @typescript-eslint/no-explicit-any
  override on(event: string | symbol, listener: (...args: any[]) => void): this { // eslint-disable-line @typescript-eslint/no-explicit-any
    return super.on(event as 'error', listener);
  }

  /**
   * Adds a one-time listener; typed for pg-consul's events and pg.Pool's.
   * @param event event name (see {@link PoolEvents})
   * @param listener its listener
   */
  override once<K extends keyof PoolEvents>(event: K, listener: (...args: PoolEvents[K]) => void): this;
  override once<E extends string | symbol>(event: Exclude<E, keyof PoolEvents>, listener: (...args: any[]) => void): this; // eslint-disable-line @typescript-eslint/no-explicit-any
  override once(event: string | symbol, listener: (...args: any[]) => void): this { // eslint-disable-line @typescript-eslint/no-explicit-any
    return super.once(event as 'error', listener);
  }

  // ---------------------------------------------------------------------------------------
  // Typed query helpers and transactions (issue 4). Built on `run` (same routing and retry as
  // `query`) and `acquire` (checkout that waits out a failover); logic in lib/query/.
  // ---------------------------------------------------------------------------------------

  /** `run` as the minimal interface the helpers take. */
  get #queryable(): Queryable {
    return { query: (text, values) => this.run(text, values) };
  }

  /**
   * Runs a statement that must return exactly one row, and resolves with it. Same inputs,
   * routing and retry as `query` (`pool.replica.one(…)` reads from a replica).
   *
   * @param statement SQL text or a pg QueryConfig
   * @param values parameter values
   * @throws RowCountError (`expected: 'one'`, `rowCount`) when it returned 0 or several rows
   *
   * @example
   * ```ts
   * const user = await pool.one<{ id: number; email: string }>('SELECT id, email FROM users WHERE id = $1', [1]);
   * user.email; // string
   * ```
   */
  one<T = pg.QueryResultRow>(statement: QueryStatement, values?: unknown[]): Promise<T> {
    return queryOne<T>(this.#queryable, statement, values);
  }

  /**
   * Runs a statement that returns zero or one row; resolves with the row or `null`.
   *
   * @param statement SQL text or a pg QueryConfig
   * @param values parameter values
   * @throws RowCountError (`expected: 'maybeOne'`, `rowCount`) when it returned several rows
   *
   * @example
   * ```ts
   * const user = await pool.replica.maybeOne<{ id: number }>('SELECT id FROM users WHERE email = $1', [email]);
   * if (user === null) return notFound();
   * ```
   */
  maybeOne<T = pg.QueryResultRow>(statement: QueryStatement, values?: unknown[]): Promise<T | null> {
    return queryMaybeOne<T>(this.#queryable, statement, values);
  }

  /**
   * Runs a statement that must return at least one row; resolves with the rows.
   *
   * @param statement SQL text or a pg QueryConfig
   * @param values parameter values
   * @throws RowCountError (`expected: 'many'`, `rowCount: 0`) when it returned no row
   *
   * @example
   * ```ts
   * const lines = await pool.many<{ sku: string; qty: number }>('SELECT sku, qty FROM lines WHERE order_id = $1', [7]);
   * ```
   */
  many<T = pg.QueryResultRow>(statement: QueryStatement, values?: unknown[]): Promise<T[]> {
    return queryMany<T>(this.#queryable, statement, values);
  }

  /**
   * Runs a statement and resolves with its rows, however many (possibly none).
   *
   * @param statement SQL text or a pg QueryConfig
   * @param values parameter values
   *
   * @example
   * ```ts
   * const open = await pool.replica.any<{ id: number }>('SELECT id FROM orders WHERE status = $1', ['open']);
   * ```
   */
  any<T = pg.QueryResultRow>(statement: QueryStatement, values?: unknown[]): Promise<T[]> {
    return queryAny<T>(this.#queryable, statement, values);
  }

  /**
   * Runs a statement that must return exactly one row, and resolves with its first column.
   * A SQL `NULL` resolves as `null` (type it `value<number | null>` when it can be null).
   *
   * @param statement SQL text or a pg QueryConfig
   * @param values parameter values
   * @throws RowCountError (`expected: 'value'`, `rowCount`) when it returned 0 or several rows
   *
   * @example
   * ```ts
   * const n = await pool.replica.value<number>('SELECT count(*)::int FROM orders');
   * ```
   */
  value<V = unknown>(statement: QueryStatement, values?: unknown[]): Promise<V> {
    return queryValue<V>(this.#queryable, statement, values);
  }

  /**
   * Runs `callback` in a transaction (`BEGIN` … `COMMIT`, `ROLLBACK` when it throws) on one
   * connection: on the primary for `pool` and `pool.primary`; on a replica for
   * `pool.replica`, which runs read-only transactions only (`{ readOnly: true }`).
   *
   * **The callback may run more than once: it must have no effects outside the database**
   * (no HTTP calls, no messages, no in-memory counters it relies on). When the transaction
   * fails before `COMMIT` was sent because of a failover (connection lost, server shutting
   * down or read-only: 57P01, 57P02, 57P03, 25006) or a conflict (40001 serialization
   * failure, 40P01 deadlock), or `COMMIT` is answered with 40001, the whole callback is run
   * again on a fresh connection to the (new) primary: at most `maxAttempts` runs (default
   * 5), with the pool's backoff between runs and a `retry` event for each. One
   * `failoverTimeoutMillis` budget covers the whole transaction — checkouts, replays and
   * waits together — counted from the first failure (of a run, or of the first checkout when
   * no primary is usable at the start); no replay or checkout attempt starts after it is
   * spent. If the connection is lost while `COMMIT` is in
   * flight, the transaction may have committed: it is never replayed and
   * `TransactionOutcomeUnknownError` is thrown (a read-only transaction, which changed
   * nothing, is replayed instead). An error thrown by the callback's own code is rethrown
   * unchanged after `ROLLBACK`, as is a server error such as a constraint violation.
   *
   * @param callback the work; receives a {@link TransactionClient} (`query`, the helpers,
   *   and `transaction()` for a savepoint); `tx.attempt` tells which run it is
   * @param options isolation level, read-only, deferrable, `maxAttempts`
   * @returns what the callback resolved with, once committed
   * @throws TypeError on `pool.replica` without `readOnly: true`, or for invalid options;
   *   FailoverTimeoutError when failover replays ran out (the last 40001 / 40P01 error
   *   unchanged when conflict replays ran out); NoPrimaryError / PoolEndedError from the
   *   checkout
   *
   * @example
   * ```ts
   * const orderId = await pool.transaction(async (tx) => {
   *   const { id } = await tx.one<{ id: number }>('INSERT INTO orders(customer_id) VALUES ($1) RETURNING id', [42]);
   *   await tx.query('UPDATE customers SET order_count = order_count + 1 WHERE id = $1', [42]);
   *   return id;
   * }, { isolationLevel: 'serializable' });
   * ```
   */
  transaction<T>(callback: (tx: TransactionClient) => Promise<T>, options?: TransactionOptions): Promise<T> {
    if (this.intent === 'replica' && options?.readOnly !== true) {
      return Promise.reject(new TypeError('pg-consul: pool.replica.transaction() runs read-only transactions only: pass { readOnly: true }'));
    }
    if (this.cluster.ending) return Promise.reject(new PoolEndedError());
    return runTransaction({ deps: this.cluster.retryDeps(this.intent), role: this.intent, acquire: (budget) => this.acquire(budget) }, callback, options);
  }
}
