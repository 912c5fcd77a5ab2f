/**
 * PostgreSQL WAL positions (LSNs) as `bigint`s: parsing the server's `X/Y` text form and
 * formatting it back. Pure.
 *
 * @example
 * ```ts
 * parseLsn('16/B374D848');          // 0x16B374D848n
 * formatLsn(0x16b374d848n);         // '16/B374D848'
 * ```
 * @module
 */

/** The largest LSN PostgreSQL can represent (`FFFFFFFF/FFFFFFFF`). */
export const MAX_LSN = 0xffff_ffff_ffff_ffffn;

const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/**
 * Parses an LSN in PostgreSQL's text form (`X/Y`, each half 1–8 hex digits). Pure.
 *
 * @param text the server's text, e.g. the result of `pg_current_wal_insert_lsn()::text`
 * @returns the position, or `undefined` when `text` is not an LSN (including SQL `NULL`)
 *
 * @example
 * ```ts
 * parseLsn('0/3000148'); // 0x3000148n
 * parseLsn(null);        // undefined
 * ```
 */
export function parseLsn(text: unknown): bigint | undefined {
  if (typeof text !== 'string') return undefined;
  const m = LSN_TEXT.exec(text);
  if (!m) return undefined;
  return (BigInt(`0x${m[1]!}`) << 32n) | BigInt(`0x${m[2]!}`);
}

/**
 * Formats a position in PostgreSQL's text form (`X/Y`, upper-case hex, no leading zeros). Pure.
 *
 * @param lsn a position from 0 to {@link MAX_LSN}
 *
 * @example
 * ```ts
 * formatLsn(0x3000148n); // '0/3000148'
 * ```
 */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffff_ffffn).toString(16).toUpperCase()}`;
}
