import type { EventEmitter } from 'node:events';
import type pg from 'pg';
import type { DiscoverySource } from './discovery/discovery-source.js';
import type { PoolEvents } from './events.js';
import type { Logger } from './log.js';
import { NodePool } from './pooling/node-pool.js';
import type { RetryDeps } from './retry/run-with-retry.js';
import { backoffDelay } from './retry/backoff.js';
import type { DiscoveredNode, PatroniWalPositions, TopologyUpdate } from './topology/node.js';
import { selectCaughtUpReplica, selectPrimary, selectReplica } from './topology/select.js';
import type { CaughtUpSelection, ReadFallback, ReplicaTieBreak, Selection } from './topology/select.js';
import { EMPTY_TOPOLOGY, applyUpdate, expireInvalidations, invalidateNode, withReplicaLag } from './topology/snapshot.js';
import { LagMonitor, pgMonitorClients } from './routing/lag-monitor.js';
import type { MonitorClientFactory } from './routing/lag-monitor.js';
import { patroniLagEntries } from './routing/lag.js';
import type { LagLimit, LagMeasurement } from './routing/lag.js';
import type { ReplicaLag, TopologySnapshot } from './topology/snapshot.js';
import { NoPrimaryError, PoolEndedError } from './errors.js';
import { DeadPeerDetector } from './pooling/dead-peer.js';
import type { WatchedNode } from './pooling/dead-peer.js';
import { probeReachable } from './pooling/reachability-probe.js';
import type { ProbeReachable } from './pooling/reachability-probe.js';
import { markReachable, markUnreachable } from './topology/snapshot.js';
import type { Outcome } from './errors.js';
import { noNodeHint } from './retry/no-node-hint.js';
import type { NoNodeSetup } from './retry/no-node-hint.js';

/** Settings the cluster core needs (a subset of the resolved options). */
export interface ClusterSettings {
  readonly pg: Readonly<pg.PoolConfig>;
  readonly failoverTimeoutMillis: number;
  readonly readFallback: ReadFallback;
  readonly retryInitialDelayMillis: number;
  readonly retryMaxDelayMillis: number;
  /** How long a node found read-only is skipped before it is checked again. */
  readonly invalidationMillis: number;
  /** `maxReplicaLag`: replicas over it serve no reads, when set. */
  readonly maxReplicaLag?: LagLimit | undefined;
  /**
   * How `maxReplicaLag` is measured (see `chooseLagMeasurement`): the lag monitor (default),
   * or the `walPositions` of the discovery updates (Patroni KV: no monitor, no connection).
   */
  readonly lagMeasurement?: LagMeasurement | undefined;
  /** How replica selection breaks ties among equally busy replicas (default `rotate`). */
  readonly replicaTieBreak?: ReplicaTieBreak | undefined;
  /** `lagCheckIntervalMillis` (default 1000). */
  readonly lagCheckIntervalMillis?: number | undefined;
  /** The lag monitor's client factory (tests); default pg.Client with the pool's options. */
  readonly lagMonitorClients?: MonitorClientFactory | undefined;
  /** Bound of one new connection when pg's `connectionTimeoutMillis` is not set, ms (0 = none). Default 0. */
  readonly connectTimeoutMillis?: number | undefined;
  /** Dead-peer detection (see lib/pooling/dead-peer.ts); undefined = off. */
  readonly deadPeer?: { readonly afterMillis: number; readonly timeoutMillis: number; readonly attempts: number } | undefined;
  /** The longest `end()` waits for checked-out clients before fencing what is left, ms (0 or undefined: no bound). */
  readonly endTimeoutMillis?: number | undefined;
  /** The reachability probe (tests); default {@link probeReachable}. */
  readonly probe?: ProbeReachable | undefined;
  /** What discovery looks for, to word the error when no node is ever found (see `noNodeHint`). */
  readonly setup?: NoNodeSetup | undefined;
}

