/**
 * Failover benchmark: on one {@link PatroniLab} (real Patroni 3.0.2 agents on the Consul
 * double), six clients (pg-consul in its health, its Patroni-KV and its default `auto` mode, HAProxy, postgres.js, a pinned pg.Pool) run the same workload at once — one writer every ~5 ms and one
 * reader each — while the lab goes through a switchover and a crash failover (`kill -9` of
 * the leader's postmaster; in `--full` also `kill -9` of the leader's Patroni agent, which
 * leaves the old PostgreSQL running as an orphaned primary). For each client it measures
 * when the first write reached the new leader (relative to the leader-key move, to Consul's
 * health view naming the new leader, and to its registration as the sole passing primary),
 * the longest write gap, the errors surfaced by kind, acknowledged writes that landed on the
 * old leader after the leader key moved, and acknowledged writes missing from the new
 * leader afterwards. It also counts the requests each client style sends to Consul (and
 * HAProxy's checks to Patroni's REST API) in steady state and during the failover.
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { PatroniLab } from '../lib/testing/patroni-lab.js';
import { Workload } from '../lib/testing/workload.js';
import type { WriteRecord } from '../lib/testing/workload.js';
import type { BenchConfig, FailoverKind } from './config.js';
import { CLIENT_NAMES, haproxyClient, pgConsulClient, pinnedClient, postgresJsClient } from './failover-clients.js';
import type { BenchClient, ClientContext, ClientName } from './failover-clients.js';
import { CHECK_SETTINGS, Haproxy } from './haproxy.js';
import { HealthWatch } from './health-watch.js';
import { round } from './stats.js';

/** Width of the timeline buckets, ms. */
export const BUCKET_MILLIS = 100;

/** Times relative to the failover start (ms); null when it did not happen in the window. */
export interface RelativeTimes {
  /** From the moment the failover was provoked. */
  readonly fromStart: number | null;
  /** From the moment the Consul KV leader key named the new leader. */
  readonly fromLeaderKey: number | null;
  /** From the moment Consul's health view first listed the new leader as a passing primary. */
  readonly fromConsulListed: number | null;
  /** From the moment the new leader was the sole passing primary (the lab's `registeredAt`). */
  readonly fromRegistration: number | null;
}

/** Requests a client style sends to Consul (or HAProxy to Patroni's REST API). */
export interface ControlPlaneLoad {
  /** What is counted. */
  readonly what: string;
  /** Requests per second in the steady window before the failover. */
  readonly steadyPerSec: number;
  /** Requests from the failover start to the end of the window. */
  readonly duringFailover: number;
  /** The same, per second. */
  readonly duringFailoverPerSec: number;
  /** Expected steady rate from the configuration, when it can be computed. */
  readonly computedPerSec?: number;
}

/** pg-consul's own part of the stall. */
export interface PgConsulBreakdown {
  /** Consul listed the new leader → the pool's `topology` event naming it, ms. */
  readonly consulListedToTopologyMs: number | null;
  /** The `topology` event → the first write acknowledged by the new leader, ms. */
  readonly topologyToFirstWriteMs: number | null;
  /** Consul listed the new leader → first write on it: everything pg-consul adds, ms. */
  readonly consulListedToFirstWriteMs: number | null;
  /** The pool's `failover` event: `durationMillis` (first trouble → confirmed new primary). */
  readonly failoverEventDurationMs: number | null;
  /** `retry` events on the primary path during the window. */
  readonly retriesPrimary: number;
  /** `retry` events on the replica path. */
  readonly retriesReplica: number;
}

