/**
 * Soak: many statements through one pg-consul Pool (10 % writes, 40 % primary reads, 50 %
 * replica reads) while the cluster switches over again and again (PgCluster + Consul double:
 * stop the primary, promote a replica, re-register, rejoin the old one — seconds per
 * failover). Records heap used after a forced GC and the process's active resources
 * (sockets, timers, …) at start, along the way and after `end()`, and whether the process
 * then exits by itself.
 *
 * {@link runSoak} runs in the current process and needs `global.gc` (`--expose-gc`);
 * {@link runSoakInChild} starts `bench/soak-child.ts` in a child process with that flag and
 * also checks that it exits by itself.
 * @module
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from '../lib/index.js';
import { ConsulDouble } from '../lib/testing/consul-double.js';
import { PgCluster } from '../lib/testing/pg-cluster.js';
import { median, round } from './stats.js';

/** What to do. */
export interface SoakOptions {
  /** Statements to run (at least). */
  readonly queries: number;
  /** Switchovers to make while they run. */
  readonly failovers: number;
  /** Concurrent loops. */
  readonly concurrency: number;
  /** Hard time limit, ms. */
  readonly timeLimitMillis: number;
  /** Whether these are reduced numbers (not the --full soak). */
  readonly reduced: boolean;
}

/** Heap and resources at one moment. */
export interface SoakSample {
  /** What moment. */
  readonly label: string;
  /** ms since the soak started. */
  readonly t: number;
  /** `process.memoryUsage().heapUsed` right after `gc()`, bytes. */
  readonly heapUsedAfterGc: number;
  /** Resident set size, bytes. */
  readonly rss: number;
  /** `process.getActiveResourcesInfo()` counted by kind. */
  readonly resources: Readonly<Record<string, number>>;
  /** Open connections of the pool (`totalCount`), when it exists. */
  readonly poolConnections: number | null;
}

/** What the soak measured. */
export interface SoakResult {
  /** Statements issued. */
  readonly queries: number;
  /** Statements that succeeded. */
  readonly queriesOk: number;
  /** Statements that failed. */
  readonly queriesFailed: number;
  /** Failed statements by `outcome:code`. */
  readonly errorsByKind: Readonly<Record<string, number>>;
  /** Switchovers made. */
  readonly failovers: number;
  /** Duration of one switchover (stop → promoted and re-registered), median and max, ms. */
  readonly failoverMillis: { readonly median: number; readonly max: number };
  /** Concurrent loops. */
  readonly concurrency: number;
  /** Statements per second over the whole soak. */
  readonly statementsPerSec: number;
  /** Wall time of the statement phase, ms. */
  readonly durationMillis: number;
  /** Whether the time limit stopped it before the targets were reached. */
  readonly timedOut: boolean;
  /** Whether these were reduced numbers. */
  readonly reduced: boolean;
  /** Heap / resources along the way. */
  readonly samples: readonly SoakSample[];
  /** Heap after GC at the end minus after warm-up, bytes. */
  readonly heapGrowthBytes: number;
  /** Whether the child process exited by itself after everything was ended (null: ran in-process). */
  readonly exitedByItself: boolean | null;
  /** ms between the report being written and the process exiting (null when not measured). */
  readonly exitMillisAfterEnd: number | null;
}

const SERVICE = 'soak';

function resources(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
  return out;
}

/**
 * Runs the soak in this process (`global.gc` required).
 * @param o sizes
 * @param log progress lines
 */
