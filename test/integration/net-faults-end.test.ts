/**
 * `pool.end()` while the primary is black-holed with statements in flight: bounded (≤ 1 s,
 * a quick probe at end() fences what does not answer), and the process exits by itself.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { assertExitsAfterQuery } from '../support/child-exit.js';
import { startNetFaultEnv } from '../support/net-fault-fixture.js';
import type { NetFaultEnv } from '../support/net-fault-fixture.js';

describe('network faults: end() during a black hole', function () {
  this.timeout(60_000);
  let env: NetFaultEnv | undefined;
  after(async () => {
    await env?.stop();
  });

  it('ends within 1 s with statements hanging on a black-holed primary, and the process exits by itself', async () => {
    env = await startNetFaultEnv(1);
    const e = env;
    const { user, password, database } = e.cluster.appUser;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', new URL('../support/net-end-child.ts', import.meta.url).pathname, e.consulAddress.host, String(e.consulAddress.port), user, password, database],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready') && !e.lab.isBlackHoled('node1')) e.lab.blackHole('node1');
    });
    await assertExitsAfterQuery(child, 1_000);
    const m = /ended (\d+) (.*)/.exec(out);
    assert.ok(m !== null, `the child reported end(): ${out}`);
    assert.ok(Number(m[1]) <= 1_500, `end() took ${m[1]} ms (a busy node that does not answer a 500 ms probe at end() is fenced)`);
    const outcomes = JSON.parse(m[2] ?? 'null') as unknown;
    assert.ok(Array.isArray(outcomes), `the in-flight statements settled after end(): ${String(outcomes)}`);
    assert.ok(outcomes.every((o) => o !== 'answered'), 'no statement was answered by the black-holed primary');
  });
});
