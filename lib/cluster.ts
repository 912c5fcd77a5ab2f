import type pg from 'pg';
import type { DiscoverySource } from './discovery/discovery-source.js';
import type { Logger } from './log.js';
import { NodePool } from './pooling/node-pool.js';
import { NodePoolSet } from './pooling/node-pool-set.js';
import type { PoolCounter } from './pooling/node-pool-set.js';
import { EventRouter } from './cluster-events.js';
import type { ClusterEmitters } from './cluster-events.js';
import { FailoverTiming } from './topology/failover-timing.js';
import type { RetryDeps } from './retry/run-with-retry.js';
import { backoffDelay } from './retry/backoff.js';
import type { DiscoveredNode, TopologyUpdate } from './topology/node.js';
import { selectPrimary, selectReplica } from './topology/select.js';
import { ReplayedPositions } from './routing/replayed-positions.js';
import type { CaughtUpSelection, ReadFallback, ReplicaTieBreak, Selection } from './topology/select.js';
import { EMPTY_TOPOLOGY, applyUpdate, expireInvalidations, invalidateNode, markReachable, markUnreachable } from './topology/snapshot.js';
import { LagTracker } from './routing/lag-tracker.js';
import type { TopologySnapshot } from './topology/snapshot.js';
import { PoolEndedError } from './errors.js';
import { DeadPeerDetector } from './pooling/dead-peer.js';
import { probeReachable } from './pooling/reachability-probe.js';
import type { ProbeReachable } from './pooling/reachability-probe.js';
import type { Outcome } from './errors.js';
import { noNodeHint, noNodeState } from './retry/no-node-hint.js';
import { ChangeWaiters } from './retry/change-waiters.js';
import type { ClusterSettings } from './cluster-settings.js';
import { shutDown } from './cluster-shutdown.js';
import { WaitCounts, awaitFirstAnswer, waitForPrimary } from './cluster-waits.js';

