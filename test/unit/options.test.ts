import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sinon from 'sinon';
import { DEFAULTS, resolveOptions } from '../../lib/options.js';
import type { ConsulOptions, PoolOptions, ResolvedOptions } from '../../lib/options.js';
import { REDACTED } from '../../lib/log.js';
import type { Logger } from '../../lib/log.js';

// ---------------------------------------------------------------------------------------
// Fixtures

const CA1 = '-----BEGIN CERTIFICATE-----\nMIIBca1\n-----END CERTIFICATE-----\n';
const CA2 = '-----BEGIN CERTIFICATE-----\nMIIBca2\n-----END CERTIFICATE-----';
const CERT = '-----BEGIN CERTIFICATE-----\nMIIBclient\n-----END CERTIFICATE-----\n';
const KEY_SECRET = 'MIIEvQkeySecretMaterial';
const KEY = `-----BEGIN PRIVATE KEY-----\n${KEY_SECRET}\n-----END PRIVATE KEY-----\n`;
const TOKEN = '3f1c9a77-token-s3cret';
const FILE_TOKEN = 'aa11bb22-file-t0ken';
const PG_PASSWORD = 'pg-pa55word';
const AUTH_PASSWORD = 'auth-pa55';

/** Every secret used anywhere in this file: none may appear in any thrown message. */
const SECRETS = [KEY_SECRET, TOKEN, FILE_TOKEN, PG_PASSWORD, AUTH_PASSWORD, 'bad tok', 'evil\ntoken', 'inline-s3cret'];

const FILES: Readonly<Record<string, string>> = {
  '/etc/consul/ca.pem': CA1,
  '/etc/consul/ca2.pem': CA2,
  '/etc/consul/client.pem': CERT,
  '/etc/consul/client-key.pem': KEY,
  '/etc/consul/not-pem.txt': 'hello',
  '/etc/consul/bad-key.pem': `not a key ${KEY_SECRET}`,
  '/run/secrets/token': `  ${FILE_TOKEN}\n`,
  '/run/secrets/empty-token': ' \n',
  '/run/secrets/bad-token': 'bad tok',
  '/etc/consul/cas/a.pem': CA1,
  '/etc/consul/cas/sub/b.pem': CA2,
  '/etc/consul/mixed/a.pem': CA1,
  '/etc/consul/mixed/readme.txt': 'not a certificate',
};

const DIRS: Readonly<Record<string, readonly string[]>> = {
  '/etc/consul/cas': ['/etc/consul/cas/a.pem', '/etc/consul/cas/sub/b.pem'],
  '/etc/consul/mixed': ['/etc/consul/mixed/a.pem', '/etc/consul/mixed/readme.txt'],
  '/etc/consul/empty': [],
};

function enoent(path: string): Error {
  return Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
}

const readFile = (path: string): string => {
  const text = FILES[path];
  if (text === undefined) throw enoent(path);
  return text;
};

const listFiles = (dir: string): readonly string[] => {
  const files = DIRS[dir];
  if (files === undefined) throw enoent(dir);
  return files;
};

function resolve(options: PoolOptions | undefined, env: NodeJS.ProcessEnv = {}): ResolvedOptions {
  return resolveOptions(options, env, readFile, listFiles);
}

function withService(consul?: ConsulOptions, extra: PoolOptions = {}): PoolOptions {
  return consul === undefined ? { service: 'pglab', ...extra } : { service: 'pglab', consul, ...extra };
}

/** Asserts that `fn` throws a TypeError whose message contains every `parts` and no secret. */
function assertTypeError(fn: () => unknown, ...parts: string[]): TypeError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof TypeError, `expected a TypeError, got ${String(caught)}`);
  assert.ok(caught.message.startsWith('pg-consul: '), caught.message);
  for (const part of parts) assert.ok(caught.message.includes(part), `message ${JSON.stringify(caught.message)} lacks ${JSON.stringify(part)}`);
  for (const secret of SECRETS) assert.ok(!caught.message.includes(secret), `message leaks a secret: ${caught.message}`);
  assert.ok(!JSON.stringify(caught.cause ?? null).includes('s3cret'));
  return caught;
}

function assertDeepFrozen(value: unknown, path: string): void {
  if (typeof value !== 'object' || value === null) return;
  assert.ok(Object.isFrozen(value), `${path} is not frozen`);
  for (const [key, child] of Object.entries(value)) assertDeepFrozen(child, `${path}.${key}`);
}

// ---------------------------------------------------------------------------------------

