import assert from 'node:assert/strict';
import { READ_ROUTING_DEFAULTS, resolveOptions, resolveReadRoutingOptions } from '../../../lib/options.js';
import type { PoolOptions } from '../../../lib/options.js';

describe('options: read routing', () => {
  it('defaults: no lag limit, 1000 ms interval, no auto routing', () => {
    assert.deepEqual(resolveReadRoutingOptions({}, {}), { maxReplicaLag: undefined, lagCheckIntervalMillis: 1000, autoReadRouting: false });
    assert.deepEqual(READ_ROUTING_DEFAULTS, { lagCheckIntervalMillis: 1000, autoReadRouting: false });
    assert.ok(Object.isFrozen(resolveReadRoutingOptions(undefined, {})));
  });

  const valid: Array<{ name: string; options: PoolOptions; env?: NodeJS.ProcessEnv; expect: Partial<ReturnType<typeof resolveReadRoutingOptions>> }> = [
    { name: 'bytes only', options: { maxReplicaLag: { bytes: 1024 } }, expect: { maxReplicaLag: { bytes: 1024 } } },
    { name: 'seconds only, fractional', options: { maxReplicaLag: { seconds: 0.5 } }, expect: { maxReplicaLag: { seconds: 0.5 } } },
    { name: 'both, zero allowed', options: { maxReplicaLag: { bytes: 0, seconds: 0 } }, expect: { maxReplicaLag: { bytes: 0, seconds: 0 } } },
    { name: 'env bytes', options: {}, env: { PGCONSUL_MAX_REPLICA_LAG_BYTES: '16777216' }, expect: { maxReplicaLag: { bytes: 16777216 } } },
    { name: 'env seconds', options: {}, env: { PGCONSUL_MAX_REPLICA_LAG_SECONDS: '2.5' }, expect: { maxReplicaLag: { seconds: 2.5 } } },
    {
      name: 'env both',
      options: {},
      env: { PGCONSUL_MAX_REPLICA_LAG_BYTES: '10', PGCONSUL_MAX_REPLICA_LAG_SECONDS: '3' },
      expect: { maxReplicaLag: { bytes: 10, seconds: 3 } },
    },
    {
      name: 'the option replaces both env variables',
      options: { maxReplicaLag: { seconds: 1 } },
      env: { PGCONSUL_MAX_REPLICA_LAG_BYTES: '10', PGCONSUL_MAX_REPLICA_LAG_SECONDS: '3' },
      expect: { maxReplicaLag: { seconds: 1 } },
    },
    { name: 'interval option', options: { lagCheckIntervalMillis: 250 }, expect: { lagCheckIntervalMillis: 250 } },
    { name: 'interval env', options: {}, env: { PGCONSUL_LAG_CHECK_INTERVAL_MS: '500' }, expect: { lagCheckIntervalMillis: 500 } },
    { name: 'interval option wins over env', options: { lagCheckIntervalMillis: 250 }, env: { PGCONSUL_LAG_CHECK_INTERVAL_MS: '500' }, expect: { lagCheckIntervalMillis: 250 } },
    { name: 'auto routing option', options: { autoReadRouting: true }, expect: { autoReadRouting: true } },
    { name: 'auto routing env (Go syntax)', options: {}, env: { PGCONSUL_AUTO_READ_ROUTING: 'T' }, expect: { autoReadRouting: true } },
    { name: 'auto routing option false wins over env', options: { autoReadRouting: false }, env: { PGCONSUL_AUTO_READ_ROUTING: '1' }, expect: { autoReadRouting: false } },
    { name: 'empty env variables count as unset', options: {}, env: { PGCONSUL_MAX_REPLICA_LAG_BYTES: '', PGCONSUL_AUTO_READ_ROUTING: '' }, expect: { maxReplicaLag: undefined, autoReadRouting: false } },
  ];
  for (const c of valid) {
    it(`accepts ${c.name}`, () => {
      const r = resolveReadRoutingOptions(c.options, c.env ?? {});
      for (const [k, v] of Object.entries(c.expect)) assert.deepEqual(r[k as keyof typeof r], v, k);
    });
  }

  const invalid: Array<{ name: string; options: unknown; env?: NodeJS.ProcessEnv; message: RegExp }> = [
    { name: 'not an object', options: { maxReplicaLag: 5 }, message: /option "maxReplicaLag" must be an object/ },
    { name: 'empty object', options: { maxReplicaLag: {} }, message: /must set "bytes", "seconds" or both/ },
    { name: 'unknown key', options: { maxReplicaLag: { byte: 1 } }, message: /unknown option "maxReplicaLag.byte"/ },
    { name: 'negative bytes', options: { maxReplicaLag: { bytes: -1 } }, message: /option "maxReplicaLag.bytes" must be an integer/ },
    { name: 'fractional bytes', options: { maxReplicaLag: { bytes: 1.5 } }, message: /"maxReplicaLag.bytes"/ },
    { name: 'string seconds', options: { maxReplicaLag: { seconds: '5' } }, message: /option "maxReplicaLag.seconds" must be a number of seconds/ },
    { name: 'infinite seconds', options: { maxReplicaLag: { seconds: Infinity } }, message: /"maxReplicaLag.seconds"/ },
    { name: 'env bytes not a number', options: {}, env: { PGCONSUL_MAX_REPLICA_LAG_BYTES: '16MB' }, message: /environment variable PGCONSUL_MAX_REPLICA_LAG_BYTES/ },
    { name: 'env seconds negative', options: {}, env: { PGCONSUL_MAX_REPLICA_LAG_SECONDS: '-1' }, message: /environment variable PGCONSUL_MAX_REPLICA_LAG_SECONDS/ },
    { name: 'interval too small', options: { lagCheckIntervalMillis: 5 }, message: /option "lagCheckIntervalMillis" must be an integer from 10/ },
    { name: 'interval env garbage', options: {}, env: { PGCONSUL_LAG_CHECK_INTERVAL_MS: '1s' }, message: /PGCONSUL_LAG_CHECK_INTERVAL_MS/ },
    { name: 'auto routing not a boolean', options: { autoReadRouting: 'yes' }, message: /option "autoReadRouting" must be a boolean/ },
    { name: 'auto routing env garbage', options: {}, env: { PGCONSUL_AUTO_READ_ROUTING: 'yes' }, message: /PGCONSUL_AUTO_READ_ROUTING/ },
  ];
  for (const c of invalid) {
    it(`rejects ${c.name} with a TypeError naming it`, () => {
      assert.throws(() => resolveReadRoutingOptions(c.options as PoolOptions, c.env ?? {}), (err: unknown) => err instanceof TypeError && c.message.test(err.message));
    });
  }

  it('keeps the read-routing keys out of the pg options', () => {
    const r = resolveOptions({ service: 'pglab', maxReplicaLag: { bytes: 1 }, lagCheckIntervalMillis: 100, autoReadRouting: true, user: 'app' }, {});
    assert.deepEqual(r.pg, { user: 'app' });
  });
});