export async function runSoak(o: SoakOptions, log: (line: string) => void = () => {}): Promise<Omit<SoakResult, 'exitedByItself' | 'exitMillisAfterEnd'>> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('runSoak needs --expose-gc (use runSoakInChild)');
  const t0 = Date.now();
  const samples: SoakSample[] = [];
  let pool: Pool | undefined;
  const sample = async (label: string): Promise<SoakSample> => {
    await sleep(50);
    gc();
    gc();
    const m = process.memoryUsage();
    const s: SoakSample = { label, t: Date.now() - t0, heapUsedAfterGc: m.heapUsed, rss: m.rss, resources: resources(), poolConnections: pool && !pool.ended ? pool.totalCount : null };
    samples.push(s);
    log(`soak: ${label}: heap ${(s.heapUsedAfterGc / 1048576).toFixed(2)} MB, resources ${JSON.stringify(s.resources)}`);
    return s;
  };
  await sample('start (nothing open)');

  const [cluster, consul] = await Promise.all([PgCluster.start({ replicas: 2 }), ConsulDouble.start()]);
  const advertise = (primary: string): void => {
    for (const n of cluster.nodes) {
      const id = `${SERVICE}/${n.name}`;
      if (!cluster.isRunning(n.name)) {
        try {
          consul.deregisterService(id);
        } catch {
          // not registered
        }
        continue;
      }
      consul.registerService({ id, name: SERVICE, address: n.host, port: n.port, tags: n.name === primary ? ['master', 'primary'] : ['replica'], node: n.name, nodeAddress: '127.0.0.1' });
    }
  };
  advertise(cluster.primaryName());
  let issued = 0;
  let ok = 0;
  let failed = 0;
  const errorsByKind: Record<string, number> = {};
  const failoverTimes: number[] = [];
  let timedOut = false;
  let warm: SoakSample | undefined;
  let beforeEnd: SoakSample | undefined;
  let runStart = 0;
  let runEnd = 0;
  try {
    const { user, password, database } = cluster.appUser;
    pool = new Pool({ service: SERVICE, consul: { host: '127.0.0.1', port: consul.port }, user, password, database, max: o.concurrency, failoverTimeoutMillis: 30_000 });
    pool.on('error', () => {});
    await pool.ready(10_000);
    await pool.query('CREATE TABLE IF NOT EXISTS soak_t (id bigserial PRIMARY KEY, v int NOT NULL)');
    const p = pool;
    const deadline = Date.now() + o.timeLimitMillis;
    let failoversDone = 0;
    const done = (): boolean => (issued >= o.queries && failoversDone >= o.failovers) || Date.now() > deadline;
    const loop = async (): Promise<void> => {
      while (!done()) {
        const i = issued++;
        const k = i % 10;
        try {
          if (k === 0) await p.query('INSERT INTO soak_t (v) VALUES ($1)', [i]);
          else if (k <= 4) await p.query('SELECT $1::int AS v', [i]);
          else await p.replica.query('SELECT $1::int AS v', [i]);
          ok++;
        } catch (err) {
          failed++;
          const e = err as { code?: unknown; pgConsulCode?: unknown; outcome?: unknown; name?: unknown };
          const code = e.pgConsulCode ?? e.code;
          const key = `${typeof e.outcome === 'string' ? e.outcome : 'untyped'}:${typeof code === 'string' ? code : String(e.name)}`;
          errorsByKind[key] = (errorsByKind[key] ?? 0) + 1;
        }
      }
    };
    const failoverLoop = async (): Promise<void> => {
      while (failoversDone < o.failovers && Date.now() < deadline) {
        // Spread the failovers over the statements.
        const due = ((failoversDone + 1) * o.queries) / (o.failovers + 1);
        while (issued < due && Date.now() < deadline) await sleep(20);
        if (Date.now() >= deadline) break;
        const from = cluster.primaryName();
        const to = cluster.nodes.find((n) => n.name !== from && cluster.isRunning(n.name))!.name;
        const t = Date.now();
        await cluster.stop(from, 'fast');
        await cluster.promote(to);
        advertise(to);
        failoverTimes.push(Date.now() - t);
        const others = cluster.nodes.filter((n) => n.name !== from && n.name !== to && cluster.isRunning(n.name));
        await Promise.all(others.map((n) => cluster.follow(n.name, to)));
        await cluster.rejoinAsReplica(from);
        advertise(to);
        failoversDone++;
        if (failoversDone % 10 === 0 && failoversDone < o.failovers) await sample(`after ${failoversDone} failovers (${issued} statements, running)`);
      }
    };
    runStart = Date.now();
    // Warm-up: a few statements, then the baseline sample (pool open, connections made).
    const warmTarget = Math.min(2_000, Math.floor(o.queries / 10));
    await Promise.all(Array.from({ length: o.concurrency }, async () => {
      while (issued < warmTarget) {
        issued += 2;
        await p.replica.query('SELECT 1');
        await p.query('SELECT 1');
        ok += 2;
      }
    }));
    warm = await sample('after warm-up (pool open)');
    const loops = Array.from({ length: o.concurrency }, loop);
    await Promise.all([...loops, failoverLoop().finally(() => undefined)]);
    timedOut = issued < o.queries || failoversDone < o.failovers;
    runEnd = Date.now();
    beforeEnd = await sample(`after ${failoversDone} failovers, before end()`);
    await p.end();
    await sample('after pool.end()');
  } finally {
    if (pool && !pool.ending) await pool.end().catch(() => {});
    await consul.stop();
    await cluster.destroy();
  }
  const last = await sample('after teardown (cluster and Consul double stopped)');
  return {
    queries: issued,
    queriesOk: ok,
    queriesFailed: failed,
    errorsByKind,
    failovers: failoverTimes.length,
    failoverMillis: { median: round(median(failoverTimes), 0), max: failoverTimes.length ? Math.max(...failoverTimes) : Number.NaN },
    concurrency: o.concurrency,
    statementsPerSec: round((issued * 1000) / Math.max(1, runEnd - runStart), 1),
    durationMillis: runEnd - runStart,
    timedOut,
    reduced: o.reduced,
    samples,
    heapGrowthBytes: warm ? (beforeEnd ?? last).heapUsedAfterGc - warm.heapUsedAfterGc : Number.NaN,
  };
}

