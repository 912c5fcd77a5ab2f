import type { DiscoveredNode, TopologyUpdate } from './node.js';

/**
 * An immutable view of the cluster at one moment: what the discovery source last said,
 * plus which primaries pg-consul itself found not writable and, with `maxReplicaLag`, how far
 * each replica is behind.
 *
 * Snapshots are only ever replaced, never changed: `applyUpdate`,
 * `invalidateNode` and `withReplicaLag` return a new snapshot, or the same object when nothing changed, so
 * `previous !== current` means "something changed".
 *
 * @example
 * ```ts
 * pool.on('topology', ({ previous, current }) => {
 *   console.log(`primary ${previous.primary?.address} → ${current.primary?.address}`);
 * });
 * ```
 */
export interface TopologySnapshot {
  /**
   * Increases on every routing change; 0 for the empty snapshot before discovery answered.
   * A lag-number update alone (`withReplicaLag`) replaces the snapshot but keeps it.
   */
  readonly version: number;
  /** The source's index (Consul `X-Consul-Index`) of the answer this snapshot is built on. */
  readonly index: number;
  /** Which discovery source produced the last answer (e.g. `consul-health`); `''` before any. */
  readonly source: string;
  /** Whether the discovery source has answered at least once. */
  readonly discovered: boolean;
  /** Every healthy node the source reported, in its order. */
  readonly nodes: readonly DiscoveredNode[];
  /**
   * Nodes tagged primary and not currently invalidated, best first (higher
   * `modifyIndex` first). Usually one; two during a switchover.
   */
  readonly primaryCandidates: readonly DiscoveredNode[];
  /** The node writes go to: the first primary candidate, if any. */
  readonly primary: DiscoveredNode | undefined;
  /** Nodes tagged replica (never the current primary's address). */
  readonly replicas: readonly DiscoveredNode[];
  /**
   * Nodes tagged primary that pg-consul found read-only (role check or `25006`), by
   * address, with the `modifyIndex` they had then and the time (ms since epoch) until which
   * they are skipped (see {@link InvalidatedNode}). Cleared when the source re-registers the
   * node or it stops being primary.
   */
  readonly invalidated: ReadonlyMap<string, InvalidatedNode>;
  /**
   * Nodes pg-consul found unreachable (its dead-peer probe got no answer while a statement
   * on them hung), by address: skipped as primary and as replica, and their connections
   * fenced, although discovery still lists them. Cleared when a later probe gets an answer
   * or the node leaves the discovery answer. Empty almost always.
   */
  readonly unreachable: ReadonlyMap<string, UnreachableNode>;
  /**
   * The replicas reads may go to: `replicas` minus those the lag limit excluded (over
   * `maxReplicaLag`, not measured yet, or not measured recently). The very same array as
   * `replicas` when no lag limit is set.
   */
  readonly readReplicas: readonly DiscoveredNode[];
  /**
   * The lag of each replica, by address, as last measured (see {@link ReplicaLag}): by the
   * lag monitor, or from Patroni's member keys in the Patroni modes with only a byte limit.
   * Empty when no lag limit is set. Replaced after every measurement round or Patroni KV
   * answer: the `lag` event reports each replacement, the `topology` event only those that
   * change which replicas are excluded (WAL movement alone never fires `topology`).
   */
  readonly lag: ReadonlyMap<string, ReplicaLag>;
}

/**
 * Why and for how long a primary candidate is skipped: an entry of
 * {@link TopologySnapshot.invalidated}, keyed by the node's address. Immutable.
 */
export interface InvalidatedNode {
  /**
   * The node's `modifyIndex` when pg-consul found it read-only; a different one (the source
   * re-registered the node) clears the entry.
   */
  readonly modifyIndex: number;
  /** Time (ms since epoch) until which the node is skipped as a primary. */
  readonly until: number;
}

/**
 * Why a node is skipped as unreachable: an entry of {@link TopologySnapshot.unreachable}.
 * Immutable.
 */
export interface UnreachableNode {
  /** When the probe failed (ms since epoch). */
  readonly since: number;
  /** The probe's secret-free reason (`ETIMEDOUT`, `ECONNREFUSED`, `no answer within 1000 ms`…). */
  readonly reason: string;
}

