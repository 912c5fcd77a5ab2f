/**
 * Configuration mistakes that only show at run time name their fix: a wrong service name,
 * an unreachable Consul, a missing ACL token, a wrong Patroni scope. Real HTTP against the
 * Consul double (with ACLs on for the token case); the statement and `ready()` both say it.
 */
import assert from 'node:assert/strict';
import { Pool } from '../../lib/index.js';
import type { PoolOptions } from '../../lib/index.js';
import { ConsulDouble } from '../../lib/testing/consul-double.js';
import { freePort } from '../../lib/testing/free-port.js';
import { useClusterFixture } from '../support/cluster-fixture.js';

describe('run-time misconfiguration (integration: Consul double over HTTP)', function () {
  this.timeout(30_000);
  let consul: ConsulDouble;
  const TOKEN = 'misconfiguration-secret-token';

  before(async () => {
    consul = await ConsulDouble.start({ aclToken: TOKEN });
    consul.registerService({ id: 'pg-main/node1', name: 'pg-main', address: '127.0.0.1', port: 1, tags: ['master', 'primary'] });
  });

  after(async () => {
    await consul?.stop();
  });

  async function failureOf(options: PoolOptions): Promise<{ query: string; ready: string }> {
    const pool = new Pool({ failoverTimeoutMillis: 600, discoveryMinIntervalMillis: 20, consul: { address: `127.0.0.1:${consul.port}`, token: TOKEN, waitSeconds: 5 }, ...options });
    pool.on('discoveryError', () => undefined);
    try {
      const query = await pool.query('SELECT 1').then(
        () => assert.fail('the query should fail'),
        (err: Error) => `${err.name}: ${err.message}`,
      );
      const ready = await pool.ready(300).then(
        () => assert.fail('ready() should fail'),
        (err: Error) => `${err.name}: ${err.message}`,
      );
      return { query, ready };
    } finally {
      await pool.end();
    }
  }

  it('a wrong service name: check "service" / PGCONSUL_SERVICE and register_service', async () => {
    const { query, ready } = await failureOf({ service: 'pg-mian' });
    for (const message of [query, ready]) {
      assert.match(message, /^NoPrimaryError: .*Consul lists no passing instance of service "pg-mian": check the service name \(option "service" or PGCONSUL_SERVICE/);
    }
  });

  it('an unreachable Consul: check "consul.address" / CONSUL_HTTP_ADDR', async () => {
    const port = await freePort();
    const { query, ready } = await failureOf({ service: 'pg-main', consul: { address: `127.0.0.1:${port}` } });
    for (const message of [query, ready]) {
      assert.match(message, new RegExp(`not answered yet \\(.*127\\.0\\.0\\.1:${port}.*ECONNREFUSED.*\\): check option "consul\\.address" or CONSUL_HTTP_ADDR`));
    }
  });

  it('no ACL token: the token settings and what it must read, never the token itself', async () => {
    const { query, ready } = await failureOf({ service: 'pg-main', consul: { address: `127.0.0.1:${consul.port}` } });
    for (const message of [query, ready]) {
      assert.match(message, /HTTP 403\) and no ACL token is configured: set option "consul\.token", CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE to a token with read access to service "pg-main"/);
      assert.ok(!message.includes(TOKEN));
    }
  });

  it('a denied ACL token: says it was denied and what it must read, never either token', async () => {
    const wrong = 'misconfiguration-wrong-token';
    const { query, ready } = await failureOf({ service: 'pg-main', consul: { address: `127.0.0.1:${consul.port}`, token: wrong } });
    for (const message of [query, ready]) {
      assert.match(message, /HTTP 403\): the ACL token \(option "consul\.token", CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE\) was denied; it needs read access to service "pg-main"/);
      assert.ok(!message.includes(TOKEN) && !message.includes(wrong));
    }
  });

  it('wrong primary/replica tags: the tag options and the tags Consul has', async () => {
    const { query, ready } = await failureOf({ service: 'pg-main', primaryTags: ['leader'], replicaTags: ['standby'] });
    for (const message of [query, ready]) {
      assert.match(message, /^NoPrimaryError: .*1 node is listed but none as a usable primary: .*check option "primaryTags" or PGCONSUL_PRIMARY_TAGS \(now leader; tags seen: master, primary\)/);
    }
  });

  it('no passing primary: a failover under way, or the primary tags (with the tags seen)', async () => {
    consul.registerService({ id: 'pg-standby/node2', name: 'pg-standby', address: '127.0.0.1', port: 1, tags: ['replica'] });
    const { query, ready } = await failureOf({ service: 'pg-standby' });
    for (const message of [query, ready]) {
      assert.match(message, /^NoPrimaryError: .*none as a usable primary: a failover may be under way; otherwise check option "primaryTags" .*\(now primary, master; tags seen: replica\)/);
    }
  });

  it('a wrong Patroni scope: check "patroni.scope" / "patroni.namespace"', async () => {
    const { query } = await failureOf({ service: 'pg-main', discovery: 'patroni', patroni: { scope: 'pg-other' } });
    assert.match(query, /no running Patroni member under "service\/pg-other\/": check options "patroni\.scope" and "patroni\.namespace"/);
  });
});

describe('run-time misconfiguration (integration: real PostgreSQL + Consul double)', function () {
  this.timeout(60_000);
  const fx = useClusterFixture('pg-roles');
  after(() => fx.advertise(fx.cluster.primaryName()));

  it('Consul lists a read-only node as primary: the query and ready() say PostgreSQL disagrees and what to check', async () => {
    const replica = fx.cluster.nodes.find((n) => n.name !== fx.cluster.primaryName())!.name;
    const address = `127.0.0.1:${fx.portOf(replica)}`;
    fx.advertise(replica);
    const pool = fx.newPool({ failoverTimeoutMillis: 800 });
    pool.on('error', () => undefined);
    const query = await pool.query('SELECT 1').then(() => assert.fail('the query should fail'), (err: Error) => err.message);
    assert.match(query, new RegExp(`node ${address.replace(/\./g, '\\.')} is listed as primary but is in recovery .*\\(Consul lags behind a switchover, or whatever sets its role is wrong: \`npx pg-consul check\` compares both\\)`));
    const ready = await pool.ready(500).then(() => assert.fail('ready() should fail'), (err: Error) => `${err.name}: ${err.message}`);
    assert.match(ready, new RegExp(`^NoPrimaryError: .*but ${address.replace(/\./g, '\\.')}, listed as primary, is read-only in PostgreSQL \\(in recovery\\): Consul's role lags behind a switchover`));
  });
});
