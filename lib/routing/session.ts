/**
 * Read-your-writes sessions without a shared store: `pool.session(token?)`.
 *
 * A session remembers the primary's WAL position after each of its writes and reads only
 * from replicas that have replayed that position (else from the primary). The position
 * travels as a 12-character token, so one web request can write and the next one — in
 * another process, through another Pool — still reads its own write.
 *
 * Costs, exactly:
 * - a read while the session has no position (no write yet, or token of a session without
 *   one): nothing — it is `pool.replica.query`;
 * - a read with a position: no extra round trip when a replica is known to have replayed it
 *   (lag monitor data, or an earlier check) or when it goes to the primary; without the lag
 *   monitor, one round trip (`pg_last_wal_replay_lsn()` on the chosen replica) the first
 *   time a replica is asked about a position it is not yet known to have reached;
 * - a write: one extra round trip on the same connection, before it is released
 *   (`pg_current_wal_insert_lsn()`); a statement the classifier finds certainly read-only
 *   records nothing; a transaction records after `COMMIT` (read-only ones record nothing).
 *
 * @example
 * ```ts
 * // request 1
 * const s = pool.session();
 * await s.query('UPDATE profiles SET name = $1 WHERE id = $2', ['Ada', 42]);
 * res.cookie('pgs', s.token);
 * // request 2, any process
 * const s2 = pool.session(req.cookies.pgs);
 * const me = await s2.replica.one('SELECT name FROM profiles WHERE id = $1', [42]); // 'Ada'
 * ```
 * @module
 */
import type pg from 'pg';
import type { Logger } from '../log.js';
import { checkoutFor, queryKeeping, runStatementOn } from '../pooling/statement-attempt.js';
import { QueryHelpers } from '../query/helpers.js';
import type { TransactionClient, TransactionOptions } from '../query/transaction.js';
import { runWithRetry } from '../retry/run-with-retry.js';
import { MAX_LSN, formatLsn, parseLsn } from './lsn.js';
import { isCertainlyReadOnly, runAutoRead, runCaughtUpRead } from './read-paths.js';
import type { ReadPathCluster, Statement } from './read-paths.js';
import { encodeSessionToken } from './session-token.js';

/** What a session asks the primary after a write (same connection, before release). */
export const INSERT_POSITION_QUERY = 'SELECT pg_current_wal_insert_lsn()::text AS lsn';

/** What a session needs from its pool. Internal. */
export interface SessionHost {
  /** The pool's state (a `Cluster`; only the part the read paths use). */
  readonly cluster: ReadPathCluster;
  /** Whether `autoReadRouting` is on (then `session.query` sends reads to the read path). */
  readonly autoReadRouting: boolean;
  /** `pool.replica`'s statement runner. */
  readRun(text: Statement, values: unknown[] | undefined): Promise<pg.QueryResult>;
  /** The primary path's statement runner (no position recorded). */
  primaryRun(text: Statement, values: unknown[] | undefined): Promise<pg.QueryResult>;
  /** `pool.transaction`. */
  transaction<T>(callback: (tx: TransactionClient) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** Logger (redacting). */
  readonly log: Logger;
}

function statementText(text: unknown): unknown {
  return typeof text === 'object' && text !== null ? (text as { text?: unknown }).text : text;
}

function checkForm(text: unknown, values: unknown): void {
  if (typeof values === 'function' || typeof (text as { submit?: unknown } | null)?.submit === 'function') {
    throw new TypeError('pg-consul: sessions support the promise form of query only (no callback, no Submittable)');
  }
}

/**
 * A read-your-writes session; see the module notes. Create one with `pool.session(token?)`,
 * per request or per user interaction — it is cheap (two fields) — and use it for the
 * statements whose results the user expects to see reflected.
 *
 * Not a connection: every statement is routed and retried like the pool's own. The helpers
 * (`one`, `maybeOne`, `many`, `any`, `value`) are routed like {@link Session.query}.
 *
 * @example
 * ```ts
 * const s = pool.session(req.get('x-pg-session'));
 * const id = await s.value<number>('INSERT INTO notes(body) VALUES ($1) RETURNING id', [body]);
 * const notes = await s.replica.many('SELECT * FROM notes ORDER BY id DESC LIMIT 10'); // sees the new note
 * res.set('x-pg-session', s.token);
 * ```
 */
export class Session extends QueryHelpers {
  readonly #host: SessionHost;
  #position: bigint;
  #replica: SessionReplica | undefined;

  /**
   * @param host the pool's side
   * @param position the WAL position to start from (0 for none)
   * @internal use `pool.session(token?)`
   */
  constructor(host: SessionHost, position: bigint) {
    super();
    this.#host = host;
    this.#position = position;
  }

