/** Pure parts of the CLI: member names from Patroni's service IDs, close service-name matches, the status rows. */
import assert from 'node:assert/strict';
import { buildRows, memberName } from '../../lib/cli/status.js';
import type { HealthEntry } from '../../lib/cli/status.js';
import { parsePatroniKv } from '../../lib/discovery/patroni-kv.js';
import { resolveOptions } from '../../lib/options.js';
import { EMPTY_TOPOLOGY, applyUpdate } from '../../lib/topology/snapshot.js';
import { closeMatches, editDistance } from '../../lib/cli/check.js';

describe('cli: memberName', () => {
  it('takes the member from Patroni\'s "<scope>/<member>" service ID', () => {
    assert.equal(memberName({ Node: { Node: 'agent-1' }, Service: { ID: 'pglab/node2' } }, 'pglab'), 'node2');
  });
  it('falls back to the Consul node name for other IDs', () => {
    assert.equal(memberName({ Node: { Node: 'agent-1' }, Service: { ID: 'pglab' } }, 'pglab'), 'agent-1');
    assert.equal(memberName({ Node: { Node: 'agent-1' }, Service: { ID: 'pglab/' } }, 'pglab'), 'agent-1');
    assert.equal(memberName({ Node: { Node: 'agent-1' }, Service: { ID: 'other/node2' } }, 'pglab'), 'agent-1');
    assert.equal(memberName({}, 'pglab'), '');
  });
});

describe('cli: closeMatches', () => {
  it('orders by edit distance and keeps containment matches', () => {
    assert.equal(editDistance('pglab', 'pg-lab'), 1);
    assert.deepEqual(closeMatches('pglab', ['redis', 'pg-lab', 'pglab-replicas', 'postgres']), ['pg-lab', 'pglab-replicas']);
    assert.deepEqual(closeMatches('pg-main', ['web', 'redis']), []);
  });
});

describe('cli: buildRows', () => {
  const resolved = resolveOptions({ service: 'pglab' }, {});
  const entry = (member: string, port: number, tags: string[]): HealthEntry => ({
    Node: { Node: `agent-${member}`, Address: '10.0.0.9' },
    Service: { ID: `pglab/${member}`, Address: '10.0.0.1', Port: port, Tags: tags },
    Checks: [{ Status: 'passing' }],
  });
  const entries = [entry('node1', 5001, ['master', 'primary']), entry('node2', 5002, ['replica']), entry('node3', 5003, ['replica'])];
  const node = (name: string, port: number, role: 'primary' | 'replica') => ({
    id: `pglab/${name}`, name, host: '10.0.0.1', port, address: `10.0.0.1:${port}`, role, tags: [role], modifyIndex: 1,
  });
  const topology = applyUpdate(EMPTY_TOPOLOGY, { source: 'consul-health', index: 5, nodes: [node('node1', 5001, 'primary'), node('node2', 5002, 'replica'), node('node3', 5003, 'replica')] }, 0);
  const probe = async (_h: string, port: number) => ({ reachable: true as const, inRecovery: port !== 5001, readOnly: port !== 5001 });
  const kv = (key: string, value: unknown, createIndex = 7) => ({ Key: `service/pglab/${key}`, CreateIndex: createIndex, ModifyIndex: createIndex, Value: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64') });
  const member = (name: string, port: number, role: string, xlog: number) =>
    kv(`members/${name}`, { conn_url: `postgres://10.0.0.1:${port}/postgres`, role, state: 'running', xlog_location: xlog, timeline: 3 });

  it('fills the Patroni column and the lag of every member from Patroni\'s keys, as patronictl list does', async () => {
    const view = parsePatroniKv([kv('leader', 'node1'), member('node1', 5001, 'master', 5000), member('node2', 5002, 'replica', 4000), member('node3', 5003, 'replica', 5000)], 'service/pglab/');
    const rows = await buildRows(resolved, entries, topology, probe, view);
    assert.deepEqual(rows.map((r) => [r.node, r.patroni, r.lagBytes, r.verified, r.route]), [
      ['node1', 'master/running TL3', undefined, 'primary', 'writes'],
      ['node2', 'replica/running TL3', 1000, 'replica', 'reads'],
      ['node3', 'replica/running TL3', 0, 'replica', 'reads'],
    ]);
  });

  it('without Patroni\'s keys the Patroni and lag columns stay empty; nothing else changes', async () => {
    const rows = await buildRows(resolved, entries, topology, probe);
    assert.deepEqual(rows.map((r) => [r.node, r.patroni, r.lagBytes, r.consulRole, r.checks]), [
      ['node1', '', undefined, 'primary', 'passing'],
      ['node2', '', undefined, 'replica', 'passing'],
      ['node3', '', undefined, 'replica', 'passing'],
    ]);
  });
});
