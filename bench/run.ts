/**
 * `npm run bench [-- --smoke | --quick | --full] [--only=overhead,failover,soak,consul-fuzz,net-faults] [--failovers=switchover,kill-patroni] [--out=DIR]`
 *
 * Runs the overhead, failover (with Consul / REST load) and soak benchmarks and writes
 * `latest.json`, `latest.md`, timestamped copies of both and `failover-timeline.svg` to
 * `bench/results/` (or `--out`). `--quick` (default) takes a few minutes, `--smoke` well
 * under a minute (CI), `--full` much longer (1M-statement soak, Patroni-agent crash).
 * @module
 */
import { execFileSync } from 'node:child_process';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configWith, parseArgs } from './config.js';
import type { BenchMode, FailoverKind } from './config.js';
import { runConsulFuzz } from './consul-fuzz.js';
import { runFailover } from './failover.js';
import { netFaultsTable, runNetFaults, writeNetFaults } from './net-faults.js';
import { runOverhead } from './overhead.js';
import { markdownSummary } from './report.js';
import type { BenchResults } from './report.js';
import { runSoakInChild } from './soak.js';
import { failoverTimelineSvg } from './timeline-svg.js';

const HERE = dirname(fileURLToPath(import.meta.url));

/** Paths of the files a run wrote. */
export interface WrittenResults {
  /** `latest.json`. */
  readonly json: string;
  /** `latest.md`. */
  readonly markdown: string;
  /** `failover-timeline.svg` (null when the failover part did not run). */
  readonly svg: string | null;
  /** The timestamped copies. */
  readonly copies: readonly string[];
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: HERE, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

/**
 * Runs the benchmarks of a mode and returns the results (nothing written).
 * @param mode `smoke`, `quick` or `full`
 * @param only parts to run (empty: all)
 * @param log progress lines
 * @param failovers failovers to provoke instead of the mode's
 */
export async function runBenchmarks(
  mode: BenchMode,
  only: ReadonlySet<string> = new Set(),
  log: (line: string) => void = () => {},
  failovers?: readonly FailoverKind[],
): Promise<BenchResults> {
  const config = configWith(mode, failovers);
  const wants = (part: string): boolean => only.size === 0 || only.has(part);
  const started = Date.now();
  const environment = {
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? '?',
    loadAverageAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    gitCommit: gitCommit(),
  };
  const overhead = wants('overhead') ? await runOverhead(config, log) : null;
  const failover = wants('failover') ? await runFailover(config, log) : null;
  const soak = wants('soak')
    ? await runSoakInChild({ ...config.soak, reduced: mode !== 'full' }, log)
    : null;
  const consulFuzz = wants('consul-fuzz') ? await runConsulFuzz(config.consulFuzz, log) : null;
  return { schema: 1, mode, startedAt: new Date(started).toISOString(), durationMillis: Date.now() - started, environment, overhead, failover, soak, consulFuzz };
}

async function writeAtomically(path: string, body: string): Promise<void> {
  await writeFile(`${path}.tmp`, body);
  await rename(`${path}.tmp`, path);
}

/**
 * Writes `latest.json`, `latest.md`, `<timestamp>-<mode>.json|md` and (with failover results)
 * `failover-timeline.svg` to `dir`.
 */
export async function writeResults(results: BenchResults, dir = join(HERE, 'results')): Promise<WrittenResults> {
  await mkdir(dir, { recursive: true });
  const json = `${JSON.stringify(results, null, 2)}\n`;
  const md = markdownSummary(results);
  const stamp = results.startedAt.replace(/[:.]/g, '-');
  const files = {
    json: join(dir, 'latest.json'),
    markdown: join(dir, 'latest.md'),
    copies: [join(dir, `${stamp}-${results.mode}.json`), join(dir, `${stamp}-${results.mode}.md`)],
  };
  await writeAtomically(files.json, json);
  await writeAtomically(files.markdown, md);
  await writeAtomically(files.copies[0]!, json);
  await writeAtomically(files.copies[1]!, md);
  let svg: string | null = null;
  if (results.failover) {
    svg = join(dir, 'failover-timeline.svg');
    const title = `Writes through failovers — pg-consul (Consul health · Patroni KV · auto) vs HAProxy vs postgres.js vs pinned pg.Pool (${results.mode}, ${results.startedAt.slice(0, 16).replace('T', ' ')} UTC)`;
    await writeAtomically(svg, failoverTimelineSvg(results.failover, title));
  }
  return { ...files, svg };
}

async function main(): Promise<void> {
  const { mode, only, outDir, failovers } = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const log = (line: string): void => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}`);
  log(`bench: mode ${mode}${only.size ? `, only ${[...only].join(',')}` : ''}`);
  // The network-fault benchmark needs root (network namespaces): it runs only when asked for
  // (`--only=net-faults`) and writes its own net-faults-*.json.
  if (only.has('net-faults')) {
    const net = await runNetFaults(log);
    console.log(netFaultsTable(net));
    log(`bench: wrote ${await writeNetFaults(net, outDir)}`);
    only.delete('net-faults');
    if (only.size === 0) return;
  }
  const results = await runBenchmarks(mode, only, log, failovers);
  const written = await writeResults(results, outDir);
  log(`bench: wrote ${written.json}, ${written.markdown}${written.svg ? `, ${written.svg}` : ''}`);
}

/**
 * After the network-fault benchmark, postgres.js still holds the sockets of its callers hung
 * on the black-holed node: its `end({ timeout })` ends them (a FIN that is never answered)
 * but never destroys them, and the lab's namespaces are gone, so they would keep this
 * process alive for ever. Everything pg-consul and pg.Pool opened is closed by then.
 */
function exitAfterNetFaults(): void {
  if (process.argv.some((a) => a.startsWith('--only=') && a.includes('net-faults'))) process.exit();
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(exitAfterNetFaults, (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
