import type { DiscoveredNode, NodeRole, TopologyUpdate } from '../../lib/topology/node.js';
import { formatAddress } from '../../lib/topology/node.js';

/** Builds a DiscoveredNode for tests: `node('n1', 5432, 'primary', 7)`. */
export function node(name: string, port: number, role: NodeRole, modifyIndex = 1, host = '127.0.0.1'): DiscoveredNode {
  const tags = role === 'primary' ? ['master', 'primary'] : role === 'replica' ? ['replica'] : ['standby-leader'];
  return { id: `pglab/${name}`, name, host, port, address: formatAddress(host, port), role, tags, modifyIndex };
}

/** Builds a TopologyUpdate. */
export function update(index: number, ...nodes: DiscoveredNode[]): TopologyUpdate {
  return { source: 'test', index, nodes };
}