/**
 * How far one replica is behind the primary, as the lag monitor measured it or, in the
 * Patroni discovery modes with only a byte limit, as Patroni's member keys report it (see
 * `measuredBy`). Immutable.
 *
 * @example
 * ```ts
 * for (const [address, lag] of pool.topology.lag) {
 *   console.log(address, lag.bytes, lag.seconds, lag.excluded ? 'excluded' : 'serving reads');
 * }
 * ```
 */
export interface ReplicaLag {
  /** Bytes of WAL the replica has yet to replay; undefined when unknown. */
  readonly bytes: number | undefined;
  /**
   * Seconds since the primary was first seen at a position the replica has not replayed yet
   * (0 when caught up; not inflated by an idle primary); undefined when unknown.
   */
  readonly seconds: number | undefined;
  /** The replica's `pg_last_wal_replay_lsn()` in PostgreSQL's `X/Y` form; undefined when unknown. */
  readonly replayLsn: string | undefined;
  /** When the replica was last measured (ms since epoch); undefined when never. */
  readonly sampledAt: number | undefined;
  /** Whether reads skip this replica (over the limit, or its lag is unknown). */
  readonly excluded: boolean;
  /**
   * Where the numbers come from: `lag-monitor` (pg-consul's own queries: `bytes` behind in
   * replay, `seconds`, `replayLsn`) or `patroni-kv` (Patroni's member keys: `bytes` only, the
   * leader's latest known `xlog_location` minus the replica's, each up to one Patroni
   * `loop_wait` old; `sampledAt` is when pg-consul read them). Absent on entries built by hand.
   */
  readonly measuredBy?: 'lag-monitor' | 'patroni-kv' | undefined;
  /**
   * `patroni-kv` entries: the replica's `xlog_location` (the higher of its received and
   * replayed positions) in PostgreSQL's `X/Y` form; undefined otherwise or when unknown.
   */
  readonly patroniLsn?: string | undefined;
}

const NO_NODES = Object.freeze([]) as readonly DiscoveredNode[];

/** The snapshot before discovery has answered: no nodes, no primary. */
export const EMPTY_TOPOLOGY: TopologySnapshot = Object.freeze({
  version: 0,
  index: 0,
  source: '',
  discovered: false,
  nodes: NO_NODES,
  primaryCandidates: NO_NODES,
  primary: undefined,
  replicas: NO_NODES,
  invalidated: new Map(),
  unreachable: new Map(),
  readReplicas: NO_NODES,
  lag: new Map(),
});

function byPreference(a: DiscoveredNode, b: DiscoveredNode): number {
  if (a.modifyIndex !== b.modifyIndex) return b.modifyIndex - a.modifyIndex;
  return a.address < b.address ? -1 : a.address > b.address ? 1 : 0;
}

function sameNode(a: DiscoveredNode, b: DiscoveredNode): boolean {
  if (a.address !== b.address || a.role !== b.role || a.id !== b.id || a.name !== b.name) return false;
  if (a.modifyIndex !== b.modifyIndex || a.tags.length !== b.tags.length) return false;
  return a.tags.every((t, i) => t === b.tags[i]);
}

function sameNodes(a: readonly DiscoveredNode[], b: readonly DiscoveredNode[]): boolean {
  return a.length === b.length && a.every((n, i) => sameNode(n, b[i]!));
}

type Invalidated = TopologySnapshot['invalidated'];
type Unreachable = TopologySnapshot['unreachable'];

