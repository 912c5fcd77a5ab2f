/**
 * Replica lag, as pure functions over what the lag monitor measured.
 *
 * **Bytes behind** = the primary's latest known WAL position − the replica's replay position
 * (never negative). The latest known position is the highest of the primary's
 * `pg_current_wal_lsn()` and the replicas' `pg_last_wal_receive_lsn()` seen so far, so a
 * replica's lag stays measurable while the primary is unreachable.
 *
 * **Seconds behind** = how long ago the primary was first seen at a position the replica has
 * not replayed yet; 0 when the replica has replayed everything the primary had at the last
 * measurement. Unlike `now() - pg_last_xact_replay_timestamp()` this does not report an idle
 * primary's quiet time as lag: an hour without writes followed by one write shows a lag of
 * at most one measurement interval, not an hour. Its resolution is the measurement interval.
 *
 * @example
 * ```ts
 * let history: WalHistory = [];
 * history = addWalPoint(history, { at: 1000, lsn: 100n });
 * history = addWalPoint(history, { at: 2000, lsn: 250n });
 * measureLag(history, 100n, 2500); // { bytes: 150, seconds: 0.5 }
 * ```
 * @module
 */
import { formatLsn } from './lsn.js';
import type { DiscoveredNode, PatroniWalPositions } from '../topology/node.js';
import type { ReplicaLag } from '../topology/snapshot.js';

/**
 * The most a replica may lag to serve reads (`maxReplicaLag`). A replica over either limit,
 * or whose lag is unknown, is excluded from reads.
 *
 * @example
 * ```ts
 * const limit: LagLimit = { bytes: 16 * 1024 * 1024, seconds: 5 };
 * ```
 */
export interface LagLimit {
  /** Bytes of WAL behind the primary, ≥ 0. */
  readonly bytes?: number;
  /** Seconds behind the primary, ≥ 0 (fractions allowed). */
  readonly seconds?: number;
}

/** The primary's WAL position at a moment (ms since epoch). */
export interface WalPoint {
  /** When it was observed, ms since epoch. */
  readonly at: number;
  /** The position. */
  readonly lsn: bigint;
}

/**
 * Positions the primary was observed at, strictly increasing in `lsn` and `at`; the last one
 * is the latest known position.
 */
export type WalHistory = readonly WalPoint[];

/** The most points a history keeps (beyond that the oldest unresolved one is kept, the next dropped). */
export const MAX_WAL_POINTS = 4096;

/**
 * Appends an observation when it is ahead of the last one. Pure (returns `history` itself
 * when nothing is added).
 *
 * @param history the history so far
 * @param point a new observation
 * @param maxPoints cap; beyond it the second-oldest point is dropped, so the oldest (which
 *   bounds the largest lag) survives
 *
 * @example
 * ```ts
 * addWalPoint([{ at: 1, lsn: 5n }], { at: 2, lsn: 5n }); // unchanged: not ahead
 * ```
 */
export function addWalPoint(history: WalHistory, point: WalPoint, maxPoints = MAX_WAL_POINTS): WalHistory {
  const last = history[history.length - 1];
  if (last !== undefined && point.lsn <= last.lsn) return history;
  const next = [...history, point];
  if (next.length > maxPoints) next.splice(1, next.length - maxPoints);
  return next;
}

/**
 * Drops the points every replica has replayed, keeping the latest point. Pure.
 *
 * @param history the history
 * @param replayedByAll the lowest replay position among the replicas still measured (or
 *   `undefined` to keep everything)
 *
 * @example
 * ```ts
 * pruneWalHistory([{ at: 1, lsn: 5n }, { at: 2, lsn: 9n }], 9n); // [{ at: 2, lsn: 9n }]
 * ```
 */
export function pruneWalHistory(history: WalHistory, replayedByAll: bigint | undefined): WalHistory {
  if (replayedByAll === undefined || history.length <= 1) return history;
  let drop = 0;
  while (drop < history.length - 1 && history[drop]!.lsn <= replayedByAll) drop++;
  return drop === 0 ? history : history.slice(drop);
}

/** Bytes and seconds behind; `undefined` fields when unknown. */
export interface LagAmount {
  /** Bytes of WAL behind the latest known primary position. */
  readonly bytes: number | undefined;
  /** Seconds behind (see the module notes), 3 decimals. */
  readonly seconds: number | undefined;
}

const UNKNOWN: LagAmount = Object.freeze({ bytes: undefined, seconds: undefined });

