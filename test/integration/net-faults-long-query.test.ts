/**
 * No false positive: a 30 s statement on a live but CPU-saturated primary completes — the
 * dead-peer probe (a fresh connection) finds the server alive and touches nothing.
 */
import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import pg from 'pg';
import { FaultLoad } from '../../lib/testing/fault-load.js';
import { checkLoad, startNetFaultEnv } from '../support/net-fault-fixture.js';
import type { NetFaultEnv } from '../support/net-fault-fixture.js';

describe('network faults: no false positive', function () {
  this.timeout(90_000);
  let env: NetFaultEnv | undefined;
  after(async () => {
    await env?.stop();
  });

  it('a 30 s pg_sleep on a live, CPU-saturated primary completes; nothing is marked unreachable', async () => {
    env = await startNetFaultEnv(1);
    const node = env.cluster.node('node1');
    // Two backends burning CPU on the primary for the whole test (the machine has 2 cores).
    const burners = [1, 2].map(async () => {
      const c = new pg.Client({ host: node.host, port: node.port, user: 'postgres', database: 'postgres' });
      c.on('error', () => {});
      await c.connect();
      try {
        await c.query("SET statement_timeout = '33s'");
        await c.query('SELECT count(*) FROM generate_series(1, 100000000000)').catch(() => undefined);
      } finally {
        await c.end().catch(() => undefined);
      }
    });
    const pool = env.newPool();
    const unreachable: unknown[] = [];
    (pool as unknown as EventEmitter).on('unreachable', (e: unknown) => unreachable.push(e));
    const load = await FaultLoad.start({ write: (t, v) => pool.query(t, v), read: (t) => pool.replica.query(t), writers: 2, readers: 1, intervalMillis: 50 });
    const t0 = Date.now();
    const res = await pool.query('SELECT pg_sleep(30), 42 AS answer');
    const took = Date.now() - t0;
    assert.equal(res.rows[0]?.answer, 42, 'the long statement completed');
    assert.ok(took >= 30_000, `it really ran 30 s (${took} ms)`);
    await checkLoad(env, load, { settleBoundMillis: 5_000, finalPrimary: 'node1', noReadErrors: true });
    assert.equal(load.failures().length, 0, 'no statement failed on the live server');
    assert.deepEqual(unreachable, [], 'the live server was never marked unreachable');
    await Promise.all(burners);
  });
});
