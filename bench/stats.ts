/**
 * Small statistics helpers for the benchmarks: percentiles, medians, rounding, and a
 * bounded load driver that runs N concurrent loops of one async operation.
 * @module
 */
import { performance } from 'node:perf_hooks';

/**
 * The `p`-th percentile (0–100) of `values` by nearest rank; NaN when empty.
 * Sorts a copy.
 */
export function percentile(values: ArrayLike<number>, p: number): number {
  const n = values.length;
  if (n === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1));
  return sorted[rank] ?? Number.NaN;
}

/** Median of `values`; NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Rounds to `digits` decimals (keeps JSON readable). Non-finite values pass through. */
export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** What {@link drive} measured. */
export interface DriveResult {
  /** Operations that succeeded. */
  readonly ops: number;
  /** Operations that failed. */
  readonly errors: number;
  /** Wall time from the first start to the last completion, ms. */
  readonly elapsedMillis: number;
  /** Successful operations per second. */
  readonly opsPerSec: number;
  /** Latency of every successful operation, ms. */
  readonly latencies: Float64Array;
  /** The first error seen, if any (message only). */
  readonly firstError: string | undefined;
  /** Process CPU time (user + system) per successful operation, µs (includes whatever else the process did meanwhile). */
  readonly cpuMicrosPerOp: number;
}

/**
 * Runs `concurrency` loops of `op` until `durationMillis` has passed or `maxOps` operations
 * were started, whichever comes first; stops early after `maxErrors` failures. Always
 * bounded in count and time.
 *
 * @param op one operation (e.g. `() => pool.query('SELECT 1')`)
 * @param concurrency number of loops
 * @param durationMillis time budget
 * @param maxOps count budget
 * @param maxErrors failures tolerated before stopping
 */
export async function drive(
  op: () => Promise<unknown>,
  concurrency: number,
  durationMillis: number,
  maxOps = Number.MAX_SAFE_INTEGER,
  maxErrors = 100,
): Promise<DriveResult> {
  let started = 0;
  let ok = 0;
  let errors = 0;
  let firstError: string | undefined;
  let latencies = new Float64Array(4096);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + durationMillis;
  const loop = async (): Promise<void> => {
    while (started < maxOps && errors < maxErrors) {
      const s = performance.now();
      if (s >= end) return;
      started++;
      try {
        await op();
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
        continue;
      }
      const d = performance.now() - s;
      if (ok === latencies.length) {
        const bigger = new Float64Array(latencies.length * 2);
        bigger.set(latencies);
        latencies = bigger;
      }
      latencies[ok++] = d;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const elapsedMillis = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return {
    cpuMicrosPerOp: ok > 0 ? (cpu.user + cpu.system) / ok : Number.NaN,
    ops: ok,
    errors,
    elapsedMillis,
    opsPerSec: elapsedMillis > 0 ? (ok * 1000) / elapsedMillis : 0,
    latencies: latencies.subarray(0, ok),
    firstError,
  };
}

/** Concatenates latency arrays. */
export function concat(parts: readonly Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
