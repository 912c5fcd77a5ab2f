/**
 * The static host-list discovery source: no Consul at all; every host is probed for its role
 * (as libpq's `target_session_attrs` does) on an interval and at once on `refresh()`.
 *
 * @module
 */
import { DiscoveryError } from '../errors.js';
import { formatAddress } from '../topology/node.js';
import type { DiscoveredNode } from '../topology/node.js';
import { callListener } from './discovery-source.js';
import type { DiscoveryListener, DiscoverySource } from './discovery-source.js';
import type { DiscoveryLogger, DiscoveryLogLevel } from './consul-watch-loop.js';
import type { StaticHost } from './host-list.js';
import { roleFromProbe } from './pg-probe.js';
import type { ProbeResult, ProbeServer } from './pg-probe.js';

export { parseHostEntry } from './host-list.js';
export type { StaticHost } from './host-list.js';

/** The `source` label of every update this source emits. */
export const STATIC_SOURCE = 'static';

/**
 * The nodes of one probe round (pure): every reachable host with the role its probe gives
 * ({@link roleFromProbe}), in list order. `modifyIndex` is `hosts.length − position`, so
 * when two hosts are writable (a split brain a host list cannot resolve) the one listed first
 * is preferred, as libpq does.
 *
 * @param hosts the host list
 * @param results one probe result per host, same order
 * @returns the nodes (unreachable hosts left out)
 *
 * @example
 * ```ts
 * staticNodes([{ host: 'db1', port: 5432 }], [{ reachable: true, inRecovery: false, readOnly: false }]);
 * // [{ id: 'db1:5432', role: 'primary', … }]
 * ```
 */
export function staticNodes(hosts: readonly StaticHost[], results: readonly ProbeResult[]): DiscoveredNode[] {
  const nodes: DiscoveredNode[] = [];
  hosts.forEach((h, i) => {
    const result = results[i];
    if (result === undefined || !result.reachable) return;
    const address = formatAddress(h.host, h.port);
    nodes.push(
      Object.freeze({
        id: address,
        name: address,
        host: h.host,
        port: h.port,
        address,
        role: roleFromProbe(result),
        tags: Object.freeze([]) as readonly string[],
        modifyIndex: hosts.length - i,
      }),
    );
  });
  return nodes;
}

/** Options of {@link StaticHostSource}. */
export interface StaticHostSourceOptions {
  /** The hosts (at least one; duplicates are rejected). */
  readonly hosts: readonly StaticHost[];
  /** Time between two probe rounds while a primary is known, ms. */
  readonly intervalMillis: number;
  /** No two rounds start closer together than this, ms (also the first fast re-probe). */
  readonly minIntervalMillis: number;
  /** Probes one server (e.g. `createPgProbe(pool options, timeout)`). */
  readonly probe: ProbeServer;
  /** Receives debug/info/warn/error messages (secret-free). */
  readonly logger?: DiscoveryLogger | undefined;
  /** Clock for the rate limit, ms. Defaults to `Date.now`. */
  readonly now?: (() => number) | undefined;
}

interface Round {
  readonly controller: AbortController;
  done: Promise<void>;
}

/**
 * Follows a fixed list of PostgreSQL servers by probing them all in parallel (one round in
 * flight at a time): the writable one is the primary, those in recovery are replicas.
 *
 * Scheduling: the next round starts `intervalMillis` after a round that found a primary;
 * after a round that found none (failover under way, all down) it starts sooner —
 * `minIntervalMillis`, doubling up to `intervalMillis` — so a promotion is seen quickly
 * without probing a primary-less cluster at full speed forever. `refresh()` (called by the
 * pool when a connection fails) starts a round at once, or right after the one in flight.
 *
 * A round where no host answered is a failed round (`onError`, the last topology stays);
 * otherwise every round is reported through `onUpdate`. The first round and refresh rounds
 * keep the process alive while they run; periodic rounds do not (their sockets are unref'd),
 * and timers are unref'd.
 *
 * @example
 * ```ts
 * const source = new StaticHostSource({
 *   hosts: [{ host: 'db1', port: 5432 }, { host: 'db2', port: 5432 }],
 *   intervalMillis: 2_000, minIntervalMillis: 100, probe: createPgProbe(pgOptions, 1_000),
 * });
 * ```
 */
export class StaticHostSource implements DiscoverySource {
  readonly #options: StaticHostSourceOptions;
  readonly #now: () => number;
  #state: 'new' | 'running' | 'stopped' = 'new';
  #listener: DiscoveryListener | undefined;
  #timer: NodeJS.Timeout | undefined;
  #round: Round | undefined;
  #again = false;
  #lastStartAt: number | undefined;
  #requestCount = 0;
  #rounds = 0;
  #withoutPrimary = 0;
  #failures = 0;
  #stopping: Promise<void> | undefined;

