import {
  FailoverTimeoutError,
  NoPrimaryError,
  NoReplicaError,
  OutcomeUnknownError,
  PoolEndedError,
  asError,
} from '../errors.js';
import type { Outcome } from '../errors.js';
import type { DiscoveredNode } from '../topology/node.js';
import type { Selection } from '../topology/select.js';
import { classify, serverSqlState } from './classify.js';
import type { Phase } from './classify.js';

/**
 * Thrown by an attempt to say in which phase its error happened. Internal: it never
 * reaches the caller.
 */
export class AttemptFailure {
  /**
   * @param error the original error
   * @param phase when it happened
   * @param lost for `query` errors: whether the connection was lost (see {@link classify})
   * @param readOnly the statement is certainly read-only (auto read routing): an unknown
   *   outcome is retried even on the primary, as on a replica — it changed nothing
   */
  constructor(
    readonly error: unknown,
    readonly phase: Phase,
    readonly lost = true,
    readonly readOnly = false,
  ) {}
}

/**
 * Marks the failure of a certainly read-only statement so the retry loop treats it as a read
 * wherever it ran (see {@link AttemptFailure}); rethrows anything else unchanged.
 *
 * @param thrown what the attempt threw
 */
export function asReadOnlyFailure(thrown: unknown): never {
  if (thrown instanceof AttemptFailure) throw new AttemptFailure(thrown.error, thrown.phase, thrown.lost, true);
  throw thrown;
}

/** What the retry loop needs from the pool. */
export interface RetryDeps {
  /** Picks the node for this attempt. */
  select(): Selection;
  /** Stops writes to a node that proved read-only. */
  invalidate(address: string): void;
  /** Asks discovery for a fresh answer. */
  refresh(): void;
  /** Resolves after `ms`, or earlier when the topology changes or the pool ends. */
  waitForChange(ms: number): Promise<void>;
  /** Whether `end()` was called. */
  isEnding(): boolean;
  /** Current time in ms. */
  now(): number;
  /** Upper bound of the wait before attempt `attempt + 1`. */
  backoff(attempt: number): number;
  /** How long, in total, not-executed failures are retried. */
  readonly failoverTimeoutMillis: number;
  /** Whether discovery has ever answered (for the error message when nothing is known). */
  discovered(): boolean;
  /** The last discovery error, if discovery never answered. */
  lastDiscoveryError(): Error | undefined;
  /** Why no node was available, worded as the fix (`noNodeHint`); undefined for the generic wording. */
  noNodeHint?(): string | undefined;
  /** Called before each wait. */
  onRetry(info: { attempt: number; delayMillis: number; node: string | undefined; error: Error; outcome: Outcome }): void;
  /** Called for every failed attempt on the primary path (failover timing). */
  onPrimaryTrouble?(node: DiscoveredNode | undefined): void;
  /**
   * A connection to `node` could not be made for a network reason (refused, timed out,
   * dropped during startup): check at once whether the node is there at all (the dead-peer
   * probe), so that a node that accepts TCP and never answers costs one bounded attempt.
   */
  suspect?(node: DiscoveredNode): void;
}

/**
 * One failover budget shared by several retry loops, so that together they wait out a
 * failover for at most `failoverTimeoutMillis`. A transaction hands the same budget to each
 * of its checkouts and uses it for its own replays: checkouts, replays and the waits between
 * them then stop together, `failoverTimeoutMillis` after the first failure.
 *
 * @example
 * ```ts
 * const budget: FailoverBudget = { since: undefined };
 * const client = await runWithRetry(deps, 'primary', checkout, budget); // sets `since` if it had to wait
 * // … the run failed:
 * budget.since ??= deps.now();
 * const remaining = budget.since + deps.failoverTimeoutMillis - deps.now();
 * ```
 */
export interface FailoverBudget {
  /**
   * When the budget started, in {@link RetryDeps.now} time: the first failure. `undefined`
   * while nothing has failed; a retry loop that meets a failure (or finds no node) sets it to
   * the time its first attempt started.
   */
  since: number | undefined;
}

/**
 * Runs `attempt` on the node `deps.select()` picks, and again on not-executed failures
 * (and, on the replica path, unknown-outcome ones) until it succeeds,
 * `failoverTimeoutMillis` has passed, or the pool ends. Each wait is a jittered backoff that
 * ends early when the topology changes. Errors the server answered with pass through
 * unchanged; a lost connection on the primary path becomes {@link OutcomeUnknownError}.
 *
 * With a `budget`, the time limit is shared: no attempt after the first starts later than
 * `budget.since + failoverTimeoutMillis`, and a failure while `budget.since` is unset sets it
 * to the time the first attempt started. Without one, the limit is counted from that time,
 * for this call alone.
 *
 * @param deps the pool's side
 * @param intent which path: writes (`primary`) or reads (`replica`)
 * @param attempt one try on a node; throws {@link AttemptFailure} to say the phase
 * @param budget a failover budget shared with other loops (see {@link FailoverBudget})
 */
export function runWithRetry<T>(
  deps: RetryDeps,
  intent: 'primary' | 'replica',
  attempt: (node: DiscoveredNode, role: 'primary' | 'replica') => Promise<T>,
  budget?: FailoverBudget,
): Promise<T> {
  // Fast path: the first attempt runs without the loop's bookkeeping (no async frame, no
  // awaits); the loop takes over only when it fails or when no node is known.
  if (deps.isEnding()) return Promise.reject(new PoolEndedError());
  const start = deps.now();
  const { node, role } = deps.select();
  if (node === undefined) return retryLoop(deps, intent, attempt, start, undefined, budget);
  return attempt(node, role).then(undefined, (thrown: unknown) => retryLoop(deps, intent, attempt, start, { node, role, thrown }, budget));
}

