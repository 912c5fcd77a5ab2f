/**
 * Typed query helpers: run one statement and check how many rows it returned.
 *
 * They are plain functions over a minimal {@link Queryable} (anything with pg's promise
 * `query(text, values)`), so the Pool, its `primary` / `replica` views, transaction clients
 * and even a raw `pg.PoolClient` share them. On the pool they inherit the routing and retry
 * of `pool.query`.
 *
 * @example
 * ```ts
 * import { queryOne } from './helpers.js';
 * const user = await queryOne<{ id: number; email: string }>(client, 'SELECT id, email FROM users WHERE id = $1', [1]);
 * ```
 * @module
 */
import type pg from 'pg';
import { RowCountError } from '../errors.js';
import type { RowCountExpectation } from '../errors.js';
import { hasSecondStatement } from './read-only.js';

/**
 * The one thing the helpers need: pg's promise `query(text | config, values?)`. A pg-consul
 * transaction client and any `pg.Client` / `pg.PoolClient` satisfy it.
 *
 * @example
 * ```ts
 * const q: Queryable = { query: (text, values) => pool.query(text, values) };
 * ```
 */
export interface Queryable {
  /**
   * Runs one statement.
   * @param text SQL text or a pg QueryConfig
   * @param values parameter values (`$1`, `$2`, …)
   */
  query(text: string | pg.QueryConfig, values?: unknown[]): Promise<pg.QueryResult>;
}

/** What the helpers accept as a statement: SQL text, or a pg QueryConfig (also with `rowMode: 'array'`). */
export type QueryStatement = string | pg.QueryConfig | pg.QueryArrayConfig;

/**
 * Whether `rowCount` rows satisfy a helper's expectation. Pure.
 *
 * @param expected which helper
 * @param rowCount rows the statement returned
 *
 * @example
 * ```ts
 * rowCountAccepted('maybeOne', 0); // true
 * rowCountAccepted('one', 2); // false
 * ```
 */
export function rowCountAccepted(expected: RowCountExpectation, rowCount: number): boolean {
  switch (expected) {
    case 'one':
    case 'value':
      return rowCount === 1;
    case 'maybeOne':
      return rowCount <= 1;
    case 'many':
      return rowCount >= 1;
  }
}

/**
 * The rows of a result after checking their number. Pure.
 *
 * @param expected which helper
 * @param rows the result's rows
 * @throws RowCountError when the number of rows is not accepted
 *
 * @example
 * ```ts
 * checkedRows('many', [{ id: 1 }]); // [{ id: 1 }]
 * checkedRows('one', []);           // throws RowCountError { expected: 'one', rowCount: 0 }
 * ```
 */
export function checkedRows<T>(expected: RowCountExpectation, rows: readonly T[]): readonly T[] {
  if (!rowCountAccepted(expected, rows.length)) throw new RowCountError(expected, rows.length);
  return rows;
}

/**
 * The statement as a QueryConfig sent with the extended protocol, after refusing a text that
 * certainly holds several statements — before anything is sent. PostgreSQL's extended
 * protocol refuses a second statement itself (SQLSTATE 42601, nothing run), so a text the
 * lexer cannot split with certainty is still never run as a script, whereas pg's simple
 * protocol (text without values) would run every statement of it.
 */
function singleStatement(statement: QueryStatement): pg.QueryConfig {
  const config: pg.QueryConfig = typeof statement === 'string' ? { text: statement } : statement;
  if (typeof config.text === 'string' && hasSecondStatement(config.text) === true) {
    throw new TypeError(
      'pg-consul: query helpers take a single statement, and this text has several (nothing was sent); ' +
        'run one statement per call, or a script with pool.query',
    );
  }
  // `queryMode` is pg's (pg ≥ 8.12) but missing from @types/pg.
  return { ...config, queryMode: 'extended' } as pg.QueryConfig;
}

