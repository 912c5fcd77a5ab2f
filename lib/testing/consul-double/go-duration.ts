/**
 * Go `time.Duration` parsing and formatting, as Consul applies them to `?wait=`, session TTLs,
 * lock delays and check intervals. Pure functions; durations are in nanoseconds.
 * @module
 */

const UNIT_NANOS: ReadonlyMap<string, number> = new Map([
  ['ns', 1],
  ['us', 1e3],
  ['µs', 1e3], // U+00B5 micro sign
  ['μs', 1e3], // U+03BC Greek mu
  ['ms', 1e6],
  ['s', 1e9],
  ['m', 60e9],
  ['h', 3600e9],
]);

/** Largest duration Go can represent (int64 nanoseconds, 2^63 - 1), ~292 years. */
const MAX_NANOS = 2 ** 63 - 1;

/**
 * Parses a Go duration string (`10s`, `5m`, `15.0s`, `0.001s`, `1h2m3.5s`, `-1.5h`, `0`) the
 * way Go's `time.ParseDuration` does.
 *
 * @returns the duration in nanoseconds, or `undefined` when the text is not a valid duration.
 * @example
 * ```ts
 * parseGoDuration('9.98s'); // 9_980_000_000
 * parseGoDuration('10');    // undefined (a unit is required)
 * ```
 */
export function parseGoDuration(text: string): number | undefined {
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  let total = 0;
  while (s !== '') {
    const m = /^(\d*)(?:\.(\d*))?/.exec(s);
    const whole = m?.[1] ?? '';
    const frac = m?.[2];
    if (whole === '' && (frac === undefined || frac === '')) return undefined;
    s = s.slice(m?.[0].length ?? 0);
    const unitMatch = /^[^\d.]+/.exec(s);
    if (!unitMatch) return undefined; // missing unit
    const unitText = unitMatch[0];
    const unit = UNIT_NANOS.get(unitText);
    if (unit === undefined) return undefined;
    s = s.slice(unitText.length);
    let value = (whole === '' ? 0 : Number(whole)) * unit;
    if (frac !== undefined && frac !== '') {
      value += Math.round((Number(frac) * unit) / 10 ** frac.length);
    }
    total += value;
    if (total > MAX_NANOS) return undefined;
  }
  return sign * total;
}

function fraction(value: number, scale: number): string {
  const whole = Math.floor(value / scale);
  const rest = value - whole * scale;
  if (rest === 0) return String(whole);
  const digits = String(scale).length - 1;
  return `${whole}.${String(rest).padStart(digits, '0').replace(/0+$/, '')}`;
}

/**
 * Formats nanoseconds the way Go's `time.Duration.String()` does: `0s`, `500ms`, `1.5s`,
 * `1m30s`, `24h0m0s`.
 *
 * @example
 * ```ts
 * formatGoDuration(86_400e9); // '24h0m0s'
 * ```
 */
export function formatGoDuration(nanos: number): string {
  if (nanos === 0) return '0s';
  const neg = nanos < 0 ? '-' : '';
  const u = Math.round(Math.abs(nanos));
  if (u < 1e3) return `${neg}${u}ns`;
  if (u < 1e6) return `${neg}${fraction(u, 1e3)}µs`;
  if (u < 1e9) return `${neg}${fraction(u, 1e6)}ms`;
  const hours = Math.floor(u / 3600e9);
  const minutes = Math.floor((u - hours * 3600e9) / 60e9);
  const secondsNanos = u - hours * 3600e9 - minutes * 60e9;
  let out = neg;
  if (hours > 0) out += `${hours}h`;
  if (hours > 0 || minutes > 0) out += `${minutes}m`;
  return `${out}${fraction(secondsNanos, 1e9)}s`;
}

/**
 * Consul's lenient reading of a duration field in a JSON body (`LockDelay`, `TTL`-like
 * fields): a Go duration string, or a number of nanoseconds; values below 1000 ns are taken
 * as seconds (Consul's `lockDelayMinThreshold` rule, so `15` means 15 s).
 *
 * @returns nanoseconds, or `undefined` when the value is neither form.
 */
export function parseLenientDuration(value: unknown): number | undefined {
  let ns: number | undefined;
  if (typeof value === 'string') ns = parseGoDuration(value);
  else if (typeof value === 'number' && Number.isFinite(value)) ns = Math.trunc(value);
  if (ns === undefined) return undefined;
  return ns < 1000 ? ns * 1e9 : ns;
}
