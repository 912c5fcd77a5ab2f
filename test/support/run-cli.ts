/**
 * Runs the `pg-consul` CLI (lib/cli/index.ts through tsx) as a child process.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const ENTRY = fileURLToPath(new URL('../../lib/cli/index.ts', import.meta.url));
const TSX = fileURLToPath(new URL('../../node_modules/tsx/dist/cli.mjs', import.meta.url));

/** What a finished CLI run printed. */
export interface CliRun {
  /** Exit code. */
  readonly code: number | null;
  /** Everything on stdout. */
  readonly stdout: string;
  /** Everything on stderr. */
  readonly stderr: string;
}

/** A clean environment: PATH and HOME only, plus `env`. */
function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, ...env };
}

/**
 * Starts the CLI; the caller reads its output and ends it.
 * @param args command line arguments
 * @param env environment (on top of PATH/HOME only)
 * @returns the child
 */
export function spawnCli(args: readonly string[], env: Record<string, string>): ChildProcessByStdio<null, Readable, Readable> {
  return spawn(process.execPath, [TSX, ENTRY, ...args], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Runs the CLI to completion (killed after 60 s).
 * @param args command line arguments
 * @param env environment
 * @returns code and output
 */
export function runCli(args: readonly string[], env: Record<string, string>): Promise<CliRun> {
  const child = spawnCli(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}
