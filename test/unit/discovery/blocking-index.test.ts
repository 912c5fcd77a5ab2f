import assert from 'node:assert/strict';
import { nextIndex, parseConsulIndex, shouldWait } from '../../../lib/discovery/blocking-index.js';

describe('blocking-index', () => {
  describe('parseConsulIndex', () => {
    const cases: ReadonlyArray<[string | null | undefined, number | undefined]> = [
      ['1', 1],
      ['42', 42],
      [' 42 ', 42],
      ['007', 7],
      ['0', 0],
      ['9007199254740991', Number.MAX_SAFE_INTEGER],
      ['9007199254740993', undefined], // beyond 2^53: not representable
      ['12345678901234567', undefined], // 17 digits
      ['', undefined],
      ['   ', undefined],
      ['-5', undefined],
      ['+5', undefined],
      ['4.2', undefined],
      ['1e3', undefined],
      ['0x10', undefined],
      ['4x2', undefined],
      ['42, 43', undefined], // repeated header joined
      [null, undefined],
      [undefined, undefined],
    ];
    for (const [header, expected] of cases) {
      it(`${JSON.stringify(header)} → ${String(expected)}`, () => {
        assert.equal(parseConsulIndex(header), expected);
      });
    }
  });

  describe('nextIndex', () => {
    const cases: ReadonlyArray<{ previous: number; header: string | null | undefined; expected: number; why: string }> = [
      { previous: 0, header: '17', expected: 17, why: 'first answer' },
      { previous: 17, header: '17', expected: 17, why: 'timed out unchanged: block again on the same index' },
      { previous: 17, header: '18', expected: 18, why: 'moved forward' },
      { previous: 17, header: '16', expected: 0, why: 'went backwards: reset' },
      { previous: 17, header: '1', expected: 0, why: 'went far backwards: reset' },
      { previous: 0, header: '1', expected: 1, why: 'smallest valid index' },
      { previous: 0, header: '0', expected: 0, why: 'index 0 never waited on' },
      { previous: 17, header: '0', expected: 0, why: 'index 0 after a valid one' },
      { previous: 17, header: undefined, expected: 0, why: 'missing header' },
      { previous: 17, header: null, expected: 0, why: 'null header' },
      { previous: 17, header: 'garbage', expected: 0, why: 'unparsable header' },
      { previous: 17, header: '-3', expected: 0, why: 'negative header' },
      { previous: Number.NaN, header: '5', expected: 5, why: 'nonsense previous is ignored' },
    ];
    for (const c of cases) {
      it(`(${c.previous}, ${JSON.stringify(c.header)}) → ${c.expected}: ${c.why}`, () => {
        const next = nextIndex(c.previous, c.header);
        assert.equal(next, c.expected);
        assert.ok(next === 0 || shouldWait(next), 'a non-zero next index must be one we can wait on');
      });
    }
  });

  describe('shouldWait', () => {
    const cases: ReadonlyArray<[number, boolean]> = [
      [0, false],
      [-1, false],
      [0.5, false],
      [Number.NaN, false],
      [Infinity, false],
      [1, true],
      [42, true],
      [Number.MAX_SAFE_INTEGER, true],
    ];
    for (const [index, expected] of cases) {
      it(`${index} → ${expected}`, () => {
        assert.equal(shouldWait(index), expected);
      });
    }
  });
});
