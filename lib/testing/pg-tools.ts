/**
 * Shared plumbing for the testing helpers: finding PostgreSQL's binaries, running commands
 * as the `postgres` OS user when we are root, and making temp dirs that user owns.
 * @module
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

/** Server binaries every helper needs. */
const REQUIRED_BINARIES = ['initdb', 'pg_ctl', 'pg_basebackup', 'postgres', 'pg_controldata'] as const;

/** Debian package that provides the binaries of `binDir` (`postgresql-15` by default). */
function debianPackageFor(binDir: string | undefined): string {
  const m = binDir === undefined ? null : /\/usr\/lib\/postgresql\/(\d+)\/bin\/?$/.exec(binDir);
  return `postgresql-${m?.[1] ?? '15'}`;
}

function missingIn(binDir: string): string[] {
  return REQUIRED_BINARIES.filter((b) => !existsSync(join(binDir, b)));
}

/**
 * Finds the directory holding PostgreSQL's server binaries (`initdb`, `pg_ctl`,
 * `pg_basebackup`, `postgres`, `pg_controldata`): `explicit` if given, else the `PG_BIN`
 * environment variable, else `pg_config --bindir`, else the highest
 * `/usr/lib/postgresql/<version>/bin`.
 *
 * @throws Error naming the Debian package to install when no candidate has them all.
 * @example
 * ```ts
 * const bin = findPgBin(); // '/usr/lib/postgresql/15/bin'
 * ```
 */
export function findPgBin(explicit?: string): string {
  const chosen = explicit ?? process.env['PG_BIN'];
  if (chosen !== undefined && chosen !== '') {
    const missing = missingIn(chosen);
    if (missing.length > 0) {
      throw new Error(
        `PostgreSQL server binaries ${missing.join(', ')} not found in ${chosen} ` +
          `(from ${explicit === undefined ? 'PG_BIN' : 'the pgBin option'}): install the Debian package ` +
          `${debianPackageFor(chosen)} (apt-get install -y ${debianPackageFor(chosen)}) or point it at the right directory`,
      );
    }
    return chosen;
  }
  const candidates: string[] = [];
  try {
    const out = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (out !== '') candidates.push(out);
  } catch {
    // no pg_config in PATH: try the Debian layout below
  }
  try {
    const versions = readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
    for (const v of versions) candidates.push(`/usr/lib/postgresql/${v}/bin`);
  } catch {
    // no /usr/lib/postgresql
  }
  for (const dir of candidates) {
    if (missingIn(dir).length === 0) return dir;
  }
  throw new Error(
    `PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup, postgres) not found ` +
      `(looked in: ${candidates.length > 0 ? candidates.join(', ') : 'pg_config --bindir, /usr/lib/postgresql/*/bin'}): ` +
      `install the Debian package postgresql-15 (apt-get install -y postgresql-15) or set PG_BIN`,
  );
}

/** uid/gid of an OS user. */
export interface OsUser {
  /** Numeric user id. */
  readonly uid: number;
  /** Numeric primary group id. */
  readonly gid: number;
}

let cachedPostgresUser: OsUser | null | undefined;

/** Whether this process runs as root (PostgreSQL then has to run as another user). */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * The `postgres` OS user when this process is root (PostgreSQL refuses to run as root), else
 * `null` (everything runs as the current user).
 *
 * @throws Error when root and no `postgres` user exists.
 */
export function postgresOsUser(): OsUser | null {
  if (cachedPostgresUser !== undefined) return cachedPostgresUser;
  if (!isRoot()) {
    cachedPostgresUser = null;
    return null;
  }
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    cachedPostgresUser = { uid, gid };
    return cachedPostgresUser;
  } catch {
    throw new Error(
      "running as root, but there is no 'postgres' OS user to run PostgreSQL as: install the Debian package " +
        'postgresql-15 (it creates the user) or run `useradd --system postgres`',
    );
  }
}

/** Options of {@link runCommand}. */
export interface RunCommandOptions {
  /** Run as the `postgres` OS user (through `runuser`) when this process is root. */
  asPostgres?: boolean;
  /** Working directory. */
  cwd?: string;
  /** Extra environment variables (PG* variables of this process are not passed on). */
  env?: Record<string, string>;
  /** Kill the command after this long (default 120 s). */
  timeoutMs?: number;
  /** Receives one line per command run. */
  log?: ((line: string) => void) | undefined;
  /** Argv run in front of the command (before `runuser`), e.g. `['ip', 'netns', 'exec', 'ns1']`. */
  prefix?: readonly string[] | undefined;
}

