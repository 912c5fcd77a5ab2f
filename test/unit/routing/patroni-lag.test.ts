/**
 * The byte lag limit fed by Patroni's member keys: the pure position and lag functions
 * (table-driven), the choice between them and the lag monitor, and the Cluster wiring
 * (fake source, fake monitor clients that must never be used).
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import sinon from 'sinon';
import { Cluster } from '../../../lib/cluster.js';
import type { ClusterSettings } from '../../../lib/cluster.js';
import { mergeTopologies } from '../../../lib/discovery/combined-source.js';
import type { DiscoveryListener, DiscoverySource } from '../../../lib/discovery/discovery-source.js';
import { parsePatroniKv, patroniTopology, patroniWalPositions } from '../../../lib/discovery/patroni-kv.js';
import type { LagEvent, TopologyEvent } from '../../../lib/events.js';
import { chooseLagMeasurement, patroniLagBytes, patroniLagEntries } from '../../../lib/routing/lag.js';
import type { LagLimit } from '../../../lib/routing/lag.js';
import type { DiscoveredNode, PatroniMemberInfo, PatroniWalPositions, TopologyUpdate } from '../../../lib/topology/node.js';
import { node } from '../../support/nodes.js';
import { FakeWal } from './fake-monitor-clients.js';

/** A node carrying Patroni member info. */
function member(name: string, port: number, role: DiscoveredNode['role'], info: Partial<PatroniMemberInfo>): DiscoveredNode {
  return {
    ...node(name, port, role),
    patroni: { member: name, role: 'replica', state: 'running', leader: false, noloadbalance: false, nofailover: false, ...info },
  };
}

const addr = (port: number): string => `127.0.0.1:${port}`;

function positions(latest: number | undefined, members: Record<number, number>): PatroniWalPositions {
  return { latest, members: new Map(Object.entries(members).map(([port, lsn]) => [addr(Number(port)), lsn])) };
}

