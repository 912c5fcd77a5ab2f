/**
 * Transactions that survive a failover: `pool.transaction()` replays the whole callback on
 * the new primary when the transaction was lost or rejected before COMMIT, and reports an
 * unknown outcome (never replays) when the connection died while COMMIT was in flight.
 *
 * Run against a Patroni cluster registered in Consul (settings from the environment), and
 * try a `patronictl switchover` while it runs:
 *
 * ```sh
 * PGCONSUL_SERVICE=pglab CONSUL_HTTP_ADDR=127.0.0.1:8500 \
 * PGUSER=app PGPASSWORD=app-secret PGDATABASE=app npx tsx examples/transactions.ts
 * ```
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, TransactionOutcomeUnknownError } from 'pg-consul';
import type { TransactionClient } from 'pg-consul';

/**
 * Moves money between two accounts. The callback may run more than once (after a failover,
 * a serialization failure or a deadlock), so it only talks to the database: no HTTP calls,
 * no e-mails, no counters outside it.
 */
async function transfer(tx: TransactionClient, from: string, to: string, amount: number, transferId: string): Promise<number> {
  const balance = await tx.value<number>('SELECT balance FROM example_accounts WHERE owner = $1 FOR UPDATE', [from]);
  if (balance < amount) throw new Error(`${from} has only ${balance}`); // the callback's own error: rolled back, not replayed
  await tx.query('UPDATE example_accounts SET balance = balance - $2 WHERE owner = $1', [from, amount]);
  await tx.query('UPDATE example_accounts SET balance = balance + $2 WHERE owner = $1', [to, amount]);
  // The transfer id is unique: if the outcome of a COMMIT is ever unknown, it tells whether it happened.
  await tx.query('INSERT INTO example_transfers (id, from_owner, to_owner, amount) VALUES ($1, $2, $3, $4)', [transferId, from, to, amount]);
  // A savepoint: the audit row is optional, its failure only undoes itself.
  await tx
    .transaction(async (sp) => {
      await sp.query('INSERT INTO example_audit (note) VALUES ($1)', [`transfer ${transferId} (attempt ${tx.attempt})`]);
    })
    .catch((err: unknown) => console.warn('audit skipped:', (err as Error).message));
  return balance - amount;
}

async function main(): Promise<void> {
  const pool = new Pool();
  try {
    await pool.ready(); // optional (statements wait for discovery by themselves): keeps the log below quiet at startup
    pool.on('retry', (e) => console.log(`retry #${e.attempt} on ${e.role} (${e.node ?? 'no node'}): ${e.error.message}`));
    pool.on('failover', (e) => console.log(`writes moved ${e.from?.name ?? '?'} → ${e.to.name} in ${e.durationMillis} ms`));
    await pool.query('CREATE TABLE IF NOT EXISTS example_accounts (id serial PRIMARY KEY, owner text UNIQUE NOT NULL, balance int NOT NULL)');
    await pool.query('CREATE TABLE IF NOT EXISTS example_transfers (id text PRIMARY KEY, from_owner text NOT NULL, to_owner text NOT NULL, amount int NOT NULL)');
    await pool.query('CREATE TABLE IF NOT EXISTS example_audit (id serial PRIMARY KEY, note text NOT NULL)');
    await pool.query("INSERT INTO example_accounts (owner, balance) VALUES ('alice', 1000), ('bob', 1000) ON CONFLICT (owner) DO NOTHING");

    const rounds = Number(process.env['EXAMPLE_ROUNDS'] ?? 20);
    for (let i = 0; i < rounds; i++) {
      const transferId = `${process.pid}-${Date.now()}-${i}`;
      const [from, to] = i % 2 === 0 ? ['alice', 'bob'] : ['bob', 'alice'];
      try {
        const left = await pool.transaction((tx) => transfer(tx, from!, to!, 10, transferId), { isolationLevel: 'serializable' });
        console.log(`transfer ${transferId}: ${from} → ${to}, ${from} has ${left} left`);
      } catch (err) {
        if (!(err instanceof TransactionOutcomeUnknownError)) throw err;
        // COMMIT was in flight when the connection died: look before doing it again.
        const done = await pool.maybeOne('SELECT 1 FROM example_transfers WHERE id = $1', [transferId]);
        console.log(`transfer ${transferId}: outcome was unknown; it ${done ? 'did' : 'did not'} commit`);
      }
      await sleep(250);
    }

    // A consistent read-only report on a replica (REPEATABLE READ: one snapshot for both
    // queries). Replicas may lag a little behind the primary: the report may miss the last transfers.
    const report = await pool.replica.transaction(
      async (tx) => ({
        accounts: await tx.many<{ owner: string; balance: number }>('SELECT owner, balance FROM example_accounts ORDER BY owner'),
        transfers: await tx.value<number>('SELECT count(*)::int FROM example_transfers'),
      }),
      { readOnly: true, isolationLevel: 'repeatable read' },
    );
    console.log(report);
  } finally {
    await pool.end();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
