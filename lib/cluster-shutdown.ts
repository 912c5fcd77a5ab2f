/**
 * How a Cluster shuts down (see `Cluster.end`): stopping the background work, then ending
 * the node pools within their bounds.
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
