/**
 * node-postgres's own pg-pool test suite (`packages/pg-pool/test/*.js`), run with mocha
 * twice against one real PostgreSQL node: once with `require('../')` resolving to the real
 * pg-pool (the one pg-consul extends, from `node_modules`), once to pg-consul's `Pool` (the
 * built `dist/`, through `bench/pg-pool-suite-shim.cjs`) following that node through the
 * Consul double. Prints passing / failing / pending tests and unhandled rejections of each
 * run, and every test that passes on pg-pool but fails on pg-consul with its error; writes
 * the same to `bench/results/<timestamp>-pg-pool-suite.md`.
 *
 * `npx tsx bench/pg-pool-suite.ts [--node-postgres=PATH] [--out=DIR] [--no-build] [--only=FILE,…] [--one-process]`
 *
 * - `PATH` (or `NODE_POSTGRES_DIR`): a node-postgres checkout (with `packages/pg-pool/test`)
 *   or a bare git directory of it (its `HEAD` is read with `git archive`). The test files
 *   are read from there at run time, never copied into this repository.
 * - `--no-build`: use the existing `dist/` instead of running `npm run build` first.
 * - `PGPOOL_SUITE_HOST_PORT=ignore`: drop the `host` / `port` some tests pass instead of
 *   registering that address as a one-node service (see the shim).
 *
 * The suite's `test/setup.js` (which exits on the first unhandled rejection or warning) is
 * replaced by `bench/pg-pool-suite-hooks.cjs`, which counts them. mocha runs with `--exit`
 * in both runs, because several of the suite's tests never end their pool.
 * @module
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConsulDouble } from '../lib/testing/consul-double.js';
import { PgCluster } from '../lib/testing/pg-cluster.js';
import { advertise } from '../test/support/advertise.js';
import { formatReport, summarize } from './pg-pool-suite-report.js';
import type { MochaJson, MochaTest, SuiteEvent, SuiteRun } from './pg-pool-suite-report.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SERVICE = 'pg-pool-suite';
const RUN_LIMIT_MS = 10 * 60_000;
const flag = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
/**
 * `--one-process`: all files in one mocha process, as pg-pool's own `npm test` does. By
 * default each file runs in its own process, so that a late callback of a failing test
 * cannot fail a test of another file (the suite's tests call back after they ended).
 */
const isolate = !process.argv.includes('--one-process');
/** `--only=index.js,events.js`: run these test files only (while working on one divergence). */
const only = flag('only')?.split(',');

/** Where the pg-pool test files come from, and which commit. */
interface Source {
  readonly description: string;
  readonly commit: string;
  /** Writes `packages/pg-pool/test/*.js` into `dir/test/`. */
  readonly extract: (dir: string) => void;
}

function locateSource(): Source {
  const path = flag('node-postgres') ?? process.env['NODE_POSTGRES_DIR'];
  const hint =
    'pass --node-postgres=PATH or NODE_POSTGRES_DIR=PATH: a node-postgres checkout (git clone https://github.com/brianc/node-postgres) or a bare git directory of it';
  if (!path) throw new Error(`pg-pool-suite: no node-postgres source given; ${hint}`);
  const testDir = join(path, 'packages', 'pg-pool', 'test');
  const git = (...args: string[]): string => execFileSync('git', ['--git-dir', existsSync(join(path, '.git')) ? join(path, '.git') : path, ...args], { encoding: 'utf8' }).trim();
  if (existsSync(testDir)) {
    let commit = 'unknown (not a git checkout)';
    try {
      commit = git('rev-parse', 'HEAD');
    } catch {
      // a plain copy of the sources
    }
    return {
      description: `checkout ${path}`,
      commit,
      extract: (dir) => {
        mkdirSync(join(dir, 'test'), { recursive: true });
        for (const f of readdirSync(testDir)) writeFileSync(join(dir, 'test', f), readFileSync(join(testDir, f)));
      },
    };
  }
  let commit: string;
  try {
    commit = git('rev-parse', 'HEAD');
    git('cat-file', '-e', 'HEAD:packages/pg-pool/test/index.js');
  } catch {
    throw new Error(`pg-pool-suite: ${path} is neither a node-postgres checkout nor its git directory; ${hint}`);
  }
  return {
    description: `git directory ${path}`,
    commit,
    extract: (dir) => {
      mkdirSync(dir, { recursive: true });
      const tar = execFileSync('git', ['--git-dir', path, 'archive', 'HEAD', 'packages/pg-pool/test']);
      execFileSync('tar', ['-x', '-C', dir, '--strip-components=2'], { input: tar });
    },
  };
}