/** The first attempt's failure, handed from a fast path to the loop. */
export interface FirstFailure {
  readonly node: DiscoveredNode;
  readonly role: 'primary' | 'replica';
  readonly thrown: unknown;
}

/**
 * The retry loop behind {@link runWithRetry}, for fast paths that make the first attempt
 * themselves (see `runStatementWithRetry`): `first` is that attempt's failure, or undefined
 * when no node was known; `start` is when that attempt started, in `deps.now()` time.
 *
 * @param deps the pool's side
 * @param intent which path
 * @param attempt one try on a node
 * @param start when the first attempt started
 * @param first the first attempt's failure (undefined: it found no node)
 * @param budget a failover budget shared with other loops
 */
export async function retryLoop<T>(
  deps: RetryDeps,
  intent: 'primary' | 'replica',
  attempt: (node: DiscoveredNode, role: 'primary' | 'replica') => Promise<T>,
  start: number,
  first: FirstFailure | undefined,
  budget: FailoverBudget | undefined,
): Promise<T> {
  if (budget !== undefined) budget.since ??= start;
  const deadline = (budget?.since ?? start) + deps.failoverTimeoutMillis;
  let firstError: unknown;
  let lastNode: string | undefined;
  let tries = first === undefined ? 0 : 1; // attempts actually made on a node (n also counts rounds with no node)
  for (let n = 1; ; n++) {
    let node: DiscoveredNode | undefined;
    let role: 'primary' | 'replica';
    let thrown: unknown;
    let failed = false;
    if (n === 1 && first !== undefined) {
      ({ node, role, thrown } = first);
      failed = true;
    } else {
      if (deps.isEnding()) throw new PoolEndedError();
      ({ node, role } = deps.select());
      if (node) {
        tries++;
        try {
          return await attempt(node, role);
        } catch (err) {
          thrown = err;
          failed = true;
        }
      }
    }
    let error: Error;
    let outcome: Outcome = 'not-executed';
    if (failed && node) {
      const judged = judgeFailure(deps, node, role, thrown, tries);
      error = asError(judged.failure.error);
      outcome = judged.outcome;
      firstError ??= judged.failure.error;
      lastNode = node.address;
    } else {
      error = noNodeError(deps, intent, role);
    }
    const remaining = deadline - deps.now();
    if (remaining <= 0) throw timeoutError(deps, intent, firstError, error, lastNode, tries, deps.now() - start);
    const delayMillis = Math.min(deps.backoff(n), remaining);
    deps.onRetry({ attempt: n, delayMillis, node: node?.address, error, outcome });
    await deps.waitForChange(delayMillis);
  }
}

/**
 * Judges a failed attempt on `node`: tells the pool what it means (primary trouble,
 * invalidation, a suspect node, a refresh), throws when it must not be retried (the server's
 * error unchanged, or {@link OutcomeUnknownError}), else returns it with its outcome.
 */
function judgeFailure(
  deps: RetryDeps,
  node: DiscoveredNode,
  role: 'primary' | 'replica',
  thrown: unknown,
  tries: number,
): { readonly failure: AttemptFailure; readonly outcome: Outcome } {
  const failure = thrown instanceof AttemptFailure ? thrown : new AttemptFailure(thrown, 'query');
  const c = classify(failure.error, failure.phase, failure.readOnly ? 'replica' : role, failure.lost);
  // Failover timing counts only signs of a node going away, not conflicts (40001, 40P01).
  if (role === 'primary' && (c.refreshTopology || c.invalidatesNode || c.outcome === 'unknown')) deps.onPrimaryTrouble?.(node);
  if (c.invalidatesNode && role === 'primary') deps.invalidate(node.address);
  if (failure.phase === 'acquire' && c.refreshTopology && serverSqlState(failure.error) === undefined) deps.suspect?.(node);
  if (c.refreshTopology) deps.refresh();
  if (!c.retryable) {
    if (c.outcome === 'unknown') {
      throw new OutcomeUnknownError(
        `connection to primary ${node.address} was lost after the statement was sent; it may or may not have run`,
        { cause: failure.error, node: node.address, attempts: tries },
      );
    }
    throw failure.error;
  }
  return { failure, outcome: c.outcome };
}

/** A round that found no node to try: the error its `retry` event carries. */
function noNodeError(deps: RetryDeps, intent: 'primary' | 'replica', role: 'primary' | 'replica'): Error {
  if (intent === 'primary') deps.onPrimaryTrouble?.(undefined);
  return intent === 'primary' || role === 'primary'
    ? new NoPrimaryError('no writable primary is known right now')
    : new NoReplicaError('no replica is passing its health checks');
}

function timeoutError(
  deps: RetryDeps,
  intent: 'primary' | 'replica',
  firstError: unknown,
  lastError: Error,
  node: string | undefined,
  attempts: number,
  elapsed: number,
): Error {
  if (firstError === undefined) {
    // No node was ever available to try.
    const cause = deps.discovered() ? undefined : deps.lastDiscoveryError();
    const hint = deps.noNodeHint?.();
    const why = hint !== undefined ? `: ${hint}` : deps.discovered() ? '' : ' (discovery has not answered yet)';
    const message = `${lastError.message} after ${elapsed} ms${why}`;
    const options = { cause, attempts };
    return intent === 'primary' || lastError instanceof NoPrimaryError
      ? new NoPrimaryError(message, options)
      : new NoReplicaError(message, options);
  }
  return new FailoverTimeoutError(
    `gave up after ${attempts} attempt${attempts === 1 ? '' : 's'} in ${elapsed} ms on the ${intent} path; the statement did not run (first error: ${asError(firstError).message})`,
    { cause: firstError, node, attempts },
  );
}