describe('resolveOptions', () => {
  describe('defaults', () => {
    it('fills every default from a service name alone', () => {
      const r = resolve({ service: 'pglab' });
      const { logger, ...rest } = r;
      assert.equal(typeof logger, 'function');
      assert.deepEqual(rest, {
        service: 'pglab',
        consul: { scheme: 'http', host: '127.0.0.1', port: 8500, consistency: 'default', tls: { rejectUnauthorized: true } },
        waitSeconds: 300,
        requestTimeoutMillis: 10_000,
        consulConnectTimeoutMillis: 2_000,
        failoverTimeoutMillis: 30_000,
        primaryTags: ['primary', 'master'],
        replicaTags: ['replica'],
        readFallback: 'primary',
        retryInitialDelayMillis: 50,
        retryMaxDelayMillis: 1000,
        discoveryMinIntervalMillis: 100,
        pg: {},
      });
    });

    it('exports the defaults it uses', () => {
      const r = resolve({ service: 'pglab' });
      assert.equal(r.failoverTimeoutMillis, DEFAULTS.failoverTimeoutMillis);
      assert.deepEqual(r.primaryTags, DEFAULTS.primaryTags);
      assert.ok(Object.isFrozen(DEFAULTS));
    });

    it('reads process.env when no env is given', () => {
      const saved = process.env.PGCONSUL_SERVICE;
      process.env.PGCONSUL_SERVICE = 'from-process-env';
      try {
        assert.equal(resolveOptions(undefined).service, 'from-process-env');
      } finally {
        if (saved === undefined) delete process.env.PGCONSUL_SERVICE;
        else process.env.PGCONSUL_SERVICE = saved;
      }
    });
  });

  describe('options object', () => {
    for (const bad of [null, 'pglab', 42, ['pglab'], () => 'x']) {
      it(`rejects options = ${String(bad)}`, () => {
        assertTypeError(() => resolve(bad as unknown as PoolOptions), 'options must be an object');
      });
    }
  });

  describe('service', () => {
    it('comes from the option, else PGCONSUL_SERVICE; the option wins', () => {
      assert.equal(resolve({ service: 'a' }).service, 'a');
      assert.equal(resolve({}, { PGCONSUL_SERVICE: 'b' }).service, 'b');
      assert.equal(resolve(undefined, { PGCONSUL_SERVICE: 'b' }).service, 'b');
      assert.equal(resolve({ service: 'a' }, { PGCONSUL_SERVICE: 'b' }).service, 'a');
      assert.equal(resolve({ service: undefined }, { PGCONSUL_SERVICE: 'b' }).service, 'b');
    });

    it('is required', () => {
      assertTypeError(() => resolve({}), 'option "service" is required', 'PGCONSUL_SERVICE');
      assertTypeError(() => resolve({}, { PGCONSUL_SERVICE: '' }), 'option "service" is required');
    });

    for (const good of ['pglab', 'PgLab', 'pg-lab_1.prod', '0', 'a..b']) {
      it(`accepts ${JSON.stringify(good)}`, () => {
        assert.equal(resolve({ service: good }).service, good);
      });
    }

    const badNames: unknown[] = ['../x', '..', '.a', '-a', '_a', 'a/b', 'a?b', 'a#b', 'a%2f', 'a b', ' a', 'a ', 'a\nb', 'é', '', 42, null, ['a']];
    for (const bad of badNames) {
      it(`rejects option service = ${JSON.stringify(bad)}`, () => {
        assertTypeError(() => resolve({ service: bad as string }), 'option "service"');
      });
    }
    for (const bad of ['../x', 'a/b', 'a?b', ' a', 'a%2f']) {
      it(`rejects PGCONSUL_SERVICE=${JSON.stringify(bad)}`, () => {
        assertTypeError(() => resolve({}, { PGCONSUL_SERVICE: bad }), 'environment variable PGCONSUL_SERVICE');
      });
    }
  });

  describe('consul address', () => {
    type Where = { scheme: 'http' | 'https'; host: string; port: number; socketPath?: string };
    const cases: ReadonlyArray<readonly [string, NodeJS.ProcessEnv, Where]> = [
      ['consul:8500', {}, { scheme: 'http', host: 'consul', port: 8500 }],
      ['consul.service.dc1.consul:18500', {}, { scheme: 'http', host: 'consul.service.dc1.consul', port: 18500 }],
      ['10.1.2.3:8500', {}, { scheme: 'http', host: '10.1.2.3', port: 8500 }],
      ['consul', {}, { scheme: 'http', host: 'consul', port: 80 }],
      ['http://consul:8500', {}, { scheme: 'http', host: 'consul', port: 8500 }],
      ['http://consul', {}, { scheme: 'http', host: 'consul', port: 80 }],
      ['http://consul:8500/', {}, { scheme: 'http', host: 'consul', port: 8500 }],
      ['https://consul:8501', {}, { scheme: 'https', host: 'consul', port: 8501 }],
      ['https://consul', {}, { scheme: 'https', host: 'consul', port: 443 }],
      ['[::1]:8500', {}, { scheme: 'http', host: '::1', port: 8500 }],
      ['[::1]', {}, { scheme: 'http', host: '::1', port: 80 }],
      ['https://[fe80::1]:8501', {}, { scheme: 'https', host: 'fe80::1', port: 8501 }],
      ['unix:///var/run/consul/http.sock', {}, { scheme: 'http', host: 'localhost', port: 80, socketPath: '/var/run/consul/http.sock' }],
      ['unix://relative.sock', {}, { scheme: 'http', host: 'localhost', port: 80, socketPath: 'relative.sock' }],
      // CONSUL_HTTP_SSL upgrades everything but never downgrades https (Consul's Go client).
      ['consul:8501', { CONSUL_HTTP_SSL: 'true' }, { scheme: 'https', host: 'consul', port: 8501 }],
      ['consul', { CONSUL_HTTP_SSL: '1' }, { scheme: 'https', host: 'consul', port: 443 }],
      ['http://consul:8501', { CONSUL_HTTP_SSL: 'true' }, { scheme: 'https', host: 'consul', port: 8501 }],
      ['https://consul:8501', { CONSUL_HTTP_SSL: 'false' }, { scheme: 'https', host: 'consul', port: 8501 }],
      ['unix:///s.sock', { CONSUL_HTTP_SSL: 'T' }, { scheme: 'https', host: 'localhost', port: 443, socketPath: '/s.sock' }],
      ['consul:8500', { CONSUL_HTTP_SSL: 'false' }, { scheme: 'http', host: 'consul', port: 8500 }],
    ];

    function where(r: ResolvedOptions): Where {
      const { scheme, host, port, socketPath } = r.consul;
      return socketPath === undefined ? { scheme, host, port } : { scheme, host, port, socketPath };
    }

    for (const [address, env, expected] of cases) {
      const envText = Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ');
      it(`CONSUL_HTTP_ADDR=${address} ${envText}`, () => {
        assert.deepEqual(where(resolve(withService(), { ...env, CONSUL_HTTP_ADDR: address })), expected);
      });
      it(`consul.address ${address} ${envText}`, () => {
        assert.deepEqual(where(resolve(withService({ address }), env)), expected);
      });
    }

    it('defaults to http://127.0.0.1:8500 (an empty CONSUL_HTTP_ADDR counts as unset)', () => {
      assert.deepEqual(where(resolve(withService(), { CONSUL_HTTP_ADDR: '' })), { scheme: 'http', host: '127.0.0.1', port: 8500 });
      assert.deepEqual(where(resolve(withService(), { CONSUL_HTTP_SSL: 'true' })), { scheme: 'https', host: '127.0.0.1', port: 8500 });
    });

    it('explicit secure wins over CONSUL_HTTP_SSL', () => {
      const env = { CONSUL_HTTP_ADDR: 'consul:8500', CONSUL_HTTP_SSL: 'true' };
      assert.equal(resolve(withService({ secure: false }), env).consul.scheme, 'http');
      assert.equal(resolve(withService({ secure: true }), { CONSUL_HTTP_ADDR: 'consul:8500' }).consul.scheme, 'https');
      assert.equal(resolve(withService({ secure: false, address: 'https://c:1' })).consul.scheme, 'https');
    });

    it('explicit address wins over CONSUL_HTTP_ADDR', () => {
      assert.equal(resolve(withService({ address: 'a:1' }), { CONSUL_HTTP_ADDR: 'b:2' }).consul.host, 'a');
    });

    const hostPort: ReadonlyArray<readonly [ConsulOptions, Where]> = [
      [{ host: 'consul' }, { scheme: 'http', host: 'consul', port: 8500 }],
      [{ port: 18500 }, { scheme: 'http', host: '127.0.0.1', port: 18500 }],
      [{ host: 'consul', port: 1 }, { scheme: 'http', host: 'consul', port: 1 }],
      [{ host: '::1', port: 65535 }, { scheme: 'http', host: '::1', port: 65535 }],
      [{ host: '[::1]' }, { scheme: 'http', host: '::1', port: 8500 }],
      [{ host: '10.0.0.1', secure: true }, { scheme: 'https', host: '10.0.0.1', port: 8500 }],
    ];
    for (const [consul, expected] of hostPort) {
      it(`host/port options ${JSON.stringify(consul)} (CONSUL_HTTP_ADDR ignored)`, () => {
        assert.deepEqual(where(resolve(withService(consul), { CONSUL_HTTP_ADDR: 'https://elsewhere:9' })), expected);
      });
    }

    it('rejects address together with host or port', () => {
      assertTypeError(() => resolve(withService({ address: 'a:1', host: 'b' })), 'option "consul.address"', '"consul.host"');
      assertTypeError(() => resolve(withService({ address: 'a:1', port: 2 })), 'option "consul.address"', '"consul.port"');
    });

    const badAddresses = [
      'ftp://consul:21',
      'HTTP://consul:8500',
      'unix://',
      'http://consul:8500/prefix',
      'https://consul/a/b',
      'consul:0',
      'consul:65536',
      'consul:abc',
      'consul:',
      ':8500',
      '::1',
      '::1:8500',
      '[::1',
      '[zz]:8500',
      '[::1]x',
      '[::1]:',
      'a b:8500',
      'consul/x',
      'http://',
    ];
    for (const bad of badAddresses) {
      it(`rejects CONSUL_HTTP_ADDR / consul.address ${JSON.stringify(bad)}`, () => {
        assertTypeError(() => resolve(withService(), { CONSUL_HTTP_ADDR: bad }), 'environment variable CONSUL_HTTP_ADDR');
        assertTypeError(() => resolve(withService({ address: bad })), 'option "consul.address"');
      });
    }

    it('rejects credentials in the address without echoing them', () => {
      for (const bad of [`http://user:${AUTH_PASSWORD}@consul:8500`, `user:${AUTH_PASSWORD}@consul:8500`]) {
        const err = assertTypeError(() => resolve(withService(), { CONSUL_HTTP_ADDR: bad }), 'CONSUL_HTTP_ADDR', '(value hidden)');
        assert.ok(!err.message.includes(AUTH_PASSWORD));
      }
    });

    const badHostPort: ReadonlyArray<readonly [ConsulOptions, string]> = [
      [{ host: 'a b' }, 'consul.host'],
      [{ host: '' }, 'consul.host'],
      [{ host: 'a:b:c' }, 'consul.host'],
      [{ host: 'h/x' }, 'consul.host'],
      [{ host: 1 as unknown as string }, 'consul.host'],
      [{ port: 0 }, 'consul.port'],
      [{ port: 65536 }, 'consul.port'],
      [{ port: 1.5 }, 'consul.port'],
      [{ port: Number.NaN }, 'consul.port'],
      [{ port: '8500' as unknown as number }, 'consul.port'],
      [{ address: '' }, 'consul.address'],
      [{ address: 8500 as unknown as string }, 'consul.address'],
    ];
    for (const [consul, name] of badHostPort) {
      it(`rejects ${JSON.stringify(consul)}`, () => {
        assertTypeError(() => resolve(withService(consul)), `option "${name}"`);
      });
    }
  });

  describe('Go strconv.ParseBool for CONSUL_HTTP_SSL and CONSUL_HTTP_SSL_VERIFY', () => {
    const table: ReadonlyArray<readonly [string, boolean]> = [
      ['1', true],
      ['t', true],
      ['T', true],
      ['TRUE', true],
      ['true', true],
      ['True', true],
      ['0', false],
      ['f', false],
      ['F', false],
      ['FALSE', false],
      ['false', false],
      ['False', false],
    ];
    for (const [text, value] of table) {
      it(`parses ${JSON.stringify(text)} as ${value}`, () => {
        assert.equal(resolve(withService(), { CONSUL_HTTP_SSL_VERIFY: text }).consul.tls.rejectUnauthorized, value);
        assert.equal(resolve(withService(), { CONSUL_HTTP_SSL: text }).consul.scheme, value ? 'https' : 'http');
      });
    }
    for (const bad of ['yes', 'no', 'on', 'off', 'tRuE', 'fALSE', '2', '-1', ' true', 'true ', 'y', 'enabled']) {
      it(`rejects ${JSON.stringify(bad)} naming the variable`, () => {
        assertTypeError(() => resolve(withService(), { CONSUL_HTTP_SSL_VERIFY: bad }), 'environment variable CONSUL_HTTP_SSL_VERIFY', JSON.stringify(bad));
        assertTypeError(() => resolve(withService(), { CONSUL_HTTP_SSL: bad }), 'environment variable CONSUL_HTTP_SSL must');
      });
    }
    it('verifies by default and treats an empty variable as unset', () => {
      assert.equal(resolve(withService()).consul.tls.rejectUnauthorized, true);
      assert.equal(resolve(withService(), { CONSUL_HTTP_SSL_VERIFY: '' }).consul.tls.rejectUnauthorized, true);
    });
    it('explicit verify / secure win over the environment and must be booleans', () => {
      assert.equal(resolve(withService({ verify: false }), { CONSUL_HTTP_SSL_VERIFY: 'true' }).consul.tls.rejectUnauthorized, false);
      assert.equal(resolve(withService({ verify: true }), { CONSUL_HTTP_SSL_VERIFY: 'false' }).consul.tls.rejectUnauthorized, true);
      assert.equal(resolve(withService({ verify: true }), { CONSUL_HTTP_SSL_VERIFY: 'garbage' }).consul.tls.rejectUnauthorized, true);
      assertTypeError(() => resolve(withService({ verify: 'false' as unknown as boolean })), 'option "consul.verify" must be a boolean');
      assertTypeError(() => resolve(withService({ secure: 1 as unknown as boolean })), 'option "consul.secure" must be a boolean');
    });
  });

  describe('token', () => {
    const cases: ReadonlyArray<readonly [string, ConsulOptions, NodeJS.ProcessEnv, string | undefined]> = [
      ['none', {}, {}, undefined],
      ['CONSUL_HTTP_TOKEN', {}, { CONSUL_HTTP_TOKEN: TOKEN }, TOKEN],
      ['CONSUL_HTTP_TOKEN_FILE (trimmed)', {}, { CONSUL_HTTP_TOKEN_FILE: '/run/secrets/token' }, FILE_TOKEN],
      ['CONSUL_HTTP_TOKEN_FILE wins over CONSUL_HTTP_TOKEN', {}, { CONSUL_HTTP_TOKEN_FILE: '/run/secrets/token', CONSUL_HTTP_TOKEN: TOKEN }, FILE_TOKEN],
      ['an empty CONSUL_HTTP_TOKEN_FILE falls back to CONSUL_HTTP_TOKEN', {}, { CONSUL_HTTP_TOKEN_FILE: '/run/secrets/empty-token', CONSUL_HTTP_TOKEN: TOKEN }, TOKEN],
      ['an empty token file and no token: no token', {}, { CONSUL_HTTP_TOKEN_FILE: '/run/secrets/empty-token' }, undefined],
      ['empty variables count as unset', {}, { CONSUL_HTTP_TOKEN_FILE: '', CONSUL_HTTP_TOKEN: '' }, undefined],
      ['option token wins over both variables', { token: 'opt-token' }, { CONSUL_HTTP_TOKEN_FILE: '/run/secrets/token', CONSUL_HTTP_TOKEN: TOKEN }, 'opt-token'],
      ['option tokenFile wins over option token', { token: 'opt-token', tokenFile: '/run/secrets/token' }, {}, FILE_TOKEN],
      ['option tokenFile wins over CONSUL_HTTP_TOKEN', { tokenFile: '/run/secrets/token' }, { CONSUL_HTTP_TOKEN: TOKEN }, FILE_TOKEN],
      ['an empty option tokenFile falls back to option token', { token: 'opt-token', tokenFile: '/run/secrets/empty-token' }, { CONSUL_HTTP_TOKEN: TOKEN }, 'opt-token'],
    ];
    for (const [name, consul, env, expected] of cases) {
      it(name, () => {
        assert.equal(resolve(withService(consul), env).consul.token, expected);
      });
    }

    it('rejects an unreadable token file naming the option or variable, not the content', () => {
      assertTypeError(() => resolve(withService(), { CONSUL_HTTP_TOKEN_FILE: '/nope', CONSUL_HTTP_TOKEN: TOKEN }), 'environment variable CONSUL_HTTP_TOKEN_FILE', '"/nope"', 'ENOENT');
      assertTypeError(() => resolve(withService({ tokenFile: '/nope', token: TOKEN })), 'option "consul.tokenFile"', 'ENOENT');
    });

    it('reports a readFile failure without a code', () => {
      const throwing = (): string => {
        throw new Error(`cannot read, content was ${TOKEN}`);
      };
      const err = assertTypeError(() => resolveOptions(withService({ tokenFile: '/x' }), {}, throwing), 'option "consul.tokenFile"', 'read failed');
      assert.ok(!err.message.includes(TOKEN));
    });

    it('rejects invalid tokens without showing them', () => {
      assertTypeError(() => resolve(withService({ token: 'bad tok' })), 'option "consul.token"', '(value hidden)');
      assertTypeError(() => resolve(withService({ token: 'evil\ntoken' })), 'option "consul.token"', '(value hidden)');
      assertTypeError(() => resolve(withService({ token: '' })), 'option "consul.token"', '(value hidden)');
      assertTypeError(() => resolve(withService({ token: 12345 as unknown as string })), 'option "consul.token"', '(value hidden)');
      assertTypeError(() => resolve(withService(), { CONSUL_HTTP_TOKEN: 'evil\ntoken' }), 'environment variable CONSUL_HTTP_TOKEN', '(value hidden)');
      assertTypeError(() => resolve(withService(), { CONSUL_HTTP_TOKEN_FILE: '/run/secrets/bad-token' }), 'environment variable CONSUL_HTTP_TOKEN_FILE', '(value hidden)');
      assertTypeError(() => resolve(withService({ tokenFile: '' })), 'option "consul.tokenFile"');
    });
  });

  describe('basic auth', () => {
    const cases: ReadonlyArray<readonly [ConsulOptions, NodeJS.ProcessEnv, { username: string; password: string } | undefined]> = [
      [{}, {}, undefined],
      [{}, { CONSUL_HTTP_AUTH: `admin:${AUTH_PASSWORD}` }, { username: 'admin', password: AUTH_PASSWORD }],
      [{}, { CONSUL_HTTP_AUTH: 'admin' }, { username: 'admin', password: '' }],
      [{}, { CONSUL_HTTP_AUTH: 'admin:a:b' }, { username: 'admin', password: 'a:b' }],
      [{}, { CONSUL_HTTP_AUTH: ':only-pass' }, { username: '', password: 'only-pass' }],
      [{ auth: 'opt:pw' }, { CONSUL_HTTP_AUTH: `admin:${AUTH_PASSWORD}` }, { username: 'opt', password: 'pw' }],
    ];
    for (const [consul, env, expected] of cases) {
      it(`${JSON.stringify(consul)} + ${Object.keys(env).join(',') || 'no env'}`, () => {
        assert.deepEqual(resolve(withService(consul), env).consul.basicAuth, expected);
      });
    }
    it('rejects invalid values without showing them', () => {
      assertTypeError(() => resolve(withService({ auth: '' })), 'option "consul.auth"', '(value hidden)');
      assertTypeError(() => resolve(withService({ auth: 7 as unknown as string })), 'option "consul.auth"', '(value hidden)');
      assertTypeError(() => resolve(withService({ auth: `u:${AUTH_PASSWORD}\r\n` })), 'option "consul.auth"', '(value hidden)');
      assertTypeError(() => resolve(withService(), { CONSUL_HTTP_AUTH: `u\n:${AUTH_PASSWORD}` }), 'environment variable CONSUL_HTTP_AUTH', '(value hidden)');
    });
  });

  describe('datacenter, consistency, namespace, partition', () => {
    const cases: ReadonlyArray<readonly [keyof ConsulOptions, string, string, string]> = [
      ['datacenter', 'PGCONSUL_CONSUL_DATACENTER', 'dc1', 'dc2'],
      ['consistency', 'PGCONSUL_CONSUL_CONSISTENCY', 'stale', 'consistent'],
      ['namespace', 'CONSUL_NAMESPACE', 'team-a', 'team-b'],
      ['partition', 'CONSUL_PARTITION', 'part-a', 'part-b'],
    ];
    for (const [key, envName, fromOption, fromEnv] of cases) {
      it(`${key}: option, else ${envName}; the option wins`, () => {
        const get = (r: ResolvedOptions): unknown => (r.consul as unknown as Record<string, unknown>)[key];
        assert.equal(get(resolve(withService({ [key]: fromOption }))), fromOption);
        assert.equal(get(resolve(withService(), { [envName]: fromEnv })), fromEnv);
        assert.equal(get(resolve(withService({ [key]: fromOption }), { [envName]: fromEnv })), fromOption);
      });
    }

    it('has no datacenter, namespace or partition by default, and consistency "default"', () => {
      const c = resolve(withService()).consul;
      assert.equal(c.datacenter, undefined);
      assert.equal(c.namespace, undefined);
      assert.equal(c.partition, undefined);
      assert.equal(c.consistency, 'default');
      assert.equal(resolve(withService({ consistency: 'default' }), { PGCONSUL_CONSUL_CONSISTENCY: 'stale' }).consul.consistency, 'default');
    });

    it('does not read CONSUL_DATACENTER (not a Consul convention)', () => {
      assert.equal(resolve(withService(), { CONSUL_DATACENTER: 'dc9' }).consul.datacenter, undefined);
    });

    const bad: ReadonlyArray<readonly [keyof ConsulOptions, string, unknown]> = [
      ['datacenter', 'PGCONSUL_CONSUL_DATACENTER', 'dc 1'],
      ['datacenter', 'PGCONSUL_CONSUL_DATACENTER', 'dc/1'],
      ['datacenter', 'PGCONSUL_CONSUL_DATACENTER', 'dc1&x=1'],
      ['consistency', 'PGCONSUL_CONSUL_CONSISTENCY', 'eventual'],
      ['consistency', 'PGCONSUL_CONSUL_CONSISTENCY', 'STALE'],
      ['namespace', 'CONSUL_NAMESPACE', 'a?b'],
      ['partition', 'CONSUL_PARTITION', '-x'],
    ];
    for (const [key, envName, value] of bad) {
      it(`rejects ${key} ${JSON.stringify(value)} naming the option or ${envName}`, () => {
        assertTypeError(() => resolve(withService({ [key]: value })), `option "consul.${key}"`, JSON.stringify(value));
        assertTypeError(() => resolve(withService(), { [envName]: String(value) }), `environment variable ${envName}`);
      });
    }
    for (const key of ['datacenter', 'consistency', 'namespace', 'partition'] as const) {
      it(`rejects a non-string or empty ${key}`, () => {
        assertTypeError(() => resolve(withService({ [key]: '' })), `option "consul.${key}"`);
        assertTypeError(() => resolve(withService({ [key]: 1 as unknown as string })), `option "consul.${key}"`);
      });
    }
  });

  describe('TLS files', () => {
    const caCases: ReadonlyArray<readonly [string, ConsulOptions, NodeJS.ProcessEnv, string | undefined]> = [
      ['no CA', {}, {}, undefined],
      ['inline ca', { ca: CA1 }, {}, CA1],
      ['caFile read through readFile', { caFile: '/etc/consul/ca.pem' }, {}, CA1],
      ['caPath: every file, in order, newline-terminated, concatenated', { caPath: '/etc/consul/cas' }, {}, `${CA1}${CA2}\n`],
      ['CONSUL_CACERT', {}, { CONSUL_CACERT: '/etc/consul/ca2.pem' }, CA2],
      ['CONSUL_CAPATH', {}, { CONSUL_CAPATH: '/etc/consul/cas' }, `${CA1}${CA2}\n`],
      ['CONSUL_CACERT wins over CONSUL_CAPATH', {}, { CONSUL_CACERT: '/etc/consul/ca.pem', CONSUL_CAPATH: '/etc/consul/cas' }, CA1],
      ['explicit caFile wins over CONSUL_CACERT', { caFile: '/etc/consul/ca2.pem' }, { CONSUL_CACERT: '/etc/consul/ca.pem' }, CA2],
      ['explicit caPath wins over CONSUL_CACERT', { caPath: '/etc/consul/cas' }, { CONSUL_CACERT: '/nope' }, `${CA1}${CA2}\n`],
      ['explicit ca wins over CONSUL_CAPATH', { ca: CA2 }, { CONSUL_CAPATH: '/nope' }, CA2],
    ];
    for (const [name, consul, env, expected] of caCases) {
      it(name, () => {
        assert.equal(resolve(withService(consul), env).consul.tls.ca, expected);
      });
    }

    it('reads the client certificate and key (options, files, variables)', () => {
      const fromFiles = resolve(withService({ certFile: '/etc/consul/client.pem', keyFile: '/etc/consul/client-key.pem' })).consul.tls;
      assert.equal(fromFiles.cert, CERT);
      assert.equal(fromFiles.key, KEY);
      const inline = resolve(withService({ cert: CERT, key: KEY })).consul.tls;
      assert.deepEqual([inline.cert, inline.key], [CERT, KEY]);
      const fromEnv = resolve(withService(), { CONSUL_CLIENT_CERT: '/etc/consul/client.pem', CONSUL_CLIENT_KEY: '/etc/consul/client-key.pem' }).consul.tls;
      assert.deepEqual([fromEnv.cert, fromEnv.key], [CERT, KEY]);
      const mixed = resolve(withService({ cert: CERT }), { CONSUL_CLIENT_CERT: '/nope', CONSUL_CLIENT_KEY: '/etc/consul/client-key.pem' }).consul.tls;
      assert.deepEqual([mixed.cert, mixed.key], [CERT, KEY]);
    });

    it('reads TLS files even over plain http (as Consul\'s Go client does) and only through readFile', () => {
      const read = sinon.spy(readFile);
      resolveOptions(withService({ caFile: '/etc/consul/ca.pem', certFile: '/etc/consul/client.pem', keyFile: '/etc/consul/client-key.pem' }), {}, read, listFiles);
      assert.deepEqual(read.getCalls().map((c) => c.args[0]).sort(), ['/etc/consul/ca.pem', '/etc/consul/client-key.pem', '/etc/consul/client.pem']);
    });

    it('sets the server name, dropping a port as Consul does', () => {
      const table: ReadonlyArray<readonly [string, string]> = [
        ['consul.local', 'consul.local'],
        ['consul.local:8501', 'consul.local'],
        ['10.0.0.1', '10.0.0.1'],
        ['[::1]:8501', '::1'],
        ['[::1]', '::1'],
        ['consul.local:whatever', 'consul.local'], // Go's net.SplitHostPort does not check the port
      ];
      for (const [input, expected] of table) {
        assert.equal(resolve(withService({ tlsServerName: input })).consul.tls.servername, expected);
        assert.equal(resolve(withService(), { CONSUL_TLS_SERVER_NAME: input }).consul.tls.servername, expected);
      }
      assert.equal(resolve(withService({ tlsServerName: 'a' }), { CONSUL_TLS_SERVER_NAME: 'b' }).consul.tls.servername, 'a');
      assertTypeError(() => resolve(withService({ tlsServerName: 'a b' })), 'option "consul.tlsServerName"');
      assertTypeError(() => resolve(withService({ tlsServerName: '' })), 'option "consul.tlsServerName"');
      assertTypeError(() => resolve(withService(), { CONSUL_TLS_SERVER_NAME: '::1' }), 'environment variable CONSUL_TLS_SERVER_NAME');
      assertTypeError(() => resolve(withService(), { CONSUL_TLS_SERVER_NAME: 'a b:1' }), 'environment variable CONSUL_TLS_SERVER_NAME');
    });

    const badTls: ReadonlyArray<readonly [string, ConsulOptions, NodeJS.ProcessEnv, string[]]> = [
      ['ca + caFile', { ca: CA1, caFile: '/etc/consul/ca.pem' }, {}, ['"consul.ca"', '"consul.caFile"', 'cannot be combined']],
      ['caFile + caPath', { caFile: '/etc/consul/ca.pem', caPath: '/etc/consul/cas' }, {}, ['"consul.caFile"', '"consul.caPath"']],
      ['cert + certFile', { cert: CERT, certFile: '/etc/consul/client.pem', key: KEY }, {}, ['"consul.cert"', '"consul.certFile"']],
      ['key + keyFile', { cert: CERT, key: KEY, keyFile: '/etc/consul/client-key.pem' }, {}, ['"consul.key"', '"consul.keyFile"']],
      ['unreadable caFile', { caFile: '/nope' }, {}, ['option "consul.caFile"', 'ENOENT', '"/nope"']],
      ['unreadable CONSUL_CACERT', {}, { CONSUL_CACERT: '/nope' }, ['environment variable CONSUL_CACERT', 'ENOENT']],
      ['non-PEM caFile', { caFile: '/etc/consul/not-pem.txt' }, {}, ['option "consul.caFile"', 'PEM certificate', 'not-pem.txt']],
      ['non-PEM inline ca', { ca: 'hello' }, {}, ['option "consul.ca"', 'PEM certificate']],
      ['missing caPath', { caPath: '/nope' }, {}, ['option "consul.caPath"', 'ENOENT']],
      ['empty caPath', { caPath: '/etc/consul/empty' }, {}, ['option "consul.caPath"', 'no files']],
      ['caPath with a non-certificate file', {}, { CONSUL_CAPATH: '/etc/consul/mixed' }, ['environment variable CONSUL_CAPATH', 'readme.txt']],
      ['cert without key', { certFile: '/etc/consul/client.pem' }, {}, ['option "consul.certFile"', 'no client key']],
      ['key without cert', {}, { CONSUL_CLIENT_KEY: '/etc/consul/client-key.pem' }, ['environment variable CONSUL_CLIENT_KEY', 'no client certificate']],
      ['unreadable keyFile', { cert: CERT, keyFile: '/nope' }, {}, ['option "consul.keyFile"', 'ENOENT']],
      ['non-PEM key file', { cert: CERT, keyFile: '/etc/consul/bad-key.pem' }, {}, ['option "consul.keyFile"', 'private key', '(value hidden)']],
      ['non-PEM inline key', { cert: CERT, key: `inline-s3cret ${KEY_SECRET}` }, {}, ['option "consul.key"', '(value hidden)']],
      ['key of the wrong type', { cert: CERT, key: 5 as unknown as string }, {}, ['option "consul.key"', '(value hidden)']],
      ['cert of the wrong type', { cert: {} as unknown as string, key: KEY }, {}, ['option "consul.cert"']],
      ['caFile of the wrong type', { caFile: 5 as unknown as string }, {}, ['option "consul.caFile"']],
    ];
    for (const [name, consul, env, parts] of badTls) {
      it(`rejects ${name}`, () => {
        assertTypeError(() => resolve(withService(consul), env), ...parts);
      });
    }
  });

  describe('consul timing', () => {
    it('uses waitSeconds and requestTimeoutMillis', () => {
      const r = resolve(withService({ waitSeconds: 600, requestTimeoutMillis: 1 }));
      assert.equal(r.waitSeconds, 600);
      assert.equal(r.requestTimeoutMillis, 1);
      assert.equal(resolve(withService({ waitSeconds: 1 })).waitSeconds, 1);
    });
    it('uses connectTimeoutMillis; 0 (explicit) = no connect timeout of its own', () => {
      assert.equal(resolve(withService({})).consulConnectTimeoutMillis, 2_000);
      assert.equal(resolve(withService({ connectTimeoutMillis: 0 })).consulConnectTimeoutMillis, 0);
      assert.equal(resolve(withService({ connectTimeoutMillis: 750 })).consulConnectTimeoutMillis, 750);
    });
    const bad: ReadonlyArray<readonly [keyof ConsulOptions, unknown]> = [
      ['waitSeconds', 0],
      ['waitSeconds', 601],
      ['waitSeconds', 1.5],
      ['waitSeconds', -1],
      ['waitSeconds', '300'],
      ['waitSeconds', Number.NaN],
      ['waitSeconds', Infinity],
      ['requestTimeoutMillis', 0],
      ['requestTimeoutMillis', -5],
      ['requestTimeoutMillis', 2 ** 31],
      ['requestTimeoutMillis', 10.5],
      ['requestTimeoutMillis', null],
      ['connectTimeoutMillis', -1],
      ['connectTimeoutMillis', 2 ** 31],
      ['connectTimeoutMillis', 1.5],
      ['connectTimeoutMillis', '2000'],
    ];
    for (const [key, value] of bad) {
      it(`rejects consul.${key} = ${String(value)}`, () => {
        assertTypeError(() => resolve(withService({ [key]: value })), `option "consul.${key}" must be an integer`);
      });
    }
  });

  describe('consul options object', () => {
    for (const key of ['url', 'Host', 'dc', 'timeout', 'headers']) {
      it(`rejects unknown key consul.${key}`, () => {
        assertTypeError(() => resolve(withService({ [key]: 'x' } as ConsulOptions)), `unknown option "consul.${key}"`);
      });
    }
    for (const bad of [null, 'consul:8500', ['x'], 5]) {
      it(`rejects consul = ${JSON.stringify(bad)}`, () => {
        assertTypeError(() => resolve({ service: 'pglab', consul: bad as unknown as ConsulOptions }), 'option "consul" must be an object');
      });
    }
    it('ignores consul keys set to undefined', () => {
      assert.equal(resolve(withService({ address: undefined, token: undefined })).consul.host, '127.0.0.1');
    });
  });

  describe('failoverTimeoutMillis', () => {
    it('comes from the option, else PGCONSUL_FAILOVER_TIMEOUT_MS, else 30000', () => {
      assert.equal(resolve(withService(undefined, { failoverTimeoutMillis: 5000 })).failoverTimeoutMillis, 5000);
      assert.equal(resolve(withService(undefined, { failoverTimeoutMillis: 0 })).failoverTimeoutMillis, 0);
      assert.equal(resolve(withService(), { PGCONSUL_FAILOVER_TIMEOUT_MS: '10000' }).failoverTimeoutMillis, 10_000);
      assert.equal(resolve(withService(), { PGCONSUL_FAILOVER_TIMEOUT_MS: '0' }).failoverTimeoutMillis, 0);
      assert.equal(resolve(withService(undefined, { failoverTimeoutMillis: 7 }), { PGCONSUL_FAILOVER_TIMEOUT_MS: '10000' }).failoverTimeoutMillis, 7);
      assert.equal(resolve(withService()).failoverTimeoutMillis, 30_000);
    });
    for (const bad of [-1, 1.5, Number.NaN, Infinity, -Infinity, 2 ** 31, '100', null, true]) {
      it(`rejects option ${String(bad)}`, () => {
        assertTypeError(() => resolve(withService(undefined, { failoverTimeoutMillis: bad as number })), 'option "failoverTimeoutMillis"', String(bad));
      });
    }
    for (const bad of ['-1', '1e3', '10s', ' 100', '100 ', '0x10', '1.5', '+5', '2147483648', 'Infinity', '1_000']) {
      it(`rejects PGCONSUL_FAILOVER_TIMEOUT_MS=${JSON.stringify(bad)}`, () => {
        assertTypeError(() => resolve(withService(), { PGCONSUL_FAILOVER_TIMEOUT_MS: bad }), 'environment variable PGCONSUL_FAILOVER_TIMEOUT_MS', JSON.stringify(bad));
      });
    }
  });

  describe('tags', () => {
    const cases: ReadonlyArray<readonly [string, PoolOptions, NodeJS.ProcessEnv, readonly string[], readonly string[]]> = [
      ['defaults', {}, {}, ['primary', 'master'], ['replica']],
      ['options', { primaryTags: ['leader'], replicaTags: ['follower', 'sync'] }, {}, ['leader'], ['follower', 'sync']],
      ['env, trimmed, empty items dropped', {}, { PGCONSUL_PRIMARY_TAGS: ' leader , ,writer,', PGCONSUL_REPLICA_TAGS: 'follower' }, ['leader', 'writer'], ['follower']],
      ['options win over env', { primaryTags: ['p'] }, { PGCONSUL_PRIMARY_TAGS: 'x', PGCONSUL_REPLICA_TAGS: 'r' }, ['p'], ['r']],
      ['duplicates removed', { primaryTags: ['a', 'a', 'b'] }, { PGCONSUL_REPLICA_TAGS: 'r,r' }, ['a', 'b'], ['r']],
    ];
    for (const [name, options, env, primary, replica] of cases) {
      it(name, () => {
        const r = resolve({ service: 'pglab', ...options }, env);
        assert.deepEqual(r.primaryTags, primary);
        assert.deepEqual(r.replicaTags, replica);
      });
    }
    const bad: ReadonlyArray<readonly [string, PoolOptions, NodeJS.ProcessEnv, string]> = [
      ['empty array', { primaryTags: [] }, {}, 'option "primaryTags"'],
      ['empty tag', { replicaTags: ['a', ''] }, {}, 'option "replicaTags"'],
      ['non-string tag', { replicaTags: [1 as unknown as string] }, {}, 'option "replicaTags"'],
      ['a string instead of an array', { primaryTags: 'primary' as unknown as string[] }, {}, 'option "primaryTags"'],
      ['env with no tags', {}, { PGCONSUL_PRIMARY_TAGS: ' , ' }, 'environment variable PGCONSUL_PRIMARY_TAGS'],
      ['overlap (options)', { primaryTags: ['a', 'b'], replicaTags: ['b'] }, {}, 'option "replicaTags"'],
      ['overlap (env)', {}, { PGCONSUL_REPLICA_TAGS: 'replica,master' }, 'environment variable PGCONSUL_REPLICA_TAGS'],
      ['overlap with the default replica tags', { primaryTags: ['replica'] }, {}, 'option "primaryTags"'],
      ['overlap of env primary with default replica tags', {}, { PGCONSUL_PRIMARY_TAGS: 'replica' }, 'environment variable PGCONSUL_PRIMARY_TAGS'],
    ];
    for (const [name, options, env, part] of bad) {
      it(`rejects ${name}`, () => {
        assertTypeError(() => resolve({ service: 'pglab', ...options }, env), part);
      });
    }
  });

  describe('readFallback', () => {
    it('comes from the option, else PGCONSUL_READ_FALLBACK, else "primary"', () => {
      assert.equal(resolve(withService()).readFallback, 'primary');
      assert.equal(resolve(withService(undefined, { readFallback: 'fail' })).readFallback, 'fail');
      assert.equal(resolve(withService(), { PGCONSUL_READ_FALLBACK: 'fail' }).readFallback, 'fail');
      assert.equal(resolve(withService(undefined, { readFallback: 'primary' }), { PGCONSUL_READ_FALLBACK: 'fail' }).readFallback, 'primary');
    });
    it('rejects other values', () => {
      assertTypeError(() => resolve(withService(undefined, { readFallback: 'replica' as 'fail' })), 'option "readFallback"', '"primary", "fail"');
      assertTypeError(() => resolve(withService(), { PGCONSUL_READ_FALLBACK: 'FAIL' }), 'environment variable PGCONSUL_READ_FALLBACK');
    });
  });

  describe('retry delays and discovery interval', () => {
    const cases: ReadonlyArray<readonly [PoolOptions, number, number]> = [
      [{}, 50, 1000],
      [{ retryInitialDelayMillis: 10, retryMaxDelayMillis: 20 }, 10, 20],
      [{ retryInitialDelayMillis: 2000 }, 2000, 2000],
      [{ retryMaxDelayMillis: 10 }, 10, 10],
      [{ retryInitialDelayMillis: 5, retryMaxDelayMillis: 5 }, 5, 5],
    ];
    for (const [options, initial, max] of cases) {
      it(`${JSON.stringify(options)} → ${initial}..${max}`, () => {
        const r = resolve({ service: 'pglab', ...options });
        assert.deepEqual([r.retryInitialDelayMillis, r.retryMaxDelayMillis], [initial, max]);
      });
    }
    const bad: ReadonlyArray<readonly [PoolOptions, string]> = [
      [{ retryInitialDelayMillis: 0 }, 'retryInitialDelayMillis'],
      [{ retryInitialDelayMillis: 1.5 }, 'retryInitialDelayMillis'],
      [{ retryMaxDelayMillis: -1 }, 'retryMaxDelayMillis'],
      [{ retryInitialDelayMillis: 100, retryMaxDelayMillis: 50 }, 'retryMaxDelayMillis'],
      [{ discoveryMinIntervalMillis: -1 }, 'discoveryMinIntervalMillis'],
      [{ discoveryMinIntervalMillis: Number.NaN }, 'discoveryMinIntervalMillis'],
      [{ discoveryMinIntervalMillis: '100' as unknown as number }, 'discoveryMinIntervalMillis'],
    ];
    for (const [options, name] of bad) {
      it(`rejects ${JSON.stringify(options)}`, () => {
        assertTypeError(() => resolve({ service: 'pglab', ...options }), `option "${name}"`);
      });
    }
    it('accepts discoveryMinIntervalMillis 0', () => {
      assert.equal(resolve(withService(undefined, { discoveryMinIntervalMillis: 0 })).discoveryMinIntervalMillis, 0);
      assert.equal(resolve(withService(undefined, { discoveryMinIntervalMillis: 250 })).discoveryMinIntervalMillis, 250);
    });
  });

  describe('logger', () => {
    it('wraps the logger option so it redacts and never throws', () => {
      const custom = sinon.spy<Logger>(() => {
        throw new Error('broken');
      });
      const r = resolve(withService(undefined, { logger: custom }));
      assert.doesNotThrow(() => r.logger('info', 'hello', { password: PG_PASSWORD }));
      sinon.assert.calledOnceWithExactly(custom, 'info', 'hello', { password: REDACTED });
    });
    it('rejects a non-function', () => {
      assertTypeError(() => resolve(withService(undefined, { logger: 'console' as unknown as Logger })), 'option "logger" must be a function');
    });
  });

  describe('pg options', () => {
    it('passes every other option through, minus pg-consul\'s own', () => {
      class MyClient {}
      const ssl = { rejectUnauthorized: false, ca: 'x' };
      const types = { getTypeParser: () => (v: string) => v };
      const verify = (): void => undefined;
      const options = {
        service: 'pglab',
        consul: { address: 'consul:8500' },
        failoverTimeoutMillis: 1,
        primaryTags: ['p'],
        replicaTags: ['r'],
        readFallback: 'fail',
        retryInitialDelayMillis: 1,
        retryMaxDelayMillis: 2,
        discoveryMinIntervalMillis: 3,
        logger: () => undefined,
        user: 'app',
        password: PG_PASSWORD,
        database: 'appdb',
        max: 20,
        min: 2,
        idleTimeoutMillis: 5000,
        connectionTimeoutMillis: 2000,
        application_name: 'svc',
        statement_timeout: 1000,
        ssl,
        keepAlive: true,
        Client: MyClient,
        types,
        verify,
        someFutureClientOption: 42,
      } as unknown as PoolOptions;
      const r = resolve(options);
      assert.deepEqual(r.pg, {
        user: 'app',
        password: PG_PASSWORD,
        database: 'appdb',
        max: 20,
        min: 2,
        idleTimeoutMillis: 5000,
        connectionTimeoutMillis: 2000,
        application_name: 'svc',
        statement_timeout: 1000,
        ssl,
        keepAlive: true,
        Client: MyClient,
        types,
        verify,
        someFutureClientOption: 42,
      });
      assert.equal(r.pg.ssl, ssl, 'nested pg values are passed by reference');
      assert.ok(!Object.isFrozen(ssl), 'the caller\'s objects are not frozen (pg writes to ssl)');
    });

    it('passes a password function through', () => {
      const password = async (): Promise<string> => PG_PASSWORD;
      assert.equal(resolve(withService(undefined, { password })).pg.password, password);
    });

    it('rejects host and port (they come from Consul), allows them undefined', () => {
      assertTypeError(() => resolve(withService(undefined, { host: 'db' })), 'option "host" is not supported');
      assertTypeError(() => resolve(withService(undefined, { port: 5432 })), 'option "port" is not supported');
      const r = resolve(withService(undefined, { host: undefined, port: undefined, user: 'u' }));
      assert.deepEqual(r.pg, { user: 'u' });
      assert.ok(!('host' in r.pg) && !('port' in r.pg));
    });

    it('expands a connection string into fields, dropping its host and port (and logs that at debug)', () => {
      const logger = sinon.spy<Logger>(() => undefined);
      const r = resolve(
        withService(undefined, {
          connectionString: `postgres://app:${PG_PASSWORD}@db.example:5432/appdb?application_name=svc&sslmode=disable`,
          max: 5,
          logger,
        }),
      );
      assert.deepEqual(r.pg, { user: 'app', password: PG_PASSWORD, database: 'appdb', application_name: 'svc', sslmode: 'disable', ssl: false, max: 5 });
      sinon.assert.calledOnce(logger);
      assert.equal(logger.firstCall.args[0], 'debug');
      assert.ok(!JSON.stringify(logger.firstCall.args).includes(PG_PASSWORD));
    });

    it('lets connection-string fields win over explicit ones (as pg does) but keeps explicit ones it lacks', () => {
      const logger = sinon.spy<Logger>(() => undefined);
      const r = resolve(withService(undefined, { connectionString: 'postgres://other@/otherdb', user: 'app', password: PG_PASSWORD, logger }));
      assert.deepEqual(r.pg, { user: 'other', password: PG_PASSWORD, database: 'otherdb' });
      sinon.assert.notCalled(logger);
    });

    it('rejects an invalid connection string without showing it', () => {
      assertTypeError(() => resolve(withService(undefined, { connectionString: `postgres://app:${PG_PASSWORD}@db:99999/app` })), 'option "connectionString"', '(value hidden)', 'ERR_INVALID_URL');
      assertTypeError(() => resolve(withService(undefined, { connectionString: `postgres://app:${PG_PASSWORD}@db/%E0%A4%A` })), 'option "connectionString"', '(value hidden)');
      assertTypeError(() => resolve(withService(undefined, { connectionString: 5 as unknown as string })), 'option "connectionString"', '(value hidden)');
      assertTypeError(() => resolve(withService(undefined, { connectionString: '' })), 'option "connectionString"');
    });

    it('does not modify the caller\'s options', () => {
      const options: PoolOptions = { service: 'pglab', user: 'u', consul: { address: 'c:1' }, primaryTags: ['p'] };
      const before = structuredClone(options);
      resolve(options);
      assert.deepEqual(options, before);
      assert.ok(!Object.isFrozen(options) && !Object.isFrozen(options.consul) && !Object.isFrozen(options.primaryTags));
    });
  });

  describe('frozen result', () => {
    it('is deeply frozen (pg at its top level)', () => {
      const r = resolve(
        withService(
          { address: 'https://consul:8501', token: 'tok', auth: 'u:p', caFile: '/etc/consul/ca.pem', cert: CERT, key: KEY, datacenter: 'dc1' },
          { user: 'u', ssl: { rejectUnauthorized: true } },
        ),
      );
      assert.ok(Object.isFrozen(r));
      for (const [key, value] of Object.entries(r)) {
        if (key !== 'pg') assertDeepFrozen(value, `resolved.${key}`);
      }
      assert.ok(Object.isFrozen(r.pg));
      assert.ok(Object.isFrozen(r.consul.basicAuth));
      assert.ok(Object.isFrozen(r.consul.tls));
      assert.throws(() => {
        (r.primaryTags as string[]).push('x');
      }, TypeError);
      assert.throws(() => {
        (r.consul as { port: number }).port = 1;
      }, TypeError);
    });
    it('does not share the tag arrays with the caller', () => {
      const primaryTags = ['p'];
      const r = resolve(withService(undefined, { primaryTags }));
      primaryTags.push('q');
      assert.deepEqual(r.primaryTags, ['p']);
    });
  });

  describe('secrets never appear in error messages', () => {
    // Every case has secrets in several places and one unrelated invalid value.
    const env: NodeJS.ProcessEnv = {
      CONSUL_HTTP_TOKEN: TOKEN,
      CONSUL_HTTP_AUTH: `admin:${AUTH_PASSWORD}`,
      CONSUL_CLIENT_CERT: '/etc/consul/client.pem',
      CONSUL_CLIENT_KEY: '/etc/consul/client-key.pem',
    };
    const base: PoolOptions = { service: 'pglab', password: PG_PASSWORD, connectionString: `postgres://app:${PG_PASSWORD}@/db` };
    const cases: ReadonlyArray<readonly [string, PoolOptions, NodeJS.ProcessEnv]> = [
      ['bad service', { ...base, service: 'a/b' }, env],
      ['bad port', { ...base, consul: { port: -1 } }, env],
      ['bad verify env', base, { ...env, CONSUL_HTTP_SSL_VERIFY: 'maybe' }],
      ['bad failover env', base, { ...env, PGCONSUL_FAILOVER_TIMEOUT_MS: 'soon' }],
      ['pg host', { ...base, host: 'db' }, env],
      ['bad token file', base, { ...env, CONSUL_HTTP_TOKEN_FILE: '/nope' }],
      ['bad key', { ...base, consul: { key: `x ${KEY_SECRET}`, cert: CERT } }, env],
      ['bad auth', { ...base, consul: { auth: `u:${AUTH_PASSWORD}\n` } }, env],
      ['bad token', { ...base, consul: { token: `${TOKEN} x` } }, env],
      ['unknown consul key', { ...base, consul: { password: AUTH_PASSWORD } as ConsulOptions }, env],
    ];
    for (const [name, options, e] of cases) {
      it(name, () => {
        assertTypeError(() => resolve(options, e));
      });
    }
  });

  describe('default file access (real files)', () => {
    let dir = '';
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'pg-consul-options-'));
      writeFileSync(join(dir, 'token'), `${FILE_TOKEN}\n`);
      mkdirSync(join(dir, 'cas', 'sub'), { recursive: true });
      writeFileSync(join(dir, 'cas', 'b.pem'), CA2);
      writeFileSync(join(dir, 'cas', 'sub', 'a.pem'), CA1);
    });
    after(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    it('reads a token file and a CA directory (recursively, sorted by path) from disk', () => {
      const r = resolveOptions(withService({ tokenFile: join(dir, 'token'), caPath: join(dir, 'cas') }), {});
      assert.equal(r.consul.token, FILE_TOKEN);
      assert.equal(r.consul.tls.ca, `${CA2}\n${CA1}`);
    });

    it('reports missing files and directories by name', () => {
      assertTypeError(() => resolveOptions(withService({ tokenFile: join(dir, 'missing') }), {}), 'option "consul.tokenFile"', 'ENOENT');
      assertTypeError(() => resolveOptions(withService({ caPath: join(dir, 'missing') }), {}), 'option "consul.caPath"', 'ENOENT');
    });
  });
});
