import assert from 'node:assert/strict';
import { FailoverTiming } from '../../../lib/topology/failover-timing.js';
import { EMPTY_TOPOLOGY, applyUpdate } from '../../../lib/topology/snapshot.js';
import { node, update } from '../../support/nodes.js';

describe('FailoverTiming', () => {
  const a = node('a', 5432, 'primary');
  const b = node('b', 5433, 'primary');
  const withA = applyUpdate(EMPTY_TOPOLOGY, update(1, a, node('b', 5433, 'replica')), 0);
  const withB = applyUpdate(withA, update(2, node('a', 5432, 'replica'), b), 0);
  const none = applyUpdate(withA, update(3, node('b', 5433, 'replica')), 0);

  it('the first confirmed primary is no failover', () => {
    const t = new FailoverTiming();
    t.topologyChanged(EMPTY_TOPOLOGY, withA, 100);
    assert.equal(t.confirmed(a, 150), undefined);
    assert.equal(t.confirmed(a, 200), undefined, 'the same primary again: still none');
  });

  it('measures from the first failed attempt on the old primary when it came before the topology change', () => {
    const t = new FailoverTiming();
    t.topologyChanged(EMPTY_TOPOLOGY, withA, 0);
    t.confirmed(a, 10);
    t.trouble(1000);
    t.trouble(1100); // a later sign does not move the start
    t.topologyChanged(withA, withB, 1500);
    const e = t.confirmed(b, 1600);
    assert.deepEqual(e, { from: a, to: b, durationMillis: 600, sinceTopologyChangeMillis: 100 });
  });

  it('measures from the topology change that removed the old primary when nothing failed before', () => {
    const t = new FailoverTiming();
    t.topologyChanged(EMPTY_TOPOLOGY, withA, 0);
    t.confirmed(a, 10);
    t.topologyChanged(withA, none, 2000); // primary gone: trouble starts
    t.topologyChanged(none, withB, 2500); // new primary named
    assert.deepEqual(t.confirmed(b, 2700), { from: a, to: b, durationMillis: 700, sinceTopologyChangeMillis: 200 });
  });

  it('a confirmation ends the trouble: the next failover is measured afresh', () => {
    const t = new FailoverTiming();
    t.topologyChanged(EMPTY_TOPOLOGY, withA, 0);
    t.confirmed(a, 10);
    t.trouble(50); // a conflict-free blip on a, then a is confirmed again
    assert.equal(t.confirmed(a, 60), undefined);
    t.topologyChanged(withA, withB, 5000);
    assert.equal(t.confirmed(b, 5100)?.durationMillis, 100);
  });
});
