import assert from 'node:assert/strict';
import sinon from 'sinon';
import { AutoSource, decideAutoPath, kvProbeFromAnswer, kvProbeFromError, patroniKeysPresent } from '../../../lib/discovery/auto-source.js';
import type { AutoPath, PatroniKvProbe } from '../../../lib/discovery/auto-source.js';
import { DiscoveryError } from '../../../lib/errors.js';
import type { Call } from './fake-consul.js';
import { FakeConsul, LOOP, RecordingListener, TOKEN, answer, healthEntry, kv, member } from './fake-consul.js';

const PREFIX = 'service/pglab/';
const KV_PATH = '/v1/kv/service/pglab/';
const HEALTH_PATH = '/v1/health/service/pglab';
const forbidden = (): DiscoveryError => new DiscoveryError('Consul at http://127.0.0.1:8500 answered 403 to GET /v1/kv/service/pglab/: Permission denied', { status: 403 });

describe('discovery auto', () => {
  describe('patroniKeysPresent', () => {
    const table: ReadonlyArray<[string, unknown, boolean]> = [
      ['a 404 (null body)', null, false],
      ['an empty list', [], false],
      ['the leader key', [kv('leader', 'node1')], true],
      ['a member key', [member('node1', 5432, 'replica')], true],
      ['config and initialize only (a removed cluster)', [kv('config', '{}'), kv('initialize', '7')], false],
      ['"members/" itself, without a name', [kv('members/', null)], false],
      ['keys of another scope sharing the prefix text', [{ Key: 'service/pglab2/leader' }], false],
      ['malformed entries', [null, 5, { Key: 7 }], false],
    ];
    for (const [name, body, expected] of table) {
      it(`${name} → ${expected ? 'present' : 'absent'}`, () => assert.equal(patroniKeysPresent(body, PREFIX), expected));
    }
  });

  describe('kvProbeFromAnswer', () => {
    it('keys present win; no keys with the ACL-filtered header is forbidden; else absent', () => {
      const filtered = { 'x-consul-results-filtered-by-acls': 'true' };
      assert.deepEqual(kvProbeFromAnswer([kv('leader', 'node1')], filtered, PREFIX), { kind: 'present' });
      assert.deepEqual(kvProbeFromAnswer(null, filtered, PREFIX), { kind: 'forbidden' });
      assert.deepEqual(kvProbeFromAnswer([kv('config', '{}')], filtered, PREFIX), { kind: 'forbidden' });
      assert.deepEqual(kvProbeFromAnswer(null, {}, PREFIX), { kind: 'absent' });
      assert.deepEqual(kvProbeFromAnswer([], { 'x-consul-results-filtered-by-acls': 'false' }, PREFIX), { kind: 'absent' });
    });
  });

  describe('kvProbeFromError', () => {
    it('403 is forbidden; other failures are failed with their message', () => {
      assert.deepEqual(kvProbeFromError(forbidden()), { kind: 'forbidden' });
      assert.deepEqual(kvProbeFromError(new DiscoveryError('answered 500', { status: 500 })), { kind: 'failed', message: 'answered 500' });
      assert.deepEqual(kvProbeFromError(new Error('ECONNREFUSED')), { kind: 'failed', message: 'ECONNREFUSED' });
    });
  });

  describe('decideAutoPath', () => {
    const failed: PatroniKvProbe = { kind: 'failed', message: 'timed out' };
    const table: ReadonlyArray<[string, AutoPath | undefined, PatroniKvProbe, AutoPath, RegExp]> = [
      ['keys present at start', undefined, { kind: 'present' }, 'patroni+health', /leader key/],
      ['keys absent at start', undefined, { kind: 'absent' }, 'consul-health', /no Patroni leader or member key under "service\/pglab\/"/],
      ['403 at start', undefined, { kind: 'forbidden' }, 'consul-health', /403 or entries filtered by ACLs; needs key:read on that prefix/],
      ['keys vanish', 'patroni+health', { kind: 'absent' }, 'consul-health', /no Patroni leader/],
      ['keys appear', 'consul-health', { kind: 'present' }, 'patroni+health', /leader key/],
      ['token loses key:read', 'patroni+health', { kind: 'forbidden' }, 'consul-health', /403/],
      ['token gains key:read', 'consul-health', { kind: 'present' }, 'patroni+health', /leader key/],
      ['a failed read keeps the KV path', 'patroni+health', failed, 'patroni+health', /unchanged/],
      ['a failed read keeps the health path', 'consul-health', failed, 'consul-health', /unchanged/],
      ['a failed read before any answer', undefined, failed, 'consul-health', /could not be read \(timed out\)/],
    ];
    for (const [name, current, probe, path, reason] of table) {
      it(`${name} → ${path}`, () => {
        const decision = decideAutoPath(current, probe, PREFIX);
        assert.equal(decision.path, path);
        assert.match(decision.reason, reason);
      });
    }
  });

  describe('AutoSource (shared Consul fake)', () => {
    let clock: sinon.SinonFakeTimers;
    let fake: FakeConsul;
    let listener: RecordingListener;
    let logs: Array<{ level: string; message: string }>;
    let source: AutoSource;

    const latest = (path: string): Call => {
      const call = fake.calls.filter((c) => c.path === path).at(-1);
      assert.ok(call, `no request to ${path}`);
      return call;
    };
    const roles = (): Array<[string, string]> => listener.last.nodes.map((n) => [n.name, n.role]);
    const infos = (): string[] => logs.filter((l) => l.level === 'info').map((l) => l.message);
    const HEALTH = [healthEntry('node1', '127.0.0.1', ['master'], 5432), healthEntry('node2', '127.0.0.1', ['replica'], 5433)];
    // Patroni says node2 leads while health still tags node1 master (a switchover under way).
    const KV_SWITCHED = [kv('leader', 'node2'), member('node1', 5432, 'replica'), member('node2', 5433, 'master')];

    beforeEach(() => {
      clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
      fake = new FakeConsul();
      listener = new RecordingListener();
      logs = [];
      const logger = (level: string, message: string): number => logs.push({ level, message });
      source = new AutoSource(
        {
          kv: { ...LOOP, namespace: 'service', scope: 'pglab', logger, random: () => 0.5 },
          health: { ...LOOP, service: 'pglab', primaryTags: ['master', 'primary'], replicaTags: ['replica'], logger },
        },
        fake.transport,
      );
      source.start(listener);
    });

    afterEach(async () => {
      await source.stop();
      clock.restore();
    });

    it('starts one KV and one health watch; reports nothing until the KV read decided', async () => {
      assert.deepEqual(fake.calls.map((c) => c.path).sort(), [HEALTH_PATH, KV_PATH]);
      latest(HEALTH_PATH).resolve(answer('10', HEALTH));
      await clock.tickAsync(0);
      assert.equal(listener.updates.length, 0);
      assert.equal(source.path, undefined);
      assert.equal(source.requestCount, 2);
    });

    it('keys present → the leader key decides the primary (patroni+health), one info line', async () => {
      latest(HEALTH_PATH).resolve(answer('10', HEALTH));
      latest(KV_PATH).resolve(answer('11', KV_SWITCHED));
      await clock.tickAsync(0);
      assert.equal(source.path, 'patroni+health');
      assert.equal(listener.last.source, 'patroni+health');
      assert.deepEqual(roles(), [['node2', 'primary'], ['node1', 'other']]);
      assert.equal(infos().length, 1);
      assert.match(infos()[0]!, /^discovery auto: patroni\+health — Patroni's keys exist under "service\/pglab\/"/);
    });

    it('keys absent (404) → consul-health as is, with one info line saying why', async () => {
      latest(KV_PATH).resolve(answer('5', null, 404));
      latest(HEALTH_PATH).resolve(answer('10', HEALTH));
      await clock.tickAsync(LOOP.minIntervalMillis);
      assert.equal(source.path, 'consul-health');
      assert.equal(listener.last.source, 'consul-health');
      assert.deepEqual(roles(), [['node1', 'primary'], ['node2', 'replica']]);
      assert.deepEqual(infos(), ['discovery auto: consul-health — no Patroni leader or member key under "service/pglab/": the primary and replicas come from the health endpoint']);
      assert.equal(latest(KV_PATH).query['index'], '5', 'the KV watch keeps blocking on the prefix');
      assert.equal(listener.errors.length, 0);
    });

    it('403 → consul-health; retries are neither errors nor warnings, and say it once', async () => {
      latest(HEALTH_PATH).resolve(answer('10', HEALTH));
      latest(KV_PATH).reject(forbidden());
      await clock.tickAsync(0);
      assert.equal(source.path, 'consul-health');
      assert.equal(listener.last.source, 'consul-health');
      for (let i = 0; i < 3; i++) {
        await clock.tickAsync(LOOP.backoff.maxMillis);
        latest(KV_PATH).reject(forbidden());
        await clock.tickAsync(0);
      }
      assert.ok(fake.calls.filter((c) => c.path === KV_PATH).length >= 4, 'the KV read is retried (the ACL may be granted later)');
      assert.equal(listener.errors.length, 0, 'a 403 on the KV prefix is a decision, not a discovery error');
      assert.deepEqual(logs.filter((l) => l.level === 'warn' || l.level === 'error'), []);
      assert.equal(infos().length, 1);
      assert.match(infos()[0]!, /may not read "service\/pglab\/" \(403 or entries filtered by ACLs; needs key:read on that prefix\)/);
      assert.ok(logs.every((l) => !l.message.includes(TOKEN)));
    });

    it('a 404 with the ACL-filtered header → consul-health, saying the token may not read the prefix', async () => {
      latest(HEALTH_PATH).resolve(answer('10', HEALTH));
      latest(KV_PATH).resolve({ status: 404, headers: { 'x-consul-index': '5', 'x-consul-results-filtered-by-acls': 'true' }, body: null });
      await clock.tickAsync(0);
      assert.equal(source.path, 'consul-health');
      assert.equal(listener.errors.length, 0);
      assert.match(infos()[0] ?? '', /may not read "service\/pglab\/"/);
    });

    it('keys appear at run time → switches to the leader key without a restart', async () => {
      latest(KV_PATH).resolve(answer('5', null, 404));
      latest(HEALTH_PATH).resolve(answer('10', HEALTH));
      await clock.tickAsync(LOOP.minIntervalMillis);
      assert.equal(source.path, 'consul-health');
      latest(KV_PATH).resolve(answer('12', KV_SWITCHED));
      await clock.tickAsync(0);
      assert.equal(source.path, 'patroni+health');
      assert.deepEqual(roles(), [['node2', 'primary'], ['node1', 'other']]);
      assert.equal(infos().length, 2);
    });

    it('keys vanish → back to consul-health; the token gains key:read → KV again', async () => {
      latest(HEALTH_PATH).resolve(answer('10', HEALTH));
      latest(KV_PATH).resolve(answer('11', KV_SWITCHED));
      await clock.tickAsync(LOOP.minIntervalMillis);
      latest(KV_PATH).resolve(answer('13', [kv('config', '{}')]));
      await clock.tickAsync(LOOP.minIntervalMillis);
      assert.equal(source.path, 'consul-health');
      assert.deepEqual(roles(), [['node1', 'primary'], ['node2', 'replica']]);
      latest(KV_PATH).reject(forbidden());
      await clock.tickAsync(0);
      assert.equal(source.path, 'consul-health');
      await clock.tickAsync(LOOP.backoff.maxMillis);
      latest(KV_PATH).resolve(answer('20', KV_SWITCHED));
      await clock.tickAsync(0);
      assert.equal(source.path, 'patroni+health');
      assert.deepEqual(infos().map((m) => m.split(' — ')[0]), ['discovery auto: patroni+health', 'discovery auto: consul-health', 'discovery auto: patroni+health']);
    });

    it('a KV failure on the KV path is reported and keeps the path; health failures are always reported', async () => {
      latest(HEALTH_PATH).resolve(answer('10', HEALTH));
      latest(KV_PATH).resolve(answer('11', KV_SWITCHED));
      await clock.tickAsync(LOOP.minIntervalMillis);
      latest(KV_PATH).reject(new DiscoveryError('Consul answered 500', { status: 500 }));
      latest(HEALTH_PATH).reject(new DiscoveryError('Consul answered 503', { status: 503 }));
      await clock.tickAsync(0);
      assert.equal(source.path, 'patroni+health');
      assert.deepEqual(listener.errors.map((e) => e.error.message).sort(), ['Consul answered 500', 'Consul answered 503']);
    });

    it('a KV failure before any answer falls back to consul-health (bounded start), then takes the KV path once readable', async () => {
      latest(HEALTH_PATH).resolve(answer('10', HEALTH));
      latest(KV_PATH).reject(new DiscoveryError('timed out after 2000 ms'));
      await clock.tickAsync(0);
      assert.equal(source.path, 'consul-health');
      assert.equal(listener.last.source, 'consul-health');
      assert.equal(listener.errors.length, 0);
      await clock.tickAsync(LOOP.backoff.maxMillis);
      latest(KV_PATH).resolve(answer('11', KV_SWITCHED));
      await clock.tickAsync(0);
      assert.equal(source.path, 'patroni+health');
    });

    it('refresh() never cuts the watches\' error backoff short (the Pool\'s request budget); both retry after it; stop() ends both, nothing afterwards', async () => {
      latest(HEALTH_PATH).resolve(answer('10', HEALTH));
      latest(KV_PATH).resolve(answer('11', KV_SWITCHED));
      await clock.tickAsync(LOOP.minIntervalMillis);
      latest(KV_PATH).reject(new DiscoveryError('Consul answered 500', { status: 500 }));
      latest(HEALTH_PATH).reject(new DiscoveryError('Consul answered 500', { status: 500 }));
      await clock.tickAsync(0);
      const before = fake.calls.length;
      source.refresh();
      // The first error backs off by up to 100 ms (full jitter, scaled by the two loops).
      await clock.tickAsync(1_000);
      assert.deepEqual([...new Set(fake.calls.slice(before).map((c) => c.path))].sort(), [HEALTH_PATH, KV_PATH]);
      const updates = listener.updates.length;
      await source.stop();
      for (const call of fake.calls) call.resolve(answer('99', []));
      await clock.tickAsync(1_000);
      assert.equal(listener.updates.length, updates);
      assert.throws(() => source.start(listener), /only once/);
    });
  });
});
