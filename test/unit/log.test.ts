import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import sinon from 'sinon';
import { REDACTED, createLogger, formatLogLine, redact, redactString } from '../../lib/log.js';
import type { LogLevel, Logger } from '../../lib/log.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('log', () => {
  describe('redactString', () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ['postgres://app:s3cret@db:5432/app', `postgres://app:${REDACTED}@db:5432/app`],
      ['postgresql://app:s3cret@db/app?sslmode=verify-full', `postgresql://app:${REDACTED}@db/app?sslmode=verify-full`],
      ['connect to postgres://app:s3cret@db/app failed', `connect to postgres://app:${REDACTED}@db/app failed`],
      ['postgres://app:p@ss@word@db/app', `postgres://app:${REDACTED}@db/app`],
      ['postgres://:s3cret@db/app', `postgres://:${REDACTED}@db/app`],
      ['http://user:s3cret@consul:8500/v1', `http://user:${REDACTED}@consul:8500/v1`],
      ['a postgres://u:one@h1/db and postgres://v:two@h2/db', `a postgres://u:${REDACTED}@h1/db and postgres://v:${REDACTED}@h2/db`],
      ['postgres://app@db:5432/app', 'postgres://app@db:5432/app'],
      ['http://127.0.0.1:8500/v1/health/service/pglab', 'http://127.0.0.1:8500/v1/health/service/pglab'],
      ['X-Consul-Token: 0b8f-s3cret', `X-Consul-Token: ${REDACTED}`],
      ['x-consul-token=0b8f-s3cret', `x-consul-token=${REDACTED}`],
      ['{"X-Consul-Token":"0b8f-s3cret","a":1}', `{"X-Consul-Token":"${REDACTED}","a":1}`],
      ['Authorization: Bearer 0b8f-s3cret', `Authorization: Bearer ${REDACTED}`],
      ['authorization: Basic dXNlcjpzM2NyZXQ=', `authorization: Basic ${REDACTED}`],
      ['GET /v1/kv/x?token=0b8f-s3cret&dc=dc1', `GET /v1/kv/x?token=${REDACTED}&dc=dc1`],
      ['host=db password=s3cret dbname=app', `host=db password=${REDACTED} dbname=app`],
      ["host=db password='s3 cret' dbname=app", `host=db password=${REDACTED} dbname=app`],
      ['no secrets here: 10.0.0.5:5432 primary', 'no secrets here: 10.0.0.5:5432 primary'],
      ['', ''],
    ];
    for (const [input, expected] of cases) {
      it(`redacts ${JSON.stringify(input)}`, () => {
        assert.equal(redactString(input), expected);
      });
    }
  });

  describe('redact', () => {
    const secretKeys = [
      'password',
      'Password',
      'PGPASSWORD',
      'passwd',
      'token',
      'accessToken',
      'X-Consul-Token',
      'secret',
      'clientSecret',
      'key',
      'sslkey',
      'apiKey',
      'auth',
      'basicAuth',
      'Authorization',
      'cookie',
    ];
    for (const key of secretKeys) {
      it(`hides the value of key ${JSON.stringify(key)} whatever its type`, () => {
        for (const value of ['s3cret', 42, { nested: 's3cret' }, ['s3cret'], () => 's3cret']) {
          assert.deepEqual(redact({ [key]: value, keep: 1 }), { [key]: REDACTED, keep: 1 });
        }
      });
    }

    it('keeps null and undefined secrets as they are (they reveal nothing)', () => {
      assert.deepEqual(redact({ password: null, token: undefined }), { password: null, token: undefined });
    });

    it('keeps non-secret values', () => {
      const input = { host: '10.0.0.5', port: 5432, ok: true, big: 10n, none: null, list: [1, 'two'], sym: Symbol.for('s') };
      assert.deepEqual(redact(input), input);
    });

    it('redacts nested objects, arrays and strings at any depth', () => {
      const input = {
        request: { headers: { 'X-Consul-Token': 't0ken', Accept: 'application/json' }, url: 'http://consul:8500/v1?token=t0ken' },
        nodes: [{ address: '10.0.0.5:5432', conn: 'postgres://app:s3cret@10.0.0.5/app' }],
      };
      assert.deepEqual(redact(input), {
        request: { headers: { 'X-Consul-Token': REDACTED, Accept: 'application/json' }, url: `http://consul:8500/v1?token=${REDACTED}` },
        nodes: [{ address: '10.0.0.5:5432', conn: `postgres://app:${REDACTED}@10.0.0.5/app` }],
      });
    });

    it('returns a copy and never modifies its input', () => {
      const input = { password: 's3cret', inner: { token: 't0ken', list: ['postgres://a:b@c/d'] } };
      const before = structuredClone(input);
      const out = redact(input) as typeof input;
      assert.deepEqual(input, before);
      assert.notEqual(out, input);
      assert.notEqual(out.inner, input.inner);
      assert.notEqual(out.inner.list, input.inner.list);
    });

    it('turns errors into plain objects with redacted message, stack, fields and cause', () => {
      const cause = Object.assign(new Error('auth failed for postgres://app:s3cret@db/app'), { code: '28P01' });
      const err = Object.assign(new Error('connect postgres://app:s3cret@db/app', { cause }), { code: 'ECONNREFUSED', password: 's3cret' });
      const out = redact({ err }) as { err: Record<string, unknown> };
      assert.equal(out.err.name, 'Error');
      assert.equal(out.err.message, `connect postgres://app:${REDACTED}@db/app`);
      assert.equal(out.err.code, 'ECONNREFUSED');
      assert.equal(out.err.password, REDACTED);
      assert.match(String(out.err.stack), /^Error: connect postgres:\/\/app:\[REDACTED\]@db\/app/);
      assert.deepEqual((out.err.cause as Record<string, unknown>).message, `auth failed for postgres://app:${REDACTED}@db/app`);
      assert.equal((out.err.cause as Record<string, unknown>).code, '28P01');
      assert.ok(!JSON.stringify(out).includes('s3cret'));
    });

    it('hides binary data, names functions, clones dates and stringifies URLs', () => {
      const date = new Date('2024-01-02T03:04:05Z');
      function connect(): void {}
      const out = redact({
        buf: Buffer.from('-----BEGIN PRIVATE KEY-----'),
        bytes: new Uint8Array(3),
        ab: new ArrayBuffer(5),
        fn: connect,
        anon: (() => () => undefined)(),
        date,
        url: new URL('postgres://app:s3cret@db/app'),
        re: /password=\w+/,
      }) as Record<string, unknown>;
      assert.equal(out.buf, '[Binary 27 bytes]');
      assert.equal(out.bytes, '[Binary 3 bytes]');
      assert.equal(out.ab, '[Binary 5 bytes]');
      assert.equal(out.fn, '[Function connect]');
      assert.equal(out.anon, '[Function anonymous]');
      assert.deepEqual(out.date, date);
      assert.notEqual(out.date, date);
      assert.equal(out.url, `postgres://app:${REDACTED}@db/app`);
      assert.equal(typeof out.re, 'string');
    });

    it('copies Maps (hiding values of secret string keys) and Sets', () => {
      const out = redact({
        headers: new Map<string, string>([
          ['X-Consul-Token', 't0ken'],
          ['Accept', 'text/plain'],
        ]),
        urls: new Set(['postgres://a:s3cret@h/d']),
      }) as { headers: Map<string, string>; urls: Set<string> };
      assert.deepEqual([...out.headers], [
        ['X-Consul-Token', REDACTED],
        ['Accept', 'text/plain'],
      ]);
      assert.deepEqual([...out.urls], [`postgres://a:${REDACTED}@h/d`]);
    });

    it('marks cycles, truncates deep nesting and survives throwing getters', () => {
      const cyclic: Record<string, unknown> = { name: 'a' };
      cyclic.self = cyclic;
      const shared = { v: 1 };
      let deep: Record<string, unknown> = { leaf: true };
      for (let i = 0; i < 20; i++) deep = { next: deep };
      const tricky = Object.defineProperty({ ok: 1 }, 'boom', {
        enumerable: true,
        get() {
          throw new Error('getter');
        },
      });
      assert.deepEqual(redact(cyclic), { name: 'a', self: '[Circular]' });
      assert.deepEqual(redact({ a: shared, b: shared }), { a: { v: 1 }, b: { v: 1 } });
      assert.match(JSON.stringify(redact(deep)), /"\[Truncated\]"/);
      assert.deepEqual(redact(tricky), { ok: 1, boom: '[Unreadable]' });
    });

    it('passes primitives through (strings redacted)', () => {
      assert.equal(redact(5), 5);
      assert.equal(redact(undefined), undefined);
      assert.equal(redact(null), null);
      assert.equal(redact('postgres://a:b@c/d'), `postgres://a:${REDACTED}@c/d`);
    });
  });

  describe('formatLogLine', () => {
    it('writes level and message, then the fields on one line', () => {
      assert.equal(formatLogLine('info', 'hello'), 'info hello');
      assert.equal(formatLogLine('info', 'hello', {}), 'info hello');
      assert.equal(formatLogLine('warn', 'no primary', { service: 'pglab', n: 2 }), "warn no primary { service: 'pglab', n: 2 }");
    });
  });

  describe('createLogger', () => {
    it('passes redacted messages and redacted copies of fields to a custom logger', () => {
      const custom = sinon.spy<Logger>(() => undefined);
      const log = createLogger(custom);
      const fields = { password: 's3cret', node: '10.0.0.5:5432', url: 'postgres://app:s3cret@db/app' };
      log('error', 'failed postgres://app:s3cret@db/app', fields);
      sinon.assert.calledOnceWithExactly(custom, 'error', `failed postgres://app:${REDACTED}@db/app`, {
        password: REDACTED,
        node: '10.0.0.5:5432',
        url: `postgres://app:${REDACTED}@db/app`,
      });
      assert.notEqual(custom.firstCall.args[2], fields);
      assert.equal(fields.password, 's3cret');
    });

    it('forwards every level and leaves absent fields absent', () => {
      const custom = sinon.spy<Logger>(() => undefined);
      const log = createLogger(custom);
      const levels: LogLevel[] = ['debug', 'info', 'warn', 'error'];
      for (const level of levels) log(level, `m-${level}`);
      assert.deepEqual(
        custom.getCalls().map((c) => c.args),
        levels.map((level) => [level, `m-${level}`, undefined]),
      );
    });

    it('swallows a logger that throws', () => {
      const log = createLogger(() => {
        throw new Error('broken logger');
      });
      assert.doesNotThrow(() => log('warn', 'x', { a: 1 }));
    });

    it('swallows a logger whose promise rejects (no unhandled rejection)', async () => {
      const unhandled = sinon.spy();
      process.on('unhandledRejection', unhandled);
      try {
        const asyncLogger = (async () => {
          throw new Error('async broken logger');
        }) as unknown as Logger;
        createLogger(asyncLogger)('info', 'x');
        await new Promise((resolve) => setImmediate(resolve));
        await new Promise((resolve) => setImmediate(resolve));
        sinon.assert.notCalled(unhandled);
      } finally {
        process.off('unhandledRejection', unhandled);
      }
    });

    it('returns the same default logger each time', () => {
      assert.equal(createLogger(), createLogger());
    });

    const script = [
      "import { createLogger } from './lib/log.ts';",
      'const log = createLogger();',
      "log('debug', 'd-msg');",
      "log('info', 'i-msg');",
      "log('warn', 'w-msg postgres://app:s3cret@db/app', { password: 's3cret', node: 'n1' });",
      "log('error', 'e-msg');",
    ].join('\n');

    function runChild(env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
      return new Promise((resolve, reject) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', '--input-type=module', '-e', script],
          { cwd: ROOT, env, timeout: 20_000 },
          (err, stdout, stderr) => (err ? reject(err) : resolve({ stdout, stderr })),
        );
      });
    }

    it('by default writes every level to stderr only with NODE_DEBUG=pg-consul, redacted', async function () {
      this.timeout(30_000);
      const env: NodeJS.ProcessEnv = { ...process.env, NODE_DEBUG: 'pg-consul' };
      delete env.DEBUG;
      const { stdout, stderr } = await runChild(env);
      assert.equal(stdout, '');
      for (const m of ['debug d-msg', 'info i-msg', 'warn w-msg', 'error e-msg']) assert.ok(stderr.includes(m), stderr);
      assert.match(stderr, /PG-CONSUL \d+: warn w-msg postgres:\/\/app:\[REDACTED\]@db\/app \{ password: '\[REDACTED\]', node: 'n1' \}/);
      assert.ok(!stderr.includes('s3cret'));
    });

    it('by default prints nothing at all without NODE_DEBUG', async function () {
      this.timeout(30_000);
      const env = { ...process.env };
      delete env.NODE_DEBUG;
      delete env.DEBUG;
      const { stdout, stderr } = await runChild(env);
      assert.equal(stdout, '');
      assert.equal(stderr, '');
    });
  });
});
