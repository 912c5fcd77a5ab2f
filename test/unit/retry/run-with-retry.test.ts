import assert from 'node:assert/strict';
import { AttemptFailure, runWithRetry } from '../../../lib/retry/run-with-retry.js';
import type { FailoverBudget, RetryDeps } from '../../../lib/retry/run-with-retry.js';
import {
  FailoverTimeoutError,
  NoPrimaryError,
  NoReplicaError,
  OutcomeUnknownError,
  PoolEndedError,
} from '../../../lib/errors.js';
import type { DiscoveredNode } from '../../../lib/topology/node.js';
import type { Selection } from '../../../lib/topology/select.js';
import { node } from '../../support/nodes.js';

const P1 = node('n1', 5001, 'primary');
const P2 = node('n2', 5002, 'primary');
const R3 = node('n3', 5003, 'replica');

function coded(code: string, severity?: string): Error {
  return Object.assign(new Error(code), severity ? { code, severity } : { code });
}

/** Deterministic deps: a virtual clock that waits advance. */
function fakeDeps(overrides: Partial<RetryDeps> & { selections?: Selection[] } = {}) {
  let clock = 0;
  const log = { waits: [] as number[], retries: [] as Array<{ attempt: number; outcome: string }>, invalidated: [] as string[], refreshes: 0 };
  const selections = overrides.selections ?? [];
  const deps: RetryDeps = {
    select: () => (selections.length > 1 ? selections.shift()! : (selections[0] ?? { node: P1, role: 'primary' })),
    invalidate: (a) => log.invalidated.push(a),
    refresh: () => {
      log.refreshes++;
    },
    waitForChange: async (ms) => {
      log.waits.push(ms);
      clock += ms;
    },
    isEnding: () => false,
    now: () => clock,
    backoff: (n) => 50 * 2 ** (n - 1),
    failoverTimeoutMillis: 1000,
    discovered: () => true,
    lastDiscoveryError: () => undefined,
    onRetry: (info) => log.retries.push({ attempt: info.attempt, outcome: info.outcome }),
    ...overrides,
  };
  return { deps, log, advance: (ms: number) => (clock += ms) };
}