function build(
  prev: TopologySnapshot,
  nodes: readonly DiscoveredNode[],
  invalidated: Invalidated,
  now: number,
  meta: { index: number; source: string },
  unreachable: Unreachable = prev.unreachable,
): TopologySnapshot {
  const isSkipped = (n: DiscoveredNode): boolean => {
    const inv = invalidated.get(n.address);
    return (inv !== undefined && inv.until > now) || unreachable.has(n.address);
  };
  const primaryCandidates = nodes.filter((n) => n.role === 'primary' && !isSkipped(n)).sort(byPreference);
  const primary = primaryCandidates[0];
  const replicas = nodes.filter((n) => n.role === 'replica' && n.address !== primary?.address && !unreachable.has(n.address));
  Object.freeze(replicas);
  const sameView =
    prev.discovered &&
    prev.primary?.address === primary?.address &&
    sameNodes(prev.nodes, nodes) &&
    sameNodes(prev.primaryCandidates, primaryCandidates) &&
    prev.invalidated.size === invalidated.size &&
    [...invalidated].every(([k, v]) => {
      const p = prev.invalidated.get(k);
      return p !== undefined && p.modifyIndex === v.modifyIndex && p.until === v.until;
    }) &&
    prev.unreachable.size === unreachable.size &&
    [...unreachable.keys()].every((k) => prev.unreachable.has(k));
  if (sameView) {
    // Nothing a router cares about changed; keep identity so no event fires.
    return prev;
  }
  return Object.freeze({
    version: prev.version + 1,
    index: meta.index,
    source: meta.source,
    discovered: true,
    nodes: Object.freeze([...nodes]),
    primaryCandidates: Object.freeze(primaryCandidates),
    primary,
    replicas,
    invalidated,
    unreachable,
    readReplicas: readableReplicas(replicas, prev.lag),
    lag: prev.lag,
  });
}

/** `replicas` minus those `lag` excludes; `replicas` itself when none is excluded. */
function readableReplicas(replicas: readonly DiscoveredNode[], lag: TopologySnapshot['lag']): readonly DiscoveredNode[] {
  if (lag.size === 0 || !replicas.some((r) => lag.get(r.address)?.excluded === true)) return replicas;
  return Object.freeze(replicas.filter((r) => lag.get(r.address)?.excluded !== true));
}

function sameLag(a: ReplicaLag, b: ReplicaLag): boolean {
  return (
    a.bytes === b.bytes &&
    a.seconds === b.seconds &&
    a.replayLsn === b.replayLsn &&
    a.sampledAt === b.sampledAt &&
    a.excluded === b.excluded &&
    a.measuredBy === b.measuredBy &&
    a.patroniLsn === b.patroniLsn
  );
}

/**
 * Installs the latest per-replica lag (lag monitor or Patroni KV positions) in the topology. Pure.
 *
 * Returns `prev` itself when the entries are equal to the current ones. When the set of
 * excluded replicas changes, the result is a routing change: `version` increases and
 * `readReplicas` changes (the pool emits `topology`). When only the numbers changed, the
 * result keeps `version` and `readReplicas` (the pool emits `lag` only).
 *
 * @param prev the current snapshot
 * @param lag one entry per replica, by address (entries for other addresses are ignored)
 *
 * @example
 * ```ts
 * const next = withReplicaLag(snapshot, new Map([['10.0.0.2:5432', { bytes: 0, seconds: 0, replayLsn: '0/3000148', sampledAt: Date.now(), excluded: false }]]));
 * next.version === snapshot.version; // true unless the excluded set changed
 * ```
 */
export function withReplicaLag(prev: TopologySnapshot, lag: ReadonlyMap<string, ReplicaLag>): TopologySnapshot {
  const kept = new Map<string, ReplicaLag>();
  for (const r of prev.replicas) {
    const entry = lag.get(r.address);
    if (entry !== undefined) kept.set(r.address, entry);
  }
  if (kept.size === prev.lag.size && [...kept].every(([a, e]) => {
    const p = prev.lag.get(a);
    return p !== undefined && sameLag(p, e);
  })) {
    return prev;
  }
  const readReplicas = readableReplicas(prev.replicas, kept);
  const routingChanged =
    readReplicas.length !== prev.readReplicas.length || readReplicas.some((r, i) => r !== prev.readReplicas[i]);
  return Object.freeze({
    ...prev,
    version: routingChanged ? prev.version + 1 : prev.version,
    readReplicas: routingChanged ? readReplicas : prev.readReplicas,
    lag: kept,
  });
}

/**
 * Folds a discovery answer into the topology. Pure.
 *
 * Invalidations survive only while the node is still tagged primary with the same
 * `modifyIndex` (the source did not re-register it). Returns `prev` itself when nothing
 * that routing depends on changed (a Consul index bump alone is not a change).
 *
 * @param prev the current snapshot
 * @param update the source's complete answer
 * @param now current time in ms (for invalidation expiry)
 */
