/**
 * The Patroni-aware discovery source: one blocking recursive read of Patroni's own keys in
 * Consul KV (`/v1/kv/<namespace>/<scope>/?recurse`), so the primary follows the leader key.
 *
 * @module
 */
import type { DiscoveredNode, TopologyUpdate } from '../topology/node.js';
import type { DiscoveryListener, DiscoverySource } from './discovery-source.js';
import { consulGet } from './consul-http.js';
import { ConsulWatchLoop, validateWatchSettings } from './consul-watch-loop.js';
import type { ConsulTransport, ConsulWatchSettings, Interpretation } from './consul-watch-loop.js';
import { parsePatroniKv, patroniTopology } from './patroni-kv.js';
import type { PatroniClusterView } from './patroni-kv.js';

/** The `source` label of every update this source emits. */
export const PATRONI_KV_SOURCE = 'patroni';

/**
 * Checks that a node accepts writes (not in recovery, not read-only); resolves false (or
 * rejects) when it does not or cannot be reached. Must give up promptly when `signal` aborts.
 */
export type ConfirmPrimary = (node: DiscoveredNode, signal: AbortSignal) => Promise<boolean>;

/** Options of {@link PatroniKvSource}. */
export interface PatroniKvSourceOptions extends ConsulWatchSettings {
  /** Patroni's `namespace` (default in Patroni: `/service/`); slashes around it are ignored. */
  readonly namespace: string;
  /** Patroni's `scope` (the cluster name), exactly as in patroni.yml. */
  readonly scope: string;
  /**
   * Confirms the promotion of a new leader that Patroni still reports as `replica`: Patroni
   * takes the leader key, then promotes, and rewrites its member key only in its next cycle
   * (`loop_wait` later, 1–2 s in the lab, up to 10 s with defaults). While this resolves
   * false the leader is not the primary and writes wait; once it resolves true the leader is
   * the primary. Without it, the source waits for Patroni to write role `promoted`/`master`.
   */
  readonly confirmPrimary?: ConfirmPrimary | undefined;
  /** Delays between confirmation attempts: doubling from `initialMillis` to `maxMillis` (default 20 → 1000). */
  readonly confirmBackoff?: { readonly initialMillis: number; readonly maxMillis: number } | undefined;
}

interface Confirmation {
  readonly token: string;
  readonly address: string;
  readonly controller: AbortController;
  done: Promise<void>;
}

/** Resolves false when `signal` aborts (never rejects). */
function aborted(signal: AbortSignal): Promise<false> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(false);
    else signal.addEventListener('abort', () => resolve(false), { once: true });
  });
}

/**
 * Normalises Patroni's namespace (`/service/` → `service`).
 *
 * @param namespace as written in patroni.yml or the option
 * @returns the namespace without leading/trailing slashes (may be empty)
 *
 * @example
 * ```ts
 * normalizePatroniNamespace('/service/'); // 'service'
 * ```
 */
export function normalizePatroniNamespace(namespace: string): string {
  return namespace.replace(/^\/+|\/+$/g, '');
}

/**
 * The KV prefix Patroni writes under: `<namespace>/<scope>/` (or `<scope>/` with an empty
 * namespace), with the trailing slash so `pglab` never matches `pglab2`.
 *
 * @param namespace Patroni's namespace (slashes around it ignored)
 * @param scope Patroni's scope
 * @returns the prefix
 *
 * @example
 * ```ts
 * patroniKvPrefix('/service/', 'pglab'); // 'service/pglab/'
 * ```
 */
export function patroniKvPrefix(namespace: string, scope: string): string {
  const ns = normalizePatroniNamespace(namespace);
  return ns === '' ? `${scope}/` : `${ns}/${scope}/`;
}