/** One client through one failover. */
export interface ClientFailoverResult {
  /** Client style. */
  readonly client: ClientName;
  /** How it was set up. */
  readonly description: string;
  /** Writes acknowledged in the window. */
  readonly writesOk: number;
  /** Writes failed in the window. */
  readonly writesFailed: number;
  /** Failed writes by outcome label: `unknown`, `not-executed`, `executed` (pg-consul's), `untyped`. */
  readonly errorsByOutcome: Readonly<Record<string, number>>;
  /** Failed writes by `outcome:code` (code = pg-consul code, SQLSTATE, Node code, or the class name). */
  readonly errorsByKind: Readonly<Record<string, number>>;
  /** Reads answered / failed in the window. */
  readonly readsOk: number;
  /** Reads failed in the window. */
  readonly readsFailed: number;
  /** Whether a write reached the new leader within the window. */
  readonly recovered: boolean;
  /** When the first write acknowledged by the new leader completed. */
  readonly firstNewLeaderWrite: RelativeTimes;
  /** When the last failed write of the window completed, ms after the start (null: none failed). */
  readonly lastWriteErrorMs: number | null;
  /** Longest time without any acknowledged write in the window, ms. */
  readonly longestWriteGapMs: number;
  /** Start of that gap relative to the failover start, ms. */
  readonly longestWriteGapStartMs: number;
  /** Writes acknowledged by the old leader that completed after the leader key had moved. */
  readonly ackedOnOldLeaderAfterMove: number;
  /** Acknowledged writes whose row is missing from the new leader after the run (null: not checked). */
  readonly lostAckedWrites: number | null;
  /** After a Patroni kill: rows on the orphaned old primary that the new leader does not have (split brain). */
  readonly orphanOnlyRows?: number | null;
  /** Requests to Consul (pg-consul) — 0 for the others, whose control-plane load is listed separately. */
  readonly consul: ControlPlaneLoad;
  /** pg-consul only: its own part of the stall. */
  readonly pgConsul?: PgConsulBreakdown;
}

/** Acks and errors of one client per {@link BUCKET_MILLIS} bucket. */
export interface TimelineSeries {
  /** Client style. */
  readonly client: ClientName;
  /** Acks by the old leader per bucket. */
  readonly acksOld: number[];
  /** Acks by the new leader per bucket. */
  readonly acksNew: number[];
  /** Acks by any other server per bucket. */
  readonly acksOther: number[];
  /** Failed writes per bucket. */
  readonly errors: number[];
  /** Slowest write completing in the bucket, ms (0 when none). */
  readonly maxLatencyMs: number[];
}

/** One failover. */
export interface FailoverScenarioResult {
  /** What was done. */
  readonly kind: FailoverKind;
  /** Leader before. */
  readonly from: string;
  /** Leader after. */
  readonly to: string;
  /** When it was provoked (ms since the epoch). */
  readonly startedAt: number;
  /** Leader key named `to`, ms after the start. */
  readonly leaderKeyMovedMs: number;
  /** Consul's health view first listed `to` as a passing primary, ms after the start. */
  readonly consulListedMs: number | null;
  /** `to` was the sole passing primary, ms after the start (the lab's `registeredAt` for a switchover). */
  readonly registeredMs: number | null;
  /** Start and end of the measured window relative to the failover start, ms. */
  readonly windowMs: readonly [number, number];
  /** Per client. */
  readonly clients: readonly ClientFailoverResult[];
  /** HAProxy's checks to Patroni's REST API (all listeners, all nodes). */
  readonly haproxyChecks: ControlPlaneLoad | null;
  /** HAProxy's server state changes (ms after the start, log line). */
  readonly haproxyEvents: readonly { readonly t: number; readonly line: string }[];
  /** Consul health-view changes (ms after the start, passing primaries, replicas). */
  readonly consulView: readonly { readonly t: number; readonly primaries: readonly string[]; readonly replicas: readonly string[] }[];
  /** Acks per bucket for the chart. */
  readonly timeline: { readonly bucketMillis: number; readonly fromMs: number; readonly series: readonly TimelineSeries[] };
}

