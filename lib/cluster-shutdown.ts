/**
 * How a Cluster shuts down (see `Cluster.end`): the wait that lets statements accepted
 * before `end()` run once discovery first answers, then stopping the background work and
 * ending the node pools within their bounds.
 * @module
 */
import type { DiscoverySource } from './discovery/discovery-source.js';
import type { Logger } from './log.js';
import type { DrainSettings, NodePoolSet } from './pooling/node-pool-set.js';

/** What {@link shutDown} stops and ends. */
export interface ShutdownParts {
  readonly detector: { stop(): Promise<void> } | undefined;
  readonly source: DiscoverySource;
  readonly lagMonitor: { stop(): Promise<void> } | undefined;
  readonly pools: NodePoolSet;
  readonly drain: DrainSettings;
  readonly log: Logger;
}

/**
 * Stops the dead-peer detector, discovery (aborting its in-flight request) and the lag
 * monitor, then ends every node pool (see `NodePoolSet.endAll` for the bounds).
 *
 * @param parts the cluster's parts
 */
export async function shutDown(parts: ShutdownParts): Promise<void> {
  await Promise.all([
    parts.detector?.stop(),
    parts.source.stop().catch((err: unknown) => parts.log('debug', 'discovery stop failed', { error: String(err) })),
    parts.lagMonitor?.stop(),
  ]);
  await parts.pools.endAll(parts.drain);
}

/** What {@link awaitFirstAnswer} watches. */
export interface FirstAnswerWatch {
  /** Whether discovery has answered at least once. */
  discovered(): boolean;
  /** Resolves after `ms`, or earlier when the topology changes. */
  wait(ms: number): Promise<void>;
  /** Current time in ms. */
  now(): number;
}

/**
 * Waits, at most `ms`, for discovery's first answer; then one macrotask more, so that the
 * statements that answer woke reach their node pools (checkouts there finish before the
 * node pools end).
 *
 * @param watch the cluster's side
 * @param ms the longest wait
 */
export async function awaitFirstAnswer(watch: FirstAnswerWatch, ms: number): Promise<void> {
  const deadline = watch.now() + ms;
  while (!watch.discovered() && watch.now() < deadline) await watch.wait(deadline - watch.now());
  await new Promise<void>((resolve) => setImmediate(resolve));
}
