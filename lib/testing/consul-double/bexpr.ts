/**
 * A subset of HashiCorp's boolean expression language (go-bexpr), as Consul evaluates it for
 * `?filter=` on catalog, health and agent listings. Pure.
 *
 * Supported: `and`, `or`, `not`, parentheses; `<sel> == <v>`, `<sel> != <v>`,
 * `<v> in <sel>`, `<v> not in <sel>`, `<sel> contains <v>`, `<sel> not contains <v>`,
 * `<sel> is empty`, `<sel> is not empty`, `<sel> matches <re>`, `<sel> not matches <re>`.
 * Selectors are dotted paths (`Service.Tags`, `Node.Meta.rack`, `Service.Meta["a-b"]`);
 * values are `"double"` or `` `raw` `` quoted strings, or bare words / numbers.
 * A selector that walks through a list (`Checks.Status`) matches when any element matches.
 * @module
 */

/** A compiled filter: call it on the JSON shape of one result entry. */
export type FilterPredicate = (entry: unknown) => boolean;

/** Raised for a syntax error or an unknown selector; Consul answers 400 with its message. */
export class FilterError extends Error {
  /** @param message what is wrong with the expression */
  constructor(message: string) {
    super(message);
    this.name = 'FilterError';
  }
}

type Token =
  | { t: 'word'; v: string }
  | { t: 'str'; v: string }
  | { t: 'op'; v: '==' | '!=' | '(' | ')' | '.' | '[' | ']' };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (src.startsWith('==', i) || src.startsWith('!=', i)) {
      out.push({ t: 'op', v: src.slice(i, i + 2) as '==' | '!=' });
      i += 2;
      continue;
    }
    if ('().[]'.includes(c)) {
      out.push({ t: 'op', v: c as '(' | ')' | '.' | '[' | ']' });
      i++;
      continue;
    }
    if (c === '"') {
      let v = '';
      i++;
      while (i < src.length && src[i] !== '"') {
        if (src[i] === '\\' && i + 1 < src.length) {
          const n = src[i + 1] as string;
          v += n === 'n' ? '\n' : n === 't' ? '\t' : n;
          i += 2;
        } else {
          v += src[i];
          i++;
        }
      }
      if (i >= src.length) throw new FilterError('unterminated string literal');
      i++;
      out.push({ t: 'str', v });
      continue;
    }
    if (c === '`') {
      const end = src.indexOf('`', i + 1);
      if (end < 0) throw new FilterError('unterminated raw string literal');
      out.push({ t: 'str', v: src.slice(i + 1, end) });
      i = end + 1;
      continue;
    }
    const m = /^[A-Za-z0-9_\-+:/]+/.exec(src.slice(i));
    if (!m) throw new FilterError(`unexpected character ${JSON.stringify(c)} at position ${i}`);
    out.push({ t: 'word', v: m[0] });
    i += m[0].length;
  }
  return out;
}

type Node =
  | { k: 'and' | 'or'; l: Node; r: Node }
  | { k: 'not'; e: Node }
  | { k: 'match'; op: 'eq' | 'ne' | 'in' | 'notin' | 'empty' | 'notempty' | 'matches' | 'notmatches'; sel: string[]; value: string };

const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'contains', 'is', 'empty', 'matches']);

