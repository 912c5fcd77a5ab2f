/**
 * Debug logging with secret redaction.
 *
 * pg-consul never prints anything unless asked: by default every message goes through
 * `util.debuglog('pg-consul')`, which writes to stderr only when the process was started
 * with `NODE_DEBUG=pg-consul`, and through the `debug` package's namespaces
 * `pg-consul:<area>` (`DEBUG=pg-consul:*`, or e.g. `DEBUG=pg-consul:discovery`; the areas
 * are {@link LogArea}). Pass your own {@link Logger} (option `logger`) to route messages
 * elsewhere. Whatever the destination, the message and every field go through
 * `redact` first, and a logger that throws never breaks the caller.
 *
 * @example
 * ```ts
 * // NODE_DEBUG=pg-consul node app.js      → messages on stderr
 * // DEBUG=pg-consul:* node app.js         → the same, per area (pg-consul:discovery…)
 * const pool = new Pool({ service: 'pglab', logger: (level, message, fields) => {
 *   myLogger[level]({ ...fields }, message);   // fields are already redacted
 * } });
 * ```
 * @module
 */
import { debuglog, inspect } from 'node:util';
import createDebug from 'debug';
import type { Debugger } from 'debug';

/** Severity of a log message. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * A log sink. pg-consul calls it with a level, a short human-readable message and optional
 * structured fields. Fields are always redacted copies (secrets such as passwords, tokens and
 * connection-string credentials replaced by `[REDACTED]`) that the logger may keep or mutate. Exceptions thrown (and promises rejected) by a logger are swallowed.
 *
 * @example
 * ```ts
 * import pino from 'pino';
 * const log = pino();
 * const logger: Logger = (level, message, fields) => log[level](fields ?? {}, message);
 * ```
 */
export interface Logger {
  (level: LogLevel, message: string, fields?: Record<string, unknown>): void;
}

/** The text that replaces every secret. */
export const REDACTED = '[REDACTED]';

/** Keys whose values are always replaced by {@link REDACTED}, whatever their type. */
const SECRET_KEY = /password|passwd|token|secret|key|auth|cookie/i;

/** Nesting deeper than this is replaced by `'[Truncated]'`. */
const MAX_DEPTH = 8;

/**
 * Patterns that find secrets inside strings. Each keeps the part before the secret (group 1)
 * and replaces the secret itself.
 */
