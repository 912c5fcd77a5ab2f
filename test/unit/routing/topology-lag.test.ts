import assert from 'node:assert/strict';
import { selectCaughtUpReplica, selectReplica } from '../../../lib/topology/select.js';
import { EMPTY_TOPOLOGY, applyUpdate, withReplicaLag } from '../../../lib/topology/snapshot.js';
import type { ReplicaLag, TopologySnapshot } from '../../../lib/topology/snapshot.js';
import { node, update } from '../../support/nodes.js';

const P1 = node('n1', 5001, 'primary', 10);
const R2 = node('n2', 5002, 'replica', 11);
const R3 = node('n3', 5003, 'replica', 12);
const R4 = node('n4', 5004, 'replica', 13);

function lag(excluded: boolean, bytes: number | undefined = excluded ? 1000 : 0, sampledAt = 1): ReplicaLag {
  return { bytes, seconds: bytes === undefined ? undefined : 0, replayLsn: bytes === undefined ? undefined : '0/1', sampledAt, excluded };
}

function lagMap(entries: Record<string, ReplicaLag>): Map<string, ReplicaLag> {
  return new Map(Object.entries(entries));
}

const base = applyUpdate(EMPTY_TOPOLOGY, update(1, P1, R2, R3), 0);

describe('topology lag (snapshot and selection)', () => {
  describe('withReplicaLag', () => {
    it('without lag, readReplicas is the replicas array itself', () => {
      assert.equal(base.readReplicas, base.replicas);
      assert.equal(base.lag.size, 0);
      assert.equal(EMPTY_TOPOLOGY.readReplicas, EMPTY_TOPOLOGY.replicas);
    });

    it('excluding a replica is a routing change: version + 1, readReplicas shrinks', () => {
      const next = withReplicaLag(base, lagMap({ [R2.address]: lag(true), [R3.address]: lag(false) }));
      assert.equal(next.version, base.version + 1);
      assert.deepEqual(next.readReplicas, [R3]);
      assert.deepEqual(next.replicas, [R2, R3], 'still a replica');
      assert.ok(Object.isFrozen(next) && Object.isFrozen(next.readReplicas));
    });

    it('new numbers with the same excluded set keep version and readReplicas', () => {
      const a = withReplicaLag(base, lagMap({ [R2.address]: lag(true, 1000), [R3.address]: lag(false, 0) }));
      const b = withReplicaLag(a, lagMap({ [R2.address]: lag(true, 5000, 2), [R3.address]: lag(false, 10, 2) }));
      assert.notEqual(b, a);
      assert.equal(b.version, a.version);
      assert.equal(b.readReplicas, a.readReplicas);
      assert.equal(b.lag.get(R2.address)!.bytes, 5000);
    });

    it('equal entries return the same snapshot (no event)', () => {
      const a = withReplicaLag(base, lagMap({ [R2.address]: lag(false), [R3.address]: lag(false) }));
      assert.equal(withReplicaLag(a, lagMap({ [R2.address]: lag(false), [R3.address]: lag(false) })), a);
    });

    it('readmission is a routing change again', () => {
      const out = withReplicaLag(base, lagMap({ [R2.address]: lag(true), [R3.address]: lag(false) }));
      const back = withReplicaLag(out, lagMap({ [R2.address]: lag(false), [R3.address]: lag(false) }));
      assert.equal(back.version, out.version + 1);
      assert.deepEqual(back.readReplicas, [R2, R3]);
    });

    it('ignores entries of addresses that are not replicas', () => {
      const next = withReplicaLag(base, lagMap({ [P1.address]: lag(true), [R2.address]: lag(false), [R3.address]: lag(false) }));
      assert.deepEqual([...next.lag.keys()], [R2.address, R3.address]);
    });

    it('a discovery update keeps the exclusions of replicas that stay', () => {
      const out = withReplicaLag(base, lagMap({ [R2.address]: lag(true), [R3.address]: lag(false) }));
      const grown = applyUpdate(out, update(2, P1, R2, R3, R4), 0);
      assert.deepEqual(grown.readReplicas, [R3, R4], 'R2 still excluded; R4 has no entry yet (the cluster adds one at once)');
      assert.equal(grown.lag, out.lag);
    });
  });

  describe('selectReplica with lag', () => {
    const out = withReplicaLag(base, lagMap({ [R2.address]: lag(true), [R3.address]: lag(false) }));
    const allOut = withReplicaLag(base, lagMap({ [R2.address]: lag(true), [R3.address]: lag(true, undefined) }));
    it('never picks an excluded replica, whatever the load', () => {
      for (let turn = 0; turn < 4; turn++) {
        assert.equal(selectReplica(out, (a) => (a === R3.address ? 100 : 0), 'primary', turn).node, R3);
      }
    });
    it("every replica lagging: readFallback 'primary' reads from the primary", () => {
      assert.deepEqual(selectReplica(allOut, () => 0, 'primary', 0), { node: P1, role: 'primary' });
    });
    it("every replica lagging: readFallback 'fail' finds no node", () => {
      assert.deepEqual(selectReplica(allOut, () => 0, 'fail', 0), { node: undefined, role: 'replica' });
    });
  });

  describe('selectCaughtUpReplica', () => {
    const snap: TopologySnapshot = applyUpdate(EMPTY_TOPOLOGY, update(1, P1, R2, R3, R4), 0);
    const replayed: Record<string, bigint> = { [R2.address]: 500n, [R3.address]: 100n };
    const table: Array<{ name: string; position: bigint; canVerify: boolean; load?: Record<string, number>; snapshot?: TopologySnapshot; expect: { node: string | undefined; role: string; verify: boolean } }> = [
      { name: 'a replica known to have replayed the position, no check', position: 400n, canVerify: true, expect: { node: 'n2', role: 'replica', verify: false } },
      { name: 'the least busy of the caught-up replicas', position: 100n, canVerify: true, load: { [R2.address]: 5 }, expect: { node: 'n3', role: 'replica', verify: false } },
      { name: 'a caught-up replica wins over a less busy unknown one', position: 400n, canVerify: true, load: { [R2.address]: 9 }, expect: { node: 'n2', role: 'replica', verify: false } },
      { name: 'nobody known: verify the least busy replica', position: 600n, canVerify: true, load: { [R2.address]: 2, [R3.address]: 2 }, expect: { node: 'n4', role: 'replica', verify: true } },
      { name: 'nobody known, lag monitor on: the primary', position: 600n, canVerify: false, expect: { node: 'n1', role: 'primary', verify: false } },
      {
        name: 'an excluded replica is never chosen, even if caught up',
        position: 400n,
        canVerify: false,
        snapshot: withReplicaLag(snap, lagMap({ [R2.address]: lag(true), [R3.address]: lag(false), [R4.address]: lag(false) })),
        expect: { node: 'n1', role: 'primary', verify: false },
      },
      {
        name: 'no replica at all: the primary (even with readFallback fail: the session asked for its writes)',
        position: 1n,
        canVerify: true,
        snapshot: applyUpdate(EMPTY_TOPOLOGY, update(1, P1), 0),
        expect: { node: 'n1', role: 'primary', verify: false },
      },
    ];
    for (const c of table) {
      it(c.name, () => {
        const s = selectCaughtUpReplica(c.snapshot ?? snap, (a) => c.load?.[a] ?? 0, (a) => replayed[a], c.position, c.canVerify, 0);
        assert.deepEqual({ node: s.node?.name, role: s.role, verify: s.verify }, c.expect);
      });
    }
  });
});