describe('replica lag from Patroni member keys', () => {
  describe('patroniWalPositions (pure)', () => {
    const table: Array<{ name: string; nodes: DiscoveredNode[]; latest: number | undefined; members: Record<number, number> }> = [
      {
        name: 'the leader is the reference when it is ahead',
        nodes: [
          member('n1', 5001, 'primary', { role: 'master', leader: true, xlogLocation: 1000 }),
          member('n2', 5002, 'replica', { xlogLocation: 400 }),
          member('n3', 5003, 'replica', { xlogLocation: 900 }),
        ],
        latest: 1000,
        members: { 5001: 1000, 5002: 400, 5003: 900 },
      },
      {
        name: 'a running replica that wrote its key after the leader raises the reference',
        nodes: [member('n1', 5001, 'primary', { role: 'master', leader: true, xlogLocation: 1000 }), member('n2', 5002, 'replica', { xlogLocation: 1200 })],
        latest: 1200,
        members: { 5001: 1000, 5002: 1200 },
      },
      {
        name: 'no leader key (election): the running replicas still give a reference',
        nodes: [member('n2', 5002, 'replica', { xlogLocation: 700 }), member('n3', 5003, 'replica', { xlogLocation: 650 })],
        latest: 700,
        members: { 5002: 700, 5003: 650 },
      },
      {
        name: 'a pending leader (key taken, member key still says replica) counts',
        nodes: [member('n2', 5002, 'replica', { leader: true, xlogLocation: 800 }), member('n3', 5003, 'replica', { xlogLocation: 500 })],
        latest: 800,
        members: { 5002: 800, 5003: 500 },
      },
      {
        name: 'a demoted or stale master without the key, a stopped replica, a crashed member: own entry only',
        nodes: [
          member('n1', 5001, 'other', { role: 'demoted', xlogLocation: 5000 }),
          member('n4', 5004, 'other', { role: 'master', xlogLocation: 6000 }),
          member('n5', 5005, 'other', { role: 'replica', state: 'stopped', xlogLocation: 7000 }),
          member('n6', 5006, 'other', { role: 'replica', state: 'crashed', xlogLocation: 8000 }),
          member('n2', 5002, 'primary', { role: 'master', leader: true, xlogLocation: 900 }),
        ],
        latest: 900,
        members: { 5001: 5000, 5004: 6000, 5005: 7000, 5006: 8000, 5002: 900 },
      },
      {
        name: 'a noloadbalance replica (role other in the topology) still counts for the reference',
        nodes: [member('n1', 5001, 'primary', { role: 'master', leader: true, xlogLocation: 100 }), member('n2', 5002, 'other', { xlogLocation: 300, noloadbalance: true })],
        latest: 300,
        members: { 5001: 100, 5002: 300 },
      },
      {
        name: 'members without xlog_location are absent; none at all: latest unknown',
        nodes: [member('n1', 5001, 'primary', { role: 'master', leader: true }), member('n2', 5002, 'replica', {})],
        latest: undefined,
        members: {},
      },
      { name: 'nodes without Patroni info are ignored', nodes: [node('n1', 5001, 'primary'), node('n2', 5002, 'replica')], latest: undefined, members: {} },
    ];
    for (const c of table) {
      it(c.name, () => {
        const p = patroniWalPositions(c.nodes);
        assert.equal(p.latest, c.latest);
        assert.deepEqual(Object.fromEntries(p.members), Object.fromEntries(Object.entries(c.members).map(([port, v]) => [addr(Number(port)), v])));
        assert.ok(Object.isFrozen(p));
      });
    }

    it('patroniTopology reports the positions of the KV answer', () => {
      const kv = (key: string, value: unknown): Record<string, unknown> => ({
        Key: `service/pglab/${key}`,
        CreateIndex: 5,
        Value: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64'),
      });
      const conn = (port: number): string => `postgres://127.0.0.1:${port}/postgres`;
      const view = parsePatroniKv(
        [
          kv('leader', 'node1'),
          kv('members/node1', { conn_url: conn(5001), role: 'master', state: 'running', xlog_location: 90_000, timeline: 2 }),
          kv('members/node2', { conn_url: conn(5002), role: 'replica', state: 'running', xlog_location: 70_000, timeline: 2 }),
          kv('status', { optime: 90_000 }),
        ],
        'service/pglab/',
      );
      const t = patroniTopology(view, { scope: 'pglab' });
      assert.equal(t.walPositions.latest, 90_000);
      assert.equal(patroniLagBytes(t.walPositions, addr(5002)), 20_000);
    });
  });

  describe('patroniLagBytes (pure)', () => {
    const table: Array<{ name: string; positions: PatroniWalPositions | undefined; port: number; expect: number | undefined }> = [
      { name: 'behind: latest − own', positions: positions(1000, { 5002: 400 }), port: 5002, expect: 600 },
      { name: 'caught up', positions: positions(1000, { 5002: 1000 }), port: 5002, expect: 0 },
      { name: 'ahead of a stale reference: 0, never negative', positions: positions(1000, { 5002: 1500 }), port: 5002, expect: 0 },
      { name: 'the replica reported no position: unknown', positions: positions(1000, {}), port: 5002, expect: undefined },
      { name: 'no reference: unknown', positions: positions(undefined, { 5002: 400 }), port: 5002, expect: undefined },
      { name: 'no positions at all (not a Patroni update): unknown', positions: undefined, port: 5002, expect: undefined },
      { name: 'large positions (past 2^32) stay exact', positions: positions(2 ** 40 + 5, { 5002: 2 ** 40 }), port: 5002, expect: 5 },
    ];
    for (const c of table) it(c.name, () => assert.equal(patroniLagBytes(c.positions, addr(c.port)), c.expect));
  });

  describe('patroniLagEntries (pure)', () => {
    const R2 = node('n2', 5002, 'replica');
    const R3 = node('n3', 5003, 'replica');
    const R4 = node('n4', 5004, 'replica');
    const table: Array<{ name: string; positions: PatroniWalPositions | undefined; limit: LagLimit; expect: Record<string, { bytes: number | undefined; excluded: boolean; patroniLsn: string | undefined }> }> = [
      {
        name: 'within, at and over the limit; unknown is excluded',
        positions: positions(0x1000, { 5002: 0x1000, 5003: 0x0f00, 5004: 0x0eff }),
        limit: { bytes: 0x100 },
        expect: {
          n2: { bytes: 0, excluded: false, patroniLsn: '0/1000' },
          n3: { bytes: 0x100, excluded: false, patroniLsn: '0/F00' },
          n4: { bytes: 0x101, excluded: true, patroniLsn: '0/EFF' },
        },
      },
      {
        name: 'a replica without a member position is excluded',
        positions: positions(0x1000, { 5002: 0x1000, 5003: 0x1000 }),
        limit: { bytes: 0 },
        expect: { n2: { bytes: 0, excluded: false, patroniLsn: '0/1000' }, n3: { bytes: 0, excluded: false, patroniLsn: '0/1000' }, n4: { bytes: undefined, excluded: true, patroniLsn: undefined } },
      },
      {
        name: 'no positions: every replica unknown, excluded',
        positions: undefined,
        limit: { bytes: 1 << 20 },
        expect: { n2: { bytes: undefined, excluded: true, patroniLsn: undefined }, n3: { bytes: undefined, excluded: true, patroniLsn: undefined }, n4: { bytes: undefined, excluded: true, patroniLsn: undefined } },
      },
      {
        name: 'positions past 4 GiB are shown in X/Y form',
        positions: positions(2 ** 33 + 16, { 5002: 2 ** 33, 5003: 2 ** 33 + 16, 5004: 2 ** 32 }),
        limit: { bytes: 16 },
        expect: { n2: { bytes: 16, excluded: false, patroniLsn: '2/0' }, n3: { bytes: 0, excluded: false, patroniLsn: '2/10' }, n4: { bytes: 2 ** 32 + 16, excluded: true, patroniLsn: '1/0' } },
      },
    ];
    for (const c of table) {
      it(c.name, () => {
        const entries = patroniLagEntries([R2, R3, R4], c.positions, c.limit, 7000);
        assert.deepEqual([...entries.keys()], [R2.address, R3.address, R4.address]);
        for (const r of [R2, R3, R4]) {
          const e = entries.get(r.address)!;
          const want = c.expect[r.name]!;
          assert.deepEqual(
            e,
            {
              bytes: want.bytes,
              seconds: undefined,
              replayLsn: undefined,
              sampledAt: want.bytes === undefined ? undefined : 7000,
              excluded: want.excluded,
              measuredBy: 'patroni-kv',
              patroniLsn: want.patroniLsn,
            },
            r.name,
          );
          assert.ok(Object.isFrozen(e));
        }
      });
    }
  });

  describe('chooseLagMeasurement (pure)', () => {
    const table: Array<{ limit: LagLimit | undefined; mode: string | undefined; expect: string | undefined }> = [
      { limit: undefined, mode: 'patroni', expect: undefined },
      { limit: { bytes: 1 }, mode: 'patroni', expect: 'patroni-kv' },
      { limit: { bytes: 1 }, mode: 'patroni+health', expect: 'patroni-kv' },
      { limit: { bytes: 1, seconds: 5 }, mode: 'patroni', expect: 'lag-monitor' },
      { limit: { seconds: 5 }, mode: 'patroni+health', expect: 'lag-monitor' },
      { limit: { bytes: 1 }, mode: 'consul-health', expect: 'lag-monitor' },
      { limit: { bytes: 1 }, mode: 'prepared-query', expect: 'lag-monitor' },
      { limit: { bytes: 1 }, mode: 'static', expect: 'lag-monitor' },
      { limit: { bytes: 1 }, mode: undefined, expect: 'lag-monitor' },
    ];
    for (const c of table) {
      it(`${JSON.stringify(c.limit)} with ${c.mode ?? 'a custom source'} → ${c.expect ?? 'nothing'}`, () => {
        assert.equal(chooseLagMeasurement(c.limit, c.mode), c.expect);
      });
    }
  });

  it('mergeTopologies (patroni+health) carries the KV positions; health replicas are matched by address', () => {
    const leader = member('n1', 5001, 'primary', { role: 'master', leader: true, xlogLocation: 900 });
    const kv: TopologyUpdate = { source: 'patroni', index: 3, nodes: [leader], walPositions: positions(900, { 5001: 900, 5002: 100 }) };
    const health: TopologyUpdate = { source: 'consul-health', index: 8, nodes: [node('n2', 5002, 'replica')] };
    const merged = mergeTopologies(kv, health, 'patroni+health');
    assert.equal(merged.walPositions, kv.walPositions);
    assert.equal(patroniLagBytes(merged.walPositions, merged.nodes[1]!.address), 800);
    assert.equal(mergeTopologies({ ...kv, walPositions: undefined }, health, 'x').walPositions, undefined);
    assert.equal('walPositions' in mergeTopologies({ source: 'a', index: 1, nodes: [] }, health, 'x'), false, 'no key added for sources without positions');
  });
});

