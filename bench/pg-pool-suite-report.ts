/**
 * Counting and reporting for bench/pg-pool-suite.ts: mocha's JSON report of each run turned
 * into per-test outcomes, the comparison of pg-consul with pg-pool, and the Markdown report.
 * @module
 */
import { basename } from 'node:path';

/** One test in mocha's JSON reporter output. */
export interface MochaTest {
  readonly title: string;
  readonly fullTitle: string;
  readonly file?: string;
  readonly err?: { readonly message?: string; readonly stack?: string };
}

/** mocha's JSON reporter output (the parts used). */
export interface MochaJson {
  readonly stats: { readonly tests: number; readonly passes: number; readonly pending: number; readonly failures: number };
  readonly tests: readonly MochaTest[];
  readonly passes: readonly MochaTest[];
  readonly failures: readonly MochaTest[];
  readonly pending: readonly MochaTest[];
}

/** An unhandled rejection or process warning recorded by bench/pg-pool-suite-hooks.cjs. */
export interface SuiteEvent {
  readonly kind: 'unhandledRejection' | 'warning';
  readonly test: string;
  readonly text: string;
}

/** One mocha run of the suite. */
export interface SuiteRun {
  readonly flavour: 'pg-pool' | 'pg-consul';
  readonly json: MochaJson | undefined;
  readonly events: readonly SuiteEvent[];
  /** mocha's exit code, or the signal that ended it. */
  readonly exit: string;
  readonly stderr: string;
}

type Outcome = { readonly state: 'passed' | 'pending' } | { readonly state: 'failed'; readonly error: string };

/** One run, counted. */
export interface RunCounts {
  readonly flavour: SuiteRun['flavour'];
  readonly passing: number;
  readonly failing: number;
  readonly pending: number;
  /** Failures of hooks (`"before all" hook …`), not tests. */
  readonly hookFailures: readonly string[];
  readonly unhandledRejections: readonly SuiteEvent[];
  readonly warnings: readonly SuiteEvent[];
  readonly outcomes: ReadonlyMap<string, Outcome>;
  readonly exit: string;
  readonly stderrTail: string;
}

/** The comparison of the two runs. */
export interface SuiteSummary {
  readonly runs: readonly RunCounts[];
  /** Tests passing on pg-pool: how many also pass on pg-consul. */
  readonly baselinePassing: number;
  readonly alsoPassingOnPgConsul: number;
  /** Tests passing on pg-pool and not on pg-consul, with pg-consul's error. */
  readonly divergences: ReadonlyArray<{ readonly test: string; readonly error: string }>;
}

const keyOf = (t: MochaTest): string => `${t.file ? basename(t.file) : '?'} › ${t.fullTitle}`;
const isHook = (t: MochaTest): boolean => /"(before|after)( all| each)?" hook/.test(t.title);
/** The error's first line, and where in the suite's test files it was raised (a late callback of another test shows there). */
function firstLine(err: MochaTest['err']): string {
  const text = (err?.message ?? err?.stack ?? 'failed').split('\n')[0]!.slice(0, 300);
  const at = /\/test\/([\w-]+\.js:\d+)/.exec(err?.stack ?? '')?.[1];
  return at && !text.includes(at) ? `${text} (at ${at})` : text;
}

function count(run: SuiteRun): RunCounts {
  const outcomes = new Map<string, Outcome>();
  const hookFailures: string[] = [];
  for (const t of run.json?.passes ?? []) outcomes.set(keyOf(t), { state: 'passed' });
  for (const t of run.json?.pending ?? []) outcomes.set(keyOf(t), { state: 'pending' });
  // A test that passed and then failed (an error after done()) counts as failed.
  for (const t of run.json?.failures ?? []) {
    if (isHook(t)) hookFailures.push(`${keyOf(t)}: ${firstLine(t.err)}`);
    else outcomes.set(keyOf(t), { state: 'failed', error: firstLine(t.err) });
  }
  const states = [...outcomes.values()].map((o) => o.state);
  return {
    flavour: run.flavour,
    passing: states.filter((s) => s === 'passed').length,
    failing: states.filter((s) => s === 'failed').length,
    pending: states.filter((s) => s === 'pending').length,
    hookFailures,
    unhandledRejections: run.events.filter((e) => e.kind === 'unhandledRejection'),
    warnings: run.events.filter((e) => e.kind === 'warning'),
    outcomes,
    exit: run.exit,
    stderrTail: run.json ? '' : run.stderr.slice(-2000),
  };
}

