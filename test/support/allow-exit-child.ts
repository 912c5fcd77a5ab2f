/**
 * Child process of the allowExitOnIdle conformance pair: makes a pool (pg.Pool or
 * pg-consul's, per FLAVOUR) with `allowExitOnIdle: true`, runs one query and never calls
 * `end()`. The parent expects the process to exit by itself with code 0.
 */
import pg from 'pg';
import { Pool } from '../../lib/index.js';

const pool: pg.Pool =
  process.env.FLAVOUR === 'pg-consul'
    ? new Pool({ service: process.env.SERVICE!, consul: { host: '127.0.0.1', port: Number(process.env.CONSUL_PORT), waitSeconds: 5 }, allowExitOnIdle: true })
    : new pg.Pool({ allowExitOnIdle: true });
const { rows } = await pool.query<{ n: number }>('SELECT 1 AS n');
console.log(`queried ${rows[0]!.n}`);
