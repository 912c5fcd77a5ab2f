import type pg from 'pg';
import type { DiscoveredNode } from '../topology/node.js';

/**
 * The pg.Pool configuration for one node: the caller's options with host and port taken
 * from discovery. A `connectionString` keeps its user, password, database and parameters
 * but its host and port are replaced (pg lets a connection string override `host`). Pure.
 *
 * @param base the caller's pg options (already stripped of pg-consul's own keys)
 * @param node the node to connect to
 */
export function nodePoolConfig(base: Readonly<pg.PoolConfig>, node: DiscoveredNode): pg.PoolConfig {
  const config: pg.PoolConfig = { ...base, host: node.host, port: node.port };
  if (typeof base.connectionString === 'string' && base.connectionString.length > 0) {
    config.connectionString = withHost(base.connectionString, node);
  }
  return config;
}

function withHost(connectionString: string, node: DiscoveredNode): string {
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    // Not a URL (libpq keyword form is not supported by pg either): let pg report it.
    return connectionString;
  }
  url.hostname = node.host.includes(':') ? `[${node.host}]` : node.host;
  url.port = String(node.port);
  url.searchParams.delete('host');
  url.searchParams.delete('port');
  url.searchParams.delete('hostaddr');
  return url.toString();
}