/** Everything the failover benchmark measured. */
export interface FailoverResult {
  /** `patroni` or `fallback` (the lab plays Patroni's role when it is not installed). */
  readonly labMode: 'patroni' | 'fallback';
  /** Lab settings that shape the timings. */
  readonly lab: { readonly ttl: number; readonly loopWait: number; readonly checkInterval: string };
  /** Whether HAProxy ran. */
  readonly haproxy: boolean;
  /** The HAProxy config used (null when not installed). */
  readonly haproxyConfig: string | null;
  /** Pause between two writes of one client, ms. */
  readonly writeIntervalMillis: number;
  /** The failovers. */
  readonly scenarios: readonly FailoverScenarioResult[];
}

interface Running {
  readonly client: BenchClient;
  readonly load: Workload;
}

/** A client counts as recovered once it wrote to the new leader and had no error for this long. */
const QUIET_MILLIS = 1_000;
const LAB_TTL = 10;
const LAB_LOOP_WAIT = 1;
const LAB_CHECK_INTERVAL = '1s';

/**
 * Runs the failover benchmark.
 *
 * @param config sizes (see {@link BenchConfig})
 * @param log progress lines
 */
export async function runFailover(config: BenchConfig, log: (line: string) => void = () => {}): Promise<FailoverResult> {
  const f = config.failover;
  const t0 = Date.now();
  const lab = await PatroniLab.start({ ttl: LAB_TTL, loopWait: LAB_LOOP_WAIT, checkInterval: LAB_CHECK_INTERVAL });
  log(`failover: lab (${lab.mode}) healthy in ${Date.now() - t0} ms`);
  let haproxy: Haproxy | undefined;
  const watch = new HealthWatch({ host: lab.consul.host, port: lab.consul.port }, lab.serviceName, lab.scope);
  try {
    if (Haproxy.available()) {
      haproxy = await Haproxy.start(lab.nodes.map((n) => ({ name: n.name, pgPort: n.pgPort, apiPort: n.apiPort })));
      await waitForHaproxy(lab, haproxy);
      log(`failover: haproxy routes to the leader (${Date.now() - t0} ms)`);
    } else {
      log('failover: HAProxy is not installed; the haproxy client is skipped');
    }
    const scenarios: FailoverScenarioResult[] = [];
    for (const [i, kind] of f.kinds.entries()) {
      const s = await runScenario(lab, haproxy, watch, kind, i, config);
      scenarios.push(s);
      log(`failover ${kind} ${s.from} -> ${s.to}: leader key +${s.leaderKeyMovedMs} ms, consul listed +${s.consulListedMs} ms, sole primary +${s.registeredMs} ms`);
      for (const c of s.clients) {
        log(
          `  ${c.client.padEnd(11)} first write on new leader ${fmt(c.firstNewLeaderWrite.fromRegistration)} ms after registration (${fmt(c.firstNewLeaderWrite.fromLeaderKey)} after leader key), gap ${c.longestWriteGapMs} ms, errors ${JSON.stringify(c.errorsByKind)}, on old leader after move ${c.ackedOnOldLeaderAfterMove}, lost ${c.lostAckedWrites}`,
        );
      }
      if (i < f.kinds.length - 1) {
        const h = await lab.waitForHealthy(120_000);
        if (haproxy) await waitForHaproxy(lab, haproxy);
        log(`failover: lab healthy again (leader ${h.primary})`);
      }
    }
    return {
      labMode: lab.mode,
      lab: { ttl: LAB_TTL, loopWait: LAB_LOOP_WAIT, checkInterval: LAB_CHECK_INTERVAL },
      haproxy: haproxy !== undefined,
      haproxyConfig: haproxy?.config ?? null,
      writeIntervalMillis: f.intervalMillis,
      scenarios,
    };
  } finally {
    await watch.stop();
    await haproxy?.stop();
    await lab.stop();
  }
}

function fmt(x: number | null): string {
  return x === null ? 'never' : String(x);
}

/**
 * Waits until HAProxy's primary listener sends every connection to the leader and its
 * replicas listener only to servers in recovery (HAProxy starts with every server up and
 * needs `fall` failed checks to take one out of rotation).
 */