/**
 * How far a replica at `replay` is behind. Pure.
 *
 * @param history the primary's observed positions
 * @param replay the replica's `pg_last_wal_replay_lsn()` (undefined when unknown)
 * @param now the current time, ms since epoch
 *
 * @example
 * ```ts
 * measureLag([{ at: 0, lsn: 10n }], 10n, 5000); // { bytes: 0, seconds: 0 }
 * ```
 */
export function measureLag(history: WalHistory, replay: bigint | undefined, now: number): LagAmount {
  const latest = history[history.length - 1];
  if (latest === undefined || replay === undefined) return UNKNOWN;
  if (replay >= latest.lsn) return { bytes: 0, seconds: 0 };
  let firstUnreplayed = latest;
  for (const p of history) {
    if (p.lsn > replay) {
      firstUnreplayed = p;
      break;
    }
  }
  return {
    bytes: Number(latest.lsn - replay),
    seconds: Math.max(0, Math.round(now - firstUnreplayed.at)) / 1000,
  };
}

/**
 * Whether a lag is within `limit`; an unknown amount that the limit constrains is not. Pure.
 *
 * @param lag the measured lag
 * @param limit the limit
 *
 * @example
 * ```ts
 * withinLagLimit({ bytes: 10, seconds: 0 }, { bytes: 1024 }); // true
 * withinLagLimit({ bytes: undefined, seconds: undefined }, { seconds: 5 }); // false
 * ```
 */
export function withinLagLimit(lag: LagAmount, limit: LagLimit): boolean {
  if (limit.bytes !== undefined && !(lag.bytes !== undefined && lag.bytes <= limit.bytes)) return false;
  if (limit.seconds !== undefined && !(lag.seconds !== undefined && lag.seconds <= limit.seconds)) return false;
  return true;
}

/** The last successful measurement of one replica. */
export interface ReplaySample {
  /** `pg_last_wal_replay_lsn()`; undefined when the server returned NULL (not in recovery). */
  readonly replay: bigint | undefined;
  /** When it was taken, ms since epoch. */
  readonly at: number;
}

/**
 * The per-replica lag entries of a topology snapshot: one for every replica, `excluded` when
 * over `limit`, when never measured, or when its last measurement is older than
 * `staleAfterMillis`. Pure.
 *
 * @param replicas the snapshot's replicas
 * @param samples the last successful measurement of each replica, by address
 * @param history the primary's observed positions
 * @param limit the lag limit
 * @param now current time, ms since epoch
 * @param staleAfterMillis how old a measurement may be and still count
 *
 * @example
 * ```ts
 * const lag = lagEntries(snapshot.replicas, samples, history, { bytes: 1 << 20 }, Date.now(), 3000);
 * const next = withReplicaLag(snapshot, lag);
 * ```
 */
export function lagEntries(
  replicas: readonly DiscoveredNode[],
  samples: ReadonlyMap<string, ReplaySample>,
  history: WalHistory,
  limit: LagLimit,
  now: number,
  staleAfterMillis: number,
): ReadonlyMap<string, ReplicaLag> {
  const out = new Map<string, ReplicaLag>();
  for (const r of replicas) {
    const sample = samples.get(r.address);
    const fresh = sample !== undefined && now - sample.at <= staleAfterMillis;
    const amount = sample === undefined ? UNKNOWN : measureLag(history, sample.replay, now);
    out.set(
      r.address,
      Object.freeze({
        bytes: amount.bytes,
        seconds: amount.seconds,
        replayLsn: sample?.replay === undefined ? undefined : formatLsn(sample.replay),
        sampledAt: sample?.at,
        excluded: !fresh || !withinLagLimit(amount, limit),
        measuredBy: 'lag-monitor',
      }),
    );
  }
  return out;
}

/**
 * How replica lag is measured for a limit: `lag-monitor` (pg-consul's own queries, one
 * connection per node) or `patroni-kv` (the WAL positions in Patroni's member keys, no
 * connection at all).
 */
export type LagMeasurement = 'lag-monitor' | 'patroni-kv';

/** Discovery modes whose updates carry Patroni's member positions (`walPositions`). */
const PATRONI_KV_MODES: ReadonlySet<string> = new Set(['patroni', 'patroni+health']);

