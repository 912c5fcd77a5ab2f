/**
 * Child process for the "process exits by itself" tests. argv: consulPort user password
 * database mode, where mode is `end` (call pool.end()) or `idle` (leave the pool idle with
 * idleTimeoutMillis 300). Prints `queried` after the first query.
 */
import { Pool } from '../../lib/index.js';

const [consulPort, user, password, database, mode] = process.argv.slice(2);
const pool = new Pool({
  service: 'pglab',
  consul: { host: '127.0.0.1', port: Number(consulPort), token: process.env['CHILD_CONSUL_TOKEN'] },
  user,
  password,
  database,
  idleTimeoutMillis: 300,
});
await pool.query('SELECT 1');
await pool.replica.query('SELECT 1');
process.stdout.write('queried\n');
if (mode === 'end') await pool.end();