/**
 * Runs the soak in a child process (`node --expose-gc --import tsx bench/soak-child.ts`) and
 * checks that the child exits by itself once it has ended everything.
 * @param o sizes
 * @param log progress lines (the child's too)
 */
export async function runSoakInChild(o: SoakOptions, log: (line: string) => void = () => {}): Promise<SoakResult> {
  const here = dirname(fileURLToPath(import.meta.url));
  const dir = await mkdtemp(join(tmpdir(), 'bench-soak-'));
  const out = join(dir, 'result.json');
  try {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, 'soak-child.ts'), JSON.stringify(o), out], {
      cwd: join(here, '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const forward = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') log(line);
    };
    child.stdout.on('data', forward);
    child.stderr.on('data', forward);
    const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.once('exit', (code) => resolve({ code, at: Date.now() })));
    // The child has the whole time limit plus cluster setup/teardown; then the report must appear.
    const limit = Date.now() + o.timeLimitMillis + 120_000;
    let reportedAt: number | undefined;
    let exit: { code: number | null; at: number } | undefined;
    void exited.then((e) => (exit = e));
    while (Date.now() < limit && exit === undefined) {
      if (reportedAt === undefined && existsSync(out)) reportedAt = Date.now();
      if (reportedAt !== undefined && Date.now() - reportedAt > 15_000) break;
      await sleep(20);
    }
    if (reportedAt === undefined && existsSync(out)) reportedAt = Date.now();
    let exitedByItself = exit !== undefined && exit.code === 0;
    if (exit === undefined) {
      exitedByItself = false;
      child.kill('SIGKILL');
      await exited;
    }
    if (reportedAt === undefined) throw new Error(`soak child produced no report (exit ${exit?.code ?? 'killed'})`);
    const body = JSON.parse(await readFile(out, 'utf8')) as Omit<SoakResult, 'exitedByItself' | 'exitMillisAfterEnd'> & { reportedAt: number };
    const { reportedAt: writtenAt, ...result } = body;
    return { ...result, exitedByItself, exitMillisAfterEnd: exit === undefined ? null : Math.max(0, exit.at - writtenAt) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
