/**
 * A conservative, pure classifier that tells whether one SQL statement is *certainly*
 * read-only — safe to run on a hot-standby replica and meaning the same there. Anything it is
 * unsure about is "not read-only" (it goes to the primary). Used by `autoReadRouting`.
 *
 * It lexes the text the way PostgreSQL does (comments, nested block comments, string
 * literals with their `E''` / `U&''` / `B''` / `X''` forms, dollar quotes, quoted identifiers,
 * `$n` parameters), so keywords inside literals and comments never count, and then accepts:
 *
 * - `SELECT`, `WITH … SELECT`, `VALUES`, `TABLE`, `SHOW` (optionally after opening parentheses),
 * - `EXPLAIN` of any plannable statement without `ANALYZE` (nothing is executed), and
 *   `EXPLAIN ANALYZE` of a statement that is itself read-only,
 *
 * and rejects the statement when it contains, outside literals and comments:
 * `INSERT`, `UPDATE`, `DELETE`, `MERGE` (a data-modifying CTE), `INTO` (`SELECT … INTO`
 * creates a table), a locking clause (`FOR UPDATE`, `FOR NO KEY UPDATE`, `FOR SHARE`,
 * `FOR KEY SHARE`), a call of a function that writes, locks, changes session state or fails
 * on a standby (`nextval`, `setval`, `pg_advisory_*`, `txid_current`, `pg_notify`,
 * `set_config`, `lo_*`, `dblink*`, `query_to_xml`…), a second statement after `;`, a `U&"…"`
 * identifier (its escapes could spell anything), a backslash in a plain string literal (its
 * meaning depends on `standard_conforming_strings`), or an unterminated literal or comment.
 *
 * What it cannot see: a function *you* wrote that writes (`SELECT create_order(…)`) looks like
 * a read. Such a statement fails on a replica with SQLSTATE 25006 before changing anything,
 * and auto read routing then runs it on the primary; a function with effects outside the
 * database (HTTP calls…) would have had them on the replica first — call those through
 * `pool.primary`.
 *
 * @example
 * ```ts
 * isReadOnlyStatement('SELECT * FROM t WHERE id = $1');         // true
 * isReadOnlyStatement("SELECT 'delete' AS word");              // true
 * isReadOnlyStatement('SELECT * FROM t /* x *\/ FOR UPDATE');   // false
 * readOnlyVerdict("SELECT nextval('s')");                       // 'writes: nextval()'
 * ```
 * @module
 */
import { Lexer } from './sql-lexer.js';
import type { TokenKind } from './sql-lexer.js';

/** Keywords that start a statement that may be read-only. */
const READ_STARTS: ReadonlySet<string> = new Set(['select', 'with', 'values', 'table', 'show']);

/** Statements `EXPLAIN` (without `ANALYZE`) plans but does not run. */
const EXPLAINABLE: ReadonlySet<string> = new Set(['select', 'with', 'values', 'table', 'insert', 'update', 'delete', 'merge']);

/** Words that, anywhere outside literals, make a statement a write (or create a table). */
const WRITE_WORDS: ReadonlySet<string> = new Set(['insert', 'update', 'delete', 'merge', 'into']);

/** Words after `FOR` that make a locking clause. */
const LOCK_AFTER_FOR: ReadonlySet<string> = new Set(['update', 'share', 'no', 'key']);

/**
 * Functions that write, take locks, change session state, act on the server they run on, or
 * fail on a standby: a call routes the statement to the primary.
 */
const DENIED_FUNCTIONS: ReadonlySet<string> = new Set([
  'nextval',
  'setval',
  'currval',
  'lastval',
  'txid_current',
  'txid_current_if_assigned',
  'pg_current_xact_id',
  'pg_current_xact_id_if_assigned',
  'pg_notify',
  'set_config',
  'setseed',
  'lowrite',
  'loread',
  'pg_cancel_backend',
  'pg_terminate_backend',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_switch_wal',
  'pg_create_restore_point',
  'pg_promote',
  'pg_start_backup',
  'pg_stop_backup',
  'pg_export_snapshot',
  'pg_import_system_collations',
  'pg_log_backend_memory_contexts',
  'pg_stat_statements_reset',
]);

