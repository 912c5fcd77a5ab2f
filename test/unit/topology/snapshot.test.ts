import assert from 'node:assert/strict';
import {
  EMPTY_TOPOLOGY,
  applyUpdate,
  expireInvalidations,
  invalidateNode,
  markReachable,
  markUnreachable,
  nextInvalidationExpiry,
} from '../../../lib/topology/snapshot.js';
import { node, update } from '../../support/nodes.js';

const P1 = node('n1', 5001, 'primary', 10);
const R2 = node('n2', 5002, 'replica', 11);
const R3 = node('n3', 5003, 'replica', 12);

describe('topology/snapshot', () => {
  it('starts empty and undiscovered', () => {
    assert.equal(EMPTY_TOPOLOGY.discovered, false);
    assert.equal(EMPTY_TOPOLOGY.primary, undefined);
    assert.equal(EMPTY_TOPOLOGY.version, 0);
  });

  it('an empty first answer is still a change (discovered, no primary)', () => {
    const t = applyUpdate(EMPTY_TOPOLOGY, update(5), 0);
    assert.notEqual(t, EMPTY_TOPOLOGY);
    assert.equal(t.discovered, true);
    assert.equal(t.version, 1);
    assert.equal(t.primary, undefined);
  });

  it('classifies primary and replicas and freezes the result', () => {
    const t = applyUpdate(EMPTY_TOPOLOGY, update(5, P1, R2, R3), 0);
    assert.equal(t.primary?.address, '127.0.0.1:5001');
    assert.deepEqual(t.replicas.map((r) => r.name), ['n2', 'n3']);
    assert.ok(Object.isFrozen(t));
    assert.ok(Object.isFrozen(t.replicas));
    assert.throws(() => (t.replicas as unknown as unknown[]).push(R2));
  });

  it('returns the same object when only the index moved', () => {
    const t1 = applyUpdate(EMPTY_TOPOLOGY, update(5, P1, R2), 0);
    const t2 = applyUpdate(t1, update(9, P1, R2), 0);
    assert.equal(t2, t1);
  });

  it('a tag, port or modifyIndex change is a change', () => {
    const t1 = applyUpdate(EMPTY_TOPOLOGY, update(5, P1, R2), 0);
    assert.notEqual(applyUpdate(t1, update(6, P1, { ...R2, modifyIndex: 99 }), 0), t1);
    assert.notEqual(applyUpdate(t1, update(6, P1, node('n2', 5009, 'replica', 11)), 0), t1);
    assert.notEqual(applyUpdate(t1, update(6, P1, { ...R2, tags: ['replica', 'x'] }), 0), t1);
  });

  const switchoverCases: Array<{ name: string; nodes: ReturnType<typeof node>[]; primary: string | undefined; replicas: string[] }> = [
    { name: 'one primary', nodes: [P1, R2], primary: 'n1', replicas: ['n2'] },
    {
      name: 'two primaries during a switchover: the higher ModifyIndex wins',
      nodes: [P1, node('n2', 5002, 'primary', 40), R3],
      primary: 'n2',
      replicas: ['n3'],
    },
    {
      name: 'equal ModifyIndex: the lower address wins (deterministic)',
      nodes: [node('n2', 5002, 'primary', 40), node('n1', 5001, 'primary', 40)],
      primary: 'n1',
      replicas: [],
    },
    { name: 'no primary during a failover', nodes: [R2, R3], primary: undefined, replicas: ['n2', 'n3'] },
    { name: 'standby-leader is neither', nodes: [node('s', 6000, 'other'), R2], primary: undefined, replicas: ['n2'] },
  ];
  for (const c of switchoverCases) {
    it(`selection table: ${c.name}`, () => {
      const t = applyUpdate(EMPTY_TOPOLOGY, update(1, ...c.nodes), 0);
      assert.equal(t.primary?.name, c.primary);
      assert.deepEqual(t.replicas.map((r) => r.name), c.replicas);
    });
  }

  it('invalidating the preferred primary falls back to the other candidate', () => {
    const P2 = node('n2', 5002, 'primary', 40);
    const t1 = applyUpdate(EMPTY_TOPOLOGY, update(1, P1, P2), 0);
    assert.equal(t1.primary?.name, 'n2');
    const t2 = invalidateNode(t1, P2.address, 0, 1000);
    assert.equal(t2.primary?.name, 'n1');
    assert.equal(t2.version, t1.version + 1);
    assert.equal(nextInvalidationExpiry(t2), 1000);
  });

  it('invalidating a node that is not a primary candidate changes nothing', () => {
    const t1 = applyUpdate(EMPTY_TOPOLOGY, update(1, P1, R2), 0);
    assert.equal(invalidateNode(t1, R2.address, 0, 1000), t1);
    assert.equal(invalidateNode(t1, '10.0.0.1:1', 0, 1000), t1);
  });

  it('an invalidation survives an unchanged re-answer and expires with time', () => {
    const t1 = invalidateNode(applyUpdate(EMPTY_TOPOLOGY, update(1, P1, R2), 0), P1.address, 0, 1000);
    assert.equal(t1.primary, undefined);
    const t2 = applyUpdate(t1, update(2, P1, R2), 500);
    assert.equal(t2, t1, 'same nodes, invalidation still running: no change');
    assert.equal(expireInvalidations(t2, 999), t2);
    const t3 = expireInvalidations(t2, 1000);
    assert.equal(t3.primary?.name, 'n1');
    assert.equal(t3.invalidated.size, 0);
  });

  it('re-registration (new ModifyIndex) clears the invalidation at once', () => {
    const t1 = invalidateNode(applyUpdate(EMPTY_TOPOLOGY, update(1, P1, R2), 0), P1.address, 0, 60_000);
    const t2 = applyUpdate(t1, update(2, { ...P1, modifyIndex: 77 }, R2), 10);
    assert.equal(t2.primary?.name, 'n1');
    assert.equal(t2.invalidated.size, 0);
  });

  it('a node that stops being primary loses its invalidation', () => {
    const t1 = invalidateNode(applyUpdate(EMPTY_TOPOLOGY, update(1, P1, R2), 0), P1.address, 0, 60_000);
    const t2 = applyUpdate(t1, update(2, node('n1', 5001, 'replica', 10), node('n2', 5002, 'primary', 50)), 10);
    assert.equal(t2.invalidated.size, 0);
    assert.equal(t2.primary?.name, 'n2');
    assert.deepEqual(t2.replicas.map((r) => r.name), ['n1']);
  });

  it('a node tagged both replica and primary at one address is never its own replica', () => {
    const both = node('n1', 5001, 'primary', 10);
    const t = applyUpdate(EMPTY_TOPOLOGY, update(1, both, { ...both, id: 'x', role: 'replica', tags: ['replica'] }), 0);
    assert.equal(t.primary?.name, 'n1');
    assert.equal(t.replicas.length, 0);
  });

  describe('unreachable marks (dead-peer probe)', () => {
    const t = applyUpdate(EMPTY_TOPOLOGY, update(5, P1, R2, R3), 0);

    it('an unreachable primary is no candidate; an unreachable replica serves no reads', () => {
      const a = markUnreachable(t, P1.address, 100, 'ETIMEDOUT');
      assert.equal(a.primary, undefined);
      assert.equal(a.version, t.version + 1);
      assert.deepEqual(a.unreachable.get(P1.address), { since: 100, reason: 'ETIMEDOUT' });
      const b = markUnreachable(a, R2.address, 200, 'no answer within 1000 ms');
      assert.deepEqual(b.replicas.map((r) => r.name), ['n3']);
      assert.deepEqual(b.readReplicas.map((r) => r.name), ['n3']);
      assert.deepEqual(b.nodes.map((n) => n.name), ['n1', 'n2', 'n3'], 'still listed as discovery said');
    });

    it('marking twice, or a node not listed, changes nothing', () => {
      const a = markUnreachable(t, P1.address, 100, 'x');
      assert.equal(markUnreachable(a, P1.address, 200, 'y'), a);
      assert.equal(markUnreachable(t, '127.0.0.1:9', 100, 'x'), t);
      assert.equal(markReachable(t, P1.address, 100), t);
    });

    it('survives discovery answers that still list the node; dropped when the node leaves them', () => {
      const a = markUnreachable(t, P1.address, 100, 'x');
      const again = applyUpdate(a, update(6, P1, R2, R3), 200);
      assert.equal(again, a, 'the same answer is no change');
      assert.equal(again.primary, undefined);
      const gone = applyUpdate(a, update(7, R2, R3), 300);
      assert.equal(gone.unreachable.size, 0);
      const back = applyUpdate(gone, update(8, P1, R2, R3), 400);
      assert.equal(back.primary?.address, P1.address, 'a re-listed node starts reachable');
    });

    it('markReachable restores routing', () => {
      const a = markUnreachable(t, R2.address, 100, 'x');
      const b = markReachable(a, R2.address, 200);
      assert.deepEqual(b.replicas.map((r) => r.name), ['n2', 'n3']);
      assert.equal(b.unreachable.size, 0);
      assert.ok(b.version > a.version);
    });
  });
});
