import assert from 'node:assert/strict';
import { configFor, configWith, parseArgs } from '../../../bench/config.js';

describe('bench command line', () => {
  it('defaults to quick with the mode’s failovers', () => {
    const args = parseArgs([]);
    assert.deepEqual(args, { mode: 'quick', only: new Set(), outDir: undefined });
    assert.deepEqual(configWith(args.mode, args.failovers), configFor('quick'));
  });

  it('--failovers= replaces the mode’s failovers, nothing else', () => {
    const args = parseArgs(['--quick', '--only=failover', '--failovers=switchover, kill-patroni']);
    assert.deepEqual(args.failovers, ['switchover', 'kill-patroni']);
    const config = configWith(args.mode, args.failovers);
    assert.deepEqual(config.failover.kinds, ['switchover', 'kill-patroni']);
    assert.equal(config.failover.steadyMillis, configFor('quick').failover.steadyMillis);
    assert.deepEqual(configFor('quick').failover.kinds, ['switchover', 'kill-postgres'], 'the mode itself is unchanged');
  });

  it('rejects an unknown failover', () => {
    assert.throws(() => parseArgs(['--failovers=switchover,reboot']), /--failovers: unknown failover reboot/);
    assert.throws(() => parseArgs(['--failovers=']), /--failovers: unknown failover/);
  });
});
