import assert from 'node:assert/strict';
import { compileFilter, FilterError } from '../../../lib/testing/consul-double/bexpr.js';

const entry = {
  Node: { Node: 'node1', Address: '127.0.0.1', Meta: { rack: 'r1' } },
  Service: { ID: 'pglab/node1', Service: 'pglab', Tags: ['master', 'primary'], Port: 5432, Meta: {}, EnableTagOverride: true },
  Checks: [
    { CheckID: 'serfHealth', Status: 'passing' },
    { CheckID: 'service:pglab/node1', Status: 'critical' },
  ],
};

describe('consul-double bexpr subset', () => {
  const cases: [string, boolean][] = [
    ['"primary" in Service.Tags', true],
    ['"replica" in Service.Tags', false],
    ['"replica" not in Service.Tags', true],
    ['Service.Tags contains master', true],
    ['Service.Tags not contains master', false],
    ['Service.Service == pglab', true],
    ['Service.Service == "pglab"', true],
    ['Service.Service != pglab', false],
    ['Service.Port == 5432', true],
    ['Service.EnableTagOverride == true', true],
    ['Node.Meta.rack == r1', true],
    ['Node.Meta["rack"] == `r1`', true],
    ['Node.Meta.zone == z', false],
    ['Node.Meta.zone is empty', true],
    ['Service.Meta is empty', true],
    ['Service.Tags is not empty', true],
    ['Service.ID matches "^pglab/"', true],
    ['Service.ID not matches "^x"', true],
    ['Checks.Status == critical', true],
    ['Checks.Status != warning', true],
    ['"primary" in Service.Tags and Service.Port == 5432', true],
    ['"replica" in Service.Tags or Node.Node == node1', true],
    ['not ("replica" in Service.Tags)', true],
    ['not "primary" in Service.Tags or Service.Port == 1', false],
    ['(Service.Port == 1 or Service.Port == 5432) and Node.Node == node1', true],
  ];
  for (const [expr, want] of cases) {
    it(`${expr} → ${want}`, () => {
      assert.equal(compileFilter(expr)(entry), want);
    });
  }

  it('reports syntax errors and unknown selectors as FilterError', () => {
    for (const bad of ['Service.Tags ==', '"x" in', '(Service.Port == 1', 'Service.Port >< 1', '"unterminated', 'Service.ID matches "("']) {
      assert.throws(() => compileFilter(bad), FilterError, bad);
    }
    const unknown = compileFilter('Service.Nope == 1');
    assert.throws(() => unknown(entry), /Selector "Nope" is not valid/);
  });
});
