import assert from 'node:assert/strict';
import sinon from 'sinon';
import { parseHostEntry } from '../../../lib/discovery/host-list.js';
import type { StaticHost } from '../../../lib/discovery/host-list.js';
import { roleFromProbe } from '../../../lib/discovery/pg-probe.js';
import type { ProbeOptions, ProbeResult } from '../../../lib/discovery/pg-probe.js';
import { StaticHostSource, staticNodes } from '../../../lib/discovery/static-host-source.js';
import type { StaticHostSourceOptions } from '../../../lib/discovery/static-host-source.js';
import { EMPTY_TOPOLOGY, applyUpdate } from '../../../lib/topology/snapshot.js';
import { RecordingListener } from './fake-consul.js';

const PRIMARY: ProbeResult = { reachable: true, inRecovery: false, readOnly: false };
const STANDBY: ProbeResult = { reachable: true, inRecovery: true, readOnly: true };
const READ_ONLY_PRIMARY: ProbeResult = { reachable: true, inRecovery: false, readOnly: true };
const DOWN: ProbeResult = { reachable: false, reason: 'ECONNREFUSED' };

const HOSTS: readonly StaticHost[] = [
  { host: 'db1', port: 5432 },
  { host: 'db2', port: 5432 },
  { host: 'db3', port: 5433 },
];

/** Probes answered by the test: `answers` maps an address to its current state. */
class FakeProbe {
  readonly calls: Array<{ address: string; signal: AbortSignal; options: ProbeOptions | undefined; resolve: (r: ProbeResult) => void }> = [];
  auto: Map<string, ProbeResult> | undefined;
  readonly fn = (host: string, port: number, signal: AbortSignal, options?: ProbeOptions): Promise<ProbeResult> =>
    new Promise<ProbeResult>((resolve) => {
      const address = `${host}:${port}`;
      this.calls.push({ address, signal, options, resolve });
      const auto = this.auto?.get(address);
      if (auto !== undefined) resolve(auto);
    });
  /** Answers the pending probes of the last round. */
  answerRound(results: readonly ProbeResult[]): void {
    const round = this.calls.slice(-HOSTS.length);
    round.forEach((c, i) => c.resolve(results[i]!));
  }
}

