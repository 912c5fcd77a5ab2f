import type pg from 'pg';
import { PoolEndedError } from '../errors.js';
import { AttemptFailure, retryLoop } from '../retry/run-with-retry.js';
import type { RetryDeps } from '../retry/run-with-retry.js';
import type { DiscoveredNode } from '../topology/node.js';
import { publishQuery, queryChannel } from '../diagnostics.js';
import { connectionLost } from './node-pool.js';

/** Where a client comes from: a node pool (pg.Pool.connect's callback form). */
export interface Checkout {
  /** Checks out a client, or reports why not. */
  connect(callback: (err: Error | undefined, client?: pg.PoolClient) => void): void;
}

/** A statement as pg's `query` takes it (text or config). */
export type Statement = string | pg.QueryConfig;

/**
 * One attempt of a statement on a node pool: checkout, query, release — with callbacks, as
 * pg.Pool.query does, inside a single promise (the async/await version costs ~300 ns more
 * per statement, measured by bench/hot-path.ts). Failures carry their phase for the retry
 * classification; a client whose query failed is destroyed, as pg.Pool.query does.
 *
 * @param pool the node pool (retired pools fail waiting checkouts at once)
 * @param text the statement
 * @param values its parameters
 */
export function runStatementOn<R extends pg.QueryResultRow>(pool: Checkout, text: Statement, values: unknown[] | undefined): Promise<pg.QueryResult<R>> {
  return new Promise((resolve, reject) => {
    pool.connect((err, client) => {
      if (err || !client) {
        reject(new AttemptFailure(err, 'acquire'));
        return;
      }
      runOnClientWith(client, text, values, resolve, reject);
    });
  });
}

/**
 * Checks out a client for a multi-step attempt; a failure is an acquire-phase
 * {@link AttemptFailure} (nothing was sent).
 *
 * @param pool the node pool
 */
export function checkoutFor(pool: Checkout): Promise<pg.PoolClient> {
  return new Promise((resolve, reject) =>
    pool.connect((err, client) => (err || !client ? reject(new AttemptFailure(err, 'acquire')) : resolve(client))),
  );
}

/**
 * Runs one statement of a multi-step attempt on a checked-out client and keeps the client
 * on success (the caller goes on with it and releases it). On failure the client is
 * released with the error (destroyed) and a query-phase {@link AttemptFailure} is thrown.
 *
 * @param client a checked-out client
 * @param text the statement
 * @param values its parameters
 */
export async function queryKeeping<R extends pg.QueryResultRow>(client: pg.PoolClient, text: Statement, values?: unknown[]): Promise<pg.QueryResult<R>> {
  try {
    return await client.query<R>(text as pg.QueryConfig, values);
  } catch (err) {
    const lost = connectionLost(client);
    client.release(err as Error);
    throw new AttemptFailure(err, 'query', lost);
  }
}

/**
 * The query half of {@link runStatementOn}, on a client already checked out; releases it.
 *
 * @param client a checked-out client
 * @param text the statement
 * @param values its parameters
 */
export function runOnClient<R extends pg.QueryResultRow>(client: pg.PoolClient, text: Statement, values: unknown[] | undefined): Promise<pg.QueryResult<R>> {
  return new Promise((resolve, reject) => runOnClientWith(client, text, values, resolve, reject));
}

function runOnClientWith<R extends pg.QueryResultRow>(
  client: pg.PoolClient,
  text: Statement,
  values: unknown[] | undefined,
  resolve: (result: pg.QueryResult<R>) => void,
  reject: (failure: AttemptFailure) => void,
): void {
  try {
    client.query<R>(text as string, values as unknown[], (qerr: Error | undefined, result: pg.QueryResult<R>) => {
      if (qerr) {
        const lost = connectionLost(client);
        client.release(qerr);
        reject(new AttemptFailure(qerr, 'query', lost));
        return;
      }
      client.release();
      resolve(result);
    });
  } catch (thrown) {
    // pg refused the input before sending anything (e.g. a null query).
    client.release(thrown as Error);
    reject(new AttemptFailure(thrown, 'query', false));
  }
}

/** The node pool of a node in a role (the cluster's `nodePool`). */
export type NodePools = (node: DiscoveredNode, role: 'primary' | 'replica') => Checkout;

/**
 * One statement with routing and retry: `runWithRetry` around {@link runStatementOn}, with
 * the first attempt made inline — one promise per statement, as pg.Pool.query makes, and no
 * `then` layer or retry bookkeeping unless that attempt fails (then the retry loop
 * takes over exactly as `runWithRetry` would have).
 *
 * @param deps the retry dependencies of the path
 * @param intent which path
 * @param pools the node pool of a node in a role
 * @param text the statement
 * @param values its parameters
 */
export function runStatementWithRetry<R extends pg.QueryResultRow>(
  deps: RetryDeps,
  intent: 'primary' | 'replica',
  pools: NodePools,
  text: Statement,
  values: unknown[] | undefined,
): Promise<pg.QueryResult<R>> {
  if (deps.isEnding()) return Promise.reject(new PoolEndedError());
  const start = deps.now();
  const { node, role } = deps.select();
  if (node === undefined) return retryLoop(deps, intent, attemptOf<R>(intent, pools, text, values, 0), start, undefined, undefined);
  if (queryChannel.hasSubscribers) publishQuery(intent, role, node, 1);
  return new Promise((resolve, reject) => {
    // Made by a function, not as `const fail = () => …`: tsx/esbuild (keepNames) would name
    // that arrow with Object.defineProperty on every statement, in the benchmarks only.
    const fail = retryAfter(deps, intent, pools, text, values, start, node, role, resolve, reject);
    pools(node, role).connect((err, client) => (err || !client ? fail(new AttemptFailure(err, 'acquire')) : runOnClientWith(client, text, values, resolve, fail)));
  });
}

/** {@link runStatementOn} on the node pool `pools` gives for each attempt of the retry loop (`made` attempts were made before it). */
function attemptOf<R extends pg.QueryResultRow>(intent: 'primary' | 'replica', pools: NodePools, text: Statement, values: unknown[] | undefined, made: number) {
  let attempt = made;
  return (node: DiscoveredNode, role: 'primary' | 'replica'): Promise<pg.QueryResult<R>> => {
    attempt++;
    if (queryChannel.hasSubscribers) publishQuery(intent, role, node, attempt);
    return runStatementOn<R>(pools(node, role), text, values);
  };
}

/** What settles the statement's promise when the inline first attempt fails: the retry loop, taking over from it. */
function retryAfter<R extends pg.QueryResultRow>(
  deps: RetryDeps,
  intent: 'primary' | 'replica',
  pools: NodePools,
  text: Statement,
  values: unknown[] | undefined,
  start: number,
  node: DiscoveredNode,
  role: 'primary' | 'replica',
  resolve: (result: pg.QueryResult<R>) => void,
  reject: (err: unknown) => void,
): (thrown: AttemptFailure) => void {
  return (thrown) => {
    retryLoop(deps, intent, attemptOf<R>(intent, pools, text, values, 1), start, { node, role, thrown }, undefined).then(resolve, reject);
  };
}