/** A result that is an array means a custom Queryable ran several statements anyway. */
function singleResult(result: pg.QueryResult | pg.QueryResult[]): pg.QueryResult {
  if (Array.isArray(result)) {
    throw new TypeError(`pg-consul: query helpers take a single statement; this text ran ${result.length} statements`);
  }
  return result;
}

async function rowsOf<T>(q: Queryable, statement: QueryStatement, values: unknown[] | undefined): Promise<T[]> {
  const result = singleResult(await q.query(singleStatement(statement), values));
  return result.rows as T[];
}

/**
 * Runs a statement that must return exactly one row, and returns it.
 *
 * @param q where to run it (the pool, a view, a transaction client, a pg client)
 * @param statement SQL text or a QueryConfig
 * @param values parameter values
 * @throws RowCountError (`expected: 'one'`) when it returned 0 or several rows
 *
 * @example
 * ```ts
 * const { id } = await queryOne<{ id: number }>(client, 'INSERT INTO t(v) VALUES ($1) RETURNING id', ['x']);
 * ```
 */
export async function queryOne<T>(q: Queryable, statement: QueryStatement, values?: unknown[]): Promise<T> {
  return checkedRows('one', await rowsOf<T>(q, statement, values))[0] as T;
}

/**
 * Runs a statement that returns zero or one row; resolves with the row or `null`.
 *
 * @param q where to run it
 * @param statement SQL text or a QueryConfig
 * @param values parameter values
 * @throws RowCountError (`expected: 'maybeOne'`) when it returned several rows
 *
 * @example
 * ```ts
 * const user = await queryMaybeOne<{ id: number }>(client, 'SELECT id FROM users WHERE email = $1', [email]);
 * if (user === null) { … }
 * ```
 */
export async function queryMaybeOne<T>(q: Queryable, statement: QueryStatement, values?: unknown[]): Promise<T | null> {
  return checkedRows('maybeOne', await rowsOf<T>(q, statement, values))[0] ?? null;
}

/**
 * Runs a statement that must return at least one row; resolves with the rows.
 *
 * @param q where to run it
 * @param statement SQL text or a QueryConfig
 * @param values parameter values
 * @throws RowCountError (`expected: 'many'`) when it returned no row
 *
 * @example
 * ```ts
 * const items = await queryMany<{ sku: string }>(client, 'SELECT sku FROM items WHERE order_id = $1', [7]);
 * ```
 */
export async function queryMany<T>(q: Queryable, statement: QueryStatement, values?: unknown[]): Promise<T[]> {
  const rows = await rowsOf<T>(q, statement, values);
  checkedRows('many', rows);
  return rows;
}

/**
 * Runs a statement and resolves with its rows, however many (possibly none).
 *
 * @param q where to run it
 * @param statement SQL text or a QueryConfig
 * @param values parameter values
 *
 * @example
 * ```ts
 * const rows = await queryAny<{ id: number }>(client, 'SELECT id FROM t WHERE v > $1', [10]);
 * ```
 */
export async function queryAny<T>(q: Queryable, statement: QueryStatement, values?: unknown[]): Promise<T[]> {
  return rowsOf<T>(q, statement, values);
}

/** The statement with `rowMode: 'array'`, so the first column is found by position (duplicate names are harmless). */
function asArrayRows(statement: QueryStatement, values: unknown[] | undefined): pg.QueryArrayConfig {
  const config = singleStatement(statement);
  return { ...config, ...(values !== undefined ? { values } : {}), rowMode: 'array' };
}

/**
 * Runs a statement that must return exactly one row, and resolves with that row's first
 * column (e.g. a count, an id, `now()`). A SQL `NULL` resolves as `null`: type it
 * `value<number | null>` when the column can be null.
 *
 * @param q where to run it
 * @param statement SQL text or a QueryConfig
 * @param values parameter values
 * @throws RowCountError (`expected: 'value'`) when it returned 0 or several rows;
 *   TypeError when the row has no column
 *
 * @example
 * ```ts
 * const n = await queryValue<number>(client, 'SELECT count(*)::int FROM t');
 * ```
 */
