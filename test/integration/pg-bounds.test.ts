/**
 * Bounds on the PostgreSQL side with real sockets: a node that accepts TCP and never
 * completes the startup exchange, and a black-holed one (SYNs dropped). Each costs bounded
 * connect attempts; the queries settle within `failoverTimeoutMillis` with a typed error;
 * end() takes well under a second and leaves no socket or timer; the process exits by itself.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { probeReachable } from '../../lib/pooling/reachability-probe.js';
import { startBlackHole } from '../support/black-hole.js';
import type { BlackHole } from '../support/black-hole.js';
import { runHangChild } from '../support/hang-child-runner.js';

describe('PostgreSQL connect bounds (real sockets, child process)', function () {
  this.timeout(60_000);
  let hole: BlackHole | undefined;
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  afterEach(async () => {
    await hole?.close();
    hole = undefined;
    for (const s of sockets) s.destroy();
    server?.close();
    server = undefined;
  });

  for (const kind of ['half-open', 'black-hole'] as const) {
    it(`a node that ${kind === 'half-open' ? 'accepts TCP and never answers' : 'is black-holed'}: queries settle in time with a typed error, end() < 1 s, no handle left, the process exits`, async () => {
      let port: number;
      if (kind === 'half-open') {
        server = createServer((s) => {
          sockets.add(s);
          s.resume();
          s.on('close', () => sockets.delete(s));
        });
        server.listen(0, '127.0.0.1');
        await once(server, 'listening');
        port = (server.address() as { port: number }).port;
      } else {
        hole = await startBlackHole();
        port = hole.port;
      }
      const { report, exitedAfterReportMillis } = await runHangChild('pg', port);
      assert.equal(report.queries.length, 3);
      for (const q of report.queries) {
        assert.equal(q.ok, false);
        assert.ok(q.code === 'PGCONSUL_FAILOVER_TIMEOUT' || q.code === 'PGCONSUL_NO_PRIMARY', `typed error: ${q.code}`);
        assert.ok(q.millis >= 1_400 && q.millis < 2_500, `query settled after ${q.millis} ms (failoverTimeoutMillis 1500, connect bound 500)`);
      }
      assert.ok(report.endMillis < 1_000, `end() took ${report.endMillis} ms`);
      assert.deepEqual(report.left, [], 'no socket or timer left after end()');
      assert.ok(exitedAfterReportMillis < 2_000, `exited ${exitedAfterReportMillis} ms after end()`);
    });
  }
});

describe('probeReachable (real sockets)', () => {
  const servers: Server[] = [];
  const listen = async (onSocket: (s: Socket) => void): Promise<number> => {
    const s = createServer(onSocket);
    servers.push(s);
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    return (s.address() as { port: number }).port;
  };
  after(() => {
    for (const s of servers) s.close();
  });

  it('an answer to the SSLRequest means reachable; the server got exactly the 8-byte SSLRequest', async () => {
    let got: Buffer | undefined;
    const port = await listen((s) => s.once('data', (d: Buffer) => {
      got = d;
      s.end('N');
    }));
    assert.deepEqual(await probeReachable('127.0.0.1', port, 1000), { reachable: true });
    assert.deepEqual([...got!], [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
  });

  it('refused, silent, closed without answer and aborted each give a reason', async () => {
    const silent = await listen((s) => s.resume());
    const closing = await listen((s) => s.destroy());
    const refused = await listen(() => undefined);
    servers.pop()!.close();
    await sleep(20);
    assert.deepEqual(await probeReachable('127.0.0.1', refused, 1000), { reachable: false, reason: 'ECONNREFUSED' });
    assert.deepEqual(await probeReachable('127.0.0.1', silent, 200), { reachable: false, reason: 'no answer within 200 ms' });
    const closed = await probeReachable('127.0.0.1', closing, 1000);
    assert.equal(closed.reachable, false);
    const abort = new AbortController();
    const p = probeReachable('127.0.0.1', silent, 5000, abort.signal);
    abort.abort();
    assert.deepEqual(await p, { reachable: false, reason: 'aborted' });
  });
});
