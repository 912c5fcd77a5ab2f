import assert from 'node:assert/strict';
import sinon from 'sinon';
import { ConsulState, RpcError } from '../../../lib/testing/consul-double/state.js';

const NODE = 'agent';
const svc = (id: string, tags: string[] = []) => ({
  id,
  name: 'pglab',
  tags,
  address: '127.0.0.1',
  port: 5432,
  meta: {},
  enableTagOverride: false,
  weights: { Passing: 1, Warning: 1 },
  taggedAddresses: {},
});
const check = (serviceId: string, status: 'passing' | 'warning' | 'critical' = 'passing') => ({
  checkId: `service:${serviceId}`,
  name: 'c',
  status,
  notes: '',
  output: '',
  serviceId,
  type: 'ttl',
  interval: '',
  timeout: '',
});
const session = (over: Partial<Parameters<ConsulState['createSession']>[0]> = {}) => ({
  name: 's',
  node: NODE,
  lockDelayNs: 0,
  behavior: 'release' as const,
  ttl: '',
  ttlNs: 0,
  nodeChecks: [] as string[],
  serviceChecks: null,
  ...over,
});

describe('consul-double state', () => {
  let state: ConsulState;
  beforeEach(() => {
    state = new ConsulState({ datacenter: 'dc1', nodeName: NODE, nodeAddress: '127.0.0.1' });
  });
  afterEach(() => state.dispose());

  describe('KV', () => {
    it('cas=0 creates only; cas=N needs the ModifyIndex; unchanged writes keep the index', () => {
      assert.equal(state.kvPut('a', Buffer.from('1'), 0, { kind: 'cas', index: 0 }), true);
      assert.equal(state.kvPut('a', Buffer.from('2'), 0, { kind: 'cas', index: 0 }), false);
      const m = state.kv.get('a')!.modifyIndex;
      assert.equal(state.kvPut('a', Buffer.from('2'), 0, { kind: 'cas', index: m + 1 }), false);
      assert.equal(state.kvPut('a', Buffer.from('2'), 0, { kind: 'cas', index: m }), true);
      const m2 = state.kv.get('a')!.modifyIndex;
      assert.ok(m2 > m);
      const raft = state.index;
      assert.equal(state.kvPut('a', Buffer.from('2'), 0, { kind: 'set' }), true);
      assert.equal(state.kv.get('a')!.modifyIndex, m2, 'same value: no new ModifyIndex');
      assert.equal(state.index, raft);
      assert.equal(state.kvPut('b', Buffer.from('x'), 0, { kind: 'cas', index: 5 }), false, 'cas≠0 on a missing key');
    });

    it('acquire / release / LockIndex like Consul', () => {
      const s1 = state.createSession(session()).id;
      const s2 = state.createSession(session()).id;
      assert.equal(state.kvPut('lock', Buffer.from('n1'), 0, { kind: 'acquire', session: s1 }), true);
      assert.deepEqual([state.kv.get('lock')!.lockIndex, state.kv.get('lock')!.session], [1, s1]);
      assert.equal(state.kvPut('lock', Buffer.from('n2'), 0, { kind: 'acquire', session: s2 }), false, 'held by another session');
      assert.equal(state.kvPut('lock', Buffer.from('n1b'), 0, { kind: 'acquire', session: s1 }), true, 're-acquire by the holder');
      assert.equal(state.kv.get('lock')!.lockIndex, 1);
      assert.equal(state.kvPut('lock', Buffer.from('x'), 0, { kind: 'release', session: s2 }), false);
      assert.equal(state.kvPut('lock', Buffer.from('free'), 0, { kind: 'release', session: s1 }), true);
      assert.deepEqual([state.kv.get('lock')!.session, state.kv.get('lock')!.lockIndex, state.kv.get('lock')!.value.toString()], ['', 1, 'free']);
      assert.equal(state.kvPut('lock', Buffer.from('n2'), 0, { kind: 'acquire', session: s2 }), true);
      assert.equal(state.kv.get('lock')!.lockIndex, 2);
      assert.throws(() => state.kvPut('lock', Buffer.from(''), 0, { kind: 'acquire', session: 'nope' }), (e: unknown) => e instanceof RpcError && e.message === 'invalid session "nope"');
      // a plain PUT keeps the session but resets LockIndex, as Consul's kvsSetTxn does
      state.kvPut('lock', Buffer.from('plain'), 0, { kind: 'set' });
      assert.deepEqual([state.kv.get('lock')!.session, state.kv.get('lock')!.lockIndex], [s2, 0]);
    });

    it('list index is the highest modify/tombstone index under the prefix', () => {
      state.kvPut('p/a', Buffer.from('1'), 0, { kind: 'set' });
      state.kvPut('q/x', Buffer.from('1'), 0, { kind: 'set' });
      const a = state.kv.get('p/a')!.modifyIndex;
      assert.equal(state.kvList('p/').index, a);
      state.kvPut('p/b', Buffer.from('1'), 0, { kind: 'set' });
      state.kvDelete('p/b', { kind: 'key' });
      const afterDelete = state.index;
      assert.equal(state.kvList('p/').index, afterDelete, 'tombstone counts');
      state.kvPut('q/y', Buffer.from('1'), 0, { kind: 'set' });
      assert.equal(state.kvList('p/').index, afterDelete, 'other prefixes do not move it');
      assert.equal(state.kvList('').index, state.index, 'empty prefix = table index');
      assert.equal(state.kvKeyIndex('missing'), state.index, 'missing key = table index');
    });

    it('delete cas: matching index deletes, mismatch is false, missing key is true', () => {
      state.kvPut('k', Buffer.from('1'), 0, { kind: 'set' });
      const m = state.kv.get('k')!.modifyIndex;
      assert.equal(state.kvDelete('k', { kind: 'cas', index: m + 1 }), false);
      assert.equal(state.kvDelete('k', { kind: 'cas', index: m }), true);
      assert.equal(state.kvDelete('k', { kind: 'cas', index: m }), true);
      const raft = state.index;
      assert.equal(state.kvDelete('k', { kind: 'key' }), true);
      assert.equal(state.index, raft, 'deleting a missing key changes nothing');
    });
  });

  describe('sessions', () => {
    let clock: sinon.SinonFakeTimers;
    beforeEach(() => {
      clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    });
    afterEach(() => clock.restore());

    it('expire at 2 × TTL without renew; renew pushes the deadline', async () => {
      const s = state.createSession(session({ ttl: '10s', ttlNs: 10e9, behavior: 'delete' }));
      state.kvPut('leader', Buffer.from('n1'), 0, { kind: 'acquire', session: s.id });
      await clock.tickAsync(15_000);
      assert.ok(state.renewSession(s.id));
      await clock.tickAsync(19_000);
      assert.ok(state.sessions.has(s.id), 'renewed 19 s ago: still alive');
      await clock.tickAsync(1_001);
      assert.equal(state.sessions.has(s.id), false);
      assert.equal(state.kv.has('leader'), false, 'behavior delete removes held keys');
    });

    it('release behaviour keeps the key, clears Session, and applies the lock delay', async () => {
      const s = state.createSession(session({ lockDelayNs: 5e9 }));
      state.kvPut('leader', Buffer.from('n1'), 0, { kind: 'acquire', session: s.id });
      const before = state.kv.get('leader')!.modifyIndex;
      state.destroySession(s.id);
      const e = state.kv.get('leader')!;
      assert.equal(e.session, '');
      assert.ok(e.modifyIndex > before);
      const other = state.createSession(session()).id;
      assert.equal(state.kvPut('leader', Buffer.from('n2'), 0, { kind: 'acquire', session: other }), false, 'lock delay');
      await clock.tickAsync(5_001);
      assert.equal(state.kvPut('leader', Buffer.from('n2'), 0, { kind: 'acquire', session: other }), true);
    });

    it('a session is invalidated when one of its checks goes critical', () => {
      state.upsertService(NODE, svc('pglab/n1'));
      state.upsertCheck(NODE, check('pglab/n1'));
      const s = state.createSession(session({ nodeChecks: ['serfHealth'], serviceChecks: [{ ID: 'service:pglab/n1', Namespace: '' }] }));
      state.updateCheckStatus(NODE, 'service:pglab/n1', 'warning', '');
      assert.ok(state.sessions.has(s.id));
      state.updateCheckStatus(NODE, 'service:pglab/n1', 'critical', '');
      assert.equal(state.sessions.has(s.id), false);
      assert.throws(() => state.createSession(session({ serviceChecks: [{ ID: 'service:pglab/n1', Namespace: '' }] })), /is in critical state/);
      assert.throws(() => state.createSession(session({ nodeChecks: ['nope'] })), /Missing check 'nope' registration/);
    });
  });

  describe('catalog indexes', () => {
    it('the service index moves on registration, check status and node checks; not on no-op writes', () => {
      const i0 = state.serviceIndex('pglab');
      assert.equal(i0, state.catalogIndex(), 'unknown service falls back to the catalog index');
      state.upsertService(NODE, svc('pglab/n1', ['replica']));
      state.upsertCheck(NODE, check('pglab/n1'));
      const i1 = state.serviceIndex('pglab');
      assert.ok(i1 > i0);
      assert.equal(state.upsertService(NODE, svc('pglab/n1', ['replica'])), false);
      assert.equal(state.serviceIndex('pglab'), i1);
      state.updateCheckStatus(NODE, 'service:pglab/n1', 'critical', 'x');
      const i2 = state.serviceIndex('pglab');
      assert.ok(i2 > i1);
      state.updateCheckStatus(NODE, 'service:pglab/n1', 'critical', 'other output');
      assert.equal(state.serviceIndex('pglab'), i2, 'output-only change is not synced at once');
      state.updateCheckStatus(NODE, 'serfHealth', 'critical', 'down');
      assert.ok(state.serviceIndex('pglab') > i2, 'node check affects the service');
      const i3 = state.serviceIndex('pglab');
      state.upsertService(NODE, { ...svc('other/x'), name: 'other' });
      state.upsertService(NODE, { ...svc('other/x', ['t']), name: 'other' });
      assert.equal(state.serviceIndex('pglab'), i3, 'other services do not move it');
      state.removeService(NODE, 'pglab/n1');
      assert.ok(state.serviceIndex('pglab') > i3, 'deregistration moves it');
    });

    it('setIndex lowers every index', () => {
      state.upsertService(NODE, svc('pglab/n1'));
      state.kvPut('k', Buffer.from('v'), 0, { kind: 'set' });
      state.setIndex(3);
      assert.equal(state.index, 3);
      assert.equal(state.serviceIndex('pglab'), 3);
      assert.equal(state.kvKeyIndex('k'), 3);
      assert.equal(state.kv.get('k')!.modifyIndex, 3);
      state.kvPut('k', Buffer.from('w'), 0, { kind: 'set' });
      assert.equal(state.kvKeyIndex('k'), 4);
      assert.throws(() => state.setIndex(0), RangeError);
    });
  });
});
