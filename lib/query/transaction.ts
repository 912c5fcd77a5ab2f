/**
 * Transactions that survive a failover: `BEGIN … COMMIT` around a callback, replayed whole on
 * a fresh connection to the (new) primary when the server lost or rejected the transaction
 * before it could commit, and never replayed once `COMMIT` may have reached the server.
 *
 * The decisions (replay, rethrow, outcome unknown) are pure functions of the failure's stage
 * and error ({@link decideTransactionFailure}); {@link runTransaction} is the short loop that
 * applies them.
 *
 * @example
 * ```ts
 * const id = await pool.transaction(async (tx) => {
 *   const { id } = await tx.one<{ id: number }>('INSERT INTO orders(customer) VALUES ($1) RETURNING id', [42]);
 *   await tx.query('UPDATE customers SET orders = orders + 1 WHERE id = $1', [42]);
 *   return id;
 * }, { isolationLevel: 'serializable' });
 * ```
 * @module
 */
import type pg from 'pg';
import { PoolEndedError, TransactionOutcomeUnknownError, asError } from '../errors.js';
import type { FailoverBudget, RetryDeps } from '../retry/run-with-retry.js';
import { formatAddress } from '../topology/node.js';
import { AttemptState, closeTransactionClient, openTransactionClient } from './transaction-client.js';
import type { TransactionClient } from './transaction-client.js';
import { decideTransactionFailure, giveUpError } from './transaction-decision.js';
import type { TransactionDecision, TransactionStage } from './transaction-decision.js';
import { beginStatement, resolveTransactionOptions } from './transaction-options.js';
import type { TransactionOptions } from './transaction-options.js';

export { TransactionClient } from './transaction-client.js';
export { decideTransactionFailure, giveUpError } from './transaction-decision.js';
export type { TransactionDecision, TransactionFailure, TransactionStage } from './transaction-decision.js';
export { DEFAULT_MAX_ATTEMPTS, beginStatement, resolveTransactionOptions } from './transaction-options.js';
export type { IsolationLevel, ResolvedTransactionOptions, TransactionOptions } from './transaction-options.js';

/** What {@link runTransaction} needs from the pool. */
export interface TransactionEnv {
  /** The pool's retry dependencies: clock, backoff, waits, `retry` events, invalidation. */
  readonly deps: RetryDeps;
  /** The path: `primary`, or `replica` for read-only transactions. */
  readonly role: 'primary' | 'replica';
  /**
   * Checks out a client on the path, waiting out a failover by itself within `budget`: no
   * checkout attempt after the first may start later than `budget.since +
   * deps.failoverTimeoutMillis`, and a checkout that has to wait while `budget.since` is
   * unset sets it (to when the checkout started). `pool.acquire(budget)` does this.
   *
   * @param budget the transaction's failover budget, shared by all its checkouts and replays
   */
  acquire(budget: FailoverBudget): Promise<pg.PoolClient>;
}

type AttemptResult<T> =
  | { readonly kind: 'committed'; readonly value: T }
  | { readonly kind: 'failed'; readonly decision: TransactionDecision; readonly thrown: unknown; readonly error: unknown; readonly node: string | undefined };

function addressOf(client: pg.PoolClient): string | undefined {
  const { host, port } = client as unknown as { host?: unknown; port?: unknown };
  return typeof host === 'string' && typeof port === 'number' ? formatAddress(host, port) : undefined;
}

/** Returns the client to the pool, or destroys it. */
function release(client: pg.PoolClient, destroy: boolean, reason: unknown): void {
  client.release(destroy ? asError(reason ?? new Error('pg-consul: transaction connection broke')) : undefined);
}

/** What the steps of one attempt share. */
interface Attempt {
  readonly client: pg.PoolClient;
  readonly state: AttemptState;
  readonly node: string | undefined;
  readonly readOnly: boolean;
  readonly role: 'primary' | 'replica';
  /** Stops watching the connection and returns it to the pool, or destroys it. */
  readonly finish: (destroy: boolean, reason: unknown) => void;
}

/**
 * Starts an attempt on a checked-out client. A checked-out pg client has no `error`
 * listener: without one, a server going away while the callback awaits something else would
 * crash the process, so the attempt listens until it finishes.
 */
function startAttempt(client: pg.PoolClient, attempt: number, readOnly: boolean, role: 'primary' | 'replica'): Attempt {
  const state = new AttemptState(client, attempt);
  const onError = (err: unknown): void => state.markLost(err);
  const onEnd = (): void => state.markLost();
  client.on('error', onError);
  client.on('end', onEnd);
  const finish = (destroy: boolean, reason: unknown): void => {
    client.removeListener('error', onError);
    client.removeListener('end', onEnd);
    release(client, destroy || state.lost, reason ?? state.connectionError);
  };
  return { client, state, node: addressOf(client), readOnly, role, finish };
}

/** Decides on a failure at `stage`, rolls back when the connection is still usable, finishes. */
async function failAttempt<T>(a: Attempt, stage: TransactionStage, thrown: unknown): Promise<AttemptResult<T>> {
  const { state } = a;
  const dbError = stage === 'body' ? state.statementErrorIn(thrown) : thrown;
  const fromDatabase = dbError !== undefined || stage !== 'body';
  const error = dbError ?? (state.lost ? (state.connectionError ?? thrown) : thrown);
  const d = decideTransactionFailure({ stage, error, fromDatabase, connectionLost: state.lost, readOnly: a.readOnly, role: a.role });
  let destroy = d.destroyClient;
  if (stage !== 'commit' && !destroy && !state.lost) {
    try {
      await a.client.query('ROLLBACK');
    } catch {
      destroy = true;
    }
  }
  a.finish(destroy, error);
  return { kind: 'failed', decision: d, thrown, error, node: a.node };
}

