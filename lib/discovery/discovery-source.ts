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
