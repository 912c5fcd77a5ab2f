/**
 * CPU pinning for the overhead benchmark on a small machine: PostgreSQL (the postmaster and
 * every process it has forked; new backends inherit it) on CPU 0, this process on the other
 * CPUs, so the pools compared never share a core with the server they measure. Uses
 * `taskset` (util-linux); without it, or with one CPU, nothing is pinned and the report says
 * so. `restore()` gives this process every CPU again.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { postmasterPid } from '../lib/testing/processes.js';

/** What was pinned (for the report), and how to undo it for this process. */
export interface CpuPinning {
  /** e.g. `postgres on CPU 0, node on CPU 1`, or why nothing was pinned. */
  readonly description: string;
  /** Gives this process every CPU again (no-op when nothing was pinned). */
  restore(): void;
}

function taskset(args: readonly string[]): string {
  return execFileSync('taskset', [...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function children(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when there is none
  }
}

/**
 * Pins the postmasters of `dataDirs` and their children to CPU 0 and this process to the
 * rest.
 *
 * @param dataDirs the PostgreSQL data directories of the cluster under test
 * @returns what was done
 */
export function pinCpus(dataDirs: readonly string[]): CpuPinning {
  const n = cpus().length;
  const none = (why: string): CpuPinning => ({ description: `not pinned (${why})`, restore: () => {} });
  if (n < 2) return none('one CPU');
  try {
    taskset(['-V']);
  } catch {
    return none('taskset not found');
  }
  const all = `0-${n - 1}`;
  const rest = n === 2 ? '1' : `1-${n - 1}`;
  try {
    for (const dir of dataDirs) {
      const pid = postmasterPid(dir);
      if (pid === undefined) continue;
      for (const p of [pid, ...children(pid)]) taskset(['-a', '-p', '-c', '0', String(p)]);
    }
    taskset(['-a', '-p', '-c', rest, String(process.pid)]);
  } catch (err) {
    return none(`taskset failed: ${(err as Error).message.split('\n')[0]}`);
  }
  return {
    description: `postgres on CPU 0, node on CPU ${rest}`,
    restore: () => {
      try {
        taskset(['-a', '-p', '-c', all, String(process.pid)]);
      } catch {
        // best effort
      }
    },
  };
}
