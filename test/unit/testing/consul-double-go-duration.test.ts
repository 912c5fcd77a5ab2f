import assert from 'node:assert/strict';
import { formatGoDuration, parseGoDuration, parseLenientDuration } from '../../../lib/testing/consul-double/go-duration.js';

describe('consul-double go-duration', () => {
  it('parses what Go time.ParseDuration accepts', () => {
    const cases: [string, number][] = [
      ['10s', 10e9],
      ['5m', 300e9],
      ['15.0s', 15e9],
      ['0.001s', 1e6],
      ['9.98s', 9.98e9],
      ['100ms', 100e6],
      ['1h2m3.5s', 3723.5e9],
      ['-1.5h', -5400e9],
      ['+2s', 2e9],
      ['0', 0],
      ['.5s', 0.5e9],
      ['5.s', 5e9],
      ['1.5µs', 1500],
      ['1.5μs', 1500],
      ['2us', 2000],
      ['7ns', 7],
    ];
    for (const [text, ns] of cases) assert.equal(parseGoDuration(text), ns, text);
  });

  it('rejects what Go rejects', () => {
    for (const text of ['', '10', '300', 's', '.s', '1x', '1 s', '--1s', '1s2', 'abc', '9999999999999h']) {
      assert.equal(parseGoDuration(text), undefined, JSON.stringify(text));
    }
  });

  it('formats like time.Duration.String()', () => {
    const cases: [number, string][] = [
      [0, '0s'],
      [12, '12ns'],
      [1500, '1.5µs'],
      [1e6, '1ms'],
      [500e6, '500ms'],
      [1.5e9, '1.5s'],
      [10e9, '10s'],
      [90e9, '1m30s'],
      [3600.5e9, '1h0m0.5s'],
      [86_400e9, '24h0m0s'],
      [-2e9, '-2s'],
    ];
    for (const [ns, text] of cases) assert.equal(formatGoDuration(ns), text, String(ns));
  });

  it('reads lenient lock-delay values: small numbers are seconds', () => {
    assert.equal(parseLenientDuration(15), 15e9);
    assert.equal(parseLenientDuration(2_000_000), 2e6);
    assert.equal(parseLenientDuration('0.001s'), 1e6);
    assert.equal(parseLenientDuration('500ns'), 500e9);
    assert.equal(parseLenientDuration('15'), undefined);
    assert.equal(parseLenientDuration(true), undefined);
  });
});
