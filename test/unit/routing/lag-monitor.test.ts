import assert from 'node:assert/strict';
import sinon from 'sinon';
import { LagMonitor } from '../../../lib/routing/lag-monitor.js';
import type { LagLimit } from '../../../lib/routing/lag.js';
import { EMPTY_TOPOLOGY, applyUpdate } from '../../../lib/topology/snapshot.js';
import type { TopologySnapshot } from '../../../lib/topology/snapshot.js';
import { node, update } from '../../support/nodes.js';
import { FakeWal } from './fake-monitor-clients.js';

const P1 = node('n1', 5001, 'primary');
const R2 = node('n2', 5002, 'replica');
const R3 = node('n3', 5003, 'replica');
const INTERVAL = 100;

describe('routing/lag-monitor', () => {
  let clock: sinon.SinonFakeTimers;
  let wal: FakeWal;
  let topology: TopologySnapshot;
  let rounds: number;
  let monitor: LagMonitor;
  const logs: string[] = [];

  function make(limit: LagLimit = { bytes: 100 }): LagMonitor {
    return new LagMonitor({
      limit,
      intervalMillis: INTERVAL,
      topology: () => topology,
      onRound: () => {
        rounds++;
      },
      log: (_level, message) => logs.push(message),
      now: Date.now,
      connect: wal.factory,
    });
  }

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_000_000, toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    wal = new FakeWal();
    wal.primary.set(P1.address, '0/200');
    wal.replay.set(R2.address, '0/200');
    wal.replay.set(R3.address, '0/100');
    topology = applyUpdate(EMPTY_TOPOLOGY, update(1, P1, R2, R3), Date.now());
    rounds = 0;
    logs.length = 0;
    monitor = make();
  });

  afterEach(async () => {
    wal.release();
    await monitor.stop();
    clock.restore();
  });

  it('measures at start, then once per interval: one query per node per round', async () => {
    monitor.start();
    await clock.tickAsync(0);
    assert.equal(rounds, 1);
    assert.equal(wal.queries, 3);
    assert.equal(wal.clients.length, 3, 'one connection per node');
    await clock.tickAsync(INTERVAL);
    assert.equal(rounds, 2);
    assert.equal(wal.queries, 6);
    assert.equal(wal.clients.length, 3, 'connections are kept between rounds');
  });

  it('reports bytes and seconds behind, and excludes over the limit', async () => {
    monitor.start();
    await clock.tickAsync(0);
    let e = monitor.entries(topology.replicas);
    assert.deepEqual(e.get(R2.address), { bytes: 0, seconds: 0, replayLsn: '0/200', sampledAt: Date.now(), excluded: false, measuredBy: 'lag-monitor' });
    assert.equal(e.get(R3.address)!.bytes, 0x100);
    assert.equal(e.get(R3.address)!.excluded, true, '256 bytes > 100');
    wal.primary.set(P1.address, '0/300');
    await clock.tickAsync(INTERVAL);
    await clock.tickAsync(INTERVAL);
    e = monitor.entries(topology.replicas);
    assert.equal(e.get(R2.address)!.bytes, 0x100);
    assert.equal(e.get(R2.address)!.seconds, 0.1, 'behind since the round that first saw 0/300');
    assert.deepEqual([...monitor.replayPositions.keys()], [R2.address, R3.address]);
  });

  it('never overlaps rounds: a slow node delays the next round', async () => {
    wal.hanging.add(R3.address);
    monitor.start();
    await clock.tickAsync(INTERVAL * 5);
    assert.equal(rounds, 0);
    assert.equal(wal.queries, 3, 'no second round while the first is in flight');
    wal.hanging.delete(R3.address);
    wal.release();
    await clock.tickAsync(0);
    assert.equal(rounds, 1);
    await clock.tickAsync(INTERVAL);
    assert.equal(rounds, 2);
  });

  it('drops a failed connection, reconnects next round, and a stale sample is excluded', async () => {
    monitor = make({ seconds: 60 });
    monitor.start();
    await clock.tickAsync(0);
    assert.equal(monitor.entries(topology.replicas).get(R3.address)!.excluded, false);
    wal.failing.add(R3.address);
    await clock.tickAsync(INTERVAL);
    const failed = wal.clients.find((c) => c.node === R3)!;
    assert.equal(failed.ended, true, 'the failed connection is closed');
    assert.equal(monitor.entries(topology.replicas).get(R3.address)!.excluded, false, 'the last sample still counts for a while');
    await clock.tickAsync(3 * INTERVAL + 1000 + INTERVAL);
    assert.equal(monitor.entries(topology.replicas).get(R3.address)!.excluded, true, 'then its lag is unknown');
    assert.ok(wal.clients.filter((c) => c.node === R3).length >= 2, 'it reconnects');
    wal.failing.delete(R3.address);
    await clock.tickAsync(INTERVAL * 2);
    assert.equal(monitor.entries(topology.replicas).get(R3.address)!.excluded, false, 'back once measured');
  });

  it('keeps measuring replicas while the primary is unreachable (receive positions as reference)', async () => {
    monitor.start();
    await clock.tickAsync(0);
    wal.failing.add(P1.address);
    wal.replay.set(R2.address, '0/400');
    await clock.tickAsync(INTERVAL);
    const e = monitor.entries(topology.replicas);
    assert.equal(e.get(R2.address)!.bytes, 0);
    assert.equal(e.get(R3.address)!.bytes, 0x300);
  });

  it('a node not in recovery reports no replay position: unknown, excluded', async () => {
    wal.replay.set(R2.address, null);
    monitor.start();
    await clock.tickAsync(0);
    const e = monitor.entries(topology.replicas).get(R2.address)!;
    assert.equal(e.bytes, undefined);
    assert.equal(e.excluded, true);
  });

  it('closes connections of nodes that left the topology; poke() measures at once', async () => {
    monitor.start();
    await clock.tickAsync(0);
    topology = applyUpdate(topology, update(2, P1, R2), Date.now());
    monitor.poke();
    await clock.tickAsync(0);
    assert.equal(rounds, 2, 'poke ran a round without waiting for the interval');
    assert.equal(wal.clients.find((c) => c.node === R3)!.ended, true);
    assert.deepEqual([...monitor.replayPositions.keys()], [R2.address]);
  });

  it('stop() closes every connection, cancels the timer and reports no more rounds', async () => {
    monitor.start();
    await clock.tickAsync(0);
    await monitor.stop();
    assert.ok(wal.clients.every((c) => c.ended));
    assert.equal(clock.countTimers(), 0);
    await clock.tickAsync(INTERVAL * 3);
    assert.equal(rounds, 1);
    monitor.start();
    monitor.poke();
    await clock.tickAsync(INTERVAL);
    assert.equal(rounds, 1, 'a stopped monitor stays stopped');
  });

  it('stop() during a round waits for it and reports nothing after', async () => {
    wal.hanging.add(R2.address);
    monitor.start();
    await clock.tickAsync(0);
    const stopping = monitor.stop();
    wal.release();
    await stopping;
    assert.equal(rounds, 0);
    assert.ok(wal.clients.every((c) => c.ended));
  });
});

describe('routing/lag-monitor timers', () => {
  it('its timer does not keep the process alive (unref)', async () => {
    const wal = new FakeWal();
    wal.primary.set(P1.address, '0/1');
    const topology = applyUpdate(EMPTY_TOPOLOGY, update(1, P1), Date.now());
    let rounds = 0;
    const monitor = new LagMonitor({
      limit: { bytes: 1 },
      intervalMillis: 60_000,
      topology: () => topology,
      onRound: () => {
        rounds++;
      },
      log: () => undefined,
      now: Date.now,
      connect: wal.factory,
    });
    const spy = sinon.spy(globalThis, 'setTimeout');
    try {
      monitor.start();
      for (let i = 0; i < 50 && spy.getCalls().every((c) => c.args[1] !== 60_000); i++) await new Promise((r) => setImmediate(r));
      assert.equal(rounds, 1);
      const scheduled = spy.getCalls().filter((c) => c.args[1] === 60_000);
      assert.equal(scheduled.length, 1, 'the next round is scheduled');
      assert.equal((scheduled[0]!.returnValue as NodeJS.Timeout).hasRef(), false, 'and holds no ref');
    } finally {
      spy.restore();
    }
    await monitor.stop();
  });
});
