import assert from 'node:assert/strict';
import type pg from 'pg';
import {
  checkedRows,
  queryAny,
  queryMany,
  queryMaybeOne,
  queryOne,
  queryValue,
  rowCountAccepted,
} from '../../../lib/query/helpers.js';
import type { Queryable } from '../../../lib/query/helpers.js';
import { PgConsulError, RowCountError } from '../../../lib/errors.js';
import type { RowCountExpectation } from '../../../lib/errors.js';

/** A Queryable answering every statement with the given rows (objects, or arrays for rowMode 'array'). */
function fake(rows: Array<Record<string, unknown>>, fields = rows[0] ? Object.keys(rows[0]) : ['x']) {
  const calls: Array<{ text: unknown; values: unknown }> = [];
  const q: Queryable = {
    async query(text, values) {
      calls.push({ text, values });
      const arrayMode = typeof text === 'object' && (text as { rowMode?: string }).rowMode === 'array';
      const out = arrayMode ? rows.map((r) => fields.map((f) => r[f])) : rows;
      return { command: 'SELECT', rowCount: rows.length, oid: 0, fields: [], rows: out } as unknown as pg.QueryResult;
    },
  };
  return { q, calls };
}

describe('query/helpers: row-count rules (table)', () => {
  const table: Array<[RowCountExpectation, number, boolean]> = [
    ['one', 0, false], ['one', 1, true], ['one', 2, false],
    ['value', 0, false], ['value', 1, true], ['value', 3, false],
    ['maybeOne', 0, true], ['maybeOne', 1, true], ['maybeOne', 2, false],
    ['many', 0, false], ['many', 1, true], ['many', 5, true],
  ];
  for (const [expected, n, accepted] of table) {
    it(`${expected} with ${n} row(s) → ${accepted ? 'accepted' : 'RowCountError'}`, () => {
      assert.equal(rowCountAccepted(expected, n), accepted);
      const rows = Array.from({ length: n }, (_, i) => i);
      if (accepted) assert.equal(checkedRows(expected, rows), rows);
      else {
        assert.throws(() => checkedRows(expected, rows), (err: unknown) => {
          assert.ok(err instanceof RowCountError);
          assert.ok(err instanceof PgConsulError);
          assert.equal(err.name, 'RowCountError');
          assert.equal(err.code, 'PGCONSUL_ROW_COUNT');
          assert.equal(err.expected, expected);
          assert.equal(err.rowCount, n);
          assert.equal(err.outcome, 'executed');
          assert.match(err.message, new RegExp(`got ${n}$`));
          return true;
        });
      }
    });
  }
});

describe('query/helpers: functions over a Queryable', () => {
  it('one returns the row and passes text and values through', async () => {
    const { q, calls } = fake([{ id: 7 }]);
    const row = await queryOne<{ id: number }>(q, 'SELECT id FROM t WHERE v = $1', ['x']);
    assert.deepEqual(row, { id: 7 });
    assert.deepEqual(calls, [{ text: { text: 'SELECT id FROM t WHERE v = $1', queryMode: 'extended' }, values: ['x'] }]);
  });

  it('one / maybeOne / many fail with the row count; maybeOne gives null; any gives []', async () => {
    await assert.rejects(queryOne(fake([]).q, 'S'), (e: unknown) => e instanceof RowCountError && e.rowCount === 0 && e.expected === 'one');
    await assert.rejects(queryOne(fake([{ a: 1 }, { a: 2 }]).q, 'S'), (e: unknown) => e instanceof RowCountError && e.rowCount === 2);
    assert.equal(await queryMaybeOne(fake([]).q, 'S'), null);
    assert.deepEqual(await queryMaybeOne(fake([{ a: 1 }]).q, 'S'), { a: 1 });
    await assert.rejects(queryMaybeOne(fake([{ a: 1 }, { a: 2 }]).q, 'S'), (e: unknown) => e instanceof RowCountError && e.expected === 'maybeOne' && e.rowCount === 2);
    await assert.rejects(queryMany(fake([]).q, 'S'), (e: unknown) => e instanceof RowCountError && e.expected === 'many' && e.rowCount === 0);
    assert.deepEqual(await queryMany(fake([{ a: 1 }, { a: 2 }]).q, 'S'), [{ a: 1 }, { a: 2 }]);
    assert.deepEqual(await queryAny(fake([]).q, 'S'), []);
  });

  it('value takes the first column by position (array rows), keeping the caller\'s QueryConfig', async () => {
    const { q, calls } = fake([{ n: 42, other: 'x' }]);
    assert.equal(await queryValue<number>(q, { text: 'SELECT n, other FROM t WHERE id = $1', values: [1], name: 'by-id' }), 42);
    assert.deepEqual(calls[0]!.text, { text: 'SELECT n, other FROM t WHERE id = $1', values: [1], name: 'by-id', queryMode: 'extended', rowMode: 'array' });
    const text = fake([{ n: null }]);
    assert.equal(await queryValue<number | null>(text.q, 'SELECT $1::int', [null]), null);
    assert.deepEqual(text.calls[0]!.text, { text: 'SELECT $1::int', values: [null], queryMode: 'extended', rowMode: 'array' });
    await assert.rejects(queryValue(fake([]).q, 'S'), (e: unknown) => e instanceof RowCountError && e.expected === 'value' && e.rowCount === 0);
    await assert.rejects(queryValue(fake([{}], []).q, 'SELECT FROM t'), TypeError);
  });

  it('refuses a text that certainly holds two statements before sending anything', async () => {
    for (const helper of [queryOne, queryMaybeOne, queryMany, queryAny, queryValue]) {
      const { q, calls } = fake([{ a: 1 }]);
      await assert.rejects(helper(q, 'INSERT INTO t VALUES (1); SELECT 1'), (e: unknown) => e instanceof TypeError && /single statement.*nothing was sent/.test(e.message));
      await assert.rejects(helper(q, { text: 'SELECT 1;\n-- c\nDELETE FROM t' }), TypeError);
      assert.deepEqual(calls, [], `${helper.name} sent nothing`);
    }
  });

  it('sends a text it cannot split with certainty with the extended protocol (the server refuses a second statement)', async () => {
    const { q, calls } = fake([{ a: 1 }]);
    await queryAny(q, "SELECT 'a\\b'; SELECT 2");
    assert.deepEqual(calls[0]!.text, { text: "SELECT 'a\\b'; SELECT 2", queryMode: 'extended' });
  });

  it('refuses a multi-statement text (a custom Queryable answers with several results)', async () => {
    const q: Queryable = {
      query: async () => [{ rows: [] }, { rows: [] }] as unknown as pg.QueryResult,
    };
    await assert.rejects(queryAny(q, 'SELECT 1; SELECT 2'), /single statement/);
  });

  it('passes query errors through unchanged', async () => {
    const boom = Object.assign(new Error('syntax'), { code: '42601', severity: 'ERROR' });
    const q: Queryable = { query: () => Promise.reject(boom) };
    await assert.rejects(queryOne(q, 'SELEC 1'), (e) => e === boom);
  });
});