/** Prefixes of function names treated like {@link DENIED_FUNCTIONS}. */
const DENIED_PREFIXES: readonly string[] = [
  'pg_advisory_',
  'pg_try_advisory_',
  'lo_',
  'dblink',
  'pg_current_wal_',
  'pg_walfile_name',
  'pg_wal_replay_',
  'pg_backup_',
  'pg_create_',
  'pg_drop_',
  'pg_replication_',
  'pg_logical_',
  'pg_copy_',
  'pg_stat_reset',
  'pg_file_',
  'query_to_',
  'cursor_to_',
];

function deniedFunction(name: string): boolean {
  if (DENIED_FUNCTIONS.has(name)) return true;
  for (const prefix of DENIED_PREFIXES) if (name.startsWith(prefix)) return true;
  return false;
}

/**
 * Why a statement is not certainly read-only, or `undefined` when it is. Pure and
 * allocation-light; never throws.
 *
 * @param text the SQL text of one statement (anything else — not a string — is not read-only)
 * @returns `undefined` for a certainly read-only statement, else a short reason such as
 *   `'writes: delete'`, `'locks: FOR UPDATE'`, `'writes: nextval()'`, `'multiple statements'`
 *
 * @example
 * ```ts
 * readOnlyVerdict('WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d'); // 'writes: delete'
 * readOnlyVerdict('EXPLAIN DELETE FROM t');                                 // undefined (only planned)
 * readOnlyVerdict('EXPLAIN ANALYZE DELETE FROM t');                         // 'writes: delete'
 * ```
 */
export function readOnlyVerdict(text: unknown): string | undefined {
  if (typeof text !== 'string') return 'not SQL text';
  const lx = new Lexer(text);
  // Leading parentheses: `(SELECT 1) UNION (SELECT 2)`.
  const kind = skipOpenParens(lx, lx.next());
  if (kind === 'bad') return lx.bad;
  if (kind !== 'word') return kind === 'end' ? 'empty statement' : 'does not start with a keyword';
  const first = lx.value();
  if (first === 'explain') return explainVerdict(lx);
  if (!READ_STARTS.has(first)) return `not a read: ${first}`;
  return bodyVerdict(lx, false);
}

/** Skips opening parentheses from the current token `kind`; returns the kind of the first other token. */
function skipOpenParens(lx: Lexer, kind: TokenKind): TokenKind {
  while (kind === 'punct' && lx.value() === '(') kind = lx.next();
  return kind;
}

function isAnalyze(word: string): boolean {
  return word === 'analyze' || word === 'analyse';
}

/**
 * Reads the options after `EXPLAIN` (the current token): whether one of them is ANALYZE
 * (any ANALYZE option counts, whatever its value), or why they cannot be read. Leaves the
 * token after the options current.
 */
function explainAnalyzes(lx: Lexer): boolean | string {
  let analyze = false;
  let kind = lx.next();
  if (kind === 'punct' && lx.value() === '(') {
    // EXPLAIN ( option [value] [, …] )
    for (;;) {
      kind = lx.next();
      if (kind === 'bad') return lx.bad;
      if (kind === 'end') return 'unterminated EXPLAIN options';
      if (kind === 'punct' && lx.value() === ')') break;
      if (kind === 'word' && isAnalyze(lx.value())) analyze = true;
    }
    lx.next();
    return analyze;
  }
  while (kind === 'word' && (isAnalyze(lx.value()) || lx.value() === 'verbose')) {
    if (lx.value() !== 'verbose') analyze = true;
    kind = lx.next();
  }
  return analyze;
}

/**
 * The verdict on `EXPLAIN …` (the current token is `EXPLAIN`): without ANALYZE any plannable
 * statement (it is only planned); with ANALYZE only a read.
 */