  /**
   * @param options see {@link StaticHostSourceOptions}
   * @throws TypeError / RangeError on invalid options
   */
  constructor(options: StaticHostSourceOptions) {
    if (!Array.isArray(options.hosts) || options.hosts.length === 0) throw new TypeError('StaticHostSource: hosts must be a non-empty array');
    const seen = new Set<string>();
    for (const h of options.hosts) {
      const address = formatAddress(h.host, h.port);
      if (seen.has(address)) throw new TypeError(`StaticHostSource: host ${address} is listed twice`);
      seen.add(address);
    }
    if (!(Number.isFinite(options.intervalMillis) && options.intervalMillis >= 1)) {
      throw new RangeError(`StaticHostSource: intervalMillis must be a number ≥ 1, got ${options.intervalMillis}`);
    }
    if (!(Number.isFinite(options.minIntervalMillis) && options.minIntervalMillis >= 0)) {
      throw new RangeError(`StaticHostSource: minIntervalMillis must be a number ≥ 0, got ${options.minIntervalMillis}`);
    }
    if (typeof options.probe !== 'function') throw new TypeError('StaticHostSource: probe must be a function');
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Probes started so far (one per host per round). */
  get requestCount(): number {
    return this.#requestCount;
  }

  /**
   * Starts probing; the first round starts at once.
   *
   * @param listener receives every round's topology and every failed round
   * @throws Error when called twice or after {@link StaticHostSource.stop}
   */
  start(listener: DiscoveryListener): void {
    if (this.#state !== 'new') throw new Error('StaticHostSource: start() may be called only once');
    this.#state = 'running';
    this.#listener = listener;
    this.#log('debug', 'starting static host discovery', { hosts: this.#options.hosts.map((h) => formatAddress(h.host, h.port)) });
    this.#fire(false);
  }

  /** Probes again as soon as the rate limit allows (right after the round in flight, if any). */
  refresh(): void {
    if (this.#state !== 'running') return;
    if (this.#round !== undefined) {
      this.#again = true;
      return;
    }
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#schedule(0, false);
  }

  /**
   * Stops probing: aborts the round in flight (its connections are destroyed), clears the
   * timer; no callback afterwards. Idempotent.
   *
   * @returns resolves when nothing is left running
   */
  stop(): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping;
    this.#state = 'stopped';
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const round = this.#round;
    round?.controller.abort();
    this.#stopping = (async () => {
      if (round !== undefined) await round.done;
      this.#log('debug', 'stopped static host discovery');
    })();
    return this.#stopping;
  }

  #schedule(minDelay: number, background: boolean): number {
    const min = this.#options.minIntervalMillis;
    let rateDelay = 0;
    if (this.#lastStartAt !== undefined) {
      const since = this.#now() - this.#lastStartAt;
      rateDelay = since < 0 ? min : Math.max(0, min - since);
    }
    const delay = Math.max(minDelay, rateDelay);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#fire(background);
    }, delay);
    this.#timer.unref();
    return delay;
  }

  #fire(background: boolean): void {
    if (this.#state !== 'running') return;
    const { hosts, probe } = this.#options;
    const controller = new AbortController();
    this.#lastStartAt = this.#now();
    this.#requestCount += hosts.length;
    const round: Round = { controller, done: Promise.resolve() };
    this.#round = round;
    // Raced with the abort, so stop() never waits for a probe that ignores its signal.
    const aborted = new Promise<ProbeResult>((resolve) =>
      controller.signal.addEventListener('abort', () => resolve({ reachable: false, reason: 'aborted' }), { once: true }),
    );
    const probes = hosts.map((h) =>
      Promise.race([
        Promise.resolve()
          .then(() => probe(h.host, h.port, controller.signal, { unref: background }))
          .catch((err: unknown): ProbeResult => ({ reachable: false, reason: err instanceof Error ? err.message : String(err) })),
        aborted,
      ]),
    );
    round.done = Promise.all(probes).then((results) => this.#onRound(round, results));
  }

  #onRound(round: Round, results: readonly ProbeResult[]): void {
    if (this.#round === round) this.#round = undefined;
    if (this.#state !== 'running') return;
    const { hosts, intervalMillis, minIntervalMillis } = this.#options;
    this.#rounds += 1;
    const nodes = staticNodes(hosts, results);
    const primaries = nodes.filter((n) => n.role === 'primary');
    this.#withoutPrimary = primaries.length === 0 ? this.#withoutPrimary + 1 : 0;
    const fast = Math.min(intervalMillis, Math.max(1, minIntervalMillis) * 2 ** Math.min(this.#withoutPrimary - 1, 30));
    const again = this.#again;
    this.#again = false;
    const delay = this.#schedule(again ? 0 : this.#withoutPrimary > 0 ? fast : intervalMillis, !again);
    if (nodes.length === 0) {
      this.#failures += 1;
      const reasons = hosts.map((h, i) => {
        const r = results[i];
        return `${formatAddress(h.host, h.port)} ${r !== undefined && !r.reachable ? r.reason : '?'}`;
      });
      const error = new DiscoveryError(`no host of the static list answered: ${reasons.join(', ')}`);
      this.#log('warn', error.message, { attempt: this.#failures, retryInMillis: delay });
      this.#call('onError', (l) => l.onError(error, { attempt: this.#failures, retryInMillis: delay }));
      return;
    }
    if (this.#failures > 0) this.#log('info', 'static host discovery recovered', { failedAttempts: this.#failures });
    this.#failures = 0;
    if (primaries.length > 1) {
      this.#log('warn', 'more than one host accepts writes; using the first listed', { writable: primaries.map((n) => n.address) });
    }
    for (let i = 0; i < hosts.length; i++) {
      const r = results[i];
      const h = hosts[i];
      if (r !== undefined && h !== undefined && !r.reachable) this.#log('debug', 'host did not answer the probe', { node: formatAddress(h.host, h.port), reason: r.reason });
    }
    this.#call('onUpdate', (l) => l.onUpdate({ source: STATIC_SOURCE, index: this.#rounds, nodes }));
  }

  #call(what: string, fn: (listener: DiscoveryListener) => void): void {
    callListener(this.#listener, this.#state === 'running', what, fn, (message) => this.#log('error', message));
  }

  #log(level: DiscoveryLogLevel, message: string, fields: Record<string, unknown> = {}): void {
    const logger = this.#options.logger;
    if (logger === undefined) return;
    try {
      logger(level, message, { source: STATIC_SOURCE, ...fields });
    } catch {
      // A broken logger must not break discovery.
    }
  }
}
