/**
 * Replica lag for one Pool with `maxReplicaLag`: measured by the lag monitor (its own
 * connections), or from the WAL positions of Patroni's member keys that discovery updates
 * carry (`lagMeasurement: 'patroni-kv'`, no connection). Turns measurements into the lag
 * entries of topology snapshots and logs each replica excluded from or readmitted to reads.
 * @module
 */
import type pg from 'pg';
import type { Logger } from '../log.js';
import type { DiscoveredNode, PatroniWalPositions } from '../topology/node.js';
import { withReplicaLag } from '../topology/snapshot.js';
import type { ReplicaLag, TopologySnapshot } from '../topology/snapshot.js';
import { LagMonitor, pgMonitorClients } from './lag-monitor.js';
import type { MonitorClientFactory } from './lag-monitor.js';
import { patroniLagEntries } from './lag.js';
import type { LagLimit, LagMeasurement } from './lag.js';

/** What the lag tracker needs from the Pool's settings. */
export interface LagSettings {
  /** The pg options the monitor connects with. */
  readonly pg: Readonly<pg.PoolConfig>;
  /** `maxReplicaLag`; no tracking without it. */
  readonly maxReplicaLag?: LagLimit | undefined;
  /** How lag is measured (default: the monitor). */
  readonly lagMeasurement?: LagMeasurement | undefined;
  /** `lagCheckIntervalMillis` (default 1000). */
  readonly lagCheckIntervalMillis?: number | undefined;
  /** The monitor's client factory (tests); default pg.Client with the pool's options. */
  readonly lagMonitorClients?: MonitorClientFactory | undefined;
}

/** What the tracker calls back. */
export interface LagHooks {
  /** The topology now in force. */
  topology(): TopologySnapshot;
  /** A monitor round ended, with the replay position it read on each replica. */
  onRound(replayPositions: ReadonlyMap<string, { replay?: bigint | undefined }>): void;
}

/** See the module description. Inactive (every method a no-op) without `maxReplicaLag`. */
export class LagTracker {
  /** The lag monitor, when lag is measured by connections. */
  readonly monitor: LagMonitor | undefined;
  /** The byte limit measured from Patroni's member keys, else undefined. */
  readonly #kvLimit: LagLimit | undefined;
  /** The latest `walPositions` of a discovery update and when it arrived (kv lag only). */
  #walPositions: PatroniWalPositions | undefined;
  #walPositionsAt = 0;
  readonly #log: Logger;

  /**
   * @param settings the lag settings
   * @param hooks the Pool's side
   * @param log logger (already redacting)
   * @param now clock
   */
  constructor(settings: LagSettings, hooks: LagHooks, log: Logger, now: () => number) {
    this.#log = log;
    this.#kvLimit = settings.lagMeasurement === 'patroni-kv' ? settings.maxReplicaLag : undefined;
    if (settings.maxReplicaLag && this.#kvLimit === undefined) {
      this.monitor = new LagMonitor({
        limit: settings.maxReplicaLag,
        intervalMillis: settings.lagCheckIntervalMillis ?? 1000,
        topology: hooks.topology,
        onRound: () => hooks.onRound(this.monitor!.replayPositions),
        log,
        now,
        connect: settings.lagMonitorClients ?? pgMonitorClients(settings.pg),
      });
    }
  }

  /** Whether lag is tracked at all. */
  get active(): boolean {
    return this.monitor !== undefined || this.#kvLimit !== undefined;
  }

  /**
   * `next` (the snapshot a discovery update made) with lag entries from the update's Patroni
   * positions, when lag is measured from them; else `next` unchanged (the monitor's rounds
   * bring its entries). The nodes' own positions do not move the snapshot, the entries do.
   * @param next the snapshot from the update
   * @param walPositions the update's member positions
   * @param now the time
   */
  onUpdate(next: TopologySnapshot, walPositions: PatroniWalPositions | undefined, now: number): TopologySnapshot {
    if (this.#kvLimit === undefined) return next;
    if (walPositions !== this.#walPositions) {
      // patroni+health re-sends the same positions object with every health answer: keep its time.
      this.#walPositions = walPositions;
      this.#walPositionsAt = now;
    }
    return this.measured(next, next);
  }

  /**
   * `current` with the monitor's or Patroni's latest entries, each exclusion or readmission
   * against `previous` logged.
   * @param previous the snapshot to compare with
   * @param current the snapshot to measure
   */
  measured(previous: TopologySnapshot, current: TopologySnapshot): TopologySnapshot {
    const next = withReplicaLag(current, this.#entries(current.replicas));
    this.#logExclusions(previous, next);
    return next;
  }

  /**
   * Before a routing change takes effect: new replicas start excluded until measured, departed
   * ones lose their entry. Returns the snapshot to use and whether to measure at once (a new
   * replica, or a new primary to measure against).
   * @param previous the snapshot in force
   * @param next the one about to be
   */
  cover(previous: TopologySnapshot, next: TopologySnapshot): { next: TopologySnapshot; measureNow: boolean } {
    if (!this.active) return { next, measureNow: false };
    const covered = next.lag.size === next.replicas.length && next.replicas.every((r) => next.lag.has(r.address));
    return {
      next: covered ? next : withReplicaLag(next, this.#entries(next.replicas)),
      measureNow: !covered || next.primary?.address !== previous.primary?.address,
    };
  }

  /** The lag entries of `replicas` from the monitor or from the latest Patroni positions. */
  #entries(replicas: readonly DiscoveredNode[]): ReadonlyMap<string, ReplicaLag> {
    if (this.#kvLimit !== undefined) return patroniLagEntries(replicas, this.#walPositions, this.#kvLimit, this.#walPositionsAt);
    return this.monitor?.entries(replicas) ?? new Map();
  }

  /** Logs each replica that `next` readmits to reads or excludes from them, compared with `previous`. */
  #logExclusions(previous: TopologySnapshot, next: TopologySnapshot): void {
    if (next.readReplicas === previous.readReplicas) return;
    for (const r of next.replicas) {
      const was = previous.readReplicas.includes(r);
      const is = next.readReplicas.includes(r);
      if (was === is) continue;
      const lag = next.lag.get(r.address);
      this.#log('info', is ? 'replica readmitted to reads: within maxReplicaLag' : 'replica excluded from reads: over maxReplicaLag or not measured', {
        node: r.address,
        bytes: lag?.bytes,
        seconds: lag?.seconds,
        measuredBy: lag?.measuredBy,
      });
    }
  }
}
