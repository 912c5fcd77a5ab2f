import assert from 'node:assert/strict';
import sinon from 'sinon';
import { DiscoveryError } from '../../../lib/errors.js';
import { PreparedQuerySource, interpretPreparedQuery } from '../../../lib/discovery/prepared-query-source.js';
import type { PreparedQuerySourceOptions } from '../../../lib/discovery/prepared-query-source.js';
import { FakeConsul, LOOP, RecordingListener, TOKEN, answer, healthEntry } from './fake-consul.js';

const INTERVAL = 1_000;
const TAGS = { primary: ['master', 'primary'], replica: ['replica'] };

function execution(nodes: unknown[]): unknown {
  return { Service: 'pglab', Nodes: nodes, DNS: { TTL: '' }, Datacenter: 'dc1', Failovers: 0 };
}

describe('PreparedQuerySource', () => {
  let clock: sinon.SinonFakeTimers;
  let fake: FakeConsul;
  let listener: RecordingListener;
  let logs: Array<{ level: string; message: string; fields: Record<string, unknown> | undefined }>;
  let sources: PreparedQuerySource[];

  function create(overrides: Partial<PreparedQuerySourceOptions> = {}): PreparedQuerySource {
    const { waitSeconds: _unused, ...loop } = LOOP;
    const source = new PreparedQuerySource(
      {
        ...loop,
        name: 'pglab-geo',
        intervalMillis: INTERVAL,
        primaryTags: TAGS.primary,
        replicaTags: TAGS.replica,
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

  describe('interpretPreparedQuery', () => {
    it('reads Nodes as health entries, roles by tags, in Consul’s order', () => {
      const result = interpretPreparedQuery(
        execution([healthEntry('n2', '10.0.0.2', ['replica']), healthEntry('n1', '10.0.0.1', ['master', 'primary']), { Service: { ID: 'bad' } }]),
        TAGS,
        7,
      );
      assert.deepEqual(result.update?.nodes.map((n) => [n.address, n.role]), [['10.0.0.2:5432', 'replica'], ['10.0.0.1:5432', 'primary']]);
      assert.equal(result.update?.source, 'prepared-query');
      assert.equal(result.update?.index, 7);
      assert.equal(result.skipped.length, 1);
    });

    for (const [name, body] of [['an array', []], ['null', null], ['an object without Nodes', { Service: 'x' }], ['Nodes that is not an array', { Nodes: {} }]] as const) {
      it(`rejects ${name}`, () => {
        assert.throws(() => interpretPreparedQuery(body, TAGS, 0), /malformed prepared query response/);
      });
    }
  });

  it('executes at once, then every intervalMillis after an answer; never blocking', async () => {
    const source = create();
    source.start(listener);
    assert.equal(fake.last.path, '/v1/query/pglab-geo/execute');
    assert.deepEqual(fake.last.query, {});
    assert.equal(fake.last.opts.unref, false, 'a short request');
    fake.last.resolve(answer('12', execution([healthEntry('n1', '10.0.0.1', ['master'])])));
    await clock.tickAsync(INTERVAL - 1);
    assert.equal(fake.calls.length, 1);
    await clock.tickAsync(1);
    assert.equal(fake.calls.length, 2);
    assert.deepEqual(fake.last.query, {}, 'no index/wait: prepared queries cannot block');
    assert.equal(listener.last.index, 12);
    assert.equal(source.requestCount, 2);
  });

  it('refresh() cuts the interval short, as soon as the rate limit allows', async () => {
    const source = create();
    source.start(listener);
    fake.last.resolve(answer('12', execution([])));
    await clock.tickAsync(30);
    source.refresh();
    await clock.tickAsync(LOOP.minIntervalMillis - 31);
    assert.equal(fake.calls.length, 1);
    await clock.tickAsync(1);
    assert.equal(fake.calls.length, 2);
    source.refresh(); // in flight: nothing more
    fake.last.resolve(answer('12', execution([])));
    await clock.tickAsync(INTERVAL - 1);
    assert.equal(fake.calls.length, 2, 'back to the interval');
  });

  it('backs off after a failed execution and recovers', async () => {
    create({ random: () => 0.5 }).start(listener);
    fake.last.reject(new DiscoveryError('Consul answered 404 to GET /v1/query/pglab-geo/execute: Query not found', { status: 404 }));
    await clock.tickAsync(0);
    assert.equal(listener.errors[0]?.error.message.includes('404'), true);
    assert.equal(listener.errors[0]?.retryInMillis, 500);
    await clock.tickAsync(500);
    fake.last.resolve(answer('3', execution([healthEntry('n1', '10.0.0.1', ['primary'])])));
    await clock.tickAsync(0);
    assert.equal(listener.updates.length, 1);
    assert.ok(logs.some((l) => l.level === 'info' && /prepared query discovery recovered/.test(l.message)));
  });

  it('sends near when configured', () => {
    create({ near: '_agent' }).start(listener);
    assert.deepEqual(fake.last.query, { near: '_agent' });
  });

  it('names the query in wrapped errors, never the token', async () => {
    create().start(listener);
    fake.last.reject(new Error('socket hang up'));
    await clock.tickAsync(0);
    assert.match(listener.errors[0]?.error.message ?? '', /execution of prepared query "pglab-geo" at http:\/\/127\.0\.0\.1:8500 failed: socket hang up/);
    assert.ok(!JSON.stringify(logs).includes(TOKEN));
  });

  it('stop() aborts the execution in flight and leaves no timer', async () => {
    const source = create();
    source.start(listener);
    const inFlight = fake.last;
    await source.stop();
    assert.equal(inFlight.opts.signal.aborted, true);
    assert.equal(clock.countTimers(), 0);
    assert.equal(listener.errors.length, 0);
  });

  const invalid: ReadonlyArray<[string, Partial<PreparedQuerySourceOptions>, typeof TypeError | typeof RangeError]> = [
    ['an empty name', { name: '' }, TypeError],
    ['intervalMillis 0', { intervalMillis: 0 }, RangeError],
    ['NaN intervalMillis', { intervalMillis: Number.NaN }, RangeError],
    ['a negative minIntervalMillis', { minIntervalMillis: -1 }, RangeError],
  ];
  for (const [name, overrides, type] of invalid) {
    it(`rejects ${name}`, () => assert.throws(() => create(overrides), type));
  }
});
