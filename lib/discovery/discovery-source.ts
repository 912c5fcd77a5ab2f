import type { TopologyUpdate } from '../topology/node.js';

/**
 * What a discovery source tells its owner. Implementations call these synchronously from
 * their own loop; the callbacks never throw back into the source.
 */
export interface DiscoveryListener {
  /** A complete, validated answer. Called for every answer, changed or not. */
  onUpdate(update: TopologyUpdate): void;
  /**
   * A failed round (network error, bad status, malformed body). The source keeps running and
   * will retry after `retryInMillis`; the last good topology stays in force.
   */
  onError(error: Error, info: { readonly attempt: number; readonly retryInMillis: number }): void;
  /** Optional: a single entry was skipped as malformed (bad address, missing port…). */
  onSkippedEntry?(reason: string): void;
}

/**
 * A source of topology: Consul's health endpoint, a prepared query, a static host list…
 * Exactly one request in flight at a time.
 */
export interface DiscoverySource {
  /** Starts the loop; `listener` receives every answer and every error. Call once. */
  start(listener: DiscoveryListener): void;
  /**
   * Asks for an immediate fresh answer (e.g. after a connection to the primary failed).
   * Sources that block (Consul) may ignore it when a blocking request is already in flight.
   */
  refresh(): void;
  /** Stops the loop and aborts any in-flight request; resolves when nothing is left running. */
  stop(): Promise<void>;
  /** Number of HTTP requests made so far (for diagnostics and benchmarks). */
  readonly requestCount: number;
}

/**
 * Calls `fn` with the listener while its source runs. A listener that throws is reported
 * through `logError`, never propagated into the source's loop.
 *
 * @param listener the source's listener (undefined before `start()`)
 * @param running whether the source is running (no callback after `stop()`)
 * @param what which callback, for the log message
 * @param fn the call
 * @param logError logs at error level
 */
export function callListener(
  listener: DiscoveryListener | undefined,
  running: boolean,
  what: string,
  fn: (listener: DiscoveryListener) => void,
  logError: (message: string) => void,
): void {
  if (!running || listener === undefined) return;
  try {
    fn(listener);
  } catch (err) {
    logError(`discovery listener ${what} threw: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * The lifecycle of a source made of two others: started once, `refresh()` and `stop()`
 * reach both, `stop()` is idempotent, and {@link SourcePair.running} tells whether callbacks
 * may still be forwarded.
 */
export class SourcePair {
  readonly #owner: string;
  readonly #first: DiscoverySource;
  readonly #second: DiscoverySource;
  #state: 'new' | 'running' | 'stopped' = 'new';
  #stopping: Promise<void> | undefined;

  /**
   * @param owner class name for the error message of a second `start()`
   * @param first one source
   * @param second the other
   */
  constructor(owner: string, first: DiscoverySource, second: DiscoverySource) {
    this.#owner = owner;
    this.#first = first;
    this.#second = second;
  }

  /** Whether the pair was started and not stopped. */
  get running(): boolean {
    return this.#state === 'running';
  }

  /** Requests made by both sources. */
  get requestCount(): number {
    return this.#first.requestCount + this.#second.requestCount;
  }

  /**
   * Marks the pair started; the owner then starts both sources with its own listeners.
   *
   * @throws Error when called twice or after {@link SourcePair.stop}
   */
  begin(): void {
    if (this.#state !== 'new') throw new Error(`${this.#owner}: start() may be called only once`);
    this.#state = 'running';
  }

  /** Asks both sources for a fresh answer (nothing unless running). */
  refresh(): void {
    if (this.#state !== 'running') return;
    this.#first.refresh();
    this.#second.refresh();
  }

  /**
   * Stops both sources; no callback is forwarded afterwards. Idempotent.
   *
   * @returns resolves when both have stopped
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#state = 'stopped';
      await Promise.all([this.#first.stop(), this.#second.stop()]);
    })();
    return this.#stopping;
  }
}
