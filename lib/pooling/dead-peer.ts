import type { ProbeReachable, ReachabilityResult } from './reachability-probe.js';

/**
 * Dead-peer detection: when a statement has been in flight on a node for longer than
 * `afterMillis` while discovery still lists the node, probe the node over a fresh connection
 * (see `probeReachable`); after `attempts` probes in a row without an answer, the node is
 * declared dead and its owner fences it. A probe that gets an answer touches nothing: a live
 * server's long query is never killed. Nodes declared dead are probed again every sweep until
 * they answer.
 *
 * One timer per Pool (unref'd), advancing a tick counter that checkouts record instead of
 * reading the clock: the per-statement cost is one `Map.set` and one `Map.delete`.
 *
 * @module
 */

/** Settings of the detector. */
export interface DeadPeerSettings {
  /** How long a checkout may last before its node is probed, ms (> 0). */
  readonly afterMillis: number;
  /** Deadline of one probe, ms. */
  readonly timeoutMillis: number;
  /** Probes in a row without an answer before the node is declared dead (≥ 1). */
  readonly attempts: number;
}

/** One node as the detector sees it at a sweep. */
export interface WatchedNode {
  /** `host:port`. */
  readonly address: string;
  /** Host to probe. */
  readonly host: string;
  /** Port to probe. */
  readonly port: number;
  /** Tick of the oldest checkout still held on the node (over all its pools); undefined when none. */
  readonly oldestCheckoutTick: number | undefined;
  /** Tick of the latest release of a client of the node (statements complete there); undefined when none yet. */
  readonly lastReleaseTick?: number | undefined;
  /** Whether the node is currently declared dead (skipped by routing). */
  readonly dead: boolean;
}

/** What the detector needs from its owner. */
export interface DeadPeerDeps {
  /** The nodes to consider at this sweep. */
  nodes(): Iterable<WatchedNode>;
  /** A node did not answer `attempts` probes in a row. */
  onDead(address: string, reason: string): void;
  /** A node declared dead answered again. */
  onAlive(address: string): void;
  /** Every probe's result (diagnostics). */
  onProbe?(address: string, reachable: boolean, reason: string | undefined): void;
  /** The probe (injectable for tests). */
  readonly probe: ProbeReachable;
  /** Current time, ms. */
  now(): number;
}

/** The sweep period for a threshold: a quarter of it, between 50 ms and 500 ms. */
export function sweepPeriodMillis(afterMillis: number): number {
  return Math.min(500, Math.max(50, Math.floor(afterMillis / 4)));
}

/**
 * Whether a node should be probed now. Pure.
 *
 * - a dead node: always (each sweep, unless a probe is already running), to find it back;
 * - a live node: when its oldest checkout is at least `ticksNeeded` sweeps old (so it has
 *   lasted at least `afterMillis`), no statement completed on it for as long (a node that
 *   keeps answering other statements is alive: a client held for hours — `LISTEN`, a job
 *   queue — costs no probe while traffic flows), no probe is running, and no probe got an
 *   answer within the last `afterMillis` (a 30 s query on an otherwise idle server costs one
 *   probe per `afterMillis`).
 *
 * @param node the node
 * @param tick the current sweep tick
 * @param ticksNeeded sweeps a checkout must span (see {@link ticksFor})
 * @param probing whether a probe of the node is running
 * @param lastAnswerAgoMillis ms since a probe of the node last got an answer (Infinity: never)
 * @param afterMillis the threshold
 */
export function probeDue(
  node: WatchedNode,
  tick: number,
  ticksNeeded: number,
  probing: boolean,
  lastAnswerAgoMillis: number,
  afterMillis: number,
): boolean {
  if (probing) return false;
  if (node.dead) return true;
  if (node.oldestCheckoutTick === undefined || tick - node.oldestCheckoutTick < ticksNeeded) return false;
  if (node.lastReleaseTick !== undefined && tick - node.lastReleaseTick < ticksNeeded) return false;
  return lastAnswerAgoMillis >= afterMillis;
}

/**
 * Sweeps a checkout must span to have lasted at least `afterMillis`: a checkout recorded at
 * tick `t` happened after tick `t` was reached, so at tick `T` it has lasted at least
 * `(T − t − 1) × period`; `T − t ≥ ceil(after / period) + 1` guarantees the threshold.
 *
 * @param afterMillis the threshold
 * @param periodMillis the sweep period
 */
export function ticksFor(afterMillis: number, periodMillis: number): number {
  return Math.ceil(afterMillis / periodMillis) + 1;
}