/**
 * Counts each run and compares pg-consul's with pg-pool's.
 *
 * @param runs the pg-pool run and the pg-consul run
 * @returns the counts and the tests passing on pg-pool only
 */
export function summarize(runs: readonly SuiteRun[]): SuiteSummary {
  const counted = runs.map(count);
  const base = counted.find((r) => r.flavour === 'pg-pool');
  const ours = counted.find((r) => r.flavour === 'pg-consul');
  const divergences: Array<{ test: string; error: string }> = [];
  let baselinePassing = 0;
  let also = 0;
  for (const [test, outcome] of base?.outcomes ?? []) {
    if (outcome.state !== 'passed') continue;
    baselinePassing++;
    const mine = ours?.outcomes.get(test);
    if (mine?.state === 'passed') also++;
    else divergences.push({ test, error: mine === undefined ? 'did not run' : mine.state === 'failed' ? mine.error : 'pending' });
  }
  return { runs: counted, baselinePassing, alsoPassingOnPgConsul: also, divergences };
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** How the run was set up, for the report's header. */
export interface ReportContext {
  readonly source: string;
  readonly commit: string;
  /** pg-consul's commit (`+ changes` when the work tree differs from it). */
  readonly pgConsul: string;
  readonly hostPort: string;
  readonly failoverTimeoutMillis: string;
  /** How mocha was run: one process per test file, or one for all. */
  readonly processes: string;
  readonly date: string;
}

/**
 * The Markdown report: the counts table, then each divergence with its error.
 *
 * @param summary what {@link summarize} returned
 * @param context how the run was set up
 * @returns the report text
 */
export function formatReport(summary: SuiteSummary, context: ReportContext): string {
  const lines = [
    `# pg-pool's test suite on pg-pool and on pg-consul (${context.date})`,
    '',
    `node-postgres ${context.commit} (${context.source}), \`packages/pg-pool/test/*.js\`, ${context.processes}; one PostgreSQL node (PgCluster, no replicas) and the Consul double.`,
    `pg-consul ${context.pgConsul}: \`discovery: 'consul-health'\`, \`failoverTimeoutMillis\` ${context.failoverTimeoutMillis}, host/port passed by a test: \`${context.hostPort}\`.`,
    '',
    '| run | passing | failing | pending | unhandled rejections | warnings | hook failures | mocha exit |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...summary.runs.map((r) => `| ${r.flavour} | ${r.passing} | ${r.failing} | ${r.pending} | ${r.unhandledRejections.length} | ${r.warnings.length} | ${r.hookFailures.length} | ${r.exit} |`),
    '',
    `**${summary.alsoPassingOnPgConsul} of the ${summary.baselinePassing} tests passing on pg-pool pass on pg-consul.**`,
    '',
    '## Passing on pg-pool, not on pg-consul',
    '',
    ...(summary.divergences.length === 0 ? ['None.'] : summary.divergences.map((d) => `- ${cell(d.test)}: \`${cell(d.error)}\``)),
  ];
  for (const r of summary.runs) {
    const failedHere = [...r.outcomes].filter(([, o]) => o.state === 'failed');
    const extra = [
      ...failedHere.map(([t, o]) => `- failing: ${cell(t)}: \`${cell(o.state === 'failed' ? o.error : '')}\``),
      ...r.hookFailures.map((h) => `- hook failure: ${cell(h)}`),
      ...r.unhandledRejections.map((e) => `- unhandled rejection during ${cell(e.test)}: \`${cell(e.text)}\``),
      ...r.warnings.map((e) => `- warning during ${cell(e.test)}: \`${cell(e.text)}\``),
      ...(r.stderrTail ? ['- no JSON report; stderr ends with:', '', '```', r.stderrTail, '```'] : []),
    ];
    lines.push('', `## ${r.flavour}: failures and events`, '', ...(extra.length ? extra : ['None.']));
  }
  return `${lines.join('\n')}\n`;
}