describe('retry/run-with-retry', () => {
  it('returns the first success without waiting', async () => {
    const { deps, log } = fakeDeps();
    assert.equal(await runWithRetry(deps, 'primary', async () => 42), 42);
    assert.deepEqual(log.waits, []);
  });

  it('retries not-executed failures with growing waits, then succeeds on the new node', async () => {
    const { deps, log } = fakeDeps();
    const seen: string[] = [];
    let calls = 0;
    const result = await runWithRetry(deps, 'primary', async (n: DiscoveredNode) => {
      seen.push(n.name);
      if (++calls < 4) throw new AttemptFailure(coded('ECONNREFUSED'), 'acquire');
      return 'ok';
    });
    assert.equal(result, 'ok');
    assert.deepEqual(log.waits, [50, 100, 200]);
    assert.deepEqual(log.retries.map((r) => r.attempt), [1, 2, 3]);
    assert.ok(log.refreshes >= 3, 'a refused connect asks discovery for a fresh answer');
  });

  it('an unknown outcome on the primary path is surfaced at once, typed, with the cause', async () => {
    const { deps, log } = fakeDeps();
    const cause = new Error('Connection terminated unexpectedly');
    await assert.rejects(
      runWithRetry(deps, 'primary', async () => {
        throw new AttemptFailure(cause, 'query', true);
      }),
      (err: unknown) => {
        assert.ok(err instanceof OutcomeUnknownError);
        assert.equal(err.outcome, 'unknown');
        assert.equal(err.cause, cause);
        assert.equal(err.node, P1.address);
        assert.equal(err.attempts, 1);
        return true;
      },
    );
    assert.deepEqual(log.waits, []);
  });

  it('an unknown outcome on the replica path is retried', async () => {
    const { deps, log } = fakeDeps({ selections: [{ node: R3, role: 'replica' }] });
    let calls = 0;
    const r = await runWithRetry(deps, 'replica', async () => {
      if (++calls === 1) throw new AttemptFailure(new Error('Connection terminated unexpectedly'), 'query', true);
      return 'read';
    });
    assert.equal(r, 'read');
    assert.deepEqual(log.retries, [{ attempt: 1, outcome: 'unknown' }]);
  });

  it('server errors pass through unchanged (same object)', async () => {
    const { deps } = fakeDeps();
    const dup = coded('23505', 'ERROR');
    await assert.rejects(
      runWithRetry(deps, 'primary', async () => {
        throw new AttemptFailure(dup, 'query', false);
      }),
      (err: unknown) => err === dup,
    );
  });

  it('25006 on the primary invalidates the node and moves to the next candidate', async () => {
    const { deps, log } = fakeDeps({ selections: [{ node: P1, role: 'primary' }, { node: P2, role: 'primary' }] });
    const r = await runWithRetry(deps, 'primary', async (n) => {
      if (n === P1) throw new AttemptFailure(coded('25006', 'ERROR'), 'query', false);
      return n.name;
    });
    assert.equal(r, 'n2');
    assert.deepEqual(log.invalidated, [P1.address]);
  });

  it('gives up at failoverTimeoutMillis with the FIRST meaningful error as cause', async () => {
    const { deps, log } = fakeDeps();
    const first = coded('ECONNREFUSED');
    let calls = 0;
    await assert.rejects(
      runWithRetry(deps, 'primary', async () => {
        throw new AttemptFailure(++calls === 1 ? first : coded('57P03', 'FATAL'), 'acquire');
      }),
      (err: unknown) => {
        assert.ok(err instanceof FailoverTimeoutError);
        assert.equal(err.cause, first);
        assert.equal(err.outcome, 'not-executed');
        assert.ok(err.attempts > 3);
        return true;
      },
    );
    const total = log.waits.reduce((a, b) => a + b, 0);
    assert.equal(total, 1000, 'waits never overshoot the deadline');
  });

  it('with no primary known it waits for the topology and fails with NoPrimaryError', async () => {
    const { deps } = fakeDeps({ selections: [{ node: undefined, role: 'primary' }], discovered: () => false, lastDiscoveryError: () => new Error('consul down') });
    await assert.rejects(
      runWithRetry(deps, 'primary', async () => 1),
      (err: unknown) => {
        assert.ok(err instanceof NoPrimaryError);
        assert.match(err.message, /discovery has not answered/);
        assert.equal((err.cause as Error).message, 'consul down');
        return true;
      },
    );
  });

  it("with no replica and readFallback 'fail' it fails with NoReplicaError", async () => {
    const { deps } = fakeDeps({ selections: [{ node: undefined, role: 'replica' }] });
    await assert.rejects(runWithRetry(deps, 'replica', async () => 1), NoReplicaError);
  });

  it('a failoverTimeoutMillis of 0 means a single attempt', async () => {
    const { deps, log } = fakeDeps({ failoverTimeoutMillis: 0 });
    await assert.rejects(
      runWithRetry(deps, 'primary', async () => {
        throw new AttemptFailure(coded('ECONNREFUSED'), 'acquire');
      }),
      FailoverTimeoutError,
    );
    assert.deepEqual(log.waits, []);
  });

  it('stops with PoolEndedError when the pool ends while waiting', async () => {
    let ending = false;
    const { deps } = fakeDeps({ isEnding: () => ending });
    await assert.rejects(
      runWithRetry(deps, 'primary', async () => {
        ending = true;
        throw new AttemptFailure(coded('ECONNREFUSED'), 'acquire');
      }),
      PoolEndedError,
    );
  });

  it('an error that is not an AttemptFailure counts as a query-phase error', async () => {
    const { deps } = fakeDeps();
    await assert.rejects(
      runWithRetry(deps, 'primary', async () => {
        throw new Error('socket hang up');
      }),
      OutcomeUnknownError,
    );
  });

  describe('a shared failover budget', () => {
    const refused = async (): Promise<never> => {
      throw new AttemptFailure(coded('ECONNREFUSED'), 'acquire');
    };

    it('a first attempt that succeeds leaves the budget unstarted', async () => {
      const { deps, advance } = fakeDeps();
      advance(500);
      const budget: FailoverBudget = { since: undefined };
      assert.equal(await runWithRetry(deps, 'primary', async () => 'ok', budget), 'ok');
      assert.equal(budget.since, undefined);
    });

    it('a failure starts the budget at the time the first attempt started', async () => {
      const { deps, advance } = fakeDeps();
      advance(500);
      const budget: FailoverBudget = { since: undefined };
      let calls = 0;
      await runWithRetry(
        deps,
        'primary',
        async () => {
          if (++calls === 1) {
            advance(30); // a slow connect that fails
            throw new AttemptFailure(coded('ECONNREFUSED'), 'acquire');
          }
          return 'ok';
        },
        budget,
      );
      assert.equal(budget.since, 500);
    });

    it('so does finding no node at all', async () => {
      const { deps, advance } = fakeDeps({ selections: [{ node: undefined, role: 'primary' }, { node: P1, role: 'primary' }] });
      advance(7);
      const budget: FailoverBudget = { since: undefined };
      assert.equal(await runWithRetry(deps, 'primary', async () => 'ok', budget), 'ok');
      assert.equal(budget.since, 7);
    });

    const cases: Array<{ name: string; since: number | undefined; now: number; waits: number[] }> = [
      { name: 'unstarted: the whole failoverTimeoutMillis from this call (as without a budget)', since: undefined, now: 300, waits: [50, 100, 200, 400, 250] },
      { name: 'started 600 ms ago: only the 400 ms left', since: 0, now: 600, waits: [50, 100, 200, 50] },
      { name: 'started 990 ms ago: one more attempt after 10 ms', since: 0, now: 990, waits: [10] },
      { name: 'spent: the first attempt only, no wait', since: 0, now: 1000, waits: [] },
      { name: 'overspent: the first attempt only, no wait', since: 0, now: 5000, waits: [] },
    ];
    for (const c of cases) {
      it(`${c.name}: waits ${JSON.stringify(c.waits)}`, async () => {
        const { deps, log, advance } = fakeDeps();
        advance(c.now);
        const budget: FailoverBudget = { since: c.since };
        await assert.rejects(runWithRetry(deps, 'primary', refused, budget), FailoverTimeoutError);
        assert.deepEqual(log.waits, c.waits);
        assert.equal(budget.since, c.since ?? c.now);
        assert.equal(deps.now(), Math.max(c.now, budget.since! + deps.failoverTimeoutMillis), 'never past since + failoverTimeoutMillis');
      });
    }
  });
});
