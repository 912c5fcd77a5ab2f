import assert from 'node:assert/strict';
import { MAX_LSN, formatLsn, parseLsn } from '../../../lib/routing/lsn.js';
import { decodeSessionToken, encodeSessionToken } from '../../../lib/routing/session-token.js';

describe('routing/lsn', () => {
  const table: Array<{ text: unknown; lsn: bigint | undefined }> = [
    { text: '0/0', lsn: 0n },
    { text: '0/3000148', lsn: 0x3000148n },
    { text: '16/B374D848', lsn: 0x16b374d848n },
    { text: '16/b374d848', lsn: 0x16b374d848n },
    { text: 'FFFFFFFF/FFFFFFFF', lsn: MAX_LSN },
    { text: '1/00000001', lsn: 0x100000001n },
    { text: null, lsn: undefined },
    { text: undefined, lsn: undefined },
    { text: 5, lsn: undefined },
    { text: '', lsn: undefined },
    { text: '0/', lsn: undefined },
    { text: '/1', lsn: undefined },
    { text: '123456789/0', lsn: undefined },
    { text: '0/3000148 ', lsn: undefined },
    { text: 'G/1', lsn: undefined },
  ];
  for (const c of table) {
    it(`parseLsn(${JSON.stringify(c.text)}) → ${c.lsn === undefined ? 'undefined' : formatLsn(c.lsn)}`, () => {
      assert.equal(parseLsn(c.text), c.lsn);
    });
  }

  it('formatLsn round-trips and writes upper case without leading zeros', () => {
    for (const lsn of [0n, 1n, 0x3000148n, 0x16b374d848n, MAX_LSN]) assert.equal(parseLsn(formatLsn(lsn)), lsn);
    assert.equal(formatLsn(0x100000001n), '1/1');
    assert.equal(formatLsn(0xabn), '0/AB');
  });
});

describe('routing/session-token', () => {
  it('round-trips positions as 12 base64url characters', () => {
    for (const lsn of [0n, 1n, 0x3000148n, 0x16b374d848n, MAX_LSN]) {
      const token = encodeSessionToken(lsn);
      assert.match(token, /^[A-Za-z0-9_-]{12}$/);
      assert.equal(decodeSessionToken(token), lsn);
    }
  });

  it('reads undefined and the empty string as no position', () => {
    assert.equal(decodeSessionToken(undefined), 0n);
    assert.equal(decodeSessionToken(''), 0n);
  });

  const malformed: Array<{ token: unknown; why: string }> = [
    { token: 'nonsense', why: 'too short' },
    { token: 'AQAAAAADAAFIx', why: 'too long' },
    { token: 'AQAAAAADAAF=', why: 'padding' },
    { token: 'AQAAAAAD AFI', why: 'space' },
    { token: 'AQAAAAADAA+I', why: 'base64 (not url) alphabet' },
    { token: 'AgAAAAADAAFI', why: 'unknown version 2' },
    { token: 'AAAAAAADAAFI', why: 'version 0' },
    { token: 42, why: 'a number' },
    { token: null, why: 'null' },
    { token: { toString: () => 'AQAAAAADAAFI' }, why: 'an object' },
  ];
  for (const c of malformed) {
    it(`rejects a malformed token (${c.why}) with a TypeError that does not echo it`, () => {
      assert.throws(
        () => decodeSessionToken(c.token),
        (err: unknown) => err instanceof TypeError && (typeof c.token !== 'string' || !err.message.includes(c.token)),
      );
    });
  }

  it('refuses to encode a position out of range', () => {
    assert.throws(() => encodeSessionToken(-1n), RangeError);
    assert.throws(() => encodeSessionToken(MAX_LSN + 1n), RangeError);
  });
});
