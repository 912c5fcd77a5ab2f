import assert from 'node:assert/strict';
import { replicaTieBreakFor } from '../../../lib/options.js';
import type { DiscoveryMode } from '../../../lib/options.js';
import { selectCaughtUpReplica, selectPrimary, selectReplica } from '../../../lib/topology/select.js';
import type { ReplicaTieBreak } from '../../../lib/topology/select.js';
import { EMPTY_TOPOLOGY, applyUpdate, withReplicaLag } from '../../../lib/topology/snapshot.js';
import { node, update } from '../../support/nodes.js';

const P1 = node('n1', 5001, 'primary', 10);
const R2 = node('n2', 5002, 'replica', 11);
const R3 = node('n3', 5003, 'replica', 12);
const withReplicas = applyUpdate(EMPTY_TOPOLOGY, update(1, P1, R2, R3), 0);
const noReplicas = applyUpdate(EMPTY_TOPOLOGY, update(1, P1), 0);
const nothing = applyUpdate(EMPTY_TOPOLOGY, update(1), 0);

describe('topology/select', () => {
  it('selectPrimary returns the snapshot primary in the primary role', () => {
    assert.deepEqual(selectPrimary(withReplicas), { node: P1, role: 'primary' });
    assert.deepEqual(selectPrimary(nothing), { node: undefined, role: 'primary' });
  });

  const table: Array<{ name: string; load: Record<string, number>; turn: number; expect: string }> = [
    { name: 'least busy wins', load: { '127.0.0.1:5002': 3, '127.0.0.1:5003': 1 }, turn: 0, expect: 'n3' },
    { name: 'least busy wins whatever the turn', load: { '127.0.0.1:5002': 0, '127.0.0.1:5003': 5 }, turn: 1, expect: 'n2' },
    { name: 'ties rotate: turn 0', load: {}, turn: 0, expect: 'n2' },
    { name: 'ties rotate: turn 1', load: {}, turn: 1, expect: 'n3' },
    { name: 'ties rotate: turn 2 wraps', load: {}, turn: 2, expect: 'n2' },
    { name: 'negative turn is safe', load: {}, turn: -1, expect: 'n3' },
  ];
  for (const c of table) {
    it(`selectReplica: ${c.name}`, () => {
      const s = selectReplica(withReplicas, (a) => c.load[a] ?? 0, 'primary', c.turn);
      assert.equal(s.role, 'replica');
      assert.equal(s.node?.name, c.expect);
    });
  }

  it('spreads equal replicas evenly over many selections', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      const s = selectReplica(withReplicas, () => 0, 'primary', i);
      counts.set(s.node!.name, (counts.get(s.node!.name) ?? 0) + 1);
    }
    assert.deepEqual([...counts.entries()].sort(), [['n2', 500], ['n3', 500]]);
  });

  it('no replica: falls back to the primary by default', () => {
    assert.deepEqual(selectReplica(noReplicas, () => 0, 'primary', 0), { node: P1, role: 'primary' });
  });

  it("no replica with readFallback 'fail': no node", () => {
    assert.deepEqual(selectReplica(noReplicas, () => 0, 'fail', 0), { node: undefined, role: 'replica' });
  });

  it('nothing at all: no node either way', () => {
    assert.equal(selectReplica(nothing, () => 0, 'primary', 0).node, undefined);
    assert.equal(selectReplica(nothing, () => 0, 'fail', 0).node, undefined);
  });

  describe("tie break 'listed' (consul.near: the source's order, nearest first)", () => {
    const R4 = node('n4', 5004, 'replica', 13);
    // Consul's near order: n4 nearest, then n2, then n3 (not name or port order).
    const near = applyUpdate(EMPTY_TOPOLOGY, update(1, P1, R4, R2, R3), 0);
    const lag = (excluded: boolean) => ({ bytes: excluded ? 999 : 0, seconds: 0, replayLsn: '0/1', sampledAt: 1, excluded });
    const nearestExcluded = withReplicaLag(near, new Map([[R4.address, lag(true)], [R2.address, lag(false)], [R3.address, lag(false)]]));
    const table: Array<{ name: string; snapshot: typeof near; load: Record<string, number>; turn: number; tieBreak?: ReplicaTieBreak; expect: string }> = [
      { name: 'all idle: the first listed, turn 0', snapshot: near, load: {}, turn: 0, tieBreak: 'listed', expect: 'n4' },
      { name: 'all idle: the first listed, whatever the turn', snapshot: near, load: {}, turn: 7, tieBreak: 'listed', expect: 'n4' },
      { name: 'negative turn: still the first listed', snapshot: near, load: {}, turn: -5, tieBreak: 'listed', expect: 'n4' },
      { name: 'a busier nearest loses to an idle farther one', snapshot: near, load: { '127.0.0.1:5004': 2, '127.0.0.1:5002': 1, '127.0.0.1:5003': 1 }, turn: 1, tieBreak: 'listed', expect: 'n2' },
      { name: 'among the least busy, the nearer wins', snapshot: near, load: { '127.0.0.1:5004': 1, '127.0.0.1:5002': 3, '127.0.0.1:5003': 1 }, turn: 2, tieBreak: 'listed', expect: 'n4' },
      { name: 'an excluded nearest is skipped: the next listed', snapshot: nearestExcluded, load: {}, turn: 0, tieBreak: 'listed', expect: 'n2' },
      { name: "default ('rotate') still rotates over the same list: turn 1", snapshot: near, load: {}, turn: 1, expect: 'n2' },
      { name: "explicit 'rotate': turn 2", snapshot: near, load: {}, turn: 2, tieBreak: 'rotate', expect: 'n3' },
    ];
    for (const c of table) {
      it(`selectReplica: ${c.name}`, () => {
        const s = selectReplica(c.snapshot, (a) => c.load[a] ?? 0, 'primary', c.turn, c.tieBreak);
        assert.equal(s.role, 'replica');
        assert.equal(s.node?.name, c.expect);
      });
    }

    it('sends every read to the nearest while replicas are equally busy', () => {
      const counts = new Map<string, number>();
      for (let i = 0; i < 100; i++) {
        const s = selectReplica(near, () => 0, 'primary', i, 'listed');
        counts.set(s.node!.name, (counts.get(s.node!.name) ?? 0) + 1);
      }
      assert.deepEqual([...counts.entries()], [['n4', 100]]);
    });

    it('no replica: the fallback is unchanged', () => {
      assert.deepEqual(selectReplica(noReplicas, () => 0, 'primary', 3, 'listed'), { node: P1, role: 'primary' });
      assert.deepEqual(selectReplica(noReplicas, () => 0, 'fail', 3, 'listed'), { node: undefined, role: 'replica' });
    });

    const caughtTable: Array<{ name: string; replayed: Record<string, bigint>; canVerify: boolean; tieBreak?: ReplicaTieBreak; turn: number; expect: [string | undefined, boolean] }> = [
      { name: 'all caught up: the nearest, no check', replayed: { '127.0.0.1:5004': 9n, '127.0.0.1:5002': 9n, '127.0.0.1:5003': 9n }, canVerify: true, tieBreak: 'listed', turn: 2, expect: ['n4', false] },
      { name: 'only farther ones caught up: the nearer of those', replayed: { '127.0.0.1:5002': 9n, '127.0.0.1:5003': 9n }, canVerify: true, tieBreak: 'listed', turn: 1, expect: ['n2', false] },
      { name: 'none known: the nearest, to verify', replayed: {}, canVerify: true, tieBreak: 'listed', turn: 1, expect: ['n4', true] },
      { name: "none known, default 'rotate': turn 1 picks the second", replayed: {}, canVerify: true, turn: 1, expect: ['n2', true] },
      { name: 'none known, no verification: the primary', replayed: {}, canVerify: false, tieBreak: 'listed', turn: 0, expect: ['n1', false] },
    ];
    for (const c of caughtTable) {
      it(`selectCaughtUpReplica: ${c.name}`, () => {
        const s = selectCaughtUpReplica(near, () => 0, (a) => c.replayed[a], 5n, c.canVerify, c.turn, c.tieBreak);
        assert.deepEqual([s.node?.name, s.verify], c.expect);
      });
    }
  });

  describe('replicaTieBreakFor (which pools use the near order)', () => {
    const table: Array<{ mode: DiscoveryMode; near: string | undefined; expect: ReplicaTieBreak }> = [
      { mode: 'consul-health', near: '_agent', expect: 'listed' },
      { mode: 'consul-health', near: 'node-a', expect: 'listed' },
      { mode: 'patroni+health', near: '_agent', expect: 'listed' },
      { mode: 'prepared-query', near: '_agent', expect: 'listed' },
      { mode: 'patroni', near: '_agent', expect: 'rotate' },
      { mode: 'static', near: '_agent', expect: 'rotate' },
      { mode: 'consul-health', near: undefined, expect: 'rotate' },
      { mode: 'prepared-query', near: undefined, expect: 'rotate' },
    ];
    for (const c of table) {
      it(`${c.mode} with near ${c.near ?? '(not set)'} → ${c.expect}`, () => assert.equal(replicaTieBreakFor({ mode: c.mode, near: c.near }), c.expect));
    }
  });
});
