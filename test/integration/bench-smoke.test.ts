/**
 * CI smoke of the benchmarks: `bench/run.ts --smoke` as a child process (tiny iterations,
 * real PostgreSQL, the Patroni lab, HAProxy when installed) must produce well-formed results:
 * every client and case present, every number finite. The numbers themselves never gate CI.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OverheadCase } from '../../bench/overhead.js';
import type { BenchResults } from '../../bench/report.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const HAPROXY = '/usr/sbin/haproxy';

/** Every number reachable in `value` (arrays and objects walked), with its path. */
function numbers(value: unknown, path = '$', out: [string, number][] = []): [string, number][] {
  if (typeof value === 'number') out.push([path, value]);
  else if (Array.isArray(value)) value.forEach((v, i) => numbers(v, `${path}[${i}]`, out));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) numbers(v, `${path}.${k}`, out);
  return out;
}

function runSmoke(outDir: string, timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'run.ts'), '--smoke', `--out=${outDir}`], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`bench --smoke did not finish within ${timeoutMs} ms:\n${output.slice(-3000)}`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('bench --smoke', function () {
  this.timeout(90_000);
  let dir: string;
  let results: BenchResults;

  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'bench-smoke-'));
    const { code, output } = await runSmoke(dir, 80_000);
    assert.equal(code, 0, `bench --smoke failed:\n${output.slice(-4000)}`);
    results = JSON.parse(await readFile(join(dir, 'latest.json'), 'utf8')) as BenchResults;
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes latest.json, latest.md, timestamped copies and the SVG timeline', async () => {
    for (const f of ['latest.json', 'latest.md', 'failover-timeline.svg']) assert.ok(existsSync(join(dir, f)), `${f} written`);
    const svg = await readFile(join(dir, 'failover-timeline.svg'), 'utf8');
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*>/);
    assert.ok(svg.trimEnd().endsWith('</svg>'));
    assert.match(await readFile(join(dir, 'latest.md'), 'utf8'), /^# pg-consul benchmarks \(smoke\)/);
    assert.equal(results.schema, 1);
    assert.equal(results.mode, 'smoke');
  });

  it('every number in the results is finite (null marks "did not happen")', () => {
    const bad = numbers(results).filter(([, v]) => !Number.isFinite(v));
    assert.deepEqual(bad, []);
  });

  it('overhead: every statement × concurrency × path, with throughput for both clients', () => {
    const o = results.overhead;
    assert.ok(o);
    for (const statement of ['select1', 'row1k']) {
      for (const concurrency of [1, 8, 32]) {
        for (const path of ['primary', 'replica'] as const) {
          const c: OverheadCase | undefined = o.cases.find((x) => x.statement === statement && x.concurrency === concurrency && x.path === path);
          assert.ok(c, `case ${statement} c=${concurrency} ${path}`);
          assert.ok(c.baseline.opsPerSec > 0 && c.candidate.opsPerSec > 0 && c.ratio > 0);
          assert.equal(c.baseline.errors + c.candidate.errors, 0);
        }
      }
    }
  });

  it('failover: every client through the switchover, with Consul / REST load', () => {
    const f = results.failover;
    assert.ok(f);
    const s = f.scenarios.find((x) => x.kind === 'switchover');
    assert.ok(s, 'switchover scenario');
    assert.notEqual(s.from, s.to);
    const expected = existsSync(HAPROXY)
      ? ['pg-consul', 'pg-consul-kv', 'pg-consul-auto', 'haproxy', 'postgres.js', 'pinned']
      : ['pg-consul', 'pg-consul-kv', 'pg-consul-auto', 'postgres.js', 'pinned'];
    assert.deepEqual(
      s.clients.map((c) => c.client),
      expected,
    );
    assert.deepEqual(
      s.timeline.series.map((t) => t.client),
      expected,
    );
    for (const c of s.clients) {
      assert.ok(c.writesOk > 0, `${c.client} wrote before the failover`);
      assert.ok(c.longestWriteGapMs >= 0);
    }
    assert.ok(s.clients.find((c) => c.client === 'pg-consul')?.pgConsul, 'pg-consul breakdown');
    if (existsSync(HAPROXY)) assert.ok(s.haproxyChecks && s.haproxyChecks.computedPerSec === 2);
  });

  it('consul fuzz: every phase measured for every Pool, nothing left open after end()', () => {
    const c = results.consulFuzz;
    assert.ok(c);
    assert.deepEqual(c.phases.map((p) => p.phase), ['fuzz', 'errors', 'churn', 'hang']);
    for (const p of c.phases) assert.equal(p.perPool.length, c.config.pools + (c.config.patroniHealthPool === true ? 1 : 0));
    assert.ok(c.phases.some((p) => p.settled > 0), 'queries ran on the good answers');
    assert.equal(c.openConnectionsAfterEnd, 0);
  });

  it('soak: ran statements and a failover, and the child exited by itself', () => {
    const s = results.soak;
    assert.ok(s);
    assert.ok(s.queriesOk > 0);
    assert.ok(s.failovers >= 1);
    assert.ok(s.samples.length >= 4);
    assert.equal(typeof s.exitedByItself, 'boolean');
  });
});
