import type pg from 'pg';
import type { DiscoveredNode } from '../topology/node.js';

/**
 * The pg.Pool configuration for one node: the caller's options with host and port taken
 * from discovery. Pure. (`resolveOptions` already expanded any `connectionString` into its
 * fields and rejected explicit `host`/`port`, so nothing can point a node pool elsewhere.)
 *
 * @param base the caller's pg options (already stripped of pg-consul's own keys)
 * @param node the node to connect to
 */
export function nodePoolConfig(base: Readonly<pg.PoolConfig>, node: DiscoveredNode): pg.PoolConfig {
  return { ...base, host: node.host, port: node.port };
}
