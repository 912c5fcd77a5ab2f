/**
 * CLI configuration: the options file (`--config file.json`) plus the environment, resolved
 * by the library's own {@link resolveOptions}, and where each effective value came from.
 * @module
 */
import { readFileSync } from 'node:fs';
import type { PoolOptions } from '../options.js';
import { DEFAULTS } from '../options.js';
import { redactString } from '../log.js';

/** Where one effective setting came from. */
export interface SettingSource {
  /** The setting, as its option name (`consul.token`). */
  readonly setting: string;
  /** The value shown (secrets already replaced by `[REDACTED]`). */
  readonly value: string;
  /** `option file`, `env NAME`, or `default`. */
  readonly source: string;
}

/** One setting the CLI reports: option path, environment variable names, default, secret. */
interface SettingSpec {
  readonly path: string;
  readonly env: readonly string[];
  readonly fallback?: unknown;
  readonly secret?: boolean;
}

const SETTINGS: readonly SettingSpec[] = [
  { path: 'service', env: ['PGCONSUL_SERVICE'] },
  { path: 'consul.host', env: ['CONSUL_HTTP_ADDR'], fallback: DEFAULTS.consulHost },
  { path: 'consul.port', env: ['CONSUL_HTTP_ADDR'], fallback: DEFAULTS.consulPort },
  { path: 'consul.token', env: ['CONSUL_HTTP_TOKEN', 'CONSUL_HTTP_TOKEN_FILE'], secret: true },
  { path: 'consul.datacenter', env: ['PGCONSUL_CONSUL_DATACENTER'] },
  { path: 'primaryTags', env: ['PGCONSUL_PRIMARY_TAGS'], fallback: DEFAULTS.primaryTags },
  { path: 'replicaTags', env: ['PGCONSUL_REPLICA_TAGS'], fallback: DEFAULTS.replicaTags },
  { path: 'readFallback', env: ['PGCONSUL_READ_FALLBACK'], fallback: DEFAULTS.readFallback },
  { path: 'failoverTimeoutMillis', env: ['PGCONSUL_FAILOVER_TIMEOUT_MS'], fallback: DEFAULTS.failoverTimeoutMillis },
  { path: 'discovery', env: ['PGCONSUL_DISCOVERY'], fallback: 'consul-health' },
  { path: 'user', env: ['PGUSER'] },
  { path: 'password', env: ['PGPASSWORD'], secret: true },
  { path: 'database', env: ['PGDATABASE'] },
];

/**
 * Reads the JSON options file named by `--config` (an object of {@link PoolOptions}).
 * @param path file path
 * @param read reads a UTF-8 file (injectable for tests)
 * @returns the parsed options
 * @throws TypeError when the file is not a JSON object
 */
export function loadOptionsFile(path: string, read: (p: string) => string = (p) => readFileSync(p, 'utf8')): PoolOptions {
  let parsed: unknown;
  try {
    parsed = JSON.parse(read(path));
  } catch (error) {
    throw new TypeError(`pg-consul: --config ${path}: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TypeError(`pg-consul: --config ${path}: must contain a JSON object`);
  }
  return parsed as PoolOptions;
}

function lookup(options: PoolOptions, path: string): unknown {
  let value: unknown = options;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function show(value: unknown, secret: boolean): string {
  if (value === undefined) return '(unset)';
  if (secret) return '[REDACTED]';
  return redactString(Array.isArray(value) ? value.join(',') : String(value));
}

/**
 * Says, for each setting the CLI reports, which source set it: the options file wins over the
 * environment, which wins over the default (the library's precedence). Secrets are redacted.
 * @param options the options file's content (`{}` without one)
 * @param env the environment
 * @returns one row per setting
 * @example
 * ```ts
 * settingSources({ service: 'pglab' }, { CONSUL_HTTP_TOKEN: 't' });
 * // [{ setting: 'service', value: 'pglab', source: 'option file' }, …,
 * //  { setting: 'consul.token', value: '[REDACTED]', source: 'env CONSUL_HTTP_TOKEN' }, …]
 * ```
 */
export function settingSources(options: PoolOptions, env: NodeJS.ProcessEnv): SettingSource[] {
  return SETTINGS.map((spec) => {
    const secret = spec.secret === true;
    const own = lookup(options, spec.path);
    if (own !== undefined) return { setting: spec.path, value: show(own, secret), source: 'option file' };
    const name = spec.env.find((n) => env[n] !== undefined && env[n] !== '');
    if (name !== undefined) return { setting: spec.path, value: show(env[name], secret), source: `env ${name}` };
    return { setting: spec.path, value: show(spec.fallback, secret), source: spec.fallback === undefined ? 'unset' : 'default' };
  });
}