class FakeSource implements DiscoverySource {
  listener: DiscoveryListener | undefined;
  requestCount = 0;
  start(listener: DiscoveryListener): void {
    this.listener = listener;
  }
  refresh(): void {}
  async stop(): Promise<void> {}
}

describe('Cluster with a byte limit measured from Patroni KV positions', () => {
  let clock: sinon.SinonFakeTimers;
  let wal: FakeWal;
  let source: FakeSource;
  let cluster: Cluster;
  let topologyEvents: TopologyEvent[];
  let lagEvents: LagEvent[];
  const LIMIT = 1000;

  /** A Patroni KV answer: leader n1 at `leader`, replicas n2/n3 (and optionally n4) at their positions. */
  function push(index: number, leader: number, replicas: Record<string, number | undefined>): void {
    const nodes = [
      member('n1', 5001, 'primary', { role: 'master', leader: true, xlogLocation: leader }),
      ...Object.entries(replicas).map(([name, lsn]) => member(name, 5000 + Number(name.slice(1)), 'replica', { xlogLocation: lsn })),
    ];
    source.listener!.onUpdate({ source: 'patroni', index, nodes, walPositions: patroniWalPositions(nodes) });
  }

  const names = (list: readonly DiscoveredNode[]): string[] => list.map((n) => n.name);

  function make(extra: Partial<ClusterSettings> = {}): Cluster {
    const emitter = new EventEmitter();
    emitter.on('topology', (e: TopologyEvent) => topologyEvents.push(e));
    emitter.on('lag', (e: LagEvent) => lagEvents.push(e));
    const c = new Cluster(
      {
        pg: {},
        failoverTimeoutMillis: 1000,
        readFallback: 'primary',
        retryInitialDelayMillis: 10,
        retryMaxDelayMillis: 100,
        invalidationMillis: 1000,
        maxReplicaLag: { bytes: LIMIT },
        lagMeasurement: 'patroni-kv',
        lagCheckIntervalMillis: 100,
        lagMonitorClients: wal.factory,
        ...extra,
      },
      source,
      { pool: emitter, primary: new EventEmitter(), replica: new EventEmitter() },
      () => undefined,
    );
    c.start();
    return c;
  }

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 9_000_000, toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    wal = new FakeWal();
    source = new FakeSource();
    topologyEvents = [];
    lagEvents = [];
    cluster = make();
  });

  afterEach(async () => {
    await cluster.end();
    clock.restore();
  });

  it('no monitor: no connection is ever created, whatever happens', async () => {
    push(1, 5000, { n2: 5000, n3: 5000 });
    await clock.tickAsync(1000);
    push(2, 9000, { n2: 5000, n3: 9000 });
    await clock.tickAsync(1000);
    assert.equal(wal.clients.length, 0);
    assert.equal(cluster.lagMonitored, false);
  });

  it('the first answer already decides: replicas within the limit read at once, a lagging one never does', () => {
    push(1, 5000, { n2: 5000, n3: 3000 });
    assert.deepEqual(names(cluster.topology.readReplicas), ['n2']);
    assert.equal(topologyEvents.length, 1, 'one topology event for the first answer');
    const e = cluster.topology.lag.get(addr(5003))!;
    assert.deepEqual(
      { bytes: e.bytes, excluded: e.excluded, measuredBy: e.measuredBy, patroniLsn: e.patroniLsn, sampledAt: e.sampledAt },
      { bytes: 2000, excluded: true, measuredBy: 'patroni-kv', patroniLsn: '0/BB8', sampledAt: Date.now() },
    );
    for (let i = 0; i < 4; i++) assert.equal(cluster.select('replica').node?.name, 'n2');
  });

  it('WAL movement within the limit: lag events, no topology event; the snapshot shows the latest positions', () => {
    push(1, 5000, { n2: 5000, n3: 5000 });
    const t = topologyEvents.length;
    const version = cluster.topology.version;
    const nodes = cluster.topology.nodes;
    for (let i = 1; i <= 5; i++) push(1 + i, 5000 + i * 100, { n2: 5000 + i * 100 - 50, n3: 5000 + (i - 1) * 100 });
    assert.equal(topologyEvents.length, t, 'no topology event for WAL movement');
    assert.equal(lagEvents.length, 5 + 1, 'one lag event per answer (plus the first)');
    assert.equal(cluster.topology.version, version);
    assert.equal(cluster.topology.nodes, nodes, 'the nodes (and their stale xlogLocation) are untouched');
    assert.equal(cluster.topology.lag.get(addr(5002))!.bytes, 50);
    assert.equal(cluster.topology.lag.get(addr(5003))!.bytes, 100);
    assert.equal(cluster.topology.lag.get(addr(5003))!.patroniLsn, '0/1518');
  });

  it('an identical answer changes nothing: no event at all', () => {
    push(1, 5000, { n2: 5000, n3: 5000 });
    const before = cluster.topology;
    const events = topologyEvents.length + lagEvents.length;
    push(2, 5000, { n2: 5000, n3: 5000 });
    assert.equal(cluster.topology, before);
    assert.equal(topologyEvents.length + lagEvents.length, events);
  });

  it('crossing the limit is a topology change both ways; selection follows', () => {
    push(1, 5000, { n2: 5000, n3: 5000 });
    const t = topologyEvents.length;
    push(2, 8000, { n2: 8000, n3: 5000 });
    assert.deepEqual(names(cluster.topology.readReplicas), ['n2']);
    assert.equal(topologyEvents.length, t + 1);
    assert.equal(topologyEvents.at(-1)!.current.version, topologyEvents.at(-1)!.previous.version + 1);
    for (let i = 0; i < 4; i++) assert.equal(cluster.select('replica').node?.name, 'n2');
    push(3, 9000, { n2: 9000, n3: 4000 });
    assert.equal(topologyEvents.length, t + 1, 'still excluded, further behind: lag only');
    push(4, 9000, { n2: 9000, n3: 8500 });
    assert.deepEqual(names(cluster.topology.readReplicas), ['n2', 'n3']);
    assert.equal(topologyEvents.length, t + 2, 'readmission is a topology event');
  });

  it('a replica that joins without a position is excluded until its key reports one', () => {
    push(1, 5000, { n2: 5000 });
    push(2, 5000, { n2: 5000, n4: undefined });
    assert.deepEqual(names(cluster.topology.replicas), ['n2', 'n4']);
    assert.deepEqual(names(cluster.topology.readReplicas), ['n2']);
    assert.equal(cluster.topology.lag.get(addr(5004))!.bytes, undefined);
    push(3, 5000, { n2: 5000, n4: 5000 });
    assert.deepEqual(names(cluster.topology.readReplicas), ['n2', 'n4']);
    push(4, 5000, { n2: 5000 });
    assert.deepEqual([...cluster.topology.lag.keys()], [addr(5002)], 'a departed replica loses its entry');
  });

  it('the same positions re-sent (patroni+health merges them into every health answer) keep their read time: no lag event', async () => {
    const nodes = [member('n1', 5001, 'primary', { role: 'master', leader: true, xlogLocation: 5000 }), member('n2', 5002, 'replica', { xlogLocation: 4000 })];
    const walPositions = patroniWalPositions(nodes);
    source.listener!.onUpdate({ source: 'patroni+health', index: 1, nodes, walPositions });
    const readAt = Date.now();
    const lagCount = lagEvents.length;
    await clock.tickAsync(500);
    source.listener!.onUpdate({ source: 'patroni+health', index: 2, nodes, walPositions });
    assert.equal(cluster.topology.lag.get(addr(5002))!.sampledAt, readAt);
    assert.equal(lagEvents.length, lagCount);
    source.listener!.onUpdate({ source: 'patroni+health', index: 3, nodes, walPositions: patroniWalPositions(nodes) });
    assert.equal(cluster.topology.lag.get(addr(5002))!.sampledAt, readAt + 500, 'a new KV answer is a new reading');
    assert.equal(lagEvents.length, lagCount + 1);
  });

  it('read-your-writes still verifies replicas (KV positions are not replay positions)', () => {
    push(1, 5000, { n2: 5000, n3: 5000 });
    const s = cluster.selectCaughtUp(5000n);
    assert.deepEqual({ role: s.role, verify: s.verify }, { role: 'replica', verify: true });
  });

  it("with the monitor chosen instead ('lag-monitor'), KV positions are ignored and the monitor measures", async () => {
    await cluster.end();
    cluster = make({ lagMeasurement: 'lag-monitor' });
    for (const p of [5001]) wal.primary.set(addr(p), '0/100');
    for (const p of [5002, 5003]) wal.replay.set(addr(p), '0/100');
    push(1, 5000, { n2: 5000, n3: 1 });
    assert.deepEqual(names(cluster.topology.readReplicas), [], 'unmeasured until the first round');
    await clock.tickAsync(0);
    assert.ok(wal.clients.length > 0);
    assert.deepEqual(names(cluster.topology.readReplicas), ['n2', 'n3'], 'n3 is 4999 bytes behind by KV, but the monitor says caught up');
    assert.equal(cluster.topology.lag.get(addr(5003))!.measuredBy, 'lag-monitor');
  });
});