const SECRET_IN_STRING: readonly RegExp[] = [
  // scheme://user:password@host — greedy up to the last '@' of the word, so an unescaped
  // '@' inside the password does not leave a tail of it visible.
  /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/?#]*:)[^\s]*(?=@)/gi,
  // X-Consul-Token: abc / X-Consul-Token=abc / "X-Consul-Token":"abc"
  /(x-consul-token["']?\s*[:=]\s*["']?)[^\s"',;&]+/gi,
  // Authorization: Bearer abc / Basic abc (or a bare credential)
  /(authorization["']?\s*[:=]\s*["']?(?:(?:bearer|basic|digest|token)\s+)?)[^\s"',;&]+/gi,
  // ?token=abc, &password=abc, and libpq keyword strings: password=abc / password='a b'
  /(\b(?:password|passwd|pwd|token|secret|sslkey|sslpassword)\s*=\s*)(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&,;]+)/gi,
];

/**
 * Returns `text` with every secret found by pattern replaced by {@link REDACTED}: passwords
 * in URLs (`postgres://user:secret@host` → `postgres://user:[REDACTED]@host`),
 * `X-Consul-Token` and `Authorization` header values, and `password=` / `token=` pairs.
 *
 * @example
 * ```ts
 * redactString('connect postgres://app:s3cret@db:5432/app failed');
 * // → 'connect postgres://app:[REDACTED]@db:5432/app failed'
 * ```
 */
export function redactString(text: string): string {
  let out = text;
  for (const pattern of SECRET_IN_STRING) out = out.replace(pattern, `$1${REDACTED}`);
  return out;
}

/**
 * Returns a redacted deep copy of `value`, safe to log:
 * - values of keys matching `password|token|secret|key|auth` (case-insensitive; so also
 *   `authorization`, `X-Consul-Token`, `sslkey`, `apiKey`…) become {@link REDACTED}
 *   (`null`/`undefined` stay as they are);
 * - strings are cleaned with {@link redactString};
 * - `Error`s become plain objects (`name`, `message`, `stack`, `code`, own fields, `cause`);
 * - `Buffer`s and typed arrays become `'[Binary N bytes]'`, functions `'[Function name]'`;
 * - `Map`/`Set`/arrays are copied element by element, `Date`s cloned, `URL`s stringified;
 * - cycles become `'[Circular]'`, nesting deeper than 8 levels `'[Truncated]'`, and a getter
 *   that throws `'[Unreadable]'`.
 *
 * The input is never modified.
 *
 * @example
 * ```ts
 * redact({ user: 'app', password: 'x', headers: { 'X-Consul-Token': 't' } });
 * // → { user: 'app', password: '[REDACTED]', headers: { 'X-Consul-Token': '[REDACTED]' } }
 * ```
 */
export function redact(value: unknown): unknown {
  return copy(value, 0, new WeakSet<object>());
}

function copy(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return redactString(value);
  if (typeof value === 'function') return `[Function ${value.name || 'anonymous'}]`;
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[Truncated]';
  if (ArrayBuffer.isView(value)) return `[Binary ${value.byteLength} bytes]`;
  if (value instanceof ArrayBuffer) return `[Binary ${value.byteLength} bytes]`;
  if (value instanceof Date) return new Date(value.getTime());
  if (value instanceof URL) return redactString(value.href);
  if (value instanceof RegExp) return redactString(String(value));
  seen.add(value);
  try {
    const next = depth + 1;
    if (Array.isArray(value)) return value.map((item: unknown) => copy(item, next, seen));
    if (value instanceof Map) {
      const out = new Map<unknown, unknown>();
      for (const [k, v] of value) {
        out.set(copy(k, next, seen), typeof k === 'string' && isSecretKey(k) ? hide(v) : copy(v, next, seen));
      }
      return out;
    }
    if (value instanceof Set) {
      const out = new Set<unknown>();
      for (const v of value) out.add(copy(v, next, seen));
      return out;
    }
    const out: Record<string, unknown> = {};
    if (value instanceof Error) {
      out.name = value.name;
      out.message = redactString(value.message);
      if (typeof value.stack === 'string') out.stack = redactString(value.stack);
    }
    for (const key of Object.keys(value)) {
      let field: unknown;
      try {
        field = (value as Record<string, unknown>)[key];
      } catch {
        out[key] = '[Unreadable]';
        continue;
      }
      out[key] = isSecretKey(key) ? hide(field) : copy(field, next, seen);
    }
    if (value instanceof Error && value.cause !== undefined && !('cause' in out)) {
      out.cause = copy(value.cause, next, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

function hide(value: unknown): unknown {
  return value === null || value === undefined ? value : REDACTED;
}

/**
 * Formats one line the way the default logger writes it: `<level> <message>` followed by
 * the fields on one line (as `util.inspect` shows them). Expects already-redacted input.
 *
 * @example
 * ```ts
 * formatLogLine('warn', 'no primary', { service: 'pglab' });
 * // → "warn no primary { service: 'pglab' }"
 * ```
 */
export function formatLogLine(level: LogLevel, message: string, fields?: Record<string, unknown>): string {
  const head = `${level} ${message}`;
  if (fields === undefined || Object.keys(fields).length === 0) return head;
  return `${head} ${inspect(fields, { depth: MAX_DEPTH, breakLength: Infinity, compact: true })}`;
}

/**
 * The part of pg-consul a log line comes from; the default sink writes it to the `debug`
 * namespace `pg-consul:<area>`.
 */
export type LogArea = 'discovery' | 'topology' | 'retry' | 'lag' | 'session' | 'pool';

/** Message patterns of each area, tried in order (discovery sources are recognized by their `source` field first). */
const AREA_OF_MESSAGE: ReadonlyArray<readonly [LogArea, RegExp]> = [
  ['pool', /listener threw|^idle client|connectionString|^end\(\)/],
  ['retry', /^retrying\b/],
  ['lag', /\blag monitor\b/],
  ['session', /^session\b/],
  ['discovery', /discovery|consul|patroni kv/i],
  ['topology', /topology|primary|unreachable|dead-peer|leader|promotion/i],
];

/**
 * Returns the area of a log line: `discovery` for every line of a discovery source (they
 * carry a `source` field), else the first area whose message pattern matches, else `pool`.
 * Pure: the call sites stay as they are.
 *
 * @example
 * ```ts
 * logArea('retrying', { role: 'primary' });                  // 'retry'
 * logArea('writes moved to a new primary', {});              // 'topology'
 * logArea('Consul health discovery recovered', { source: 'consul-health' }); // 'discovery'
 * ```
 * @param message the log message
 * @param fields its fields
 */
export function logArea(message: string, fields?: Record<string, unknown>): LogArea {
  if (fields !== undefined && typeof fields['source'] === 'string') return 'discovery';
  for (const [area, pattern] of AREA_OF_MESSAGE) if (pattern.test(message)) return area;
  return 'pool';
}

const nodeDebug = debuglog('pg-consul');
const namespaces = new Map<LogArea, Debugger>();

function namespaceOf(area: LogArea): Debugger {
  let ns = namespaces.get(area);
  if (ns === undefined) {
    ns = createDebug(`pg-consul:${area}`);
    namespaces.set(area, ns);
  }
  return ns;
}

/**
 * Writes through `util.debuglog('pg-consul')` and the `debug` namespace of the line's area,
 * doing the redaction work only when one of them is enabled.
 */
const defaultLogger: Logger = (level, message, fields) => {
  const ns = namespaceOf(logArea(message, fields));
  const toNode = nodeDebug.enabled;
  const toDebug = ns.enabled;
  if (!toNode && !toDebug) return;
  const line = formatLogLine(level, redactString(message), fields === undefined ? undefined : (redact(fields) as Record<string, unknown>));
  if (toNode) nodeDebug('%s', line);
  if (toDebug) ns('%s', line);
};

/**
 * Returns the logger pg-consul uses internally.
 *
 * - Without `custom`: messages of every level go to `util.debuglog('pg-consul')` and to the
 *   `debug` namespace `pg-consul:<area>` ({@link logArea}), so they appear on stderr only
 *   with `NODE_DEBUG=pg-consul` or a matching `DEBUG` (a library must not print unasked).
 *   Redacted like a custom logger's input.
 * - With `custom`: every message goes to it, with the message passed through
 *   {@link redactString} and the fields through {@link redact}. If `custom` throws or returns
 *   a promise that rejects, the error is swallowed: logging never breaks pg-consul.
 *
 * @example
 * ```ts
 * const log = createLogger((level, message, fields) => console.error(level, message, fields));
 * log('info', 'topology changed', { primary: '10.0.0.5:5432', password: 'x' });
 * // → console.error('info', 'topology changed', { primary: '10.0.0.5:5432', password: '[REDACTED]' })
 * ```
 */
export function createLogger(custom?: Logger): Logger {
  if (custom === undefined) return defaultLogger;
  return (level, message, fields) => {
    try {
      const safeFields = fields === undefined ? undefined : (redact(fields) as Record<string, unknown>);
      const result: unknown = custom(level, redactString(message), safeFields);
      if (isThenable(result)) result.then(undefined, ignore);
    } catch {
      // A broken logger must not break the caller.
    }
  };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

function ignore(): void {
  // swallowed on purpose
}