async function waitForHaproxy(lab: PatroniLab, haproxy: Haproxy, timeoutMs = 40_000): Promise<void> {
  const { user, password, database } = lab.appUser;
  const probe = async (port: number): Promise<{ port: number; r: boolean } | undefined> => {
    const c = new pg.Client({ host: '127.0.0.1', port, user, password, database, connectionTimeoutMillis: 2_000 });
    c.on('error', () => {});
    try {
      await c.connect();
      const res = await c.query<{ port: number; r: boolean }>('SELECT inet_server_port() AS port, pg_is_in_recovery() AS r');
      return res.rows[0];
    } catch {
      return undefined;
    } finally {
      await c.end().catch(() => {});
    }
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const name = await lab.leader().catch(() => undefined);
    const leaderPort = lab.nodes.find((n) => n.name === name)?.pgPort;
    let ok = leaderPort !== undefined;
    // Round robin over 3 servers: 2 × N connections reach each server twice.
    for (let i = 0; ok && i < 2 * lab.nodes.length; i++) {
      const w = await probe(haproxy.primaryPort);
      const r = await probe(haproxy.replicasPort);
      ok = w?.port === leaderPort && w?.r === false && r?.r === true;
    }
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`HAProxy did not route to the leader only within ${timeoutMs} ms`);
    await sleep(500);
  }
}

