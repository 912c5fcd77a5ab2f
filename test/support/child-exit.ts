import assert from 'node:assert/strict';
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';

/**
 * Waits for a child that prints `queried` after its last query and must then exit by itself
 * (with code 0) within `withinMillis` — the "an idle / ended Pool does not keep the process
 * alive" check. A child still running after 20 s is killed and fails the assertion.
 *
 * @param child spawned with stdout piped
 * @param withinMillis how long after `queried` it may linger
 */
export async function assertExitsAfterQuery(child: ChildProcessByStdio<null, Readable, null>, withinMillis: number): Promise<void> {
  let queriedAt = 0;
  child.stdout.on('data', (d: Buffer) => {
    if (d.toString().includes('queried')) queriedAt = Date.now();
  });
  const code = await new Promise<number | null>((resolve) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (c) => {
      clearTimeout(killer);
      resolve(c);
    });
  });
  const lingered = Date.now() - queriedAt;
  assert.equal(code, 0, 'exited by itself with code 0');
  assert.ok(queriedAt > 0, 'the child ran its queries');
  assert.ok(lingered < withinMillis, `exited ${lingered} ms after its last query`);
}