/** Probe deadline at `end()`: a node that answers nothing this fast while work is pending on it is fenced. */
const END_PROBE_MILLIS = 500;

/** The emitters events are delivered to: the Pool facade and its two role views. */
export interface ClusterEmitters {
  readonly pool: EventEmitter;
  readonly primary: EventEmitter;
  readonly replica: EventEmitter;
}

type PgEvent = 'connect' | 'acquire' | 'release' | 'remove' | 'error';

/** The clock of node pools when dead-peer detection is off (checkout ticks are then never read). */
const STILL_CLOCK = Object.freeze({ tick: 0 });

/**
 * The state behind a {@link Pool}: the topology snapshot, the node pools, the discovery
 * source and the waiters of the retry loop. Internal; the Pool facade and its views
 * delegate to it.
 */
export class Cluster {
  readonly #settings: ClusterSettings;
  readonly #source: DiscoverySource;
  readonly #emitters: ClusterEmitters;
  readonly #log: Logger;
  readonly #now: () => number;
  #topology: TopologySnapshot = EMPTY_TOPOLOGY;
  readonly #pools = new Map<string, NodePool>();
  readonly #retiring = new Set<NodePool>();
  readonly #waiters = new Set<() => void>();
  #ending = false;
  #ended = false;
  #endPromise: Promise<void> | undefined;
  #turn = 0;
  #lastDiscoveryError: Error | undefined;
  // failover timing
  #confirmed: DiscoveredNode | undefined;
  #troubleSince: number | undefined;
  #primaryNamedAt: number | undefined;
  // read routing (lag monitor, read-your-writes, auto read routing)
  readonly #lagMonitor: LagMonitor | undefined;
  /** The byte limit measured from Patroni's member keys (`lagMeasurement: 'patroni-kv'`), else undefined. */
  readonly #kvLagLimit: LagLimit | undefined;
  /** The latest `walPositions` of a discovery update and when it arrived (kv lag only). */
  #walPositions: PatroniWalPositions | undefined;
  #walPositionsAt = 0;
  readonly #tieBreak: ReplicaTieBreak;
  /** The highest replay position seen on each current replica (lag monitor, session checks). */
  readonly #replayed = new Map<string, bigint>();
  #autoReadDeps: RetryDeps | undefined;
  /** Dead-peer detection, when on. */
  readonly #detector: DeadPeerDetector | undefined;

