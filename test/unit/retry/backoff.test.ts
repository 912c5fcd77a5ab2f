import assert from 'node:assert/strict';
import { backoffDelay } from '../../../lib/retry/backoff.js';

describe('backoffDelay', () => {
  const opts = { initialMillis: 100, maxMillis: 5_000 };

  const cases: ReadonlyArray<{ attempt: number; random: number; expected: number; opts?: Parameters<typeof backoffDelay>[1] }> = [
    { attempt: 1, random: 0, expected: 0 },
    { attempt: 1, random: 0.5, expected: 50 },
    { attempt: 1, random: 0.999, expected: 99 },
    { attempt: 2, random: 0.5, expected: 100 },
    { attempt: 3, random: 0.5, expected: 200 },
    { attempt: 4, random: 0.5, expected: 400 },
    { attempt: 6, random: 0.5, expected: 1_600 },
    { attempt: 7, random: 0.5, expected: 2_500 }, // ceiling 6 400 capped at 5 000
    { attempt: 50, random: 0.999, expected: 4_995 },
    { attempt: 1e9, random: 0.5, expected: 2_500 }, // factor ** huge = Infinity → cap
    { attempt: Infinity, random: 0.5, expected: 50 }, // not finite → treated as 1
    { attempt: 0, random: 0.5, expected: 50 }, // < 1 → 1
    { attempt: -3, random: 0.5, expected: 50 },
    { attempt: Number.NaN, random: 0.5, expected: 50 },
    { attempt: 2.9, random: 0.5, expected: 100 }, // floored
    { attempt: 3, random: 0.5, expected: 450, opts: { initialMillis: 100, maxMillis: 5_000, factor: 3 } },
    { attempt: 5, random: 0.5, expected: 50, opts: { initialMillis: 100, maxMillis: 5_000, factor: 1 } },
    { attempt: 1, random: 0.5, expected: 25, opts: { initialMillis: 100, maxMillis: 50 } }, // max < initial wins
    { attempt: 3, random: 0.5, expected: 0, opts: { initialMillis: 0, maxMillis: 5_000 } },
    { attempt: 1, random: 1, expected: 99 }, // random clamped below 1
    { attempt: 1, random: 7, expected: 99 },
    { attempt: 1, random: -1, expected: 0 },
    { attempt: 1, random: Number.NaN, expected: 0 },
  ];
  for (const c of cases) {
    it(`attempt ${c.attempt}, random ${c.random}${c.opts ? ` ${JSON.stringify(c.opts)}` : ''} → ${c.expected}`, () => {
      assert.equal(backoffDelay(c.attempt, c.opts ?? opts, () => c.random), c.expected);
    });
  }

  it('stays within [0, ceiling) for every attempt with the real Math.random', () => {
    for (let attempt = 1; attempt <= 30; attempt++) {
      const ceiling = Math.min(5_000, 100 * 2 ** (attempt - 1));
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(attempt, opts);
        assert.ok(Number.isInteger(d) && d >= 0 && d < ceiling, `attempt ${attempt}: ${d} not in [0, ${ceiling})`);
      }
    }
  });

  it('grows the window exponentially until the cap', () => {
    const top = (attempt: number): number => backoffDelay(attempt, opts, () => 0.9999999);
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map(top), [99, 199, 399, 799, 1_599, 3_199, 4_999, 4_999]);
  });

  const invalid: ReadonlyArray<[string, Parameters<typeof backoffDelay>[1]]> = [
    ['negative initialMillis', { initialMillis: -1, maxMillis: 10 }],
    ['NaN initialMillis', { initialMillis: Number.NaN, maxMillis: 10 }],
    ['negative maxMillis', { initialMillis: 1, maxMillis: -10 }],
    ['infinite maxMillis', { initialMillis: 1, maxMillis: Infinity }],
    ['factor < 1', { initialMillis: 1, maxMillis: 10, factor: 0.5 }],
    ['NaN factor', { initialMillis: 1, maxMillis: 10, factor: Number.NaN }],
  ];
  for (const [name, o] of invalid) {
    it(`throws RangeError on ${name}`, () => {
      assert.throws(() => backoffDelay(1, o, () => 0.5), RangeError);
    });
  }
});