async function runScenario(
  lab: PatroniLab,
  haproxy: Haproxy | undefined,
  watch: HealthWatch,
  kind: FailoverKind,
  index: number,
  config: BenchConfig,
): Promise<FailoverScenarioResult> {
  const f = config.failover;
  const from = await lab.leader();
  const ctx: ClientContext = { lab, haproxy, leader: from, max: 4 };
  const clients: BenchClient[] = [pgConsulClient(ctx), pgConsulClient(ctx, 'patroni'), pgConsulClient(ctx, 'auto')];
  if (haproxy) clients.push(haproxyClient(ctx));
  clients.push(postgresJsClient(ctx), pinnedClient(ctx));
  const running: Running[] = [];
  try {
    for (const client of clients) {
      const load = await Workload.start({
        pool: client.target,
        writers: 1,
        readers: 1,
        intervalMillis: f.intervalMillis,
        table: `bench_fo${index}_${client.name.replace(/[^a-z]/g, '')}`,
      });
      running.push({ client, load });
    }
    // Let every client open its connections (pg-consul: its first discovery rounds) first.
    await sleep(1_000);
    // Steady state.
    const steadyStart = Date.now();
    const consulAtSteady = new Map(clients.map((c) => [c.name, c.consulRequests()]));
    await sleep(f.steadyMillis);
    const startedAt = Date.now();
    const consulAtStart = new Map(clients.map((c) => [c.name, c.consulRequests()]));

    // Provoke the failover and find out when the leader key moved / the new leader registered.
    let to: string;
    let leaderKeyMovedAt: number;
    let labRegisteredAt: number | undefined;
    let failoverStartedAt = startedAt;
    if (kind === 'switchover') {
      const t = await lab.switchover();
      to = t.to;
      failoverStartedAt = t.startedAt;
      leaderKeyMovedAt = t.leaderKeyMovedAt;
      labRegisteredAt = t.registeredAt;
    } else {
      if (kind === 'kill-postgres') await lab.killPostgres(from);
      else await lab.killPatroni(from);
      const deadline = startedAt + 60_000;
      for (;;) {
        const name = await lab.leader().catch(() => undefined);
        if (name !== undefined && name !== from) {
          to = name;
          leaderKeyMovedAt = Date.now();
          break;
        }
        if (Date.now() > deadline) throw new Error(`${kind}: no new leader within 60 s`);
        await sleep(20);
      }
    }
    const toPort = lab.nodes.find((n) => n.name === to)!.pgPort;
    const fromPort = lab.nodes.find((n) => n.name === from)!.pgPort;

    // Let the clients find the new leader (pinned never does) and stop failing for a while,
    // then settle.
    const deadline = failoverStartedAt + f.recoveryTimeoutMillis;
    const recovered = (r: Running, now: number): boolean => {
      if (firstAckOn(r.load.writes, toPort, failoverStartedAt) === undefined) return false;
      const lastError = lastErrorAt(r.load.writes);
      return lastError === undefined || now - lastError > QUIET_MILLIS;
    };
    while (Date.now() < deadline) {
      const now = Date.now();
      const sole = watch.firstAfter(failoverStartedAt, (x) => x.primaries.length === 1 && x.primaries[0] === to);
      if (sole && running.every((r) => r.client.name === 'pinned' || recovered(r, now))) break;
      await sleep(50);
    }
    await sleep(f.settleMillis);
    const endAt = Date.now();
    const consulAtEnd = new Map(clients.map((c) => [c.name, c.consulRequests()]));
    await Promise.all(running.map((r) => stopWithin(r, 20_000)));

    // Which acked writes are on the new leader (and, after a Patroni kill, on the orphan)?
    const onNew = await idsOn(lab, toPort, running);
    // After a Patroni kill the old leader's PostgreSQL still runs as an orphaned primary.
    const onOld = kind === 'kill-patroni' ? await idsOn(lab, fromPort, running) : undefined;
    const consulListed = watch.firstAfter(failoverStartedAt, (s) => s.primaries.includes(to));
    const sole = watch.firstAfter(failoverStartedAt, (s) => s.primaries.length === 1 && s.primaries[0] === to);
    const registeredAt = labRegisteredAt ?? sole?.at;
    const rel = (t: number | undefined): number | null => (t === undefined ? null : t - failoverStartedAt);
    const windowStart = steadyStart;
    const results: ClientFailoverResult[] = running.map(({ client, load }) => {
      const writes = load.writes.filter((w) => w.startedAt >= windowStart && w.startedAt < endAt);
      const reads = load.reads.filter((r) => r.startedAt >= windowStart && r.startedAt < endAt);
      const first = firstAckOn(load.writes, toPort, failoverStartedAt)?.endedAt;
      const since = (t: number | undefined): number | null => (first === undefined || t === undefined ? null : first - t);
      const errorsByOutcome: Record<string, number> = {};
      const errorsByKind: Record<string, number> = {};
      for (const w of writes) {
        if (!w.error) continue;
        errorsByOutcome[w.error.outcome] = (errorsByOutcome[w.error.outcome] ?? 0) + 1;
        const k = `${w.error.outcome}:${w.error.code ?? `${w.error.name} (${w.error.message.slice(0, 60)})`}`;
        errorsByKind[k] = (errorsByKind[k] ?? 0) + 1;
      }
      const acked = writes.filter((w) => !w.error);
      const present = onNew.get(client.name);
      const lost = present === undefined ? null : acked.filter((w) => !present.has(w.id)).length;
      const durationSteady = (startedAt - steadyStart) / 1000;
      const durationFailover = (endAt - failoverStartedAt) / 1000;
      const consulFailover = (consulAtEnd.get(client.name) ?? 0) - (consulAtStart.get(client.name) ?? 0);
      const consulLoad: ControlPlaneLoad = {
        what: client.name.startsWith('pg-consul') ? 'HTTP requests to Consul (pool.discoveryRequestCount)' : 'none (does not talk to Consul)',
        steadyPerSec: round(((consulAtStart.get(client.name) ?? 0) - (consulAtSteady.get(client.name) ?? 0)) / durationSteady, 3),
        duringFailover: consulFailover,
        duringFailoverPerSec: round(consulFailover / durationFailover, 3),
      };
      let pgConsul: PgConsulBreakdown | undefined;
      if (client.trace) {
        const topo = client.trace.topology.find((e) => e.at >= failoverStartedAt && e.primary === to);
        const fo = client.trace.failovers.find((e) => e.at >= failoverStartedAt);
        pgConsul = {
          consulListedToTopologyMs: topo && consulListed ? topo.at - consulListed.at : null,
          topologyToFirstWriteMs: topo && first !== undefined ? first - topo.at : null,
          consulListedToFirstWriteMs: consulListed && first !== undefined ? first - consulListed.at : null,
          failoverEventDurationMs: fo?.durationMillis ?? null,
          retriesPrimary: client.trace.retriesPrimary,
          retriesReplica: client.trace.retriesReplica,
        };
      }
      return {
        client: client.name,
        description: client.description,
        writesOk: acked.length,
        writesFailed: writes.length - acked.length,
        errorsByOutcome,
        errorsByKind,
        readsOk: reads.filter((r) => !r.error).length,
        readsFailed: reads.filter((r) => r.error).length,
        recovered: first !== undefined,
        firstNewLeaderWrite: {
          fromStart: rel(first),
          fromLeaderKey: since(leaderKeyMovedAt),
          fromConsulListed: since(consulListed?.at),
          fromRegistration: since(registeredAt),
        },
        lastWriteErrorMs: rel(lastErrorAt(writes)),
        longestWriteGapMs: gapWithEnd(acked, endAt).gap,
        longestWriteGapStartMs: gapWithEnd(acked, endAt).start - failoverStartedAt,
        ackedOnOldLeaderAfterMove: acked.filter((w) => w.port === fromPort && w.endedAt > leaderKeyMovedAt).length,
        lostAckedWrites: lost,
        consul: consulLoad,
        ...(pgConsul ? { pgConsul } : {}),
        ...(onOld ? { orphanOnlyRows: countMissing(onOld.get(client.name), present) } : {}),
      } satisfies ClientFailoverResult;
    });

    let haproxyChecks: ControlPlaneLoad | null = null;
    if (haproxy) {
      const during = haproxy.checksBetween(failoverStartedAt, endAt);
      const { interMillis } = CHECK_SETTINGS;
      haproxyChecks = {
        what: "HAProxy health checks to Patroni's REST API (counted by a proxy in front of each REST port)",
        steadyPerSec: round(haproxy.checksBetween(steadyStart, startedAt) / ((startedAt - steadyStart) / 1000), 3),
        duringFailover: during,
        duringFailoverPerSec: round(during / ((endAt - failoverStartedAt) / 1000), 3),
        computedPerSec: round((2 * lab.nodes.length * 1000) / interMillis, 3),
      };
    }
    const fromMs = Math.max(steadyStart, failoverStartedAt - 2_000) - failoverStartedAt;
    const timeline = {
      bucketMillis: BUCKET_MILLIS,
      fromMs,
      series: running.map(({ client, load }) => buckets(client.name, load.writes, failoverStartedAt + fromMs, endAt, fromPort, toPort)),
    };

    // Give the orphan its agent back: Patroni demotes it and rejoins it as a replica.
    if (kind === 'kill-patroni') await lab.restartPatroni(from);

    return {
      kind,
      from,
      to,
      startedAt: failoverStartedAt,
      leaderKeyMovedMs: leaderKeyMovedAt - failoverStartedAt,
      consulListedMs: rel(consulListed?.at),
      registeredMs: rel(registeredAt),
      windowMs: [steadyStart - failoverStartedAt, endAt - failoverStartedAt],
      clients: results,
      haproxyChecks,
      haproxyEvents: (haproxy?.events ?? [])
        .filter((e) => e.at >= steadyStart && e.at <= endAt)
        .map((e) => ({ t: e.at - failoverStartedAt, line: e.line })),
      consulView: watch.samples
        .filter((s) => s.at >= steadyStart && s.at <= endAt)
        .map((s) => ({ t: s.at - failoverStartedAt, primaries: s.primaries, replicas: s.replicas })),
      timeline,
    };
  } finally {
    await Promise.all(running.map((r) => stopWithin(r, 20_000)));
    await Promise.all(clients.map((c) => c.end()));
  }
}

