/**
 * `discovery: 'auto'` (the default): Patroni's leader key when Patroni's keys are in Consul
 * KV for the service (today's `patroni+health`), the health endpoint alone when they are
 * not or the token may not read them (`consul-health`) — decided again on every KV answer,
 * so keys that appear or vanish switch the path at run time.
 *
 * @module
 */
import { DiscoveryError } from '../errors.js';
import type { TopologyUpdate } from '../topology/node.js';
import { PATRONI_HEALTH_SOURCE, mergeTopologies } from './combined-source.js';
import { ConsulHealthSource } from './consul-health-source.js';
import type { ConsulHealthSourceOptions } from './consul-health-source.js';
import { consulGet } from './consul-http.js';
import type { ConsulTransport, DiscoveryLogger } from './consul-watch-loop.js';
import { SourcePair } from './discovery-source.js';
import type { DiscoveryListener, DiscoverySource } from './discovery-source.js';
import { PatroniKvSource, patroniKvPrefix } from './patroni-kv-source.js';
import type { PatroniKvSourceOptions } from './patroni-kv-source.js';

/** The two paths `auto` chooses between (named after the explicit modes they equal). */
export type AutoPath = 'patroni+health' | 'consul-health';

/** What the latest read of Patroni's KV prefix showed. */
export type PatroniKvProbe =
  /** A `leader` or `members/…` key exists under the prefix. */
  | { readonly kind: 'present' }
  /** The read succeeded (or answered 404) without a leader or member key. */
  | { readonly kind: 'absent' }
  /**
   * The token lacks `key:read` on the prefix: Consul answered 403, or answered without a
   * Patroni key and `X-Consul-Results-Filtered-By-ACLs: true` (a list filtered by ACLs).
   */
  | { readonly kind: 'forbidden' }
  /** Any other failure (network, timeout, 5xx, malformed answer). */
  | { readonly kind: 'failed'; readonly message: string };

/** The path `auto` follows and why. */
export interface AutoDecision {
  /** The path in force. */
  readonly path: AutoPath;
  /** One sentence saying why (for the info log line of a change). */
  readonly reason: string;
}

/**
 * Whether a KV answer under `prefix` holds Patroni's cluster layout (pure): a `leader` key
 * or at least one `members/<name>` key. Other keys alone (`config`, `initialize`, `history`
 * left behind by a removed cluster) do not count.
 *
 * @param body the parsed body of `GET /v1/kv/<prefix>?recurse` (null for a 404)
 * @param prefix the prefix read, with its trailing slash (`service/pglab/`)
 * @returns true when the keys are there
 *
 * @example
 * ```ts
 * patroniKeysPresent([{ Key: 'service/pglab/leader', Value: 'bm9kZTE=' }], 'service/pglab/'); // true
 * patroniKeysPresent(null, 'service/pglab/'); // false (404)
 * ```
 */
export function patroniKeysPresent(body: unknown, prefix: string): boolean {
  if (!Array.isArray(body)) return false;
  return body.some((entry: unknown) => {
    const key = typeof entry === 'object' && entry !== null ? (entry as { Key?: unknown }).Key : undefined;
    return typeof key === 'string' && (key === `${prefix}leader` || (key.startsWith(`${prefix}members/`) && key.length > prefix.length + 8));
  });
}

/**
 * Classifies a successful KV read (pure): `present` when {@link patroniKeysPresent}, else
 * `forbidden` when Consul says ACLs filtered the list (`X-Consul-Results-Filtered-By-ACLs:
 * true`), else `absent`.
 *
 * @param body the parsed body (null for a 404)
 * @param headers the response headers, lower-case names
 * @param prefix the prefix read, with its trailing slash
 * @returns the probe
 *
 * @example
 * ```ts
 * kvProbeFromAnswer(null, { 'x-consul-results-filtered-by-acls': 'true' }, 'service/pglab/').kind; // 'forbidden'
 * ```
 */
export function kvProbeFromAnswer(body: unknown, headers: Readonly<Record<string, string | undefined>>, prefix: string): PatroniKvProbe {
  if (patroniKeysPresent(body, prefix)) return { kind: 'present' };
  return headers['x-consul-results-filtered-by-acls']?.toLowerCase() === 'true' ? { kind: 'forbidden' } : { kind: 'absent' };
}

