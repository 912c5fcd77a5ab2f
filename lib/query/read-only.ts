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

/** Kinds of significant tokens. */
type Kind = 'end' | 'word' | 'quoted-ident' | 'literal' | 'punct' | 'bad';

const CH_TAB = 9;
const CH_LF = 10;
const CH_VT = 11;
const CH_FF = 12;
const CH_CR = 13;
const CH_SPACE = 32;
const CH_DQUOTE = 34;
const CH_DOLLAR = 36;
const CH_AMP = 38;
const CH_QUOTE = 39;
const CH_STAR = 42;
const CH_MINUS = 45;
const CH_SLASH = 47;
const CH_0 = 48;
const CH_9 = 57;
const CH_BACKSLASH = 92;
const CH_UNDERSCORE = 95;

function isSpace(c: number): boolean {
  return c === CH_SPACE || c === CH_TAB || c === CH_LF || c === CH_CR || c === CH_FF || c === CH_VT;
}

function isIdentStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === CH_UNDERSCORE || c >= 128;
}

function isIdentChar(c: number): boolean {
  return isIdentStart(c) || (c >= CH_0 && c <= CH_9) || c === CH_DOLLAR;
}

function isDigit(c: number): boolean {
  return c >= CH_0 && c <= CH_9;
}

/**
 * A PostgreSQL lexer reduced to what the classifier needs: it yields significant tokens
 * (words lower-cased, quoted identifiers with their exact content, literals, single
 * punctuation characters) and skips whitespace and comments.
 */
class Lexer {
  readonly #s: string;
  #i = 0;
  /** Kind of the current token. */
  kind: Kind = 'end';
  /** Lower-cased word, quoted identifier content, or the punctuation character. */
  text = '';
  /** Why the text could not be lexed with certainty (for `'bad'`). */
  bad = '';

  constructor(s: string) {
    this.#s = s;
  }

  /** The current token's text (a method, so that checks on one token do not narrow the next). */
  value(): string {
    return this.text;
  }

  /** Whether the next significant character (after whitespace and comments) is `ch`. */
  peekIs(ch: number): boolean {
    const save = this.#i;
    const ok = this.#skipTrivia() && this.#s.charCodeAt(this.#i) === ch;
    this.#i = save;
    return ok;
  }

