/**
 * The benchmark results as one JSON document, and a markdown summary of it.
 * @module
 */
import type { BenchMode } from './config.js';
import type { ConsulFuzzResult } from './consul-fuzz.js';
import type { FailoverResult } from './failover.js';
import type { OverheadResult } from './overhead.js';
import type { SoakResult } from './soak.js';

/** The whole run, as written to `bench/results/latest.json`. */
export interface BenchResults {
  /** Format version of this document. */
  readonly schema: 1;
  /** `smoke`, `quick` or `full`. */
  readonly mode: BenchMode;
  /** When the run started (ISO 8601). */
  readonly startedAt: string;
  /** How long it took, ms. */
  readonly durationMillis: number;
  /** Where it ran. */
  readonly environment: {
    readonly node: string;
    readonly platform: string;
    readonly cpus: number;
    readonly cpuModel: string;
    readonly loadAverageAtStart: readonly number[];
    readonly gitCommit: string | null;
  };
  /** Overhead benchmark (null when skipped). */
  readonly overhead: OverheadResult | null;
  /** Failover benchmark (null when skipped). */
  readonly failover: FailoverResult | null;
  /** Soak (null when skipped). */
  readonly soak: SoakResult | null;
  /** Consul fuzz (null when skipped; absent in results written before it existed). */
  readonly consulFuzz?: ConsulFuzzResult | null;
}

function ms(x: number | null | undefined): string {
  if (x === null || x === undefined) return '—';
  return `${x >= 0 ? '' : '−'}${Math.abs(Math.round(x))}`;
}

function num(x: number, digits = 0): string {
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** min / q1 / median / q3 / max of per-round values. */
function spread(values: readonly number[]): string {
  const s = [...values].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.round(p * (s.length - 1)))] ?? Number.NaN;
  return [q(0), q(0.25), q(0.5), q(0.75), q(1)].map((x) => x.toFixed(2)).join(' / ');
}

function kinds(r: Readonly<Record<string, number>>): string {
  const e = Object.entries(r).sort((a, b) => b[1] - a[1]);
  return e.length === 0 ? '0' : e.map(([k, v]) => `${v}× ${k}`).join(', ');
}

