import assert from 'node:assert/strict';
import {
  DEFAULT_DISCOVERY_BACKOFF,
  classifyIndex,
  paceNextRequest,
  parseRetryAfter,
  rateLimitRemaining,
} from '../../../lib/discovery/request-pacing.js';
import type { PacingDecision, PacingInput, PacingSettings } from '../../../lib/discovery/request-pacing.js';

const SETTINGS: PacingSettings = { minIntervalMillis: 100, backoff: DEFAULT_DISCOVERY_BACKOFF };

type Case = readonly [name: string, input: PacingInput, expected: PacingDecision, settings?: Partial<PacingSettings>];

const base = { failures: 0, anomalies: 0, sinceLastStartMillis: 1_000, random: 0.5 } as const;

const CASES: readonly Case[] = [
  // valid answers
  ['index advanced, long ago: at once', { ...base, outcome: { kind: 'answer', index: 'advanced' } }, { delayMillis: 0, failures: 0, anomalies: 0, reason: 'at-once' }],
  ['index advanced 30 ms after the start: the rate limit', { ...base, sinceLastStartMillis: 30, outcome: { kind: 'answer', index: 'advanced' } }, { delayMillis: 70, failures: 0, anomalies: 0, reason: 'rate-limit' }],
  ['index advanced, clock went backwards: the full interval', { ...base, sinceLastStartMillis: -5_000, outcome: { kind: 'answer', index: 'advanced' } }, { delayMillis: 100, failures: 0, anomalies: 0, reason: 'rate-limit' }],
  ['first request ever: at once', { ...base, sinceLastStartMillis: undefined, outcome: { kind: 'answer', index: 'advanced' } }, { delayMillis: 0, failures: 0, anomalies: 0, reason: 'at-once' }],
  ['a full wait with the same index: at once, counters reset', { ...base, failures: 0, anomalies: 3, outcome: { kind: 'answer', index: 'unchanged' } }, { delayMillis: 0, failures: 0, anomalies: 0, reason: 'at-once' }],
  ['a valid answer resets the error count', { ...base, failures: 9, sinceLastStartMillis: 10, outcome: { kind: 'answer', index: 'fresh' } }, { delayMillis: 90, failures: 0, anomalies: 0, reason: 'rate-limit' }],
  ['a fresh (non-blocking) answer keeps the anomaly count', { ...base, anomalies: 2, outcome: { kind: 'answer', index: 'fresh' } }, { delayMillis: 0, failures: 0, anomalies: 2, reason: 'at-once' }],
  ['polled: the poll interval', { ...base, outcome: { kind: 'answer', index: 'polled' } }, { delayMillis: 5_000, failures: 0, anomalies: 0, reason: 'poll-interval' }, { pollIntervalMillis: 5_000 }],
  ['polled with an interval under the rate limit: the rate limit', { ...base, sinceLastStartMillis: 20, outcome: { kind: 'answer', index: 'polled' } }, { delayMillis: 80, failures: 0, anomalies: 0, reason: 'rate-limit' }, { pollIntervalMillis: 50 }],
  // anomalies
  ['first anomaly (early same index): backoff [0,100) floored at the rate limit', { ...base, sinceLastStartMillis: 5, outcome: { kind: 'answer', index: 'early-unchanged' } }, { delayMillis: 95, failures: 0, anomalies: 1, reason: 'rate-limit' }],
  ['third anomaly (backwards): backoff ceiling 400', { ...base, anomalies: 2, sinceLastStartMillis: 5, outcome: { kind: 'answer', index: 'backwards' } }, { delayMillis: 200, failures: 0, anomalies: 3, reason: 'backoff' }],
  ['tenth anomaly (missing index): capped at 5 s', { ...base, anomalies: 9, random: 0.999, outcome: { kind: 'answer', index: 'missing' } }, { delayMillis: 4_995, failures: 0, anomalies: 10, reason: 'backoff' }],
  // errors
  ['first error, jitter 0.5: 50 ms < rate limit', { ...base, sinceLastStartMillis: 3, outcome: { kind: 'error' } }, { delayMillis: 97, failures: 1, anomalies: 0, reason: 'rate-limit' }],
  ['fourth error: ceiling 800', { ...base, failures: 3, outcome: { kind: 'error' } }, { delayMillis: 400, failures: 4, anomalies: 0, reason: 'backoff' }],
  ['twentieth error: capped at 5 s (full jitter)', { ...base, failures: 19, random: 0.9, outcome: { kind: 'error' } }, { delayMillis: 4_500, failures: 20, anomalies: 0, reason: 'backoff' }],
  ['an error keeps the anomaly count', { ...base, failures: 0, anomalies: 4, random: 0, sinceLastStartMillis: 0, outcome: { kind: 'error' } }, { delayMillis: 100, failures: 1, anomalies: 4, reason: 'rate-limit' }],
  ['jitter 0 after many errors: never under the rate limit', { ...base, failures: 50, random: 0, sinceLastStartMillis: 0, outcome: { kind: 'error' } }, { delayMillis: 100, failures: 51, anomalies: 0, reason: 'rate-limit' }],
  ['rate limit 0 and jitter 0: at once', { ...base, failures: 2, random: 0, sinceLastStartMillis: 0, outcome: { kind: 'error' } }, { delayMillis: 0, failures: 3, anomalies: 0, reason: 'at-once' }, { minIntervalMillis: 0 }],
  // throttled
  ['429 with Retry-After 3 s: 3 s', { ...base, outcome: { kind: 'throttled', retryAfterMillis: 3_000 } }, { delayMillis: 3_000, failures: 1, anomalies: 0, reason: 'retry-after' }],
  ['429 with Retry-After 1 h: capped at 30 s', { ...base, outcome: { kind: 'throttled', retryAfterMillis: 3_600_000 } }, { delayMillis: 30_000, failures: 1, anomalies: 0, reason: 'retry-after' }],
  ['429 with Retry-After 1 h and a 10 s cap', { ...base, outcome: { kind: 'throttled', retryAfterMillis: 3_600_000 } }, { delayMillis: 10_000, failures: 1, anomalies: 0, reason: 'retry-after' }, { retryAfterMaxMillis: 10_000 }],
  ['429 with Retry-After 0 after many errors: the backoff wins', { ...base, failures: 7, outcome: { kind: 'throttled', retryAfterMillis: 0 } }, { delayMillis: 2_500, failures: 8, anomalies: 0, reason: 'backoff' }],
  ['429 without Retry-After: the backoff', { ...base, failures: 1, outcome: { kind: 'throttled', retryAfterMillis: undefined } }, { delayMillis: 100, failures: 2, anomalies: 0, reason: 'backoff' }],
  ['429 with a negative Retry-After (bad clock): the backoff', { ...base, failures: 1, outcome: { kind: 'throttled', retryAfterMillis: -4_000 } }, { delayMillis: 100, failures: 2, anomalies: 0, reason: 'backoff' }],
];

