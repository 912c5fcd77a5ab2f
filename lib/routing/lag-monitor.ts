/**
 * The lag monitor: while `maxReplicaLag` is set, once per `lagCheckIntervalMillis` it asks
 * the primary for its WAL position and every replica for its replay and receive positions —
 * one tiny query per node per interval, all in parallel, each on one dedicated connection per
 * node kept open between rounds (not taken from the node pools, so it never competes with the
 * application's statements and never shows in the pool's counters or events). The numbers go
 * through the pure functions of `lag.ts`; the pool installs them in the topology.
 *
 * Nothing here runs on the query path. Rounds never overlap (the next one is scheduled when
 * the previous one finished); the timer is `unref()`'d; `stop()` closes every connection.
 *
 * @example
 * ```ts
 * const monitor = new LagMonitor({ limit: { bytes: 1 << 20 }, intervalMillis: 1000, pg: resolved.pg,
 *   topology: () => cluster.topology, onRound: () => cluster.applyLag(), log, now: Date.now });
 * monitor.start();
 * await monitor.stop();
 * ```
 * @module
 */
import pg from 'pg';
import type { Logger } from '../log.js';
import { nodePoolConfig } from '../pooling/node-config.js';
import type { DiscoveredNode } from '../topology/node.js';
import type { ReplicaLag, TopologySnapshot } from '../topology/snapshot.js';
import { addWalPoint, lagEntries, pruneWalHistory } from './lag.js';
import type { LagLimit, ReplaySample, WalHistory } from './lag.js';
import { parseLsn } from './lsn.js';

/** The primary's query: its current WAL write position. */
export const PRIMARY_LAG_QUERY = 'SELECT pg_current_wal_lsn()::text AS lsn';

/** A replica's query: what it has replayed and what it has received. */
export const REPLICA_LAG_QUERY = 'SELECT pg_last_wal_replay_lsn()::text AS replay, pg_last_wal_receive_lsn()::text AS receive';

/** The part of a pg.Client the monitor uses (tests pass fakes). */
export interface MonitorClient {
  /** Opens the connection. */
  connect(): Promise<unknown>;
  /** Runs one statement. */
  query(text: string): Promise<{ rows: Array<Record<string, unknown>> }>;
  /** Closes the connection. */
  end(): Promise<void>;
  /** Connection errors while idle arrive here. */
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/** Creates the monitor's client for a node; `timeoutMillis` bounds connecting and each query. */
export type MonitorClientFactory = (node: DiscoveredNode, timeoutMillis: number) => MonitorClient;

/**
 * The default factory: a pg.Client (or the `Client` class of the pool's options) with the
 * pool's connection options, the node's host and port, `connectionTimeoutMillis` and
 * `query_timeout` set to the timeout, TCP keep-alive, and `application_name` defaulting to
 * `pg-consul lag monitor`.
 *
 * @param pgOptions the pool's pg options
 *
 * @example
 * ```ts
 * const connect = pgMonitorClients(resolved.pg);
 * const client = connect(node, 1000);
 * ```
 */
export function pgMonitorClients(pgOptions: Readonly<pg.PoolConfig>): MonitorClientFactory {
  const Client = ((pgOptions as { Client?: typeof pg.Client }).Client ?? pg.Client) as typeof pg.Client;
  return (node, timeoutMillis) =>
    new Client({
      ...nodePoolConfig(pgOptions, node),
      application_name: pgOptions.application_name ?? 'pg-consul lag monitor',
      connectionTimeoutMillis: timeoutMillis,
      query_timeout: timeoutMillis,
      keepAlive: true,
    } as pg.ClientConfig) as unknown as MonitorClient;
}

/** What the monitor needs. */
export interface LagMonitorOptions {
  /** The limit replicas are held to. */
  readonly limit: LagLimit;
  /** Time between the end of a round and the start of the next, ms. */
  readonly intervalMillis: number;
  /** The topology now in force (which nodes to measure). */
  topology(): TopologySnapshot;
  /** Called after every round (and never after `stop()`). */
  onRound(): void;
  /** Logger (already redacting). */
  readonly log: Logger;
  /** Clock, ms since epoch. */
  readonly now: () => number;
  /** Client factory. */
  readonly connect: MonitorClientFactory;
}

interface Connection {
  readonly client: MonitorClient;
  readonly ready: Promise<unknown>;
  closing: Promise<void> | undefined;
}

type Measured = { readonly lsn: bigint | undefined; readonly receive?: bigint | undefined } | undefined;

/**
 * Measures replica lag in the background. See the module notes.
 */
export class LagMonitor {
  readonly #o: LagMonitorOptions;
  /** Bounds connecting and each query; also how long a round may take at most (twice). */
  readonly #timeoutMillis: number;
  /** A replica measurement older than this is ignored (its lag is unknown: excluded). */
  readonly #staleAfterMillis: number;
  readonly #connections = new Map<string, Connection>();
  #history: WalHistory = [];
  readonly #samples = new Map<string, ReplaySample>();
  #timer: NodeJS.Timeout | undefined;
  #inflight: Promise<void> | undefined;
  #again = false;
  #started = false;
  #stopped = false;
  #rounds = 0;