/** How many ids of `old` are not in `present` (null when either is unknown). */
function countMissing(old: ReadonlySet<number> | undefined, present: ReadonlySet<number> | undefined): number | null {
  if (old === undefined || present === undefined) return null;
  let n = 0;
  for (const id of old) if (!present.has(id)) n++;
  return n;
}

/** When the last failed write completed. */
function lastErrorAt(writes: readonly WriteRecord[]): number | undefined {
  for (let i = writes.length - 1; i >= 0; i--) if (writes[i]!.error) return writes[i]!.endedAt;
  return undefined;
}

/** The first write acknowledged by `port` that was issued at or after `since`. */
function firstAckOn(writes: readonly WriteRecord[], port: number, since: number): WriteRecord | undefined {
  let best: WriteRecord | undefined;
  for (const w of writes) if (!w.error && w.port === port && w.startedAt >= since && (!best || w.endedAt < best.endedAt)) best = w;
  return best;
}

/** Longest gap between acks, counting the stretch from the last ack to `end`. */
function gapWithEnd(acked: readonly WriteRecord[], end: number): { gap: number; start: number } {
  const t = acked.map((w) => w.endedAt).sort((a, b) => a - b);
  let gap = 0;
  let start = t[0] ?? end;
  for (let i = 1; i < t.length; i++) {
    const d = t[i]! - t[i - 1]!;
    if (d > gap) {
      gap = d;
      start = t[i - 1]!;
    }
  }
  const last = t[t.length - 1];
  if (last !== undefined && end - last > gap) {
    gap = end - last;
    start = last;
  }
  return { gap, start };
}

