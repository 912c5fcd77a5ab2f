import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import sinon from 'sinon';
import { ConsulThrottleError } from '../../../lib/discovery/consul-http.js';
import { ConsulHealthSource } from '../../../lib/discovery/consul-health-source.js';
import type { ConsulHealthSourceOptions } from '../../../lib/discovery/consul-health-source.js';
import { DISCOVERY_REQUEST_CHANNEL, RequestBudget } from '../../../lib/discovery/request-budget.js';
import type { DiscoveryRequestMessage } from '../../../lib/discovery/request-budget.js';
import { DiscoveryError } from '../../../lib/errors.js';
import { CONSUL, FakeConsul, RecordingListener, TOKEN, answer, healthEntry } from './fake-consul.js';

const MIN_INTERVAL = 100;
const BODY = [healthEntry('node1', '10.0.0.1', ['master', 'primary'])];

describe('request budget and the discovery request channel', () => {
  let clock: sinon.SinonFakeTimers;
  let messages: DiscoveryRequestMessage[];
  let sources: ConsulHealthSource[];
  const onMessage = (m: unknown): void => {
    messages.push(m as DiscoveryRequestMessage);
  };

  function create(fake: FakeConsul, overrides: Partial<ConsulHealthSourceOptions> = {}): ConsulHealthSource {
    const source = new ConsulHealthSource(
      {
        consul: CONSUL,
        service: 'pglab',
        primaryTags: ['master', 'primary'],
        replicaTags: ['replica'],
        waitSeconds: 30,
        requestTimeoutMillis: 2_000,
        minIntervalMillis: MIN_INTERVAL,
        backoff: { initialMillis: 100, maxMillis: 5_000 },
        ...overrides,
      },
      fake.transport,
    );
    sources.push(source);
    return source;
  }

  beforeEach(() => {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    messages = [];
    sources = [];
    diagnostics.subscribe(DISCOVERY_REQUEST_CHANNEL, onMessage);
  });

  afterEach(async () => {
    diagnostics.unsubscribe(DISCOVERY_REQUEST_CHANNEL, onMessage);
    await Promise.all(sources.map((s) => s.stop()));
    clock.restore();
  });

  it('publishes every request with endpoint, status, duration, the delay chosen and why — never the token', async () => {
    const fake = new FakeConsul();
    const budget = new RequestBudget();
    create(fake, { budget, random: () => 0.5 }).start(new RecordingListener());
    await clock.tickAsync(40);
    fake.last.resolve(answer('17', BODY));
    await clock.tickAsync(MIN_INTERVAL);
    await clock.tickAsync(1_000);
    fake.last.reject(new DiscoveryError('Consul answered 500', { status: 500 }));
    await clock.tickAsync(0);
    assert.deepEqual(messages, [
      {
        budgetId: budget.id,
        endpoint: '/v1/health/service/pglab',
        blocking: false,
        status: 200,
        outcome: 'answer',
        index: 'fresh',
        startedAt: 0,
        durationMillis: 40,
        delayMillis: 60,
        reason: 'rate-limit',
        failures: 0,
        anomalies: 0,
      },
      {
        budgetId: budget.id,
        endpoint: '/v1/health/service/pglab',
        blocking: true,
        status: 500,
        outcome: 'error',
        index: undefined,
        startedAt: 100,
        durationMillis: 1_040,
        delayMillis: 50,
        reason: 'backoff',
        failures: 1,
        anomalies: 0,
      },
    ]);
    assert.ok(!JSON.stringify(messages).includes(TOKEN));
  });

  it('honours Retry-After of a 429, and a refresh() does not cut it short', async () => {
    const fake = new FakeConsul();
    const listener = new RecordingListener();
    const source = create(fake, { random: () => 0 });
    source.start(listener);
    fake.last.reject(new ConsulThrottleError('Consul answered 429', 429, '3'));
    await clock.tickAsync(0);
    assert.equal(listener.errors[0]?.retryInMillis, 3_000);
    assert.equal(messages[0]?.reason, 'retry-after');
    assert.equal(messages[0]?.outcome, 'throttled');
    source.refresh();
    await clock.tickAsync(2_999);
    assert.equal(fake.calls.length, 1);
    await clock.tickAsync(1);
    assert.equal(fake.calls.length, 2);
  });

  it('caps a Retry-After at retryAfterMaxMillis', async () => {
    const fake = new FakeConsul();
    const listener = new RecordingListener();
    create(fake, { random: () => 0, retryAfterMaxMillis: 10_000 }).start(listener);
    fake.last.reject(new ConsulThrottleError('Consul answered 429', 429, '86400'));
    await clock.tickAsync(0);
    assert.equal(listener.errors[0]?.retryInMillis, 10_000);
  });

  it('two loops sharing a budget (one Pool) never start requests closer than the minimum interval', async () => {
    const budget = new RequestBudget();
    const a = new FakeConsul();
    const b = new FakeConsul();
    let index = 10;
    a.onCall = (call) => call.resolve(answer(String(index++), BODY));
    b.onCall = (call) => call.resolve(answer(String(index++), BODY));
    create(a, { budget }).start(new RecordingListener());
    create(b, { budget }).start(new RecordingListener());
    await clock.tickAsync(3_000);
    const starts = [...a.calls, ...b.calls].map((c) => c.at).sort((x, y) => x - y);
    const gaps = starts.slice(1).map((t, i) => t - (starts[i] ?? 0));
    assert.ok(Math.min(...gaps) >= MIN_INTERVAL, `gaps ${gaps.join(',')}`);
    assert.ok(starts.length >= 29 && starts.length <= 31, `${starts.length} requests in 3 s: the Pool's 10/s, not 20/s`);
    assert.ok(a.calls.length >= 10 && b.calls.length >= 10, 'both loops get their turn');
  });

  it('admit(): the interval, first in line after a wait, a stopped loop leaves the line', () => {
    const budget = new RequestBudget();
    const a = Symbol('a');
    const b = Symbol('b');
    assert.equal(budget.admit(a, 1_000, 100), 0);
    assert.equal(budget.admit(b, 1_040, 100), 60, 'b waits for the interval and queues');
    assert.equal(budget.admit(a, 1_100, 100), 100, 'a must let b go first');
    assert.equal(budget.admit(b, 1_100, 100), 0);
    assert.equal(budget.admit(a, 1_200, 100), 0, 'then a');
    assert.equal(budget.admit(b, 1_250, 100), 50);
    budget.join(a);
    budget.join(b);
    assert.equal(budget.members, 2);
    budget.leave(b);
    assert.equal(budget.members, 1);
    assert.equal(budget.admit(a, 1_300, 100), 0, 'nobody in line any more');
    assert.equal(budget.admit(a, 900, 100), 0, 'a clock that went back does not block');
  });

  it('two loops sharing a budget double their backoff cap: under errors the Pool sends what one loop would', async () => {
    const budget = new RequestBudget();
    const a = new FakeConsul();
    const b = new FakeConsul();
    a.onCall = (call) => call.reject(new DiscoveryError('down', { status: 500 }));
    b.onCall = (call) => call.reject(new DiscoveryError('down', { status: 500 }));
    const la = new RecordingListener();
    create(a, { budget, random: () => 0.999 }).start(la);
    create(b, { budget, random: () => 0.999 }).start(new RecordingListener());
    assert.equal(budget.members, 2);
    await clock.tickAsync(120_000);
    const late = la.errors.filter((e) => e.attempt >= 12);
    assert.ok(late.length > 0);
    for (const e of late) assert.equal(e.retryInMillis, 9_990, 'cap 2 × 5 s, jitter 0.999');
  });

  it('separate budgets (two Pools) do not slow each other down', async () => {
    const a = new FakeConsul();
    const b = new FakeConsul();
    let index = 10;
    a.onCall = (call) => call.resolve(answer(String(index++), BODY));
    b.onCall = (call) => call.resolve(answer(String(index++), BODY));
    create(a).start(new RecordingListener());
    create(b).start(new RecordingListener());
    await clock.tickAsync(1_000);
    assert.equal(a.calls.length, 11);
    assert.equal(b.calls.length, 11);
  });
});
