import assert from 'node:assert/strict';
import { FAILURE_DETECTION_DEFAULTS, resolveFailureDetectionOptions } from '../../lib/options.js';

describe('options: failure detection (connect bound, dead-peer probe, end bound)', () => {
  it('defaults', () => {
    const r = resolveFailureDetectionOptions({}, {});
    assert.deepEqual(r, { connectTimeoutMillis: 5000, deadPeerAfterMillis: 2000, deadPeerTimeoutMillis: 1000, endTimeoutMillis: 10_000 });
    assert.deepEqual(r, { ...FAILURE_DETECTION_DEFAULTS });
    assert.ok(Object.isFrozen(r));
  });

  it('options win over the environment; 0 removes a bound where allowed', () => {
    const env = { PGCONSUL_CONNECT_TIMEOUT_MS: '100', PGCONSUL_DEAD_PEER_AFTER_MS: '300', PGCONSUL_DEAD_PEER_TIMEOUT_MS: '50', PGCONSUL_END_TIMEOUT_MS: '0' };
    assert.deepEqual(resolveFailureDetectionOptions({}, env), { connectTimeoutMillis: 100, deadPeerAfterMillis: 300, deadPeerTimeoutMillis: 50, endTimeoutMillis: 0 });
    assert.deepEqual(resolveFailureDetectionOptions({ connectTimeoutMillis: 0, deadPeerAfterMillis: 0 }, env), {
      connectTimeoutMillis: 0,
      deadPeerAfterMillis: 0,
      deadPeerTimeoutMillis: 50,
      endTimeoutMillis: 0,
    });
  });

  const bad: [Record<string, unknown>, Record<string, string>, RegExp][] = [
    [{ connectTimeoutMillis: -1 }, {}, /connectTimeoutMillis/],
    [{ deadPeerAfterMillis: 1.5 }, {}, /deadPeerAfterMillis/],
    [{ deadPeerTimeoutMillis: 0 }, {}, /deadPeerTimeoutMillis/],
    [{ endTimeoutMillis: '5s' }, {}, /endTimeoutMillis/],
    [{}, { PGCONSUL_DEAD_PEER_AFTER_MS: 'soon' }, /PGCONSUL_DEAD_PEER_AFTER_MS/],
    [{}, { PGCONSUL_END_TIMEOUT_MS: '-5' }, /PGCONSUL_END_TIMEOUT_MS/],
  ];
  for (const [options, env, message] of bad) {
    it(`rejects ${JSON.stringify(options)} ${JSON.stringify(env)} naming the source`, () => {
      assert.throws(() => resolveFailureDetectionOptions(options, env), (e: unknown) => e instanceof TypeError && message.test(e.message));
    });
  }
});