export async function queryValue<V>(q: Queryable, statement: QueryStatement, values?: unknown[]): Promise<V> {
  const result = singleResult(await q.query(asArrayRows(statement, values) as unknown as pg.QueryConfig));
  const row = checkedRows('value', result.rows as unknown as unknown[][])[0]!;
  if (row.length === 0) throw new TypeError('pg-consul: value() needs a statement that returns at least one column');
  return row[0] as V;
}

/**
 * The typed helpers as methods (`one`, `maybeOne`, `many`, `any`, `value`) over a class's own
 * `query`: the base of the transaction client and of the session and its read path, so each
 * of them routes the helpers exactly as its `query`.
 *
 * @internal
 */
export abstract class QueryHelpers implements Queryable {
  /**
   * Runs one statement; the helpers below go through it.
   * @param text SQL text or a pg QueryConfig
   * @param values parameter values (`$1`, `$2`, …)
   */
  abstract query(text: string | pg.QueryConfig, values?: unknown[]): Promise<pg.QueryResult>;

  /**
   * Runs a statement that must return exactly one row, and resolves with it; else
   * RowCountError (`expected: 'one'`).
   * @param statement SQL text or a QueryConfig
   * @param values parameter values
   * @example
   * ```ts
   * const { id } = await tx.one<{ id: number }>('INSERT INTO t(v) VALUES ($1) RETURNING id', ['x']);
   * ```
   */
  one<T = pg.QueryResultRow>(statement: QueryStatement, values?: unknown[]): Promise<T> {
    return queryOne<T>(this, statement, values);
  }

  /**
   * Runs a statement that returns zero or one row; resolves with the row, or `null` when
   * there is none; RowCountError (`expected: 'maybeOne'`) for several.
   * @param statement SQL text or a QueryConfig
   * @param values parameter values
   * @example
   * ```ts
   * const row = await session.replica.maybeOne<{ id: number }>('SELECT id FROM users WHERE email = $1', [email]);
   * ```
   */
  maybeOne<T = pg.QueryResultRow>(statement: QueryStatement, values?: unknown[]): Promise<T | null> {
    return queryMaybeOne<T>(this, statement, values);
  }

  /**
   * Runs a statement that must return one row or more, and resolves with the rows; else
   * RowCountError (`expected: 'many'`).
   * @param statement SQL text or a QueryConfig
   * @param values parameter values
   * @example
   * ```ts
   * const rows = await session.many<{ id: number }>('UPDATE t SET v = v + 1 RETURNING id');
   * ```
   */
  many<T = pg.QueryResultRow>(statement: QueryStatement, values?: unknown[]): Promise<T[]> {
    return queryMany<T>(this, statement, values);
  }

  /**
   * Runs a statement and resolves with all its rows (possibly none).
   * @param statement SQL text or a QueryConfig
   * @param values parameter values
   * @example
   * ```ts
   * const rows = await tx.any<{ id: number }>('SELECT id FROM t WHERE v = $1', ['x']);
   * ```
   */
  any<T = pg.QueryResultRow>(statement: QueryStatement, values?: unknown[]): Promise<T[]> {
    return queryAny<T>(this, statement, values);
  }

  /**
   * Runs a statement that must return exactly one row, and resolves with its first column;
   * else RowCountError (`expected: 'value'`).
   * @param statement SQL text or a QueryConfig
   * @param values parameter values
   * @example
   * ```ts
   * const n = await session.replica.value<number>('SELECT count(*)::int FROM notes WHERE user_id = $1', [42]);
   * ```
   */
  value<V = unknown>(statement: QueryStatement, values?: unknown[]): Promise<V> {
    return queryValue<V>(this, statement, values);
  }
}
