import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type pg from 'pg';
import { NodePool } from '../../../lib/pooling/node-pool.js';
import { classify } from '../../../lib/retry/classify.js';
import { node } from '../../support/nodes.js';

/** A pg.Client stand-in that connects and answers at once (no network). */
class InstantClient extends EventEmitter {
  _queryable = true;
  _ending = false;
  connect(cb?: (err?: Error) => void): Promise<void> | void {
    if (cb) return void setImmediate(cb);
    return new Promise((resolve) => setImmediate(resolve));
  }
  query(_text: unknown, values?: unknown, cb?: unknown): Promise<unknown> | void {
    const callback = typeof values === 'function' ? values : cb;
    const result = { rows: [{ r: false }], rowCount: 1, command: 'SELECT', fields: [] };
    if (typeof callback === 'function') return void setImmediate(() => (callback as (e: null, r: unknown) => void)(null, result));
    return new Promise((resolve) => setImmediate(() => resolve(result)));
  }
  end(cb?: () => void): Promise<void> | void {
    this._ending = true;
    if (cb) return void setImmediate(cb);
    return Promise.resolve();
  }
}

function makePool(max: number): NodePool {
  const events = { forward: () => undefined, wants: () => false, confirmed: () => undefined, checkedOutError: () => undefined };
  return new NodePool({ max, Client: InstantClient as unknown as typeof pg.Client }, node('n1', 5001, 'primary'), 'primary', events);
}

describe('pooling/node-pool', () => {
  it('a checkout waiting for a free client fails at once, retryably, when the pool is retired', async () => {
    const pool = makePool(1);
    const held = await pool.checkout();
    let settled: unknown = 'pending';
    const waiting = pool.checkout().then(
      () => 'got a client',
      (err: unknown) => err,
    );
    void waiting.then((v) => (settled = v));
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, 'pending', 'the second checkout waits: the only client is held');
    const ended = pool.retire();
    const err = await waiting;
    assert.ok(err instanceof Error, `the waiting checkout failed (${String(err)})`);
    assert.match(err.message, /lost its primary role/);
    const c = classify(err, 'acquire', 'primary');
    assert.equal(c.retryable, true, 'the retry loop moves the statement to the new node');
    assert.equal(c.outcome, 'not-executed');
    held.release();
    await ended;
    assert.equal(pool.pg.totalCount, 0, 'the held client was destroyed on release');
  });

  it('a checkout after retirement fails at once', async () => {
    const pool = makePool(2);
    await pool.retire();
    await assert.rejects(pool.checkout(), /was closed/);
  });

  it('checkouts that are served normally are unaffected', async () => {
    const pool = makePool(2);
    const a = await pool.checkout();
    const b = await pool.checkout();
    a.release();
    b.release();
    assert.equal(pool.pg.idleCount, 2);
    await pool.retire();
  });
});
