/**
 * Benchmark modes and their sizes: `smoke` (CI: tiny, well under a minute), `quick` (the
 * default: a few minutes, enough rounds for a stable median) and `full` (long soak,
 * Patroni-agent crash included).
 * @module
 */

import type { ConsulFuzzConfig } from './consul-fuzz.js';

/** How much the benchmarks do. */
export type BenchMode = 'smoke' | 'quick' | 'full';

/** A failover the failover benchmark provokes. */
export type FailoverKind = 'switchover' | 'kill-postgres' | 'kill-patroni';

/** Sizes of one run. */
export interface BenchConfig {
  /** The mode these sizes belong to. */
  readonly mode: BenchMode;
  /** Overhead benchmark (`bench/overhead.ts`). */
  readonly overhead: {
    /**
     * Interleaved rounds per case (A B, then B A, …). Many short rounds rather than a few
     * long ones: bursts of load from other processes then hit both clients alike.
     */
    readonly rounds: number;
    /** Time budget of one client in one round, ms. */
    readonly roundMillis: number;
    /** Count budget of one client in one round. */
    readonly maxOpsPerRound: number;
    /** Warm-up per client before the rounds of a case, ms. */
    readonly warmupMillis: number;
    /** Concurrency levels (loops issuing statements back to back). */
    readonly concurrencies: readonly number[];
  };
  /** Failover benchmark (`bench/failover.ts`). */
  readonly failover: {
    /** Failovers provoked, in order, on one lab. */
    readonly kinds: readonly FailoverKind[];
    /** Steady-state window before each failover (Consul load baseline), ms. */
    readonly steadyMillis: number;
    /** How long after the failover the clients get to write to the new leader, ms. */
    readonly recoveryTimeoutMillis: number;
    /** Extra time the workload keeps running once every client recovered (or timed out), ms. */
    readonly settleMillis: number;
    /** Pause between two writes of one client, ms. */
    readonly intervalMillis: number;
  };
  /** Soak (`bench/soak.ts`, run in a child process with `--expose-gc`). */
  readonly soak: {
    /** Statements to run in total. */
    readonly queries: number;
    /** Switchovers to make while they run. */
    readonly failovers: number;
    /** Concurrent loops. */
    readonly concurrency: number;
    /** Hard time limit of the soak, ms (it stops by itself, reporting what it did). */
    readonly timeLimitMillis: number;
  };
  /** Consul fuzz (`bench/consul-fuzz.ts`): Pools and phase lengths. */
  readonly consulFuzz: ConsulFuzzConfig;
}

const CONFIGS: Readonly<Record<BenchMode, BenchConfig>> = {
  smoke: {
    mode: 'smoke',
    overhead: { rounds: 2, roundMillis: 60, maxOpsPerRound: 2_000, warmupMillis: 30, concurrencies: [1, 8, 32] },
    failover: { kinds: ['switchover'], steadyMillis: 500, recoveryTimeoutMillis: 4_000, settleMillis: 200, intervalMillis: 5 },
    soak: { queries: 1_500, failovers: 1, concurrency: 4, timeLimitMillis: 20_000 },
    consulFuzz: { pools: 3, seed: 15, phases: { fuzz: 1_500, errors: 3_000, churn: 1_500, hang: 500 } },
  },
  quick: {
    mode: 'quick',
    overhead: { rounds: 15, roundMillis: 200, maxOpsPerRound: 100_000, warmupMillis: 150, concurrencies: [1, 8, 32] },
    failover: { kinds: ['switchover', 'kill-postgres'], steadyMillis: 3_000, recoveryTimeoutMillis: 20_000, settleMillis: 1_000, intervalMillis: 5 },
    soak: { queries: 40_000, failovers: 3, concurrency: 8, timeLimitMillis: 45_000 },
    consulFuzz: { pools: 6, patroniHealthPool: true, seed: 15, phases: { fuzz: 28_000, errors: 20_000, churn: 10_000, hang: 5_000 } },
  },
  full: {
    mode: 'full',
    overhead: { rounds: 41, roundMillis: 300, maxOpsPerRound: 1_000_000, warmupMillis: 300, concurrencies: [1, 8, 32] },
    failover: { kinds: ['switchover', 'kill-postgres', 'kill-patroni'], steadyMillis: 10_000, recoveryTimeoutMillis: 30_000, settleMillis: 2_000, intervalMillis: 5 },
    soak: { queries: 1_000_000, failovers: 50, concurrency: 16, timeLimitMillis: 900_000 },
    consulFuzz: { pools: 6, patroniHealthPool: true, seed: 15, phases: { fuzz: 120_000, errors: 60_000, churn: 30_000, hang: 10_000 } },
  },
};

/** The sizes of a mode. */
export function configFor(mode: BenchMode): BenchConfig {
  return CONFIGS[mode];
}

/**
 * Parses the command line: `--smoke`, `--quick` (default) or `--full`; `--only=a,b` runs a
 * subset of `overhead`, `failover`, `soak`, `consul-fuzz`, `net-faults` (root only); `--out=DIR` writes results elsewhere;
 * `--failovers=a,b` provokes these failovers (`switchover`, `kill-postgres`, `kill-patroni`)
 * instead of the mode's.
 */
export function parseArgs(argv: readonly string[]): { mode: BenchMode; only: Set<string>; outDir: string | undefined; failovers?: FailoverKind[] } {
  let mode: BenchMode = 'quick';
  const only = new Set<string>();
  let outDir: string | undefined;
  let failovers: FailoverKind[] | undefined;
  for (const a of argv) {
    if (a === '--smoke' || a === '--quick' || a === '--full') mode = a.slice(2) as BenchMode;
    else if (a.startsWith('--failovers=')) failovers = failoverKinds(a.slice(12));
    else if (a.startsWith('--only=')) for (const p of a.slice(7).split(',')) only.add(p.trim());
    else if (a.startsWith('--out=')) outDir = a.slice(6);
    else throw new Error(`unknown argument ${a} (use --smoke | --quick | --full, --only=overhead,failover,soak,consul-fuzz,net-faults, --out=DIR)`);
  }
  for (const p of only) if (!['overhead', 'failover', 'soak', 'consul-fuzz', 'net-faults'].includes(p)) throw new Error(`--only: unknown part ${p}`);
  return failovers === undefined ? { mode, only, outDir } : { mode, only, outDir, failovers };
}

const FAILOVER_KINDS: readonly FailoverKind[] = ['switchover', 'kill-postgres', 'kill-patroni'];

/** `--failovers=switchover,kill-patroni`: the failovers to provoke instead of the mode's. */
function failoverKinds(list: string): FailoverKind[] {
  const kinds = list.split(',').map((k) => k.trim());
  for (const k of kinds) if (!FAILOVER_KINDS.includes(k as FailoverKind)) throw new Error(`--failovers: unknown failover ${k} (use ${FAILOVER_KINDS.join(', ')})`);
  return kinds as FailoverKind[];
}

/**
 * The sizes of a mode, with the failovers replaced when `failovers` is given.
 *
 * @param mode the mode
 * @param failovers failovers to provoke instead of the mode's
 * @returns the sizes
 */
export function configWith(mode: BenchMode, failovers: readonly FailoverKind[] | undefined): BenchConfig {
  const base = configFor(mode);
  return failovers === undefined ? base : { ...base, failover: { ...base.failover, kinds: failovers } };
}
