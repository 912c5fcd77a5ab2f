import assert from 'node:assert/strict';
import sinon from 'sinon';
import { DiscoveryError } from '../../../lib/errors.js';
import { PatroniKvSource, normalizePatroniNamespace, patroniKvPrefix } from '../../../lib/discovery/patroni-kv-source.js';
import type { PatroniKvSourceOptions } from '../../../lib/discovery/patroni-kv-source.js';
import type { DiscoveredNode } from '../../../lib/topology/node.js';
import { FakeConsul, LOOP, RecordingListener, TOKEN, answer, kv, member } from './fake-consul.js';

/** A scriptable promotion check: each call waits until the test settles it. */
class FakeConfirm {
  readonly calls: Array<{ node: DiscoveredNode; signal: AbortSignal; settle: (writable: boolean | Error) => void }> = [];
  readonly fn = (node: DiscoveredNode, signal: AbortSignal): Promise<boolean> =>
    new Promise<boolean>((resolve, reject) => {
      this.calls.push({ node, signal, settle: (v) => (v instanceof Error ? reject(v) : resolve(v)) });
    });
  get last(): FakeConfirm['calls'][number] {
    const call = this.calls.at(-1);
    assert.ok(call, 'no confirmation attempt');
    return call;
  }
}

const roles = (listener: RecordingListener): Array<[string, string]> => listener.last.nodes.map((n) => [n.name, n.role]);

