import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import sinon from 'sinon';
import { Cluster } from '../../../lib/cluster.js';
import type { ClusterSettings } from '../../../lib/cluster.js';
import type { DiscoveryListener, DiscoverySource } from '../../../lib/discovery/discovery-source.js';
import type { LagEvent, TopologyEvent } from '../../../lib/events.js';
import type { DiscoveredNode } from '../../../lib/topology/node.js';
import { node, update } from '../../support/nodes.js';
import { FakeWal } from './fake-monitor-clients.js';

const P1 = node('n1', 5001, 'primary');
const R2 = node('n2', 5002, 'replica');
const R3 = node('n3', 5003, 'replica');
const R4 = node('n4', 5004, 'replica');
const INTERVAL = 100;

class FakeSource implements DiscoverySource {
  listener: DiscoveryListener | undefined;
  requestCount = 0;
  stopped = false;
  start(listener: DiscoveryListener): void {
    this.listener = listener;
  }
  refresh(): void {}
  async stop(): Promise<void> {
    this.stopped = true;
  }
  push(index: number, ...nodes: DiscoveredNode[]): void {
    this.listener!.onUpdate(update(index, ...nodes));
  }
}

describe('Cluster with a lag limit (fake monitor clients)', () => {
  let clock: sinon.SinonFakeTimers;
  let wal: FakeWal;
  let source: FakeSource;
  let cluster: Cluster;
  let emitter: EventEmitter;
  let topologyEvents: TopologyEvent[];
  let lagEvents: LagEvent[];

  function make(extra: Partial<ClusterSettings> = {}): Cluster {
    const settings: ClusterSettings = {
      pg: {},
      failoverTimeoutMillis: 1000,
      readFallback: 'primary',
      retryInitialDelayMillis: 10,
      retryMaxDelayMillis: 100,
      invalidationMillis: 1000,
      maxReplicaLag: { bytes: 100 },
      lagCheckIntervalMillis: INTERVAL,
      lagMonitorClients: wal.factory,
      ...extra,
    };
    emitter = new EventEmitter();
    emitter.on('topology', (e: TopologyEvent) => topologyEvents.push(e));
    emitter.on('lag', (e: LagEvent) => lagEvents.push(e));
    const c = new Cluster(settings, source, { pool: emitter, primary: new EventEmitter(), replica: new EventEmitter() }, () => undefined);
    c.start();
    return c;
  }

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 5_000_000, toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    wal = new FakeWal();
    wal.primary.set(P1.address, '0/200');
    for (const r of [R2, R3, R4]) wal.replay.set(r.address, '0/200');
    source = new FakeSource();
    topologyEvents = [];
    lagEvents = [];
    cluster = make();
  });

  afterEach(async () => {
    await cluster.end();
    clock.restore();
  });

  it('new replicas start excluded until measured, then serve reads (one topology event each step)', async () => {
    source.push(1, P1, R2, R3);
    assert.deepEqual(cluster.topology.readReplicas, [], 'not measured yet');
    assert.equal(cluster.topology.lag.get(R2.address)?.excluded, true);
    assert.deepEqual(cluster.select('replica'), { node: P1, role: 'primary' }, 'readFallback primary meanwhile');
    assert.equal(topologyEvents.length, 1);
    await clock.tickAsync(0);
    assert.deepEqual(cluster.topology.readReplicas, [R2, R3]);
    assert.equal(topologyEvents.length, 2, 'admission is a topology event');
    assert.equal(cluster.select('replica').role, 'replica');
  });

  it('lag numbers alone make lag events, not topology events', async () => {
    source.push(1, P1, R2, R3);
    await clock.tickAsync(0);
    const t = topologyEvents.length;
    const l = lagEvents.length;
    for (let i = 1; i <= 5; i++) {
      wal.primary.set(P1.address, `0/2${i}0`);
      await clock.tickAsync(INTERVAL);
    }
    assert.equal(topologyEvents.length, t);
    assert.ok(lagEvents.length >= l + 5, `${lagEvents.length - l} lag events`);
    const last = lagEvents[lagEvents.length - 1]!;
    assert.notEqual(last.current, last.previous);
    assert.equal(last.current.version, last.previous.version);
    assert.equal(cluster.topology, last.current);
    assert.ok(cluster.topology.lag.get(R2.address)!.bytes! > 0);
  });

  it('a replica over the limit leaves the read path and comes back when it catches up', async () => {
    source.push(1, P1, R2, R3);
    await clock.tickAsync(0);
    wal.primary.set(P1.address, '0/1000');
    wal.replay.set(R3.address, '0/1000');
    await clock.tickAsync(INTERVAL);
    assert.deepEqual(cluster.topology.readReplicas, [R3]);
    const excluded = topologyEvents[topologyEvents.length - 1]!;
    assert.deepEqual(excluded.current.readReplicas, [R3]);
    for (let turn = 0; turn < 4; turn++) assert.equal(cluster.select('replica').node, R3);
    wal.replay.set(R2.address, '0/1000');
    await clock.tickAsync(INTERVAL);
    assert.deepEqual(cluster.topology.readReplicas, [R2, R3]);
  });

  it('a replica that joins later is measured at once', async () => {
    source.push(1, P1, R2);
    await clock.tickAsync(0);
    const rounds = wal.queries;
    source.push(2, P1, R2, R4);
    assert.deepEqual(cluster.topology.readReplicas, [R2], 'the newcomer is excluded until measured');
    await clock.tickAsync(0);
    assert.ok(wal.queries > rounds, 'a round ran without waiting for the interval');
    assert.deepEqual(cluster.topology.readReplicas, [R2, R4]);
  });

  it('feeds replay positions to read-your-writes selection (no verification with the monitor on)', async () => {
    source.push(1, P1, R2, R3);
    await clock.tickAsync(0);
    const caught = cluster.selectCaughtUp(0x200n);
    assert.deepEqual({ role: caught.role, verify: caught.verify }, { role: 'replica', verify: false });
    assert.deepEqual({ ...cluster.selectCaughtUp(0x201n) }, { node: P1, role: 'primary', verify: false });
  });

  it('end() stops the monitor and closes its connections', async () => {
    source.push(1, P1, R2, R3);
    await clock.tickAsync(0);
    await cluster.end();
    assert.ok(wal.clients.length === 3 && wal.clients.every((c) => c.ended));
    assert.equal(clock.countTimers(), 0);
  });

  it('without a lag limit: no monitor, no lag, readReplicas = replicas', async () => {
    await cluster.end();
    wal = new FakeWal();
    cluster = make({ maxReplicaLag: undefined });
    source.push(1, P1, R2, R3);
    await clock.tickAsync(INTERVAL * 3);
    assert.equal(wal.clients.length, 0);
    assert.equal(cluster.topology.readReplicas, cluster.topology.replicas);
    assert.equal(cluster.lagMonitored, false);
    assert.equal(lagEvents.length, 0);
    // Read-your-writes without the monitor verifies an unknown replica; known ones need no check.
    assert.equal(cluster.selectCaughtUp(0x10n).verify, true);
    cluster.noteReplayed(R2.address, 0x10n);
    cluster.noteReplayed(P1.address, 0x10n);
    assert.deepEqual({ ...cluster.selectCaughtUp(0x10n) }, { node: R2, role: 'replica', verify: false });
    assert.equal(cluster.selectCaughtUp(0x10n, false).role, 'replica', 'known replicas still serve a primary-pinned check-less read');
    assert.equal(cluster.selectCaughtUp(0x11n, false).role, 'primary');
    // Knowledge about a replica is dropped when it leaves.
    source.push(2, P1, R3);
    source.push(3, P1, R2, R3);
    assert.equal(cluster.selectCaughtUp(0x10n).verify, true);
  });
});