/**
 * Follows a Patroni cluster through Patroni's own keys in Consul KV, with one blocking
 * request at a time: `GET /v1/kv/<namespace>/<scope>/?recurse&index=<i>&wait=<w>s` (the
 * shared {@link ConsulWatchLoop}: index rules, rate limit, backoff, refresh, stop).
 *
 * - The primary is the member the `leader` key names, when its member key says `running`
 *   and role `master`/`primary`/`promoted` — or role `replica` once `confirmPrimary`
 *   confirmed it writable (promotion under way, see {@link PatroniKvSourceOptions}). A
 *   member that is writable but not named by the leader key is never the primary (an
 *   orphaned old leader after its Patroni died is simply left out once its keys expire).
 * - No leader key (session expired, election under way): no primary; writes wait.
 * - Replicas: members with role `replica`, state `running`, without `tags.noloadbalance`.
 * - Every node carries Patroni's view (`node.patroni`: role, state, xlog_location, timeline),
 *   and every update the members' latest WAL positions (`walPositions`, for the lag limit).
 * - A 404 (nothing under the prefix yet) is an empty answer; blocking continues on its index.
 *
 * Cost: the recursive read wakes on every write under the prefix — the leader's `status`
 * (optime) and each member's key once per Patroni `loop_wait` while WAL moves — so about
 * (members + 1) small requests per `loop_wait`, capped by `minIntervalMillis`.
 *
 * @example
 * ```ts
 * const source = new PatroniKvSource({
 *   consul, namespace: 'service', scope: 'pglab', waitSeconds: 300, requestTimeoutMillis: 10_000,
 *   minIntervalMillis: 100, backoff: { initialMillis: 50, maxMillis: 5_000 },
 *   confirmPrimary: (node, signal) => probeWritable(node, signal),
 * });
 * source.start({ onUpdate: (u) => apply(u), onError: (e) => log(e) });
 * await source.stop();
 * ```
 */
export class PatroniKvSource implements DiscoverySource {
  readonly #loop: ConsulWatchLoop;
  readonly #scope: string;
  readonly #prefix: string;
  readonly #confirmPrimary: ConfirmPrimary | undefined;
  readonly #confirmBackoff: { readonly initialMillis: number; readonly maxMillis: number };
  #view: PatroniClusterView | undefined;
  #index = 0;
  #confirmedLeader: string | undefined;
  #confirming: Confirmation | undefined;
  #stopping: Promise<void> | undefined;

