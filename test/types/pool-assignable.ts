/**
 * Compile-time checks (run by `npm run typecheck`): a pg-consul Pool and both of its views
 * are assignable to pg.Pool, so they can be handed to any library that takes one.
 */
import type pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import { Pool } from '../../lib/index.js';
import type { FailoverEvent, TopologyEvent } from '../../lib/index.js';

export function assignable(options: ConstructorParameters<typeof Pool>[0]): void {
  const pool = new Pool(options);
  const asPg: pg.Pool = pool;
  const primary: pg.Pool = pool.primary;
  const replica: pg.Pool = pool.replica;
  void asPg;
  void primary;
  void replica;

  // pg.Pool overloads keep their types.
  const p1: Promise<pg.QueryResult<{ n: number }>> = pool.query<{ n: number }>('SELECT 1 AS n');
  const p2: Promise<pg.QueryResult<{ n: number }>> = pool.replica.query<{ n: number }>({ text: 'SELECT $1::int AS n', values: [1] });
  const p3: Promise<pg.QueryArrayResult<[number]>> = pool.query<[number]>({ text: 'SELECT 1', rowMode: 'array' });
  void p1;
  void p2;
  void p3;
  pool.query('SELECT 1', (err: Error, res: pg.QueryResult) => void [err, res]);
  pool.query('SELECT $1', [1], (err: Error, res: pg.QueryResult) => void [err, res]);
  pool.connect((err, client, done) => {
    void err;
    void client;
    done();
  });
  const c: Promise<pg.PoolClient> = pool.connect();
  void c;

  // Typed events.
  pool.on('topology', ({ previous, current }: TopologyEvent) => void [previous.version, current.primary?.address]);
  pool.on('failover', (e: FailoverEvent) => void e.durationMillis);
  pool.on('error', (err: Error, client: pg.PoolClient) => void [err, client]);
  // @ts-expect-error the payload of 'failover' is a FailoverEvent, not a string
  pool.on('failover', (e: string) => void e);

  // Kysely accepts it.
  interface DB {
    t: { id: number; v: string };
  }
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: pool.replica }) });
  void db;
}
