/**
 * Mocha root hooks shared by every suite:
 * - an unhandled rejection or uncaught exception anywhere fails the run;
 * - after all tests, handles (sockets, timers, servers, child processes) that were not
 *   there at the start and are still open after a short grace period fail the run.
 */
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
  console.error('[setup] unhandled rejection:', reason);
};
process.on('unhandledRejection', onUnhandled);

const IGNORED = new Set(['TTYWrap', 'PipeWrap', 'FSReqCallback', 'FSEventWrap', 'SignalWrap', 'ProcessWrap', 'Immediate']);

function countResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) {
    if (IGNORED.has(r)) continue;
    counts.set(r, (counts.get(r) ?? 0) + 1);
  }
  return counts;
}

function leakedSince(baseline: Map<string, number>): string[] {
  const leaked: string[] = [];
  for (const [kind, n] of countResources()) {
    const extra = n - (baseline.get(kind) ?? 0);
    if (extra > 0) leaked.push(`${kind} x${extra}`);
  }
  return leaked;
}

let baseline = new Map<string, number>();

export const mochaHooks = {
  beforeAll(): void {
    baseline = countResources();
  },
  afterEach(this: Mocha.Context): void {
    if (unhandled.length > 0) {
      const reasons = unhandled.splice(0);
      throw new Error(`unhandled rejection during "${this.currentTest?.fullTitle() ?? '?'}": ${String(reasons[0])}`);
    }
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(10_000);
    let leaked = leakedSince(baseline);
    for (let i = 0; i < 40 && leaked.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      leaked = leakedSince(baseline);
    }
    if (unhandled.length > 0) throw new Error(`unhandled rejections: ${unhandled.map(String).join('; ')}`);
    if (leaked.length > 0) throw new Error(`leaked handles after all tests: ${leaked.join(', ')}`);
  },
};
