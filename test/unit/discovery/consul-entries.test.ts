import assert from 'node:assert/strict';
import { DiscoveryError } from '../../../lib/errors.js';
import {
  MAX_SKIPPED_REASONS,
  parseHealthEntries,
  roleFromTags,
  validateHost,
  validatePort,
} from '../../../lib/discovery/consul-entries.js';

const TAGS = { primary: ['master', 'primary'], replica: ['replica'] } as const;

/** A Patroni-shaped health entry, with overrides for Service / Node fields (`null` = no Node). */
function entry(service: Record<string, unknown> = {}, node: Record<string, unknown> | null = {}): Record<string, unknown> {
  return {
    Node: node === null ? undefined : { ID: 'n-1', Node: 'consul-agent-1', Address: '10.0.0.1', Datacenter: 'dc1', ...node },
    Service: { ID: 'pglab/node1', Service: 'pglab', Tags: ['master', 'primary'], Address: '10.0.1.1', Port: 5432, ModifyIndex: 42, ...service },
    Checks: [{ CheckID: 'serfHealth', Status: 'passing' }],
  };
}

describe('consul-entries', () => {
  describe('validateHost', () => {
    const cases: ReadonlyArray<[unknown, string | undefined]> = [
      ['10.0.0.5', '10.0.0.5'],
      ['127.0.0.1', '127.0.0.1'],
      ['::1', '::1'],
      ['fe80::1%eth0', 'fe80::1%eth0'],
      ['2001:db8::5', '2001:db8::5'],
      ['[2001:db8::5]', '2001:db8::5'],
      ['db1', 'db1'],
      ['db-1.internal.example.com', 'db-1.internal.example.com'],
      ['db-1.example.com.', 'db-1.example.com.'],
      ['_pg.service', '_pg.service'],
      ['a'.repeat(63) + '.com', 'a'.repeat(63) + '.com'],
      ['a'.repeat(64) + '.com', undefined],
      [`${'a.'.repeat(127)}ab`, undefined], // 256 characters
      ['', undefined],
      [' ', undefined],
      ['db 1', undefined],
      ['db1\n', undefined],
      ['\tdb1', undefined],
      ['db/1', undefined],
      ['http://db1', undefined],
      ['user@db1', undefined],
      ['db1:5432', undefined],
      ['[db1]', undefined],
      ['[::1', undefined],
      ['-db1', undefined],
      ['db1-', undefined],
      ['db..1', undefined],
      ['.', undefined],
      ['999.1.1.1', undefined],
      ['1.2.3', undefined],
      ['10.0.0.256', undefined],
      ['1::2::3', undefined],
      [5432, undefined],
      [null, undefined],
      [undefined, undefined],
      [{}, undefined],
      [['10.0.0.1'], undefined],
    ];
    for (const [value, expected] of cases) {
      it(`${JSON.stringify(value) ?? String(value)} → ${String(expected)}`, () => {
        assert.equal(validateHost(value), expected);
      });
    }
  });

  describe('validatePort', () => {
    const cases: ReadonlyArray<[unknown, number | undefined]> = [
      [5432, 5432],
      [1, 1],
      [65535, 65535],
      [0, undefined],
      [65536, undefined],
      [-5432, undefined],
      [5432.5, undefined],
      ['5432', undefined],
      [Number.NaN, undefined],
      [Infinity, undefined],
      [null, undefined],
      [undefined, undefined],
      [true, undefined],
    ];
    for (const [value, expected] of cases) {
      it(`${JSON.stringify(value) ?? String(value)} → ${String(expected)}`, () => {
        assert.equal(validatePort(value), expected);
      });
    }
  });

  describe('roleFromTags', () => {
    const cases: ReadonlyArray<[readonly string[], string]> = [
      [['master', 'primary'], 'primary'],
      [['master'], 'primary'],
      [['primary'], 'primary'],
      [['MASTER'], 'primary'],
      [['Replica'], 'replica'],
      [['replica'], 'replica'],
      [['replica', 'primary'], 'primary'], // primary wins
      [['standby-leader'], 'other'],
      [['nofailover', 'replicas'], 'other'],
      [[], 'other'],
    ];
    for (const [tags, expected] of cases) {
      it(`${JSON.stringify(tags)} → ${expected}`, () => {
        assert.equal(roleFromTags(tags, TAGS), expected);
      });
    }

    it('compares configured tags case-insensitively too', () => {
      assert.equal(roleFromTags(['leader'], { primary: ['LEADER'], replica: [] }), 'primary');
      assert.equal(roleFromTags(['ro'], { primary: [], replica: ['RO'] }), 'replica');
    });
  });

  describe('parseHealthEntries', () => {
    it('maps a Patroni entry to a DiscoveredNode', () => {
      const { nodes, skipped } = parseHealthEntries([entry()], TAGS);
      assert.deepEqual(skipped, []);
      assert.deepEqual(nodes, [
        {
          id: 'pglab/node1',
          name: 'node1',
          host: '10.0.1.1',
          port: 5432,
          address: '10.0.1.1:5432',
          role: 'primary',
          tags: ['master', 'primary'],
          modifyIndex: 42,
        },
      ]);
      assert.ok(Object.isFrozen(nodes[0]) && Object.isFrozen(nodes[0]?.tags));
    });

    it('returns no nodes for an empty answer', () => {
      assert.deepEqual(parseHealthEntries([], TAGS), { nodes: [], skipped: [] });
    });

    const mapping: ReadonlyArray<{ name: string; input: Record<string, unknown>; expect: Record<string, unknown> }> = [
      { name: 'empty Service.Address → Node.Address', input: entry({ Address: '' }), expect: { host: '10.0.0.1', address: '10.0.0.1:5432' } },
      { name: 'missing Service.Address → Node.Address', input: entry({ Address: undefined }), expect: { host: '10.0.0.1' } },
      { name: 'null Service.Address → Node.Address', input: entry({ Address: null }), expect: { host: '10.0.0.1' } },
      { name: 'IPv6 address in brackets in `address`', input: entry({ Address: '2001:db8::7' }), expect: { host: '2001:db8::7', address: '[2001:db8::7]:5432' } },
      { name: 'bracketed IPv6 tolerated', input: entry({ Address: '[::1]' }), expect: { host: '::1', address: '[::1]:5432' } },
      { name: 'DNS name', input: entry({ Address: 'db1.example.com' }), expect: { address: 'db1.example.com:5432' } },
      { name: 'replica tag', input: entry({ Tags: ['replica'] }), expect: { role: 'replica' } },
      { name: 'standby leader is other', input: entry({ Tags: ['standby-leader'] }), expect: { role: 'other' } },
      { name: 'both tags → primary', input: entry({ Tags: ['replica', 'Primary'] }), expect: { role: 'primary', tags: ['replica', 'Primary'] } },
      { name: 'null tags → none', input: entry({ Tags: null }), expect: { role: 'other', tags: [] } },
      { name: 'non-string tags dropped', input: entry({ Tags: ['replica', 3, null, { a: 1 }] }), expect: { role: 'replica', tags: ['replica'] } },
      { name: 'missing ModifyIndex → 0', input: entry({ ModifyIndex: undefined }), expect: { modifyIndex: 0 } },
      { name: 'negative ModifyIndex → 0', input: entry({ ModifyIndex: -4 }), expect: { modifyIndex: 0 } },
      { name: 'string ModifyIndex → 0', input: entry({ ModifyIndex: '42' }), expect: { modifyIndex: 0 } },
      { name: 'non-Patroni id → name is Node.Node', input: entry({ ID: 'postgres-1' }), expect: { id: 'postgres-1', name: 'consul-agent-1' } },
      { name: 'missing ID → Node/Service id', input: entry({ ID: undefined }), expect: { id: 'consul-agent-1/pglab', name: 'consul-agent-1' } },
      { name: 'missing ID and Node → address id', input: entry({ ID: '' }, { Node: undefined }), expect: { id: '10.0.1.1:5432', name: '10.0.1.1:5432' } },
      { name: 'id ending in a slash → Node.Node name', input: entry({ ID: 'pglab/' }), expect: { id: 'pglab/', name: 'consul-agent-1' } },
      { name: 'id starting with a slash → Node.Node name', input: entry({ ID: '/x' }), expect: { id: '/x', name: 'consul-agent-1' } },
      { name: 'member names with slashes keep the rest', input: entry({ ID: 'pglab/dc1/node1' }), expect: { name: 'dc1/node1' } },
      { name: 'no Node at all with a Service.Address', input: entry({}, null), expect: { host: '10.0.1.1', name: 'node1' } },
    ];
    for (const c of mapping) {
      it(c.name, () => {
        const { nodes, skipped } = parseHealthEntries([c.input], TAGS);
        assert.deepEqual(skipped, []);
        assert.equal(nodes.length, 1);
        for (const [key, value] of Object.entries(c.expect)) {
          assert.deepEqual((nodes[0] as unknown as Record<string, unknown>)[key], value, key);
        }
      });
    }

    const garbageBodies: ReadonlyArray<[string, unknown]> = [
      ['null', null],
      ['undefined', undefined],
      ['an object', {}],
      ['a string', '[]'],
      ['a number', 42],
      ['an object with Nodes', { Nodes: [] }],
    ];
    for (const [name, body] of garbageBodies) {
      it(`throws a DiscoveryError when the body is ${name}`, () => {
        assert.throws(
          () => parseHealthEntries(body, TAGS),
          (err: unknown) => err instanceof DiscoveryError && err.message === 'malformed health response: expected an array' && err.code === 'PGCONSUL_DISCOVERY',
        );
      });
    }

    const badEntries: ReadonlyArray<[string, unknown, RegExp]> = [
      ['null entry', null, /^entry 0: not an object \(null\)$/],
      ['string entry', 'pglab', /^entry 0: not an object \("pglab"\)$/],
      ['number entry', 7, /not an object/],
      ['array entry', [entry()], /not an object/],
      ['empty object', {}, /^entry 0: missing Service$/],
      ['Service is a string', { Service: 'pglab' }, /missing Service/],
      ['no address anywhere', entry({ Address: '' }, { Address: '' }), /no Service.Address and no Node.Address/],
      ['no address and no Node', entry({ Address: undefined }, null), /no Service.Address and no Node.Address/],
      ['bad Service.Address', entry({ Address: 'db 1' }), /^entry 0 \("pglab\/node1"\): invalid address "db 1"$/],
      ['Service.Address not a string', entry({ Address: 123 }), /invalid address 123/],
      ['bad Node.Address fallback', entry({ Address: '' }, { Address: 'a/b' }), /invalid address "a\/b"/],
      ['port as a string', entry({ Port: '5432' }), /invalid port "5432"/],
      ['negative port', entry({ Port: -1 }), /invalid port -1/],
      ['port 0', entry({ Port: 0 }), /invalid port 0/],
      ['port too large', entry({ Port: 70000 }), /invalid port 70000/],
      ['fractional port', entry({ Port: 5432.1 }), /invalid port 5432.1/],
      ['missing port', entry({ Port: undefined }), /invalid port undefined/],
    ];
    for (const [name, input, reason] of badEntries) {
      it(`skips ${name} with a reason, without throwing`, () => {
        const { nodes, skipped } = parseHealthEntries([input, entry({ ID: 'pglab/ok', Address: '10.9.9.9' })], TAGS);
        assert.deepEqual(nodes.map((n) => n.id), ['pglab/ok']);
        assert.equal(skipped.length, 1);
        assert.match(skipped[0] ?? '', reason);
      });
    }

    it('truncates long untrusted values in reasons', () => {
      const { skipped } = parseHealthEntries([entry({ Address: 'x y'.repeat(1000) })], TAGS);
      assert.ok((skipped[0]?.length ?? 0) < 150, skipped[0]);
    });

    it('survives values JSON cannot print', () => {
      const cyclic: Record<string, unknown> = {};
      cyclic['self'] = cyclic;
      const { skipped } = parseHealthEntries([entry({ Port: cyclic }), entry({ Port: 10n })], TAGS);
      assert.equal(skipped.length, 2);
      assert.match(skipped[0] ?? '', /invalid port \[object Object\]/);
    });

    it('deduplicates by address, keeping the highest ModifyIndex at the first position', () => {
      const { nodes, skipped } = parseHealthEntries(
        [
          entry({ ID: 'pglab/old', Address: '10.0.0.9', ModifyIndex: 10, Tags: ['master', 'primary'] }),
          entry({ ID: 'pglab/node2', Address: '10.0.0.2', ModifyIndex: 11, Tags: ['replica'] }),
          entry({ ID: 'pglab/new', Address: '10.0.0.9', ModifyIndex: 30, Tags: ['replica'] }),
          entry({ ID: 'pglab/older', Address: '10.0.0.9', ModifyIndex: 5, Tags: [] }),
        ],
        TAGS,
      );
      assert.deepEqual(nodes.map((n) => [n.id, n.address, n.role]), [
        ['pglab/new', '10.0.0.9:5432', 'replica'],
        ['pglab/node2', '10.0.0.2:5432', 'replica'],
      ]);
      assert.equal(skipped.length, 2);
      assert.match(skipped[0] ?? '', /entry 2: duplicate address 10.0.0.9:5432: "pglab\/old" replaced by "pglab\/new"/);
      assert.match(skipped[1] ?? '', /entry 3 \("pglab\/older"\): duplicate address 10.0.0.9:5432, kept "pglab\/new"/);
    });

    it('keeps the first entry when duplicate addresses tie on ModifyIndex', () => {
      const { nodes } = parseHealthEntries(
        [entry({ ID: 'pglab/a', ModifyIndex: 7 }), entry({ ID: 'pglab/b', ModifyIndex: 7 })],
        TAGS,
      );
      assert.deepEqual(nodes.map((n) => n.id), ['pglab/a']);
    });

    it('treats the same host on different ports as different nodes', () => {
      const { nodes } = parseHealthEntries([entry({ ID: 'pglab/a', Port: 5432 }), entry({ ID: 'pglab/b', Port: 5433 })], TAGS);
      assert.deepEqual(nodes.map((n) => n.address), ['10.0.1.1:5432', '10.0.1.1:5433']);
    });

    it('keeps two passing primaries (a switchover in progress) for the consumer to decide', () => {
      const { nodes } = parseHealthEntries(
        [entry({ ID: 'pglab/a', Address: '10.0.0.1' }), entry({ ID: 'pglab/b', Address: '10.0.0.2', ModifyIndex: 99 })],
        TAGS,
      );
      assert.deepEqual(nodes.map((n) => [n.name, n.role, n.modifyIndex]), [
        ['a', 'primary', 42],
        ['b', 'primary', 99],
      ]);
    });

    it('handles a huge array of junk, capping the reasons', () => {
      const junk: unknown[] = [];
      const kinds: unknown[] = [null, {}, 'x', 1, [], { Service: null }, entry({ Port: '5432' }), entry({ Address: '' }, { Address: '' }), true];
      for (let i = 0; i < 100_000; i++) junk.push(kinds[i % kinds.length]);
      junk.push(entry({ ID: 'pglab/survivor', Address: '10.1.1.1' }));
      const started = Date.now();
      const { nodes, skipped } = parseHealthEntries(junk, TAGS);
      assert.ok(Date.now() - started < 2_000, 'parsing 100k entries should take well under 2 s');
      assert.deepEqual(nodes.map((n) => n.id), ['pglab/survivor']);
      assert.equal(skipped.length, MAX_SKIPPED_REASONS + 1);
      assert.equal(skipped[MAX_SKIPPED_REASONS], `... and ${100_000 - MAX_SKIPPED_REASONS} more entries skipped`);
    });

    it('handles many valid nodes and many duplicates', () => {
      const body: unknown[] = [];
      for (let i = 0; i < 2_000; i++) body.push(entry({ ID: `s/n${i}`, Address: `10.0.${Math.floor(i / 250)}.${i % 250}`, ModifyIndex: i }));
      for (let i = 0; i < 2_000; i++) body.push(entry({ ID: `s/dup${i}`, Address: `10.0.${Math.floor(i / 250)}.${i % 250}`, ModifyIndex: 0 }));
      const { nodes, skipped } = parseHealthEntries(body, TAGS);
      assert.equal(nodes.length, 2_000);
      assert.equal(skipped.length, MAX_SKIPPED_REASONS + 1);
    });

    it('does not mutate its input', () => {
      const body = [entry(), entry({ ID: 'pglab/x', Address: '' })];
      const copy = structuredClone(body);
      parseHealthEntries(body, TAGS);
      assert.deepEqual(body, copy);
    });
  });
});
