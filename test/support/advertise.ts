import type { ConsulDouble } from '../../lib/testing/consul-double.js';
import type { PgCluster } from '../../lib/testing/pg-cluster.js';

/**
 * Plays Patroni's registration for a {@link PgCluster} in the Consul double: every running
 * node is registered (re-registered in place, so no intermediate state is visible) as
 * service `service`, id `<service>/<name>` — `primary` first with `master` + `primary`
 * tags, the others with `replica`. Stopped or excluded nodes are deregistered. With
 * `primary` undefined every node is a replica (Consul lists no primary: a failover under way).
 */
export function advertise(
  consul: ConsulDouble,
  cluster: PgCluster,
  service: string,
  primary: string | undefined,
  exclude: readonly string[] = [],
): void {
  const ordered = [...cluster.nodes].sort((a, b) => (a.name === primary ? -1 : b.name === primary ? 1 : 0));
  for (const n of ordered) {
    const id = `${service}/${n.name}`;
    if (exclude.includes(n.name) || !cluster.isRunning(n.name)) {
      try {
        consul.deregisterService(id);
      } catch {
        // was not registered
      }
      continue;
    }
    consul.registerService({
      id,
      name: service,
      address: n.host,
      port: n.port,
      tags: n.name === primary ? ['master', 'primary'] : ['replica'],
      node: n.name,
      nodeAddress: '127.0.0.1',
    });
  }
}