  /** Skips whitespace and comments; false when a block comment is unterminated. */
  #skipTrivia(): boolean {
    const s = this.#s;
    for (;;) {
      const c = s.charCodeAt(this.#i);
      if (isSpace(c)) {
        this.#i++;
      } else if (c === CH_MINUS && s.charCodeAt(this.#i + 1) === CH_MINUS) {
        this.#i += 2;
        while (this.#i < s.length) {
          const d = s.charCodeAt(this.#i);
          if (d === CH_LF || d === CH_CR) break;
          this.#i++;
        }
      } else if (c === CH_SLASH && s.charCodeAt(this.#i + 1) === CH_STAR) {
        // Block comments nest in PostgreSQL.
        let depth = 1;
        this.#i += 2;
        while (depth > 0) {
          if (this.#i >= s.length) return false;
          const d = s.charCodeAt(this.#i);
          if (d === CH_SLASH && s.charCodeAt(this.#i + 1) === CH_STAR) {
            depth++;
            this.#i += 2;
          } else if (d === CH_STAR && s.charCodeAt(this.#i + 1) === CH_SLASH) {
            depth--;
            this.#i += 2;
          } else {
            this.#i++;
          }
        }
      } else {
        return true;
      }
    }
  }

  #fail(why: string): Kind {
    this.bad = why;
    this.kind = 'bad';
    return 'bad';
  }

  /** A `'…'` literal starting at the quote; `escapes` for `E''` (backslash escapes). */
  #string(escapes: boolean, backslashIsLiteral: boolean): Kind {
    const s = this.#s;
    this.#i++; // opening quote
    for (;;) {
      if (this.#i >= s.length) return this.#fail('unterminated string literal');
      const c = s.charCodeAt(this.#i);
      if (c === CH_BACKSLASH) {
        if (escapes) {
          this.#i += 2;
          continue;
        }
        // Whether a backslash escapes the quote depends on standard_conforming_strings.
        if (!backslashIsLiteral) return this.#fail('backslash in a string literal');
      }
      if (c === CH_QUOTE) {
        if (s.charCodeAt(this.#i + 1) === CH_QUOTE) {
          this.#i += 2;
          continue;
        }
        this.#i++;
        this.kind = 'literal';
        return 'literal';
      }
      this.#i++;
    }
  }

  /** A `"…"` identifier starting at the quote. */
  #quotedIdent(): Kind {
    const s = this.#s;
    let out = '';
    let from = ++this.#i;
    for (;;) {
      if (this.#i >= s.length) return this.#fail('unterminated quoted identifier');
      if (s.charCodeAt(this.#i) === CH_DQUOTE) {
        out += s.slice(from, this.#i);
        if (s.charCodeAt(this.#i + 1) === CH_DQUOTE) {
          out += '"';
          this.#i += 2;
          from = this.#i;
          continue;
        }
        this.#i++;
        this.text = out;
        this.kind = 'quoted-ident';
        return 'quoted-ident';
      }
      this.#i++;
    }
  }

  /** A `$tag$…$tag$` literal or a `$n` parameter starting at the dollar. */
  #dollar(): Kind {
    const s = this.#s;
    const start = this.#i;
    let j = start + 1;
    if (isDigit(s.charCodeAt(j))) {
      while (isDigit(s.charCodeAt(j))) j++;
      this.#i = j;
      this.kind = 'literal'; // a parameter is a value
      return 'literal';
    }
    if (isIdentStart(s.charCodeAt(j))) {
      while (j < s.length && isIdentChar(s.charCodeAt(j)) && s.charCodeAt(j) !== CH_DOLLAR) j++;
    }
    if (s.charCodeAt(j) !== CH_DOLLAR) {
      // A lone `$` is not valid SQL here: be unsure.
      return this.#fail('unexpected $');
    }
    const delimiter = s.slice(start, j + 1);
    const close = s.indexOf(delimiter, j + 1);
    if (close === -1) return this.#fail('unterminated dollar-quoted string');
    this.#i = close + delimiter.length;
    this.kind = 'literal';
    return 'literal';
  }

  /** Advances to the next significant token and returns its kind. */
  next(): Kind {
    if (!this.#skipTrivia()) return this.#fail('unterminated comment');
    const s = this.#s;
    if (this.#i >= s.length) {
      this.kind = 'end';
      return 'end';
    }
    const c = s.charCodeAt(this.#i);
    const c1 = s.charCodeAt(this.#i + 1);
    if (c === CH_QUOTE) return this.#string(false, false);
    if (c === CH_DQUOTE) return this.#quotedIdent();
    if (c === CH_DOLLAR) return this.#dollar();
    if (isIdentStart(c)) {
      // Literal prefixes: E'…', B'…', X'…', N'…', U&'…', U&"…".
      if (c1 === CH_QUOTE) {
        const p = c | 0x20;
        if (p === 101 /* e */) {
          this.#i++;
          return this.#string(true, false);
        }
        if (p === 98 /* b */ || p === 120 /* x */ || p === 110 /* n */) {
          this.#i++;
          return this.#string(false, false);
        }
      }
      if ((c | 0x20) === 117 /* u */ && c1 === CH_AMP) {
        const c2 = s.charCodeAt(this.#i + 2);
        if (c2 === CH_QUOTE) {
          this.#i += 2;
          return this.#string(false, true);
        }
        if (c2 === CH_DQUOTE) return this.#fail('U&"…" identifier');
      }
      const start = this.#i;
      let j = start + 1;
      while (j < s.length && isIdentChar(s.charCodeAt(j))) j++;
      this.#i = j;
      this.text = s.slice(start, j).toLowerCase();
      this.kind = 'word';
      return 'word';
    }
    if (isDigit(c) || (c === 46 /* . */ && isDigit(c1))) {
      let j = this.#i + 1;
      while (j < s.length) {
        const d = s.charCodeAt(j);
        if (isIdentChar(d) || d === 46) j++;
        else if ((d === 43 || d === CH_MINUS) && ((s.charCodeAt(j - 1) | 0x20) === 101)) j++; // 1e+5
        else break;
      }
      this.#i = j;
      this.kind = 'literal';
      return 'literal';
    }
    this.#i++;
    this.text = s[this.#i - 1]!;
    this.kind = 'punct';
    return 'punct';
  }
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
  let kind = lx.next();
  // Leading parentheses: `(SELECT 1) UNION (SELECT 2)`.
  while (kind === 'punct' && lx.value() === '(') kind = lx.next();
  if (kind === 'bad') return lx.bad;
  if (kind !== 'word') return kind === 'end' ? 'empty statement' : 'does not start with a keyword';
  let first = lx.value();
  let planOnly = false;
  if (first === 'explain') {
    let analyze = false;
    kind = lx.next();
    if (kind === 'punct' && lx.value() === '(') {
      // EXPLAIN ( option [value] [, …] ): any ANALYZE option counts, whatever its value.
      for (;;) {
        kind = lx.next();
        if (kind === 'bad') return lx.bad;
        if (kind === 'end') return 'unterminated EXPLAIN options';
        if (kind === 'punct' && lx.value() === ')') break;
        if (kind === 'word' && (lx.value() === 'analyze' || lx.value() === 'analyse')) analyze = true;
      }
      kind = lx.next();
    } else {
      while (kind === 'word' && (lx.value() === 'analyze' || lx.value() === 'analyse' || lx.value() === 'verbose')) {
        if (lx.value() !== 'verbose') analyze = true;
        kind = lx.next();
      }
    }
    while (kind === 'punct' && lx.value() === '(') kind = lx.next();
    if (kind === 'bad') return lx.bad;
    if (kind !== 'word') return 'EXPLAIN of an unknown statement';
    first = lx.value();
    if (analyze) {
      if (!READ_STARTS.has(first) || first === 'show') return EXPLAINABLE.has(first) ? `writes: ${first}` : `not a read: ${first}`;
    } else {
      if (!EXPLAINABLE.has(first)) return `EXPLAIN of ${first}`;
      planOnly = true;
    }
  } else if (!READ_STARTS.has(first)) {
    return `not a read: ${first}`;
  }

  let prevWord = '';
  for (;;) {
    kind = lx.next();
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