/** Renders the markdown summary (pure). */
export function markdownSummary(r: BenchResults): string {
  const out: string[] = [];
  out.push(`# pg-consul benchmarks (${r.mode})`);
  out.push('');
  out.push(
    `Run ${r.startedAt}, ${(r.durationMillis / 1000).toFixed(0)} s; Node ${r.environment.node}, ${r.environment.cpus} × ${r.environment.cpuModel}, load average at start ${r.environment.loadAverageAtStart.map((x) => x.toFixed(2)).join(' / ')}${r.environment.gitCommit ? `, commit ${r.environment.gitCommit.slice(0, 12)}` : ''}.`,
  );
  out.push('The machine is shared: compare only numbers from the same run (rounds are interleaved for that reason).');
  out.push('');
  if (r.overhead) {
    const o = r.overhead;
    out.push('## Overhead: pg-consul vs plain pg.Pool');
    out.push('');
    out.push(
      `PostgreSQL ${o.serverVersion} on loopback, pools of ${o.poolMax}${o.cpuPinning === undefined ? '' : `, ${o.cpuPinning}`}; ${o.rounds} rounds of ${o.roundMillis} ms per case. Ratio = median of per-round throughput ratios pg-consul / pg.Pool (target ≥ 0.99). "+µs/stmt" = 10⁶/B − 10⁶/A at the median throughputs (extra wall time per statement of the aggregate throughput). The A/A rows (pg.Pool against an identical pg.Pool) show the noise floor of the ratio.`,
    );
    out.push('');
    const tables: Array<[OverheadResult['cases'][number]['pairing'], string]> = [
      ['alternating', 'Alternating: A then B within a round (A B, B A, …). "CPU µs/stmt" = the process\'s CPU time per statement, median over rounds.'],
      ['simultaneous', 'Simultaneous: A and B run at the same time on one event loop for the whole round (each at the given concurrency), so load from elsewhere hits both alike; no per-client CPU time.'],
    ];
    for (const [pairing, caption] of tables) {
      const cases = o.cases.filter((c) => (c.pairing ?? 'alternating') === pairing);
      if (cases.length === 0) continue;
      out.push(`### ${caption}`);
      out.push('');
      out.push('| statement | conc. | path | pg.Pool stmt/s | pg-consul stmt/s | ratio | per-round ratios (min / quartiles / max) | +µs/stmt | CPU µs/stmt (A / B) | p50 ms (A / B) | p99 ms (A / B) | p99 ratio |');
      out.push('|---|---:|---|---:|---:|---:|---|---:|---|---|---|---:|');
      for (const c of cases) {
        const extraMicros = 1e6 / c.candidate.opsPerSec - 1e6 / c.baseline.opsPerSec;
        const cpu = Number.isNaN(c.baseline.cpuMicrosPerOp) ? '—' : `${c.baseline.cpuMicrosPerOp.toFixed(2)} / ${c.candidate.cpuMicrosPerOp.toFixed(2)}`;
        out.push(
          `| ${c.statement} | ${c.concurrency} | ${c.path === 'calibration' ? 'A/A: pg.Pool vs pg.Pool' : c.path} | ${num(c.baseline.opsPerSec)} | ${num(c.candidate.opsPerSec)} | **${c.ratio.toFixed(3)}** | ${spread(c.ratioRounds)} | ${extraMicros.toFixed(1)} | ${cpu} | ${c.baseline.p50Ms.toFixed(3)} / ${c.candidate.p50Ms.toFixed(3)} | ${c.baseline.p99Ms.toFixed(3)} / ${c.candidate.p99Ms.toFixed(3)} | ${(c.candidate.p99Ms / c.baseline.p99Ms).toFixed(3)} |`,
        );
      }
      out.push('');
    }
  }
  if (r.failover) {
    const f = r.failover;
    out.push('## Failover: four clients through the same failovers');
    out.push('');
    out.push(
      `Lab: ${f.labMode === 'patroni' ? 'real Patroni 3.0.2' : "fallback (the lab plays Patroni's role)"} × 3 on the Consul double (ttl ${f.lab.ttl} s, loop_wait ${f.lab.loopWait} s, check interval ${f.lab.checkInterval}, primary_start_timeout 0). Each client: 1 writer (INSERT every ~${f.writeIntervalMillis} ms) + 1 reader, all four at once. Times in ms; "key" = leader key moved in Consul KV, "listed" = Consul's passing health view lists the new leader as primary, "reg." = it is the sole passing primary (the lab's registeredAt). Negative = before that moment.`,
    );
    out.push('');
    for (const s of f.scenarios) {
      out.push(`### ${s.kind}: ${s.from} → ${s.to}`);
      out.push('');
      out.push(`Leader key moved +${s.leaderKeyMovedMs} ms after the failover was provoked; Consul listed the new leader +${ms(s.consulListedMs)} ms; sole passing primary +${ms(s.registeredMs)} ms.`);
      out.push('');
      out.push('| client | 1st write on new leader: after key / listed / reg. | longest write gap | last error | writes ok / failed | errors by kind | acked on old leader after key move | acked writes missing on new leader |');
      out.push('|---|---|---:|---:|---|---|---:|---:|');
      for (const c of s.clients) {
        const fw = c.firstNewLeaderWrite;
        const orphan = c.orphanOnlyRows === undefined ? '' : ` (rows only on the orphan: ${c.orphanOnlyRows ?? '?'})`;
        out.push(
          `| ${c.client} | ${fw.fromLeaderKey === null ? 'never' : `${ms(fw.fromLeaderKey)} / ${ms(fw.fromConsulListed)} / ${ms(fw.fromRegistration)}`} | ${ms(c.longestWriteGapMs)} | ${c.lastWriteErrorMs === null ? '—' : `+${ms(c.lastWriteErrorMs)}`} | ${c.writesOk} / ${c.writesFailed} | ${kinds(c.errorsByKind)} | ${c.ackedOnOldLeaderAfterMove} | ${c.lostAckedWrites ?? '?'}${orphan} |`,
        );
      }
      const pc = s.clients.find((c) => c.pgConsul)?.pgConsul;
      if (pc) {
        out.push('');
        out.push(
          `pg-consul's own part: Consul listed the new leader → \`topology\` event ${ms(pc.consulListedToTopologyMs)} ms → first write on it ${ms(pc.topologyToFirstWriteMs)} ms (total ${ms(pc.consulListedToFirstWriteMs)} ms); \`failover\` event durationMillis ${ms(pc.failoverEventDurationMs)}; retries: ${pc.retriesPrimary} primary, ${pc.retriesReplica} replica.`,
        );
      }
      out.push('');
    }
    out.push('### Control-plane load (requests per second)');
    out.push('');
    out.push('| failover | pg-consul → Consul: steady | during failover (count, /s) | HAProxy → Patroni REST: steady (computed) | during failover (count, /s) | postgres.js, pinned |');
    out.push('|---|---:|---|---:|---|---|');
    for (const s of f.scenarios) {
      const pc = s.clients.find((c) => c.client === 'pg-consul')?.consul;
      const h = s.haproxyChecks;
      out.push(
        `| ${s.kind} | ${pc ? pc.steadyPerSec.toFixed(2) : '—'} | ${pc ? `${pc.duringFailover}, ${pc.duringFailoverPerSec.toFixed(2)}` : '—'} | ${h ? `${h.steadyPerSec.toFixed(2)} (${h.computedPerSec?.toFixed(2) ?? '?'})` : 'not run'} | ${h ? `${h.duringFailover}, ${h.duringFailoverPerSec.toFixed(2)}` : '—'} | 0 (no control plane) |`,
      );
    }
    out.push('');
    out.push('Chart: `failover-timeline.svg` (acks per 100 ms per client; red below the line = failed writes).');
    out.push('');
  }
  if (r.soak) {
    const s = r.soak;
    out.push('## Soak');
    out.push('');
    out.push(
      `${num(s.queries)} statements (${num(s.queriesOk)} ok, ${num(s.queriesFailed)} failed) and ${s.failovers} switchovers in ${(s.durationMillis / 1000).toFixed(1)} s at concurrency ${s.concurrency}${s.reduced ? ` — reduced soak (${r.mode} mode; --full runs ≥ 1M statements and ≥ 50 failovers)` : ''}${s.timedOut ? ' — stopped by its time limit' : ''}.`,
    );
    out.push('');
    out.push('| | heap used after GC (MB) | active resources |');
    out.push('|---|---:|---|');
    for (const p of s.samples) out.push(`| ${p.label} | ${(p.heapUsedAfterGc / 1048576).toFixed(2)} | ${Object.entries(p.resources).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'} |`);
    out.push('');
    out.push(`Failed statements by kind: ${kinds(s.errorsByKind)}. Process exited by itself after \`end()\`: **${s.exitedByItself ? 'yes' : 'no'}**${s.exitMillisAfterEnd === null ? '' : ` (${s.exitMillisAfterEnd} ms after the report)`}.`);
    out.push('');
  }
  if (r.consulFuzz) {
    const c = r.consulFuzz;
    out.push('## Consul fuzz');
    out.push('');
    out.push(`${c.config.pools} Pools${c.config.patroniHealthPool === true ? ' (+ one `patroni+health` Pool listed last: two loops, one budget, no queries)' : ''}, each on its own port of a seeded mutating proxy (seed ${c.config.seed}) in front of the Consul double; real PostgreSQL behind the good answers. Requests per Pool as the proxy saw them. Goals: ≤ 1 request/s per Pool after 5 s of errors, ≤ 10/s under valid index churn (docs/consul-requests.md).`);
    out.push('');
    out.push('| phase | s | requests/s per Pool | after 5 s | most in any 1 s | queries ok / rejected | longest query (ms) | heap after GC (MB) |');
    out.push('|---|---:|---|---|---|---|---:|---:|');
    for (const p of c.phases) {
      out.push(
        `| ${p.phase} | ${(p.millis / 1000).toFixed(1)} | ${p.perPool.map((x) => x.perSecond.toFixed(2)).join(' ')} | ${p.perPool.map((x) => (x.perSecondAfter5s === null ? '—' : x.perSecondAfter5s.toFixed(2))).join(' ')} | ${p.perPool.map((x) => x.max1s).join(' ')} | ${num(p.settled)} / ${num(p.rejected)} | ${p.longestQueryMillis} | ${p.heapMb ?? '—'} |`,
      );
    }
    out.push('');
    out.push(`end() of all Pools: ${c.endMillis} ms; Consul connections open afterwards: ${c.openConnectionsAfterEnd}.`);
    out.push('');
  }
  return `${out.join('\n')}\n`;
}
