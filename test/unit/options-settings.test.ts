/** The option table's resolvers (lib/options/settings.ts): one row drives parsing, validation, default and env variable. */
import assert from 'node:assert/strict';
import { customSetting, defaultOf, keysAt, setting, settingOrDefault } from '../../lib/options/settings.js';
import { OPTIONS } from '../../lib/options/table.js';
import type { OptionSpec } from '../../lib/options/table.js';

const typeError = (pattern: RegExp) => (err: unknown): boolean => err instanceof TypeError && pattern.test(err.message);

describe('option table: settings', () => {
  it('an integer row: option, then its variable, then the default; the range from the row', () => {
    assert.equal(settingOrDefault('failoverTimeoutMillis', 5, { PGCONSUL_FAILOVER_TIMEOUT_MS: '7' }), 5);
    assert.equal(settingOrDefault('failoverTimeoutMillis', undefined, { PGCONSUL_FAILOVER_TIMEOUT_MS: '7' }), 7);
    assert.equal(settingOrDefault('failoverTimeoutMillis', undefined, { PGCONSUL_FAILOVER_TIMEOUT_MS: '' }), 30_000);
    assert.throws(() => setting('deadPeerTimeoutMillis', 0, {}), typeError(/^pg-consul: option "deadPeerTimeoutMillis" must be an integer from 1 to 2147483647, got 0$/));
    assert.throws(() => setting('lagCheckIntervalMillis', undefined, { PGCONSUL_LAG_CHECK_INTERVAL_MS: '9' }), typeError(/environment variable PGCONSUL_LAG_CHECK_INTERVAL_MS must be an integer from 10/));
  });

  it('a row without a variable reads no environment', () => {
    assert.equal(setting('retryInitialDelayMillis', undefined, { PGCONSUL_RETRY_INITIAL_DELAY_MS: '5' }), undefined);
    assert.equal(settingOrDefault('consul.waitSeconds', undefined, {}), 300);
  });

  it('boolean, enum and tag rows', () => {
    assert.equal(settingOrDefault('autoReadRouting', undefined, { PGCONSUL_AUTO_READ_ROUTING: 'T' }), true);
    assert.throws(() => setting('consul.verify', 'yes', {}), typeError(/option "consul.verify" must be a boolean, got "yes"/));
    assert.equal(setting('readFallback', undefined, { PGCONSUL_READ_FALLBACK: 'fail' }), 'fail');
    assert.throws(() => setting('consul.consistency', 'eventual', {}), typeError(/must be one of "default", "stale", "consistent"/));
    assert.deepEqual(setting('primaryTags', undefined, { PGCONSUL_PRIMARY_TAGS: ' a, b ,a' }), ['a', 'b']);
  });

  it('customSetting takes the parser from the caller and the variable from the row', () => {
    const upper = (v: unknown): string => String(v).toUpperCase();
    assert.equal(customSetting('patroni.scope', undefined, { PGCONSUL_PATRONI_SCOPE: 'pg' }, upper), 'PG');
    assert.equal(customSetting('patroni.scope', 'x', { PGCONSUL_PATRONI_SCOPE: 'pg' }, upper), 'X');
    assert.equal(customSetting('consul.ca', undefined, { CONSUL_CACERT: 'x' }, upper), undefined);
  });

  it('defaults and keys come from the table, in table order', () => {
    assert.deepEqual(defaultOf('primaryTags'), ['primary', 'master']);
    assert.equal(defaultOf('consul.token'), undefined);
    assert.deepEqual(keysAt('probe'), ['intervalMillis', 'timeoutMillis']);
    assert.equal(keysAt()[0], 'service');
    assert.ok(keysAt().every((k) => !k.includes('.')));
  });

  it('every row is frozen and every integer row has its range', () => {
    assert.ok(Object.isFrozen(OPTIONS));
    for (const [name, spec] of Object.entries(OPTIONS) as Array<[string, OptionSpec]>) {
      assert.ok(Object.isFrozen(spec), name);
      if (spec.type === 'integer') assert.ok(spec.min !== undefined && spec.max !== undefined, name);
      if (spec.type === 'enum') assert.ok((spec.values ?? []).length > 1, name);
    }
  });
});