  /** @param options see {@link LagMonitorOptions} */
  constructor(options: LagMonitorOptions) {
    this.#o = options;
    this.#timeoutMillis = Math.max(options.intervalMillis, 1000);
    this.#staleAfterMillis = 3 * options.intervalMillis + this.#timeoutMillis;
  }

  /** Rounds completed so far. */
  get rounds(): number {
    return this.#rounds;
  }

  /** Starts measuring (the first round runs at once). */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.poke();
  }

  /**
   * Runs a round now (for instance because the topology changed), or right after the one in
   * flight.
   */
  poke(): void {
    if (!this.#started || this.#stopped) return;
    if (this.#inflight) {
      this.#again = true;
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#inflight = this.#round().finally(() => {
      this.#inflight = undefined;
      if (this.#stopped) return;
      if (this.#again) {
        this.#again = false;
        this.poke();
        return;
      }
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.poke();
      }, this.#o.intervalMillis);
      this.#timer.unref();
    });
  }

  /**
   * The lag entries of `replicas` from the latest measurements (pure over the monitor's
   * state; see `lagEntries`).
   *
   * @param replicas the snapshot's replicas
   */
  entries(replicas: readonly DiscoveredNode[]): ReadonlyMap<string, ReplicaLag> {
    return lagEntries(replicas, this.#samples, this.#history, this.#o.limit, this.#o.now(), this.#staleAfterMillis);
  }

  /** The last measured replay position of each replica, by address. */
  get replayPositions(): ReadonlyMap<string, ReplaySample> {
    return this.#samples;
  }

  /** Stops measuring and closes every connection; resolves when they are closed. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const closing = [...this.#connections.keys()].map((key) => this.#close(key));
    await Promise.all([...closing, this.#inflight]);
    // A connection opened while the round was finishing.
    await Promise.all([...this.#connections.keys()].map((key) => this.#close(key)));
  }

  async #round(): Promise<void> {
    const t = this.#o.topology();
    const targets: Array<{ key: string; node: DiscoveredNode; primary: boolean }> = [];
    if (t.primary) targets.push({ key: `primary|${t.primary.address}`, node: t.primary, primary: true });
    for (const r of t.replicas) targets.push({ key: `replica|${r.address}`, node: r, primary: false });
    const wanted = new Set(targets.map((x) => x.key));
    for (const key of [...this.#connections.keys()]) if (!wanted.has(key)) void this.#close(key);

    const results = await Promise.all(targets.map((x) => this.#measure(x.key, x.node, x.primary)));
    if (this.#stopped) return;
    const now = this.#o.now();

    // The latest known primary position: its own answer, or what any replica has received.
    let reference: bigint | undefined;
    results.forEach((m, i) => {
      const candidate = targets[i]!.primary ? m?.lsn : m?.receive;
      if (candidate !== undefined && (reference === undefined || candidate > reference)) reference = candidate;
    });
    if (reference !== undefined) this.#history = addWalPoint(this.#history, { at: now, lsn: reference });

    const replicaAddresses = new Set(t.replicas.map((r) => r.address));
    for (const address of [...this.#samples.keys()]) if (!replicaAddresses.has(address)) this.#samples.delete(address);
    results.forEach((m, i) => {
      const x = targets[i]!;
      if (!x.primary && m !== undefined) this.#samples.set(x.node.address, { replay: m.lsn, at: now });
    });
    let minReplay: bigint | undefined;
    for (const s of this.#samples.values()) {
      if (s.replay !== undefined && (minReplay === undefined || s.replay < minReplay)) minReplay = s.replay;
    }
    this.#history = pruneWalHistory(this.#history, minReplay);
    this.#rounds++;
    try {
      this.#o.onRound();
    } catch (err) {
      this.#o.log('error', 'lag monitor round handler threw', { error: String(err) });
    }
  }

  /** One node's answer, or undefined when it could not be measured (never rejects). */
  async #measure(key: string, node: DiscoveredNode, primary: boolean): Promise<Measured> {
    if (this.#stopped) return undefined;
    let conn = this.#connections.get(key);
    if (!conn) {
      let client: MonitorClient;
      try {
        client = this.#o.connect(node, this.#timeoutMillis);
      } catch (err) {
        this.#o.log('debug', 'lag monitor could not create a client', { node: node.address, error: String(err) });
        return undefined;
      }
      client.on('error', (err: Error) =>
        this.#o.log('debug', 'lag monitor connection failed', { node: node.address, error: err.message }),
      );
      conn = { client, ready: client.connect(), closing: undefined };
      conn.ready.catch(() => undefined);
      this.#connections.set(key, conn);
    }
    try {
      await conn.ready;
      const res = await conn.client.query(primary ? PRIMARY_LAG_QUERY : REPLICA_LAG_QUERY);
      const row = res.rows[0] ?? {};
      return primary ? { lsn: parseLsn(row.lsn) } : { lsn: parseLsn(row.replay), receive: parseLsn(row.receive) };
    } catch (err) {
      this.#o.log('debug', 'lag monitor could not measure a node', { node: node.address, error: (err as Error)?.message });
      if (this.#connections.get(key) === conn) void this.#close(key);
      return undefined;
    }
  }

  #close(key: string): Promise<void> {
    const conn = this.#connections.get(key);
    if (!conn) return Promise.resolve();
    this.#connections.delete(key);
    conn.closing ??= conn.client.end().catch(() => undefined);
    return conn.closing;
  }
}
