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
 * Immutable. WAL positions are not compared when deciding whether the topology changed, so
 * the `xlogLocation` of a node in a snapshot is the one of the answer that last changed the
 * topology: it goes stale as WAL moves. The latest positions are in
 * {@link TopologyUpdate.walPositions}, and with a byte lag limit in `topology.lag`.
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
  /**
   * `xlog_location` (bytes): the leader's WAL write position; a replica's is the higher of its
   * received and replayed positions (Patroni 3.x). As of the snapshot's last topology change,
   * not the latest (see above).
   */
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
  /**
   * WAL positions Patroni's member keys reported in this answer (`discovery: 'patroni'` /
   * `'patroni+health'`; see {@link PatroniWalPositions}); undefined for other sources. With
   * `maxReplicaLag: { bytes }` alone they decide which replicas serve reads.
   */
  readonly walPositions?: PatroniWalPositions | undefined;
}

/**
 * The WAL positions (bytes, as Patroni writes `xlog_location`) of one Patroni KV answer.
 * Patroni rewrites a member key once per `loop_wait` while its position moves, so every
 * position can be up to one `loop_wait` old. Immutable.
 *
 * @example
 * ```ts
 * const positions: PatroniWalPositions = {
 *   latest: 83886080,
 *   members: new Map([['10.0.0.1:5432', 83886080], ['10.0.0.2:5432', 83361792]]),
 * };
 * ```
 */
export interface PatroniWalPositions {
  /**
   * The latest known position of the leader: the highest `xlog_location` of the member the
   * leader key names and of the running replicas (what a replica received, the leader had).
   * Undefined when none of them reported one.
   */
  readonly latest: number | undefined;
  /** Each member's `xlog_location`, by address (`host:port`); members without one are absent. */
  readonly members: ReadonlyMap<string, number>;
}

/** Formats `host:port` the way node pools are keyed (brackets around IPv6 literals). */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
