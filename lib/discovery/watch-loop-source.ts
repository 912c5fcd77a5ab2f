/**
 * The base of the discovery sources that are one {@link ConsulWatchLoop} (the health
 * endpoint's blocking queries, a prepared query's polling): the source checks its own
 * options and says what to ask; the base validates the shared settings, builds the loop and
 * hands the lifecycle to it.
 *
 * @example
 * ```ts
 * class MySource extends WatchLoopSource {
 *   constructor(options: ConsulWatchSettings) { super('MySource', options, spec, consulGet); }
 * }
 * ```
 * @module
 */
import { ConsulWatchLoop, validateWatchSettings } from './consul-watch-loop.js';
import type { ConsulTransport, ConsulWatchSettings, ConsulWatchSpec } from './consul-watch-loop.js';
import type { DiscoveryListener, DiscoverySource } from './discovery-source.js';

/** A discovery source that is one watch loop; see the module notes. */
export abstract class WatchLoopSource implements DiscoverySource {
  readonly #owner: string;
  readonly #loop: ConsulWatchLoop;

  /**
   * @param owner class name for error messages (invalid settings, a second `start()`)
   * @param settings the shared settings; validated here (`waitSeconds` only when blocking)
   * @param spec what to ask and how to read the answers
   * @param transport the HTTP transport (tests inject a fake); it must honour `signal`
   * @throws RangeError on an out-of-range setting
   */
  protected constructor(owner: string, settings: ConsulWatchSettings, spec: ConsulWatchSpec, transport: ConsulTransport) {
    validateWatchSettings(owner, settings, spec.mode === 'blocking');
    this.#owner = owner;
    this.#loop = new ConsulWatchLoop(settings, spec, transport);
  }

  /** Number of requests started so far. */
  get requestCount(): number {
    return this.#loop.requestCount;
  }

  /**
   * Starts the loop; the first request is sent at once.
   *
   * @param listener receives every answer and every failed round
   * @throws Error when called twice or after `stop()`
   */
  start(listener: DiscoveryListener): void {
    this.#loop.start(listener, this.#owner);
  }

  /**
   * Asks for a fresh answer: when the loop waits (interval, rate limit or backoff after an
   * error), the next request is sent as soon as `minIntervalMillis` allows — a blocking one
   * without `index`, so Consul answers at once. When a request is in flight, nothing happens
   * (a blocking request returns as soon as anything changes anyway).
   */
  refresh(): void {
    this.#loop.refresh();
  }

  /**
   * Stops the loop: aborts the request in flight at once, clears timers and closes the kept
   * alive connections. No listener callback is made after this is called. Idempotent.
   *
   * @returns resolves when nothing is left running
   */
  stop(): Promise<void> {
    return this.#loop.stop();
  }
}