describe('request-pacing', () => {
  describe('paceNextRequest', () => {
    for (const [name, input, expected, settings] of CASES) {
      it(name, () => {
        assert.deepEqual(paceNextRequest(input, { ...SETTINGS, ...settings }), expected);
      });
    }

    it('continuous errors: after 5 s the mean rate is ≤ 1 request per second (expected value, exact)', () => {
      // Walk the expected delays (random = 0.5 is the mean of full jitter).
      let failures = 0;
      let t = 0;
      const starts: number[] = [];
      while (t < 120_000) {
        starts.push(t);
        const d = paceNextRequest({ outcome: { kind: 'error' }, failures, anomalies: 0, sinceLastStartMillis: 0, random: 0.5 }, SETTINGS);
        failures = d.failures;
        t += d.delayMillis;
      }
      const late = starts.filter((s) => s >= 5_000);
      const perSecond = late.length / ((120_000 - 5_000) / 1000);
      assert.ok(perSecond <= 1, `${perSecond} requests/s`);
      assert.ok(perSecond >= 0.3, `${perSecond} requests/s (full jitter at a 5 s cap: 0.4/s)`);
    });

    it('never returns less than the rate limit, whatever the input', () => {
      const outcomes = [
        { kind: 'error' },
        { kind: 'throttled', retryAfterMillis: 0 },
        { kind: 'answer', index: 'advanced' },
        { kind: 'answer', index: 'backwards' },
        { kind: 'answer', index: 'polled' },
      ] as const;
      for (const outcome of outcomes) {
        for (const since of [-1, 0, 1, 50, 99]) {
          for (const random of [0, 0.3, 0.999]) {
            const d = paceNextRequest({ outcome, failures: 0, anomalies: 0, sinceLastStartMillis: since, random }, SETTINGS);
            assert.ok(d.delayMillis >= rateLimitRemaining(100, since), `${outcome.kind} since ${since}: ${d.delayMillis}`);
            assert.ok(Number.isInteger(d.delayMillis));
          }
        }
      }
    });
  });

  describe('classifyIndex', () => {
    const cases: ReadonlyArray<readonly [boolean, number, number | undefined, number, string]> = [
      [false, 0, 17, 5, 'fresh'],
      [false, 0, undefined, 5, 'missing'],
      [false, 0, 0, 5, 'missing'],
      [true, 17, 18, 5, 'advanced'],
      [true, 17, 9, 5, 'backwards'],
      [true, 17, 17, 5, 'early-unchanged'],
      [true, 17, 17, 14_999, 'early-unchanged'],
      [true, 17, 17, 15_000, 'unchanged'],
      [true, 17, 17, 31_000, 'unchanged'],
      [true, 17, undefined, 31_000, 'missing'],
    ];
    for (const [blocking, sent, reported, elapsed, expected] of cases) {
      it(`${blocking ? 'blocking' : 'non-blocking'} sent ${sent}, got ${reported} after ${elapsed} ms → ${expected}`, () => {
        assert.equal(classifyIndex(blocking, sent, reported, elapsed, 30_000), expected);
      });
    }
  });

  describe('parseRetryAfter', () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    const cases: ReadonlyArray<readonly [string | undefined, number | undefined]> = [
      [undefined, undefined],
      ['', undefined],
      ['3', 3_000],
      [' 120 ', 120_000],
      ['0', 0],
      ['-1', undefined],
      ['1.5', undefined],
      ['soon', undefined],
      ['Wed, 21 Oct 2015 07:28:05 GMT', 5_000],
      ['Wed, 21 Oct 2015 07:27:00 GMT', 0],
      ['2015-10-21T07:28:05Z', undefined],
      ['Wed, 99 Oct 2015 07:28:05 GMT', undefined],
    ];
    for (const [value, expected] of cases) {
      it(`${JSON.stringify(value)} → ${expected}`, () => assert.equal(parseRetryAfter(value, now), expected));
    }
  });
});
