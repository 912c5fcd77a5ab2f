import { Pool } from 'pg-consul';

// Configured like pg.Pool, from the environment: PGCONSUL_SERVICE (the Patroni scope),
// CONSUL_HTTP_ADDR (default 127.0.0.1:8500), PGUSER, PGPASSWORD, PGDATABASE.
const pool = new Pool(); // was: new pg.Pool() — same options, same methods

await pool.query('CREATE TABLE IF NOT EXISTS visits (at timestamptz NOT NULL DEFAULT now())'); // → the primary
const session = pool.session(); // reads that see this session's own writes
await session.query('INSERT INTO visits DEFAULT VALUES'); // → the primary, retried across a failover
const visits = await session.replica.value('SELECT count(*)::int FROM visits'); // → a replica that has the insert
console.log(`visits: ${visits}`);
await pool.end();
