/**
 * Child process for "end() during a black hole". argv: consulHost consulPort user password
 * database. Opens connections, prints `ready` (the parent then black-holes the primary),
 * 1.5 s later sends 4 statements (they hang in the black hole), 0.5 s after that calls
 * `pool.end()` and prints `ended <ms>` and `queried`; then it must exit by itself.
 */
import { Pool } from '../../lib/index.js';

const [consulHost, consulPort, user, password, database] = process.argv.slice(2);
const pool = new Pool({ service: 'pglab', consul: { host: consulHost, port: Number(consulPort), waitSeconds: 5 }, user, password, database, max: 4 });
pool.on('error', () => {});
await Promise.all([1, 2, 3, 4].map(() => pool.query('SELECT pg_sleep(0.05)')));
process.stdout.write('ready\n');
await new Promise((r) => setTimeout(r, 1_500));
const inFlight = [1, 2, 3, 4].map(() => pool.query('SELECT 1').then(() => 'answered', (e: Error) => e.name));
await new Promise((r) => setTimeout(r, 500));
const t0 = Date.now();
await pool.end();
const endMillis = Date.now() - t0;
const outcomes = await Promise.race([Promise.all(inFlight), new Promise((r) => setTimeout(() => r('in-flight statements still pending'), 2_000).unref())]);
process.stdout.write(`ended ${endMillis} ${JSON.stringify(outcomes)}\nqueried\n`);
