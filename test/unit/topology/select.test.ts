import assert from 'node:assert/strict';
import { selectPrimary, selectReplica } from '../../../lib/topology/select.js';
import { EMPTY_TOPOLOGY, applyUpdate } from '../../../lib/topology/snapshot.js';
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
});
