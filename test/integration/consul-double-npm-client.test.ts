import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Consul from 'consul';
import { ConsulDouble } from '../../lib/testing/consul-double.js';

/** Options the npm client accepts at runtime but its typings leave out. */
interface BlockingServiceOptions {
  service: string;
  passing?: boolean;
  index?: string;
  wait?: string;
  /** papi only honours an EventEmitter ctx; `includeResponse` makes the client return [res, body]. */
  ctx: EventEmitter & { includeResponse: true };
}

describe('ConsulDouble fidelity: npm consul 2.0.1 client', function () {
  this.timeout(10_000);
  let consul: ConsulDouble;
  let client: Consul;

  beforeEach(async () => {
    consul = await ConsulDouble.start({ sessionTtlMinSeconds: 0.1, checkStagger: false, minCheckIntervalMillis: 50 });
    client = new Consul({ host: '127.0.0.1', port: consul.port });
  });
  afterEach(async () => {
    client.destroy();
    await consul.stop();
  });

  /** `health.service` returning the response too (what the client's own watch does). */
  function healthService(opts: Omit<BlockingServiceOptions, 'ctx'>): Promise<[IncomingMessage, { Service: { ID: string; Tags: string[] } }[]]> {
    const call = client.health.service.bind(client.health) as unknown as (o: BlockingServiceOptions) => Promise<[IncomingMessage, { Service: { ID: string; Tags: string[] } }[]]>;
    return call({ ...opts, ctx: Object.assign(new EventEmitter(), { includeResponse: true as const }) });
  }

  it('health.service: passing filter, X-Consul-Index, and index/wait blocking', async () => {
    consul.registerService({ id: 'pglab/node1', name: 'pglab', address: '127.0.0.1', port: 5432, tags: ['master', 'primary'] });
    consul.registerService({ id: 'pglab/node2', name: 'pglab', address: '127.0.0.1', port: 5433, tags: ['replica'], status: 'critical' });
    const plain = await client.health.service({ service: 'pglab', passing: true });
    assert.deepEqual(
      plain.map((e: { Service: { ID: string } }) => e.Service.ID),
      ['pglab/node1'],
    );
    const [res, entries] = await healthService({ service: 'pglab', passing: true });
    assert.equal(entries.length, 1);
    const index = res.headers['x-consul-index'] as string;
    assert.ok(Number(index) >= 1);

    const t0 = Date.now();
    const blocked = healthService({ service: 'pglab', passing: true, index, wait: '5s' });
    await waitFor(() => consul.blockingQueries === 1);
    consul.setCheckStatus('pglab/node2', 'passing');
    const [res2, entries2] = await blocked;
    assert.ok(Date.now() - t0 < 2000, 'returned on the change');
    assert.ok(Number(res2.headers['x-consul-index']) > Number(index));
    assert.deepEqual(entries2.map((e) => e.Service.ID).sort(), ['pglab/node1', 'pglab/node2']);

    const t1 = Date.now();
    const [res3] = await healthService({ service: 'pglab', passing: true, index: res2.headers['x-consul-index'] as string, wait: '300ms' });
    assert.ok(Date.now() - t1 >= 295, 'waited for the wait time');
    assert.equal(res3.headers['x-consul-index'], res2.headers['x-consul-index']);
  });

  it('watch(): emits a change per index move and ends cleanly', async () => {
    consul.registerService({ id: 'pglab/node1', name: 'pglab', port: 5432, tags: ['replica'] });
    const watch = client.watch({ method: client.health.service, options: { service: 'pglab', passing: 'true', wait: '2s' } });
    const changes: { Service: { Tags: string[] } }[][] = [];
    const errors: unknown[] = [];
    watch.on('change', (data: { Service: { Tags: string[] } }[]) => changes.push(data));
    watch.on('error', (err: unknown) => errors.push(err));
    try {
      await waitFor(() => changes.length === 1);
      consul.updateService('pglab/node1', { tags: ['master', 'primary'] });
      await waitFor(() => changes.length === 2);
      assert.deepEqual(changes[1]?.[0]?.Service.Tags, ['master', 'primary']);
      consul.setCheckStatus('pglab/node1', 'critical');
      await waitFor(() => changes.length === 3);
      assert.deepEqual(changes[2], []);
      assert.deepEqual(errors, []);
    } finally {
      watch.end();
    }
  });

  it('kv get/set/cas/del', async () => {
    assert.equal(await client.kv.get('missing'), undefined);
    assert.equal(await client.kv.set('svc/pglab/initialize', '6800000000000000001', { cas: 0 } as never), true);
    // Consul answers `false`; the npm client turns a false body into undefined
    assert.notEqual(await client.kv.set('svc/pglab/initialize', 'other', { cas: 0 } as never), true);
    assert.equal(consul.kvGet('svc/pglab/initialize'), '6800000000000000001');
    const item = await client.kv.get('svc/pglab/initialize');
    assert.ok(item);
    assert.equal(item.Value, '6800000000000000001');
    assert.notEqual(await client.kv.set({ key: 'svc/pglab/initialize', value: 'x', cas: String(item.ModifyIndex + 1) } as never), true);
    assert.equal(await client.kv.set({ key: 'svc/pglab/initialize', value: 'y', cas: String(item.ModifyIndex) } as never), true);
    await client.kv.set('svc/pglab/config', '{}');
    const all = await client.kv.get({ key: 'svc/pglab/', recurse: true });
    assert.deepEqual(
      (all as { Key: string }[]).map((e) => e.Key),
      ['svc/pglab/config', 'svc/pglab/initialize'],
    );
    assert.deepEqual(await client.kv.keys('svc/'), ['svc/pglab/config', 'svc/pglab/initialize']);
    assert.equal(await client.kv.del({ key: 'svc/', recurse: true }), true);
    assert.equal(await client.kv.get({ key: 'svc/', recurse: true }), undefined);
  });

  it('session create/renew/info/destroy with a lock', async () => {
    const { ID } = await client.session.create({ name: 'lock', ttl: '10s', behavior: 'delete', lockdelay: '1ms' });
    assert.match(ID, /^[0-9a-f-]{36}$/);
    const renewed = await client.session.renew(ID);
    assert.equal(renewed[0]?.ID, ID);
    const info = await client.session.info(ID);
    assert.equal(info?.TTL, '10s');
    assert.equal(info?.Behavior, 'delete');
    assert.equal(await client.kv.set({ key: 'leader', value: 'node1', acquire: ID } as never), true);
    assert.equal(((await client.kv.get('leader')) as { Session?: string } | undefined)?.Session, ID);
    await client.session.destroy(ID);
    assert.equal(await client.kv.get('leader'), undefined, 'behavior delete');
    await assert.rejects(client.session.renew(ID), (err: Error & { statusCode?: number }) => err.statusCode === 404 || /not found/i.test(err.message));
    await assert.rejects(client.session.create({ ttl: '24h0m1s' }), /Invalid Session TTL '86401000000000', must be between \[100ms-24h0m0s\]/);
  });

  it('agent.service.register with an HTTP check that the double probes', async () => {
    const target = http.createServer((_req, res) => {
      res.writeHead(200);
      res.end('ok');
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(target.address() as AddressInfo).port}/health`;
      await client.agent.service.register({ name: 'app', id: 'app-1', port: 8080, tags: ['v1'], check: { http: url, interval: '100ms' } as never });
      await waitFor(async () => (await client.health.service({ service: 'app', passing: true })).length === 1);
      const services = await client.agent.service.list();
      assert.deepEqual(Object.keys(services), ['app-1']);
      await client.agent.service.deregister('app-1');
      assert.deepEqual(await client.health.service('app'), []);
    } finally {
      target.closeAllConnections();
      await new Promise<void>((r) => target.close(() => r()));
    }
  });
});

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