function explainVerdict(lx: Lexer): string | undefined {
  const analyze = explainAnalyzes(lx);
  if (typeof analyze === 'string') return analyze;
  const kind = skipOpenParens(lx, lx.kind);
  if (kind === 'bad') return lx.bad;
  if (kind !== 'word') return 'EXPLAIN of an unknown statement';
  const first = lx.value();
  if (analyze) {
    if (!READ_STARTS.has(first) || first === 'show') return EXPLAINABLE.has(first) ? `writes: ${first}` : `not a read: ${first}`;
    return bodyVerdict(lx, false);
  }
  if (!EXPLAINABLE.has(first)) return `EXPLAIN of ${first}`;
  return bodyVerdict(lx, true);
}

/**
 * The verdict on the rest of a statement after its leading keyword: a write word, a locking
 * clause, a denied function call (none of which counts when the statement is `planOnly`), a
 * second statement, or a token that does not lex.
 */
function bodyVerdict(lx: Lexer, planOnly: boolean): string | undefined {
  let prevWord = '';
  for (;;) {
    const kind = lx.next();
    switch (kind) {
      case 'end':
        return undefined;
      case 'bad':
        return lx.bad;
      case 'literal':
        prevWord = '';
        break;
      case 'punct':
        if (lx.value() === ';') {
          // Only whitespace and comments may follow the one statement.
          const after = lx.next();
          return after === 'end' ? undefined : after === 'bad' ? lx.bad : 'multiple statements';
        }
        prevWord = '';
        break;
      case 'quoted-ident':
        if (!planOnly && lx.peekIs(40 /* ( */) && deniedFunction(lx.value())) return `writes: ${lx.value()}()`;
        prevWord = '';
        break;
      case 'word': {
        const w = lx.value();
        if (!planOnly) {
          if (WRITE_WORDS.has(w)) return prevWord === 'for' ? `locks: FOR ${w.toUpperCase()}` : `writes: ${w}`;
          if (prevWord === 'for' && LOCK_AFTER_FOR.has(w)) return `locks: FOR ${w.toUpperCase()}`;
          if (lx.peekIs(40 /* ( */) && deniedFunction(w)) return `writes: ${w}()`;
        }
        prevWord = w;
        break;
      }
    }
  }
}

/**
 * Whether a statement is certainly read-only (see the module notes for the exact rules).
 * Pure; `false` whenever unsure.
 *
 * @param text SQL text of one statement
 *
 * @example
 * ```ts
 * if (isReadOnlyStatement(sql)) await pool.replica.query(sql); else await pool.query(sql);
 * ```
 */
export function isReadOnlyStatement(text: unknown): boolean {
  return readOnlyVerdict(text) === undefined;
}

/**
 * Whether SQL text certainly holds a second statement after a top-level `;`, lexed like
 * PostgreSQL (comments, literals, dollar quotes and quoted identifiers never split). Pure;
 * never throws. Used by the typed query helpers to refuse a script before sending anything.
 *
 * @param text SQL text
 * @returns `true` when a second statement certainly follows; `false` when there is certainly
 *   one (empty statements such as a trailing `;;` do not count); `undefined` when the text
 *   cannot be split with certainty: it does not lex (a backslash in a plain string literal,
 *   whose meaning depends on `standard_conforming_strings`, …) or it has a `BEGIN ATOMIC`
 *   body, whose `;` do not end the statement
 *
 * @example
 * ```ts
 * hasSecondStatement('SELECT 1; SELECT 2');  // true
 * hasSecondStatement("SELECT ';' ;");        // false
 * hasSecondStatement("SELECT 'a\\b'; SELECT 2"); // undefined (backslash in a plain literal)
 * ```
 */
export function hasSecondStatement(text: string): boolean | undefined {
  const lx = new Lexer(text);
  let prevWord = '';
  for (;;) {
    let kind = lx.next();
    if (kind === 'end') return false;
    if (kind === 'bad') return undefined;
    if (kind === 'word') {
      if (prevWord === 'begin' && lx.value() === 'atomic') return undefined;
      prevWord = lx.value();
      continue;
    }
    prevWord = '';
    if (kind !== 'punct' || lx.value() !== ';') continue;
    do kind = lx.next();
    while (kind === 'punct' && lx.value() === ';');
    if (kind === 'end') return false;
    if (kind === 'bad') return undefined;
    return true;
  }
}
