import assert from 'node:assert/strict';
import { CombinedSource, mergeTopologies } from '../../../lib/discovery/combined-source.js';
import type { DiscoveryListener, DiscoverySource } from '../../../lib/discovery/discovery-source.js';
import type { DiscoveredNode, NodeRole, TopologyUpdate } from '../../../lib/topology/node.js';
import { EMPTY_TOPOLOGY, applyUpdate } from '../../../lib/topology/snapshot.js';
import { RecordingListener } from './fake-consul.js';

function node(name: string, port: number, role: NodeRole, extra: Partial<DiscoveredNode> = {}): DiscoveredNode {
  return { id: `pglab/${name}`, name, host: '10.0.0.1', port, address: `10.0.0.1:${port}`, role, tags: [], modifyIndex: 1, ...extra };
}

const kvUpdate = (nodes: DiscoveredNode[], index = 10): TopologyUpdate => ({ source: 'patroni', index, nodes });
const healthUpdate = (nodes: DiscoveredNode[], index = 20): TopologyUpdate => ({ source: 'consul-health', index, nodes });
const summary = (u: TopologyUpdate): Array<[string, string]> => u.nodes.map((n) => [n.name, n.role]);

/** A source driven by the test. */
class ManualSource implements DiscoverySource {
  listener: DiscoveryListener | undefined;
  refreshes = 0;
  stopped = false;
  requestCount = 0;
  start(listener: DiscoveryListener): void {
    this.listener = listener;
  }
  refresh(): void {
    this.refreshes += 1;
  }
  stop(): Promise<void> {
    this.stopped = true;
    return Promise.resolve();
  }
}

describe('CombinedSource (patroni+health)', () => {
  describe('mergeTopologies', () => {
    const table: ReadonlyArray<[string, DiscoveredNode[], DiscoveredNode[], Array<[string, string]>]> = [
      [
        'steady state: leader from KV, replicas from health',
        [node('n1', 1, 'primary'), node('n2', 2, 'replica'), node('n3', 3, 'replica')],
        [node('n1', 1, 'primary'), node('n2', 2, 'replica'), node('n3', 3, 'replica')],
        [['n1', 'primary'], ['n2', 'replica'], ['n3', 'replica']],
      ],
      [
        'switchover: key moved to n2, health still lists n1 as a passing primary and n2 as replica',
        [node('n1', 1, 'other'), node('n2', 2, 'primary'), node('n3', 3, 'replica')],
        [node('n1', 1, 'primary'), node('n2', 2, 'replica'), node('n3', 3, 'replica')],
        [['n2', 'primary'], ['n1', 'other'], ['n3', 'replica']],
      ],
      [
        'no leader key: no primary, even if health still lists one',
        [node('n2', 2, 'replica')],
        [node('n1', 1, 'primary'), node('n2', 2, 'replica')],
        [['n1', 'other'], ['n2', 'replica']],
      ],
      [
        'a replica failing its health check is not read from even if KV says running',
        [node('n1', 1, 'primary'), node('n2', 2, 'replica'), node('n3', 3, 'replica')],
        [node('n1', 1, 'primary'), node('n3', 3, 'replica')],
        [['n1', 'primary'], ['n3', 'replica']],
      ],
      [
        'KV noloadbalance wins over a passing health entry',
        [node('n1', 1, 'primary'), node('n2', 2, 'other', { patroni: { member: 'n2', role: 'replica', state: 'running', leader: false, noloadbalance: true, nofailover: false } })],
        [node('n1', 1, 'primary'), node('n2', 2, 'replica')],
        [['n1', 'primary'], ['n2', 'other']],
      ],
      ['nothing from health: the leader only', [node('n1', 1, 'primary')], [], [['n1', 'primary']]],
    ];
    for (const [name, kv, health, expected] of table) {
      it(name, () => {
        const merged = mergeTopologies(kvUpdate(kv), healthUpdate(health), 'patroni+health');
        assert.deepEqual(summary(merged), expected);
        assert.equal(merged.source, 'patroni+health');
        assert.equal(merged.index, 20, 'the larger index');
        const snapshot = applyUpdate(EMPTY_TOPOLOGY, merged, 0);
        assert.ok(snapshot.primaryCandidates.length <= 1, 'never two primary candidates');
      });
    }

    it('re-roles without touching the input nodes', () => {
      const stale = node('n1', 1, 'primary');
      const merged = mergeTopologies(kvUpdate([]), healthUpdate([stale]), 'x');
      assert.equal(stale.role, 'primary');
      assert.equal(merged.nodes[0]?.role, 'other');
      assert.ok(Object.isFrozen(merged.nodes[0]));
    });
  });

  describe('the source', () => {
    let kv: ManualSource;
    let health: ManualSource;
    let listener: RecordingListener;
    let source: CombinedSource;

    beforeEach(() => {
      kv = new ManualSource();
      health = new ManualSource();
      listener = new RecordingListener();
      source = new CombinedSource(kv, health);
      source.start(listener);
    });

    it('reports only once both sources answered, then on every answer of either', () => {
      kv.listener!.onUpdate(kvUpdate([node('n1', 1, 'primary')]));
      assert.equal(listener.updates.length, 0);
      health.listener!.onUpdate(healthUpdate([node('n2', 2, 'replica')]));
      assert.deepEqual(summary(listener.last), [['n1', 'primary'], ['n2', 'replica']]);
      kv.listener!.onUpdate(kvUpdate([node('n2', 2, 'primary')], 11));
      assert.deepEqual(summary(listener.last), [['n2', 'primary']]);
      health.listener!.onUpdate(healthUpdate([node('n1', 1, 'replica'), node('n2', 2, 'replica')], 21));
      assert.deepEqual(summary(listener.last), [['n2', 'primary'], ['n1', 'replica']]);
      assert.equal(listener.updates.length, 3);
    });

    it('passes on both sources’ errors and skipped entries', () => {
      kv.listener!.onError(new Error('kv down'), { attempt: 1, retryInMillis: 50 });
      health.listener!.onError(new Error('health down'), { attempt: 2, retryInMillis: 80 });
      health.listener!.onSkippedEntry!('bad entry');
      assert.deepEqual(listener.errors.map((e) => [e.error.message, e.attempt, e.retryInMillis]), [['kv down', 1, 50], ['health down', 2, 80]]);
      assert.deepEqual(listener.skipped, ['bad entry']);
    });

    it('refreshes and stops both, sums their requests, and makes no callback after stop', async () => {
      kv.requestCount = 3;
      health.requestCount = 4;
      assert.equal(source.requestCount, 7);
      source.refresh();
      assert.equal(kv.refreshes + health.refreshes, 2);
      const stopping = source.stop();
      assert.equal(source.stop(), stopping);
      await stopping;
      assert.ok(kv.stopped && health.stopped);
      kv.listener!.onUpdate(kvUpdate([node('n1', 1, 'primary')]));
      health.listener!.onUpdate(healthUpdate([]));
      kv.listener!.onError(new Error('late'), { attempt: 1, retryInMillis: 1 });
      source.refresh();
      assert.equal(listener.updates.length + listener.errors.length, 0);
      assert.equal(kv.refreshes, 1);
      assert.throws(() => source.start(listener), /only once/);
    });
  });
});