/**
 * The detector: a sweep timer and the probes it starts. See the module documentation.
 */
export class DeadPeerDetector {
  /** The sweep counter checkouts record (read by node pools). */
  readonly clock = { tick: 0 };
  readonly #settings: DeadPeerSettings;
  readonly #deps: DeadPeerDeps;
  readonly #period: number;
  readonly #ticksNeeded: number;
  readonly #probing = new Set<string>();
  readonly #lastAnswer = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #abort = new AbortController();
  /** Probes in flight (stop() waits for them: they end at once once aborted). */
  readonly #running = new Set<Promise<unknown>>();

  /**
   * @param settings threshold, probe deadline, attempts
   * @param deps the owner's side
   */
  constructor(settings: DeadPeerSettings, deps: DeadPeerDeps) {
    this.#settings = settings;
    this.#deps = deps;
    this.#period = sweepPeriodMillis(settings.afterMillis);
    this.#ticksNeeded = ticksFor(settings.afterMillis, this.#period);
  }

  /** Starts sweeping (unref'd timer). */
  start(): void {
    if (this.#timer || this.#stopped) return;
    this.#timer = setInterval(() => this.sweep(), this.#period);
    this.#timer.unref();
  }

  /** Stops sweeping and aborts running probes; resolves once their sockets are closed. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#abort.abort();
    await Promise.all(this.#running);
  }

  /** One sweep: advance the tick, probe what is due. Exposed for tests. */
  sweep(): void {
    if (this.#stopped) return;
    const tick = ++this.clock.tick;
    const now = this.#deps.now();
    for (const node of this.#deps.nodes()) {
      const last = this.#lastAnswer.get(node.address);
      const ago = last === undefined ? Infinity : now - last;
      if (probeDue(node, tick, this.#ticksNeeded, this.#probing.has(node.address), ago, this.#settings.afterMillis)) {
        void this.#check(node, this.#settings.attempts, this.#settings.timeoutMillis);
      }
    }
  }

  /**
   * Checks a node now, outside the sweep (a connection to it failed for a network reason):
   * the same probes and verdict as a sweep's, unless a probe of it runs or it answered
   * within `afterMillis`.
   *
   * @param node the node (not dead)
   */
  suspect(node: Omit<WatchedNode, 'oldestCheckoutTick' | 'dead'>): void {
    if (this.#stopped || this.#probing.has(node.address)) return;
    const last = this.#lastAnswer.get(node.address);
    if (last !== undefined && this.#deps.now() - last < this.#settings.afterMillis) return;
    void this.#check({ ...node, oldestCheckoutTick: undefined, dead: false }, this.#settings.attempts, this.#settings.timeoutMillis);
  }

  /**
   * Probes a node once with `timeoutMillis` (e.g. at `end()`, to tell a black-holed node
   * from a slow one without waiting for the threshold). Resolves with whether it answered.
   *
   * @param host host to probe
   * @param port port to probe
   * @param timeoutMillis probe deadline
   */
  async answers(host: string, port: number, timeoutMillis: number): Promise<boolean> {
    return (await this.#probeOnce(host, port, timeoutMillis)).reachable;
  }

  /** One probe, tracked (see {@link DeadPeerDetector.stop}) and aborted by stop(). */
  #probeOnce(host: string, port: number, timeoutMillis: number): Promise<ReachabilityResult> {
    const p = this.#deps.probe(host, port, timeoutMillis, this.#abort.signal);
    this.#running.add(p);
    void p.finally(() => this.#running.delete(p));
    return p;
  }

  async #check(node: WatchedNode, attempts: number, timeoutMillis: number): Promise<void> {
    this.#probing.add(node.address);
    try {
      let reason = '';
      for (let i = 0; i < attempts; i++) {
        const result = await this.#probeOnce(node.host, node.port, timeoutMillis);
        if (this.#stopped) return;
        this.#deps.onProbe?.(node.address, result.reachable, result.reachable ? undefined : result.reason);
        if (result.reachable) {
          this.#lastAnswer.set(node.address, this.#deps.now());
          if (node.dead) this.#deps.onAlive(node.address);
          return;
        }
        reason = result.reason;
        // A dead node is re-checked each sweep: one probe per sweep is enough.
        if (node.dead) return;
      }
      this.#lastAnswer.delete(node.address);
      this.#deps.onDead(node.address, reason);
    } finally {
      this.#probing.delete(node.address);
    }
  }
}