/**
 * Where the nodes of a PgCluster / PatroniLab run when they are not all on 127.0.0.1 in
 * this network namespace — e.g. {@link NetLab.placement}: one network namespace per node.
 */
export interface PgNetwork {
  /** The address node `name` listens on and is reached at. */
  address(name: string): string;
  /** Argv that runs a command in the node's network namespace (empty: here). */
  commandPrefix(name: string): readonly string[];
  /** CIDR clients (the test process, the other nodes) connect from, for pg_hba.conf. */
  readonly clientCidr: string;
}

/** The default placement: every node on 127.0.0.1 here. */
export const LOOPBACK_NETWORK: PgNetwork = Object.freeze({ address: () => '127.0.0.1', commandPrefix: () => [], clientCidr: '127.0.0.1/32' });

/**
 * Environment for child processes: this process's, minus libpq's `PG*` variables (they could
 * redirect a tool to another server) and `CONSUL_*` variables (python-consul would read
 * `CONSUL_HTTP_ADDR` and choke on a scheme), plus `extra`.
 */
export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('PG') || k.startsWith('CONSUL_')) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/**
 * `[file, args]` to spawn so that `file args…` runs as the `postgres` user when we are root.
 */
export function asPostgresArgv(file: string, args: readonly string[]): [string, string[]] {
  return postgresOsUser() === null ? [file, [...args]] : ['runuser', ['-u', 'postgres', '--', file, ...args]];
}

/**
 * Runs a command to completion and returns its output.
 *
 * @throws Error `"<cmd> failed (exit N): <last lines of stderr>"`.
 */
export function runCommand(file: string, args: readonly string[], options: RunCommandOptions = {}): Promise<{ stdout: string; stderr: string }> {
  const [inner, innerArgv] = options.asPostgres === true ? asPostgresArgv(file, args) : [file, [...args]];
  const prefix = options.prefix ?? [];
  const [cmd, argv] = prefix.length === 0 ? [inner, innerArgv] : [prefix[0] ?? inner, [...prefix.slice(1), inner, ...innerArgv]];
  options.log?.(`$ ${prefix.length === 0 ? '' : `${prefix.join(' ')} `}${basename(file)} ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      argv,
      {
        cwd: options.cwd,
        env: childEnv(options.env),
        timeout: options.timeoutMs ?? 120_000,
        killSignal: 'SIGKILL',
        maxBuffer: 32 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (err) {
          const code = (err as { code?: unknown }).code;
          const tail = `${stderr}`.trim().split('\n').slice(-8).join('\n');
          reject(new Error(`${basename(file)} ${args[0] ?? ''} failed (exit ${String(code ?? (err as { signal?: unknown }).signal)}): ${tail || err.message}`, { cause: err }));
          return;
        }
        resolve({ stdout, stderr });
      },
    );
  });
}

/**
 * Creates a fresh temp dir (mode 0700) owned by the `postgres` user when we are root.
 *
 * @param prefix name prefix, e.g. `pg-cluster-`
 * @param parent directory to create it in (default `os.tmpdir()`); the `postgres` user must
 *   be able to traverse it
 */
export async function makeOwnedTempDir(prefix: string, parent?: string): Promise<string> {
  const user = postgresOsUser();
  const dir = await mkdtemp(join(parent ?? tmpdir(), prefix));
  try {
    await chmod(dir, 0o700);
    if (user !== null) await chown(dir, user.uid, user.gid);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  if (user !== null) {
    try {
      await runCommand('test', ['-w', dir, '-a', '-x', dir], { asPostgres: true });
    } catch {
      await rm(dir, { recursive: true, force: true });
      throw new Error(`the 'postgres' OS user cannot use ${dir}: choose a baseDir every user can traverse (e.g. under /tmp)`);
    }
  }
  return dir;
}

/** Changes the owner of `path` to the `postgres` user when we are root (no-op otherwise). */
export async function chownToPostgres(path: string): Promise<void> {
  const user = postgresOsUser();
  if (user !== null) await chown(path, user.uid, user.gid);
}