class Parser {
  #toks: Token[];
  #pos = 0;
  constructor(toks: Token[]) {
    this.#toks = toks;
  }
  #peek(offset = 0): Token | undefined {
    return this.#toks[this.#pos + offset];
  }
  #isWord(v: string, offset = 0): boolean {
    const t = this.#peek(offset);
    return t?.t === 'word' && t.v === v;
  }
  #isOp(v: string): boolean {
    const t = this.#peek();
    return t?.t === 'op' && t.v === v;
  }
  #expectWord(v: string): void {
    if (!this.#isWord(v)) throw new FilterError(`expected "${v}" at token ${this.#pos + 1}`);
    this.#pos++;
  }
  parse(): Node {
    const e = this.#or();
    if (this.#pos < this.#toks.length) throw new FilterError(`unexpected token at position ${this.#pos + 1}`);
    return e;
  }
  #or(): Node {
    let l = this.#and();
    while (this.#isWord('or')) {
      this.#pos++;
      l = { k: 'or', l, r: this.#and() };
    }
    return l;
  }
  #and(): Node {
    let l = this.#not();
    while (this.#isWord('and')) {
      this.#pos++;
      l = { k: 'and', l, r: this.#not() };
    }
    return l;
  }
  #not(): Node {
    if (this.#isWord('not')) {
      this.#pos++;
      return { k: 'not', e: this.#not() };
    }
    if (this.#isOp('(')) {
      this.#pos++;
      const e = this.#or();
      if (!this.#isOp(')')) throw new FilterError('missing closing parenthesis');
      this.#pos++;
      return e;
    }
    return this.#match();
  }
  #value(): string {
    const t = this.#peek();
    if (t === undefined || t.t === 'op') throw new FilterError(`expected a value at token ${this.#pos + 1}`);
    this.#pos++;
    return t.v;
  }
  #selector(): string[] {
    const t = this.#peek();
    if (t?.t !== 'word' || KEYWORDS.has(t.v)) throw new FilterError(`expected a selector at token ${this.#pos + 1}`);
    this.#pos++;
    const path = [t.v];
    for (;;) {
      if (this.#isOp('.')) {
        this.#pos++;
        const n = this.#peek();
        if (n?.t !== 'word') throw new FilterError('expected a field name after "."');
        this.#pos++;
        path.push(n.v);
      } else if (this.#isOp('[')) {
        this.#pos++;
        const n = this.#peek();
        if (n === undefined || n.t === 'op') throw new FilterError('expected a key inside [ ]');
        this.#pos++;
        if (!this.#isOp(']')) throw new FilterError('missing "]"');
        this.#pos++;
        path.push(n.v);
      } else {
        return path;
      }
    }
  }
  #match(): Node {
    // value-first forms: `<v> in <sel>` / `<v> not in <sel>`
    const first = this.#peek();
    if (first !== undefined && first.t !== 'op' && (this.#isWord('in', 1) || (this.#isWord('not', 1) && this.#isWord('in', 2)))) {
      this.#pos++;
      let op: 'in' | 'notin' = 'in';
      if (this.#isWord('not')) {
        this.#pos++;
        op = 'notin';
      }
      this.#expectWord('in');
      return { k: 'match', op, sel: this.#selector(), value: first.v };
    }
    const sel = this.#selector();
    if (this.#isOp('==') || this.#isOp('!=')) {
      const op = (this.#peek() as { v: string }).v === '==' ? 'eq' : 'ne';
      this.#pos++;
      return { k: 'match', op, sel, value: this.#value() };
    }
    if (this.#isWord('is')) {
      this.#pos++;
      let op: 'empty' | 'notempty' = 'empty';
      if (this.#isWord('not')) {
        this.#pos++;
        op = 'notempty';
      }
      this.#expectWord('empty');
      return { k: 'match', op, sel, value: '' };
    }
    let negate = false;
    if (this.#isWord('not')) {
      this.#pos++;
      negate = true;
    }
    if (this.#isWord('contains')) {
      this.#pos++;
      return { k: 'match', op: negate ? 'notin' : 'in', sel, value: this.#value() };
    }
    if (this.#isWord('matches')) {
      this.#pos++;
      return { k: 'match', op: negate ? 'notmatches' : 'matches', sel, value: this.#value() };
    }
    throw new FilterError(`expected an operator after selector "${sel.join('.')}"`);
  }
}

/** Fields that are string maps in Consul's structs: a missing key there is just empty. */
const MAP_FIELDS = new Set(['Meta', 'NodeMeta', 'ServiceMeta', 'TaggedAddresses', 'ServiceTaggedAddresses', 'Definition']);

const MISSING = Symbol('missing');

function select(value: unknown, path: readonly string[], parentKey: string): unknown[] {
  if (path.length === 0) return [value];
  if (Array.isArray(value)) return value.flatMap((v) => select(v, path, parentKey));
  const [head, ...rest] = path as [string, ...string[]];
  if (value === null || typeof value !== 'object') {
    return [MISSING];
  }
  if (!Object.prototype.hasOwnProperty.call(value, head)) {
    if (MAP_FIELDS.has(parentKey)) return [MISSING];
    throw new FilterError(`Selector "${head}" is not valid`);
  }
  return select((value as Record<string, unknown>)[head], rest, head);
}

function scalarEquals(v: unknown, want: string): boolean {
  if (v === MISSING || v === null || v === undefined) return false;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v) === want;
  return false;
}

function contains(v: unknown, want: string): boolean {
  if (Array.isArray(v)) return v.some((x) => scalarEquals(x, want));
  if (typeof v === 'string') return v.includes(want);
  if (v !== null && typeof v === 'object') return Object.prototype.hasOwnProperty.call(v, want);
  return false;
}

function isEmpty(v: unknown): boolean {
  if (v === MISSING || v === null || v === undefined || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v).length === 0;
  return false;
}

function evaluate(node: Node, entry: unknown, regexes: Map<string, RegExp>): boolean {
  switch (node.k) {
    case 'and':
      return evaluate(node.l, entry, regexes) && evaluate(node.r, entry, regexes);
    case 'or':
      return evaluate(node.l, entry, regexes) || evaluate(node.r, entry, regexes);
    case 'not':
      return !evaluate(node.e, entry, regexes);
    case 'match': {
      // A path ending on a list (Service.Tags) selects the list itself, so `in` and
      // `is empty` see the whole list; a list met mid-path (Checks.Status) fans out.
      const values = select(entry, node.sel, '');
      switch (node.op) {
        case 'eq':
          return values.some((v) => scalarEquals(v, node.value));
        case 'ne':
          return !values.some((v) => scalarEquals(v, node.value));
        case 'in':
          return values.some((v) => contains(v, node.value));
        case 'notin':
          return !values.some((v) => contains(v, node.value));
        case 'empty':
          return values.every((v) => isEmpty(v));
        case 'notempty':
          return values.some((v) => !isEmpty(v));
        case 'matches':
        case 'notmatches': {
          const re = regexes.get(node.value) as RegExp;
          const hit = values.some((v) => typeof v === 'string' && re.test(v));
          return node.op === 'matches' ? hit : !hit;
        }
      }
    }
  }
}

function collectRegexes(node: Node, into: Map<string, RegExp>): void {
  if (node.k === 'and' || node.k === 'or') {
    collectRegexes(node.l, into);
    collectRegexes(node.r, into);
  } else if (node.k === 'not') {
    collectRegexes(node.e, into);
  } else if (node.k === 'match' && (node.op === 'matches' || node.op === 'notmatches')) {
    try {
      into.set(node.value, new RegExp(node.value));
    } catch {
      throw new FilterError(`invalid regular expression ${JSON.stringify(node.value)}`);
    }
  }
}

/**
 * Compiles a filter expression. Throws {@link FilterError} on a syntax error; selectors are
 * checked when evaluated (an unknown field throws {@link FilterError} then).
 *
 * @example
 * ```ts
 * const primaries = compileFilter('"primary" in Service.Tags and Checks.Status == passing');
 * entries.filter(primaries);
 * ```
 */
export function compileFilter(expression: string): FilterPredicate {
  const ast = new Parser(tokenize(expression)).parse();
  const regexes = new Map<string, RegExp>();
  collectRegexes(ast, regexes);
  return (entry) => evaluate(ast, entry, regexes);
}