  /**
   * The session's position as a token: 12 URL- and cookie-safe characters to hand back to
   * the client (cookie, header) and pass to `pool.session(token)` on its next request.
   */
  get token(): string {
    return encodeSessionToken(this.#position);
  }

  /**
   * The WAL position reads must see, in PostgreSQL's `X/Y` form; `undefined` while the
   * session has none (reads then cost exactly what `pool.replica` reads cost).
   * `FFFFFFFF/FFFFFFFF` after a write whose position could not be read: reads go to the
   * primary until the next recorded write.
   */
  get lsn(): string | undefined {
    return this.#position === 0n ? undefined : formatLsn(this.#position);
  }

  /** The position as a number. @internal */
  get position(): bigint {
    return this.#position;
  }

  /**
   * The session's read path: statements go to a replica that has replayed the session's
   * writes, else to the primary. Use it for reads only (a write there fails on a replica).
   */
  get replica(): SessionReplica {
    return (this.#replica ??= new SessionReplica(this));
  }

  /**
   * Runs a statement like `pool.query` (promise form): on the primary — or, with
   * `autoReadRouting`, on the session's read path when it is certainly read-only. After a
   * statement on the primary that is not certainly read-only, records the primary's WAL
   * position (one extra round trip on the same connection).
   *
   * @param text SQL text or a pg QueryConfig
   * @param values parameter values
   *
   * @example
   * ```ts
   * await session.query('UPDATE carts SET qty = $1 WHERE id = $2', [3, cartId]);
   * ```
   */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | pg.QueryConfig, values?: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      checkForm(text, values);
    } catch (err) {
      return Promise.reject(err);
    }
    const readOnly = isCertainlyReadOnly(statementText(text));
    if (readOnly && this.#host.autoReadRouting) return this.read<R>(text, values, true);
    if (readOnly) return this.#host.primaryRun(text, values) as Promise<pg.QueryResult<R>>;
    return this.#write<R>(text, values);
  }

  /**
   * Runs a read on the session's read path. @internal
   * @param auto whether it was routed by `autoReadRouting` (then it falls back to the primary
   *   whatever `readFallback` says, as `pool.query` would)
   */
  read<R extends pg.QueryResultRow>(text: Statement, values: unknown[] | undefined, auto: boolean): Promise<pg.QueryResult<R>> {
    const cluster = this.#host.cluster;
    if (cluster.ending || this.#position === 0n) {
      return (auto ? runAutoRead<R>(cluster, text, values) : this.#host.readRun(text, values)) as Promise<pg.QueryResult<R>>;
    }
    return runCaughtUpRead<R>(cluster, this.#position, text, values);
  }

  /**
   * Runs `callback` in a transaction on the primary (see `pool.transaction`), then records
   * the primary's WAL position (one extra round trip; none for `readOnly: true`).
   *
   * @param callback the work (may run more than once: no effects outside the database)
   * @param options transaction options
   *
   * @example
   * ```ts
   * await session.transaction(async (tx) => { await tx.query('INSERT INTO a VALUES (1)'); await tx.query('INSERT INTO b VALUES (1)'); });
   * ```
   */
  async transaction<T>(callback: (tx: TransactionClient) => Promise<T>, options?: TransactionOptions): Promise<T> {
    const value = await this.#host.transaction(callback, options);
    if (options?.readOnly !== true) {
      const cluster = this.#host.cluster;
      let lsn: bigint | undefined;
      try {
        const res = await runWithRetry(cluster.retryDeps('primary'), 'primary', (node, role) =>
          runStatementOn<{ lsn: string | null }>(cluster.nodePool(node, role), INSERT_POSITION_QUERY, undefined),
        );
        lsn = parseLsn(res.rows[0]?.lsn);
      } catch (err) {
        this.#host.log('debug', 'session could not read the WAL position after a transaction', { error: (err as Error)?.message });
      }
      this.#record(lsn);
    }
    return value;
  }

  /** A write on the primary, then its position, on the same connection. */
  #write<R extends pg.QueryResultRow>(text: Statement, values: unknown[] | undefined): Promise<pg.QueryResult<R>> {
    const cluster = this.#host.cluster;
    return runWithRetry(cluster.retryDeps('primary'), 'primary', async (node, role) => {
      const client = await checkoutFor(cluster.nodePool(node, role));
      const result = await queryKeeping<R>(client, text, values);
      // The statement ran: from here on nothing may throw (a retry would run it twice).
      let lsn: bigint | undefined;
      let failure: Error | undefined;
      try {
        const r = await client.query<{ lsn: string | null }>(INSERT_POSITION_QUERY);
        lsn = parseLsn(r.rows[0]?.lsn);
      } catch (err) {
        failure = err instanceof Error ? err : new Error(String(err));
        this.#host.log('debug', 'session could not read the WAL position after a write', { node: node.address, error: failure.message });
      }
      client.release(failure);
      this.#record(lsn);
      return result;
    });
  }

  /** Moves the position forward; an unknown position pins reads to the primary. */
  #record(lsn: bigint | undefined): void {
    if (lsn === undefined) {
      this.#position = MAX_LSN;
    } else if (this.#position === MAX_LSN || lsn > this.#position) {
      this.#position = lsn;
    }
  }
}

/**
 * The read path of a {@link Session} (`session.replica`): `query` and the helpers, each
 * run on a replica that has replayed the session's writes, else on the primary. Promise
 * form only.
 *
 * @example
 * ```ts
 * const cart = await session.replica.maybeOne('SELECT * FROM carts WHERE user_id = $1', [42]);
 * ```
 */
export class SessionReplica extends QueryHelpers {
  readonly #session: Session;

  /** @internal */
  constructor(session: Session) {
    super();
    this.#session = session;
  }

  /**
   * Runs a read (see {@link SessionReplica}).
   * @param text SQL text or a pg QueryConfig
   * @param values parameter values
   * @example
   * ```ts
   * const { rows } = await session.replica.query('SELECT * FROM notes WHERE user_id = $1', [42]);
   * ```
   */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | pg.QueryConfig, values?: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      checkForm(text, values);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#session.read<R>(text, values, false);
  }
}