  /**
   * @param options see {@link PatroniKvSourceOptions}; validated here
   * @param transport the HTTP transport (tests inject a fake); it must honour `signal`
   * @throws TypeError / RangeError on invalid options
   */
  constructor(options: PatroniKvSourceOptions, transport: ConsulTransport = consulGet) {
    if (typeof options.scope !== 'string' || options.scope.length === 0 || options.scope.includes('/')) {
      throw new TypeError('PatroniKvSource: scope must be a non-empty string without "/"');
    }
    if (typeof options.namespace !== 'string') throw new TypeError('PatroniKvSource: namespace must be a string');
    validateWatchSettings('PatroniKvSource', options, true);
    const backoff = options.confirmBackoff ?? { initialMillis: 20, maxMillis: 1000 };
    if (!(backoff.initialMillis >= 1 && backoff.maxMillis >= backoff.initialMillis && Number.isFinite(backoff.maxMillis))) {
      throw new RangeError('PatroniKvSource: confirmBackoff needs 1 ≤ initialMillis ≤ maxMillis');
    }
    this.#scope = options.scope;
    this.#prefix = patroniKvPrefix(options.namespace, options.scope);
    this.#confirmPrimary = options.confirmPrimary;
    this.#confirmBackoff = backoff;
    const path = `/v1/kv/${this.#prefix.split('/').map(encodeURIComponent).join('/')}`;
    this.#loop = new ConsulWatchLoop(
      options,
      {
        mode: 'blocking',
        path,
        query: { recurse: true },
        acceptNotFound: true,
        what: 'Patroni KV discovery',
        entryLabel: 'Patroni member',
        failureLabel: `Patroni KV read of "${this.#prefix}"`,
        logFields: { source: PATRONI_KV_SOURCE, scope: options.scope },
        interpret: (res, index) => this.#interpret(res.body, index),
      },
      transport,
    );
  }

  /** Number of Consul requests started so far. */
  get requestCount(): number {
    return this.#loop.requestCount;
  }

  /** The KV prefix read, e.g. `service/pglab/`. */
  get prefix(): string {
    return this.#prefix;
  }

  /**
   * Starts the loop; the first request (index 0) is sent at once.
   *
   * @param listener receives every answer and every failed round
   * @throws Error when called twice or after {@link PatroniKvSource.stop}
   */
  start(listener: DiscoveryListener): void {
    this.#loop.start(listener, 'PatroniKvSource');
  }

  /** Asks for a fresh answer (see {@link ConsulWatchLoop.refresh}). */
  refresh(): void {
    this.#loop.refresh();
  }

  /**
   * Stops the loop and any promotion check; no callback afterwards. Idempotent.
   *
   * @returns resolves when nothing is left running
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      const confirming = this.#confirming;
      this.#confirming = undefined;
      confirming?.controller.abort();
      await Promise.all([this.#loop.stop(), confirming?.done]);
    })();
    return this.#stopping;
  }

  #interpret(body: unknown, index: number): Interpretation {
    const view = parsePatroniKv(body, this.#prefix);
    this.#view = view;
    this.#index = index;
    return { update: this.#decide(), skipped: view.skipped };
  }

  /** The update for the last view; starts or cancels the promotion check as needed. */
  #decide(): TopologyUpdate {
    const view = this.#view ?? { leader: undefined, members: [], skipped: [] };
    const topology = patroniTopology(view, { scope: this.#scope, confirmedLeader: this.#confirmedLeader });
    for (const note of topology.notes) this.#loop.log('debug', `Patroni KV: ${note}`);
    this.#steer(topology.pendingLeader, topology.leaderToken);
    return { source: PATRONI_KV_SOURCE, index: this.#index, nodes: topology.nodes, walPositions: topology.walPositions };
  }

  #steer(pending: DiscoveredNode | undefined, token: string | undefined): void {
    const current = this.#confirming;
    if (pending !== undefined && token !== undefined && current?.token === token && current.address === pending.address) return;
    if (current !== undefined) {
      this.#confirming = undefined;
      current.controller.abort();
    }
    if (pending === undefined || token === undefined || this.#confirmPrimary === undefined || this.#stopping !== undefined) return;
    const confirmation: Confirmation = { token, address: pending.address, controller: new AbortController(), done: Promise.resolve() };
    this.#confirming = confirmation;
    this.#loop.log('debug', 'the leader key names a member that still reports role replica: confirming its promotion', {
      member: pending.name,
      node: pending.address,
    });
    confirmation.done = this.#confirm(confirmation, pending);
  }

  async #confirm(confirmation: Confirmation, node: DiscoveredNode): Promise<void> {
    const confirm = this.#confirmPrimary;
    const { signal } = confirmation.controller;
    if (confirm === undefined) return;
    const startedAt = Date.now();
    const stopped = aborted(signal);
    for (let attempt = 1; !signal.aborted; attempt++) {
      let writable = false;
      try {
        // Raced with the abort, so stop() never waits for a check that ignores its signal.
        writable = await Promise.race([confirm(node, signal), stopped]);
      } catch (err) {
        this.#loop.log('debug', 'promotion check failed', { node: node.address, attempt, error: err instanceof Error ? err.message : String(err) });
      }
      if (signal.aborted) return;
      if (writable) {
        this.#confirming = undefined;
        this.#confirmedLeader = confirmation.token;
        this.#loop.log('info', 'new leader confirmed writable before Patroni updated its member key', {
          member: node.name,
          node: node.address,
          attempts: attempt,
          millis: Date.now() - startedAt,
        });
        this.#loop.emit(this.#decide());
        return;
      }
      const { initialMillis, maxMillis } = this.#confirmBackoff;
      const delay = Math.min(maxMillis, initialMillis * 2 ** Math.min(attempt - 1, 30));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, delay);
        timer.unref();
        function done(): void {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        }
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }
}
