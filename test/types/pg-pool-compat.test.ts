import assert from 'node:assert/strict';
import pg from 'pg';
import { Pool, RolePool } from '../../lib/index.js';
import type { DiscoverySource } from '../../lib/index.js';

// Compile-time checks (npm run typecheck): pg-consul's Pool and its views are pg.Pools.
type Row = { n: number };
function typeChecks(pool: Pool): void {
  const p: pg.Pool = pool;
  const r: pg.Pool = pool.replica;
  const fromPg: Promise<pg.QueryResult<Row>> = p.query<Row>('SELECT 1 AS n');
  const fromConsul: Promise<pg.QueryResult<Row>> = pool.query<Row>('SELECT 1 AS n');
  const client: Promise<pg.PoolClient> = r.connect();
  void [fromPg, fromConsul, client];
}
void typeChecks;

const idle: DiscoverySource = { requestCount: 0, start: () => undefined, refresh: () => undefined, stop: async () => undefined };

describe('types and identity: Pool is the user\'s pg.Pool', () => {
  it('pool, pool.primary and pool.replica are instances of pg.Pool (the same pg this app imports)', async () => {
    const pool = new Pool({ discovery: idle });
    try {
      assert.ok(pool instanceof pg.Pool);
      assert.ok(pool.primary instanceof pg.Pool);
      assert.ok(pool.replica instanceof RolePool && pool.replica instanceof pg.Pool);
      assert.equal(pool.ending, false);
      assert.equal(pool.ended, false);
      assert.equal(pool.totalCount, 0);
    } finally {
      await pool.end();
    }
    assert.equal(pool.ending, true);
    assert.equal(pool.ended, true);
  });
});
