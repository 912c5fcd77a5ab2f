import assert from 'node:assert/strict';
import sinon from 'sinon';
import { DiscoveryError } from '../../../lib/errors.js';
import type { ConsulResponse } from '../../../lib/discovery/consul-http.js';
import { ConsulHealthSource } from '../../../lib/discovery/consul-health-source.js';
import type { ConsulHealthSourceOptions, DiscoveryLogLevel } from '../../../lib/discovery/consul-health-source.js';
import type { TopologyUpdate } from '../../../lib/topology/node.js';
import { CONSUL, FakeConsul, RecordingListener, TOKEN, answer as sharedAnswer, healthEntry } from './fake-consul.js';

const MIN_INTERVAL = 100;
const REQUEST_TIMEOUT = 2_000;
const WAIT_SECONDS = 30;

/** The usual answer: one primary. */
function answer(index: string | undefined, body: unknown = [healthEntry('node1', '10.0.0.1', ['master', 'primary'])]): ConsulResponse {
  return sharedAnswer(index, body);
}

describe('ConsulHealthSource', () => {
  let clock: sinon.SinonFakeTimers;
  let fake: FakeConsul;
  let listener: RecordingListener;
  let logs: Array<{ level: DiscoveryLogLevel; message: string; fields: Record<string, unknown> | undefined }>;
  let sources: ConsulHealthSource[];

  function create(overrides: Partial<ConsulHealthSourceOptions> = {}): ConsulHealthSource {
    const source = new ConsulHealthSource(
      {
        consul: CONSUL,
        service: 'pglab',
        primaryTags: ['master', 'primary'],
        replicaTags: ['replica'],
        waitSeconds: WAIT_SECONDS,
        requestTimeoutMillis: REQUEST_TIMEOUT,
        minIntervalMillis: MIN_INTERVAL,
        backoff: { initialMillis: 1_000, maxMillis: 10_000 },
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
    logs = [];
    sources = [];
  });

  afterEach(async () => {
    await Promise.all(sources.map((s) => s.stop()));
    clock.restore();
  });

  describe('blocking index', () => {
    it('sends the first request at once, with index 0 (no index, no wait)', () => {
      const source = create({ service: 'pg lab/x' });
      source.start(listener);
      assert.equal(fake.calls.length, 1);
      assert.equal(source.requestCount, 1);
      assert.equal(fake.last.path, '/v1/health/service/pg%20lab%2Fx');
      assert.deepEqual(fake.last.query, { passing: true, index: undefined, wait: undefined });
      assert.equal(fake.last.opts.timeoutMillis, REQUEST_TIMEOUT);
      assert.ok(fake.last.opts.agent, 'a keep-alive agent is passed');
      assert.equal(fake.last.opts.unref, false, 'a short request keeps the process alive');
    });

    it('blocks on the returned index, with wait + wait/16 added to the deadline', async () => {
      create().start(listener);
      fake.last.resolve(answer('17'));
      await clock.tickAsync(MIN_INTERVAL);
      assert.equal(fake.calls.length, 2);
      assert.deepEqual(fake.last.query, { passing: true, index: '17', wait: '30s' });
      assert.equal(fake.last.opts.timeoutMillis, 30_000 + 1_875 + REQUEST_TIMEOUT);
      assert.equal(fake.last.opts.unref, true, 'a parked watch does not keep the process alive');
      assert.deepEqual(listener.updates.map((u) => [u.source, u.index, u.nodes.map((n) => n.address)]), [['consul-health', 17, ['10.0.0.1:5432']]]);
    });

    it('reports every answer, changed or not', async () => {
      create().start(listener);
      fake.last.resolve(answer('17'));
      await clock.tickAsync(MIN_INTERVAL);
      for (let i = 0; i < 2; i++) {
        await clock.tickAsync(WAIT_SECONDS * 1000); // Consul holds the read for its wait
        fake.last.resolve(answer('17'));
        await clock.tickAsync(MIN_INTERVAL);
      }
      assert.deepEqual(listener.updates.map((u) => u.index), [17, 17, 17]);
      assert.deepEqual(fake.calls.map((c) => c.query['index']), [undefined, '17', '17', '17']);
    });

    it('resets the index when it goes backwards', async () => {
      create({ random: () => 0 }).start(listener);
      fake.last.resolve(answer('17'));
      await clock.tickAsync(MIN_INTERVAL);
      fake.last.resolve(answer('9'));
      await clock.tickAsync(MIN_INTERVAL);
      assert.deepEqual(fake.last.query, { passing: true, index: undefined, wait: undefined }, 'non-blocking after a reset');
      fake.last.resolve(answer('9'));
      await clock.tickAsync(MIN_INTERVAL);
      assert.equal(fake.last.query['index'], '9');
      assert.deepEqual(listener.updates.map((u) => u.index), [17, 9, 9]);
      assert.ok(logs.some((l) => l.level === 'debug' && /went backwards/.test(l.message)));
    });

    it('does not block after an answer without a usable X-Consul-Index, and warns', async () => {
      create({ random: () => 0 }).start(listener);
      fake.last.resolve(answer(undefined));
      await clock.tickAsync(MIN_INTERVAL);
      assert.equal(fake.last.query['index'], undefined);
      fake.last.resolve(answer('junk'));
      await clock.tickAsync(MIN_INTERVAL);
      assert.equal(fake.last.query['index'], undefined);
      assert.deepEqual(listener.updates.map((u) => u.index), [0, 0]);
      assert.equal(logs.filter((l) => l.level === 'warn' && /X-Consul-Index/.test(l.message)).length, 2);
      assert.equal(listener.errors.length, 0);
    });
  });

  describe('rate limit', () => {
    it('spaces requests by minIntervalMillis when the index moves on every answer (≤ 10/s)', async () => {
      let index = 5;
      fake.onCall = (call) => call.resolve(answer(String(index++)));
      const source = create();
      const started = Date.now();
      source.start(listener);
      await clock.tickAsync(MIN_INTERVAL * 9);
      assert.equal(fake.calls.length, 10);
      assert.deepEqual(
        fake.calls.map((c) => c.at - started),
        Array.from({ length: 10 }, (_, i) => i * MIN_INTERVAL),
      );
      assert.equal(listener.updates.length, 10);
      await clock.tickAsync(MIN_INTERVAL - 1);
      assert.equal(fake.calls.length, 10, 'not one request early');
    });

    it('backs off (growing, jittered) when Consul answers a blocking read at once with the same index', async () => {
      fake.onCall = (call) => call.resolve(answer('5'));
      create({ random: () => 0.999 }).start(listener);
      await clock.tickAsync(60_000);
      // non-blocking, then ≈1 s, 2 s, 4 s, 8 s and 10 s (cap) apart: far fewer than 600
      const gaps = fake.calls.slice(1).map((c, i) => c.at - (fake.calls[i]?.at ?? 0));
      assert.deepEqual(gaps.slice(0, 6), [MIN_INTERVAL, 999, 1998, 3996, 7992, 9990]);
      assert.equal(listener.errors.length, 0, 'not an error: the answers are used');
      assert.equal(listener.updates.length, fake.calls.length);
      assert.equal(fake.calls.length, 10, "10 requests in 60 s instead of 600");
      assert.ok(logs.some((l) => /early with the same index/.test(l.message)));
    });

    it('a blocking read that ran its full wait is followed at once; the anomaly count resets', async () => {
      let early = 3;
      fake.onCall = (call) => {
        if (call.query['index'] === undefined || early-- > 0) call.resolve(answer('5'));
      };
      create({ random: () => 0.999 }).start(listener);
      await clock.tickAsync(10_000); // 1 + 3 early answers, backing off 999 + 1998 + 3996
      assert.equal(fake.calls.length, 5);
      await clock.tickAsync(WAIT_SECONDS * 1000);
      fake.last.resolve(answer('5'));
      await clock.tickAsync(MIN_INTERVAL);
      assert.equal(fake.calls.length, 6, 'no backoff after a full wait');
      fake.last.resolve(answer('5'));
      await clock.tickAsync(998);
      assert.equal(fake.calls.length, 6);
      await clock.tickAsync(1);
      assert.equal(fake.calls.length, 7, 'the next early answer starts the backoff over');
    });

    it('sends the next request at once when the previous one blocked longer than the interval', async () => {
      create().start(listener);
      fake.last.resolve(answer('5'));
      await clock.tickAsync(MIN_INTERVAL);
      await clock.tickAsync(5_000); // Consul holds the blocking request
      fake.last.resolve(answer('6'));
      await clock.tickAsync(0);
      assert.equal(fake.calls.length, 3);
      assert.equal(fake.last.query['index'], '6');
    });

    it('waits the full interval when the clock went backwards', async () => {
      let now = 1_000_000;
      create({ now: () => now }).start(listener);
      now -= 60_000;
      fake.last.resolve(answer('5'));
      await clock.tickAsync(MIN_INTERVAL - 1);
      assert.equal(fake.calls.length, 1);
      await clock.tickAsync(1);
      assert.equal(fake.calls.length, 2);
    });

    it('works with minIntervalMillis 0', async () => {
      let answered = 0;
      fake.onCall = (call) => {
        if (answered++ < 3) call.resolve(answer(String(5 + answered)));
      };
      create({ minIntervalMillis: 0 }).start(listener);
      await clock.tickAsync(10);
      assert.equal(fake.calls.length, 4);
      assert.equal(listener.updates.length, 3);
    });
  });

  describe('errors and backoff', () => {
    it('reports a 500, retries after the jittered backoff with index 0', async () => {
      create({ random: () => 0.5 }).start(listener);
      fake.last.resolve(answer('17'));
      await clock.tickAsync(MIN_INTERVAL);
      assert.equal(fake.last.query['index'], '17');
      const failure = new DiscoveryError('Consul answered 500', { status: 500 });
      fake.last.reject(failure);
      await clock.tickAsync(0);
      assert.equal(listener.errors.length, 1);
      assert.equal(listener.errors[0]?.error, failure);
      assert.equal(listener.errors[0]?.attempt, 1);
      assert.equal(listener.errors[0]?.retryInMillis, 500); // 0.5 × initial 1 000
      await clock.tickAsync(499);
      assert.equal(fake.calls.length, 2);
      await clock.tickAsync(1);
      assert.equal(fake.calls.length, 3);
      assert.deepEqual(fake.last.query, { passing: true, index: undefined, wait: undefined }, 'index reset after an error');
      assert.ok(logs.some((l) => l.level === 'warn' && l.fields?.['status'] === 500 && l.fields['attempt'] === 1));
    });

    it('keeps jittered delays within [0, min(max, initial × 2^(n−1))) and never under the rate limit', async () => {
      fake.onCall = (call) => call.reject(new DiscoveryError('boom', { status: 503 }));
      create().start(listener);
      for (let n = 1; n <= 12; n++) {
        await clock.tickAsync(0);
        const info = listener.errors[n - 1];
        assert.ok(info, `error ${n} reported`);
        const ceiling = Math.min(10_000, 1_000 * 2 ** (n - 1));
        assert.equal(info.attempt, n);
        assert.ok(info.retryInMillis >= MIN_INTERVAL && info.retryInMillis < ceiling, `attempt ${n}: ${info.retryInMillis}`);
        const before = fake.calls.length;
        await clock.tickAsync(info.retryInMillis);
        assert.equal(fake.calls.length, before + 1, `retry ${n} sent after exactly retryInMillis`);
      }
    });

    it('reports the rate-limit delay when the backoff is shorter', async () => {
      fake.onCall = (call) => call.reject(new DiscoveryError('boom'));
      create({ random: () => 0 }).start(listener);
      await clock.tickAsync(0);
      assert.equal(listener.errors[0]?.retryInMillis, MIN_INTERVAL);
    });

    const failures: ReadonlyArray<[string, () => ConsulResponse | Error, RegExp]> = [
      ['a garbage (non-array) body', () => answer('3', { Nodes: [] }), /malformed health response: expected an array/],
      ['a null body', () => answer('3', null), /expected an array/],
      ['a network error (plain Error)', () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8500'), { code: 'ECONNREFUSED' }), /ECONNREFUSED/],
      ['a non-Error rejection', () => 'weird' as unknown as Error, /failed: weird/],
    ];
    for (const [name, make, pattern] of failures) {
      it(`treats ${name} as a failed round`, async () => {
        create().start(listener);
        const outcome = make();
        if (outcome instanceof Error || typeof outcome === 'string') fake.last.reject(outcome);
        else fake.last.resolve(outcome);
        await clock.tickAsync(0);
        assert.equal(listener.updates.length, 0);
        assert.equal(listener.errors.length, 1);
        const { error } = listener.errors[0] ?? {};
        assert.ok(error instanceof DiscoveryError, 'always a DiscoveryError');
        assert.match(error.message, pattern);
        assert.ok(!error.message.includes(TOKEN));
      });
    }

    it('survives a transport that throws synchronously', async () => {
      let calls = 0;
      const source = new ConsulHealthSource(
        {
          consul: CONSUL, service: 'pglab', primaryTags: ['master'], replicaTags: ['replica'], waitSeconds: 1,
          requestTimeoutMillis: 1_000, minIntervalMillis: 10, backoff: { initialMillis: 10, maxMillis: 10 },
        },
        () => {
          calls += 1;
          throw new Error('sync failure');
        },
      );
      sources.push(source);
      source.start(listener);
      await clock.tickAsync(100);
      assert.ok(calls >= 5, `kept retrying (${calls})`);
      assert.equal(listener.errors.length, calls);
    });

    it('recovers after errors: update delivered, attempts start over, info logged', async () => {
      create({ random: () => 0.5 }).start(listener);
      for (let i = 0; i < 3; i++) {
        fake.last.reject(new DiscoveryError('down'));
        await clock.tickAsync(0);
        await clock.tickAsync(listener.errors.at(-1)?.retryInMillis ?? 0);
      }
      assert.deepEqual(listener.errors.map((e) => e.attempt), [1, 2, 3]);
      assert.deepEqual(listener.errors.map((e) => e.retryInMillis), [500, 1_000, 2_000]);
      fake.last.resolve(answer('40'));
      await clock.tickAsync(MIN_INTERVAL);
      assert.equal(listener.updates.length, 1);
      assert.equal(fake.last.query['index'], '40');
      assert.ok(logs.some((l) => l.level === 'info' && /recovered/.test(l.message) && l.fields?.['failedAttempts'] === 3));
      fake.last.reject(new DiscoveryError('down again'));
      await clock.tickAsync(0);
      assert.equal(listener.errors.at(-1)?.attempt, 1);
      assert.equal(listener.errors.at(-1)?.retryInMillis, 500);
    });
  });

  describe('skipped entries', () => {
    it('reports each skipped entry to the listener and the debug log, and still updates', async () => {
      create().start(listener);
      fake.last.resolve(answer('3', [healthEntry('node1', '10.0.0.1', ['master']), { Service: { ID: 'pglab/bad', Address: 'x y', Port: 5432 } }, null]));
      await clock.tickAsync(0);
      assert.equal(listener.skipped.length, 2);
      assert.match(listener.skipped[0] ?? '', /invalid address/);
      assert.match(listener.skipped[1] ?? '', /not an object/);
      assert.equal(logs.filter((l) => l.level === 'debug' && /^skipped Consul health entry/.test(l.message)).length, 2);
      assert.equal(listener.updates[0]?.nodes.length, 1);
    });

    it('works with a listener without onSkippedEntry', async () => {
      const updates: TopologyUpdate[] = [];
      create().start({ onUpdate: (u) => updates.push(u), onError: () => undefined });
      fake.last.resolve(answer('3', [healthEntry('node1', '10.0.0.1', ['master']), null]));
      await clock.tickAsync(0);
      assert.equal(updates.length, 1);
    });

    it('an answer whose every entry is malformed is a failed round (backoff), not an empty cluster', async () => {
      create({ random: () => 0.5 }).start(listener);
      fake.last.resolve(answer('3'));
      await clock.tickAsync(MIN_INTERVAL);
      fake.last.resolve(answer('4', [null, { Node: 5, Service: 'x' }]));
      await clock.tickAsync(0);
      assert.equal(listener.updates.length, 1, 'the good topology stays');
      assert.equal(listener.errors.length, 1);
      assert.match(listener.errors[0]?.error.message ?? '', /every Consul health entry in the answer was malformed \(entry 0: not an object/);
      assert.equal(listener.errors[0]?.attempt, 1);
      await clock.tickAsync(500); // backoff: 0.5 × 1 000
      assert.equal(fake.calls.length, 3);
      fake.last.resolve(answer('4', []));
      await clock.tickAsync(0);
      assert.equal(listener.updates.at(-1)?.nodes.length, 0, 'an empty list is a valid answer');
    });
  });

  describe('stop()', () => {
    it('aborts the request in flight at once and resolves; no callbacks afterwards', async () => {
      const source = create();
      source.start(listener);
      fake.last.resolve(answer('17'));
      await clock.tickAsync(MIN_INTERVAL);
      const inFlight = fake.last;
      assert.equal(inFlight.opts.signal.aborted, false);
      const stopping = source.stop();
      assert.equal(inFlight.opts.signal.aborted, true, 'aborted synchronously');
      await stopping;
      await clock.tickAsync(600_000);
      assert.equal(fake.calls.length, 2);
      assert.equal(listener.errors.length, 0, 'the abort is not reported as an error');
      assert.equal(listener.updates.length, 1);
      assert.equal(clock.countTimers(), 0, 'no timers left');
    });

    it('ignores an answer that lands after stop()', async () => {
      const source = create();
      source.start(listener);
      const call = fake.last;
      const stopping = source.stop();
      call.resolve(answer('1'));
      await stopping;
      await clock.tickAsync(1_000);
      assert.equal(listener.updates.length, 0);
    });

    it('clears a pending backoff timer', async () => {
      const source = create();
      source.start(listener);
      fake.last.reject(new DiscoveryError('down'));
      await clock.tickAsync(0);
      assert.equal(clock.countTimers(), 1);
      await source.stop();
      assert.equal(clock.countTimers(), 0);
      await clock.tickAsync(60_000);
      assert.equal(fake.calls.length, 1);
    });

    it('is idempotent, works before start, and forbids a later start', async () => {
      const source = create();
      const first = source.stop();
      assert.equal(source.stop(), first);
      await first;
      assert.throws(() => source.start(listener), /only once/);
      assert.equal(fake.calls.length, 0);
    });

    it('can be called from inside a listener callback', async () => {
      const source = create();
      let stopped: Promise<void> | undefined;
      source.start({
        onUpdate: () => {
          stopped = source.stop();
        },
        onError: () => assert.fail('no error expected'),
        onSkippedEntry: () => assert.fail('no callback after stop'),
      });
      fake.last.resolve(answer('5', [healthEntry('a', '10.0.0.1', ['master'])]));
      await clock.tickAsync(0);
      assert.ok(stopped);
      await stopped;
      await clock.tickAsync(10_000);
      assert.equal(fake.calls.length, 1);
    });

    it('makes no further callbacks of the same answer once a callback stopped the source', async () => {
      const source = create();
      const updates: TopologyUpdate[] = [];
      source.start({
        onUpdate: (u) => updates.push(u),
        onError: () => undefined,
        onSkippedEntry: () => {
          void source.stop();
        },
      });
      fake.last.resolve(answer('5', [null, null]));
      await clock.tickAsync(0);
      assert.equal(updates.length, 0);
    });
  });

  describe('refresh()', () => {
    it('does nothing while a blocking request is in flight', async () => {
      const source = create();
      source.start(listener);
      fake.last.resolve(answer('17'));
      await clock.tickAsync(MIN_INTERVAL);
      source.refresh();
      await clock.tickAsync(MIN_INTERVAL * 5);
      assert.equal(fake.calls.length, 2);
    });

    it('does nothing while the first (non-blocking) request is in flight', async () => {
      const source = create();
      source.start(listener);
      source.refresh();
      await clock.tickAsync(MIN_INTERVAL * 5);
      assert.equal(fake.calls.length, 1);
    });

    it('keeps a backoff (a refresh must not multiply requests to a failing Consul), then sends a non-blocking request', async () => {
      const source = create({ random: () => 0.9 });
      source.start(listener);
      fake.last.resolve(answer('17'));
      await clock.tickAsync(MIN_INTERVAL);
      fake.last.reject(new DiscoveryError('down'));
      await clock.tickAsync(10);
      assert.equal(listener.errors[0]?.retryInMillis, 900);
      source.refresh();
      source.refresh();
      await clock.tickAsync(900 - 11);
      assert.equal(fake.calls.length, 2, 'still backing off');
      await clock.tickAsync(1);
      assert.equal(fake.calls.length, 3);
      assert.equal(fake.last.query['index'], undefined);
    });

    it('turns the next request after an answer into a non-blocking one', async () => {
      const source = create();
      source.start(listener);
      fake.last.resolve(answer('17'));
      await clock.tickAsync(10);
      source.refresh();
      await clock.tickAsync(MIN_INTERVAL);
      assert.equal(fake.calls.length, 2);
      assert.equal(fake.last.query['index'], undefined);
      fake.last.resolve(answer('18'));
      await clock.tickAsync(MIN_INTERVAL);
      assert.equal(fake.last.query['index'], '18', 'blocking again afterwards');
    });

    it('works from inside onUpdate', async () => {
      const source = create();
      let refreshed = false;
      source.start({
        onUpdate: () => {
          if (!refreshed) {
            refreshed = true;
            source.refresh();
          }
        },
        onError: () => undefined,
      });
      fake.last.resolve(answer('17'));
      await clock.tickAsync(MIN_INTERVAL);
      assert.equal(fake.calls.length, 2);
      assert.equal(fake.last.query['index'], undefined);
    });

    it('is a no-op before start and after stop', async () => {
      const source = create();
      source.refresh();
      assert.equal(fake.calls.length, 0);
      source.start(listener);
      await source.stop();
      source.refresh();
      await clock.tickAsync(1_000);
      assert.equal(fake.calls.length, 1);
    });
  });

  describe('listener and logger failures', () => {
    it('keeps running when every listener callback throws', async () => {
      fake.onCall = (call) => {
        if (fake.calls.length % 2 === 0) call.reject(new DiscoveryError('odd failure'));
        else call.resolve(answer('5', [null, healthEntry('a', '10.0.0.1', ['master'])]));
      };
      const seen = { update: 0, error: 0, skipped: 0 };
      create({ random: () => 0 }).start({
        onUpdate: () => {
          seen.update += 1;
          throw new Error('update boom');
        },
        onError: () => {
          seen.error += 1;
          throw new Error('error boom');
        },
        onSkippedEntry: () => {
          seen.skipped += 1;
          throw new Error('skip boom');
        },
      });
      await clock.tickAsync(MIN_INTERVAL * 5);
      assert.equal(fake.calls.length, 6);
      assert.deepEqual(seen, { update: 3, error: 3, skipped: 3 });
      const errorLogs = logs.filter((l) => l.level === 'error').map((l) => l.message);
      assert.ok(errorLogs.some((m) => /onUpdate threw: update boom/.test(m)));
      assert.ok(errorLogs.some((m) => /onError threw: error boom/.test(m)));
      assert.ok(errorLogs.some((m) => /onSkippedEntry threw: skip boom/.test(m)));
    });

    it('keeps running when the logger throws', async () => {
      create({
        logger: () => {
          throw new Error('logger boom');
        },
      }).start(listener);
      fake.last.resolve(answer('5'));
      await clock.tickAsync(MIN_INTERVAL);
      fake.last.reject(new DiscoveryError('down'));
      await clock.tickAsync(0);
      assert.equal(listener.updates.length, 1);
      assert.equal(listener.errors.length, 1);
    });
  });

  describe('secrets', () => {
    it('never puts the token in logs or errors', async () => {
      fake.onCall = (call) => {
        if (fake.calls.length === 1) call.resolve(answer('5', [null]));
        else call.reject(new Error('connect ECONNREFUSED'));
      };
      create({ random: () => 0 }).start(listener);
      await clock.tickAsync(MIN_INTERVAL * 3);
      assert.ok(logs.length > 3 && listener.errors.length > 0);
      const text = JSON.stringify(logs) + listener.errors.map((e) => e.error.message).join('\n');
      assert.ok(!text.includes(TOKEN), 'token leaked');
      assert.ok(logs.every((l) => l.fields?.['consul'] === 'http://127.0.0.1:8500'));
    });
  });

  describe('options', () => {
    const base = {
      consul: CONSUL, service: 'pglab', primaryTags: ['master'], replicaTags: ['replica'], waitSeconds: 30,
      requestTimeoutMillis: 1_000, minIntervalMillis: 100, backoff: { initialMillis: 100, maxMillis: 1_000 },
    };
    const invalid: ReadonlyArray<[string, Partial<ConsulHealthSourceOptions>, typeof TypeError | typeof RangeError]> = [
      ['empty service', { service: '' }, TypeError],
      ['waitSeconds 0', { waitSeconds: 0 }, RangeError],
      ['waitSeconds 601', { waitSeconds: 601 }, RangeError],
      ['fractional waitSeconds', { waitSeconds: 1.5 }, RangeError],
      ['requestTimeoutMillis 0', { requestTimeoutMillis: 0 }, RangeError],
      ['negative minIntervalMillis', { minIntervalMillis: -1 }, RangeError],
      ['NaN minIntervalMillis', { minIntervalMillis: Number.NaN }, RangeError],
      ['negative backoff', { backoff: { initialMillis: -1, maxMillis: 10 } }, RangeError],
      ['backoff max < initial', { backoff: { initialMillis: 100, maxMillis: 10 } }, RangeError],
    ];
    for (const [name, overrides, type] of invalid) {
      it(`rejects ${name}`, () => {
        assert.throws(() => new ConsulHealthSource({ ...base, ...overrides }, fake.transport), type);
      });
    }

    it('accepts the extremes', () => {
      assert.doesNotThrow(() => new ConsulHealthSource({ ...base, waitSeconds: 600, minIntervalMillis: 0, backoff: { initialMillis: 0, maxMillis: 0 } }));
    });
  });
});
