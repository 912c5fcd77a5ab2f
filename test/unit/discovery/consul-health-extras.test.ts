/**
 * Health source extras (issue 5.4): configurable role tags (the HashiCorp geo-failover talk's
 * `leader`/`follower`, Patroni's `standby-leader`) and `?near=` ordering.
 */
import assert from 'node:assert/strict';
import sinon from 'sinon';
import { ConsulHealthSource } from '../../../lib/discovery/consul-health-source.js';
import { parseHealthEntries } from '../../../lib/discovery/consul-entries.js';
import { resolveOptions } from '../../../lib/options.js';
import { EMPTY_TOPOLOGY, applyUpdate } from '../../../lib/topology/snapshot.js';
import { FakeConsul, LOOP, RecordingListener, answer, healthEntry } from './fake-consul.js';

describe('ConsulHealthSource extras', () => {
  describe('role tags (table)', () => {
    const cases: ReadonlyArray<{
      name: string;
      primaryTags: string[];
      replicaTags: string[];
      entries: Array<[string, string[]]>;
      primary: string | undefined;
      replicas: string[];
    }> = [
      {
        name: 'geo-failover talk: leader / follower tags',
        primaryTags: ['leader'],
        replicaTags: ['follower'],
        entries: [['n1', ['leader', 'dc1']], ['n2', ['follower', 'dc1']], ['n3', ['Follower', 'dc2']]],
        primary: 'n1',
        replicas: ['n2', 'n3'],
      },
      {
        name: 'geo-failover tags with the default tag names: nothing is routable',
        primaryTags: ['primary', 'master'],
        replicaTags: ['replica'],
        entries: [['n1', ['leader']], ['n2', ['follower']]],
        primary: undefined,
        replicas: [],
      },
      {
        name: 'Patroni standby cluster, default tags: the standby leader takes no traffic',
        primaryTags: ['primary', 'master'],
        replicaTags: ['replica'],
        entries: [['s1', ['standby-leader']], ['s2', ['replica']]],
        primary: undefined,
        replicas: ['s2'],
      },
      {
        name: 'Patroni standby cluster read from its standby leader too (replicaTags includes standby-leader)',
        primaryTags: ['primary', 'master'],
        replicaTags: ['replica', 'standby-leader'],
        entries: [['s1', ['standby-leader']], ['s2', ['replica']]],
        primary: undefined,
        replicas: ['s1', 's2'],
      },
      {
        name: 'Patroni 3.0.2 (master + primary twin) and 4.x (primary + master twin) both match',
        primaryTags: ['primary', 'master'],
        replicaTags: ['replica'],
        entries: [['n1', ['master', 'primary']], ['n2', ['replica']]],
        primary: 'n1',
        replicas: ['n2'],
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        // The tags pass option validation as given…
        const resolved = resolveOptions({ service: 'pglab', primaryTags: c.primaryTags, replicaTags: c.replicaTags }, {});
        const body = c.entries.map(([name, tags], i) => healthEntry(name, `10.0.0.${i + 1}`, tags));
        // …and the parsed entries route accordingly.
        const { nodes } = parseHealthEntries(body, { primary: resolved.primaryTags, replica: resolved.replicaTags });
        const snapshot = applyUpdate(EMPTY_TOPOLOGY, { source: 'consul-health', index: 1, nodes }, 0);
        assert.equal(snapshot.primary?.name, c.primary);
        assert.deepEqual(snapshot.replicas.map((r) => r.name), c.replicas);
      });
    }

    it('reads the tag names from PGCONSUL_PRIMARY_TAGS / PGCONSUL_REPLICA_TAGS', () => {
      const resolved = resolveOptions({ service: 'pglab' }, { PGCONSUL_PRIMARY_TAGS: 'leader', PGCONSUL_REPLICA_TAGS: 'follower, standby-leader' });
      assert.deepEqual(resolved.primaryTags, ['leader']);
      assert.deepEqual(resolved.replicaTags, ['follower', 'standby-leader']);
    });
  });

  describe('near', () => {
    let clock: sinon.SinonFakeTimers;
    let fake: FakeConsul;
    let sources: ConsulHealthSource[];

    beforeEach(() => {
      clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
      fake = new FakeConsul();
      sources = [];
    });

    afterEach(async () => {
      await Promise.all(sources.map((s) => s.stop()));
      clock.restore();
    });

    function create(near: string | undefined): ConsulHealthSource {
      const source = new ConsulHealthSource({ ...LOOP, service: 'pglab', primaryTags: ['master'], replicaTags: ['replica'], near }, fake.transport);
      sources.push(source);
      return source;
    }

    it('sends ?near=_agent on every request, blocking ones included', async () => {
      create('_agent').start(new RecordingListener());
      assert.deepEqual(fake.last.query, { passing: true, near: '_agent', index: undefined, wait: undefined });
      fake.last.resolve(answer('5', []));
      await clock.tickAsync(LOOP.minIntervalMillis);
      assert.deepEqual(fake.last.query, { passing: true, near: '_agent', index: '5', wait: '30s' });
    });

    it('sends no near parameter by default', () => {
      create(undefined).start(new RecordingListener());
      assert.deepEqual(fake.last.query, { passing: true, index: undefined, wait: undefined });
    });

    it('keeps Consul’s nearest-first order in the topology’s replicas', async () => {
      const listener = new RecordingListener();
      create('_agent').start(listener);
      // Consul sorted by RTT from the agent: far-replica last.
      fake.last.resolve(answer('5', [healthEntry('near', '10.0.0.2', ['replica']), healthEntry('mid', '10.0.0.3', ['replica']), healthEntry('p', '10.0.0.1', ['master']), healthEntry('far', '10.0.0.4', ['replica'])]));
      await clock.tickAsync(0);
      const snapshot = applyUpdate(EMPTY_TOPOLOGY, listener.last, 0);
      assert.deepEqual(snapshot.replicas.map((r) => r.name), ['near', 'mid', 'far']);
    });

    it('rejects an empty near', () => {
      assert.throws(() => create(''), TypeError);
    });
  });
});
