import assert from 'node:assert/strict';
import { addWalPoint, lagEntries, measureLag, pruneWalHistory, withinLagLimit } from '../../../lib/routing/lag.js';
import type { LagAmount, LagLimit, ReplaySample, WalHistory } from '../../../lib/routing/lag.js';
import { node } from '../../support/nodes.js';

const H: WalHistory = [
  { at: 1000, lsn: 100n },
  { at: 2000, lsn: 200n },
  { at: 3000, lsn: 300n },
];

describe('routing/lag', () => {
  describe('addWalPoint / pruneWalHistory', () => {
    it('appends only positions ahead of the last one', () => {
      const h1 = addWalPoint([], { at: 1, lsn: 5n });
      assert.deepEqual(h1, [{ at: 1, lsn: 5n }]);
      assert.equal(addWalPoint(h1, { at: 2, lsn: 5n }), h1, 'same position: unchanged (idle primary)');
      assert.equal(addWalPoint(h1, { at: 2, lsn: 4n }), h1, 'behind: unchanged');
      assert.deepEqual(addWalPoint(h1, { at: 3, lsn: 6n }), [{ at: 1, lsn: 5n }, { at: 3, lsn: 6n }]);
    });

    it('caps the history, keeping the oldest and the newest points', () => {
      let h: WalHistory = [];
      for (let i = 1; i <= 10; i++) h = addWalPoint(h, { at: i, lsn: BigInt(i) }, 4);
      assert.deepEqual(h.map((p) => p.at), [1, 8, 9, 10]);
    });

    const prune: Array<{ name: string; replayed: bigint | undefined; keep: number[] }> = [
      { name: 'nothing known keeps everything', replayed: undefined, keep: [1000, 2000, 3000] },
      { name: 'below the first point keeps everything', replayed: 50n, keep: [1000, 2000, 3000] },
      { name: 'drops what everyone replayed', replayed: 200n, keep: [3000] },
      { name: 'drops up to (not including) the first unreplayed point', replayed: 150n, keep: [2000, 3000] },
      { name: 'always keeps the latest point', replayed: 999n, keep: [3000] },
    ];
    for (const c of prune) {
      it(`pruneWalHistory: ${c.name}`, () => assert.deepEqual(pruneWalHistory(H, c.replayed).map((p) => p.at), c.keep));
    }
  });

  describe('measureLag', () => {
    const table: Array<{ name: string; history: WalHistory; replay: bigint | undefined; now: number; expect: LagAmount }> = [
      { name: 'no history: unknown', history: [], replay: 10n, now: 0, expect: { bytes: undefined, seconds: undefined } },
      { name: 'no replay position: unknown', history: H, replay: undefined, now: 0, expect: { bytes: undefined, seconds: undefined } },
      { name: 'caught up', history: H, replay: 300n, now: 9000, expect: { bytes: 0, seconds: 0 } },
      { name: 'ahead of what we saw', history: H, replay: 350n, now: 9000, expect: { bytes: 0, seconds: 0 } },
      { name: 'behind the latest point only', history: H, replay: 250n, now: 3500, expect: { bytes: 50, seconds: 0.5 } },
      { name: 'behind since the first point', history: H, replay: 50n, now: 3500, expect: { bytes: 250, seconds: 2.5 } },
      { name: 'exactly at a point', history: H, replay: 200n, now: 4000, expect: { bytes: 100, seconds: 1 } },
      {
        name: 'an idle hour, then one write: lag is since the write',
        history: [{ at: 0, lsn: 100n }, { at: 3_600_000, lsn: 101n }],
        replay: 100n,
        now: 3_600_250,
        expect: { bytes: 1, seconds: 0.25 },
      },
    ];
    for (const c of table) it(c.name, () => assert.deepEqual(measureLag(c.history, c.replay, c.now), c.expect));
  });

  describe('withinLagLimit', () => {
    const table: Array<{ lag: LagAmount; limit: LagLimit; ok: boolean }> = [
      { lag: { bytes: 10, seconds: 0 }, limit: { bytes: 10 }, ok: true },
      { lag: { bytes: 11, seconds: 0 }, limit: { bytes: 10 }, ok: false },
      { lag: { bytes: 1e9, seconds: 0.5 }, limit: { seconds: 1 }, ok: true },
      { lag: { bytes: 1, seconds: 1.5 }, limit: { seconds: 1 }, ok: false },
      { lag: { bytes: 1, seconds: 1.5 }, limit: { bytes: 10, seconds: 1 }, ok: false },
      { lag: { bytes: 100, seconds: 0 }, limit: { bytes: 10, seconds: 1 }, ok: false },
      { lag: { bytes: 0, seconds: 0 }, limit: { bytes: 0, seconds: 0 }, ok: true },
      { lag: { bytes: undefined, seconds: undefined }, limit: { bytes: 10 }, ok: false },
      { lag: { bytes: undefined, seconds: undefined }, limit: { seconds: 10 }, ok: false },
    ];
    for (const c of table) {
      it(`${JSON.stringify(c.lag)} within ${JSON.stringify(c.limit)}: ${c.ok}`, () => assert.equal(withinLagLimit(c.lag, c.limit), c.ok));
    }
  });

  describe('lagEntries', () => {
    const R1 = node('r1', 5001, 'replica');
    const R2 = node('r2', 5002, 'replica');
    const R3 = node('r3', 5003, 'replica');
    const R4 = node('r4', 5004, 'replica');
    const samples = new Map<string, ReplaySample>([
      [R1.address, { replay: 300n, at: 3000 }],
      [R2.address, { replay: 100n, at: 3000 }],
      [R3.address, { replay: 300n, at: 100 }],
      ['127.0.0.1:9999', { replay: 300n, at: 3000 }],
    ]);
    const entries = lagEntries([R1, R2, R3, R4], samples, H, { bytes: 150 }, 3100, 1000);

    it('has one entry per replica, none for other addresses', () => {
      assert.deepEqual([...entries.keys()], [R1.address, R2.address, R3.address, R4.address]);
    });
    it('a caught-up replica serves reads', () => {
      assert.deepEqual(entries.get(R1.address), { bytes: 0, seconds: 0, replayLsn: '0/12C', sampledAt: 3000, excluded: false, measuredBy: 'lag-monitor' });
    });
    it('a replica over the limit is excluded', () => {
      const e = entries.get(R2.address)!;
      assert.equal(e.bytes, 200);
      assert.equal(e.seconds, 1.1);
      assert.equal(e.excluded, true);
    });
    it('a replica measured too long ago is excluded', () => assert.equal(entries.get(R3.address)!.excluded, true));
    it('a replica never measured is excluded, its lag unknown', () => {
      assert.deepEqual(entries.get(R4.address), { bytes: undefined, seconds: undefined, replayLsn: undefined, sampledAt: undefined, excluded: true, measuredBy: 'lag-monitor' });
    });
  });
});
