import assert from 'node:assert/strict';
import { hasSecondStatement, isReadOnlyStatement, readOnlyVerdict } from '../../../lib/query/read-only.js';

/** `read: true` = certainly read-only (replica); otherwise the verdict must contain `why`. */
interface Case {
  readonly sql: unknown;
  readonly read: boolean;
  readonly why?: string;
  readonly note?: string;
}

const cases: readonly Case[] = [
  // Plain reads.
  { sql: 'SELECT 1', read: true },
  { sql: 'select * from t where id = $1', read: true, note: 'lower case, parameter' },
  { sql: 'SeLeCt id FrOm t', read: true, note: 'mixed case' },
  { sql: '   \n\t SELECT 1', read: true, note: 'leading whitespace' },
  { sql: '((SELECT 1)) UNION (SELECT 2)', read: true, note: 'leading parentheses' },
  { sql: 'SELECT 1;', read: true, note: 'one trailing semicolon' },
  { sql: 'SELECT 1; -- done\n', read: true, note: 'comment after the semicolon' },
  { sql: 'VALUES (1), (2)', read: true },
  { sql: 'TABLE accounts', read: true },
  { sql: 'SHOW search_path', read: true },
  { sql: 'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r', read: true },
  { sql: 'SELECT count(*)::int, now(), lower(name) FROM users GROUP BY 2, 3', read: true, note: 'ordinary functions' },
  { sql: 'SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()', read: true },
  { sql: 'SELECT substring(name FROM 1 FOR 3) FROM t', read: true, note: 'FOR not followed by a lock strength' },
  // Keywords hidden in literals and comments do not count.
  { sql: "SELECT 'delete from t; update' AS word", read: true, note: 'keywords in a string' },
  { sql: "SELECT 'it''s' AS s, 'FOR UPDATE' AS t", read: true, note: 'doubled quote' },
  { sql: "SELECT E'it\\'s ; delete' AS s", read: true, note: 'E-string backslash escape' },
  { sql: 'SELECT $$ DELETE FROM t; $$ AS body', read: true, note: 'dollar quote' },
  { sql: 'SELECT $fn$ INSERT $x$ nested $x$ $fn$ AS body', read: true, note: 'tagged dollar quote with a different inner tag' },
  { sql: 'SELECT "update", "delete" FROM "insert"', read: true, note: 'quoted identifiers' },
  { sql: 'SELECT 1 /* FOR UPDATE */', read: true, note: 'lock clause inside a block comment' },
  { sql: 'SELECT 1 /* outer /* nested */ still a comment; DELETE */', read: true, note: 'nested block comment' },
  { sql: 'SELECT 1 -- ; DELETE FROM t\n', read: true, note: 'line comment' },
  { sql: "SELECT U&'d\\0061t\\+000061' AS s", read: true, note: 'U& string literal' },
  { sql: "SELECT x'1F', b'101', n'abc'", read: true, note: 'bit, hex and national literals' },
  { sql: 'SELECT a$b FROM t', read: true, note: '$ inside an identifier' },
  { sql: 'SELECT 1.5e+3, .5', read: true, note: 'numbers' },
  // EXPLAIN.
  { sql: 'EXPLAIN SELECT * FROM t', read: true },
  { sql: 'EXPLAIN DELETE FROM t', read: true, note: 'plain EXPLAIN only plans the write' },
  { sql: 'EXPLAIN (FORMAT JSON) UPDATE t SET v = 1', read: true },
  { sql: 'EXPLAIN ANALYZE SELECT * FROM t', read: true },
  { sql: 'EXPLAIN ANALYZE DELETE FROM t', read: false, why: 'writes: delete' },
  { sql: 'EXPLAIN (ANALYZE, BUFFERS) INSERT INTO t VALUES (1)', read: false, why: 'writes: insert' },
  { sql: 'explain analyse verbose update t set v = 2', read: false, why: 'writes: update', note: 'British spelling' },
  { sql: 'EXPLAIN (ANALYZE false) DELETE FROM t', read: false, why: 'writes: delete', note: 'any ANALYZE option counts' },
  { sql: "EXPLAIN ANALYZE SELECT nextval('s')", read: false, why: 'nextval()' },
  { sql: 'EXPLAIN CREATE TABLE x AS SELECT 1', read: false, why: 'EXPLAIN of create' },
  { sql: 'EXPLAIN SELECT 1; DELETE FROM t', read: false, why: 'multiple statements' },
  // Writes and locks.
  { sql: 'INSERT INTO t VALUES (1)', read: false, why: 'not a read: insert' },
  { sql: 'update t set v = 1', read: false, why: 'not a read: update' },
  { sql: 'DELETE FROM t', read: false, why: 'not a read: delete' },
  { sql: 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', read: false, why: 'not a read: merge' },
  { sql: 'SELECT * FROM t FOR UPDATE', read: false, why: 'locks: FOR UPDATE' },
  { sql: 'SELECT * FROM t for no key update', read: false, why: 'locks: FOR NO' },
  { sql: 'SELECT * FROM t FOR SHARE SKIP LOCKED', read: false, why: 'locks: FOR SHARE' },
  { sql: 'SELECT * FROM t FOR KEY SHARE', read: false, why: 'locks: FOR KEY' },
  { sql: 'SELECT * FROM t FOR /* sneaky */ UPDATE', read: false, why: 'locks: FOR UPDATE', note: 'comment between FOR and UPDATE' },
  { sql: 'SELECT * FROM t --\nFOR UPDATE', read: false, why: 'locks: FOR UPDATE', note: 'line comment before the lock clause' },
  { sql: 'SELECT * INTO new_table FROM t', read: false, why: 'writes: into' },
  { sql: 'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', read: false, why: 'writes: delete' },
  { sql: 'WITH u AS (UPDATE t SET v = 1 RETURNING id) SELECT count(*) FROM u', read: false, why: 'writes: update' },
  { sql: 'WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x', read: false, why: 'writes: insert' },
  { sql: 'WITH m AS (MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE RETURNING *) SELECT 1', read: false, why: 'writes: merge' },
  // Functions that write, lock or change session state.
  { sql: "SELECT nextval('s')", read: false, why: 'writes: nextval()' },
  { sql: "SELECT pg_catalog.nextval ('s')", read: false, why: 'writes: nextval()', note: 'schema-qualified, space before (' },
  { sql: 'SELECT "nextval"(\'s\')', read: false, why: 'writes: nextval()', note: 'quoted function name' },
  { sql: "SELECT NEXTVAL('s')", read: false, why: 'writes: nextval()', note: 'upper case' },
  { sql: "SELECT setval('s', 10)", read: false, why: 'setval()' },
  { sql: 'SELECT pg_advisory_lock(1)', read: false, why: 'pg_advisory_lock()' },
  { sql: 'SELECT pg_try_advisory_xact_lock(1)', read: false, why: 'pg_try_advisory_xact_lock()' },
  { sql: 'SELECT txid_current()', read: false, why: 'txid_current()' },
  { sql: "SELECT pg_notify('ch', 'x')", read: false, why: 'pg_notify()' },
  { sql: "SELECT set_config('app.user', '1', false)", read: false, why: 'set_config()' },
  { sql: "SELECT lo_import('/tmp/x')", read: false, why: 'lo_import()' },
  { sql: "SELECT * FROM dblink('conn', 'DELETE FROM t') AS x(a int)", read: false, why: 'dblink()' },
  { sql: "SELECT query_to_xml('DELETE FROM t RETURNING 1', true, true, '')", read: false, why: 'query_to_xml()' },
  { sql: 'VALUES (nextval(\'s\'))', read: false, why: 'nextval()' },
  { sql: 'SELECT id FROM t WHERE v = (SELECT currval(\'s\'))', read: false, why: 'currval()' },
  // Multiple statements and other statements.
  { sql: 'SELECT 1; DELETE FROM t', read: false, why: 'multiple statements' },
  { sql: "SELECT ';'; SELECT 2", read: false, why: 'multiple statements', note: 'a quoted ; does not split, the real one does' },
  { sql: 'SET search_path = x', read: false, why: 'not a read: set' },
  { sql: 'BEGIN', read: false, why: 'not a read: begin' },
  { sql: 'COPY (SELECT 1) TO STDOUT', read: false, why: 'not a read: copy' },
  { sql: 'CALL proc()', read: false, why: 'not a read: call' },
  { sql: 'LOCK TABLE t', read: false, why: 'not a read: lock' },
  { sql: "DO $$ BEGIN PERFORM 1; END $$", read: false, why: 'not a read: do' },
  // Unsure lexing: primary.
  { sql: '', read: false, why: 'empty statement' },
  { sql: '   -- only a comment', read: false, why: 'empty statement' },
  { sql: "SELECT 'unterminated", read: false, why: 'unterminated string literal' },
  { sql: 'SELECT $$ unterminated', read: false, why: 'unterminated dollar-quoted string' },
  { sql: 'SELECT 1 /* unterminated', read: false, why: 'unterminated comment' },
  { sql: 'SELECT "unterminated', read: false, why: 'unterminated quoted identifier' },
  { sql: "SELECT 'a\\' , ' ; DELETE FROM t; --'", read: false, why: 'backslash in a string literal', note: 'standard_conforming_strings=off reading' },
  { sql: 'SELECT U&"\\006Eextval"(\'s\')', read: false, why: 'U&"…" identifier' },
  { sql: '(1)', read: false, why: 'does not start with a keyword' },
  { sql: 42, read: false, why: 'not SQL text' },
  { sql: undefined, read: false, why: 'not SQL text' },
];

describe('query/read-only', () => {
  it('has at least 40 cases', () => assert.ok(cases.length >= 40, `${cases.length} cases`));

  for (const c of cases) {
    const title = `${c.read ? 'read ' : 'write'} ${JSON.stringify(c.sql)}${c.note ? ` (${c.note})` : ''}`;
    it(title, () => {
      const verdict = readOnlyVerdict(c.sql);
      assert.equal(isReadOnlyStatement(c.sql), c.read, `verdict: ${verdict}`);
      if (c.read) assert.equal(verdict, undefined);
      else assert.ok(verdict?.includes(c.why ?? ''), `verdict ${JSON.stringify(verdict)} should mention ${JSON.stringify(c.why)}`);
    });
  }

  it('classifies a long statement quickly (linear scan)', () => {
    const sql = `SELECT ${Array.from({ length: 2000 }, (_, i) => `'v${i}' AS c${i}`).join(', ')} FROM t`;
    const started = process.hrtime.bigint();
    assert.equal(isReadOnlyStatement(sql), true);
    assert.ok(Number(process.hrtime.bigint() - started) / 1e6 < 200);
  });
});

describe('query/read-only: hasSecondStatement (the helpers\' pre-send check)', () => {
  const table: Array<[string, boolean | undefined]> = [
    ['SELECT 1', false],
    ['SELECT 1;', false],
    ['SELECT 1;;  -- trailing comment', false],
    ["SELECT ';' AS semi", false],
    ['SELECT $$a; b$$', false],
    ['SELECT "x;y" FROM t', false],
    ['SELECT 1 /* ; nested /* ; */ */', false],
    ['SELECT 1; SELECT 2', true],
    ['INSERT INTO t VALUES (1);\nDELETE FROM t', true],
    ['SELECT 1;; SELECT 2', true],
    ["SELECT 'a\\b'; SELECT 2", undefined],
    ["SELECT 'unterminated; SELECT 2", undefined],
    ['CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END', undefined],
  ];
  for (const [sql, expected] of table) {
    it(`${JSON.stringify(sql)} → ${String(expected)}`, () => assert.equal(hasSecondStatement(sql), expected));
  }
});