describe('PatroniKvSource', () => {
  let clock: sinon.SinonFakeTimers;
  let fake: FakeConsul;
  let listener: RecordingListener;
  let confirm: FakeConfirm;
  let logs: Array<{ level: string; message: string; fields: Record<string, unknown> | undefined }>;
  let sources: PatroniKvSource[];

  function create(overrides: Partial<PatroniKvSourceOptions> = {}): PatroniKvSource {
    const source = new PatroniKvSource(
      {
        ...LOOP,
        namespace: 'service',
        scope: 'pglab',
        confirmPrimary: confirm.fn,
        logger: (level, message, fields) => logs.push({ level, message, fields }),
        ...overrides,
      },
      fake.transport,
    );
    sources.push(source);
    return source;
  }

  beforeEach(() => {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    fake = new FakeConsul();
    listener = new RecordingListener();
    confirm = new FakeConfirm();
    logs = [];
    sources = [];
  });

  afterEach(async () => {
    await Promise.all(sources.map((s) => s.stop()));
    clock.restore();
  });

  describe('prefix', () => {
    const table: ReadonlyArray<[string, string, string, string]> = [
      ['service', 'pglab', 'service', 'service/pglab/'],
      ['/service/', 'pglab', 'service', 'service/pglab/'],
      ['//db/clusters//', 'main', 'db/clusters', 'db/clusters/main/'],
      ['', 'pglab', '', 'pglab/'],
      ['/', 'pglab', '', 'pglab/'],
    ];
    for (const [namespace, scope, normalized, prefix] of table) {
      it(`${JSON.stringify(namespace)} + ${scope} → ${prefix}`, () => {
        assert.equal(normalizePatroniNamespace(namespace), normalized);
        assert.equal(patroniKvPrefix(namespace, scope), prefix);
      });
    }
  });

  it('sends ONE recursive read of the prefix, blocking on the returned index, with a 404 accepted', async () => {
    const source = create({ scope: 'pg lab' });
    source.start(listener);
    assert.equal(fake.last.path, '/v1/kv/service/pg%20lab/');
    assert.deepEqual(fake.last.query, { recurse: true, index: undefined, wait: undefined });
    assert.equal(fake.last.opts.acceptNotFound, true);
    fake.last.resolve(answer('40', [kv('leader', 'node1'), member('node1', 5432, 'master')]));
    await clock.tickAsync(LOOP.minIntervalMillis);
    assert.equal(fake.calls.length, 2);
    assert.deepEqual(fake.last.query, { recurse: true, index: '40', wait: '30s' });
    assert.equal(fake.last.opts.unref, true);
    assert.equal(source.requestCount, 2);
    assert.equal(source.prefix, 'service/pg lab/');
  });

  it('reports the leader as primary and running replicas as replicas, with source "patroni"', async () => {
    create().start(listener);
    fake.last.resolve(answer('40', [kv('leader', 'node1', 15), member('node1', 5432, 'master'), member('node2', 5433, 'replica'), member('node3', 5434, 'replica', 'running', { tags: { noloadbalance: true } })]));
    await clock.tickAsync(0);
    assert.equal(listener.last.source, 'patroni');
    assert.equal(listener.last.index, 40);
    assert.deepEqual(roles(listener), [['node1', 'primary'], ['node2', 'replica'], ['node3', 'other']]);
    assert.equal(confirm.calls.length, 0, 'no probe when Patroni already says master');
  });

  it('treats a 404 (no keys yet) as an empty answer and keeps blocking on its index', async () => {
    create().start(listener);
    fake.last.resolve(answer('7', null, 404));
    await clock.tickAsync(LOOP.minIntervalMillis);
    assert.deepEqual(listener.last.nodes, []);
    assert.equal(listener.errors.length, 0);
    assert.equal(fake.last.query['index'], '7');
  });

  it('reports a malformed body as a failed round and resets the index', async () => {
    create({ random: () => 0.5 }).start(listener);
    fake.last.resolve(answer('7', { not: 'an array' }));
    await clock.tickAsync(0);
    assert.equal(listener.updates.length, 0);
    assert.match(listener.errors[0]?.error.message ?? '', /malformed Patroni KV response/);
    assert.equal(listener.errors[0]?.retryInMillis, 500);
    await clock.tickAsync(500);
    assert.equal(fake.last.query['index'], undefined);
  });

  it('wraps a network error with the prefix, never the token', async () => {
    create().start(listener);
    fake.last.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8500'), { code: 'ECONNREFUSED' }));
    await clock.tickAsync(0);
    const error = listener.errors[0]?.error;
    assert.ok(error instanceof DiscoveryError);
    assert.match(error.message, /^Patroni KV read of "service\/pglab\/" at http:\/\/127\.0\.0\.1:8500 failed: connect ECONNREFUSED/);
    assert.ok(!JSON.stringify(logs).includes(TOKEN) && !error.message.includes(TOKEN));
  });

  it('has no primary while the leader key is gone (session expired), and the orphaned old leader is never one', async () => {
    create().start(listener);
    fake.last.resolve(answer('40', [kv('leader', 'node1', 15), member('node1', 5432, 'master'), member('node2', 5433, 'replica')]));
    await clock.tickAsync(LOOP.minIntervalMillis);
    // node1's session expired: Patroni's session behaviour deletes its leader and member keys.
    fake.last.resolve(answer('41', [member('node2', 5433, 'replica')]));
    await clock.tickAsync(LOOP.minIntervalMillis);
    assert.deepEqual(roles(listener), [['node2', 'replica']]);
    // An orphan whose member key survived still is not primary without the leader key.
    fake.last.resolve(answer('42', [member('node1', 5432, 'master'), member('node2', 5433, 'replica')]));
    await clock.tickAsync(LOOP.minIntervalMillis);
    assert.deepEqual(roles(listener), [['node1', 'other'], ['node2', 'replica']]);
  });

  describe('promotion confirmation', () => {
    const promoting = [kv('leader', 'node2', 30), member('node1', 5432, 'demoted', 'stopping'), member('node2', 5433, 'replica'), member('node3', 5434, 'replica')];

    it('probes a leader that still reports replica and names it primary once it is writable', async () => {
      create().start(listener);
      fake.last.resolve(answer('50', promoting));
      await clock.tickAsync(0);
      assert.deepEqual(roles(listener), [['node1', 'other'], ['node2', 'replica'], ['node3', 'replica']], 'no primary yet');
      assert.equal(confirm.calls.length, 1);
      assert.equal(confirm.last.node.address, '127.0.0.1:5433');
      confirm.last.settle(false);
      await clock.tickAsync(19);
      assert.equal(confirm.calls.length, 1, 'retries after 20 ms');
      await clock.tickAsync(1);
      assert.equal(confirm.calls.length, 2);
      confirm.last.settle(new Error('57P03 the database system is starting up'));
      await clock.tickAsync(40);
      assert.equal(confirm.calls.length, 3, 'then after 40 ms');
      const before = listener.updates.length;
      confirm.last.settle(true);
      await clock.tickAsync(0);
      assert.equal(listener.updates.length, before + 1, 'an update is emitted at once');
      assert.deepEqual(roles(listener), [['node1', 'other'], ['node2', 'primary'], ['node3', 'replica']]);
      assert.equal(listener.last.index, 50);
      assert.ok(logs.some((l) => l.level === 'info' && /confirmed writable/.test(l.message) && l.fields?.['attempts'] === 3));
      // Later answers keep it primary while Patroni still reports replica (same tenure)...
      await clock.tickAsync(LOOP.minIntervalMillis);
      fake.last.resolve(answer('51', promoting));
      await clock.tickAsync(0);
      assert.deepEqual(roles(listener)[1], ['node2', 'primary']);
      assert.equal(confirm.calls.length, 3, 'no new probe for a confirmed tenure');
      // ...and a new tenure (the key was deleted and re-acquired) needs a new confirmation.
      await clock.tickAsync(LOOP.minIntervalMillis);
      fake.last.resolve(answer('60', [kv('leader', 'node2', 58), member('node2', 5433, 'replica')]));
      await clock.tickAsync(0);
      assert.deepEqual(roles(listener), [['node2', 'replica']]);
      assert.equal(confirm.calls.length, 4);
    });

    it('abandons the check when the leader key moves on, and checks the new leader', async () => {
      create().start(listener);
      fake.last.resolve(answer('50', promoting));
      await clock.tickAsync(LOOP.minIntervalMillis);
      const first = confirm.last;
      fake.last.resolve(answer('52', [kv('leader', 'node3', 51), member('node2', 5433, 'replica'), member('node3', 5434, 'replica')]));
      await clock.tickAsync(0);
      assert.equal(first.signal.aborted, true, 'the old check is aborted');
      assert.equal(confirm.last.node.name, 'node3');
      first.settle(true);
      await clock.tickAsync(0);
      assert.deepEqual(roles(listener), [['node2', 'replica'], ['node3', 'replica']], 'a late answer for the old leader is ignored');
    });

    it('stops checking when Patroni itself reports the promotion', async () => {
      create().start(listener);
      fake.last.resolve(answer('50', promoting));
      await clock.tickAsync(LOOP.minIntervalMillis);
      const check = confirm.last;
      fake.last.resolve(answer('53', [kv('leader', 'node2', 30), member('node2', 5433, 'promoted')]));
      await clock.tickAsync(0);
      assert.equal(check.signal.aborted, true);
      assert.deepEqual(roles(listener), [['node2', 'primary']]);
    });

    it('backs off to at most confirmBackoff.maxMillis between checks', async () => {
      create({ confirmBackoff: { initialMillis: 10, maxMillis: 35 } }).start(listener);
      fake.last.resolve(answer('50', promoting));
      await clock.tickAsync(0);
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        times.push(Date.now());
        confirm.last.settle(false);
        const n = confirm.calls.length;
        while (confirm.calls.length === n) await clock.tickAsync(1);
      }
      const gaps = times.slice(1).map((t, i) => t - times[i]!);
      assert.deepEqual(gaps, [10, 20, 35, 35]);
    });

    it('without confirmPrimary, waits for Patroni to report promoted/master', async () => {
      create({ confirmPrimary: undefined }).start(listener);
      fake.last.resolve(answer('50', promoting));
      await clock.tickAsync(5_000);
      assert.deepEqual(roles(listener), [['node1', 'other'], ['node2', 'replica'], ['node3', 'replica']]);
      assert.equal(confirm.calls.length, 0);
    });

    it('stop() aborts a check in flight and no update follows', async () => {
      const source = create();
      source.start(listener);
      fake.last.resolve(answer('50', promoting));
      await clock.tickAsync(0);
      const check = confirm.last;
      const stopping = source.stop();
      assert.equal(check.signal.aborted, true);
      check.settle(true);
      await stopping;
      const count = listener.updates.length;
      await clock.tickAsync(10_000);
      assert.equal(listener.updates.length, count);
      assert.equal(clock.countTimers(), 0, 'no timers left');
    });
  });

  describe('options', () => {
    const invalid: ReadonlyArray<[string, Partial<PatroniKvSourceOptions>, typeof TypeError | typeof RangeError]> = [
      ['empty scope', { scope: '' }, TypeError],
      ['scope with a slash', { scope: 'a/b' }, TypeError],
      ['non-string namespace', { namespace: 5 as unknown as string }, TypeError],
      ['waitSeconds 0', { waitSeconds: 0 }, RangeError],
      ['confirmBackoff 0', { confirmBackoff: { initialMillis: 0, maxMillis: 10 } }, RangeError],
      ['confirmBackoff max < initial', { confirmBackoff: { initialMillis: 50, maxMillis: 10 } }, RangeError],
    ];
    for (const [name, overrides, type] of invalid) {
      it(`rejects ${name}`, () => {
        assert.throws(() => new PatroniKvSource({ ...LOOP, namespace: 'service', scope: 'pglab', ...overrides }, fake.transport), type);
      });
    }

    it('start() twice throws; stop() before start is fine', async () => {
      const source = create();
      await source.stop();
      assert.throws(() => source.start(listener), /only once/);
    });
  });
});