/** After the callback resolved: COMMIT, unless the connection was lost before it. */
async function commitAttempt<T>(a: Attempt, value: T): Promise<AttemptResult<T>> {
  const { state } = a;
  if (state.lost) {
    // Lost before COMMIT was sent (the callback swallowed the errors): nothing committed.
    return failAttempt(a, 'body', state.lastStatementError ?? state.connectionError ?? new Error('pg-consul: the connection was lost before COMMIT'));
  }
  let committed: pg.QueryResult;
  try {
    committed = await a.client.query('COMMIT');
  } catch (err) {
    return failAttempt(a, 'commit', err);
  }
  if (committed.command === 'ROLLBACK') {
    // The transaction was aborted by an error the callback caught: COMMIT rolled it back.
    const cause = state.lastStatementError ?? new Error('pg-consul: the transaction was aborted; COMMIT rolled it back');
    const d = decideTransactionFailure({ stage: 'body', error: cause, fromDatabase: true, connectionLost: false, readOnly: a.readOnly, role: a.role });
    a.finish(d.destroyClient, cause);
    return { kind: 'failed', decision: d, thrown: cause, error: cause, node: a.node };
  }
  a.finish(false, undefined);
  return { kind: 'committed', value };
}

/**
 * One run: BEGIN, the callback, COMMIT, on one checked-out client; always releases it.
 */
async function runAttempt<T>(
  client: pg.PoolClient,
  attempt: number,
  begin: string,
  readOnly: boolean,
  role: 'primary' | 'replica',
  callback: (tx: TransactionClient) => Promise<T>,
): Promise<AttemptResult<T>> {
  const a = startAttempt(client, attempt, readOnly, role);
  try {
    await a.state.run(begin, undefined);
  } catch (err) {
    return failAttempt(a, 'begin', err);
  }
  const tx = openTransactionClient(a.state, 0);
  let value: T;
  try {
    value = await callback(tx);
  } catch (err) {
    closeTransactionClient(tx);
    return failAttempt(a, 'body', err);
  }
  closeTransactionClient(tx);
  return commitAttempt(a, value);
}

/**
 * Runs `callback` in a transaction on a client from `env.acquire()`, replaying the whole
 * callback on a fresh connection while {@link decideTransactionFailure} says `replay`, at
 * most `maxAttempts` runs, waiting the pool's backoff between runs (cut short by a topology
 * change) and emitting a `retry` event for each replay.
 *
 * One {@link FailoverBudget} of `failoverTimeoutMillis` bounds the whole transaction's
 * waiting out of a failover — checkouts, replays and the waits between them together. It
 * starts at the first failure: of a run (when it failed), or of the first checkout (when it
 * started) if no node could be used at once. No replay and no checkout attempt starts after
 * it is spent; one under way is not interrupted. While nothing fails there is no limit: a
 * slow first run that commits is never cut short, and one that fails gets the whole budget
 * from its failure.
 *
 * @param env the pool's side
 * @param callback the transaction's work; it must have no effects outside the database
 * @param options transaction options
 * @returns what `callback` resolved with, once COMMIT succeeded
 * @throws the callback's own error unchanged (after ROLLBACK); a server error unchanged;
 *   TransactionOutcomeUnknownError when the connection was lost during COMMIT;
 *   FailoverTimeoutError (or the last 40001 / 40P01 error) when replays ran out; whatever
 *   `env.acquire()` throws (NoPrimaryError, FailoverTimeoutError, PoolEndedError)
 *
 * @example
 * ```ts
 * await runTransaction({ deps: cluster.retryDeps('primary'), role: 'primary', acquire: (budget) => pool.acquire(budget) },
 *   async (tx) => tx.query('UPDATE t SET v = v + 1'), { isolationLevel: 'serializable' });
 * ```
 */
export async function runTransaction<T>(
  env: TransactionEnv,
  callback: (tx: TransactionClient) => Promise<T>,
  options?: TransactionOptions,
): Promise<T> {
  if (typeof callback !== 'function') throw new TypeError('pg-consul: transaction() needs a callback');
  const settings = resolveTransactionOptions(options);
  const begin = beginStatement(settings);
  const { deps } = env;
  const start = deps.now();
  const budget: FailoverBudget = { since: undefined };
  let firstError: unknown;
  for (let attempt = 1; ; attempt++) {
    if (deps.isEnding()) throw new PoolEndedError();
    const client = await env.acquire(budget);
    const result = await runAttempt(client, attempt, begin, settings.readOnly === true, env.role, callback);
    if (result.kind === 'committed') return result.value;
    const { decision: d, node, error } = result;
    if (d.invalidatesNode && node !== undefined) deps.invalidate(node);
    if (d.refreshTopology) deps.refresh();
    if (d.action === 'rethrow') throw result.thrown;
    if (d.action === 'outcome-unknown') {
      throw new TransactionOutcomeUnknownError(
        `connection to ${node ?? 'the server'} was lost while COMMIT was in flight; the transaction may or may not have committed`,
        { cause: error, node, attempts: attempt },
      );
    }
    firstError ??= error;
    budget.since ??= deps.now();
    const remaining = budget.since + deps.failoverTimeoutMillis - deps.now();
    if (attempt >= settings.maxAttempts || remaining <= 0) {
      throw giveUpError(d.reason ?? 'failover', { first: firstError, last: error, attempts: attempt, node, elapsedMillis: deps.now() - start, role: env.role });
    }
    const delayMillis = Math.min(deps.backoff(attempt), remaining);
    deps.onRetry({ attempt, delayMillis, node, error: asError(error), outcome: d.outcome });
    await deps.waitForChange(delayMillis);
  }
}
