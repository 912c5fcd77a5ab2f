/** Pure parts of the CLI: member names from Patroni's service IDs, close service-name matches. */
import assert from 'node:assert/strict';
import { memberName } from '../../lib/cli/status.js';
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
