/**
 * Linux process helpers for the testing tools: liveness, process trees, and killing what a
 * test started without touching anything else.
 * @module
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

function readStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '', ppid: Number(rest[1]) };
  } catch {
    return undefined;
  }
}

/** Whether `pid` exists and is not a zombie (a reparented postmaster may linger as one). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (process.platform !== 'linux') return true;
  const stat = readStat(pid);
  return stat !== undefined && stat.state !== 'Z';
}

/** Whether any process (a zombie included) has this pid — what PostgreSQL's lock-file check asks. */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The postmaster pid recorded in `<dataDir>/postmaster.pid`, if the file exists. */
export function postmasterPid(dataDir: string): number | undefined {
  try {
    const first = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0];
    const pid = Number(first);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** All live pids on this machine with their parent pid and command line (Linux `/proc`). */
function allProcesses(): { pid: number; ppid: number; cmdline: string }[] {
  const out: { pid: number; ppid: number; cmdline: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const stat = readStat(pid);
    if (stat === undefined || stat.state === 'Z') continue;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue;
    }
    out.push({ pid, ppid: stat.ppid, cmdline });
  }
  return out;
}

/**
 * Live pids that are in `roots`, or whose command line contains one of `markers` (e.g. a
 * temp dir: a postmaster runs with `-D <dir>`), plus all their descendants.
 */
export function processTree(roots: readonly number[], markers: readonly string[] = []): number[] {
  const procs = allProcesses();
  const found = new Set<number>(roots.filter((p) => processAlive(p)));
  for (const p of procs) if (markers.some((m) => m !== '' && p.cmdline.includes(m))) found.add(p.pid);
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of procs) {
      if (!found.has(p.pid) && found.has(p.ppid)) {
        found.add(p.pid);
        grew = true;
      }
    }
  }
  return [...found];
}

/** Sends `signal` to each pid, ignoring those already gone. */
export function signalAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/**
 * Waits until none of `pids` is alive; after `graceMs` SIGKILLs the survivors, then waits up
 * to 5 s more. Resolves with the pids still alive at the end (normally none).
 */
export async function waitForExit(pids: readonly number[], graceMs = 5_000): Promise<number[]> {
  const deadline = Date.now() + graceMs;
  let living = pids.filter((p) => processAlive(p));
  while (living.length > 0 && Date.now() < deadline) {
    await sleep(20);
    living = living.filter((p) => processAlive(p));
  }
  if (living.length === 0) return [];
  signalAll(living, 'SIGKILL');
  const hard = Date.now() + 5_000;
  while (living.length > 0 && Date.now() < hard) {
    await sleep(20);
    living = living.filter((p) => processAlive(p));
  }
  return living;
}
