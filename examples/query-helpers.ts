/**
 * Typed query helpers: `one`, `maybeOne`, `many`, `any` and `value` on the pool, on
 * `pool.primary` and on `pool.replica`.
 *
 * Run against a Patroni cluster registered in Consul (settings from the environment):
 *
 * ```sh
 * PGCONSUL_SERVICE=pglab CONSUL_HTTP_ADDR=127.0.0.1:8500 \
 * PGUSER=app PGPASSWORD=app-secret PGDATABASE=app npx tsx examples/query-helpers.ts
 * ```
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, RowCountError } from 'pg-consul';

interface Account {
  id: number;
  owner: string;
  balance: number;
}

/** Whether a replica already has the table and these accounts. */
async function replicaSees(pool: Pool, owners: string[]): Promise<boolean> {
  if (!(await pool.replica.value<boolean>("SELECT to_regclass('example_accounts') IS NOT NULL"))) return false;
  return (await pool.replica.value<number>('SELECT count(*)::int FROM example_accounts WHERE owner = ANY($1)', [owners])) === owners.length;
}

async function main(): Promise<void> {
  // Service, Consul address and token come from PGCONSUL_* / CONSUL_*; user, password and
  // database from PGUSER / PGPASSWORD / PGDATABASE, as with pg.
  const pool = new Pool();
  try {
    await pool.query('CREATE TABLE IF NOT EXISTS example_accounts (id serial PRIMARY KEY, owner text UNIQUE NOT NULL, balance int NOT NULL)');

    // one: exactly one row, typed. Writes go to the primary.
    const alice = await pool.one<Account>(
      'INSERT INTO example_accounts (owner, balance) VALUES ($1, $2) ON CONFLICT (owner) DO UPDATE SET balance = EXCLUDED.balance RETURNING id, owner, balance',
      ['alice', 100],
    );
    console.log(`alice has id ${alice.id} and balance ${alice.balance}`);

    // A QueryConfig works too (here a named, prepared statement).
    const bob = await pool.primary.one<Account>({
      name: 'upsert-account',
      text: 'INSERT INTO example_accounts (owner, balance) VALUES ($1, $2) ON CONFLICT (owner) DO UPDATE SET balance = EXCLUDED.balance RETURNING id, owner, balance',
      values: ['bob', 50],
    });
    console.log(`bob has id ${bob.id}`);

    // Replicas replay the primary's changes a little later: wait until one sees both accounts.
    for (let i = 0; i < 50 && !(await replicaSees(pool, ['alice', 'bob'])); i++) await sleep(100);

    // maybeOne: the row or null.
    const nobody = await pool.replica.maybeOne<Account>('SELECT id, owner, balance FROM example_accounts WHERE owner = $1', ['nobody']);
    console.log(nobody === null ? 'no account for "nobody"' : `unexpected: ${nobody.owner}`);

    // many: at least one row; any: any number of rows.
    const rich = await pool.any<Account>('SELECT id, owner, balance FROM example_accounts WHERE balance >= $1 ORDER BY owner', [75]);
    console.log(`accounts with at least 75: ${rich.map((a) => a.owner).join(', ') || 'none'}`);
    const all = await pool.many<Account>('SELECT id, owner, balance FROM example_accounts ORDER BY id');
    console.log(`${all.length} account(s)`);

    // value: the first column of exactly one row.
    const total = await pool.replica.value<number>('SELECT coalesce(sum(balance), 0)::int FROM example_accounts');
    const onReplica = await pool.replica.value<boolean>('SELECT pg_is_in_recovery()');
    console.log(`total balance ${total} (read on ${onReplica ? 'a replica' : 'the primary (no replica available)'})`);

    // A wrong number of rows is a typed error carrying the count (never the SQL or its values).
    try {
      await pool.one<Account>('SELECT id, owner, balance FROM example_accounts');
    } catch (err) {
      if (!(err instanceof RowCountError)) throw err;
      console.log(`${err.code}: ${err.expected}() got ${err.rowCount} rows`);
    }
  } finally {
    await pool.end();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
