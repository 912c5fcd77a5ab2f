/**
 * Discovery-mode options (`discovery`, `patroni`, `preparedQuery`, `hosts`, `probe`,
 * `consul.near`), their environment variables, and the source factory.
 */
import assert from 'node:assert/strict';
import { AutoSource } from '../../../lib/discovery/auto-source.js';
import { CombinedSource } from '../../../lib/discovery/combined-source.js';
import { ConsulHealthSource } from '../../../lib/discovery/consul-health-source.js';
import { confirmPrimaryWith, consulWatchSettings, createDiscoverySource } from '../../../lib/discovery/create-source.js';
import { PatroniKvSource } from '../../../lib/discovery/patroni-kv-source.js';
import type { ProbeResult } from '../../../lib/discovery/pg-probe.js';
import { PreparedQuerySource } from '../../../lib/discovery/prepared-query-source.js';
import { StaticHostSource } from '../../../lib/discovery/static-host-source.js';
import { DISCOVERY_DEFAULTS, resolveDiscoveryOptions, resolveOptions } from '../../../lib/options.js';
import type { PoolOptions } from '../../../lib/options.js';
import { Pool } from '../../../lib/pool.js';
import type { DiscoveredNode } from '../../../lib/topology/node.js';

function resolveBoth(options: PoolOptions, env: NodeJS.ProcessEnv = {}): ReturnType<typeof resolveDiscoveryOptions> {
  const resolved = resolveOptions(options, env);
  return resolveDiscoveryOptions(options, resolved.service, env);
}

