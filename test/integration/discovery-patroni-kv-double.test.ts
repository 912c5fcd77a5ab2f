/**
 * PatroniKvSource over real sockets against the Consul double's KV store (no Patroni): the
 * 404 of an empty prefix, blocking on the KV index, and how fast a leader-key change arrives.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConsulConfig } from '../../lib/discovery/consul-config.js';
import type { DiscoveryListener } from '../../lib/discovery/discovery-source.js';
import { PatroniKvSource } from '../../lib/discovery/patroni-kv-source.js';
import { ConsulDouble } from '../../lib/testing/consul-double.js';
import type { TopologyUpdate } from '../../lib/topology/node.js';

const TOKEN = 'kv-watch-secret-token-0123';

describe('PatroniKvSource against the Consul double (real sockets)', function () {
  this.timeout(30_000);
  let consul: ConsulDouble;
  let source: PatroniKvSource | undefined;

  beforeEach(async () => {
    consul = await ConsulDouble.start({ aclToken: TOKEN });
  });

  afterEach(async () => {
    await source?.stop();
    source = undefined;
    await consul.stop();
  });

  function member(name: string, port: number, role: string): string {
    return JSON.stringify({ conn_url: `postgres://127.0.0.1:${port}/postgres`, api_url: `http://127.0.0.1:${port + 1}/patroni`, state: 'running', role, version: '3.0.2', xlog_location: 1000, timeline: 1 });
  }

  it('blocks on an empty prefix (404), then follows leader and member keys within milliseconds', async () => {
    const config: ConsulConfig = { scheme: 'http', host: consul.host, port: consul.port, token: TOKEN, consistency: 'default', tls: { rejectUnauthorized: true } };
    const updates: Array<{ at: number; update: TopologyUpdate }> = [];
    const errors: Error[] = [];
    const listener: DiscoveryListener = { onUpdate: (update) => updates.push({ at: Date.now(), update }), onError: (e) => errors.push(e) };
    const logs: string[] = [];
    source = new PatroniKvSource({
      consul: config,
      namespace: '/service/',
      scope: 'pglab',
      waitSeconds: 10,
      requestTimeoutMillis: 2_000,
      minIntervalMillis: 10,
      backoff: { initialMillis: 50, maxMillis: 500 },
      logger: (level, message, fields) => logs.push(`${level} ${message} ${JSON.stringify(fields)}`),
    });
    source.start(listener);
    const until = async (predicate: (u: TopologyUpdate) => boolean): Promise<number> => {
      const t0 = Date.now();
      while (!updates.some((u) => u.at >= t0 - 1 && predicate(u.update))) {
        assert.ok(Date.now() - t0 < 5_000, 'update arrived');
        await sleep(1);
      }
      return updates.find((u) => u.at >= t0 - 1 && predicate(u.update))!.at - t0;
    };
    await until((u) => u.nodes.length === 0);
    assert.equal(errors.length, 0, 'a 404 is an answer, not an error');
    await sleep(50);
    assert.equal(consul.blockingQueries, 1, 'parked on the 404 index');

    consul.kvPut('service/pglab/members/node1', member('node1', 5432, 'master'));
    consul.kvPut('service/pglab/members/node2', member('node2', 5433, 'replica'));
    const t0 = Date.now();
    consul.kvPut('service/pglab/leader', 'node1');
    const leaderMs = await until((u) => u.nodes.some((n) => n.name === 'node1' && n.role === 'primary'));
    console.log(`      leader key written → primary reported in ${Date.now() - t0} ms (${leaderMs} ms)`);
    assert.ok(Date.now() - t0 < 500);

    consul.kvPut('service/pglab/leader', 'node2');
    await until((u) => !u.nodes.some((n) => n.role === 'primary') && u.nodes.some((n) => n.name === 'node1' && n.role === 'other'));
    consul.kvPut('service/pglab/members/node2', member('node2', 5433, 'promoted'));
    await until((u) => u.nodes.some((n) => n.name === 'node2' && n.role === 'primary'));

    const requests = consul.requestLog.filter((r) => r.path === '/v1/kv/service/pglab/');
    assert.ok(requests.length >= 4);
    assert.ok(requests.every((r) => r.query.startsWith('recurse')), 'always the recursive read');
    assert.ok(requests.slice(1).some((r) => /index=\d+&wait=10s/.test(r.query)), 'blocking reads');
    assert.ok(!logs.join('\n').includes(TOKEN), 'the token never appears in logs');
  });

  it('reports a wrong token as a 403 error without leaking it', async () => {
    const config: ConsulConfig = { scheme: 'http', host: consul.host, port: consul.port, token: 'wrong-token-value-99', consistency: 'default', tls: { rejectUnauthorized: true } };
    const errors: Error[] = [];
    source = new PatroniKvSource({ consul: config, namespace: 'service', scope: 'pglab', waitSeconds: 10, requestTimeoutMillis: 2_000, minIntervalMillis: 10, backoff: { initialMillis: 50, maxMillis: 500 } });
    source.start({ onUpdate: () => assert.fail('no update expected'), onError: (e) => errors.push(e) });
    const t0 = Date.now();
    while (errors.length === 0) {
      assert.ok(Date.now() - t0 < 5_000);
      await sleep(5);
    }
    assert.match(errors[0]!.message, /403/);
    assert.ok(!errors[0]!.message.includes('wrong-token-value-99') && !errors[0]!.message.includes(TOKEN));
  });
});
