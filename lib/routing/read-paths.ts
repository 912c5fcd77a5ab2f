/**
 * The read paths beyond `pool.replica`: statements `autoReadRouting` moved off the primary,
 * and reads that must see a session's own writes (read-your-writes). Each is one short call
 * of the pool's retry loop with its own selection; the decisions are the pure selections of
 * `topology/select`.
 *
 * @example
 * ```ts
 * const result = await runAutoRead(cluster, 'SELECT * FROM t WHERE id = $1', [1]);
 * const mine = await runCaughtUpRead(cluster, 0x3000148n, 'SELECT * FROM orders WHERE id = $1', [7]);
 * ```
 * @module
 */
import type pg from 'pg';
import { NoPrimaryError } from '../errors.js';
import { serverSqlState } from '../retry/classify.js';
import { AttemptFailure, asReadOnlyFailure, runWithRetry } from '../retry/run-with-retry.js';
import type { RetryDeps } from '../retry/run-with-retry.js';
import { checkoutFor, queryKeeping, runOnClient, runStatementOn } from '../pooling/statement-attempt.js';
import type { Checkout } from '../pooling/statement-attempt.js';
import type { Statement } from '../pooling/statement-attempt.js';
import type { DiscoveredNode } from '../topology/node.js';
import type { CaughtUpSelection, Selection } from '../topology/select.js';
import { isReadOnlyStatement } from '../query/read-only.js';
import { MAX_LSN, parseLsn } from './lsn.js';

/** What a replica is asked before a read-your-writes read it is not known to be able to serve. */
export const REPLAY_POSITION_QUERY = 'SELECT pg_last_wal_replay_lsn()::text AS replay';

/** Most statement texts whose verdict {@link isCertainlyReadOnly} remembers. */
export const VERDICT_CACHE_SIZE = 512;
/** Longer texts are classified every time (they would pin too much memory). */
export const VERDICT_CACHE_MAX_CHARS = 2048;
const verdicts = new Map<string, boolean>();

/**
 * {@link isReadOnlyStatement} remembering the verdicts of up to {@link VERDICT_CACHE_SIZE}
 * texts of at most {@link VERDICT_CACHE_MAX_CHARS} characters (applications repeat their
 * statements; a lookup costs less than a scan). The memory is bounded: when full, it starts
 * over.
 *
 * @param text the statement's SQL text (anything else is not read-only)
 *
 * @example
 * ```ts
 * if (isCertainlyReadOnly(typeof text === 'string' ? text : text.text)) return runAutoRead(cluster, text, values);
 * ```
 */
export function isCertainlyReadOnly(text: unknown): boolean {
  if (typeof text !== 'string') return false;
  if (text.length > VERDICT_CACHE_MAX_CHARS) return isReadOnlyStatement(text);
  let verdict = verdicts.get(text);
  if (verdict === undefined) {
    verdict = isReadOnlyStatement(text);
    if (verdicts.size >= VERDICT_CACHE_SIZE) verdicts.clear();
    verdicts.set(text, verdict);
  }
  return verdict;
}

export type { Statement } from '../pooling/statement-attempt.js';

/**
 * The part of the pool's state (`Cluster`) the read paths and read-your-writes sessions use:
 * selection, retry dependencies, node pools and replay-position knowledge. `Cluster`
 * implements it; unit tests pass a fake.
 *
 * @example
 * ```ts
 * const cluster: ReadPathCluster = new Cluster(settings, source, emitters, log); // or a test fake
 * await runCaughtUpRead(cluster, 0x3000148n, 'SELECT 1', undefined);
 * ```
 */
export interface ReadPathCluster {
  /** Whether `end()` was called. */
  readonly ending: boolean;
  /** The retry loop's dependencies for a path. */
  retryDeps(intent: 'primary' | 'replica'): RetryDeps;
  /** The read path's retry dependencies with another selection. */
  retryDepsWith(select: () => Selection): RetryDeps;
  /** The retry dependencies of auto-routed reads (no replica: the primary, whatever `readFallback` says). */
  autoReadDeps(): RetryDeps;
  /** The node for an intent now. */
  select(intent: 'primary' | 'replica'): Selection;
  /** The node for a read that must see `position` (see `selectCaughtUpReplica`). */
  selectCaughtUp(position: bigint, allowVerify?: boolean): CaughtUpSelection;
  /** Records that a replica has replayed at least `lsn`. */
  noteReplayed(address: string, lsn: bigint): void;
  /** The pg.Pool of a node in a role. */
  nodePool(node: DiscoveredNode, role: 'primary' | 'replica'): Checkout & { checkout(): Promise<pg.PoolClient> };
}