describe('discovery options', () => {
  it('defaults: auto, Patroni namespace "service" and scope = service, probe 2000/1000 ms; frozen', () => {
    const d = resolveBoth({ service: 'pglab' });
    assert.deepEqual(d, {
      mode: 'auto',
      near: undefined,
      patroni: { namespace: 'service', scope: 'pglab', confirmPromotion: true },
      preparedQuery: undefined,
      hosts: undefined,
      probe: { intervalMillis: 2000, timeoutMillis: 1000 },
    });
    assert.ok(Object.isFrozen(d) && Object.isFrozen(d.patroni) && Object.isFrozen(d.probe));
    assert.equal(DISCOVERY_DEFAULTS.preparedQueryIntervalMillis, 1000);
  });

  const valid: ReadonlyArray<[string, PoolOptions, NodeJS.ProcessEnv, Partial<ReturnType<typeof resolveDiscoveryOptions>>]> = [
    ['patroni with namespace and scope', { service: 'pg-main', discovery: 'patroni', patroni: { namespace: '/service/', scope: 'pg_main', confirmPromotion: false } }, {}, { mode: 'patroni', patroni: { namespace: 'service', scope: 'pg_main', confirmPromotion: false } }],
    ['patroni from the environment', { service: 'pglab' }, { PGCONSUL_DISCOVERY: 'patroni', PGCONSUL_PATRONI_NAMESPACE: 'db/clusters', PGCONSUL_PATRONI_SCOPE: 'main' }, { mode: 'patroni', patroni: { namespace: 'db/clusters', scope: 'main', confirmPromotion: true } }],
    ['patroni+health', { service: 'pglab', discovery: 'patroni+health' }, {}, { mode: 'patroni+health' }],
    ['explicit consul-health', { service: 'pglab', discovery: 'consul-health' }, {}, { mode: 'consul-health' }],
    ['patroni settings with the default (auto)', { service: 'pg-main', patroni: { namespace: 'db', scope: 'pg_main' } }, {}, { mode: 'auto', patroni: { namespace: 'db', scope: 'pg_main', confirmPromotion: true } }],
    ['auto from the environment', { service: 'pglab' }, { PGCONSUL_DISCOVERY: 'auto' }, { mode: 'auto' }],
    ['an explicit mode wins over the environment', { service: 'pglab', discovery: 'consul-health' }, { PGCONSUL_DISCOVERY: 'patroni' }, { mode: 'consul-health' }],
    ['prepared-query, implied by preparedQuery', { service: 'pglab', preparedQuery: { name: 'pglab-geo' } }, {}, { mode: 'prepared-query', preparedQuery: { name: 'pglab-geo', intervalMillis: 1000 } }],
    ['prepared-query from the environment', { service: 'pglab' }, { PGCONSUL_DISCOVERY: 'prepared-query', PGCONSUL_PREPARED_QUERY: 'q1', PGCONSUL_PREPARED_QUERY_INTERVAL_MS: '250' }, { mode: 'prepared-query', preparedQuery: { name: 'q1', intervalMillis: 250 } }],
    ['static, implied by hosts; IPv6 and default port', { hosts: ['db1:5433', '[::1]', 'db2'] }, {}, { mode: 'static', hosts: [{ host: 'db1', port: 5433 }, { host: '::1', port: 5432 }, { host: 'db2', port: 5432 }] }],
    ['static from PGCONSUL_HOSTS', {}, { PGCONSUL_HOSTS: 'db1:5432, db2:5432', PGCONSUL_PROBE_INTERVAL_MS: '500', PGCONSUL_PROBE_TIMEOUT_MS: '300' }, { mode: 'static', hosts: [{ host: 'db1', port: 5432 }, { host: 'db2', port: 5432 }], probe: { intervalMillis: 500, timeoutMillis: 300 } }],
    ['explicit static with hosts and probe settings', { discovery: 'static', hosts: ['db1'], probe: { intervalMillis: 1000, timeoutMillis: 200 } }, {}, { mode: 'static', probe: { intervalMillis: 1000, timeoutMillis: 200 } }],
    ['near from the option', { service: 'pglab', consul: { near: '_agent' } }, {}, { near: '_agent' }],
    ['near from the environment', { service: 'pglab' }, { PGCONSUL_CONSUL_NEAR: 'agent-7' }, { near: 'agent-7' }],
  ];
  for (const [name, options, env, expected] of valid) {
    it(`accepts ${name}`, () => {
      const d = resolveBoth(options, env);
      for (const [key, value] of Object.entries(expected)) assert.deepEqual(d[key as keyof typeof d], value, key);
    });
  }

  const invalid: ReadonlyArray<[string, PoolOptions, NodeJS.ProcessEnv, RegExp]> = [
    ['an unknown mode', { service: 'pglab', discovery: 'zookeeper' as 'patroni' }, {}, /option "discovery" must be one of "auto", "consul-health", "patroni", "patroni\+health", "prepared-query", "static", got "zookeeper"/],
    ['an unknown mode in the environment', { service: 'pglab' }, { PGCONSUL_DISCOVERY: 'etcd' }, /environment variable PGCONSUL_DISCOVERY must be one of/],
    ['hosts with another mode', { discovery: 'patroni', hosts: ['db1'] }, {}, /option "discovery" is "patroni", but "hosts" \(a static host list\) needs "static"/],
    ['static without hosts', { service: 'pglab', discovery: 'static' }, {}, /"static" needs option "hosts"/],
    ['consul with hosts', { hosts: ['db1'], consul: { host: '10.0.0.1' } }, {}, /option "consul" cannot be combined with "hosts"/],
    ['preparedQuery with another mode', { service: 'pglab', discovery: 'patroni', preparedQuery: { name: 'q' } }, {}, /option "preparedQuery" is only used with discovery "prepared-query"/],
    ['prepared-query without a name', { service: 'pglab', discovery: 'prepared-query' }, {}, /needs option "preparedQuery.name"/],
    ['a bad query name', { service: 'pglab', preparedQuery: { name: 'a b' } }, {}, /option "preparedQuery.name" must be a name/],
    ['patroni settings with consul-health', { service: 'pglab', discovery: 'consul-health', patroni: { scope: 'x' } }, {}, /option "patroni" is only used with discovery "auto", "patroni" or "patroni\+health"/],
    ['an unknown patroni key', { service: 'pglab', discovery: 'patroni', patroni: { scopes: 'x' } as never }, {}, /unknown option "patroni.scopes"/],
    ['an unknown preparedQuery key', { service: 'pglab', preparedQuery: { name: 'q', interval: 5 } as never }, {}, /unknown option "preparedQuery.interval"/],
    ['an unknown probe key', { service: 'pglab', probe: { every: 5 } as never }, {}, /unknown option "probe.every"/],
    ['a non-object patroni', { service: 'pglab', discovery: 'patroni', patroni: 'x' as never }, {}, /option "patroni" must be an object/],
    ['a bad namespace', { service: 'pglab', discovery: 'patroni', patroni: { namespace: 'a b' } }, {}, /option "patroni.namespace" must be a KV path/],
    ['a scope with a slash', { service: 'pglab', discovery: 'patroni', patroni: { scope: 'a/b' } }, {}, /option "patroni.scope" must be a name/],
    ['a non-boolean confirmPromotion', { service: 'pglab', discovery: 'patroni', patroni: { confirmPromotion: 'yes' as never } }, {}, /option "patroni.confirmPromotion" must be a boolean/],
    ['an empty host list', { hosts: [] }, {}, /option "hosts" must be a non-empty list/],
    ['a host listed twice', { hosts: ['db1', 'db1:5432'] }, {}, /option "hosts" must not list a server twice, got "db1:5432"/],
    ['a bad port', { hosts: ['db1:0'] }, {}, /option "hosts" has an unusable entry \(invalid port "0"\), got "db1:0"/],
    ['a non-string host', { hosts: [5432 as unknown as string] }, {}, /option "hosts" must contain only "host:port" strings/],
    ['bad PGCONSUL_HOSTS', {}, { PGCONSUL_HOSTS: 'db1:x' }, /environment variable PGCONSUL_HOSTS has an unusable entry/],
    ['a zero probe interval', { hosts: ['db1'], probe: { intervalMillis: 0 } }, {}, /option "probe.intervalMillis" must be an integer from 1/],
    ['a non-numeric PGCONSUL_PROBE_TIMEOUT_MS', { hosts: ['db1'] }, { PGCONSUL_PROBE_TIMEOUT_MS: '1s' }, /environment variable PGCONSUL_PROBE_TIMEOUT_MS must be an integer/],
    ['a zero query interval', { service: 'pglab', preparedQuery: { name: 'q', intervalMillis: 0 } }, {}, /option "preparedQuery.intervalMillis" must be an integer from 1/],
    ['a bad near', { service: 'pglab', consul: { near: '' } }, {}, /option "consul.near" must be "_agent" or a Consul node name/],
  ];
  for (const [name, options, env, pattern] of invalid) {
    it(`rejects ${name} with a TypeError naming it`, () => {
      assert.throws(() => resolveBoth(options, env), (err: unknown) => err instanceof TypeError && pattern.test(err.message));
    });
  }

  for (const [label, options, env] of [
    ['a URL with a password in hosts', { hosts: ['postgres://app:s3cret-pw@db1:5432/app'] }, {}],
    ['a URL with a password in PGCONSUL_HOSTS', {}, { PGCONSUL_HOSTS: 'db0:5432,postgres://app:s3cret-pw@db1:5432/app' }],
    ['user:password@host in hosts', { hosts: ['app:s3cret-pw@db1:5432'] }, {}],
  ] as const) {
    it(`rejects ${label} without echoing the password`, () => {
      assert.throws(
        () => resolveBoth(options as never, env as never),
        (err: unknown) => err instanceof TypeError && /hosts|PGCONSUL_HOSTS/.test(err.message) && !err.message.includes('s3cret-pw'),
      );
    });
  }

  describe('interplay with resolveOptions', () => {
    it('a host list needs no service (labelled "static") and ignores Consul’s environment', () => {
      const resolved = resolveOptions({ hosts: ['db1'] }, { CONSUL_HTTP_SSL_VERIFY: 'not-a-bool', CONSUL_HTTP_ADDR: 'https://x:1' });
      assert.equal(resolved.service, 'static');
      assert.equal(resolved.consul.host, '127.0.0.1', 'Consul settings are defaults, unused');
      assert.equal(resolveOptions({ hosts: ['db1'], service: 'orders' }, {}).service, 'orders');
      assert.equal(resolveOptions({}, { PGCONSUL_HOSTS: 'db1' }).service, 'static');
    });

    it('still requires a service without hosts', () => {
      assert.throws(() => resolveOptions({ discovery: 'patroni' }, {}), /option "service" is required/);
    });

    it('never passes the discovery options to pg, and accepts consul.near', () => {
      const resolved = resolveOptions(
        { service: 'pglab', discovery: 'patroni', patroni: { scope: 'x' }, preparedQuery: { name: 'q' }, hosts: undefined, probe: {}, consul: { near: '_agent' }, user: 'app' },
        {},
      );
      assert.deepEqual(resolved.pg, { user: 'app' });
    });
  });

  describe('Pool', () => {
    it('rejects a bad mode or conflicting options before starting anything', () => {
      assert.throws(() => new Pool({ service: 'pglab', discovery: 'bogus' as 'patroni' }), /option "discovery" must be one of/);
      assert.throws(() => new Pool({ hosts: ['db1'], consul: { port: 8500 } }), /cannot be combined with "hosts"/);
      assert.throws(() => new Pool({ service: 'pglab', discovery: 42 as never }), /must be a mode name or implement DiscoverySource/);
    });
  });

  describe('createDiscoverySource', () => {
    const probe = (): Promise<ProbeResult> => Promise.resolve({ reachable: false, reason: 'unused' });
    const cases: ReadonlyArray<[string, PoolOptions, new (...args: never[]) => unknown]> = [
      ['auto (default)', { service: 'pglab' }, AutoSource],
      ['consul-health', { service: 'pglab', discovery: 'consul-health' }, ConsulHealthSource],
      ['patroni', { service: 'pglab', discovery: 'patroni' }, PatroniKvSource],
      ['patroni+health', { service: 'pglab', discovery: 'patroni+health' }, CombinedSource],
      ['prepared-query', { service: 'pglab', preparedQuery: { name: 'q' } }, PreparedQuerySource],
      ['static', { hosts: ['db1', 'db2'] }, StaticHostSource],
    ];
    for (const [mode, options, type] of cases) {
      it(`${mode} → ${type.name}`, async () => {
        const resolved = resolveOptions(options, {});
        const source = createDiscoverySource(resolved, resolveDiscoveryOptions(options, resolved.service, {}), { probe });
        assert.ok(source instanceof type);
        assert.equal(source.requestCount, 0);
        await source.stop();
      });
    }

    it('PatroniKvSource reads <namespace>/<scope>/', () => {
      const options: PoolOptions = { service: 'pg-main', discovery: 'patroni', patroni: { scope: 'pg_main', namespace: '/db/' } };
      const resolved = resolveOptions(options, {});
      const source = createDiscoverySource(resolved, resolveDiscoveryOptions(options, resolved.service, {}), { probe });
      assert.ok(source instanceof PatroniKvSource);
      assert.equal(source.prefix, 'db/pg_main/');
    });

    it('shares the loop settings from the resolved options; the discovery backoff is its own (100 ms → 5 s)', () => {
      const resolved = resolveOptions({ service: 'pglab', consul: { waitSeconds: 30, requestTimeoutMillis: 900, connectTimeoutMillis: 0 }, discoveryMinIntervalMillis: 7, retryInitialDelayMillis: 20, retryMaxDelayMillis: 300 }, {});
      const settings = consulWatchSettings(resolved);
      assert.equal(settings.waitSeconds, 30);
      assert.equal(settings.requestTimeoutMillis, 900);
      assert.equal(settings.connectTimeoutMillis, 0);
      assert.equal(settings.minIntervalMillis, 7);
      assert.deepEqual(settings.backoff, { initialMillis: 100, maxMillis: 5000 });
      assert.equal(settings.consul, resolved.consul);
      assert.ok(settings.budget, 'one request budget per Pool');
      assert.notEqual(consulWatchSettings(resolved).budget, settings.budget, 'a new one for every Pool');
    });

    it('sets a 2 s connect timeout by default', () => {
      const resolved = resolveOptions({ service: 'pglab' }, {});
      const settings = consulWatchSettings(resolved);
      assert.equal(settings.connectTimeoutMillis, 2_000);
    });

    it('confirms a promotion only when the probe finds the node writable', async () => {
      const node = { host: 'db2', port: 5433 } as DiscoveredNode;
      const signal = new AbortController().signal;
      const results: ReadonlyArray<[ProbeResult, boolean]> = [
        [{ reachable: true, inRecovery: false, readOnly: false }, true],
        [{ reachable: true, inRecovery: true, readOnly: true }, false],
        [{ reachable: true, inRecovery: false, readOnly: true }, false],
        [{ reachable: false, reason: 'ECONNREFUSED' }, false],
      ];
      for (const [result, expected] of results) {
        const seen: string[] = [];
        const confirm = confirmPrimaryWith((host, port) => {
          seen.push(`${host}:${port}`);
          return Promise.resolve(result);
        });
        assert.equal(await confirm(node, signal), expected);
        assert.deepEqual(seen, ['db2:5433']);
      }
    });
  });
});