async function stopWithin(r: Running, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const stopped = r.load.stop();
  const late = await Promise.race([stopped.then(() => false), new Promise<boolean>((res) => (timer = setTimeout(() => res(true), ms)))]);
  clearTimeout(timer);
  if (late) {
    // A statement hangs: closing the client fails it, so the workload ends.
    await r.client.end();
    await stopped;
  }
}

/** Ids present in each client's table on the server at `port` (superuser, trusted on loopback). */
async function idsOn(lab: PatroniLab, port: number, running: readonly Running[]): Promise<Map<ClientName, Set<number>>> {
  const out = new Map<ClientName, Set<number>>();
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: lab.appUser.database, connectionTimeoutMillis: 5_000, query_timeout: 30_000 });
  c.on('error', () => {});
  try {
    await c.connect();
    for (const { client, load } of running) {
      try {
        const res = await c.query<{ id: string }>(`SELECT id FROM ${load.table}`);
        out.set(client.name, new Set(res.rows.map((r) => Number(r.id))));
      } catch {
        // table missing on that node: leave unknown
      }
    }
  } catch {
    // node unreachable: unknown
  } finally {
    await c.end().catch(() => {});
  }
  return out;
}

function buckets(client: ClientName, writes: readonly WriteRecord[], from: number, to: number, oldPort: number, newPort: number): TimelineSeries {
  const n = Math.max(1, Math.ceil((to - from) / BUCKET_MILLIS));
  const s: TimelineSeries = {
    client,
    acksOld: new Array<number>(n).fill(0),
    acksNew: new Array<number>(n).fill(0),
    acksOther: new Array<number>(n).fill(0),
    errors: new Array<number>(n).fill(0),
    maxLatencyMs: new Array<number>(n).fill(0),
  };
  for (const w of writes) {
    if (w.endedAt < from || w.endedAt >= to) continue;
    const b = Math.floor((w.endedAt - from) / BUCKET_MILLIS);
    if (w.error) s.errors[b]!++;
    else if (w.port === newPort) s.acksNew[b]!++;
    else if (w.port === oldPort) s.acksOld[b]!++;
    else s.acksOther[b]!++;
    s.maxLatencyMs[b] = Math.max(s.maxLatencyMs[b]!, w.endedAt - w.startedAt);
  }
  return s;
}

export { CLIENT_NAMES };
