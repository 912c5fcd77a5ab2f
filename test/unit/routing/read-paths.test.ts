import assert from 'node:assert/strict';
import { isReadOnlyStatement } from '../../../lib/query/read-only.js';
import { VERDICT_CACHE_MAX_CHARS, VERDICT_CACHE_SIZE, isCertainlyReadOnly } from '../../../lib/routing/read-paths.js';

describe('routing/read-paths: isCertainlyReadOnly (memoized classifier)', () => {
  it('gives the classifier verdict, first and repeated', () => {
    for (const sql of ['SELECT 1', 'DELETE FROM t', "SELECT nextval('s')", 'SELECT * FROM t FOR UPDATE']) {
      assert.equal(isCertainlyReadOnly(sql), isReadOnlyStatement(sql));
      assert.equal(isCertainlyReadOnly(sql), isReadOnlyStatement(sql));
    }
  });

  it('is false for anything but a string', () => {
    for (const x of [undefined, null, 1, {}, ['SELECT 1']]) assert.equal(isCertainlyReadOnly(x), false);
  });

  it('stays correct past its size (it starts over) and for texts too long to remember', () => {
    for (let i = 0; i < VERDICT_CACHE_SIZE * 2 + 3; i++) {
      assert.equal(isCertainlyReadOnly(`SELECT ${i}`), true);
      assert.equal(isCertainlyReadOnly(`DELETE FROM t WHERE id = ${i}`), false);
    }
    const long = `SELECT ${'1 + '.repeat(VERDICT_CACHE_MAX_CHARS)}1`;
    assert.equal(isCertainlyReadOnly(long), true);
    assert.equal(isCertainlyReadOnly(`${long}; DELETE FROM t`), false);
  });
});