/**
 * Classifies a failed KV read (pure): 403 is `forbidden`, anything else `failed`.
 *
 * @param error the error the KV loop reported
 * @returns the probe
 *
 * @example
 * ```ts
 * kvProbeFromError(new DiscoveryError('Consul answered 403', { status: 403 })).kind; // 'forbidden'
 * ```
 */
export function kvProbeFromError(error: Error): PatroniKvProbe {
  return error instanceof DiscoveryError && error.status === 403 ? { kind: 'forbidden' } : { kind: 'failed', message: error.message };
}

/**
 * The decision rule of `discovery: 'auto'` (pure):
 *
 * | latest KV read of `<namespace>/<scope>/`  | path                                   |
 * |-------------------------------------------|----------------------------------------|
 * | a `leader` or `members/…` key exists      | `patroni+health`                       |
 * | no such key (or 404)                      | `consul-health`                        |
 * | 403, or no such key and the answer says   | `consul-health`                        |
 * | ACLs filtered it (token without key:read) |                                        |
 * | other failure, a path already chosen      | unchanged                              |
 * | other failure before any answer           | `consul-health` (until a read succeeds) |
 *
 * @param current the path in force, undefined before the first decision
 * @param probe what the latest read showed
 * @param prefix the KV prefix (for the reason)
 * @returns the path to follow and why
 *
 * @example
 * ```ts
 * decideAutoPath(undefined, { kind: 'absent' }, 'service/pglab/').path;          // 'consul-health'
 * decideAutoPath('consul-health', { kind: 'present' }, 'service/pglab/').path;   // 'patroni+health'
 * decideAutoPath('patroni+health', { kind: 'failed', message: 'timeout' }, 'service/pglab/').path; // 'patroni+health'
 * ```
 */
export function decideAutoPath(current: AutoPath | undefined, probe: PatroniKvProbe, prefix: string): AutoDecision {
  switch (probe.kind) {
    case 'present':
      return { path: 'patroni+health', reason: `Patroni's keys exist under "${prefix}": the primary follows the leader key, replicas come from the health endpoint` };
    case 'absent':
      return { path: 'consul-health', reason: `no Patroni leader or member key under "${prefix}": the primary and replicas come from the health endpoint` };
    case 'forbidden':
      return {
        path: 'consul-health',
        reason: `the Consul token may not read "${prefix}" (403 or entries filtered by ACLs; needs key:read on that prefix): the primary and replicas come from the health endpoint`,
      };
    case 'failed':
      return current !== undefined
        ? { path: current, reason: `Patroni KV read failed, path unchanged: ${probe.message}` }
        : { path: 'consul-health', reason: `Patroni's keys under "${prefix}" could not be read (${probe.message}): the health endpoint decides until a read succeeds` };
  }
}

/** Options of {@link AutoSource}: those of its two parts (the logger is taken from `kv`). */
export interface AutoSourceOptions {
  /** The Patroni KV watch (namespace, scope, promotion check). */
  readonly kv: PatroniKvSourceOptions;
  /** The health watch (service, tags, near). */
  readonly health: ConsulHealthSourceOptions;
}

/** The fields of the info line of a path change. */
const LOG_FIELDS = { source: 'auto' } as const;

/**
 * A {@link DiscoverySource} that runs a {@link PatroniKvSource} and a
 * {@link ConsulHealthSource} side by side and reports, per {@link decideAutoPath}:
 * - `patroni+health`: {@link mergeTopologies} of both (exactly what
 *   `discovery: 'patroni+health'` reports), once both have answered;
 * - `consul-health`: the health answers as they are.
 *
 * The KV watch keeps running on the `consul-health` path (blocking on the prefix's index
 * after a 404; retrying with the usual backoff after a 403), so keys that appear — or a
 * token that gains `key:read` — switch the path on the next answer, and keys that vanish
 * switch it back. Each change of path is logged once at info level with its reason; while
 * the KV path is not in force, the KV watch's own failures are logged at debug level only
 * and not reported through `onError`. Health failures are always reported.
 *
 * @example
 * ```ts
 * const source = new AutoSource({ kv: { ...settings, namespace: 'service', scope: 'pglab' },
 *   health: { ...settings, service: 'pglab', primaryTags: ['master', 'primary'], replicaTags: ['replica'] } });
 * source.start({ onUpdate: (u) => apply(u), onError: (e) => log(e) });
 * source.path; // 'patroni+health' once Patroni's keys were read
 * await source.stop();
 * ```
 */