/** One flavour's package directory: `index.js` (what `require('../')` gives) and `test/`. */
function preparePackage(scratch: string, flavour: SuiteRun['flavour'], source: Source): { dir: string; files: string[] } {
  const dir = join(scratch, flavour);
  source.extract(dir);
  const target = flavour === 'pg-pool' ? join(ROOT, 'node_modules', 'pg-pool') : join(ROOT, 'bench', 'pg-pool-suite-shim.cjs');
  writeFileSync(join(dir, 'index.js'), `'use strict';\nmodule.exports = require(${JSON.stringify(target)});\n`);
  const files = readdirSync(join(dir, 'test'))
    .filter((f) => f.endsWith('.js') && f !== 'setup.js' && (only === undefined || only.includes(f)))
    .sort()
    .map((f) => join('test', f));
  return { dir, files };
}

/** Runs mocha on one package directory; resolves with its JSON report and the recorded events. */
async function runMocha(dir: string, files: readonly string[], env: NodeJS.ProcessEnv): Promise<{ json: MochaJson | undefined; events: SuiteEvent[]; exit: string; stderr: string }> {
  const name = files.length === 1 ? basename(files[0]!, '.js') : 'all';
  const output = join(dir, `${name}.mocha.json`);
  const eventsFile = join(dir, `${name}.events.jsonl`);
  const mocha = join(ROOT, 'node_modules', 'mocha', 'bin', 'mocha.js');
  const hooks = join(ROOT, 'bench', 'pg-pool-suite-hooks.cjs');
  const args = [mocha, '--exit', '--require', hooks, '--reporter', 'json', '--reporter-option', `output=${output}`, ...files];
  const child = spawn(process.execPath, args, {
    cwd: dir,
    env: { ...env, NODE_PATH: join(ROOT, 'node_modules'), PGPOOL_SUITE_EVENTS: eventsFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stdout.resume();
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), RUN_LIMIT_MS);
  const exit = await new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? String(code))));
  clearTimeout(killer);
  const json = existsSync(output) ? (JSON.parse(readFileSync(output, 'utf8')) as MochaJson) : undefined;
  const events = existsSync(eventsFile)
    ? readFileSync(eventsFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as SuiteEvent)
    : [];
  return { json, events, exit, stderr };
}

/** Runs the tasks one after the other. */
async function sequentially<T>(tasks: ReadonlyArray<() => Promise<T>>): Promise<T[]> {
  const out: T[] = [];
  for (const task of tasks) out.push(await task());
  return out;
}

/** One run's outcome from the runs of its files: reports concatenated, the non-zero exits named. */
function mergeRuns(results: ReadonlyArray<Awaited<ReturnType<typeof runMocha>>>, names: readonly string[]): Omit<SuiteRun, 'flavour'> {
  const reports = results.map((r) => r.json).filter((j): j is MochaJson => j !== undefined);
  const all = (key: 'tests' | 'passes' | 'failures' | 'pending'): MochaTest[] => reports.flatMap((j) => j[key]);
  const json: MochaJson | undefined =
    reports.length === 0
      ? undefined
      : { stats: { tests: all('tests').length, passes: all('passes').length, pending: all('pending').length, failures: all('failures').length }, tests: all('tests'), passes: all('passes'), failures: all('failures'), pending: all('pending') };
  const failed = results.flatMap((r, i) => (r.exit === '0' ? [] : [`${r.exit} (${names[i]})`]));
  return {
    json,
    events: results.flatMap((r) => r.events),
    exit: failed.length === 0 ? '0' : failed.join(', '),
    stderr: results.filter((r) => r.json === undefined).map((r) => r.stderr).join('\n'),
  };
}

