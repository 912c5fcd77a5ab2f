import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { DiscoveryError } from '../../../lib/errors.js';
import type { ConsulConfig } from '../../../lib/discovery/consul-config.js';
import {
  MAX_ERROR_BODY_CHARS,
  bodyExcerpt,
  consulGet,
  consulQueryString,
  consulRequestOptions,
  createConsulAgent,
} from '../../../lib/discovery/consul-http.js';

const TOKEN = 'c0ffee00-dead-beef-0000-5ecre7t0ken1';

function config(overrides: Partial<ConsulConfig> = {}): ConsulConfig {
  return {
    scheme: 'http',
    host: '127.0.0.1',
    port: 8500,
    consistency: 'default',
    tls: { rejectUnauthorized: true },
    ...overrides,
  };
}

describe('consul-http (pure parts)', () => {
  describe('consulQueryString', () => {
    const cases: ReadonlyArray<{ name: string; config: Partial<ConsulConfig>; query: Record<string, string | true | undefined>; expected: string }> = [
      { name: 'nothing', config: {}, query: {}, expected: '' },
      { name: 'flags are bare keys', config: {}, query: { passing: true }, expected: '?passing' },
      { name: 'undefined values are left out', config: {}, query: { passing: true, index: undefined, wait: undefined }, expected: '?passing' },
      { name: 'blocking params', config: {}, query: { passing: true, index: '42', wait: '30s' }, expected: '?passing&index=42&wait=30s' },
      { name: 'dc from config', config: { datacenter: 'dc1' }, query: { passing: true }, expected: '?dc=dc1&passing' },
      { name: 'stale flag', config: { consistency: 'stale' }, query: {}, expected: '?stale' },
      { name: 'consistent flag', config: { consistency: 'consistent' }, query: {}, expected: '?consistent' },
      { name: 'ns and partition', config: { namespace: 'team a', partition: 'p/1' }, query: {}, expected: '?ns=team%20a&partition=p%2F1' },
      { name: 'query overrides config', config: { datacenter: 'dc1' }, query: { dc: 'dc2' }, expected: '?dc=dc2' },
      { name: 'values are encoded', config: {}, query: { filter: '"primary" in Service.Tags' }, expected: '?filter=%22primary%22%20in%20Service.Tags' },
      { name: 'token never in the URL', config: { token: TOKEN }, query: { passing: true }, expected: '?passing' },
    ];
    for (const c of cases) {
      it(c.name, () => {
        assert.equal(consulQueryString(config(c.config), c.query), c.expected);
      });
    }
  });

  describe('consulRequestOptions', () => {
    it('maps a plain http config', () => {
      const plan = consulRequestOptions(config(), '/v1/health/service/pglab', { passing: true });
      assert.equal(plan.protocol, 'http:');
      assert.deepEqual(plan.options, {
        method: 'GET',
        path: '/v1/health/service/pglab?passing',
        headers: { accept: 'application/json', 'user-agent': 'pg-consul' },
        agent: false,
        hostname: '127.0.0.1',
        port: 8500,
      });
    });

    it('sends the token in X-Consul-Token and never in the path', () => {
      const plan = consulRequestOptions(config({ token: TOKEN }), '/v1/health/service/pglab', { passing: true });
      assert.equal((plan.options.headers as Record<string, string>)['x-consul-token'], TOKEN);
      assert.ok(!String(plan.options.path).includes(TOKEN));
    });

    it('sends basic auth in Authorization', () => {
      const plan = consulRequestOptions(config({ basicAuth: { username: 'ops', password: 'p:w' } }), '/v1/status/leader', {});
      assert.equal((plan.options.headers as Record<string, string>)['authorization'], `Basic ${Buffer.from('ops:p:w').toString('base64')}`);
      assert.equal(plan.options.auth, undefined);
    });

    it('uses socketPath instead of host and port for unix sockets', () => {
      const plan = consulRequestOptions(config({ socketPath: '/run/consul/http.sock' }), '/v1/status/leader', {});
      assert.equal(plan.options.socketPath, '/run/consul/http.sock');
      assert.equal(plan.options.hostname, undefined);
      assert.equal(plan.options.port, undefined);
    });

    it('passes an IPv6 host without brackets (node adds them to the Host header)', () => {
      const plan = consulRequestOptions(config({ host: '::1' }), '/v1/status/leader', {});
      assert.equal(plan.options.hostname, '::1');
    });

    it('maps every TLS option for https', () => {
      const plan = consulRequestOptions(
        config({
          scheme: 'https',
          port: 8501,
          tls: { ca: 'CA-PEM', cert: 'CERT-PEM', key: 'KEY-PEM', servername: 'consul.internal', rejectUnauthorized: false },
        }),
        '/v1/status/leader',
        {},
      );
      assert.equal(plan.protocol, 'https:');
      assert.equal(plan.options.ca, 'CA-PEM');
      assert.equal(plan.options.cert, 'CERT-PEM');
      assert.equal(plan.options.key, 'KEY-PEM');
      assert.equal(plan.options.servername, 'consul.internal');
      assert.equal(plan.options.rejectUnauthorized, false);
      assert.equal(plan.options.port, 8501);
    });

    it('leaves unset TLS options out and verifies by default', () => {
      const plan = consulRequestOptions(config({ scheme: 'https' }), '/v1/status/leader', {});
      for (const key of ['ca', 'cert', 'key', 'servername']) assert.ok(!(key in plan.options), key);
      assert.equal(plan.options.rejectUnauthorized, true);
    });

    it('ignores TLS settings for http', () => {
      const plan = consulRequestOptions(config({ tls: { ca: 'CA', rejectUnauthorized: false } }), '/v1/status/leader', {});
      assert.ok(!('ca' in plan.options) && !('rejectUnauthorized' in plan.options));
    });

    it('passes the given agent', () => {
      const agent = new http.Agent();
      try {
        assert.equal(consulRequestOptions(config(), '/v1/x', {}, agent).options.agent, agent);
      } finally {
        agent.destroy();
      }
    });

    for (const bad of ['v1/x', '', '/v1/x?y', '/v1/x#y', '/v1/ x']) {
      it(`rejects the path ${JSON.stringify(bad)}`, () => {
        assert.throws(() => consulRequestOptions(config(), bad, {}), DiscoveryError);
      });
    }
  });

  describe('createConsulAgent', () => {
    it('creates a keep-alive agent of the right kind', () => {
      const plain = createConsulAgent(config());
      const secure = createConsulAgent(config({ scheme: 'https' }));
      try {
        assert.ok(plain instanceof http.Agent && !(plain instanceof https.Agent));
        assert.ok(secure instanceof https.Agent);
        assert.equal((plain as unknown as { keepAlive: boolean }).keepAlive, true);
      } finally {
        plain.destroy();
        secure.destroy();
      }
    });
  });

  describe('bodyExcerpt', () => {
    it('collapses whitespace and control characters', () => {
      assert.equal(bodyExcerpt('  Invalid wait time\r\n\u0000x\t', config()), 'Invalid wait time x');
    });

    it(`truncates to ${MAX_ERROR_BODY_CHARS} characters`, () => {
      const out = bodyExcerpt('e'.repeat(1_000), config());
      assert.equal(out, `${'e'.repeat(MAX_ERROR_BODY_CHARS)}…`);
    });

    it('redacts the token and the basic-auth password', () => {
      const out = bodyExcerpt(`ACL not found for ${TOKEN}; auth hunter2!`, config({ token: TOKEN, basicAuth: { username: 'u', password: 'hunter2' } }));
      assert.equal(out, 'ACL not found for [redacted]; auth [redacted]!');
    });
  });

  describe('consulGet with an already aborted signal', () => {
    it('rejects at once without connecting', async () => {
      const controller = new AbortController();
      controller.abort();
      // Port 9 (discard) on loopback: nothing must even try to connect.
      await assert.rejects(
        consulGet(config({ port: 9, token: TOKEN }), '/v1/status/leader', {}, { signal: controller.signal, timeoutMillis: 1_000 }),
        (err: unknown) => err instanceof DiscoveryError && /aborted/.test(err.message) && !err.message.includes(TOKEN),
      );
    });

    it('rejects a bad path as a DiscoveryError', async () => {
      await assert.rejects(
        consulGet(config(), 'relative', {}, { signal: new AbortController().signal, timeoutMillis: 1_000 }),
        DiscoveryError,
      );
    });
  });
});
