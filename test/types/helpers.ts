/**
 * Compile-time checks (run by `npm run typecheck`): the row type given to the query helpers
 * and to `transaction()` flows to the results, and misuse does not compile.
 */
import type pg from 'pg';
import { RowCountError, TransactionOutcomeUnknownError } from '../../lib/index.js';
import type { Pool, Queryable, RowCountExpectation, TransactionClient, TransactionOptions } from '../../lib/index.js';

interface User {
  id: number;
  email: string;
}

export async function helperTypes(pool: Pool): Promise<void> {
  // one: the row type flows.
  const id: number = (await pool.one<{ id: number }>('SELECT 1 AS id')).id;
  const user = await pool.primary.one<User>({ text: 'SELECT id, email FROM users WHERE id = $1', values: [1] });
  const email: string = user.email;
  // @ts-expect-error no such column in the row type
  void user.name;
  // @ts-expect-error id is a number
  const idAsString: string = user.id;

  // maybeOne: T | null — the null check is required.
  const maybe = await pool.replica.maybeOne<User>('SELECT id, email FROM users WHERE email = $1', ['a@b']);
  // @ts-expect-error may be null
  const notChecked: User = maybe;
  // @ts-expect-error may be null
  void maybe.email;
  if (maybe !== null) {
    const checked: User = maybe;
    void checked;
  }

  // many / any: arrays of T.
  const many: User[] = await pool.many<User>('SELECT id, email FROM users');
  const any: readonly User[] = await pool.replica.any<User>('SELECT id, email FROM users');
  // @ts-expect-error an array, not one row
  const notARow: User = await pool.many<User>('SELECT id, email FROM users');

  // value: a single scalar of the given type.
  const n: number = await pool.value<number>('SELECT count(*)::int FROM users');
  // @ts-expect-error the value is a number
  const s: string = await pool.value<number>('SELECT 1');
  const nullable: number | null = await pool.replica.value<number | null>('SELECT max(id) FROM users');
  const unnamed = await pool.value('SELECT 1');
  // @ts-expect-error without a type argument (or a typed target) the value is unknown
  const untyped: number = unnamed;

  // Without a type argument the row is pg's QueryResultRow.
  const loose: pg.QueryResultRow = await pool.one('SELECT 1 AS x');
  // Array rows with a QueryArrayConfig.
  const tuple: [number, string] = await pool.one<[number, string]>({ text: 'SELECT 1, $1::text', values: ['a'], rowMode: 'array' });
  // @ts-expect-error values must be an array
  void pool.one('SELECT $1', 'a');

  // transaction: the callback's result type flows; the client has query, helpers, savepoints.
  const orderId: number = await pool.transaction(async (tx: TransactionClient) => {
    const attempt: number = tx.attempt;
    const { rows } = await tx.query<{ id: number }>('INSERT INTO orders DEFAULT VALUES RETURNING id');
    const row = await tx.one<{ id: number }>('SELECT 1 AS id');
    const inner: string = await tx.transaction(async (sp) => (await sp.value<string>('SELECT $1::text', ['x'])));
    const m = await tx.maybeOne<User>('SELECT id, email FROM users LIMIT 1');
    // @ts-expect-error may be null
    void m.id;
    void [attempt, inner];
    return rows[0]!.id + row.id;
  }, { isolationLevel: 'serializable', maxAttempts: 3 });
  // @ts-expect-error the transaction resolves with a number
  const wrong: string = await pool.transaction(async () => 1);
  const report = await pool.replica.transaction(async (tx) => tx.any<User>('SELECT id, email FROM users'), { readOnly: true, deferrable: true, isolationLevel: 'serializable' });
  const reportRows: User[] = report;
  // @ts-expect-error not an isolation level PostgreSQL has
  void pool.transaction(async () => 1, { isolationLevel: 'snapshot' });
  // @ts-expect-error transaction clients have the promise form only
  void pool.transaction(async (tx) => tx.query('SELECT 1', (err: Error) => void err));
  // @ts-expect-error the transaction client cannot be constructed by callers
  void new (Object as unknown as typeof TransactionClient)(undefined as never, 0);
  const options: TransactionOptions = { readOnly: true };

  // The helpers' minimal interface is satisfied by pg clients and transaction clients.
  const fromPg: Queryable = {} as pg.PoolClient;
  const fromTx: Queryable = {} as TransactionClient;

  // Error fields.
  const err: unknown = undefined;
  if (err instanceof RowCountError) {
    const expected: RowCountExpectation = err.expected;
    const count: number = err.rowCount;
    void [expected, count];
  }
  if (err instanceof TransactionOutcomeUnknownError) {
    const outcome: 'unknown' | 'not-executed' | 'executed' = err.outcome;
    void outcome;
  }

  void [id, email, idAsString, notChecked, many, any, notARow, n, s, nullable, untyped, loose, tuple, orderId, wrong, reportRows, options, fromPg, fromTx];
}
