/**
 * The role a discovery source gives a node.
 *
 * `primary` takes writes, `replica` serves reads; anything else a source reports (for
 * example Patroni's `standby-leader`) is `other` and receives no traffic.
 */
export type NodeRole = 'primary' | 'replica' | 'other';

/**
 * One PostgreSQL instance as a discovery source reported it. Immutable.
 *
 * @example
 * ```ts
 * const node: DiscoveredNode = {
 *   id: 'pglab/node1', name: 'node1', host: '127.0.0.1', port: 5432,
 *   address: '127.0.0.1:5432', role: 'primary', tags: ['master', 'primary'], modifyIndex: 42,
 * };
 * ```
 */
export interface DiscoveredNode {
  /** Stable identity given by the source (Consul `Service.ID`, e.g. `pglab/node1`). */
  readonly id: string;
  /** Human-readable name (Consul `Node.Node`, or the Patroni member name when known). */
  readonly name: string;
  /** Host to connect to (`Service.Address`, or `Node.Address` when that is empty). */
  readonly host: string;
  /** TCP port to connect to. */
  readonly port: number;
  /** `host:port`; the key node pools are kept under. IPv6 hosts are written in brackets. */
  readonly address: string;
  /** Role derived from the tags. */
  readonly role: NodeRole;
  /** Tags exactly as the source reported them. */
  readonly tags: readonly string[];
  /** Consul `Service.ModifyIndex` (0 when the source has none); breaks ties between two primaries. */
  readonly modifyIndex: number;
  /**
   * What Patroni itself says about this member, when the node came from Patroni's keys in
   * Consul KV (`discovery: 'patroni'` / `'patroni+health'`); undefined for other sources.
   */
  readonly patroni?: PatroniMemberInfo | undefined;
}

/**
 * A Patroni member as its `members/<name>` key in the DCS describes it (Patroni 3.x).
 * Immutable. WAL positions are kept for a future replica-lag limit; they are not compared
 * when deciding whether the topology changed.
 *
 * @example
 * ```ts
 * const info: PatroniMemberInfo = {
 *   member: 'node2', role: 'replica', state: 'running', leader: false,
 *   xlogLocation: 67108864, timeline: 1, noloadbalance: false, nofailover: false,
 * };
 * ```
 */
export interface PatroniMemberInfo {
  /** Member name (`name:` in patroni.yml). */
  readonly member: string;
  /** Patroni's role: `master`/`primary`, `replica`, `promoted`, `demoted`, `standby_leader`… */
  readonly role: string;
  /** Patroni's state: `running`, `stopped`, `starting`, `stopping`, `crashed`… */
  readonly state: string;
  /** Whether the leader key names this member. */
  readonly leader: boolean;
  /** `xlog_location`: the leader's WAL write position, a replica's received/replayed one (bytes). */
  readonly xlogLocation?: number | undefined;
  /** `timeline` the member reported. */
  readonly timeline?: number | undefined;
  /** `tags.noloadbalance`: the member asks not to receive read traffic. */
  readonly noloadbalance: boolean;
  /** `tags.nofailover`: the member never becomes leader (irrelevant for reads). */
  readonly nofailover: boolean;
}

/**
 * One complete answer of a discovery source: every node it currently considers healthy.
 * A source always reports the whole set, never a diff.
 */
export interface TopologyUpdate {
  /** Which source produced it (e.g. `consul-health`). */
  readonly source: string;
  /** The source's version counter (Consul `X-Consul-Index`), 0 when it has none. */
  readonly index: number;
  /** All healthy nodes, in the order the source returned them. */
  readonly nodes: readonly DiscoveredNode[];
}

/** Formats `host:port` the way node pools are keyed (brackets around IPv6 literals). */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
