/**
 * Fencing and dead-peer detection against real PostgreSQL 15 on loopback: a node that leaves
 * its role has every socket destroyed at once; a node that stops answering (SIGSTOP: the
 * kernel still acknowledges TCP, nothing answers — what a vanished host looks like to a
 * client) is found by the dead-peer probe while Consul still lists it, fenced, skipped, and
 * used again once it answers. The network-namespace lab (net-faults tests) covers real
 * black holes; this suite needs nothing but loopback.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectionFencedError, OutcomeUnknownError, Pool } from '../../lib/index.js';
import type { DiscoverySource, DiscoveryListener, ReachableEvent, UnreachableEvent } from '../../lib/index.js';
import { useClusterFixture } from '../support/cluster-fixture.js';
import { freezeNode } from '../support/freeze.js';
import { node, update } from '../support/nodes.js';

const SERVICE = 'pgfence';

/** Settles `p` and reports how long it took and how it ended. */
async function timed<T>(p: Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const start = Date.now();
  try {
    return { ms: Date.now() - start, value: await p };
  } catch (error) {
    return { ms: Date.now() - start, error };
  }
}

describe('fencing and dead-peer detection (integration: real PostgreSQL)', function () {
  this.timeout(60_000);
  const fx = useClusterFixture(SERVICE);
  const thaws: (() => void)[] = [];
  const freeze = (name: string): (() => void) => {
    const thaw = freezeNode(fx.cluster, name);
    thaws.push(thaw);
    return thaw;
  };
  afterEach(async () => {
    for (const thaw of thaws.splice(0)) thaw();
    fx.advertise(fx.cluster.primaryName());
  });

  const replicaNames = (): string[] => fx.cluster.nodes.map((n) => n.name).filter((n) => n !== fx.cluster.primaryName());

  it('fences a primary that leaves its role: an in-flight write fails as OutcomeUnknownError at once, a checked-out client gets ConnectionFencedError', async () => {
    const pool = fx.newPool({ deadPeerAfterMillis: 0, failoverTimeoutMillis: 3000 });
    await pool.ready();
    const inFlight = timed(pool.query('SELECT pg_sleep(30)'));
    const client = await pool.connect();
    const pending = timed(client.query('SELECT pg_sleep(30)'));
    await sleep(300);
    const movedAt = Date.now();
    fx.advertise(undefined); // Consul names no primary: the old one is "replica" now
    const [w, c] = await Promise.all([inFlight, pending]);
    assert.ok(w.error instanceof OutcomeUnknownError, `in-flight write: ${String(w.error)}`);
    assert.ok((w.error as OutcomeUnknownError).cause instanceof ConnectionFencedError, 'its cause is the fence');
    assert.ok(c.error instanceof ConnectionFencedError, `checked-out client: ${String(c.error)}`);
    assert.equal((c.error as ConnectionFencedError).sent, true);
    assert.equal((c.error as ConnectionFencedError).outcome, 'unknown');
    assert.ok(Date.now() - movedAt < 2000, `both settled ${Date.now() - movedAt} ms after the move`);
    const next = await timed(client.query('SELECT 1'));
    assert.ok(next.error instanceof ConnectionFencedError, `the next call: ${String(next.error)}`);
    assert.equal((next.error as ConnectionFencedError).sent, false);
    assert.equal((next.error as ConnectionFencedError).outcome, 'not-executed');
    assert.equal((next.error as ConnectionFencedError).retryable, true);
    client.release(next.error as Error);
    fx.advertise(fx.cluster.primaryName());
    const after = await pool.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    assert.equal(after.rows[0]!.r, false, 'writes flow again once the primary is back');
  });

  it('a read in flight on a replica that leaves the topology is retried on the other replica', async () => {
    const pool = fx.newPool({ deadPeerAfterMillis: 0 });
    await pool.ready();
    const [a, b] = replicaNames();
    const ports = new Map([[fx.portOf(a!), a!], [fx.portOf(b!), b!]]);
    // Two slow reads: least-busy selection puts one on each replica.
    const reads = [0, 1].map(() => pool.replica.query<{ port: number }>('SELECT inet_server_port() AS port, pg_sleep(1.5)'));
    await sleep(300);
    fx.advertise(fx.cluster.primaryName(), [a!]);
    const results = await Promise.all(reads);
    for (const r of results) assert.equal(ports.get(r.rows[0]!.port), b, 'both reads were answered by the replica that stayed');
  });

  it('probes a node that stops answering while Consul still lists it: fenced, skipped, and used again once it answers', async () => {
    const pool = fx.newPool({ deadPeerAfterMillis: 500, deadPeerTimeoutMillis: 300 });
    await pool.ready();
    const [a] = replicaNames();
    const frozenAddress = `127.0.0.1:${fx.portOf(a!)}`;
    // Warm both replica pools so the frozen one has connections to hang on.
    await Promise.all(Array.from({ length: 6 }, () => pool.replica.query('SELECT pg_sleep(0.05)')));
    const unreachable: UnreachableEvent[] = [];
    const reachable: ReachableEvent[] = [];
    pool.on('unreachable', (e) => unreachable.push(e));
    pool.on('reachable', (e) => reachable.push(e));
    const thaw = freeze(a!);
    const frozenAt = Date.now();
    const reads = await Promise.all(Array.from({ length: 12 }, (_, i) => timed(sleep(i * 50).then(() => pool.replica.query('SELECT 1 AS one')))));
    const errors = reads.filter((r) => r.error !== undefined);
    assert.deepEqual(errors.map((e) => String(e.error)), [], 'no read failed');
    const slowest = Math.max(...reads.map((r) => r.ms));
    assert.ok(slowest < 3000, `every read settled within the detection bound (slowest ${slowest} ms)`);
    assert.equal(unreachable.length, 1, 'one unreachable event');
    assert.equal(unreachable[0]!.node.address, frozenAddress);
    assert.ok(pool.topology.unreachable.has(frozenAddress));
    assert.ok(!pool.topology.replicas.some((r) => r.address === frozenAddress), 'skipped by routing');
    assert.ok(Date.now() - frozenAt < 5000);
    thaw();
    const deadline = Date.now() + 5000;
    while (reachable.length === 0 && Date.now() < deadline) await sleep(50);
    assert.equal(reachable.length, 1, 'reachable again after thawing');
    assert.ok(pool.topology.replicas.some((r) => r.address === frozenAddress), 'routed to again without a restart');
  });

  it('a frozen primary with Consul silent: the write in flight settles within the detection bound, later writes resume when it answers', async () => {
    const pool = fx.newPool({ deadPeerAfterMillis: 500, deadPeerTimeoutMillis: 300, failoverTimeoutMillis: 20_000 });
    await pool.ready();
    await pool.query('SELECT 1');
    const thaw = freeze(fx.cluster.primaryName());
    const inFlight = timed(pool.query('SELECT 1'));
    const w = await inFlight;
    assert.ok(w.error instanceof OutcomeUnknownError, `in flight: ${String(w.error)}`);
    assert.ok(w.ms < 3000, `settled after ${w.ms} ms`);
    assert.equal(pool.topology.primary, undefined, 'no primary while the only one does not answer');
    const waiting = timed(pool.query('SELECT 2 AS two'));
    await sleep(500);
    thaw();
    const later = await waiting;
    assert.equal(later.error, undefined, `a write issued while it was fenced waits and then runs: ${String(later.error)}`);
  });

  it('no false positive: a long statement on a live, busy server completes', async () => {
    const probes: Record<string, unknown>[] = [];
    const pool = fx.newPool({
      deadPeerAfterMillis: 300,
      deadPeerTimeoutMillis: 300,
      logger: (_level, message, fields) => {
        if (message === 'dead-peer probe' && fields) probes.push(fields);
      },
    });
    await pool.ready();
    const unreachable: UnreachableEvent[] = [];
    pool.on('unreachable', (e) => unreachable.push(e));
    // One backend burns a core for the whole test while the long statement sleeps.
    const hog = pool.query("SET statement_timeout = '4s'; SELECT count(*) FROM generate_series(1, 1000000000)").catch((e: Error) => e);
    const long = await pool.query<{ ok: number }>('SELECT 1 AS ok FROM pg_sleep(3)');
    assert.equal(long.rows[0]!.ok, 1);
    const hogResult = await hog;
    assert.ok(hogResult instanceof Error && /statement timeout/.test(hogResult.message), 'the CPU hog ran until its timeout');
    assert.deepEqual(unreachable, [], 'the live node was never declared unreachable');
    assert.ok(probes.length >= 3, `the long statement was probed (${probes.length} probes)`);
    assert.ok(probes.every((p) => p['reachable'] === true), 'and every probe got an answer');
  });

  it('end() with a frozen node finishes in about a second and leaves nothing open', async () => {
    const pool = fx.newPool({ deadPeerAfterMillis: 0 });
    await pool.ready();
    await pool.query('SELECT 1');
    freeze(fx.cluster.primaryName());
    const stuck = timed(pool.query('SELECT 1'));
    await sleep(200);
    const ended = await timed(pool.end());
    assert.equal(ended.error, undefined);
    assert.ok(ended.ms < 1500, `end() took ${ended.ms} ms`);
    const s = await stuck;
    assert.ok(s.error instanceof OutcomeUnknownError, `the stuck write: ${String(s.error)}`);
  });

  it('a server that accepts TCP and never answers costs one bounded connect attempt', async () => {
    const sockets = new Set<Socket>();
    let accepted = 0;
    const server = createServer((s) => {
      accepted++;
      sockets.add(s);
      s.resume(); // read (and drop) what arrives, so a peer's FIN is seen
      s.on('close', () => sockets.delete(s));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    let listener: DiscoveryListener | undefined;
    const source: DiscoverySource = {
      start: (l) => {
        listener = l;
        l.onUpdate(update(1, node('silent', port, 'primary')));
      },
      refresh: () => undefined,
      stop: async () => undefined,
      requestCount: 0,
    };
    const pool = new Pool({ discovery: source, connectTimeoutMillis: 400, failoverTimeoutMillis: 3000, deadPeerTimeoutMillis: 200, user: 'x', database: 'x' });
    const unreachable: UnreachableEvent[] = [];
    pool.on('unreachable', (e) => unreachable.push(e));
    try {
      const r = await timed(pool.query('SELECT 1'));
      assert.ok(r.error instanceof Error, 'failed');
      assert.ok(r.ms < 4000, `settled after ${r.ms} ms (failover budget 3000 ms, connect bound 400 ms)`);
      assert.equal((r.error as { outcome?: string }).outcome, 'not-executed');
      assert.equal(unreachable.length, 1, 'the first timed-out connect made pg-consul probe the node, which did not answer');
      assert.ok(pool.topology.unreachable.has(`127.0.0.1:${port}`));
      // Two PostgreSQL attempts (the second started before the probe's verdict), then one probe
      // per sweep (500 ms) while the node stays unreachable.
      assert.ok(accepted <= 12, `bounded attempts and probes, not a connect storm (${accepted} connections)`);
      assert.ok(sockets.size <= 2, `attempts and probes close their sockets (${sockets.size} open)`);
      assert.ok(listener !== undefined);
    } finally {
      const ended = await timed(pool.end());
      assert.ok(ended.ms < 1500, `end() took ${ended.ms} ms`);
      for (const s of sockets) s.destroy();
      server.close();
    }
  });
});
