/**
 * Bounds of the Consul client on real sockets: connect timeout against a black-holed agent,
 * Retry-After on 429, the body cap, recovery after a hang, and a Pool whose Consul hangs or
 * is black-holed — queries settle within their bound, end() is quick, nothing is left open.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ConsulConfig } from '../../lib/discovery/consul-config.js';
import { ConsulThrottleError, consulGet } from '../../lib/discovery/consul-http.js';
import { ConsulHealthSource } from '../../lib/discovery/consul-health-source.js';
import type { DiscoveryListener } from '../../lib/discovery/discovery-source.js';
import { ConsulDouble } from '../../lib/testing/consul-double.js';
import { ConsulChaosProxy } from '../../lib/testing/consul-chaos-proxy.js';
import type { TopologyUpdate } from '../../lib/topology/node.js';
import { startBlackHole } from '../support/black-hole.js';
import { runHangChild } from '../support/hang-child-runner.js';
import type { BlackHole } from '../support/black-hole.js';

const config = (port: number): ConsulConfig => ({ scheme: 'http', host: '127.0.0.1', port, consistency: 'default', tls: { rejectUnauthorized: true } });

/** An HTTP server answering every request with `handler`; closed (with its sockets) by `close`. */
async function server(handler: http.RequestListener): Promise<{ port: number; close(): Promise<void> }> {
  const s = http.createServer(handler);
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return {
    port: (s.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      }),
  };
}

describe('Consul client bounds (real sockets)', function () {
  this.timeout(60_000);
  let hole: BlackHole | undefined;
  afterEach(async () => {
    await hole?.close();
    hole = undefined;
  });

  it('gives up connecting to a black-holed agent after connectTimeoutMillis', async () => {
    hole = await startBlackHole();
    const started = Date.now();
    await assert.rejects(
      consulGet(config(hole.port), '/v1/status/leader', {}, { signal: new AbortController().signal, timeoutMillis: 10_000, connectTimeoutMillis: 300 }),
      /no connection within 300 ms/,
    );
    const took = Date.now() - started;
    assert.ok(took >= 290 && took < 2_000, `settled after ${took} ms`);
  });

  it('turns a 429 into a ConsulThrottleError carrying Retry-After', async () => {
    const s = await server((_req, res) => {
      res.writeHead(429, { 'retry-after': '7' });
      res.end('rate limit exceeded');
    });
    try {
      const err = await consulGet(config(s.port), '/v1/health/service/x', {}, { signal: new AbortController().signal, timeoutMillis: 2_000 }).catch((e: unknown) => e);
      assert.ok(err instanceof ConsulThrottleError);
      assert.equal(err.status, 429);
      assert.equal(err.retryAfter, '7');
    } finally {
      await s.close();
    }
  });

  it('refuses an answer whose Content-Length passes the cap without reading it, and a chunked one at the cap', async () => {
    let wrote = 0;
    const s = await server((req, res) => {
      if (req.url?.includes('declared')) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(50 * 1024 * 1024) });
        res.write('[');
        return; // never finishes
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = (): void => {
        while (!res.destroyed && wrote < 50 * 1024 * 1024) {
          wrote += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
      };
      res.on('close', () => undefined);
      pump();
    });
    try {
      const started = Date.now();
      await assert.rejects(
        consulGet(config(s.port), '/declared', {}, { signal: new AbortController().signal, timeoutMillis: 5_000, maxBodyBytes: 1024 * 1024 }),
        /answer of 52428800 bytes is larger than 1048576 bytes/,
      );
      assert.ok(Date.now() - started < 1_000);
      await assert.rejects(
        consulGet(config(s.port), '/chunked', {}, { signal: new AbortController().signal, timeoutMillis: 5_000, maxBodyBytes: 1024 * 1024 }),
        /answer larger than 1048576 bytes/,
      );
      assert.ok(wrote < 10 * 1024 * 1024, `the server could write only ${wrote} bytes before the client hung up`);
    } finally {
      await s.close();
    }
  });

  it('a health source recovers when its hanging agent comes back, and leaves no connection after stop()', async () => {
    const consul = await ConsulDouble.start();
    consul.registerService({ id: 'pglab/n1', name: 'pglab', address: '127.0.0.1', port: 5432, tags: ['master', 'primary'] });
    const proxy = new ConsulChaosProxy({ upstreamPort: consul.port, seed: 1, mode: 'hang' });
    const port = await proxy.listen();
    const updates: TopologyUpdate[] = [];
    const errors: string[] = [];
    const listener: DiscoveryListener = { onUpdate: (u) => updates.push(u), onError: (e) => errors.push(e.message) };
    const source = new ConsulHealthSource({
      consul: config(port),
      service: 'pglab',
      primaryTags: ['master', 'primary'],
      replicaTags: ['replica'],
      waitSeconds: 1,
      requestTimeoutMillis: 300,
      minIntervalMillis: 100,
      backoff: { initialMillis: 100, maxMillis: 1_000 },
    });
    try {
      source.start(listener);
      await new Promise((r) => setTimeout(r, 2_500));
      assert.ok(errors.length >= 2, `${errors.length} timeouts reported`);
      assert.ok(errors.every((m) => /timed out after 300 ms/.test(m)), errors[0]);
      assert.equal(updates.length, 0);
      proxy.mode = 'pass';
      const deadline = Date.now() + 3_000;
      while (updates.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.ok(updates.length > 0, 'recovered once the agent answered again');
      assert.equal(updates[0]?.nodes[0]?.address, '127.0.0.1:5432');
    } finally {
      await source.stop();
      // Client sockets are destroyed by stop(); the server side sees the close at once.
      await new Promise((r) => setTimeout(r, 100));
      const open = proxy.openConnections;
      await proxy.close();
      await consul.stop();
      assert.equal(open, 0, 'no Consul connection left after stop()');
    }
  });

  for (const kind of ['hang', 'black-hole'] as const) {
    it(`a Pool whose Consul ${kind === 'hang' ? 'accepts TCP and never answers' : 'is black-holed'}: queries settle in time, end() < 1 s, no handle left, the process exits`, async () => {
      let port: number;
      let proxy: ConsulChaosProxy | undefined;
      if (kind === 'hang') {
        proxy = new ConsulChaosProxy({ upstreamPort: 1, seed: 1, mode: 'hang' });
        port = await proxy.listen();
      } else {
        hole = await startBlackHole();
        port = hole.port;
      }
      try {
        const { report, exitedAfterReportMillis } = await runHangChild('consul', port);
        assert.equal(report.queries.length, 3);
        for (const q of report.queries) {
          assert.equal(q.ok, false);
          assert.equal(q.code, 'PGCONSUL_NO_PRIMARY');
          assert.ok(q.millis >= 1_400 && q.millis < 2_500, `query settled after ${q.millis} ms (failoverTimeoutMillis 1500)`);
        }
        assert.ok(report.endMillis < 1_000, `end() took ${report.endMillis} ms`);
        assert.deepEqual(report.left, [], 'no socket or timer left after end()');
        assert.ok(report.requests >= 2 && report.requests <= 6, `${report.requests} Consul requests in ~1.5 s`);
        assert.ok(exitedAfterReportMillis < 2_000, `exited ${exitedAfterReportMillis} ms after end()`);
      } finally {
        await proxy?.close();
      }
    });
  }
});
