import assert from 'node:assert/strict';
import sinon from 'sinon';
import { DeadPeerDetector, probeDue, sweepPeriodMillis, ticksFor } from '../../../lib/pooling/dead-peer.js';
import type { WatchedNode } from '../../../lib/pooling/dead-peer.js';
import type { ReachabilityResult } from '../../../lib/pooling/reachability-probe.js';

const live = (oldestCheckoutTick: number | undefined): WatchedNode => ({ address: 'h:1', host: 'h', port: 1, oldestCheckoutTick, dead: false });
const dead: WatchedNode = { address: 'h:1', host: 'h', port: 1, oldestCheckoutTick: undefined, dead: true };

describe('pooling/dead-peer', () => {
  describe('sweepPeriodMillis / ticksFor', () => {
    for (const [after, period, ticks] of [
      [2000, 500, 5],
      [500, 125, 5],
      [100, 50, 3],
      [60_000, 500, 121],
    ] as const) {
      it(`afterMillis ${after}: period ${period} ms, ${ticks} ticks`, () => {
        assert.equal(sweepPeriodMillis(after), period);
        assert.equal(ticksFor(after, period), ticks);
        // (ticks − 1) full periods always cover the threshold.
        assert.ok((ticks - 1) * period >= after);
      });
    }
  });

  describe('probeDue (table)', () => {
    const rows: [string, WatchedNode, number, boolean, number, boolean][] = [
      // name, node, tick, probing, lastAnswerAgo, due
      ['no checkout', live(undefined), 10, false, Infinity, false],
      ['checkout too young', live(7), 10, false, Infinity, false],
      ['checkout old enough', live(5), 10, false, Infinity, true],
      ['old enough but a probe runs', live(5), 10, true, Infinity, false],
      ['old enough but answered recently', live(5), 10, false, 100, false],
      ['old enough, answer is stale', live(5), 10, false, 2000, true],
      ['old enough, but other statements completed on the node meanwhile', { ...live(5), lastReleaseTick: 8 }, 10, false, Infinity, false],
      ['old enough, and nothing completed there for as long', { ...live(5), lastReleaseTick: 5 }, 10, false, Infinity, true],
      ['dead node: always', dead, 10, false, Infinity, true],
      ['dead node with a probe running', dead, 10, true, Infinity, false],
    ];
    for (const [name, node, tick, probing, ago, due] of rows) {
      it(`${name} → ${due ? 'probe' : 'wait'}`, () => assert.equal(probeDue(node, tick, 5, probing, ago, 2000), due));
    }
  });

  describe('DeadPeerDetector', () => {
    let clock: sinon.SinonFakeTimers;
    beforeEach(() => {
      clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    });
    afterEach(() => clock.restore());

    function setup(answers: ReachabilityResult[], nodes: () => WatchedNode[]) {
      const calls: string[] = [];
      const events: string[] = [];
      const probe = sinon.spy(async (host: string, port: number, timeout: number): Promise<ReachabilityResult> => {
        calls.push(`${host}:${port}/${timeout}`);
        return answers.shift() ?? { reachable: true };
      });
      const detector = new DeadPeerDetector(
        { afterMillis: 2000, timeoutMillis: 1000, attempts: 2 },
        {
          nodes,
          onDead: (a, r) => events.push(`dead ${a} ${r}`),
          onAlive: (a) => events.push(`alive ${a}`),
          probe,
          now: () => Date.now(),
        },
      );
      return { detector, calls, events, probe };
    }

    it('probes a node whose checkout spans the threshold, twice before declaring it dead', async () => {
      const checkout: { tick?: number } = {};
      const { detector, calls, events } = setup(
        [
          { reachable: false, reason: 'no answer within 1000 ms' },
          { reachable: false, reason: 'no answer within 1000 ms' },
        ],
        () => [live(checkout.tick)],
      );
      detector.start();
      checkout.tick = detector.clock.tick; // a checkout at tick 0
      await clock.tickAsync(4 * 500);
      assert.deepEqual(calls, [], 'not before the threshold');
      await clock.tickAsync(500);
      assert.deepEqual(calls, ['h:1/1000', 'h:1/1000']);
      assert.deepEqual(events, ['dead h:1 no answer within 1000 ms']);
      detector.stop();
    });

    it('an answer touches nothing and is not asked again within the threshold', async () => {
      const { detector, calls, events } = setup([{ reachable: true }], () => [live(0)]);
      detector.start();
      await clock.tickAsync(2500);
      assert.equal(calls.length, 1);
      await clock.tickAsync(1500);
      assert.equal(calls.length, 1, 'the next probe waits afterMillis');
      await clock.tickAsync(1000);
      assert.equal(calls.length, 2);
      assert.deepEqual(events, []);
      detector.stop();
    });

    it('a dead node is probed each sweep, once, and reported alive when it answers', async () => {
      const { detector, calls, events } = setup(
        [
          { reachable: false, reason: 'ECONNREFUSED' },
          { reachable: true },
        ],
        () => [dead],
      );
      detector.start();
      await clock.tickAsync(500);
      assert.deepEqual(calls.length, 1);
      assert.deepEqual(events, [], 'still dead: no second event');
      await clock.tickAsync(500);
      assert.deepEqual(events, ['alive h:1']);
      detector.stop();
    });

    it('stop() ends sweeping and ignores probes still running', async () => {
      let release!: (r: ReachabilityResult) => void;
      const events: string[] = [];
      const detector = new DeadPeerDetector(
        { afterMillis: 200, timeoutMillis: 100, attempts: 1 },
        {
          nodes: () => [live(0)],
          onDead: (a) => events.push(a),
          onAlive: () => undefined,
          probe: () => new Promise((resolve) => (release = resolve)),
          now: () => Date.now(),
        },
      );
      detector.start();
      await clock.tickAsync(300);
      detector.stop();
      release({ reachable: false, reason: 'x' });
      await clock.tickAsync(1000);
      assert.deepEqual(events, []);
      assert.equal(clock.countTimers(), 0, 'no timer left');
    });
  });
});
