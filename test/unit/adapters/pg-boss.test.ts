import assert from 'node:assert/strict';
import { pgBossDb } from '../../../lib/index.js';

describe('adapters/pg-boss: pgBossDb', () => {
  it('runs executeSql(text, values) as pool.query(text, values) and resolves with its result', async () => {
    const calls: unknown[][] = [];
    const result = { rows: [{ id: 1 }] };
    const db = pgBossDb({ query: async (text, values) => (calls.push([text, values]), result) });
    assert.equal(await db.executeSql('SELECT $1', [1]), result);
    assert.equal(await db.executeSql('SELECT 2'), result);
    assert.deepEqual(calls, [['SELECT $1', [1]], ['SELECT 2', undefined]]);
  });
  it('passes a rejection through unchanged', async () => {
    const err = Object.assign(new Error('boom'), { code: '42P01' });
    const db = pgBossDb({ query: () => Promise.reject(err) });
    await assert.rejects(db.executeSql('SELECT 1'), (e) => e === err);
  });
});
