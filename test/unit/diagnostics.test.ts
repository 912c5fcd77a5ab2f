import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import { EventRouter } from '../../lib/cluster-events.js';
import { FAILOVER_CHANNEL, RETRY_CHANNEL, TOPOLOGY_CHANNEL, publishEvent, summarizeTopology } from '../../lib/diagnostics.js';
import { applyUpdate, EMPTY_TOPOLOGY, markUnreachable } from '../../lib/topology/snapshot.js';
import { node, update } from '../support/nodes.js';

describe('diagnostics channels (unit)', () => {
  const p = node('n1', 5432, 'primary');
  const r1 = node('n2', 5433, 'replica');
  const r2 = node('n3', 5434, 'replica');
  const first = applyUpdate(EMPTY_TOPOLOGY, update(7, p, r1, r2), 1000);
  const fenced = markUnreachable(first, r2.address, 2000, 'no answer');

  function listen(name: string): { seen: unknown[]; stop: () => void } {
    const seen: unknown[] = [];
    const fn = (m: unknown): void => {
      seen.push(m);
    };
    diagnostics.subscribe(name, fn);
    return { seen, stop: () => diagnostics.unsubscribe(name, fn) };
  }

  it('summarizes a snapshot by addresses', () => {
    assert.deepEqual(summarizeTopology(fenced), {
      version: fenced.version,
      source: 'test',
      primary: '127.0.0.1:5432',
      replicas: ['127.0.0.1:5433'],
      readReplicas: ['127.0.0.1:5433'],
      unreachable: ['127.0.0.1:5434'],
    });
    assert.deepEqual(summarizeTopology(EMPTY_TOPOLOGY).replicas, []);
    assert.equal(summarizeTopology(EMPTY_TOPOLOGY).primary, undefined);
  });

  it('the EventRouter publishes topology, failover and retry even with no event listener', () => {
    const router = new EventRouter({ pool: new EventEmitter(), primary: new EventEmitter(), replica: new EventEmitter() }, () => undefined);
    const t = listen(TOPOLOGY_CHANNEL);
    const f = listen(FAILOVER_CHANNEL);
    const r = listen(RETRY_CHANNEL);
    try {
      const failover = { from: p, to: r1, durationMillis: 30, sinceTopologyChangeMillis: 10 };
      const retry = { role: 'primary' as const, attempt: 1, delayMillis: 50, node: p.address, error: new Error('x'), outcome: 'not-executed' as const };
      assert.equal(router.emit(undefined, 'topology', [{ previous: first, current: fenced }]), false);
      router.emit(undefined, 'failover', [failover]);
      router.emit('primary', 'retry', [retry]);
      router.emit(undefined, 'lag', [{ previous: first, current: fenced }]);
      assert.deepEqual(t.seen, [{ previous: summarizeTopology(first), current: summarizeTopology(fenced) }]);
      assert.equal(f.seen.length, 1);
      assert.equal(f.seen[0], failover);
      assert.equal(r.seen.length, 1);
      assert.equal(r.seen[0], retry);
    } finally {
      t.stop();
      f.stop();
      r.stop();
    }
  });

  it('builds nothing when nobody subscribed', () => {
    assert.equal(diagnostics.channel(TOPOLOGY_CHANNEL).hasSubscribers, false);
    // A payload that would throw if it were read.
    const poison = {
      get previous(): never {
        throw new Error('read without a subscriber');
      },
      get current(): never {
        throw new Error('read without a subscriber');
      },
    };
    assert.doesNotThrow(() => publishEvent('topology', poison));
  });
});