export function applyUpdate(prev: TopologySnapshot, update: TopologyUpdate, now: number): TopologySnapshot {
  const invalidated = new Map<string, { modifyIndex: number; until: number }>();
  for (const [address, inv] of prev.invalidated) {
    const node = update.nodes.find((n) => n.address === address);
    if (node && node.role === 'primary' && node.modifyIndex === inv.modifyIndex && inv.until > now) {
      invalidated.set(address, inv);
    }
  }
  // An unreachable mark outlives discovery answers (discovery still listing the node is the
  // very case it is for) but not the node's departure from them.
  let unreachable = prev.unreachable;
  if (unreachable.size > 0) {
    const kept = new Map([...unreachable].filter(([address]) => update.nodes.some((n) => n.address === address)));
    if (kept.size !== unreachable.size) unreachable = kept;
  }
  const next = build(prev, update.nodes, invalidated, now, { index: update.index, source: update.source }, unreachable);
  return next;
}

/**
 * Marks the node at `address` unreachable (pg-consul's dead-peer probe got no answer): it is
 * skipped as primary and as replica until {@link markReachable} or until it leaves the
 * discovery answer. Pure; returns `prev` when the node is not listed or already marked.
 *
 * @param prev the current snapshot
 * @param address `host:port` of the node
 * @param now current time in ms
 * @param reason the probe's secret-free reason
 *
 * @example
 * ```ts
 * const next = markUnreachable(snapshot, '10.0.0.1:5432', Date.now(), 'ETIMEDOUT');
 * next.primary?.address; // no longer 10.0.0.1:5432
 * ```
 */
export function markUnreachable(prev: TopologySnapshot, address: string, now: number, reason: string): TopologySnapshot {
  if (prev.unreachable.has(address) || !prev.nodes.some((n) => n.address === address)) return prev;
  const unreachable = new Map(prev.unreachable);
  unreachable.set(address, Object.freeze({ since: now, reason }));
  return build(prev, prev.nodes, prev.invalidated, now, { index: prev.index, source: prev.source }, unreachable);
}

/**
 * Clears the unreachable mark of the node at `address` (a probe got an answer again). Pure;
 * returns `prev` when it was not marked.
 *
 * @param prev the current snapshot
 * @param address `host:port` of the node
 * @param now current time in ms
 */
export function markReachable(prev: TopologySnapshot, address: string, now: number): TopologySnapshot {
  if (!prev.unreachable.has(address)) return prev;
  const unreachable = new Map(prev.unreachable);
  unreachable.delete(address);
  return build(prev, prev.nodes, prev.invalidated, now, { index: prev.index, source: prev.source }, unreachable);
}

/**
 * Marks the node at `address` as not writable until `until` (ms since epoch): it stops being
 * a primary candidate, so writes go to the next candidate or wait for the topology to change.
 * Pure; returns `prev` when the node is not a primary candidate.
 *
 * @param prev the current snapshot
 * @param address `host:port` of the node that proved read-only
 * @param now current time in ms
 * @param until time in ms until which the node is skipped (it is re-checked after that)
 */
export function invalidateNode(prev: TopologySnapshot, address: string, now: number, until: number): TopologySnapshot {
  const node = prev.primaryCandidates.find((n) => n.address === address);
  if (!node) return prev;
  const invalidated = new Map(prev.invalidated);
  invalidated.set(address, { modifyIndex: node.modifyIndex, until });
  return build(prev, prev.nodes, invalidated, now, { index: prev.index, source: prev.source });
}

/**
 * Re-evaluates time-based invalidations: a node whose invalidation has expired becomes a
 * primary candidate again (and is re-checked by the role check). Pure; returns `prev` when
 * nothing expired.
 *
 * @param prev the current snapshot
 * @param now current time in ms
 */
export function expireInvalidations(prev: TopologySnapshot, now: number): TopologySnapshot {
  let expired = false;
  for (const inv of prev.invalidated.values()) if (inv.until <= now) expired = true;
  if (!expired) return prev;
  const invalidated = new Map([...prev.invalidated].filter(([, inv]) => inv.until > now));
  return build(prev, prev.nodes, invalidated, now, { index: prev.index, source: prev.source });
}

/** The earliest time an invalidation in `snapshot` expires, or undefined when there is none. */
export function nextInvalidationExpiry(snapshot: TopologySnapshot): number | undefined {
  let min: number | undefined;
  for (const inv of snapshot.invalidated.values()) if (min === undefined || inv.until < min) min = inv.until;
  return min;
}
