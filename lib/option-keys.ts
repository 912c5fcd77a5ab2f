/**
 * Which option keys exist, and the error for one that does not: an unknown key is a
 * `TypeError` that names it and the closest valid key ("did you mean …?"), so a typo such as
 * `failoverTimeoutMs` or `statementTimeout` fails at construction instead of being ignored.
 *
 * The pg keys are those node-postgres 8 reads from a `pg.Pool` / `pg.Client` config
 * (pg-pool's `index.js`, pg's `client.js` and `connection-parameters.js`, and the
 * `PoolConfig` / `ClientConfig` typings).
 *
 * @example
 * ```ts
 * unknownOptionError('failoverTimeoutMs', ['failoverTimeoutMillis', 'max']).message;
 * // 'pg-consul: unknown option "failoverTimeoutMs" (did you mean "failoverTimeoutMillis"? …)'
 * ```
 * @module
 */

/** Every top-level key node-postgres 8 reads from a `pg.Pool` config (pool and client options). */
export const PG_OPTION_KEYS: readonly string[] = Object.freeze([
  // pg-pool
  'max',
  'min',
  'idleTimeoutMillis',
  'connectionTimeoutMillis',
  'maxUses',
  'maxLifetimeSeconds',
  'allowExitOnIdle',
  'log',
  'Promise',
  'Client',
  'onConnect',
  'verify',
  'poolSize',
  // pg.Client and its connection parameters
  'host',
  'port',
  'user',
  'database',
  'password',
  'connectionString',
  'ssl',
  'sslnegotiation',
  'binary',
  'options',
  'client_encoding',
  'replication',
  'application_name',
  'fallback_application_name',
  'statement_timeout',
  'lock_timeout',
  'idle_in_transaction_session_timeout',
  'query_timeout',
  'keepAlive',
  'keepAliveInitialDelayMillis',
  'enableChannelBinding',
  'scramMaxIterations',
  'pipeline',
  'types',
  'stream',
  'connection',
]);

/** Compared case-insensitively and without `_`, so `statementTimeout` finds `statement_timeout`. */
function normalized(key: string): string {
  return key.toLowerCase().replaceAll('_', '');
}

/** Optimal-string-alignment distance (Levenshtein plus adjacent transpositions). */
function distance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}

/**
 * The valid key closest to `key`: the smallest edit distance after ignoring case and `_`,
 * ties broken by the exact distance, then by list order. Pure.
 *
 * @param key the unknown key
 * @param valid the valid keys (non-empty)
 * @returns the closest valid key
 *
 * @example
 * ```ts
 * closestKey('servcie', ['service', 'consul']); // 'service'
 * closestKey('statementTimeout', ['statement_timeout', 'lock_timeout']); // 'statement_timeout'
 * ```
 */
export function closestKey(key: string, valid: readonly string[]): string {
  let best = valid[0] ?? '';
  let bestScore = [Infinity, Infinity];
  for (const candidate of valid) {
    const score = [distance(normalized(key), normalized(candidate)), distance(key, candidate)] as const;
    if (score[0] < bestScore[0]! || (score[0] === bestScore[0] && score[1] < bestScore[1]!)) {
      best = candidate;
      bestScore = [...score];
    }
  }
  return best;
}

/**
 * The TypeError for an unknown option key: names the key (with its parent, e.g.
 * `consul.adress`) and the closest valid key. Never includes the value (it may be a secret).
 *
 * @param key the unknown key
 * @param valid the keys valid at that level
 * @param parent the parent option (`'consul'`), or undefined at the top level
 * @returns the error to throw
 *
 * @example
 * ```ts
 * throw unknownOptionError('adress', ['address', 'host'], 'consul');
 * // TypeError: pg-consul: unknown option "consul.adress" (did you mean "consul.address"? …)
 * ```
 */
export function unknownOptionError(key: string, valid: readonly string[], parent?: string): TypeError {
  const path = (k: string): string => (parent === undefined ? k : `${parent}.${k}`);
  const where =
    parent === undefined
      ? 'pg-consul accepts pg.Pool / pg.Client options and its own, listed in docs/configuration.md'
      : `valid keys of "${parent}": ${valid.join(', ')}`;
  return new TypeError(`pg-consul: unknown option "${path(key)}" (did you mean "${path(closestKey(key, valid))}"? ${where})`);
}

/**
 * Throws {@link unknownOptionError} for the first own enumerable key of `value` that is not in
 * `valid`.
 *
 * @param value the options object (already known to be an object)
 * @param valid the keys valid at that level
 * @param parent the parent option, or undefined at the top level
 * @throws TypeError naming the unknown key and the closest valid one
 *
 * @example
 * ```ts
 * assertKnownKeys({ intervalMillis: 500 }, ['intervalMillis', 'timeoutMillis'], 'probe'); // ok
 * ```
 */
export function assertKnownKeys(value: object, valid: readonly string[], parent?: string): void {
  const allowed = new Set(valid);
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) throw unknownOptionError(key, valid, parent);
  }
}
