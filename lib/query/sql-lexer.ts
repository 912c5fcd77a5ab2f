/**
 * A PostgreSQL lexer reduced to what the read-only classifier and the statement splitter of
 * the query helpers need: comments (nested block comments too), string literals with their
 * `E''` / `U&''` / `B''` / `X''` forms, dollar quotes, quoted identifiers and `$n` parameters,
 * so that keywords inside literals and comments never count.
 *
 * @example
 * ```ts
 * const lx = new Lexer("SELECT 'delete' -- no\n FROM t");
 * lx.next(); lx.value(); // 'word', 'select'
 * lx.next();             // 'literal'
 * ```
 * @module
 */

/** Kinds of significant tokens. */
export type TokenKind = 'end' | 'word' | 'quoted-ident' | 'literal' | 'punct' | 'bad';

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
export class Lexer {
  readonly #s: string;
  #i = 0;
  /** TokenKind of the current token. */
  kind: TokenKind = 'end';
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

  #fail(why: string): TokenKind {
    this.bad = why;
    this.kind = 'bad';
    return 'bad';
  }

  /** A `'…'` literal starting at the quote; `escapes` for `E''` (backslash escapes). */
  #string(escapes: boolean, backslashIsLiteral: boolean): TokenKind {
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
  #quotedIdent(): TokenKind {
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
  #dollar(): TokenKind {
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
  next(): TokenKind {
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
