/**
 * The Consul transport and health source against real sockets on loopback: a tiny
 * blocking-query-capable Consul written here, and the shared Consul double.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiscoveryError } from '../../lib/errors.js';
import { ConsulDouble } from '../../lib/testing/consul-double.js';
import type { ConsulConfig } from '../../lib/discovery/consul-config.js';
import { consulGet, createConsulAgent } from '../../lib/discovery/consul-http.js';
import { ConsulHealthSource } from '../../lib/discovery/consul-health-source.js';
import type { ConsulHealthSourceOptions } from '../../lib/discovery/consul-health-source.js';
import type { DiscoveryListener } from '../../lib/discovery/discovery-source.js';
import type { TopologyUpdate } from '../../lib/topology/node.js';

const TOKEN = 'c0ffee00-dead-beef-0000-5ecre7t0ken1';

interface SeenRequest {
  readonly url: URL;
  readonly headers: http.IncomingHttpHeaders;
  readonly at: number;
  closed: boolean;
}

/** A tiny Consul: `/v1/health/service/<svc>` with `index`/`wait` blocking, plus fault modes. */
class TinyConsul {
  readonly requests: SeenRequest[] = [];
  connections = 0;
  index = 10;
  entries: unknown[] = [];
  /** 'ok' | 'hang' (never answer) | a status to answer with | 'garbage' (non-JSON 200). */
  mode: 'ok' | 'hang' | 'garbage' | number = 'ok';
  /** Extra text put into error bodies (used to echo the token back). */
  errorText = 'boom';
  readonly #server: http.Server;
  readonly #waiters = new Set<() => void>();
  readonly #requestWaiters: Array<() => void> = [];

