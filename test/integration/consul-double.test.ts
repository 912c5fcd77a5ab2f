import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { ConsulDouble, type ConsulDoubleOptions } from '../../lib/testing/consul-double.js';

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/** One request on a fresh connection (no keep-alive pool left behind). */
function call(base: string, method: string, path: string, opts: { body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, agent: false, headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text === '' ? undefined : JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A tiny HTTP server whose answer the test controls (for HTTP check probes). */
async function probeTarget(): Promise<{ url: string; set(status: number, body: string): void; userAgents: string[]; close(): Promise<void> }> {
  let status = 200;
  let body = 'ok';
  const userAgents: string[] = [];
  const server = http.createServer((req, res) => {
    userAgents.push(String(req.headers['user-agent']));
    res.writeHead(status, { 'Content-Type': 'text/plain' });
    res.end(body);
  });
  server.keepAliveTimeout = 1;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    set(s, b) {
      status = s;
      body = b;
    },
    userAgents,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('ConsulDouble (HTTP contract)', function () {
  this.timeout(10_000);
  let consul: ConsulDouble;
  let base: string;
  const get = (path: string, headers?: Record<string, string>) => call(base, 'GET', path, { headers });
  const put = (path: string, body?: string, headers?: Record<string, string>) => call(base, 'PUT', path, { body, headers });
  const del = (path: string) => call(base, 'DELETE', path);

  async function restart(options: ConsulDoubleOptions = {}): Promise<void> {
    await consul?.stop();
    consul = await ConsulDouble.start({ sessionTtlMinSeconds: 0.1, checkStagger: false, minCheckIntervalMillis: 50, ...options });
    base = consul.url;
  }

  beforeEach(async () => {
    await restart();
  });
  afterEach(async () => {
    await consul.stop();
  });

  describe('basics', () => {
    it('exposes address/url and answers status and agent/self', async () => {
      assert.equal(consul.host, '127.0.0.1');
      assert.equal(consul.address, `127.0.0.1:${consul.port}`);
      assert.equal(consul.url, `http://127.0.0.1:${consul.port}`);
      const leader = await get('/v1/status/leader');
      assert.equal(leader.json, '127.0.0.1:8300');
      assert.deepEqual((await get('/v1/status/peers')).json, ['127.0.0.1:8300']);
      const self = await get('/v1/agent/self');
      assert.equal(self.json.Config.Datacenter, 'dc1');
      assert.equal(self.json.Config.NodeName, 'consul-double');
      assert.match(self.json.Config.NodeID, /^[0-9a-f-]{36}$/);
      assert.equal(self.json.Member.Name, 'consul-double');
      assert.equal(self.json.Config.SessionTTLMin, undefined, 'like Consul: not in Config');
    });

    it('sets the query headers on every read, also on a KV 404', async () => {
      for (const path of ['/v1/health/service/none', '/v1/catalog/services', '/v1/kv/missing', '/v1/session/list']) {
        const r = await get(path);
        assert.ok(Number(r.headers['x-consul-index']) >= 1, path);
        assert.equal(r.headers['x-consul-knownleader'], 'true', path);
        assert.equal(r.headers['x-consul-lastcontact'], '0', path);
        assert.equal(r.headers['x-consul-effective-consistency'], 'leader', path);
      }
      const missing = await get('/v1/kv/missing');
      assert.equal(missing.status, 404);
      assert.equal(missing.text, '');
      const ok = await get('/v1/health/service/none');
      assert.equal(ok.headers['content-type'], 'application/json');
      assert.deepEqual(ok.json, []);
      assert.equal((await get('/v1/kv/missing?stale')).headers['x-consul-effective-consistency'], 'stale');
      assert.equal((await get('/v1/kv/missing?consistent')).headers['x-consul-effective-consistency'], 'consistent');
    });

    it('rejects bad query options like Consul', async () => {
      const both = await get('/v1/health/service/x?stale&consistent');
      assert.deepEqual([both.status, both.text], [400, 'Cannot specify ?stale with ?consistent, conflicting semantics.']);
      for (const wait of ['10', 'abc', '5x', '']) {
        if (wait === '') continue;
        const r = await get(`/v1/health/service/x?index=1&wait=${wait}`);
        assert.deepEqual([r.status, r.text], [400, 'Invalid wait time'], wait);
      }
      for (const wait of ['15.0s', '0.001s', '9.98s', '100ms', '1m']) {
        const r = await get(`/v1/health/service/x?wait=${wait}`);
        assert.equal(r.status, 200, wait);
      }
      const idx = await get('/v1/health/service/x?index=abc');
      assert.deepEqual([idx.status, idx.text], [400, 'Invalid index']);
      const dc = await get('/v1/health/service/x?dc=elsewhere');
      assert.deepEqual([dc.status, dc.text], [500, 'No path to datacenter']);
      assert.equal((await get('/v1/health/service/x?dc=dc1')).status, 200);
      const passing = await get('/v1/health/service/x?passing=maybe');
      assert.equal(passing.status, 400);
    });

    it('404s unknown endpoints, 405s wrong methods, 400s malformed JSON', async () => {
      const unknown = await get('/v1/nope');
      assert.equal(unknown.status, 404);
      const wrong = await call(base, 'POST', '/v1/kv/x');
      assert.equal(wrong.status, 405);
      assert.equal(wrong.text, 'method POST not allowed');
      assert.equal(wrong.headers.allow, 'OPTIONS,GET,PUT,DELETE');
      const bad = await put('/v1/agent/service/register', '{"Name": ');
      assert.equal(bad.status, 400);
      assert.match(bad.text, /^Request decode failed: /);
      const notObject = await put('/v1/session/create', '[1]');
      assert.equal(notObject.status, 400);
      const badType = await put('/v1/agent/service/register', '{"Name":"x","Port":"80"}');
      assert.equal(badType.status, 400);
      assert.equal((await put('/v1/agent/service/register', '{}')).text, 'Missing service name');
    });
  });

  describe('health and catalog', () => {
    it('returns entries in Consul shape with serfHealth and the service check', async () => {
      consul.registerService({ id: 'pglab/node1', name: 'pglab', address: '127.0.0.1', port: 5432, tags: ['master', 'primary'], meta: { k: 'v' } });
      const r = await get('/v1/health/service/pglab');
      assert.equal(r.json.length, 1);
      const [e] = r.json;
      assert.deepEqual(Object.keys(e), ['Node', 'Service', 'Checks']);
      assert.equal(e.Node.Node, 'consul-double');
      assert.equal(e.Node.Address, '127.0.0.1');
      assert.equal(e.Node.Datacenter, 'dc1');
      for (const k of ['ID', 'TaggedAddresses', 'Meta', 'CreateIndex', 'ModifyIndex']) assert.ok(k in e.Node, k);
      assert.equal(e.Service.ID, 'pglab/node1');
      assert.equal(e.Service.Service, 'pglab');
      assert.deepEqual(e.Service.Tags, ['master', 'primary']);
      assert.equal(e.Service.Port, 5432);
      assert.deepEqual(e.Service.Meta, { k: 'v' });
      assert.deepEqual(e.Service.Weights, { Passing: 1, Warning: 1 });
      assert.ok(e.Service.ModifyIndex >= e.Service.CreateIndex);
      assert.deepEqual(
        e.Checks.map((c: { CheckID: string }) => c.CheckID),
        ['serfHealth', 'service:pglab/node1'],
      );
      assert.equal(e.Checks[0].ServiceID, '');
      assert.deepEqual(e.Checks[0].ServiceTags, []);
      assert.equal(e.Checks[1].ServiceName, 'pglab');
      assert.deepEqual(e.Checks[1].ServiceTags, ['master', 'primary']);
      for (const k of ['Node', 'Name', 'Status', 'Notes', 'Output', 'Type', 'Interval', 'Timeout', 'CreateIndex', 'ModifyIndex']) assert.ok(k in e.Checks[1], k);
      // no address → '' (clients use Node.Address); another node is created on demand
      consul.registerService({ id: 'pglab/node2', name: 'pglab', port: 5433, node: 'db2', nodeAddress: '127.0.0.2' });
      const two = (await get('/v1/health/service/pglab')).json;
      const n2 = two.find((x: { Service: { ID: string } }) => x.Service.ID === 'pglab/node2');
      assert.equal(n2.Service.Address, '');
      assert.equal(n2.Node.Node, 'db2');
      assert.equal(n2.Node.Address, '127.0.0.2');
      assert.equal(n2.Checks[0].CheckID, 'serfHealth');
    });

    it('?passing drops instances with any non-passing check, node checks included', async () => {
      consul.registerService({ id: 'a', name: 'svc', port: 1 });
      consul.registerService({ id: 'b', name: 'svc', port: 2, node: 'n2', nodeAddress: '127.0.0.2' });
      consul.registerService({ id: 'c', name: 'svc', port: 3, node: 'n3', nodeAddress: '127.0.0.3' });
      const ids = async (q: string) => (await get(`/v1/health/service/svc${q}`)).json.map((e: { Service: { ID: string } }) => e.Service.ID);
      assert.deepEqual(await ids('?passing'), ['a', 'b', 'c']);
      consul.setCheckStatus('a', 'warning');
      consul.setNodeCheckStatus('n2', 'critical', 'node down');
      assert.deepEqual(await ids('?passing'), ['c']);
      assert.deepEqual(await ids('?passing=1'), ['c']);
      assert.deepEqual(await ids('?passing=true'), ['c']);
      assert.deepEqual(await ids('?passing=false'), ['a', 'b', 'c']);
      assert.deepEqual(await ids(''), ['a', 'b', 'c']);
      const critical = (await get('/v1/health/service/svc')).json[1];
      assert.equal(critical.Checks[0].Status, 'critical');
      assert.equal(critical.Checks[0].Output, 'node down');
    });

    it('repeated ?tag is an AND and case-insensitive; ?filter and ?near work', async () => {
      consul.registerService({ id: 'p', name: 'pglab', port: 1, tags: ['master', 'primary'] });
      consul.registerService({ id: 'r', name: 'pglab', port: 2, tags: ['replica'], node: 'db2', nodeAddress: '127.0.0.2' });
      const ids = async (q: string) => (await get(`/v1/health/service/pglab${q}`)).json.map((e: { Service: { ID: string } }) => e.Service.ID);
      assert.deepEqual(await ids('?tag=primary'), ['p']);
      assert.deepEqual(await ids('?tag=PRIMARY&tag=Master'), ['p']);
      assert.deepEqual(await ids('?tag=primary&tag=replica'), []);
      assert.deepEqual(await ids('?tag=replica'), ['r']);
      assert.deepEqual(await ids(`?filter=${encodeURIComponent('"replica" in Service.Tags')}`), ['r']);
      assert.deepEqual(await ids('?near=db2'), ['r', 'p']);
      assert.deepEqual(await ids('?near=_agent'), ['p', 'r']);
      const bad = await get(`/v1/health/service/pglab?filter=${encodeURIComponent('Service.Tags ==')}`);
      assert.equal(bad.status, 400);
      assert.match(bad.text, /^Failed to create boolean expression evaluator/);
      const cat = (await get('/v1/catalog/service/pglab?tag=replica')).json;
      assert.equal(cat.length, 1);
      assert.equal(cat[0].ServiceID, 'r');
      assert.equal(cat[0].Node, 'db2');
      assert.equal(cat[0].Address, '127.0.0.2');
      assert.deepEqual(cat[0].ServiceTags, ['replica']);
      assert.equal(cat[0].ServicePort, 2);
    });

    it('moves the service index on every registration, tag and check change (monotone), not on no-ops', async () => {
      const idx = async () => Number((await get('/v1/health/service/pglab')).headers['x-consul-index']);
      const seen = [await idx()];
      consul.registerService({ id: 'n1', name: 'pglab', port: 1, tags: ['replica'] });
      seen.push(await idx());
      consul.updateService('n1', { tags: ['master', 'primary'] });
      seen.push(await idx());
      consul.setCheckStatus('n1', 'critical');
      seen.push(await idx());
      consul.registerService({ id: 'n2', name: 'pglab', port: 2, node: 'db2', nodeAddress: '127.0.0.2' });
      seen.push(await idx());
      consul.deregisterService('n2');
      seen.push(await idx());
      for (let i = 1; i < seen.length; i++) assert.ok((seen[i] as number) > (seen[i - 1] as number), `index moved: ${seen.join(',')}`);
      const last = seen[seen.length - 1];
      consul.updateService('n1', { tags: ['master', 'primary'] });
      consul.setCheckStatus('n1', 'critical');
      assert.equal(await idx(), last, 'identical writes keep the index');
      consul.registerService({ id: 'x', name: 'other', port: 3 });
      assert.equal(await idx(), last, 'other services do not move it');
      assert.ok(consul.index >= (last as number));
    });

    it('serves health/checks, catalog/services, catalog/nodes, catalog/node and agent/services', async () => {
      consul.registerService({ id: 'p', name: 'pglab', port: 1, tags: ['master', 'primary'] });
      consul.registerService({ id: 'r', name: 'pglab', port: 2, tags: ['replica'], node: 'db2', nodeAddress: '127.0.0.2' });
      const checks = (await get('/v1/health/checks/pglab')).json;
      assert.deepEqual(checks.map((c: { CheckID: string }) => c.CheckID).sort(), ['service:p', 'service:r']);
      const services = (await get('/v1/catalog/services')).json;
      assert.deepEqual(services.pglab, ['master', 'primary', 'replica']);
      assert.deepEqual(services.consul, [], 'like a real server');
      const nodes = (await get('/v1/catalog/nodes')).json;
      assert.deepEqual(nodes.map((n: { Node: string }) => n.Node), ['consul-double', 'db2']);
      const node = (await get('/v1/catalog/node/db2')).json;
      assert.equal(node.Node.Address, '127.0.0.2');
      assert.deepEqual(Object.keys(node.Services), ['r']);
      const agentServices = (await get('/v1/agent/services')).json;
      assert.deepEqual(Object.keys(agentServices), ['p'], 'only local services, not consul');
      assert.equal(agentServices.p.Service, 'pglab');
      assert.equal(agentServices.p.Datacenter, 'dc1');
      assert.deepEqual((await get('/v1/catalog/datacenters')).json, ['dc1']);
      assert.equal((await get('/v1/health/state/critical')).json.length, 0);
      consul.setCheckStatus('r', 'critical');
      assert.deepEqual((await get('/v1/health/state/critical')).json.map((c: { CheckID: string }) => c.CheckID), ['service:r']);
      assert.equal((await get('/v1/health/state/bogus')).status, 400);
    });
  });

  describe('blocking queries', () => {
    it('returns as soon as the index moves', async () => {
      const first = await get('/v1/health/service/pglab');
      const index = Number(first.headers['x-consul-index']);
      const t0 = Date.now();
      const pending = get(`/v1/health/service/pglab?index=${index}&wait=5s`);
      await waitFor('the query to block', () => consul.blockingQueries === 1);
      consul.registerService({ id: 'n1', name: 'pglab', port: 1 });
      const r = await pending;
      assert.ok(Date.now() - t0 < 2000);
      assert.ok(Number(r.headers['x-consul-index']) > index);
      assert.equal(r.json.length, 1);
      assert.equal(consul.blockingQueries, 0);
    });

    it('returns the same index when the wait (plus at most wait/16) expires', async () => {
      const index = Number((await get('/v1/health/service/pglab')).headers['x-consul-index']);
      const t0 = Date.now();
      const r = await get(`/v1/health/service/pglab?index=${index}&wait=0.3s`);
      const took = Date.now() - t0;
      assert.ok(took >= 299 && took < 300 * (17 / 16) + 600, `took ${took} ms`);
      assert.equal(Number(r.headers['x-consul-index']), index);
      // floats and ms work as waits
      const t1 = Date.now();
      await get(`/v1/health/service/pglab?index=${index}&wait=100ms`);
      assert.ok(Date.now() - t1 >= 95);
    });

    it('does not block with index=0 or without index, and ignores changes to other services', async () => {
      const t0 = Date.now();
      await get('/v1/health/service/pglab?index=0&wait=5s');
      await get('/v1/health/service/pglab?wait=5s');
      assert.ok(Date.now() - t0 < 1000);
      consul.registerService({ id: 'n1', name: 'pglab', port: 1 });
      const index = Number((await get('/v1/health/service/pglab')).headers['x-consul-index']);
      const pending = get(`/v1/health/service/pglab?index=${index}&wait=0.4s`);
      await waitFor('the query to block', () => consul.blockingQueries === 1);
      consul.registerService({ id: 'o', name: 'other', port: 1 });
      const r = await pending;
      assert.equal(Number(r.headers['x-consul-index']), index, 'woke only at wait expiry');
    });

    it('keeps blocking while the index went backwards, then reports the lower index', async () => {
      consul.registerService({ id: 'n1', name: 'pglab', port: 1 });
      const index = Number((await get('/v1/health/service/pglab')).headers['x-consul-index']);
      consul.setIndex(2);
      assert.equal(consul.index, 2);
      const r = await get(`/v1/health/service/pglab?index=${index}&wait=0.2s`);
      assert.equal(Number(r.headers['x-consul-index']), 2);
      consul.setCheckStatus('n1', 'critical');
      assert.equal(Number((await get('/v1/health/service/pglab')).headers['x-consul-index']), 3);
    });

    it('blocks on a KV key: wakes on its change and on its deletion (404 with a higher index)', async () => {
      await put('/v1/kv/svc/leader', 'node1');
      const r1 = await get('/v1/kv/svc/leader');
      const index = Number(r1.headers['x-consul-index']);
      assert.equal(index, r1.json[0].ModifyIndex, 'single key: its ModifyIndex');
      const other = get(`/v1/kv/svc/leader?index=${index}&wait=5s`);
      await waitFor('blocked', () => consul.blockingQueries === 1);
      await put('/v1/kv/svc/status', '{}');
      await sleep(50);
      assert.equal(consul.blockingQueries, 1, 'another key does not wake it');
      await del('/v1/kv/svc/leader');
      const r2 = await other;
      assert.equal(r2.status, 404);
      assert.ok(Number(r2.headers['x-consul-index']) > index);
    });

    it('forgets a blocking query whose client went away', async () => {
      const index = Number((await get('/v1/health/service/x')).headers['x-consul-index']);
      const req = http.request(`${base}/v1/health/service/x?index=${index}&wait=5s`, { agent: false });
      req.on('error', () => undefined);
      req.end();
      await waitFor('blocked', () => consul.blockingQueries === 1);
      req.destroy();
      await waitFor('forgotten', () => consul.blockingQueries === 0);
    });
  });

  describe('agent service registration and HTTP checks', () => {
    let target: Awaited<ReturnType<typeof probeTarget>>;
    beforeEach(async () => {
      target = await probeTarget();
    });
    afterEach(async () => {
      await target.close();
    });

    const register = (check: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
      put(
        '/v1/agent/service/register',
        JSON.stringify({ name: 'pglab', id: 'pglab/node1', address: '127.0.0.1', port: 5432, tags: ['replica'], enabletagoverride: true, check, ...extra }),
      );
    const serviceCheck = async () => (await get('/v1/health/checks/pglab')).json[0];

    it('probes HTTP checks: initial critical, 2xx passing, 429 warning, other critical, with Consul output', async () => {
      await restart({ checkStagger: true, minCheckIntervalMillis: 50 });
      target.set(200, 'i am fine');
      const r = await register({ http: `${target.url}/replica`, interval: '10s', DeregisterCriticalServiceAfter: '50.0s' });
      assert.equal(r.status, 200);
      const c0 = await serviceCheck();
      assert.equal(c0.Status, 'critical', 'a new check starts critical');
      assert.equal(c0.CheckID, 'service:pglab/node1');
      assert.equal(c0.Name, "Service 'pglab' check");
      assert.equal(c0.Type, 'http');
      assert.equal(c0.Interval, '10s');
      await restart();
      await register({ http: `${target.url}/replica`, interval: '0.1s' });
      await waitFor('passing', async () => (await serviceCheck()).Status === 'passing');
      assert.equal((await serviceCheck()).Output, `HTTP GET ${target.url}/replica: 200 OK Output: i am fine`);
      assert.equal(target.userAgents[0], 'Consul Health Check');
      target.set(429, 'slow down');
      await waitFor('warning', async () => (await serviceCheck()).Status === 'warning');
      assert.equal((await serviceCheck()).Output, `HTTP GET ${target.url}/replica: 429 Too Many Requests Output: slow down`);
      target.set(503, 'no');
      await waitFor('critical', async () => (await serviceCheck()).Status === 'critical');
      assert.equal((await serviceCheck()).Output, `HTTP GET ${target.url}/replica: 503 Service Unavailable Output: no`);
      assert.deepEqual((await get('/v1/health/service/pglab?passing')).json, []);
    });

    it('reports a refused connection the way Go does', async () => {
      const closed = await probeTarget();
      await closed.close();
      await register({ HTTP: `${closed.url}/master`, Interval: '0.1s' });
      // critical → critical is an output-only change: the agent shows it at once, the catalog
      // only after check_update_interval (as in Consul)
      const agentCheck = async () => (await get('/v1/agent/checks')).json['service:pglab/node1'];
      await waitFor('output', async () => (await agentCheck()).Output !== '');
      const port = new URL(closed.url).port;
      assert.equal((await agentCheck()).Output, `Get "${closed.url}/master": dial tcp 127.0.0.1:${port}: connect: connection refused`);
      assert.equal((await serviceCheck()).Output, '');
    });

    it('keeps a check status across re-registration with the same check id', async () => {
      await restart({ checkStagger: true, minCheckIntervalMillis: 50 });
      target.set(200, 'ok');
      await register({ http: `${target.url}/replica`, interval: '0.1s' });
      await waitFor('passing', async () => (await serviceCheck()).Status === 'passing');
      const before = Number((await get('/v1/health/service/pglab')).headers['x-consul-index']);
      // Patroni re-registers with the new role and check URL when promoted. The new runner's
      // first probe comes at a random time within 10 s, so a reset check would read `critical`
      // (a new check's status) here.
      assert.equal((await register({ http: `${target.url}/master`, interval: '10s' }, { tags: ['master', 'primary'] })).status, 200);
      const e = (await get('/v1/health/service/pglab')).json[0];
      assert.deepEqual(e.Service.Tags, ['master', 'primary']);
      assert.equal(e.Checks[1].Status, 'passing', 'status survived re-registration');
      assert.ok(Number((await get('/v1/health/service/pglab')).headers['x-consul-index']) > before);
    });

    it('deregisters with PUT; GET answers 405 by default and deregisters with getDeregister=accept', async () => {
      await register({ http: `${target.url}/replica`, interval: '10s' });
      const viaGet = await get('/v1/agent/service/deregister/pglab/node1');
      assert.equal(viaGet.status, 405);
      assert.equal(viaGet.headers.allow, 'OPTIONS,PUT');
      assert.equal((await get('/v1/health/service/pglab')).json.length, 1);
      const viaPut = await put('/v1/agent/service/deregister/pglab/node1');
      assert.equal(viaPut.status, 200);
      assert.deepEqual((await get('/v1/health/service/pglab')).json, []);
      assert.deepEqual((await get('/v1/agent/checks')).json['service:pglab/node1'], undefined);
      const again = await put('/v1/agent/service/deregister/pglab/node1');
      assert.equal(again.status, 404);
      await restart({ getDeregister: 'accept' });
      await register({ http: `${target.url}/replica`, interval: '10s' });
      assert.equal((await get('/v1/agent/service/deregister/pglab%2Fnode1')).status, 200);
      assert.deepEqual((await get('/v1/health/service/pglab')).json, []);
    });

    it('honours DeregisterCriticalServiceAfter', async () => {
      target.set(503, 'down');
      await register({ http: `${target.url}/replica`, interval: '0.1s', deregister_critical_service_after: '0.3s' });
      assert.equal((await get('/v1/health/service/pglab')).json.length, 1);
      await waitFor('reaped', async () => (await get('/v1/health/service/pglab')).json.length === 0, 3000);
    });

    it('accepts snake_case / lowercase keys, Checks[] and TTL checks with pass/fail/expiry', async () => {
      const r = await put(
        '/v1/agent/service/register',
        JSON.stringify({
          name: 'app',
          ID: 'app1',
          port: 80,
          enable_tag_override: true,
          weights: { passing: 3, warning: 1 },
          checks: [{ ttl: '0.3s' }, { tcp: target.url.replace('http://', ''), interval: '0.1s' }],
        }),
      );
      assert.equal(r.status, 200, r.text);
      const agent = (await get('/v1/agent/services')).json.app1;
      assert.equal(agent.EnableTagOverride, true);
      assert.deepEqual(agent.Weights, { Passing: 3, Warning: 1 });
      const checks = (await get('/v1/agent/checks')).json;
      assert.deepEqual(Object.keys(checks).filter((k) => k.startsWith('service:')).sort(), ['service:app1:1', 'service:app1:2']);
      await waitFor('tcp passing', async () => (await get('/v1/agent/checks')).json['service:app1:2'].Status === 'passing');
      assert.match((await get('/v1/agent/checks')).json['service:app1:2'].Output, /^TCP connect 127\.0\.0\.1:\d+: Success$/);
      assert.equal((await put('/v1/agent/check/pass/service:app1:1?note=fine')).status, 200);
      let ttl = (await get('/v1/agent/checks')).json['service:app1:1'];
      assert.deepEqual([ttl.Status, ttl.Output, ttl.Type], ['passing', 'fine', 'ttl']);
      await waitFor('ttl expired', async () => (await get('/v1/agent/checks')).json['service:app1:1'].Status === 'critical');
      ttl = (await get('/v1/agent/checks')).json['service:app1:1'];
      assert.equal(ttl.Output, 'TTL expired');
      assert.equal((await put('/v1/agent/check/fail/service:app1:2')).status, 500, 'not a TTL check');
      const bad = await put('/v1/agent/service/register', JSON.stringify({ name: 'x', check: { http: 'http://127.0.0.1:1/' } }));
      assert.deepEqual([bad.status, bad.text], [400, 'Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks']);
      const script = await put('/v1/agent/service/register', JSON.stringify({ name: 'x', check: { args: ['true'], interval: '1s' } }));
      assert.equal(script.status, 500);
    });

    it('supports service and node maintenance mode', async () => {
      consul.registerService({ id: 's1', name: 'svc', port: 1 });
      assert.equal((await get('/v1/health/service/svc?passing')).json.length, 1);
      assert.equal((await put('/v1/agent/service/maintenance/s1?enable=true&reason=upgrade')).status, 200);
      assert.equal((await get('/v1/health/service/svc?passing')).json.length, 0);
      const maint = (await get('/v1/health/service/svc')).json[0].Checks.find((c: { CheckID: string }) => c.CheckID === '_service_maintenance:s1');
      assert.deepEqual([maint.Status, maint.Notes], ['critical', 'upgrade']);
      await put('/v1/agent/service/maintenance/s1?enable=false');
      assert.equal((await get('/v1/health/service/svc?passing')).json.length, 1);
      await put('/v1/agent/maintenance?enable=true');
      assert.equal((await get('/v1/health/service/svc?passing')).json.length, 0);
    });
  });

  describe('KV', () => {
    it('puts and gets values: base64, null for empty, flags, raw, recurse sorted, keys', async () => {
      assert.equal((await put('/v1/kv/svc/pglab/b', 'two')).json, true);
      await put('/v1/kv/svc/pglab/a?flags=42', 'one');
      await put('/v1/kv/svc/pglab/members/n1', '');
      await put('/v1/kv/other', 'x');
      const one = (await get('/v1/kv/svc/pglab/a')).json;
      assert.equal(one.length, 1);
      assert.deepEqual(Object.keys(one[0]), ['LockIndex', 'Key', 'Flags', 'Value', 'CreateIndex', 'ModifyIndex']);
      assert.equal(one[0].Value, Buffer.from('one').toString('base64'));
      assert.equal(one[0].Flags, 42);
      assert.equal((await get('/v1/kv/svc/pglab/members/n1')).json[0].Value, null);
      const raw = await get('/v1/kv/svc/pglab/b?raw');
      assert.equal(raw.text, 'two');
      const list = (await get('/v1/kv/svc/pglab/?recurse')).json;
      assert.deepEqual(list.map((e: { Key: string }) => e.Key), ['svc/pglab/a', 'svc/pglab/b', 'svc/pglab/members/n1']);
      assert.deepEqual((await get('/v1/kv/svc/?keys')).json, ['svc/pglab/a', 'svc/pglab/b', 'svc/pglab/members/n1']);
      assert.deepEqual((await get('/v1/kv/svc/pglab/?keys&separator=/')).json, ['svc/pglab/a', 'svc/pglab/b', 'svc/pglab/members/']);
      const none = await get('/v1/kv/nothing/?recurse');
      assert.equal(none.status, 404);
      assert.ok(Number(none.headers['x-consul-index']) >= 1);
      assert.equal(consul.kvGet('svc/pglab/b'), 'two');
      consul.kvPut('direct', 'v');
      assert.equal((await get('/v1/kv/direct?raw')).text, 'v');
    });

    it('a KV 404 carries the table index, and a recurse index the highest under its prefix', async () => {
      await put('/v1/kv/p/a', '1');
      await put('/v1/kv/p/b', '1');
      await del('/v1/kv/p/b');
      await put('/v1/kv/q', '1');
      const table = Number((await get('/v1/kv/q')).headers['x-consul-index']);
      assert.equal(Number((await get('/v1/kv/p/b')).headers['x-consul-index']), table, '404: table index');
      const recurse = await get('/v1/kv/p/?recurse');
      assert.equal(Number(recurse.headers['x-consul-index']), table - 1, 'tombstone of p/b, not q');
    });

    it('cas, acquire/release with LockIndex and Session, and invalid sessions', async () => {
      assert.equal((await put('/v1/kv/init?cas=0', 'sys1')).json, true);
      assert.equal((await put('/v1/kv/init?cas=0', 'sys2')).json, false);
      const m = (await get('/v1/kv/init')).json[0].ModifyIndex;
      assert.equal((await put(`/v1/kv/init?cas=${m + 100}`, 'x')).json, false);
      assert.equal((await put(`/v1/kv/init?cas=${m}`, 'sys3')).json, true);
      const s1 = (await put('/v1/session/create', '{}')).json.ID;
      const s2 = (await put('/v1/session/create', '{}')).json.ID;
      assert.equal((await put(`/v1/kv/leader?acquire=${s1}`, 'node1')).json, true);
      let e = (await get('/v1/kv/leader')).json[0];
      assert.deepEqual([e.LockIndex, e.Session], [1, s1]);
      assert.equal((await put(`/v1/kv/leader?acquire=${s2}`, 'node2')).json, false);
      assert.equal((await put(`/v1/kv/leader?release=${s1}`, 'node1')).json, true);
      e = (await get('/v1/kv/leader')).json[0];
      assert.equal(e.Session, undefined);
      assert.equal((await put(`/v1/kv/leader?acquire=${s2}`, 'node2')).json, true);
      assert.equal((await get('/v1/kv/leader')).json[0].LockIndex, 2);
      const invalid = await put('/v1/kv/leader?acquire=00000000-0000-0000-0000-000000000000', 'x');
      assert.deepEqual([invalid.status, invalid.text], [500, 'invalid session "00000000-0000-0000-0000-000000000000"']);
      const conflict = await put(`/v1/kv/leader?cas=0&acquire=${s1}`, 'x');
      assert.equal(conflict.status, 400);
      assert.match(conflict.text, /^Conflicting flags: acquire=.*&cas=0\n$/);
      assert.equal((await put('/v1/kv/x?cas=abc', 'x')).status, 500);
      assert.equal((await put('/v1/kv/', 'x')).text, 'Missing key name');
    });

    it('deletes plain, with cas and recursively', async () => {
      await put('/v1/kv/d/a', '1');
      await put('/v1/kv/d/b', '1');
      await put('/v1/kv/d/c/d', '1');
      assert.equal((await del('/v1/kv/d/a')).json, true);
      assert.equal((await get('/v1/kv/d/a')).status, 404);
      assert.equal((await del('/v1/kv/never')).json, true);
      const m = (await get('/v1/kv/d/b')).json[0].ModifyIndex;
      assert.equal((await del(`/v1/kv/d/b?cas=${m + 1}`)).json, false);
      assert.equal((await del(`/v1/kv/d/b?cas=${m}`)).json, true);
      assert.equal((await del('/v1/kv/d/?recurse')).json, true);
      assert.equal((await get('/v1/kv/d/?recurse')).status, 404);
      assert.equal((await call(base, 'DELETE', '/v1/kv/d?recurse&cas=1')).status, 400);
    });
  });

  describe('sessions', () => {
    it('validates the TTL against sessionTtlMinSeconds..24h with Consul’s message', async () => {
      await restart({ sessionTtlMinSeconds: 10 });
      const tooShort = await put('/v1/session/create', JSON.stringify({ TTL: '5.0s' }));
      assert.deepEqual([tooShort.status, tooShort.text], [500, "Invalid Session TTL '5000000000', must be between [10s-24h0m0s]"]);
      const tooLong = await put('/v1/session/create', JSON.stringify({ ttl: '25h' }));
      assert.equal(tooLong.status, 500);
      const bad = await put('/v1/session/create', JSON.stringify({ ttl: 'abc' }));
      assert.deepEqual([bad.status, bad.text], [500, `Session TTL 'abc' invalid: time: invalid duration "abc"`]);
      assert.equal((await put('/v1/session/create', JSON.stringify({ ttl: '10s' }))).status, 200);
      assert.equal((await put('/v1/session/create', JSON.stringify({ behavior: 'explode' }))).text, "Invalid Behavior setting 'explode'");
    });

    it('creates (case-insensitive keys), renews, lists, reads and destroys sessions', async () => {
      const id = (await put('/v1/session/create', JSON.stringify({ name: 'pglab-node1', checks: [], lockdelay: '0.001s', behavior: 'delete', ttl: '5.0s' }))).json.ID;
      assert.match(id, /^[0-9a-f-]{36}$/);
      const info = (await get(`/v1/session/info/${id}`)).json[0];
      assert.deepEqual(
        { Name: info.Name, Node: info.Node, LockDelay: info.LockDelay, Behavior: info.Behavior, TTL: info.TTL, NodeChecks: info.NodeChecks },
        { Name: 'pglab-node1', Node: 'consul-double', LockDelay: 1_000_000, Behavior: 'delete', TTL: '5.0s', NodeChecks: [] },
      );
      const dflt = (await put('/v1/session/create')).json.ID;
      const d = (await get(`/v1/session/info/${dflt}`)).json[0];
      assert.deepEqual([d.NodeChecks, d.LockDelay, d.Behavior, d.TTL], [['serfHealth'], 15e9, 'release', '']);
      const renewed = await put(`/v1/session/renew/${id}`);
      assert.equal(renewed.status, 200);
      assert.equal(renewed.json[0].ID, id);
      const unknown = await put('/v1/session/renew/nope');
      assert.deepEqual([unknown.status, unknown.text], [404, "Session id 'nope' not found"]);
      assert.equal((await get('/v1/session/list')).json.length, 2);
      assert.equal((await get('/v1/session/node/consul-double')).json.length, 2);
      assert.equal((await put(`/v1/session/destroy/${dflt}`)).json, true);
      assert.deepEqual((await get(`/v1/session/info/${dflt}`)).json, []);
    });

    it('expires unrenewed sessions at 2 × TTL: delete removes held keys, release keeps them', async () => {
      const t0 = Date.now();
      const del1 = (await put('/v1/session/create', JSON.stringify({ behavior: 'delete', ttl: '0.2s', lockdelay: '0.001s' }))).json.ID;
      const rel = (await put('/v1/session/create', JSON.stringify({ ttl: '0.2s', lockdelay: 0 }))).json.ID;
      await put(`/v1/kv/leader?acquire=${del1}`, 'node1');
      await put(`/v1/kv/member?acquire=${rel}`, 'node2');
      await sleep(250 - (Date.now() - t0));
      assert.equal((await get(`/v1/session/info/${del1}`)).json.length, 1, 'alive after 1 × TTL');
      await waitFor('expiry', async () => (await get(`/v1/session/info/${del1}`)).json.length === 0);
      assert.ok(Date.now() - t0 >= 399, `expired after ${Date.now() - t0} ms`);
      assert.equal((await get('/v1/kv/leader')).status, 404);
      await waitFor('release', async () => (await get(`/v1/session/info/${rel}`)).json.length === 0);
      const member = (await get('/v1/kv/member')).json[0];
      assert.equal(member.Session, undefined);
      assert.equal(Buffer.from(member.Value, 'base64').toString(), 'node2');
    });
  });

  describe('prepared queries', () => {
    it('creates and executes with OnlyPassing and Tags (including !tag), by id or name', async () => {
      consul.registerService({ id: 'p', name: 'pglab', port: 1, tags: ['master', 'primary'] });
      consul.registerService({ id: 'r1', name: 'pglab', port: 2, tags: ['replica'], node: 'db2', nodeAddress: '127.0.0.2' });
      consul.registerService({ id: 'r2', name: 'pglab', port: 3, tags: ['replica', 'nofailover'], node: 'db3', nodeAddress: '127.0.0.3' });
      const created = await call(base, 'POST', '/v1/query', {
        body: JSON.stringify({ Name: 'replicas', Service: { Service: 'pglab', OnlyPassing: true, Tags: ['replica', '!nofailover'] }, DNS: { TTL: '10s' } }),
      });
      assert.equal(created.status, 200);
      const id = created.json.ID;
      const ex = await get(`/v1/query/${id}/execute`);
      assert.equal(ex.json.Service, 'pglab');
      assert.deepEqual(ex.json.DNS, { TTL: '10s' });
      assert.equal(ex.json.Datacenter, 'dc1');
      assert.equal(ex.json.Failovers, 0);
      assert.deepEqual(ex.json.Nodes.map((e: { Service: { ID: string } }) => e.Service.ID), ['r1']);
      assert.ok(Number(ex.headers['x-consul-index']) >= 1);
      consul.setCheckStatus('r1', 'warning');
      assert.deepEqual((await get('/v1/query/replicas/execute')).json.Nodes, [], 'OnlyPassing drops warning');
      const anyHealth = await call(base, 'POST', '/v1/query', { body: JSON.stringify({ Name: 'all', Service: { Service: 'pglab' } }) });
      const all = (await get(`/v1/query/${anyHealth.json.ID}/execute`)).json.Nodes.map((e: { Service: { ID: string } }) => e.Service.ID).sort();
      assert.deepEqual(all, ['p', 'r1', 'r2'], 'warning kept without OnlyPassing');
      consul.setCheckStatus('r2', 'critical');
      assert.equal((await get('/v1/query/all/execute')).json.Nodes.length, 2, 'critical always dropped');
      assert.equal((await get('/v1/query/nope/execute')).status, 404);
      assert.equal((await get('/v1/query')).json.length, 2);
      assert.equal((await get(`/v1/query/${id}`)).json[0].Name, 'replicas');
      assert.equal((await call(base, 'POST', '/v1/query', { body: JSON.stringify({ Name: 'replicas', Service: { Service: 'x' } }) })).status, 500);
      assert.equal((await call(base, 'DELETE', `/v1/query/${id}`)).status, 200);
      assert.equal((await get(`/v1/query/${id}/execute`)).status, 404);
    });
  });

  describe('ACL token', () => {
    it('requires the token on every request, by header, bearer or query, and never logs it', async () => {
      await restart({ aclToken: 's3cr3t-token' });
      const denied = await get('/v1/kv/x');
      assert.deepEqual([denied.status, denied.text], [403, 'ACL not found']);
      assert.equal((await get('/v1/kv/x', { 'X-Consul-Token': 'wrong' })).status, 403);
      assert.equal((await get('/v1/kv/x', { 'X-Consul-Token': 's3cr3t-token' })).status, 404);
      assert.equal((await get('/v1/kv/x', { Authorization: 'Bearer s3cr3t-token' })).status, 404);
      assert.equal((await get('/v1/kv/x?token=s3cr3t-token')).status, 404);
      assert.equal((await get('/v1/status/leader')).status, 200, 'status endpoints need no ACL, as in Consul');
      await sleep(20);
      assert.ok(consul.requestLog.some((e) => e.query === 'token=<hidden>'));
      assert.ok(!JSON.stringify(consul.requestLog).includes('s3cr3t'));
    });
  });

  describe('fault injection and request log', () => {
    it('status, garbage, reset and hang faults, with counts and clearFaults', async () => {
      consul.injectFault('/v1/health/service/', { kind: 'status', status: 500, body: 'rpc error: No cluster leader' }, 1);
      const f1 = await get('/v1/health/service/x');
      assert.deepEqual([f1.status, f1.text], [500, 'rpc error: No cluster leader']);
      assert.equal((await get('/v1/health/service/x')).status, 200, 'count=1 consumed');
      consul.injectFault('/v1/health/', { kind: 'garbage', body: '{"not json' });
      const g = await get('/v1/health/service/x');
      assert.deepEqual([g.status, g.text, g.headers['x-consul-index']], [200, '{"not json', undefined]);
      consul.injectFault('/v1/health/service/', { kind: 'reset' }, 1);
      await assert.rejects(get('/v1/health/service/x'), (err: NodeJS.ErrnoException) => err.code === 'ECONNRESET' || /socket hang up/.test(err.message));
      assert.equal((await get('/v1/health/service/x')).text, '{"not json', 'the unlimited garbage fault still applies');
      consul.clearFaults();
      assert.equal((await get('/v1/health/service/x')).status, 200);
      consul.injectFault('/v1/kv/', { kind: 'hang' }, 1);
      const hung = http.request(`${base}/v1/kv/a`, { agent: false });
      let settled = false;
      hung.on('error', () => undefined);
      hung.on('response', () => (settled = true));
      hung.end();
      await sleep(200);
      assert.equal(settled, false, 'hang never answers');
      hung.destroy();
      assert.equal((await get('/v1/kv/a')).status, 404);
      assert.throws(() => consul.injectFault('/x', { kind: 'hang' }, 0), RangeError);
    });

    it('counts requests by path prefix and logs method, path, query and status', async () => {
      await get('/v1/health/service/a?passing');
      await get('/v1/health/service/b');
      await put('/v1/kv/k', 'v');
      await sleep(20);
      assert.equal(consul.requestCount('/v1/health/service/'), 2);
      assert.equal(consul.requestCount('/v1/kv/'), 1);
      assert.equal(consul.requestCount(), 3);
      const entry = consul.requestLog.find((e) => e.path === '/v1/health/service/a');
      assert.ok(entry);
      assert.deepEqual([entry.method, entry.query, entry.status], ['GET', 'passing', 200]);
      assert.ok(Math.abs(entry.at - Date.now()) < 5000);
    });
  });

  describe('stop()', () => {
    it('closes blocking queries, sockets, probes and timers, and is idempotent', async () => {
      const target = await probeTarget();
      try {
        await put('/v1/agent/service/register', JSON.stringify({ name: 's', check: { http: target.url, interval: '0.1s' }, checks: [{ ttl: '30s' }] }));
        await put('/v1/session/create', JSON.stringify({ ttl: '30s' }));
        const index = Number((await get('/v1/health/service/s')).headers['x-consul-index']) + 1000;
        const inflight = get(`/v1/health/service/s?index=${index}&wait=5m`);
        await waitFor('blocked', () => consul.blockingQueries === 1);
        const t0 = Date.now();
        await consul.stop();
        assert.ok(Date.now() - t0 < 2000);
        await assert.rejects(inflight);
        await consul.stop();
        await assert.rejects(
          new Promise((resolve, reject) => {
            const s = net.connect(consul.port, '127.0.0.1');
            s.on('connect', () => {
              s.destroy();
              resolve(undefined);
            });
            s.on('error', reject);
          }),
          (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED',
        );
      } finally {
        await target.close();
      }
    });
  });
});