/**
 * Chooses how the lag limit is measured (pure decision):
 *
 * | `maxReplicaLag`      | discovery                     | measured by   |
 * |----------------------|-------------------------------|---------------|
 * | not set              | any                           | nothing       |
 * | `bytes` only         | `patroni` / `patroni+health`  | `patroni-kv`  |
 * | `bytes` only         | any other (or a custom source)| `lag-monitor` |
 * | `seconds` (± bytes)  | any                           | `lag-monitor` |
 *
 * Why: Patroni already publishes every member's WAL position in the keys the Patroni modes
 * read, so a byte limit costs no connection and no query there. Those positions cannot give
 * seconds, they are up to one `loop_wait` old, and a replica's is the higher of what it
 * received and what it replayed (so replay held back on a replica that keeps receiving does
 * not show); a `seconds` limit asks for the monitor, whose measurement (replay, once per
 * `lagCheckIntervalMillis`) is fresher and then decides alone — the two are never mixed.
 *
 * @param limit the resolved `maxReplicaLag`
 * @param discoveryMode the discovery mode name; undefined for a custom source
 * @returns the measurement, or undefined when there is no limit
 *
 * @example
 * ```ts
 * chooseLagMeasurement({ bytes: 1 << 24 }, 'patroni');             // 'patroni-kv'
 * chooseLagMeasurement({ bytes: 1 << 24, seconds: 5 }, 'patroni'); // 'lag-monitor'
 * ```
 */
export function chooseLagMeasurement(limit: LagLimit | undefined, discoveryMode: string | undefined): LagMeasurement | undefined {
  if (limit === undefined) return undefined;
  const kv = discoveryMode !== undefined && PATRONI_KV_MODES.has(discoveryMode);
  return kv && limit.bytes !== undefined && limit.seconds === undefined ? 'patroni-kv' : 'lag-monitor';
}

/**
 * Bytes a replica is behind according to Patroni's member keys (pure): the leader's latest
 * known position minus the replica's `xlog_location`, never negative. Unknown when either is
 * missing (no leader key and no running replica reported a position, or the replica's key
 * has none: PostgreSQL not running, Patroni busy with a restart…).
 *
 * @param positions the latest `walPositions` of a Patroni KV answer
 * @param address the replica's address (`host:port`)
 * @returns bytes behind, or undefined when unknown
 *
 * @example
 * ```ts
 * patroniLagBytes({ latest: 500, members: new Map([['10.0.0.2:5432', 200]]) }, '10.0.0.2:5432'); // 300
 * ```
 */
export function patroniLagBytes(positions: PatroniWalPositions | undefined, address: string): number | undefined {
  const latest = positions?.latest;
  const own = positions?.members.get(address);
  if (latest === undefined || own === undefined) return undefined;
  return Math.max(0, latest - own);
}

/**
 * The per-replica lag entries from Patroni's member keys (pure): `bytes` from
 * {@link patroniLagBytes}, `excluded` when over `limit.bytes` or unknown, `measuredBy:
 * 'patroni-kv'`. No seconds (a `seconds` limit is the monitor's, see
 * {@link chooseLagMeasurement}). Positions do not go stale by age: Patroni rewrites a key
 * only when its content changes, so an idle cluster keeps old keys; while Consul cannot be
 * read, the last answer stays in force like the rest of the topology.
 *
 * @param replicas the snapshot's replicas
 * @param positions the latest `walPositions` (undefined: every lag is unknown)
 * @param limit the lag limit (only `bytes` is used)
 * @param readAt when the answer carrying `positions` was read, ms since epoch
 * @returns one entry per replica, by address
 *
 * @example
 * ```ts
 * const lag = patroniLagEntries(snapshot.replicas, update.walPositions, { bytes: 1 << 24 }, Date.now());
 * const next = withReplicaLag(snapshot, lag);
 * ```
 */
export function patroniLagEntries(
  replicas: readonly DiscoveredNode[],
  positions: PatroniWalPositions | undefined,
  limit: LagLimit,
  readAt: number,
): ReadonlyMap<string, ReplicaLag> {
  const out = new Map<string, ReplicaLag>();
  for (const r of replicas) {
    const bytes = patroniLagBytes(positions, r.address);
    const own = positions?.members.get(r.address);
    out.set(
      r.address,
      Object.freeze({
        bytes,
        seconds: undefined,
        replayLsn: undefined,
        sampledAt: bytes === undefined ? undefined : readAt,
        excluded: bytes === undefined || (limit.bytes !== undefined && bytes > limit.bytes),
        measuredBy: 'patroni-kv',
        patroniLsn: own === undefined ? undefined : formatLsn(BigInt(own)),
      }),
    );
  }
  return out;
}