/** The environment of each flavour: the PG variables the suite relies on, plus discovery for pg-consul. */
function environments(cluster: PgCluster, consul: ConsulDouble): Record<SuiteRun['flavour'], NodeJS.ProcessEnv> {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(base)) if (k.startsWith('PG') || k.startsWith('CONSUL_')) delete base[k];
  const node = cluster.node(cluster.primaryName());
  const user = { PGUSER: cluster.appUser.user, PGPASSWORD: cluster.appUser.password, PGDATABASE: cluster.appUser.database };
  return {
    'pg-pool': { ...base, ...user, PGHOST: node.host, PGPORT: String(node.port) },
    'pg-consul': {
      ...base,
      ...user,
      PGCONSUL_SERVICE: SERVICE,
      PGCONSUL_DISCOVERY: 'consul-health',
      CONSUL_HTTP_ADDR: consul.address,
      // One node and no failover coming: a connection failure is reported within mocha's
      // 2 s test timeout (pg-pool reports it at once).
      PGCONSUL_FAILOVER_TIMEOUT_MS: process.env['PGCONSUL_FAILOVER_TIMEOUT_MS'] ?? '1000',
      PGPOOL_SUITE_HOST_PORT: process.env['PGPOOL_SUITE_HOST_PORT'] ?? 'register',
    },
  };
}

async function main(): Promise<void> {
  const source = locateSource();
  if (!process.argv.includes('--no-build')) execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  const scratch = mkdtempSync(join(tmpdir(), 'pg-pool-suite-'));
  const [cluster, consul] = await Promise.all([PgCluster.start({ replicas: 0 }), ConsulDouble.start()]);
  const runs: SuiteRun[] = [];
  try {
    advertise(consul, cluster, SERVICE, cluster.primaryName());
    const env = environments(cluster, consul);
    for (const flavour of ['pg-pool', 'pg-consul'] as const) {
      const { dir, files } = preparePackage(scratch, flavour, source);
      console.log(`running pg-pool's suite on ${flavour} (${files.length} files)…`);
      const groups = isolate ? files.map((f) => [f]) : [files];
      const results = await sequentially(groups.map((g) => () => runMocha(dir, g, env[flavour])));
      runs.push({ flavour, ...mergeRuns(results, groups.map((g) => (g.length === 1 ? basename(g[0]!) : 'all files'))) });
    }
  } finally {
    await consul.stop();
    await cluster.destroy();
    rmSync(scratch, { recursive: true, force: true });
  }
  const summary = summarize(runs);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dirty = execFileSync('git', ['status', '--porcelain', '--', 'lib', 'bench/pg-pool-suite-shim.cjs'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
  const report = formatReport(summary, {
    pgConsul: dirty ? `${head} + changes` : head,
    source: source.description,
    commit: source.commit,
    hostPort: process.env['PGPOOL_SUITE_HOST_PORT'] ?? 'register',
    failoverTimeoutMillis: process.env['PGCONSUL_FAILOVER_TIMEOUT_MS'] ?? '1000',
    processes: isolate ? 'one mocha process per test file' : 'all files in one mocha process',
    date: new Date().toISOString(),
  });
  const outDir = flag('out') ?? join(ROOT, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `${stamp}-pg-pool-suite.md`);
  writeFileSync(file, report);
  console.log(report);
  console.log(`written to ${file}`);
}

await main();
