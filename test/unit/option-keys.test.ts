import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type pg from 'pg';
import { assertKnownKeys, closestKey, PG_OPTION_KEYS, unknownOptionError } from '../../lib/option-keys.js';
import { OPTION_KEYS, resolveDiscoveryOptions, resolveOptions, resolveReadRoutingOptions } from '../../lib/options.js';
import type { ConsulOptions, PoolOptions } from '../../lib/options.js';

const require = createRequire(import.meta.url);

/** The names pg's own source reads from a config object, found with the given pattern. */
function readBy(file: string, pattern: RegExp): string[] {
  const text = readFileSync(file, 'utf8');
  return [...new Set([...text.matchAll(pattern)].map((m) => m[1]!))];
}

const pgLib = dirname(require.resolve('pg'));
const pgPoolIndex = require.resolve('pg-pool');

describe('option-keys: the pg keys', () => {
  it('cover every key pg-pool, pg.Client and ConnectionParameters read from their config', () => {
    const read = [
      ...readBy(pgPoolIndex, /\boptions\.([A-Za-z_]+)/g),
      ...readBy(join(pgLib, 'client.js'), /\bc\.([A-Za-z_]+)/g),
      ...readBy(join(pgLib, 'connection-parameters.js'), /\bval\('([a-z_]+)'/g),
      ...readBy(join(pgLib, 'connection-parameters.js'), /\bconfig\.([A-Za-z_]+)/g),
    ];
    assert.ok(read.length > 30, `found ${read.length} names in pg's source`);
    // `password`/`ssl` in pg-pool are read for a warning; everything else is a config key.
    for (const key of read) assert.ok(PG_OPTION_KEYS.includes(key), `pg reads "${key}"`);
  });

  it('cover every key of @types/pg PoolConfig (a compile error when the typings grow)', () => {
    const typed: Record<keyof pg.PoolConfig, true> = {
      user: true, database: true, password: true, port: true, host: true, connectionString: true, keepAlive: true,
      stream: true, statement_timeout: true, ssl: true, enableChannelBinding: true, sslnegotiation: true,
      query_timeout: true, lock_timeout: true, keepAliveInitialDelayMillis: true, idle_in_transaction_session_timeout: true,
      application_name: true, fallback_application_name: true, connectionTimeoutMillis: true, types: true, options: true,
      client_encoding: true, pipeline: true, max: true, min: true, idleTimeoutMillis: true, log: true, Promise: true,
      allowExitOnIdle: true, maxUses: true, maxLifetimeSeconds: true, Client: true, onConnect: true, verify: true,
    };
    for (const key of Object.keys(typed)) assert.ok(PG_OPTION_KEYS.includes(key), key);
  });
});

describe('option-keys: closest key and the error', () => {
  const table: Array<[string, readonly string[], string]> = [
    ['servcie', OPTION_KEYS.top, 'service'],
    ['failoverTimeoutMs', OPTION_KEYS.top, 'failoverTimeoutMillis'],
    ['statementTimeout', PG_OPTION_KEYS, 'statement_timeout'],
    ['idleTimeoutMilis', PG_OPTION_KEYS, 'idleTimeoutMillis'],
    ['adress', OPTION_KEYS.consul, 'address'],
    ['tocken', OPTION_KEYS.consul, 'token'],
    ['interval', OPTION_KEYS.probe, 'intervalMillis'],
  ];
  for (const [key, valid, expected] of table) {
    it(`${key} → ${expected}`, () => assert.equal(closestKey(key, valid), expected));
  }

  it('names the key, the closest valid key and where the valid keys are listed', () => {
    assert.equal(
      unknownOptionError('adress', ['host', 'address'], 'consul').message,
      'pg-consul: unknown option "consul.adress" (did you mean "consul.address"? valid keys of "consul": host, address)',
    );
    assert.match(unknownOptionError('servcie', OPTION_KEYS.top).message, /^pg-consul: unknown option "servcie" \(did you mean "service"\? .*docs\/configuration\.md\)$/);
    assert.doesNotThrow(() => assertKnownKeys({ a: 1 }, ['a', 'b']));
    assert.throws(() => assertKnownKeys({ a: 1, c: 2 }, ['a', 'b']), /unknown option "c"/);
  });
});

describe('options: unknown keys are TypeErrors at construction', () => {
  const base: PoolOptions = { service: 'pglab' };
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a top-level typo', { servcie: 'pglab' }, /unknown option "servcie" \(did you mean "service"\?/],
    ['camelCase for a pg snake_case key', { statementTimeout: 5000 }, /unknown option "statementTimeout" \(did you mean "statement_timeout"\?/],
    ['libpq spelling', { sslmode: 'require' }, /unknown option "sslmode" \(did you mean "ssl"\?/],
    ['a nested consul typo', { consul: { adress: '127.0.0.1:8500' } }, /unknown option "consul\.adress" \(did you mean "consul\.address"\?/],
    ['a nested probe typo', { hosts: ['db1:5432'], service: undefined, probe: { interval: 5 } }, /unknown option "probe\.interval" \(did you mean "probe\.intervalMillis"\?/],
    ['a nested lag typo', { maxReplicaLag: { byte: 1 } }, /unknown option "maxReplicaLag\.byte" \(did you mean "maxReplicaLag\.bytes"\?/],
  ];
  const resolveAll = (o: PoolOptions): void => {
    const resolved = resolveOptions(o, {});
    resolveDiscoveryOptions(o, resolved.service, {});
    resolveReadRoutingOptions(o, {});
  };
  for (const [title, extra, message] of cases) {
    it(title, () => {
      assert.throws(() => resolveAll({ ...base, ...extra } as PoolOptions), (err: unknown) => err instanceof TypeError && message.test(err.message));
    });
  }

  it('accepts every pg option and every pg-consul option', () => {
    const pgOptions = {
      user: 'app', database: 'app', password: 'secret', ssl: false, statement_timeout: 1000, lock_timeout: 1000,
      query_timeout: 1000, idle_in_transaction_session_timeout: 1000, application_name: 'a', fallback_application_name: 'b',
      connectionTimeoutMillis: 1000, keepAlive: true, keepAliveInitialDelayMillis: 1000, max: 3, min: 0, idleTimeoutMillis: 1000,
      maxUses: 10, maxLifetimeSeconds: 60, allowExitOnIdle: true, log: () => undefined, Promise, onConnect: () => undefined,
      verify: (_c: unknown, done: () => void) => done(), options: '-c search_path=app', client_encoding: 'UTF8', binary: false,
      enableChannelBinding: false, pipeline: false,
    };
    const resolved = resolveOptions({ ...base, ...pgOptions, failoverTimeoutMillis: 5, readFallback: 'fail', autoReadRouting: true } as PoolOptions, {});
    assert.equal(resolved.pg.statement_timeout, 1000);
  });

  it('with a custom Client class, unknown top-level keys go to it; nested ones are still checked', () => {
    class MyClient {}
    const resolved = resolveOptions({ ...base, Client: MyClient, myClientSetting: 1 } as unknown as PoolOptions, {});
    assert.equal((resolved.pg as Record<string, unknown>)['myClientSetting'], 1);
    assert.throws(() => resolveOptions({ ...base, Client: MyClient, consul: { adress: 'x' } } as unknown as PoolOptions, {}), /consul\.adress/);
  });

  it('never echoes the value of an unknown key', () => {
    assert.throws(() => resolveOptions({ ...base, passwrod: 's3cr3t-value' } as unknown as PoolOptions, {}), (err: unknown) =>
      err instanceof TypeError && /did you mean "password"/.test(err.message) && !err.message.includes('s3cr3t'),
    );
  });
});

describe('option-keys: the option table against the typings', () => {
  it('has a row for every key of ConsulOptions and PoolOptions (a compile error when the typings grow)', () => {
    const consul: Record<keyof ConsulOptions, true> = {
      host: true, port: true, address: true, secure: true, token: true, tokenFile: true, auth: true, datacenter: true,
      consistency: true, ca: true, caFile: true, caPath: true, cert: true, certFile: true, key: true, keyFile: true,
      tlsServerName: true, verify: true, namespace: true, partition: true, near: true, waitSeconds: true,
      requestTimeoutMillis: true, connectTimeoutMillis: true,
    };
    assert.deepEqual([...OPTION_KEYS.consul].sort(), Object.keys(consul).sort());
    const own: Record<Exclude<keyof PoolOptions, keyof pg.PoolConfig>, true> = {
      service: true, consul: true, failoverTimeoutMillis: true, primaryTags: true, replicaTags: true, readFallback: true,
      retryInitialDelayMillis: true, retryMaxDelayMillis: true, discoveryMinIntervalMillis: true, logger: true,
      discovery: true, patroni: true, preparedQuery: true, hosts: true, probe: true, maxReplicaLag: true,
      lagCheckIntervalMillis: true, autoReadRouting: true, deadPeerAfterMillis: true, deadPeerTimeoutMillis: true,
      endTimeoutMillis: true, connectTimeoutMillis: true,
    };
    assert.deepEqual([...OPTION_KEYS.top].sort(), Object.keys(own).sort());
  });
});