  /**
   * @param settings resolved settings
   * @param source where the topology comes from (started here)
   * @param emitters where events go
   * @param log logger (already redacting)
   * @param now clock (injectable for tests)
   */
  constructor(settings: ClusterSettings, source: DiscoverySource, emitters: ClusterEmitters, log: Logger, now: () => number = Date.now) {
    this.#settings = settings;
    this.#source = source;
    this.#emitters = emitters;
    this.#log = log;
    this.#now = now;
    this.#tieBreak = settings.replicaTieBreak ?? 'rotate';
    this.#kvLagLimit = settings.lagMeasurement === 'patroni-kv' ? settings.maxReplicaLag : undefined;
    if (settings.maxReplicaLag && this.#kvLagLimit === undefined) {
      this.#lagMonitor = new LagMonitor({
        limit: settings.maxReplicaLag,
        intervalMillis: settings.lagCheckIntervalMillis ?? 1000,
        topology: () => this.#topology,
        onRound: () => this.#onLagRound(),
        log,
        now,
        connect: settings.lagMonitorClients ?? pgMonitorClients(settings.pg),
      });
    }
    const probe = settings.probe ?? probeReachable;
    if (settings.deadPeer) {
      this.#detector = new DeadPeerDetector(settings.deadPeer, {
        nodes: () => this.#watchedNodes(),
        onDead: (address, reason) => this.#onDeadPeer(address, reason),
        onAlive: (address) => this.#onPeerBack(address),
        onProbe: (address, reachable, reason) => this.#log('debug', 'dead-peer probe', { node: address, reachable, reason }),
        probe,
        now,
      });
    }
    this.#probe = probe;
  }

  readonly #probe: ProbeReachable;

  /** Starts discovery. Called once, after the Pool and its views exist. */
  start(): void {
    this.#source.start({
      onUpdate: (update) => this.#onUpdate(update),
      onError: (error, info) => this.#onDiscoveryError(error, info),
      onSkippedEntry: (reason) => this.#log('debug', 'skipped a malformed discovery entry', { reason }),
    });
    this.#lagMonitor?.start();
    this.#detector?.start();
  }

  /** The topology now in force. */
  get topology(): TopologySnapshot {
    return this.#topology;
  }

  /** Whether `end()` was called. */
  get ending(): boolean {
    return this.#ending;
  }

  /** Whether `end()` finished. */
  get ended(): boolean {
    return this.#ended;
  }

  /** HTTP requests the discovery source made. */
  get discoveryRequests(): number {
    return this.#source.requestCount;
  }

  /** Requests waiting in the retry loop for a topology change. */
  get waiters(): number {
    return this.#waiters.size;
  }

  /** Sums a pg.Pool counter over the node pools (optionally of one role), retiring ones included. */
  count(counter: 'totalCount' | 'idleCount' | 'waitingCount' | 'expiredCount', role?: 'primary' | 'replica'): number {
    let sum = 0;
    for (const p of this.#pools.values()) if (!role || p.role === role) sum += p.pg[counter];
    for (const p of this.#retiring) if (!role || p.role === role) sum += p.pg[counter];
    return sum;
  }

  /**
   * Selection for an intent; expires stale invalidations first.
   * @param intent the path
   * @param fallback where a read goes without a readable replica (default: `readFallback`)
   */
  select(intent: 'primary' | 'replica', fallback: ReadFallback = this.#settings.readFallback): Selection {
    // Invalidations are rare: skip the clock read and the scan when there is none.
    if (this.#topology.invalidated.size > 0) this.#setTopology(expireInvalidations(this.#topology, this.#now()));
    if (intent === 'primary') return selectPrimary(this.#topology);
    return selectReplica(this.#topology, this.#replicaLoad, fallback, this.#turn++, this.#tieBreak);
  }

  /**
   * Selection for a read that must see WAL position `position` (read-your-writes): a
   * replica known to have replayed it, else (without the lag monitor) a replica to verify,
   * else the primary. See `selectCaughtUpReplica`.
   * @param position the position the read must see
   * @param allowVerify whether a replica may be checked at all (false: known replicas or the primary)
   */
  selectCaughtUp(position: bigint, allowVerify = true): CaughtUpSelection {
    this.#setTopology(expireInvalidations(this.#topology, this.#now()));
    return selectCaughtUpReplica(
      this.#topology,
      this.#replicaLoad,
      (a) => this.#replayed.get(a),
      position,
      allowVerify && this.#lagMonitor === undefined,
      this.#turn++,
      this.#tieBreak,
    );
  }

  /** Records that the replica at `address` has replayed at least `lsn` (ignored for non-replicas). */
  noteReplayed(address: string, lsn: bigint): void {
    const known = this.#replayed.get(address);
    if (known !== undefined && known >= lsn) return;
    if (!this.#topology.replicas.some((r) => r.address === address)) return;
    this.#replayed.set(address, lsn);
  }

  /** Whether the lag monitor runs (`maxReplicaLag` is set). */
  get lagMonitored(): boolean {
    return this.#lagMonitor !== undefined;
  }

  /**
   * The retry dependencies of the read path with another selection (sessions).
   * @param select picks the node of each attempt
   */
  retryDepsWith(select: () => Selection): RetryDeps {
    return { ...this.retryDeps('replica'), select };
  }

  /**
   * The retry dependencies of statements `autoReadRouting` sends to the read path: like the
   * read path's, except that without a readable replica they go to the primary whatever
   * `readFallback` says (auto routing never makes a statement fail that would have run).
   */
  autoReadDeps(): RetryDeps {
    return (this.#autoReadDeps ??= this.retryDepsWith(() => this.select('replica', 'primary')));
  }

  /** The node pool for a node in a role, created on first use. */
  nodePool(node: DiscoveredNode, role: 'primary' | 'replica'): NodePool {
    // Almost every statement goes to the same node as the previous one of its role.
    const hit = this.#lastPool[role];
    // Compare addresses: every discovery answer brings new node objects.
    if (hit !== undefined && hit.address === node.address && !hit.retired) return hit;
    const found = this.#findOrCreatePool(node, role);
    this.#lastPool[role] = found;
    return found;
  }

  /** The node pool each role used last (a one-entry cache in front of #pools). */
  readonly #lastPool: { primary?: NodePool; replica?: NodePool } = {};
  /** Replica node pools by address (the same objects as in #pools), for the per-read load lookup. */
  readonly #replicaPools = new Map<string, NodePool>();
  readonly #replicaLoad = (address: string): number => this.#replicaPools.get(address)?.load ?? 0;

  #findOrCreatePool(node: DiscoveredNode, role: 'primary' | 'replica'): NodePool {
    // After end() no new pool may open (it would never be ended).
    if (this.#ending) throw new PoolEndedError();
    const key = `${role}|${node.address}`;
    let pool = this.#pools.get(key);
    if (!pool) {
      pool = new NodePool(this.#settings.pg, node, role, {
        forward: (event, args, from) => this.#forward(event, args, from),
        wants: (event, role) => this.#emitters[role].listenerCount(event) > 0 || this.#emitters.pool.listenerCount(event) > 0,
        confirmed: (from) => this.#onConfirmed(from),
        checkedOutError: (err, from) =>
          this.#log('debug', 'connection of a checked-out client failed', { node: from.address, error: err.message }),
      }, { connectTimeoutMillis: this.#settings.connectTimeoutMillis ?? 0, clock: this.#detector?.clock ?? STILL_CLOCK });
      this.#pools.set(key, pool);
      if (role === 'replica') this.#replicaPools.set(node.address, pool);
    }
    return pool;
  }

  /** The dependencies of the retry loop, bound to this cluster (made once per intent: no per-query allocation). */
  retryDeps(intent: 'primary' | 'replica'): RetryDeps {
    return (this.#deps[intent] ??= this.#makeRetryDeps(intent));
  }

  readonly #deps: { primary?: RetryDeps; replica?: RetryDeps } = {};

  #makeRetryDeps(intent: 'primary' | 'replica'): RetryDeps {
    return {
      select: () => this.select(intent),
      invalidate: (address) => this.#invalidate(address),
      refresh: () => this.#source.refresh(),
      waitForChange: (ms) => this.#waitForChange(ms),
      isEnding: () => this.#ending,
      now: this.#now,
      backoff: (attempt) =>
        backoffDelay(attempt, { initialMillis: this.#settings.retryInitialDelayMillis, maxMillis: this.#settings.retryMaxDelayMillis }),
      failoverTimeoutMillis: this.#settings.failoverTimeoutMillis,
      discovered: () => this.#topology.discovered,
      lastDiscoveryError: () => this.#lastDiscoveryError,
      noNodeHint: () => this.#noNodeHint(intent),
      onRetry: (info) => this.#onRetry(intent, info),
      onPrimaryTrouble: () => {
        this.#troubleSince ??= this.#now();
      },
      suspect: (node) => {
        if (!this.#ending && !this.#topology.unreachable.has(node.address)) this.#detector?.suspect(node);
      },
    };
  }

  /** Why no node of that role is available, worded as the fix; undefined without a `setup`. */
  #noNodeHint(intent: 'primary' | 'replica'): string | undefined {
    const setup = this.#settings.setup;
    if (setup === undefined) return undefined;
    const t = this.#topology;
    return noNodeHint(intent, setup, {
      discovered: t.discovered,
      nodes: t.nodes.length,
      lastError: this.#lastDiscoveryError,
      tagsSeen: [...new Set(t.nodes.flatMap((n) => n.tags))],
      readOnlyPrimaries: [...t.invalidated.keys()],
    });
  }

  /**
   * Resolves with the topology once it names a primary; rejects with NoPrimaryError after
   * `timeoutMillis`, or PoolEndedError when the pool ends first.
   */
  async waitForPrimary(timeoutMillis: number): Promise<TopologySnapshot> {
    const deadline = this.#now() + timeoutMillis;
    for (;;) {
      if (this.#ending) throw new PoolEndedError();
      if (this.#topology.primary) return this.#topology;
      const remaining = deadline - this.#now();
      if (remaining <= 0) {
        const why = this.#noNodeHint('primary') ?? (this.#topology.discovered ? 'no primary is listed' : 'discovery has not answered');
        throw new NoPrimaryError(`no primary after ${timeoutMillis} ms: ${why}`, { cause: this.#lastDiscoveryError });
      }
      await this.#waitForChange(remaining);
    }
  }

  /**
   * Stops discovery (aborting the in-flight request), wakes every waiting retry loop (they
   * fail with PoolEndedError) and ends every node pool: idle connections close at once,
   * checked-out ones when released. Bounded: a node with work pending that does not answer a
   * quick probe is fenced at once (a black-holed node costs about 0.5 s, not a TCP timeout),
   * and whatever is still open after `endTimeoutMillis` is fenced. Idempotent.
   */
  end(): Promise<void> {
    if (!this.#endPromise) {
      this.#ending = true;
      this.#wakeWaiters();
      const detectorStopped = this.#detector?.stop();
      this.#endPromise = (async () => {
        await Promise.all([
          detectorStopped,
          this.#source.stop().catch((err: unknown) => this.#log('debug', 'discovery stop failed', { error: String(err) })),
          this.#lagMonitor?.stop(),
        ]);
        const all = [...this.#pools.values(), ...this.#retiring];
        this.#pools.clear();
        this.#replicaPools.clear();
        await this.#drainBounded(all);
        this.#retiring.clear();
        this.#ended = true;
      })();
    }
    return this.#endPromise;
  }

  /**
   * Drains `pools` (see {@link Cluster.end}) within `endTimeoutMillis`, fencing dead or
   * overdue ones: a fenced pool's queued checkouts fail at once, so the wait for them ends too.
   */
  async #drainBounded(pools: readonly NodePool[]): Promise<void> {
    // Accepted work first (pg-pool's end() contract): checkouts queued in a node pool are
    // served as clients come back (within failoverTimeoutMillis at most), then the pools end.
    const drained = (async () => {
      await Promise.all(pools.map((p) => p.drained(this.#settings.failoverTimeoutMillis)));
      await Promise.all(pools.map((p) => p.retire()));
    })();
    const busy = [...new Map(pools.filter((p) => p.busy).map((p) => [p.address, p])).values()];
    const abort = new AbortController();
    const probes = busy.map(async (p) => {
      const r = await this.#probe(p.node.host, p.node.port, END_PROBE_MILLIS, abort.signal);
      if (r.reachable || abort.signal.aborted) return;
      this.#log('warn', 'end(): a node with work pending did not answer; closing its connections', { node: p.address, reason: r.reason });
      for (const q of pools) if (q.address === p.address) void q.fence(`no answer at end(): ${r.reason}`);
    });
    try {
      await this.#drainWithin(pools, drained);
    } finally {
      // Nothing is left open when end() resolves: the probes' sockets are closed too.
      abort.abort();
      await Promise.all(probes);
    }
  }

  /** Waits for `drained`, fencing every pool once `endTimeoutMillis` has passed. */
  async #drainWithin(pools: readonly NodePool[], drained: Promise<unknown>): Promise<void> {
    const limit = this.#settings.endTimeoutMillis ?? 0;
    if (limit === 0) {
      await drained;
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const overdue = new Promise<'overdue'>((resolve) => {
      timer = setTimeout(() => resolve('overdue'), limit);
      timer.unref();
    });
    const first = await Promise.race([drained, overdue]);
    clearTimeout(timer);
    if (first === 'overdue') {
      this.#log('warn', `end(): connections still checked out after endTimeoutMillis (${limit} ms); closing them`, {});
      await Promise.all(pools.map((p) => p.fence(`end() waited ${limit} ms`)));
    }
  }

  #onUpdate(update: TopologyUpdate): void {
    if (this.#ending) return;
    this.#lastDiscoveryError = undefined;
    const now = this.#now();
    const next = applyUpdate(this.#topology, update, now);
    if (this.#kvLagLimit === undefined) {
      this.#setTopology(next);
      return;
    }
    // Patroni's member positions: the nodes' own `xlogLocation` do not move the snapshot
    // (applyUpdate ignores them), the lag entries do — `lag` alone, or `topology` when the
    // excluded set changes.
    if (update.walPositions !== this.#walPositions) {
      // patroni+health re-sends the same positions object with every health answer: keep its time.
      this.#walPositions = update.walPositions;
      this.#walPositionsAt = now;
    }
    const measured = withReplicaLag(next, this.#lagEntries(next.replicas));
    this.#logExclusions(next, measured);
    this.#setTopology(measured);
  }

  /** The lag entries of `replicas` from the monitor or from the latest Patroni positions. */
  #lagEntries(replicas: readonly DiscoveredNode[]): ReadonlyMap<string, ReplicaLag> {
    if (this.#kvLagLimit !== undefined) return patroniLagEntries(replicas, this.#walPositions, this.#kvLagLimit, this.#walPositionsAt);
    return this.#lagMonitor?.entries(replicas) ?? new Map();
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

  #onDiscoveryError(error: Error, info: { attempt: number; retryInMillis: number }): void {
    if (this.#ending) return;
    this.#lastDiscoveryError = error;
    this.#log('warn', 'discovery round failed; keeping the last known topology', {
      error: error.message,
      attempt: info.attempt,
      retryInMillis: info.retryInMillis,
    });
    this.#emit(undefined, 'discoveryError', [{ error, attempt: info.attempt, retryInMillis: info.retryInMillis }]);
  }

  #invalidate(address: string): void {
    const now = this.#now();
    this.#log('info', 'primary candidate is read-only; skipping it', { node: address });
    this.#setTopology(invalidateNode(this.#topology, address, now, now + this.#settings.invalidationMillis));
  }

  #onLagRound(): void {
    const monitor = this.#lagMonitor;
    if (this.#ending || !monitor) return;
    for (const [address, sample] of monitor.replayPositions) if (sample.replay !== undefined) this.noteReplayed(address, sample.replay);
    const previous = this.#topology;
    const next = withReplicaLag(previous, monitor.entries(previous.replicas));
    this.#logExclusions(previous, next);
    this.#setTopology(next);
  }

  #setTopology(next: TopologySnapshot): void {
    const previous = this.#topology;
    if (next === previous) return;
    if (next.version === previous.version) {
      // Only lag numbers changed: no routing change, no `topology` event.
      this.#topology = next;
      this.#emit(undefined, 'lag', [{ previous, current: next }]);
      return;
    }
    let measureNow = false;
    if (this.#lagMonitor || this.#kvLagLimit !== undefined) {
      const covered = lagCoversReplicas(next);
      // New replicas start excluded until measured; departed ones lose their entry.
      if (!covered) next = withReplicaLag(next, this.#lagEntries(next.replicas));
      measureNow = !covered || next.primary?.address !== previous.primary?.address;
    }
    for (const address of [...this.#replayed.keys()]) {
      if (!next.replicas.some((r) => r.address === address)) this.#replayed.delete(address);
    }
    this.#topology = next;
    if (measureNow) this.#lagMonitor?.poke();
    const now = this.#now();
    if (next.primary && next.primary.address !== this.#confirmed?.address && next.primary.address !== previous.primary?.address) {
      this.#primaryNamedAt = now;
    }
    if (previous.primary && next.primary?.address !== previous.primary.address) this.#troubleSince ??= now;
    this.#reconcile(next);
    this.#log('debug', 'topology changed', {
      version: next.version,
      primary: next.primary?.address,
      replicas: next.replicas.map((r) => r.address),
      ...(next.readReplicas !== next.replicas ? { readReplicas: next.readReplicas.map((r) => r.address) } : {}),
    });
    this.#emit(undefined, 'topology', [{ previous, current: next }]);
    if (next.lag !== previous.lag) this.#emit(undefined, 'lag', [{ previous, current: next }]);
    this.#wakeWaiters();
  }

  /**
   * Stops using node pools whose node lost the role they were opened for. A replica promoted
   * to primary drains (its reads finish); every other departure — gone from discovery,
   * failing its checks, demoted, found read-only or unreachable — fences: every socket to the
   * node is destroyed at once, in use or not.
   */
  #reconcile(t: TopologySnapshot): void {
    const replicas = new Set(t.replicas.map((r) => r.address));
    for (const [key, pool] of this.#pools) {
      const keep = pool.role === 'primary' ? pool.address === t.primary?.address : replicas.has(pool.address);
      if (keep) continue;
      this.#pools.delete(key);
      if (this.#replicaPools.get(pool.address) === pool) this.#replicaPools.delete(pool.address);
      if (this.#lastPool[pool.role] === pool) this.#lastPool[pool.role] = undefined;
      this.#retiring.add(pool);
      const promoted = pool.role === 'replica' && pool.address === t.primary?.address;
      const why = promoted ? undefined : departureReason(pool, t);
      this.#log('debug', promoted ? 'draining read connections of a promoted replica' : 'fencing a node that left its role', {
        node: pool.address,
        role: pool.role,
        reason: why,
      });
      void (why === undefined ? pool.retire() : pool.fence(why)).then(() => this.#retiring.delete(pool));
    }
  }

  /** The nodes the dead-peer detector watches: those with node pools, and those marked unreachable. */
  #watchedNodes(): WatchedNode[] {
    const byAddress = new Map<string, WatchedNode>();
    for (const pool of this.#pools.values()) {
      const seen = byAddress.get(pool.address);
      byAddress.set(pool.address, {
        address: pool.address,
        host: pool.node.host,
        port: pool.node.port,
        oldestCheckoutTick: lowest(seen?.oldestCheckoutTick, pool.oldestCheckoutTick),
        lastReleaseTick: highest(seen?.lastReleaseTick, pool.lastReleaseTick),
        dead: false,
      });
    }
    for (const address of this.#topology.unreachable.keys()) {
      const node = this.#topology.nodes.find((n) => n.address === address);
      if (node) byAddress.set(address, { address, host: node.host, port: node.port, oldestCheckoutTick: undefined, dead: true });
    }
    return [...byAddress.values()];
  }

  #onDeadPeer(address: string, reason: string): void {
    if (this.#ending) return;
    const node = this.#topology.nodes.find((n) => n.address === address);
    this.#log('warn', 'node did not answer the dead-peer probe; fencing it until it answers or the topology changes', { node: address, reason });
    const next = markUnreachable(this.#topology, address, this.#now(), reason);
    // Not listed any more (or already marked): fence whatever pools are left for it.
    if (next === this.#topology) {
      for (const pool of this.#pools.values()) if (pool.address === address) void pool.fence(`dead-peer probe failed: ${reason}`);
      return;
    }
    this.#setTopology(next);
    if (node) this.#emit(undefined, 'unreachable', [{ node, reason }]);
  }

  #onPeerBack(address: string): void {
    if (this.#ending) return;
    const node = this.#topology.nodes.find((n) => n.address === address);
    this.#log('info', 'an unreachable node answers again; routing to it resumes', { node: address });
    this.#setTopology(markReachable(this.#topology, address, this.#now()));
    if (node) this.#emit(undefined, 'reachable', [{ node }]);
  }

  #onConfirmed(pool: NodePool): void {
    // A connection that was already opening when its pool was retired can still pass the
    // role check: it says nothing about where writes go now.
    if (this.#ending || pool.retired || pool.address !== this.#topology.primary?.address) return;
    const now = this.#now();
    const from = this.#confirmed;
    if (from?.address !== pool.address) {
      if (from) {
        const since = this.#troubleSince ?? this.#primaryNamedAt ?? now;
        this.#emit(undefined, 'failover', [
          { from, to: pool.node, durationMillis: now - since, sinceTopologyChangeMillis: now - (this.#primaryNamedAt ?? now) },
        ]);
        this.#log('info', 'writes moved to a new primary', { from: from.address, to: pool.address, durationMillis: now - since });
      }
      this.#confirmed = pool.node;
    }
    this.#troubleSince = undefined;
  }

  #onRetry(role: 'primary' | 'replica', info: { attempt: number; delayMillis: number; node: string | undefined; error: Error; outcome: Outcome }): void {
    this.#log('debug', 'retrying', { role, attempt: info.attempt, delayMillis: info.delayMillis, node: info.node, error: info.error.message });
    this.#emit(role, 'retry', [{ role, ...info }]);
  }

  #waitForChange(ms: number): Promise<void> {
    if (this.#ending) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      // Not unref'd: a statement waiting out a failover keeps the process alive, as a
      // pending pg.Pool checkout does.
      const timer = setTimeout(done, ms);
      this.#waiters.add(done);
    });
  }

  #wakeWaiters(): void {
    for (const w of [...this.#waiters]) w();
  }

  #forward(event: PgEvent, args: unknown[], from: NodePool): void {
    if (event === 'error') {
      const delivered = this.#emit(from.role, 'error', args);
      if (!delivered) {
        this.#log('warn', 'idle client error (no error listener on the pool)', {
          node: from.address,
          error: (args[0] as Error | undefined)?.message,
        });
      }
      return;
    }
    this.#emit(from.role, event, args);
  }

  /**
   * Emits on the Pool and on the view of `role` (when given). `error` is only emitted where
   * a listener exists, so it can never crash the process. Returns whether anyone listened.
   */
  #emit<K extends keyof PoolEvents>(role: 'primary' | 'replica' | undefined, event: K, args: unknown[]): boolean {
    let delivered = false;
    const targets = role ? [this.#emitters[role], this.#emitters.pool] : [this.#emitters.pool];
    for (const target of targets) {
      if (target.listenerCount(event) === 0) continue;
      delivered = true;
      try {
        target.emit(event, ...args);
      } catch (err) {
        this.#log('error', `a '${String(event)}' listener threw`, { error: String(err) });
      }
    }
    return delivered;
  }
}

/** The lower of two optional numbers (undefined when both are). */
function lowest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

/** The higher of two optional numbers (undefined when both are). */
function highest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.max(a, b);
}

/** Why a node pool's node left its role in `t` (secret-free, for logs and errors). */
function departureReason(pool: NodePool, t: TopologySnapshot): string {
  const unreachable = t.unreachable.get(pool.address);
  if (unreachable) return `dead-peer probe failed: ${unreachable.reason}`;
  const listed = t.nodes.find((n) => n.address === pool.address);
  if (!listed) return 'gone from discovery (deregistered or failing its checks)';
  if (t.invalidated.has(pool.address)) return 'found read-only';
  return pool.role === 'primary' ? `no longer the primary (now ${listed.role})` : `no longer a replica (now ${listed.role})`;
}

/** Whether the snapshot's lag map has exactly one entry per replica. */
function lagCoversReplicas(t: TopologySnapshot): boolean {
  return t.lag.size === t.replicas.length && t.replicas.every((r) => t.lag.has(r.address));
}