  constructor() {
    this.#server = http.createServer({ keepAliveTimeout: 60_000, requestTimeout: 0 }, (req, res) => this.#handle(req, res));
    this.#server.on('connection', () => {
      this.connections += 1;
    });
  }

  async listen(where: { port: 0 } | { path: string }): Promise<void> {
    if ('path' in where) this.#server.listen(where.path);
    else this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
  }

  get port(): number {
    const address = this.#server.address();
    assert.ok(address !== null && typeof address === 'object');
    return address.port;
  }

  config(overrides: Partial<ConsulConfig> = {}): ConsulConfig {
    return { scheme: 'http', host: '127.0.0.1', port: this.port, token: TOKEN, consistency: 'default', tls: { rejectUnauthorized: true }, ...overrides };
  }

  /** Changes the service and wakes blocked queries. */
  setEntries(entries: unknown[]): void {
    this.entries = entries;
    this.index += 1;
    for (const wake of [...this.#waiters]) wake();
  }

  /** Resolves when `count` requests have arrived in total. */
  async requestsReach(count: number): Promise<SeenRequest> {
    while (this.requests.length < count) await new Promise<void>((resolve) => this.#requestWaiters.push(resolve));
    return this.requests[count - 1] as SeenRequest;
  }

  async close(): Promise<void> {
    for (const wake of [...this.#waiters]) wake();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://consul');
    const seen: SeenRequest = { url, headers: req.headers, at: Date.now(), closed: false };
    this.requests.push(seen);
    res.on('close', () => {
      seen.closed = true;
    });
    for (const wake of this.#requestWaiters.splice(0)) wake();
    if (this.mode === 'hang') return;
    if (typeof this.mode === 'number') {
      res.writeHead(this.mode, { 'content-type': 'text/plain', 'x-consul-index': String(this.index) }).end(this.errorText);
      return;
    }
    if (this.mode === 'garbage') {
      res.writeHead(200, { 'content-type': 'text/html', 'x-consul-index': String(this.index) }).end('<html>proxy error</html>');
      return;
    }
    if (!url.pathname.startsWith('/v1/health/service/')) {
      res.writeHead(404).end('not found');
      return;
    }
    const reply = (): void => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': String(this.index), 'x-consul-knownleader': 'true' });
      res.end(JSON.stringify(this.entries));
    };
    const index = Number(url.searchParams.get('index') ?? '0');
    const waitMillis = Number.parseFloat(url.searchParams.get('wait') ?? '300') * 1_000;
    if (index === 0 || index < this.index) {
      reply();
      return;
    }
    const wake = (): void => {
      this.#waiters.delete(wake);
      clearTimeout(timer);
      if (!res.destroyed) reply();
    };
    const timer = setTimeout(wake, waitMillis);
    this.#waiters.add(wake);
    res.on('close', () => {
      this.#waiters.delete(wake);
      clearTimeout(timer);
    });
  }
}

function entry(name: string, port: number, tags: string[]): unknown {
  return {
    Node: { Node: 'agent-1', Address: '127.0.0.1' },
    Service: { ID: `pglab/${name}`, Service: 'pglab', Address: '', Port: port, Tags: tags, ModifyIndex: 1 },
    Checks: [],
  };
}

/** Collects callbacks and lets a test await the next one. */
class WaitingListener implements DiscoveryListener {
  readonly updates: TopologyUpdate[] = [];
  readonly errors: Array<{ error: Error; attempt: number; retryInMillis: number }> = [];
  #wake: Array<() => void> = [];
  onUpdate(update: TopologyUpdate): void {
    this.updates.push(update);
    for (const w of this.#wake.splice(0)) w();
  }
  onError(error: Error, info: { readonly attempt: number; readonly retryInMillis: number }): void {
    this.errors.push({ error, ...info });
    for (const w of this.#wake.splice(0)) w();
  }
  async until(predicate: () => boolean, timeoutMillis = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMillis;
    while (!predicate()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('condition not reached in time');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

function sourceOptions(config: ConsulConfig, overrides: Partial<ConsulHealthSourceOptions> = {}): ConsulHealthSourceOptions {
  return {
    consul: config,
    service: 'pglab',
    primaryTags: ['master', 'primary'],
    replicaTags: ['replica'],
    waitSeconds: 30,
    requestTimeoutMillis: 2_000,
    minIntervalMillis: 20,
    backoff: { initialMillis: 50, maxMillis: 200 },
    ...overrides,
  };
}

describe('Consul health discovery over real sockets', function () {
  this.timeout(20_000);
  let consul: TinyConsul;
  let sources: ConsulHealthSource[];

  function track(source: ConsulHealthSource): ConsulHealthSource {
    sources.push(source);
    return source;
  }

  beforeEach(async () => {
    consul = new TinyConsul();
    consul.entries = [entry('node1', 5432, ['master', 'primary']), entry('node2', 5433, ['replica'])];
    await consul.listen({ port: 0 });
    sources = [];
  });

  afterEach(async () => {
    await Promise.all(sources.map((s) => s.stop()));
    await consul.close();
  });

  describe('consulGet', () => {
    it('returns status, headers and the parsed body; token as a header, never in the URL', async () => {
      const config = consul.config({ datacenter: 'dc1', consistency: 'stale' });
      const res = await consulGet(config, '/v1/health/service/pglab', { passing: true }, { signal: new AbortController().signal, timeoutMillis: 2_000 });
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-consul-index'], '10');
      assert.equal(res.headers['x-consul-knownleader'], 'true');
      assert.ok(Array.isArray(res.body) && res.body.length === 2);
      const seen = consul.requests[0];
      assert.ok(seen);
      assert.equal(seen.headers['x-consul-token'], TOKEN);
      assert.equal(seen.url.search, '?dc=dc1&stale&passing');
      assert.ok(!seen.url.href.includes(TOKEN));
    });

    it('turns a non-2xx answer into a DiscoveryError with the status and a redacted excerpt', async () => {
      consul.mode = 403;
      consul.errorText = `ACL not found: token ${TOKEN} ${'x'.repeat(500)}`;
      const err = await consulGet(consul.config(), '/v1/health/service/pglab', {}, { signal: new AbortController().signal, timeoutMillis: 2_000 }).then(
        () => assert.fail('should reject'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof DiscoveryError);
      assert.equal(err.status, 403);
      assert.match(err.message, /answered 403 to GET \/v1\/health\/service\/pglab: ACL not found: token \[redacted\] x+…$/);
      assert.ok(!err.message.includes(TOKEN) && !String(err.stack).includes(TOKEN));
      assert.ok(err.message.length < 400);
    });

    it('rejects a non-JSON 200 body', async () => {
      consul.mode = 'garbage';
      await assert.rejects(
        consulGet(consul.config(), '/v1/health/service/pglab', {}, { signal: new AbortController().signal, timeoutMillis: 2_000 }),
        (e: unknown) => e instanceof DiscoveryError && e.status === 200 && /not JSON: <html>proxy error<\/html>/.test(e.message),
      );
    });

    it('rejects a network error without the token', async () => {
      const config = consul.config();
      await consul.close();
      const err = await consulGet(config, '/v1/health/service/pglab', {}, { signal: new AbortController().signal, timeoutMillis: 2_000 }).then(
        () => assert.fail('should reject'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof DiscoveryError);
      assert.match(err.message, /ECONNREFUSED/);
      assert.equal(err.status, undefined);
      assert.ok(!err.message.includes(TOKEN));
      consul = new TinyConsul(); // afterEach closes it
      await consul.listen({ port: 0 });
    });

    it('times out a hanging Consul and closes the connection', async () => {
      consul.mode = 'hang';
      const started = Date.now();
      await assert.rejects(
        consulGet(consul.config(), '/v1/health/service/pglab', {}, { signal: new AbortController().signal, timeoutMillis: 200 }),
        (e: unknown) => e instanceof DiscoveryError && /timed out after 200 ms/.test(e.message),
      );
      const took = Date.now() - started;
      assert.ok(took >= 190 && took < 1_000, `took ${took} ms`);
      await waitFor(() => consul.requests[0]?.closed === true);
    });

    it('aborts at once when the signal fires mid-request', async () => {
      consul.mode = 'hang';
      const controller = new AbortController();
      const pending = consulGet(consul.config(), '/v1/health/service/pglab', {}, { signal: controller.signal, timeoutMillis: 60_000 });
      await consul.requestsReach(1);
      const started = Date.now();
      controller.abort();
      await assert.rejects(pending, (e: unknown) => e instanceof DiscoveryError && /aborted/.test(e.message));
      assert.ok(Date.now() - started < 50, 'rejected at once');
      await waitFor(() => consul.requests[0]?.closed === true);
    });

    it('reuses one connection through a keep-alive agent', async () => {
      const agent = createConsulAgent(consul.config());
      try {
        for (let i = 0; i < 5; i++) {
          await consulGet(consul.config(), '/v1/health/service/pglab', {}, { signal: new AbortController().signal, timeoutMillis: 2_000, agent });
        }
        assert.equal(consul.connections, 1);
      } finally {
        agent.destroy();
      }
    });
  });

  describe('ConsulHealthSource', () => {
    it('is woken by a change at once (blocking query)', async () => {
      const listener = new WaitingListener();
      const source = track(new ConsulHealthSource(sourceOptions(consul.config())));
      source.start(listener);
      await listener.until(() => listener.updates.length === 1);
      assert.deepEqual(listener.updates[0]?.nodes.map((n) => [n.name, n.role, n.address]), [
        ['node1', 'primary', '127.0.0.1:5432'],
        ['node2', 'replica', '127.0.0.1:5433'],
      ]);
      const blocking = await consul.requestsReach(2);
      assert.equal(blocking.url.searchParams.get('index'), '10');
      assert.equal(blocking.url.searchParams.get('wait'), '30s');
      assert.ok(blocking.url.searchParams.has('passing'));
      await new Promise((r) => setTimeout(r, 100)); // the query is now parked in Consul

      const changedAt = performance.now();
      consul.setEntries([entry('node2', 5433, ['master', 'primary'])]);
      await listener.until(() => listener.updates.length === 2);
      const latency = performance.now() - changedAt;
      console.log(`      change → onUpdate in ${latency.toFixed(1)} ms`);
      assert.ok(latency < 100, `woken after ${latency} ms`);
      assert.equal(listener.updates[1]?.index, 11);
      assert.deepEqual(listener.updates[1]?.nodes.map((n) => [n.name, n.role]), [['node2', 'primary']]);
      await consul.requestsReach(3);
      assert.equal(source.requestCount, 3);
      assert.equal(consul.connections, 1, 'one kept-alive connection for the whole loop');
    });

    it('survives a hanging Consul, recovers, and stop() aborts the hanging request', async () => {
      consul.mode = 'hang';
      const listener = new WaitingListener();
      const source = track(new ConsulHealthSource(sourceOptions(consul.config(), { requestTimeoutMillis: 150 })));
      source.start(listener);
      await listener.until(() => listener.errors.length >= 2);
      assert.match(listener.errors[0]?.error.message ?? '', /timed out after 150 ms/);
      assert.deepEqual(listener.errors.slice(0, 2).map((e) => e.attempt), [1, 2]);

      consul.mode = 'ok';
      await listener.until(() => listener.updates.length === 1);
      await waitFor(() => consul.requests.at(-1)?.url.searchParams.get('index') === '10'); // parked

      consul.mode = 'hang';
      consul.setEntries([entry('node1', 5432, ['master'])]); // wakes the blocking query; the next one hangs
      await listener.until(() => listener.updates.length === 2);
      const count = consul.requests.length;
      const hanging = await consul.requestsReach(count + 1);
      await new Promise((r) => setTimeout(r, 50));
      const started = performance.now();
      await source.stop();
      const took = performance.now() - started;
      assert.ok(took < 50, `stop() took ${took} ms`);
      await waitFor(() => hanging.closed);
      const errorsAtStop = listener.errors.length;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(consul.requests.length, count + 1, 'no request after stop');
      assert.equal(listener.errors.length, errorsAtStop, 'no callback after stop');
      assert.ok(listener.errors.every((e) => !e.error.message.includes(TOKEN)));
    });

    it('backs off on 500s and reports them without the token', async () => {
      consul.mode = 500;
      consul.errorText = `rpc error: ${TOKEN}`;
      const listener = new WaitingListener();
      const source = track(new ConsulHealthSource(sourceOptions(consul.config())));
      source.start(listener);
      await listener.until(() => listener.errors.length >= 3);
      for (const { error, retryInMillis } of listener.errors) {
        assert.ok(error instanceof DiscoveryError && error.status === 500);
        assert.ok(!error.message.includes(TOKEN));
        assert.ok(retryInMillis >= 0 && retryInMillis < 200, `retryInMillis ${retryInMillis}`);
      }
      const gaps = consul.requests.slice(1).map((r, i) => r.at - (consul.requests[i]?.at ?? 0));
      assert.ok(gaps.every((g) => g >= 19), `requests spaced by the rate limit: ${gaps.join(', ')}`);
      assert.ok(consul.requests.every((r) => r.headers['x-consul-token'] === TOKEN));
      consul.mode = 'ok';
      await listener.until(() => listener.updates.length === 1);
    });

    it('works over a unix socket', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'pg-consul-'));
      const unixConsul = new TinyConsul();
      try {
        unixConsul.entries = [entry('node1', 5432, ['master'])];
        const socketPath = join(dir, 'consul.sock');
        await unixConsul.listen({ path: socketPath });
        const listener = new WaitingListener();
        const config: ConsulConfig = { scheme: 'http', host: '127.0.0.1', port: 1, socketPath, token: TOKEN, consistency: 'default', tls: { rejectUnauthorized: true } };
        const source = new ConsulHealthSource(sourceOptions(config));
        source.start(listener);
        try {
          await listener.until(() => listener.updates.length === 1);
          assert.deepEqual(listener.updates[0]?.nodes.map((n) => n.address), ['127.0.0.1:5432']);
          await unixConsul.requestsReach(2);
          unixConsul.setEntries([]);
          await listener.until(() => listener.updates.length === 2);
          assert.deepEqual(listener.updates[1]?.nodes, []);
          assert.equal(unixConsul.requests[0]?.headers['x-consul-token'], TOKEN);
        } finally {
          await source.stop();
        }
      } finally {
        await unixConsul.close();
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('does not keep the process alive while a blocking query is parked', async () => {
      const module = fileURLToPath(new URL('../../lib/discovery/consul-health-source.ts', import.meta.url));
      const code = `
        import { ConsulHealthSource } from ${JSON.stringify(module)};
        const source = new ConsulHealthSource({
          consul: { scheme: 'http', host: '127.0.0.1', port: ${consul.port}, consistency: 'default', tls: { rejectUnauthorized: true } },
          service: 'pglab', primaryTags: ['master'], replicaTags: ['replica'], waitSeconds: 600,
          requestTimeoutMillis: 60000, minIntervalMillis: 10, backoff: { initialMillis: 100, maxMillis: 1000 },
        });
        source.start({ onUpdate: (u) => console.log('update', u.index), onError: (e) => console.log('error', e.message) });
        // Hold the process for a moment so the blocking query gets parked, then let go.
        setTimeout(() => console.log('released'), 500);
      `;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const [code_] = (await once(child, 'exit')) as [number | null];
      clearTimeout(killer);
      assert.equal(code_, 0, `child output: ${out}`);
      assert.equal(out, 'update 10\nreleased\n');
      const blocking = consul.requests.find((r) => r.url.searchParams.get('index') === '10');
      assert.ok(blocking, 'the child had a blocking query parked when it exited');
      assert.equal(blocking.url.searchParams.get('wait'), '600s');
      assert.ok(Date.now() - blocking.at < 10_000, 'exited long before the 600 s wait');
    });
  });
});

describe('ConsulHealthSource against the Consul double', function () {
  this.timeout(20_000);
  let double: ConsulDouble;
  let source: ConsulHealthSource | undefined;

  function config(token = TOKEN): ConsulConfig {
    return { scheme: 'http', host: double.host, port: double.port, token, consistency: 'default', tls: { rejectUnauthorized: true } };
  }

  beforeEach(async () => {
    double = await ConsulDouble.start({ aclToken: TOKEN, checkStagger: false });
    double.registerService({ id: 'pglab/node1', name: 'pglab', port: 5432, tags: ['master', 'primary'] });
    double.registerService({ id: 'pglab/node2', name: 'pglab', port: 5433, tags: ['replica'] });
    double.registerService({ id: 'other/x', name: 'other', port: 6000, tags: ['master'] });
  });

  afterEach(async () => {
    await source?.stop();
    source = undefined;
    await double.stop();
  });

  it('follows registrations and check changes at once, and survives injected 500s', async () => {
    const listener = new WaitingListener();
    source = new ConsulHealthSource(sourceOptions(config()));
    source.start(listener);
    await listener.until(() => listener.updates.length === 1);
    const roles = (u: TopologyUpdate | undefined): string[] => (u?.nodes ?? []).map((n) => `${n.name}:${n.role}:${n.address}`);
    assert.deepEqual(roles(listener.updates[0]), ['node1:primary:127.0.0.1:5432', 'node2:replica:127.0.0.1:5433']);
    const firstIndex = listener.updates[0]?.index ?? 0;
    assert.ok(firstIndex >= 1 && firstIndex <= double.index, `index ${firstIndex}`);

    const parked = async (): Promise<void> => waitFor(() => double.blockingQueries === 1);
    await parked();
    let changedAt = performance.now();
    double.setCheckStatus('pglab/node1', 'critical');
    await listener.until(() => listener.updates.length === 2);
    const critical = performance.now() - changedAt;
    assert.deepEqual(roles(listener.updates[1]), ['node2:replica:127.0.0.1:5433']);

    await parked();
    changedAt = performance.now();
    double.registerService({ id: 'pglab/node2', name: 'pglab', port: 5433, tags: ['master', 'primary'] });
    await listener.until(() => listener.updates.length === 3);
    const promoted = performance.now() - changedAt;
    assert.deepEqual(roles(listener.updates[2]), ['node2:primary:127.0.0.1:5433']);
    console.log(`      double: check critical → onUpdate ${critical.toFixed(1)} ms, promotion → onUpdate ${promoted.toFixed(1)} ms`);
    assert.ok(critical < 200 && promoted < 200);

    await parked();
    double.injectFault('/v1/health/service', { kind: 'status', status: 500, body: 'rpc error' }, 2);
    double.setCheckStatus('pglab/node1', 'passing'); // wakes the parked query; the next two answers are 500s
    await listener.until(() => listener.errors.length === 2 && listener.updates.length === 4);
    assert.deepEqual(listener.errors.map((e) => [e.attempt, (e.error as DiscoveryError).status]), [[1, 500], [2, 500]]);
    assert.ok(listener.errors.every((e) => /answered 500 .*: rpc error$/.test(e.error.message) && !e.error.message.includes(TOKEN)));
    assert.deepEqual(roles(listener.updates.at(-1)), ['node1:primary:127.0.0.1:5432', 'node2:primary:127.0.0.1:5433']);

    const health = double.requestLog.filter((r) => r.path === '/v1/health/service/pglab');
    assert.ok(health.every((r) => r.query.split('&').includes('passing')));
    assert.equal(health[0]?.query, 'passing');
    assert.ok(health.some((r) => /(^|&)index=\d+&wait=30s$/.test(r.query)));
  });

  it('reports a wrong token as a 403 without leaking either token', async () => {
    const wrong = 'ffffffff-0000-0000-0000-wrongtoken00';
    const listener = new WaitingListener();
    source = new ConsulHealthSource(sourceOptions(config(wrong)));
    source.start(listener);
    await listener.until(() => listener.errors.length === 1);
    const { error } = listener.errors[0] ?? {};
    assert.ok(error instanceof DiscoveryError && error.status === 403, String(error));
    assert.ok(!error.message.includes(wrong) && !error.message.includes(TOKEN));
  });
});

async function waitFor(predicate: () => boolean, timeoutMillis = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMillis;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