describe('StaticHostSource', () => {
  describe('parseHostEntry', () => {
    const table: ReadonlyArray<[string, StaticHost | RegExp]> = [
      ['db1', { host: 'db1', port: 5432 }],
      ['db1:5433', { host: 'db1', port: 5433 }],
      [' db1.example.com:6432 ', { host: 'db1.example.com', port: 6432 }],
      ['10.0.0.5:5432', { host: '10.0.0.5', port: 5432 }],
      ['[::1]', { host: '::1', port: 5432 }],
      ['[fe80::1]:5434', { host: 'fe80::1', port: 5434 }],
      ['::1', /needs brackets/],
      ['[::1', /unterminated/],
      ['[::1]5432', /after "\]"/],
      ['db1:0', /invalid port "0"/],
      ['db1:65536', /invalid port/],
      ['db1:54x', /invalid port/],
      ['db 1:5432', /invalid host/],
      ['', /invalid host/],
      ['user@db1:5432', /invalid host/],
    ];
    for (const [text, expected] of table) {
      it(`${JSON.stringify(text)}`, () => {
        const parsed = parseHostEntry(text);
        if (expected instanceof RegExp) assert.match(String(parsed), expected);
        else assert.deepEqual(parsed, expected);
      });
    }
  });

  describe('roles (pure)', () => {
    const table: ReadonlyArray<[string, ProbeResult, string]> = [
      ['writable, not in recovery', PRIMARY, 'primary'],
      ['in recovery (hot standby)', STANDBY, 'replica'],
      ['not in recovery but read-only sessions', READ_ONLY_PRIMARY, 'other'],
      ['unreachable', DOWN, 'other'],
    ];
    for (const [name, result, role] of table) {
      it(`${name} → ${role}`, () => assert.equal(roleFromProbe(result), role));
    }

    it('keeps list order, leaves unreachable hosts out, and prefers the first listed writable host', () => {
      const nodes = staticNodes(HOSTS, [DOWN, PRIMARY, PRIMARY]);
      assert.deepEqual(nodes.map((n) => [n.id, n.role, n.modifyIndex]), [['db2:5432', 'primary', 2], ['db3:5433', 'primary', 1]]);
      const snapshot = applyUpdate(EMPTY_TOPOLOGY, { source: 'static', index: 1, nodes }, 0);
      assert.equal(snapshot.primary?.address, 'db2:5432');
      assert.equal(staticNodes([{ host: '::1', port: 5432 }], [STANDBY])[0]?.address, '[::1]:5432');
    });
  });

  describe('the source', () => {
    let clock: sinon.SinonFakeTimers;
    let probe: FakeProbe;
    let listener: RecordingListener;
    let logs: Array<{ level: string; message: string }>;
    let sources: StaticHostSource[];

    function create(overrides: Partial<StaticHostSourceOptions> = {}): StaticHostSource {
      const source = new StaticHostSource({
        hosts: HOSTS,
        intervalMillis: 2_000,
        minIntervalMillis: 100,
        probe: probe.fn,
        logger: (level, message) => logs.push({ level, message }),
        ...overrides,
      });
      sources.push(source);
      return source;
    }

    beforeEach(() => {
      clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
      probe = new FakeProbe();
      listener = new RecordingListener();
      logs = [];
      sources = [];
    });

    afterEach(async () => {
      await Promise.all(sources.map((s) => s.stop()));
      clock.restore();
    });

    it('probes every host in parallel, then again every intervalMillis (in the background)', async () => {
      const source = create();
      source.start(listener);
      await clock.tickAsync(0);
      assert.deepEqual(probe.calls.map((c) => c.address), ['db1:5432', 'db2:5432', 'db3:5433'], 'all at once');
      assert.ok(probe.calls.every((c) => c.options?.unref === false), 'the first round keeps the process alive');
      probe.answerRound([PRIMARY, STANDBY, STANDBY]);
      await clock.tickAsync(0);
      assert.deepEqual(listener.last.nodes.map((n) => [n.address, n.role]), [['db1:5432', 'primary'], ['db2:5432', 'replica'], ['db3:5433', 'replica']]);
      assert.equal(listener.last.source, 'static');
      await clock.tickAsync(1_999);
      assert.equal(probe.calls.length, 3);
      await clock.tickAsync(1);
      assert.equal(probe.calls.length, 6);
      assert.ok(probe.calls.slice(3).every((c) => c.options?.unref === true), 'periodic rounds do not');
      assert.equal(source.requestCount, 6);
    });

    it('re-probes fast (doubling from minIntervalMillis) while no host is writable', async () => {
      probe.auto = new Map<string, ProbeResult>([['db1:5432', DOWN], ['db2:5432', STANDBY], ['db3:5433', STANDBY]]);
      create().start(listener);
      await clock.tickAsync(0);
      const starts: number[] = [];
      let seen = 0;
      for (let t = 0; t < 5_000; t += 10) {
        if (probe.calls.length > seen) {
          starts.push(Date.now());
          seen = probe.calls.length;
        }
        await clock.tickAsync(10);
      }
      const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
      assert.deepEqual(gaps.slice(0, 5), [100, 200, 400, 800, 1_600]);
      assert.ok(listener.updates.every((u) => u.nodes.every((n) => n.role !== 'primary')));
      // The promotion happens: the next round finds it, then the normal interval resumes.
      probe.auto.set('db2:5432', PRIMARY);
      const before = probe.calls.length;
      while (probe.calls.length === before) await clock.tickAsync(10);
      await clock.tickAsync(0);
      assert.equal(listener.last.nodes.find((n) => n.role === 'primary')?.address, 'db2:5432');
      const at = Date.now();
      const count = probe.calls.length;
      while (probe.calls.length === count) await clock.tickAsync(10);
      assert.equal(Date.now() - at, 2_000);
    });

    it('refresh() probes at once (rate limit permitting), or right after the round in flight', async () => {
      const source = create();
      source.start(listener);
      await clock.tickAsync(0);
      source.refresh(); // a round is in flight
      probe.answerRound([PRIMARY, STANDBY, STANDBY]);
      await clock.tickAsync(0);
      assert.equal(probe.calls.length, 3, 'still under the rate limit');
      await clock.tickAsync(100);
      assert.equal(probe.calls.length, 6, 'the requested round follows');
      assert.ok(probe.calls.slice(3).every((c) => c.options?.unref === false), 'someone is waiting for it');
      probe.answerRound([DOWN, STANDBY, STANDBY]);
      await clock.tickAsync(1_000);
      probe.answerRound([PRIMARY, STANDBY, STANDBY]);
      await clock.tickAsync(500);
      const count = probe.calls.length;
      source.refresh();
      await clock.tickAsync(0);
      assert.equal(probe.calls.length, count + 3, 'idle: at once');
    });

    it('a round where no host answered is a failed round; the error names hosts and reasons', async () => {
      probe.auto = new Map<string, ProbeResult>([['db1:5432', DOWN], ['db2:5432', { reachable: false, reason: '28P01' }], ['db3:5433', DOWN]]);
      create().start(listener);
      await clock.tickAsync(0);
      assert.equal(listener.updates.length, 0);
      assert.equal(listener.errors.length, 1);
      assert.equal(listener.errors[0]?.error.message, 'no host of the static list answered: db1:5432 ECONNREFUSED, db2:5432 28P01, db3:5433 ECONNREFUSED');
      assert.equal(listener.errors[0]?.attempt, 1);
      assert.equal(listener.errors[0]?.retryInMillis, 100);
      await clock.tickAsync(100);
      assert.equal(listener.errors[1]?.attempt, 2);
      probe.auto.set('db2:5432', PRIMARY);
      await clock.tickAsync(200);
      assert.equal(listener.updates.length, 1);
      assert.ok(logs.some((l) => l.level === 'info' && /recovered/.test(l.message)));
    });

    it('treats a probe that throws as unreachable', async () => {
      const source = create({ probe: (host) => (host === 'db1' ? Promise.reject(new Error('boom')) : Promise.resolve(STANDBY)) });
      source.start(listener);
      await clock.tickAsync(0);
      assert.deepEqual(listener.last.nodes.map((n) => n.address), ['db2:5432', 'db3:5433']);
    });

    it('warns when two hosts accept writes', async () => {
      probe.auto = new Map<string, ProbeResult>([['db1:5432', PRIMARY], ['db2:5432', PRIMARY], ['db3:5433', STANDBY]]);
      create().start(listener);
      await clock.tickAsync(0);
      assert.ok(logs.some((l) => l.level === 'warn' && /more than one host accepts writes/.test(l.message)));
    });

    it('stop() aborts the probes in flight, leaves no timer, and no callback follows', async () => {
      const source = create();
      source.start(listener);
      await clock.tickAsync(0);
      const stopping = source.stop();
      assert.ok(probe.calls.every((c) => c.signal.aborted));
      probe.answerRound([PRIMARY, STANDBY, STANDBY]);
      await stopping;
      await clock.tickAsync(10_000);
      assert.equal(listener.updates.length, 0);
      assert.equal(clock.countTimers(), 0);
      source.refresh();
      assert.equal(probe.calls.length, 3);
      assert.throws(() => source.start(listener), /only once/);
    });

    it('keeps running when the listener throws', async () => {
      probe.auto = new Map<string, ProbeResult>([['db1:5432', PRIMARY], ['db2:5432', STANDBY], ['db3:5433', STANDBY]]);
      create().start({
        onUpdate: () => {
          throw new Error('listener boom');
        },
        onError: () => undefined,
      });
      await clock.tickAsync(2_000);
      assert.equal(probe.calls.length, 6);
      assert.ok(logs.some((l) => l.level === 'error' && /onUpdate threw: listener boom/.test(l.message)));
    });

    const invalid: ReadonlyArray<[string, Partial<StaticHostSourceOptions>, typeof TypeError | typeof RangeError]> = [
      ['no hosts', { hosts: [] }, TypeError],
      ['a host listed twice', { hosts: [HOSTS[0]!, HOSTS[0]!] }, TypeError],
      ['intervalMillis 0', { intervalMillis: 0 }, RangeError],
      ['a negative minIntervalMillis', { minIntervalMillis: -1 }, RangeError],
      ['no probe', { probe: undefined as unknown as StaticHostSourceOptions['probe'] }, TypeError],
    ];
    for (const [name, overrides, type] of invalid) {
      it(`rejects ${name}`, () => assert.throws(() => create(overrides), type));
    }
  });
});