export type { ClusterSettings } from './cluster-settings.js';
export type { ClusterEmitters } from './cluster-events.js';

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
  readonly #events: EventRouter;
  readonly #log: Logger;
  readonly #now: () => number;
  #topology: TopologySnapshot = EMPTY_TOPOLOGY;
  readonly #pools: NodePoolSet;
  readonly #waiters = new ChangeWaiters();
  #ending = false; // end() was called (the public `ending`)
  #closing = false; // shutting down: no discovery, no new node pool, waiting statements fail
  #ended = false;
  #endPromise: Promise<void> | undefined;
  #turn = 0;
  #lastDiscoveryError: Error | undefined;
  readonly #failover = new FailoverTiming();
  // read routing (lag, read-your-writes, auto read routing)
  readonly #lag: LagTracker;
  readonly #tieBreak: ReplicaTieBreak;
  /** How far each replica is known to have replayed (lag monitor, session checks). */
  readonly #replayed = new ReplayedPositions();
  #autoReadDeps: RetryDeps | undefined;
  /** Dead-peer detection, when on. */
  readonly #detector: DeadPeerDetector | undefined;
  readonly #probe: ProbeReachable;

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
    this.#events = new EventRouter(emitters, log);
    this.#log = log;
    this.#pools = new NodePoolSet((node, role) => this.#newNodePool(node, role), log);
    this.#now = now;
    this.#tieBreak = settings.replicaTieBreak ?? 'rotate';
    this.#lag = new LagTracker(settings, { topology: () => this.#topology, onRound: (positions) => this.#onLagRound(positions) }, log, now);
    const probe = settings.probe ?? probeReachable;
    if (settings.deadPeer) {
      this.#detector = new DeadPeerDetector(settings.deadPeer, {
        nodes: () => this.#pools.watched(this.#topology),
        onDead: (address, reason) => this.#onDeadPeer(address, reason),
        onAlive: (address) => this.#onPeerBack(address),
        onProbe: (address, reachable, reason) => this.#log('debug', 'dead-peer probe', { node: address, reachable, reason }),
        probe,
        now,
      });
    }
    this.#probe = probe;
  }

  /** Starts discovery. Called once, after the Pool and its views exist. */
  start(): void {
    this.#source.start({
      onUpdate: (update) => this.#onUpdate(update),
      onError: (error, info) => this.#onDiscoveryError(error, info),
      onSkippedEntry: (reason) => this.#log('debug', 'skipped a malformed discovery entry', { reason }),
    });
    this.#lag.monitor?.start();
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
    return this.#waiters.size - this.#waitCounts.count('end');
  }

  /** Sums a pg.Pool counter over the node pools (optionally of one role), retiring ones included. */
  count(counter: PoolCounter, role?: 'primary' | 'replica'): number {
    return this.#pools.count(counter, role);
  }

  /** The clients of the node pools (optionally of one role; connecting, idle or checked out), retiring ones included. */
  clients(role?: 'primary' | 'replica'): pg.Client[] {
    return this.#pools.clients(role);
  }

  /**
   * Selection for an intent; expires stale invalidations first.
   * @param intent the path
   * @param fallback where a read goes without a readable replica (default: `readFallback`)
   */
  select(intent: 'primary' | 'replica', fallback: ReadFallback = this.#settings.readFallback): Selection {
    // Invalidations are rare: skip the clock read and the scan when there is none.
    if (this.#topology.invalidated.size > 0) this.#setTopology(expireInvalidations(this.#topology, this.#now()));
    if (intent === 'primary') {
      // One selection object per primary, not per statement (callers only read it).
      if (this.#primarySelection.node !== this.#topology.primary) this.#primarySelection = selectPrimary(this.#topology);
      return this.#primarySelection;
    }
    return selectReplica(this.#topology, this.#pools.replicaLoad, fallback, this.#turn++, this.#tieBreak);
  }

  #primarySelection: Selection = { node: undefined, role: 'primary' };

  /**
   * Selection for a read that must see WAL position `position` (read-your-writes): a
   * replica known to have replayed it, else (without the lag monitor) a replica to verify,
   * else the primary. See `selectCaughtUpReplica`.
   * @param position the position the read must see
   * @param allowVerify whether a replica may be checked at all (false: known replicas or the primary)
   */
  selectCaughtUp(position: bigint, allowVerify = true): CaughtUpSelection {
    this.#setTopology(expireInvalidations(this.#topology, this.#now()));
    return this.#replayed.select(this.#topology, this.#pools.replicaLoad, position, allowVerify && this.#lag.monitor === undefined, this.#turn++, this.#tieBreak);
  }

  /** Records that the replica at `address` has replayed at least `lsn` (ignored for non-replicas). */
  noteReplayed(address: string, lsn: bigint): void {
    this.#replayed.note(address, lsn, this.#topology.replicas);
  }

  /** Whether the lag monitor runs (`maxReplicaLag` is set). */
  get lagMonitored(): boolean {
    return this.#lag.monitor !== undefined;
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

  /** {@link Cluster.nodePool} as a function value, made once (the statement path passes it on without a new closure). */
  readonly nodePools = (node: DiscoveredNode, role: 'primary' | 'replica'): NodePool => this.nodePool(node, role);

  /** The node pool for a node in a role, created on first use. */
  nodePool(node: DiscoveredNode, role: 'primary' | 'replica'): NodePool {
    return this.#pools.get(node, role);
  }

  #newNodePool(node: DiscoveredNode, role: 'primary' | 'replica'): NodePool {
    // After end() no new pool may open (it would never be ended).
    if (this.#closing) throw new PoolEndedError();
    const events = this.#events;
    return new NodePool(
      this.#settings.pg,
      node,
      role,
      {
        forward: (event, args, from) => events.forward(event, args, from),
        wants: (event, role) => events.wants(event, role),
        confirmed: (from) => this.#onConfirmed(from),
        checkedOutError: (err, from) => this.#log('debug', 'connection of a checked-out client failed', { node: from.address, error: err.message }),
      },
      { connectTimeoutMillis: this.#settings.connectTimeoutMillis ?? 0, clock: this.#detector?.clock ?? STILL_CLOCK },
    );
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
      waitForChange: (ms) => (this.#topology.discovered ? this.#waitForChange(ms) : this.#waitCounts.track(intent, this.#waitForChange(ms))),
      isEnding: () => this.#closing,
      now: this.#now,
      backoff: (attempt) =>
        backoffDelay(attempt, { initialMillis: this.#settings.retryInitialDelayMillis, maxMillis: this.#settings.retryMaxDelayMillis }),
      failoverTimeoutMillis: this.#settings.failoverTimeoutMillis,
      discovered: () => this.#topology.discovered,
      lastDiscoveryError: () => this.#lastDiscoveryError,
      noNodeHint: () => this.#noNodeHint(intent),
      onRetry: (info) => this.#onRetry(intent, info),
      onPrimaryTrouble: () => this.#failover.trouble(this.#now()),
      suspect: (node) => {
        if (!this.#closing && !this.#topology.unreachable.has(node.address)) this.#detector?.suspect(node);
      },
    };
  }

  /** Why no node of that role is available, worded as the fix; undefined without a `setup`. */
  #noNodeHint(intent: 'primary' | 'replica'): string | undefined {
    const setup = this.#settings.setup;
    if (setup === undefined) return undefined;
    return noNodeHint(intent, setup, noNodeState(this.#topology, this.#lastDiscoveryError));
  }

  /** Resolves once the topology names a primary; NoPrimaryError after `timeoutMillis`, PoolEndedError on end (see `cluster-waits`). */
  waitForPrimary(timeoutMillis: number): Promise<TopologySnapshot> {
    return waitForPrimary({ ...this.#watch, closing: () => this.#closing, noPrimaryHint: () => this.#noNodeHint('primary'), lastDiscoveryError: () => this.#lastDiscoveryError }, timeoutMillis);
  }

  /** What the waits of `cluster-waits` read. */
  readonly #watch = { topology: () => this.#topology, wait: (ms: number) => this.#waitForChange(ms), now: () => this.#now() };

  /** Statements of a path waiting for discovery's first answer: connections being opened, for the counters (see `WaitCounts`). */
  undiscovered(intent: 'primary' | 'replica'): number {
    return this.#topology.discovered ? 0 : this.#waitCounts.count(intent);
  }

  readonly #waitCounts = new WaitCounts();

  /**
   * Stops discovery (aborting the in-flight request), wakes every waiting retry loop (they
   * fail with PoolEndedError) and ends every node pool: idle connections close at once,
   * checked-out ones when released. As pg.Pool finishes work it accepted, statements
   * accepted before `end()` that wait for discovery's *first* answer run once it comes (the
   * wait is bounded by `endTimeoutMillis`, else `failoverTimeoutMillis`). Bounded: a node with
   * work pending that does not answer a quick probe is fenced at once (a black-holed node
   * costs about 0.5 s, not a TCP timeout), and whatever is still open after
   * `endTimeoutMillis` is fenced. Idempotent.
   */
  end(): Promise<void> {
    if (this.#endPromise) return this.#endPromise;
    this.#ending = true;
    const close = async (): Promise<void> => {
      this.#closing = true;
      this.#waiters.wakeAll();
      const drain = { queuedMillis: this.#settings.failoverTimeoutMillis, endTimeoutMillis: this.#settings.endTimeoutMillis ?? 0, probe: this.#probe };
      await shutDown({ detector: this.#detector, source: this.#source, lagMonitor: this.#lag.monitor, pools: this.#pools, drain, log: this.#log });
      this.#ended = true;
    };
    if (this.#topology.discovered || this.#waiters.size === 0) return (this.#endPromise = close());
    const watch = { ...this.#watch, wait: (ms: number) => this.#waitCounts.track('end', this.#waitForChange(ms)) };
    return (this.#endPromise = awaitFirstAnswer(watch, this.#settings.endTimeoutMillis || this.#settings.failoverTimeoutMillis).then(close));
  }

  #onUpdate(update: TopologyUpdate): void {
    if (this.#closing) return;
    this.#lastDiscoveryError = undefined;
    const now = this.#now();
    this.#setTopology(this.#lag.onUpdate(applyUpdate(this.#topology, update, now), update.walPositions, now));
  }

  #onDiscoveryError(error: Error, info: { attempt: number; retryInMillis: number }): void {
    if (this.#closing) return;
    this.#lastDiscoveryError = error;
    this.#log('warn', 'discovery round failed; keeping the last known topology', {
      error: error.message,
      attempt: info.attempt,
      retryInMillis: info.retryInMillis,
    });
    this.#events.emit(undefined, 'discoveryError', [{ error, attempt: info.attempt, retryInMillis: info.retryInMillis }]);
  }

  #invalidate(address: string): void {
    const now = this.#now();
    this.#log('info', 'primary candidate is read-only; skipping it', { node: address });
    this.#setTopology(invalidateNode(this.#topology, address, now, now + this.#settings.invalidationMillis));
  }

  #onLagRound(replayPositions: ReadonlyMap<string, { replay?: bigint | undefined }>): void {
    if (this.#closing) return;
    for (const [address, sample] of replayPositions) if (sample.replay !== undefined) this.noteReplayed(address, sample.replay);
    this.#setTopology(this.#lag.measured(this.#topology, this.#topology));
  }

  #setTopology(next: TopologySnapshot): void {
    const previous = this.#topology;
    if (next === previous) return;
    if (next.version === previous.version) {
      // Only lag numbers changed: no routing change, no `topology` event.
      this.#topology = next;
      this.#events.emit(undefined, 'lag', [{ previous, current: next }]);
      return;
    }
    const covered = this.#lag.cover(previous, next);
    next = covered.next;
    this.#replayed.prune(next.replicas);
    this.#topology = next;
    if (covered.measureNow) this.#lag.monitor?.poke();
    this.#failover.topologyChanged(previous, next, this.#now());
    this.#pools.reconcile(next);
    this.#log('debug', 'topology changed', {
      version: next.version,
      primary: next.primary?.address,
      replicas: next.replicas.map((r) => r.address),
      ...(next.readReplicas !== next.replicas ? { readReplicas: next.readReplicas.map((r) => r.address) } : {}),
    });
    this.#events.emit(undefined, 'topology', [{ previous, current: next }]);
    if (next.lag !== previous.lag) this.#events.emit(undefined, 'lag', [{ previous, current: next }]);
    this.#waiters.wakeAll();
  }

  #onDeadPeer(address: string, reason: string): void {
    if (this.#closing) return;
    const node = this.#topology.nodes.find((n) => n.address === address);
    this.#log('warn', 'node did not answer the dead-peer probe; fencing it until it answers or the topology changes', { node: address, reason });
    const next = markUnreachable(this.#topology, address, this.#now(), reason);
    // Not listed any more (or already marked): fence whatever pools are left for it.
    if (next === this.#topology) {
      this.#pools.fence(address, `dead-peer probe failed: ${reason}`);
      return;
    }
    this.#setTopology(next);
    if (node) this.#events.emit(undefined, 'unreachable', [{ node, reason }]);
  }

  #onPeerBack(address: string): void {
    if (this.#closing) return;
    const node = this.#topology.nodes.find((n) => n.address === address);
    this.#log('info', 'an unreachable node answers again; routing to it resumes', { node: address });
    this.#setTopology(markReachable(this.#topology, address, this.#now()));
    if (node) this.#events.emit(undefined, 'reachable', [{ node }]);
  }

  #onConfirmed(pool: NodePool): void {
    // A connection that was already opening when its pool was retired can still pass the
    // role check: it says nothing about where writes go now.
    if (this.#closing || pool.retired || pool.address !== this.#topology.primary?.address) return;
    const event = this.#failover.confirmed(pool.node, this.#now());
    if (event) {
      this.#events.emit(undefined, 'failover', [event]);
      this.#log('info', 'writes moved to a new primary', { from: event.from?.address, to: pool.address, durationMillis: event.durationMillis });
    }
  }

  #onRetry(role: 'primary' | 'replica', info: { attempt: number; delayMillis: number; node: string | undefined; error: Error; outcome: Outcome }): void {
    this.#log('debug', 'retrying', { role, attempt: info.attempt, delayMillis: info.delayMillis, node: info.node, error: info.error.message });
    this.#events.emit(role, 'retry', [{ role, ...info }]);
  }

  #waitForChange(ms: number): Promise<void> {
    return this.#closing ? Promise.resolve() : this.#waiters.wait(ms);
  }
}
