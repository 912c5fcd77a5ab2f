import type pg from 'pg';
import type { DiscoveredNode } from '../topology/node.js';

/** TCP keepalive's first probe after this much idle time when the caller set none, ms. */
export const KEEPALIVE_INITIAL_DELAY_MILLIS = 10_000;

/**
 * The pg.Pool configuration for one node: the caller's options with host and port taken
 * from discovery, and TCP keepalive on unless the caller said otherwise (pg's default is
 * off: an idle connection to a vanished host then lingers for ever). Pure. (`resolveOptions` already expanded any `connectionString` into its
 * fields and rejected explicit `host`/`port`, so nothing can point a node pool elsewhere.)
 *
 * @param base the caller's pg options (already stripped of pg-consul's own keys)
 * @param node the node to connect to
 */
export function nodePoolConfig(base: Readonly<pg.PoolConfig>, node: DiscoveredNode): pg.PoolConfig {
  return {
    ...base,
    host: node.host,
    port: node.port,
    keepAlive: base.keepAlive ?? true,
    keepAliveInitialDelayMillis: base.keepAliveInitialDelayMillis ?? KEEPALIVE_INITIAL_DELAY_MILLIS,
  };
}