export class AutoSource implements DiscoverySource {
  readonly #kv: PatroniKvSource;
  readonly #health: ConsulHealthSource;
  readonly #prefix: string;
  readonly #logger: DiscoveryLogger | undefined;
  #listener: DiscoveryListener | undefined;
  #path: AutoPath | undefined;
  #lastAnswer: PatroniKvProbe = { kind: 'absent' };
  #lastKv: TopologyUpdate | undefined;
  #lastHealth: TopologyUpdate | undefined;
  readonly #pair: SourcePair;

  /**
   * @param options see {@link AutoSourceOptions}; validated by the two sources
   * @param transport the HTTP transport of both (tests inject a fake)
   * @throws TypeError / RangeError on invalid options
   */
  constructor(options: AutoSourceOptions, transport: ConsulTransport = consulGet) {
    this.#prefix = patroniKvPrefix(options.kv.namespace, options.kv.scope);
    this.#logger = options.kv.logger;
    const logger = this.#logger;
    const kvLogger: DiscoveryLogger | undefined =
      logger === undefined
        ? undefined
        : (level, message, fields) => logger(this.#path === 'patroni+health' || level === 'debug' ? level : 'debug', message, fields);
    const observed: ConsulTransport = async (config, path, query, opts) => {
      const res = await transport(config, path, query, opts);
      this.#lastAnswer = kvProbeFromAnswer(res.body, res.headers, this.#prefix);
      return res;
    };
    this.#kv = new PatroniKvSource({ ...options.kv, logger: kvLogger }, observed);
    this.#health = new ConsulHealthSource(options.health, transport);
    this.#pair = new SourcePair('AutoSource', this.#kv, this.#health);
  }

  /** The path in force; undefined until the first KV answer (or failure). */
  get path(): AutoPath | undefined {
    return this.#path;
  }

  /** Requests made by both watches. */
  get requestCount(): number {
    return this.#pair.requestCount;
  }

  /**
   * Starts both watches.
   *
   * @param listener receives the updates of the path in force and the errors that matter
   * @throws Error when called twice or after {@link AutoSource.stop}
   */
  start(listener: DiscoveryListener): void {
    this.#pair.begin();
    this.#listener = listener;
    this.#kv.start({
      onUpdate: (update) => {
        this.#lastKv = update;
        this.#decide(this.#lastAnswer);
      },
      onError: (error, info) => {
        const wasKv = this.#path === 'patroni+health';
        const probe = kvProbeFromError(error);
        this.#decide(probe);
        if (wasKv && probe.kind === 'failed') this.#forward((l) => l.onError(error, info));
      },
      onSkippedEntry: (reason) => {
        if (this.#path === 'patroni+health') this.#forward((l) => l.onSkippedEntry?.(reason));
      },
    });
    this.#health.start({
      onUpdate: (update) => {
        this.#lastHealth = update;
        this.#emit();
      },
      onError: (error, info) => this.#forward((l) => l.onError(error, info)),
      onSkippedEntry: (reason) => this.#forward((l) => l.onSkippedEntry?.(reason)),
    });
  }

  /** Asks both watches for a fresh answer. */
  refresh(): void {
    this.#pair.refresh();
  }

  /**
   * Stops both watches; no callback afterwards. Idempotent.
   *
   * @returns resolves when both have stopped
   */
  stop(): Promise<void> {
    return this.#pair.stop();
  }

  #decide(probe: PatroniKvProbe): void {
    if (!this.#pair.running) return;
    const decision = decideAutoPath(this.#path, probe, this.#prefix);
    if (decision.path !== this.#path) {
      const from = this.#path;
      this.#path = decision.path;
      try {
        this.#logger?.('info', `discovery auto: ${decision.path} — ${decision.reason}`, { ...LOG_FIELDS, path: decision.path, from: from ?? null });
      } catch {
        // A throwing logger must not break discovery.
      }
    }
    this.#emit();
  }

  #emit(): void {
    if (!this.#pair.running || this.#lastHealth === undefined) return;
    if (this.#path === 'consul-health') this.#forward((l) => l.onUpdate(this.#lastHealth!));
    else if (this.#path === 'patroni+health' && this.#lastKv !== undefined) {
      const merged = mergeTopologies(this.#lastKv, this.#lastHealth, PATRONI_HEALTH_SOURCE);
      this.#forward((l) => l.onUpdate(merged));
    }
  }

  #forward(fn: (listener: DiscoveryListener) => void): void {
    const listener = this.#listener;
    if (!this.#pair.running || listener === undefined) return;
    fn(listener);
  }
}
