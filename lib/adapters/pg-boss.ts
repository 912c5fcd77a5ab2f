/**
 * The `db` adapter pg-boss (10+) takes instead of a pool: `executeSql(text, values)` run on
 * a pg-consul Pool (or any pg.Pool-like object), so pg-boss follows failovers too.
 * @module
 */

/** A statement's result as far as pg-boss reads it. */
export interface SqlResult {
  /** The rows returned. */
  rows: unknown[];
}

/** What the adapter needs of a pool: pg's promise-form `query`. */
export interface SqlQueryable {
  /** Runs one statement (pg.Pool's `query`). */
  query(text: string, values?: unknown[]): Promise<SqlResult>;
}

/** pg-boss's `db` option: the one method pg-boss calls on it. */
export interface PgBossDb {
  /**
   * Runs pg-boss's SQL.
   * @param text the statement(s)
   * @param values parameter values, if any
   */
  executeSql(text: string, values?: unknown[]): Promise<SqlResult>;
}

/**
 * Builds pg-boss's `db` adapter on a pool.
 *
 * @param pool a pg-consul Pool (writes go to the primary, across failovers)
 * @returns the object to pass as pg-boss's `db` option
 *
 * @example
 * ```ts
 * import PgBoss from 'pg-boss';
 * import { Pool, pgBossDb } from 'pg-consul';
 * const pool = new Pool({ service: 'pglab' });
 * const boss = new PgBoss({ db: pgBossDb(pool) });
 * await boss.start();
 * ```
 */
export function pgBossDb(pool: SqlQueryable): PgBossDb {
  return { executeSql: (text, values) => pool.query(text, values) };
}
