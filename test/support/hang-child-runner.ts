/**
 * Runs test/support/hang-child.ts (a Pool whose peer never answers) and returns its report
 * once it exited by itself: the "queries settle, end() is quick, nothing is left open"
 * checks of the Consul and PostgreSQL bounds.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** What the child reports. */
export interface ChildReport {
  readonly queries: ReadonlyArray<{ ok: boolean; millis: number; code?: string }>;
  readonly endMillis: number;
  readonly requests: number;
  readonly left: readonly string[];
}

/**
 * @param peer which peer never answers: `consul` (the Consul agent at `port`) or `pg` (the only PostgreSQL node, at `port`)
 * @param port its port on 127.0.0.1
 */
export async function runHangChild(peer: 'consul' | 'pg', port: number): Promise<{ report: ChildReport; exitedAfterReportMillis: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./hang-child.ts', import.meta.url)), peer, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let reportedAt = 0;
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('\n') && reportedAt === 0) reportedAt = Date.now();
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(killer);
  assert.equal(code, 0, `the child exited by itself with code 0 (output: ${out})`);
  return { report: JSON.parse(out.trim()) as ChildReport, exitedAfterReportMillis: Date.now() - reportedAt };
}
