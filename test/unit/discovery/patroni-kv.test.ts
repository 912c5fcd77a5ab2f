import assert from 'node:assert/strict';
import { DiscoveryError } from '../../../lib/errors.js';
import {
  leaderToken,
  memberRole,
  parseConnUrl,
  parsePatroniKv,
  patroniBool,
  patroniTopology,
} from '../../../lib/discovery/patroni-kv.js';
import type { PatroniMember } from '../../../lib/discovery/patroni-kv.js';
import { EMPTY_TOPOLOGY, applyUpdate } from '../../../lib/topology/snapshot.js';
import { kv, member } from './fake-consul.js';

const PREFIX = 'service/pglab/';

function aMember(overrides: Partial<PatroniMember> = {}): PatroniMember {
  return {
    name: 'node1',
    host: '127.0.0.1',
    port: 5432,
    role: 'replica',
    state: 'running',
    xlogLocation: 1,
    timeline: 1,
    noloadbalance: false,
    nofailover: false,
    createIndex: 1,
    ...overrides,
  };
}

describe('discovery/patroni-kv (pure)', () => {
  describe('patroniBool', () => {
    const table: ReadonlyArray<[unknown, boolean]> = [
      [true, true],
      [false, false],
      ['on', true],
      ['TRUE', true],
      [' yes ', true],
      ['1', true],
      ['off', false],
      ['false', false],
      ['', false],
      [1, true],
      [0, false],
      [null, false],
      [undefined, false],
      [{}, false],
    ];
    for (const [value, expected] of table) {
      it(`${JSON.stringify(value)} → ${expected}`, () => assert.equal(patroniBool(value), expected));
    }
  });

  describe('parseConnUrl', () => {
    const table: ReadonlyArray<[unknown, { host: string; port: number } | undefined]> = [
      ['postgres://127.0.0.1:55401/postgres', { host: '127.0.0.1', port: 55401 }],
      ['postgresql://db-1.example.com:5433/app', { host: 'db-1.example.com', port: 5433 }],
      ['postgres://10.0.0.5/postgres', { host: '10.0.0.5', port: 5432 }],
      ['postgres://[::1]:6432/postgres', { host: '::1', port: 6432 }],
      ['POSTGRES://10.0.0.5:1/x', { host: '10.0.0.5', port: 1 }],
      ['postgres://u:p@10.0.0.5:5432/postgres', { host: '10.0.0.5', port: 5432 }],
      ['http://10.0.0.5:5432/postgres', undefined],
      ['postgres://:5432/postgres', undefined],
      ['postgres://bad host:5432/', undefined],
      ['postgres://10.0.0.5:0/postgres', undefined],
      ['postgres://10.0.0.5:70000/postgres', undefined],
      ['10.0.0.5:5432', undefined],
      [5432, undefined],
      [undefined, undefined],
    ];
    for (const [url, expected] of table) {
      it(`${JSON.stringify(url)} → ${JSON.stringify(expected)}`, () => assert.deepEqual(parseConnUrl(url), expected));
    }
  });

  describe('parsePatroniKv', () => {
    it('reads the leader key and the members, ignoring other keys and other scopes', () => {
      const view = parsePatroniKv(
        [
          kv('config', { ttl: 30 }),
          kv('history', '[]'),
          kv('initialize', '7230000000000000000'),
          kv('leader', 'node1', 15),
          member('node1', 5432, 'master'),
          member('node2', 5433, 'replica', 'running', { tags: { noloadbalance: true, nofailover: 'on' } }),
          kv('members/node3/extra', 'x'),
          kv('status', { optime: 1 }),
          { ...kv('leader', 'node9'), Key: 'service/pglab2/leader' },
        ],
        PREFIX,
      );
      assert.deepEqual(view.leader, { name: 'node1', createIndex: 15 });
      assert.deepEqual(
        view.members.map((m) => [m.name, m.host, m.port, m.role, m.state, m.xlogLocation, m.timeline, m.noloadbalance, m.nofailover]),
        [
          ['node1', '127.0.0.1', 5432, 'master', 'running', 67108864, 1, false, false],
          ['node2', '127.0.0.1', 5433, 'replica', 'running', 67108864, 1, true, true],
        ],
      );
      assert.deepEqual(view.skipped, []);
    });

    it('treats null (a 404: no keys yet) as an empty view', () => {
      assert.deepEqual(parsePatroniKv(null, PREFIX), { leader: undefined, members: [], skipped: [] });
    });

    it('treats an empty or blank leader value as no leader', () => {
      assert.equal(parsePatroniKv([kv('leader', null)], PREFIX).leader, undefined);
      assert.equal(parsePatroniKv([kv('leader', '  ')], PREFIX).leader, undefined);
      assert.equal(parsePatroniKv([kv('leader', ' node2\n')], PREFIX).leader?.name, 'node2');
    });

    const malformed: ReadonlyArray<[string, Record<string, unknown>, RegExp]> = [
      ['a member without a value', kv('members/a', null), /member "a": no value/],
      ['a member whose value is not JSON', kv('members/a', '{oops'), /not JSON/],
      ['a member whose value is an array', kv('members/a', '[1]'), /not a JSON object/],
      ['a member with an unusable conn_url', kv('members/a', { conn_url: 'mysql://x', role: 'replica', state: 'running' }), /unusable conn_url "mysql:\/\/x"/],
      ['a conn_url with a password is never echoed', kv('members/a', { conn_url: 'postgres://u:hunter2@bad host/x' }), /hidden/],
    ];
    for (const [name, entry, pattern] of malformed) {
      it(`skips ${name} with a reason`, () => {
        const view = parsePatroniKv([entry, member('node1', 5432, 'master')], PREFIX);
        assert.equal(view.members.length, 1);
        assert.equal(view.skipped.length, 1);
        assert.match(view.skipped[0]!, pattern);
        assert.ok(!view.skipped[0]!.includes('hunter2'));
      });
    }

    it('ignores junk entries and out-of-range numbers', () => {
      const view = parsePatroniKv([null, 7, { Key: 5 }, member('n', 1, 'replica', 'running', { xlog_location: -1, timeline: 0 })], PREFIX);
      assert.equal(view.members[0]?.xlogLocation, undefined);
      assert.equal(view.members[0]?.timeline, undefined);
    });

    it('rejects a body that is not an array', () => {
      assert.throws(() => parsePatroniKv({ Key: 'x' }, PREFIX), (err: unknown) => err instanceof DiscoveryError && /expected an array/.test(err.message));
    });
  });

  describe('memberRole (decision table)', () => {
    const table: ReadonlyArray<[string, Partial<PatroniMember>, boolean, boolean, { role: string; pending: boolean }]> = [
      ['leader, master, running', { role: 'master' }, true, false, { role: 'primary', pending: false }],
      ['leader, primary (Patroni 4), running', { role: 'primary' }, true, false, { role: 'primary', pending: false }],
      ['leader, promoted, running', { role: 'promoted' }, true, false, { role: 'primary', pending: false }],
      ['leader, replica, running: promotion under way', { role: 'replica' }, true, false, { role: 'replica', pending: true }],
      ['leader, replica, running, confirmed writable', { role: 'replica' }, true, true, { role: 'primary', pending: false }],
      ['leader, replica, noloadbalance: pending, no reads', { role: 'replica', noloadbalance: true }, true, false, { role: 'other', pending: true }],
      ['leader, master, stopping (switchover under way)', { role: 'master', state: 'stopping' }, true, false, { role: 'other', pending: false }],
      ['leader, master, stopped', { role: 'master', state: 'stopped' }, true, false, { role: 'other', pending: false }],
      ['leader, standby_leader (standby cluster)', { role: 'standby_leader' }, true, false, { role: 'other', pending: false }],
      ['leader, demoted', { role: 'demoted' }, true, false, { role: 'other', pending: false }],
      ['not leader, replica, running', { role: 'replica' }, false, false, { role: 'replica', pending: false }],
      ['not leader, replica, noloadbalance', { role: 'replica', noloadbalance: true }, false, false, { role: 'other', pending: false }],
      ['not leader, replica, nofailover (irrelevant for reads)', { role: 'replica', nofailover: true }, false, false, { role: 'replica', pending: false }],
      ['not leader, replica, starting', { role: 'replica', state: 'starting' }, false, false, { role: 'other', pending: false }],
      ['not leader, still writable master (orphan): never primary', { role: 'master' }, false, false, { role: 'other', pending: false }],
      ['not leader, master, confirmed flag ignored', { role: 'master' }, false, true, { role: 'other', pending: false }],
    ];
    for (const [name, overrides, isLeader, confirmed, expected] of table) {
      it(name, () => assert.deepEqual(memberRole(aMember(overrides), isLeader, confirmed), expected));
    }
  });

  describe('patroniTopology', () => {
    const body = [kv('leader', 'node1', 15), member('node1', 5432, 'master', 'running', {}, 11), member('node2', 5433, 'replica', 'running', { xlog_location: 99, timeline: 2 }, 12), member('node3', 5434, 'replica', 'stopped', {}, 13)];

    it('names the leader primary and running replicas replica; ids, tags, modifyIndex and Patroni info', () => {
      const t = patroniTopology(parsePatroniKv(body, PREFIX), { scope: 'pglab' });
      assert.deepEqual(
        t.nodes.map((n) => [n.id, n.name, n.address, n.role, n.tags, n.modifyIndex]),
        [
          ['pglab/node1', 'node1', '127.0.0.1:5432', 'primary', ['master'], 15],
          ['pglab/node2', 'node2', '127.0.0.1:5433', 'replica', ['replica'], 12],
          ['pglab/node3', 'node3', '127.0.0.1:5434', 'other', ['replica'], 13],
        ],
      );
      assert.deepEqual(t.nodes[1]?.patroni, { member: 'node2', role: 'replica', state: 'running', leader: false, xlogLocation: 99, timeline: 2, noloadbalance: false, nofailover: false });
      assert.equal(t.nodes[0]?.patroni?.leader, true);
      assert.equal(t.pendingLeader, undefined);
      assert.equal(t.leaderToken, 'node1#15');
      assert.ok(Object.isFrozen(t.nodes[0]) && Object.isFrozen(t.nodes[0]?.patroni));
    });

    it('has no primary without a leader key (session expired, election under way)', () => {
      const t = patroniTopology(parsePatroniKv(body.slice(1), PREFIX), { scope: 'pglab' });
      assert.deepEqual(t.nodes.map((n) => n.role), ['other', 'replica', 'other']);
      assert.equal(t.leaderToken, undefined);
    });

    it('has no primary when the leader key names a member without a key, and says why', () => {
      const t = patroniTopology(parsePatroniKv([kv('leader', 'ghost'), member('node2', 5433, 'replica')], PREFIX), { scope: 'pglab' });
      assert.deepEqual(t.nodes.map((n) => n.role), ['replica']);
      assert.match(t.notes[0] ?? '', /"ghost", which has no usable member key/);
    });

    it('a new leader still reporting replica is pending until its tenure is confirmed', () => {
      const view = parsePatroniKv([kv('leader', 'node2', 30), member('node1', 5432, 'demoted', 'stopping'), member('node2', 5433, 'replica')], PREFIX);
      const pending = patroniTopology(view, { scope: 'pglab' });
      assert.equal(pending.pendingLeader?.name, 'node2');
      assert.deepEqual(pending.nodes.map((n) => n.role), ['other', 'replica']);
      assert.equal(leaderToken(view.leader!), 'node2#30');
      assert.deepEqual(patroniTopology(view, { scope: 'pglab', confirmedLeader: 'node2#30' }).nodes.map((n) => n.role), ['other', 'primary']);
      assert.deepEqual(patroniTopology(view, { scope: 'pglab', confirmedLeader: 'node2#29' }).nodes.map((n) => n.role), ['other', 'replica'], 'a confirmation of an earlier tenure does not count');
    });

    it('keeps the leader when another member claims the same address', () => {
      const t = patroniTopology(parsePatroniKv([kv('leader', 'node2'), member('node1', 5432, 'replica'), member('node2', 5432, 'master')], PREFIX), { scope: 'pglab' });
      assert.deepEqual(t.nodes.map((n) => [n.name, n.role]), [['node2', 'primary']]);
      assert.match(t.notes[0] ?? '', /"node1" has the same address 127.0.0.1:5432 as "node2"/);
    });

    it('routine WAL-position updates are not a topology change', () => {
      const first = applyUpdate(EMPTY_TOPOLOGY, { source: 'patroni', index: 1, nodes: patroniTopology(parsePatroniKv(body, PREFIX), { scope: 'pglab' }).nodes }, 0);
      const moved = body.map((e) => (e['Key'] === `${PREFIX}members/node2` ? member('node2', 5433, 'replica', 'running', { xlog_location: 12345678 }, 12) : e));
      const second = applyUpdate(first, { source: 'patroni', index: 2, nodes: patroniTopology(parsePatroniKv(moved, PREFIX), { scope: 'pglab' }).nodes }, 0);
      assert.equal(second, first);
    });
  });
});