function onPrimary<R extends pg.QueryResultRow>(cluster: ReadPathCluster, text: Statement, values: unknown[] | undefined): Promise<pg.QueryResult<R>> {
  return runWithRetry(cluster.retryDeps('primary'), 'primary', (node, role) => runStatementOn<R>(cluster.nodePool(node, role), text, values));
}

/**
 * Runs a statement `autoReadRouting` found certainly read-only on the read path: a readable
 * replica (least busy first), or the primary when none is (whatever `readFallback` says).
 * Retried like `pool.replica.query`, also when it fell back to the primary and lost its
 * connection there (it is certainly read-only: running it again changes nothing). If a replica refuses it as a write (SQLSTATE 25006 —
 * for instance a function of the application's that writes), it changed nothing there and
 * is run on the primary instead, with the write path's retry rules.
 *
 * @param cluster the pool's state
 * @param text the statement
 * @param values its parameters
 *
 * @example
 * ```ts
 * if (isReadOnlyStatement(sql)) return runAutoRead(cluster, sql, values);
 * ```
 */
export async function runAutoRead<R extends pg.QueryResultRow>(cluster: ReadPathCluster, text: Statement, values: unknown[] | undefined): Promise<pg.QueryResult<R>> {
  try {
    return await runWithRetry(cluster.autoReadDeps(), 'replica', (node, role) =>
      role === 'primary'
        ? runStatementOn<R>(cluster.nodePool(node, role), text, values).then(undefined, asReadOnlyFailure)
        : runStatementOn<R>(cluster.nodePool(node, role), text, values),
    );
  } catch (err) {
    if (serverSqlState(err) !== '25006') throw err;
    return onPrimary<R>(cluster, text, values);
  }
}

/**
 * Runs a read that must see everything up to WAL position `position`:
 *
 * - on a readable replica known to have replayed it (from the lag monitor, or an earlier
 *   check): no extra round trip;
 * - without the lag monitor, on a replica not known to have: one extra round trip on that
 *   replica (`pg_last_wal_replay_lsn()`) first, on the same connection; if it has not
 *   replayed the position, the read runs on the primary instead;
 * - else on the primary (also when `readFallback` is `fail`: the session asked for its own
 *   writes, which the primary always has).
 *
 * Retried like `pool.replica.query`.
 *
 * @param cluster the pool's state
 * @param position the position the read must see (> 0; {@link MAX_LSN} = primary only)
 * @param text the statement
 * @param values its parameters
 *
 * @example
 * ```ts
 * const { rows } = await runCaughtUpRead(cluster, session.position, 'SELECT * FROM carts WHERE user_id = $1', [42]);
 * ```
 */
export function runCaughtUpRead<R extends pg.QueryResultRow>(
  cluster: ReadPathCluster,
  position: bigint,
  text: Statement,
  values: unknown[] | undefined,
): Promise<pg.QueryResult<R>> {
  let verify = false;
  const deps = cluster.retryDepsWith(() => {
    const s = cluster.selectCaughtUp(position, position !== MAX_LSN);
    verify = s.verify;
    return s;
  });
  return runWithRetry(deps, 'replica', (node, role) =>
    verify ? verifiedRead<R>(cluster, node, position, text, values) : runStatementOn<R>(cluster.nodePool(node, role), text, values),
  );
}

/** Checks the replica's replay position, then reads there or, if it is behind, on the primary. */
async function verifiedRead<R extends pg.QueryResultRow>(
  cluster: ReadPathCluster,
  node: DiscoveredNode,
  position: bigint,
  text: Statement,
  values: unknown[] | undefined,
): Promise<pg.QueryResult<R>> {
  const client = await checkoutFor(cluster.nodePool(node, 'replica'));
  const res = await queryKeeping<{ replay: string | null }>(client, REPLAY_POSITION_QUERY);
  const replay = parseLsn(res.rows[0]?.replay);
  if (replay !== undefined) cluster.noteReplayed(node.address, replay);
  if (replay !== undefined && replay >= position) return runOnClient<R>(client, text, values);
  client.release();
  const primary = cluster.select('primary').node;
  if (!primary) throw new AttemptFailure(new NoPrimaryError('no writable primary is known right now'), 'acquire');
  return runStatementOn<R>(cluster.nodePool(primary, 'primary'), text, values);
}
