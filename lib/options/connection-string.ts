/**
 * The pg options of a pool: pg-consul's keys removed, `host`/`port` rejected, and a
 * `connectionString` expanded into its fields (its host and port dropped, since nodes come from Consul).
 *
 * @module
 */
import { parse as parseConnectionString } from 'pg-connection-string';
import type pg from 'pg';
import type { Logger } from '../log.js';
import { invalid, option } from './values.js';

// ---------------------------------------------------------------------------------------
// pg options

/** A connection-string field that carries a value (pg-connection-string uses '' and null for "none"). */
export function isSet(value: unknown): boolean {
  return value !== '' && value !== null && value !== undefined;
}

/**
 * The caller's pg options minus pg-consul's keys, `host`/`port` rejected and a connection
 * string expanded (its host and port dropped). Frozen at the top level only.
 */
export function resolvePgOptions(rest: Record<string, unknown>, log: Logger): Readonly<pg.PoolConfig> {
  for (const key of ['host', 'port'] as const) {
    if (rest[key] !== undefined) {
      throw new TypeError(
        `pg-consul: option "${key}" is not supported: pg-consul connects to the nodes Consul lists for the service (remove "${key}")`,
      );
    }
  }
  const out: Record<string, unknown> = { ...rest };
  delete out.host;
  delete out.port;
  delete out.connectionString;
  if (rest.connectionString !== undefined) {
    if (typeof rest.connectionString !== 'string' || rest.connectionString === '') {
      throw invalid(option('connectionString'), 'must be a non-empty string', rest.connectionString, true);
    }
    let parsed: Record<string, unknown>;
    try {
      parsed = parseConnectionString(rest.connectionString);
    } catch (err) {
      // No `cause`: URL errors carry the input, and the input carries the password.
      const code = (err as { code?: unknown } | null)?.code;
      throw new TypeError(`pg-consul: option "connectionString" could not be parsed${typeof code === 'string' ? ` (${code})` : ''}, got (value hidden)`);
    }
    if (isSet(parsed.host) || isSet(parsed.port)) {
      log('debug', 'the host and port of option "connectionString" are ignored: pg-consul connects to the nodes Consul lists');
    }
    for (const [key, value] of Object.entries(parsed)) {
      if (key === 'host' || key === 'port' || !isSet(value)) continue;
      out[key] = value;
    }
  }
  return Object.freeze(out) as Readonly<pg.PoolConfig>;
}
