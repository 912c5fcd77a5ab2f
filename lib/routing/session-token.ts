/**
 * The read-your-writes token: a session's WAL position as a short, opaque, URL- and
 * cookie-safe string, so a web app can carry it across requests and processes. Pure.
 *
 * Format: base64url (no padding) of 9 bytes — a version byte (`1`) and the LSN as 8 bytes
 * big-endian — always 12 characters of `[A-Za-z0-9_-]`. LSN 0 means "no write to wait for".
 *
 * @example
 * ```ts
 * const token = encodeSessionToken(0x3000148n); // 'AQAAAAADAAFI'
 * decodeSessionToken(token);                    // 0x3000148n
 * decodeSessionToken('nonsense');               // throws TypeError
 * ```
 * @module
 */
import { MAX_LSN } from './lsn.js';

const VERSION = 1;
const TOKEN_TEXT = /^[A-Za-z0-9_-]{12}$/;

/**
 * Encodes a WAL position as a session token. Pure.
 *
 * @param lsn the position (0 for none)
 * @throws RangeError when `lsn` is outside 0 … 2^64 − 1
 *
 * @example
 * ```ts
 * res.setHeader('x-pg-session', encodeSessionToken(lsn));
 * ```
 */
export function encodeSessionToken(lsn: bigint): string {
  if (lsn < 0n || lsn > MAX_LSN) throw new RangeError('pg-consul: a WAL position must be from 0 to 2^64 - 1');
  const bytes = Buffer.allocUnsafe(9);
  bytes[0] = VERSION;
  bytes.writeBigUInt64BE(lsn, 1);
  return bytes.toString('base64url');
}

/**
 * Decodes a session token into its WAL position. Pure. `undefined` and `''` mean "no
 * position" (0). Anything else that is not a token this version wrote is a `TypeError` whose
 * message does not repeat the input.
 *
 * @param token what {@link encodeSessionToken} returned, as carried by the client
 * @throws TypeError for a malformed token
 *
 * @example
 * ```ts
 * const lsn = decodeSessionToken(req.headers['x-pg-session'] as string | undefined);
 * ```
 */
export function decodeSessionToken(token: unknown): bigint {
  if (token === undefined || token === '') return 0n;
  if (typeof token !== 'string') throw new TypeError('pg-consul: a session token must be a string');
  if (!TOKEN_TEXT.test(token)) throw new TypeError('pg-consul: malformed session token (expected 12 base64url characters)');
  const bytes = Buffer.from(token, 'base64url');
  if (bytes.length !== 9 || bytes[0] !== VERSION) throw new TypeError('pg-consul: malformed session token (unknown version)');
  return bytes.readBigUInt64BE(1);
}
