import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Cluster } from '../../lib/cluster.js';
import type { DiscoveryListener, DiscoverySource } from '../../lib/discovery/discovery-source.js';
import type { TopologyEvent } from '../../lib/events.js';
import { NoPrimaryError, PoolEndedError } from '../../lib/errors.js';
import { node, update } from '../support/nodes.js';

/** A discovery source the test drives by hand. */
class ManualSource implements DiscoverySource {
  listener: DiscoveryListener | undefined;
  refreshes = 0;
  stopped = false;
  readonly requestCount = 0;
  start(listener: DiscoveryListener): void {
    this.listener = listener;
  }
  refresh(): void {
    this.refreshes++;
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
}

const P1 = node('n1', 5001, 'primary', 10);
const P2 = node('n2', 5002, 'primary', 20);
const R2 = node('n2', 5002, 'replica', 11);
const R3 = node('n3', 5003, 'replica', 12);

function setup(now: () => number = Date.now) {
  const source = new ManualSource();
  const emitters = { pool: new EventEmitter(), primary: new EventEmitter(), replica: new EventEmitter() };
  const logs: string[] = [];
  const cluster = new Cluster(
    { pg: {}, failoverTimeoutMillis: 1000, readFallback: 'primary', retryInitialDelayMillis: 10, retryMaxDelayMillis: 50, invalidationMillis: 1000 },
    source,
    emitters,
    (_level, message) => logs.push(message),
    now,
  );
  cluster.start();
  return { cluster, source, emitters, logs };
}

describe('cluster (state behind a Pool)', () => {
  it('emits topology only on change, on the Pool emitter', async () => {
    const { cluster, source, emitters } = setup();
    const events: TopologyEvent[] = [];
    emitters.pool.on('topology', (e: TopologyEvent) => events.push(e));
    source.listener!.onUpdate(update(1, P1, R2, R3));
    source.listener!.onUpdate(update(2, P1, R2, R3));
    assert.equal(events.length, 1);
    assert.equal(events[0]!.previous.discovered, false);
    assert.equal(events[0]!.current.primary?.name, 'n1');
    source.listener!.onUpdate(update(3, node('n1', 5001, 'replica', 30), P2, R3));
    assert.equal(events.length, 2);
    assert.equal(events[1]!.current.primary?.name, 'n2');
    await cluster.end();
  });

  it("replica tie break: 'listed' keeps reads on the first listed replica while all are equally busy; the default rotates", async () => {
    const make = (replicaTieBreak?: 'listed' | 'rotate') => {
      const source = new ManualSource();
      const emitters = { pool: new EventEmitter(), primary: new EventEmitter(), replica: new EventEmitter() };
      const settings = { pg: {}, failoverTimeoutMillis: 1000, readFallback: 'primary' as const, retryInitialDelayMillis: 10, retryMaxDelayMillis: 50, invalidationMillis: 1000 };
      const cluster = new Cluster(replicaTieBreak === undefined ? settings : { ...settings, replicaTieBreak }, source, emitters, () => undefined);
      cluster.start();
      source.listener!.onUpdate(update(1, P1, R3, R2)); // Consul's near order: n3 first
      return cluster;
    };
    const picks = (cluster: Cluster) => Array.from({ length: 4 }, () => cluster.select('replica').node?.name);
    const listed = make('listed');
    const rotating = make();
    assert.deepEqual(picks(listed), ['n3', 'n3', 'n3', 'n3']);
    assert.deepEqual(picks(rotating), ['n3', 'n2', 'n3', 'n2']);
    assert.equal(listed.selectCaughtUp(1n).node?.name, 'n3', 'read-your-writes reads prefer the nearest too');
    await Promise.all([listed.end(), rotating.end()]);
  });

  it('retires node pools whose node lost its role, keeps the others', async () => {
    const { cluster, source } = setup();
    source.listener!.onUpdate(update(1, P1, R2, R3));
    const primaryPool = cluster.nodePool(P1, 'primary');
    const replicaPool = cluster.nodePool(R2, 'replica');
    const other = cluster.nodePool(R3, 'replica');
    assert.equal(cluster.nodePool(P1, 'primary'), primaryPool, 'one pool per node and role');
    source.listener!.onUpdate(update(2, node('n1', 5001, 'replica', 30), P2, R3));
    assert.equal(primaryPool.retired, true, 'old primary pool retired');
    assert.equal(replicaPool.retired, true, 'n2 is no longer a replica');
    assert.equal(other.retired, false);
    assert.notEqual(cluster.nodePool(P2, 'primary'), primaryPool);
    await cluster.end();
    assert.equal(other.retired, true, 'end() retires everything');
  });

  it('invalidation makes the next candidate primary and asks discovery to refresh', async () => {
    let t = 1000;
    const { cluster, source } = setup(() => t);
    source.listener!.onUpdate(update(1, P1, P2));
    assert.equal(cluster.select('primary').node?.name, 'n2');
    cluster.retryDeps('primary').invalidate(P2.address);
    assert.equal(cluster.select('primary').node?.name, 'n1');
    t += 1000;
    assert.equal(cluster.select('primary').node?.name, 'n2', 're-checked after the invalidation period');
    cluster.retryDeps('primary').refresh();
    assert.equal(source.refreshes, 1);
    await cluster.end();
  });

  it('no node pool can be opened after end() (it would never be ended)', async () => {
    const { cluster, source } = setup();
    source.listener!.onUpdate(update(1, P1, R2));
    await cluster.end();
    assert.throws(() => cluster.nodePool(P1, 'primary'), PoolEndedError);
  });

  it('a new discovery answer with equal nodes keeps using the same node pool', async () => {
    const { cluster, source } = setup();
    source.listener!.onUpdate(update(1, P1, R2));
    const first = cluster.nodePool(cluster.select('primary').node!, 'primary');
    source.listener!.onUpdate(update(2, { ...P1 }, { ...R2 }));
    assert.equal(cluster.nodePool(cluster.select('primary').node!, 'primary'), first);
    await cluster.end();
  });

  it('a waiter is woken by a topology change, not by its timer', async () => {
    const { cluster, source } = setup();
    source.listener!.onUpdate(update(1, R2));
    const started = Date.now();
    const waiting = cluster.retryDeps('primary').waitForChange(10_000);
    assert.equal(cluster.waiters, 1);
    setTimeout(() => source.listener!.onUpdate(update(2, P1, R2)), 20);
    await waiting;
    assert.ok(Date.now() - started < 1000);
    assert.equal(cluster.waiters, 0);
    await cluster.end();
  });

  it('waitForPrimary resolves on discovery, fails with NoPrimaryError on timeout, PoolEndedError on end', async () => {
    const { cluster, source } = setup();
    setTimeout(() => source.listener!.onUpdate(update(1, P1)), 10);
    assert.equal((await cluster.waitForPrimary(5000)).primary?.name, 'n1');
    source.listener!.onUpdate(update(2, R2));
    await assert.rejects(cluster.waitForPrimary(30), NoPrimaryError);
    const pending = cluster.waitForPrimary(10_000);
    await cluster.end();
    await assert.rejects(pending, PoolEndedError);
  });

  it("end() before discovery's first answer: what already waits gets that answer, then discovery stops", async () => {
    const { cluster, source } = setup();
    const waiting = cluster.waitForPrimary(10_000);
    const ended = cluster.end();
    assert.equal(cluster.ending, true);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(source.stopped, false, 'discovery goes on while accepted work waits for its first answer');
    source.listener!.onUpdate(update(1, P1));
    assert.equal((await waiting).primary?.name, 'n1');
    await ended;
    assert.equal(source.stopped, true);
    assert.equal(cluster.ended, true);
  });

  it('end() before discovery ever answers: the wait is bounded (failoverTimeoutMillis here), then what waits fails with PoolEndedError', async () => {
    const { cluster, source } = setup();
    const started = Date.now();
    const waiting = cluster.waitForPrimary(10_000);
    await cluster.end();
    const took = Date.now() - started;
    assert.ok(took >= 900 && took < 3000, `end() took ${took} ms`);
    await assert.rejects(waiting, PoolEndedError);
    assert.equal(source.stopped, true);
  });

  it("undiscovered(): a path's retry waits before discovery's first answer, 0 once it answered; end()'s own wait is not a waiter", async () => {
    const { cluster, source } = setup();
    const writes = [cluster.retryDeps('primary').waitForChange(10_000), cluster.retryDeps('primary').waitForChange(10_000)];
    const read = cluster.retryDeps('replica').waitForChange(10_000);
    assert.deepEqual([cluster.undiscovered('primary'), cluster.undiscovered('replica'), cluster.waiters], [2, 1, 3]);
    const ended = cluster.end();
    assert.equal(cluster.waiters, 3, 'end() waits for the first answer without counting as a waiter');
    source.listener!.onUpdate(update(1, P1));
    assert.deepEqual([cluster.undiscovered('primary'), cluster.undiscovered('replica')], [0, 0]);
    await Promise.all([...writes, read, ended]);
    assert.equal(cluster.waiters, 0);
  });

  it('end() with nothing waiting, before discovery answers: ends at once', async () => {
    const { cluster, source } = setup();
    const started = Date.now();
    await cluster.end();
    assert.ok(Date.now() - started < 500);
    assert.equal(source.stopped, true);
  });

  it('discovery errors keep the topology and are emitted without the listener crashing anything', async () => {
    const { cluster, source, emitters, logs } = setup();
    source.listener!.onUpdate(update(1, P1, R2));
    const seen: unknown[] = [];
    emitters.pool.on('discoveryError', (e: unknown) => {
      seen.push(e);
      throw new Error('listener bug');
    });
    source.listener!.onError(new Error('consul 500'), { attempt: 1, retryInMillis: 100 });
    assert.equal(seen.length, 1);
    assert.equal(cluster.topology.primary?.name, 'n1', 'last good topology kept');
    assert.ok(logs.some((l) => l.includes('listener threw')));
    await cluster.end();
    assert.equal(source.stopped, true);
  });

  it('an idle-client error without listeners is logged, with one it is delivered', async () => {
    const { cluster, source, emitters, logs } = setup();
    source.listener!.onUpdate(update(1, P1, R2));
    const pool = cluster.nodePool(P1, 'primary');
    pool.pg.emit('error', new Error('terminating connection'), {});
    assert.ok(logs.some((l) => l.includes('idle client error')));
    const got: Error[] = [];
    emitters.primary.on('error', (e: Error) => got.push(e));
    pool.pg.emit('error', new Error('again'), {});
    assert.equal(got.length, 1);
    await cluster.end();
  });
});
