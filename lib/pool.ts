import type pg from 'pg';
import { Cluster } from './cluster.js';
import type { DiscoverySource } from './discovery/discovery-source.js';
import type { PoolOptions as BasePoolOptions, DiscoveryMode, ResolvedOptions } from './options.js';
import { resolvePoolSetup } from './pool-setup.js';
import { RoutedPool } from './routed-pool.js';
import { Session } from './routing/session.js';
import type { SessionHost } from './routing/session.js';
import { decodeSessionToken } from './routing/session-token.js';
import type { TopologySnapshot } from './topology/snapshot.js';

const ENDED_TWICE = 'Called end on pool more than once';

/**
 * Options of {@link Pool}: every pg.Pool option, pg-consul's own (see the `options` module),
 * and optionally a custom discovery source.
 */
export interface PoolOptions extends BasePoolOptions {
  /**
   * Where the topology comes from: a mode name (`consul-health` — the default —, `patroni`,
   * `patroni+health`, `prepared-query`, `static`; see the `options` module), or a discovery
   * source object (advanced: tests, custom registries; `service` and `consul` are then not
   * needed).
   */
  discovery?: DiscoveryMode | DiscoverySource;
}

/** pg.Pool's `options` with its defaults filled in, as pg.Pool reports them. */
function pgPoolOptions(pgConfig: Readonly<pg.PoolConfig>): pg.PoolOptions {
  return Object.freeze({
    ...pgConfig,
    max: pgConfig.max || 10,
    min: pgConfig.min ?? 0,
    maxUses: pgConfig.maxUses ?? Infinity,
    allowExitOnIdle: pgConfig.allowExitOnIdle ?? false,
    maxLifetimeSeconds: pgConfig.maxLifetimeSeconds ?? 0,
    idleTimeoutMillis: pgConfig.idleTimeoutMillis ?? 10000,
  }) as pg.PoolOptions;
}

/**
 * A pg.Pool-compatible view of one path of a {@link Pool}: `pool.primary` (writes) or
 * `pool.replica` (reads). Hand it to any library that takes a pg.Pool.
 *
 * Calling `end()` on a view ends the whole Pool it belongs to (the views own nothing of
 * their own); calling it again, or on the other view, returns the same promise.
 *
 * @example
 * ```ts
 * import { Kysely, PostgresDialect } from 'kysely';
 * const reads = new Kysely<DB>({ dialect: new PostgresDialect({ pool: pool.replica }) });
 * ```
 */
export class RolePool extends RoutedPool {
  readonly #owner: Pool;

  /** @internal */
  constructor(owner: Pool, cluster: Cluster, intent: 'primary' | 'replica', options: pg.PoolOptions) {
    super(cluster, intent, options);
    this.#owner = owner;
  }

  /** Which path this view routes to. */
  get role(): 'primary' | 'replica' {
    return this.intent;
  }

  /** @internal */
  protected override get countsAllRoles(): boolean {
    return false;
  }

  /**
   * Ends the Pool this view belongs to (see {@link Pool.end}); calling it again, or on the
   * other view, returns the same promise.
   *
   * @returns resolves when the Pool has ended
   */
  end(): Promise<void>;
  /**
   * Ends the Pool this view belongs to (see {@link Pool.end}), node-style.
   *
   * @param callback called once the Pool has ended (with the error, if ending failed)
   */
  end(callback: () => void): void;
  end(callback?: () => void): Promise<void> | void {
    const promise = this.#owner.endOnce();
    if (!callback) return promise;
    promise.then(callback, callback);
  }
}

/**
 * A drop-in replacement for node-postgres's `pg.Pool` that follows a Patroni cluster through
 * Consul: writes (and `query`/`connect`) go to the current primary, `pool.replica` spreads
 * reads over the passing replicas, and statements that certainly did not run are retried
 * transparently while a failover is under way.
 *
 * @example
 * ```ts
 * import { Pool } from 'pg-consul';
 * const pool = new Pool({ service: 'pglab', consul: { host: '127.0.0.1', port: 8500 }, user: 'app', database: 'app' });
 * await pool.query('INSERT INTO t(v) VALUES ($1)', [1]);            // → primary
 * const { rows } = await pool.replica.query('SELECT count(*) FROM t'); // → a replica
 * pool.on('failover', (e) => console.log(`${e.from?.name} → ${e.to.name} in ${e.durationMillis} ms`));
 * await pool.end();
 * ```
 */
export class Pool extends RoutedPool {
  /** The write path as a pg.Pool-compatible object (same routing as the Pool itself). */
  readonly primary: RolePool;
  /** The read path: a pg.Pool-compatible object whose statements go to a replica. */
  readonly replica: RolePool;
  /** The resolved configuration (secrets included: do not log it). @internal */
  readonly #resolved: ResolvedOptions;
  /** What read-your-writes sessions use of this pool. */
  readonly #sessionHost: SessionHost;
  #endPromise: Promise<void> | undefined;

  /**
   * @param options pg.Pool options plus pg-consul's (see {@link PoolOptions}); every
   *   pg-consul option can also come from the environment (`PGCONSUL_*`, `CONSUL_*`).
   * @throws TypeError naming the option when an option or environment variable is invalid
   */
  constructor(options?: PoolOptions) {
    const setup = resolvePoolSetup(options ?? {});
    const pgOptions = pgPoolOptions(setup.resolved.pg);
    const emitters: { pool?: Pool; primary?: RolePool; replica?: RolePool } = {};
    const cluster = new Cluster(
      setup.settings,
      setup.source,
      {
        get pool() {
          return emitters.pool!;
        },
        get primary() {
          return emitters.primary!;
        },
        get replica() {
          return emitters.replica!;
        },
      },
      setup.resolved.logger,
    );
    super(cluster, 'primary', pgOptions);
    this.#resolved = setup.resolved;
    emitters.pool = this;
    this.primary = new RolePool(this, cluster, 'primary', pgOptions);
    this.replica = new RolePool(this, cluster, 'replica', pgOptions);
    emitters.primary = this.primary;
    emitters.replica = this.replica;
    this.autoReadRouting = setup.autoReadRouting;
    this.#sessionHost = Object.freeze({
      cluster,
      autoReadRouting: setup.autoReadRouting,
      readRun: (text, values) => this.replica.run(text, values),
      primaryRun: (text, values) => this.primary.run(text, values),
      transaction: (callback, options) => this.primary.transaction(callback, options),
      log: setup.resolved.logger,
    } satisfies SessionHost);
    cluster.start();
  }

  /**
   * A read-your-writes session: its reads see its own writes — also across requests and
   * processes when its `token` is carried along — without a shared store. Writes go to the
   * primary as with `pool.query` and record the primary's WAL position (one extra round trip
   * per write); reads (`session.replica`) go to a replica that has replayed that position,
   * else to the primary. While a session has no position, its reads cost exactly what
   * `pool.replica` reads cost. See docs/read-routing.md.
   *
   * @param token a token from an earlier session's `token` (cookie, header…); `undefined`
   *   or `''` for a fresh session
   * @throws TypeError for a malformed token (never echoed in the message)
   *
   * @example
   * ```ts
   * const s = pool.session(req.cookies.pgs);
   * await s.query('UPDATE users SET name = $1 WHERE id = $2', [name, id]);
   * const user = await s.replica.one('SELECT * FROM users WHERE id = $1', [id]); // sees the new name
   * res.cookie('pgs', s.token);
   * ```
   */
  session(token?: string): Session {
    return new Session(this.#sessionHost, decodeSessionToken(token));
  }

  /** The topology now in force (immutable; compare with `!==` to detect a change). */
  get topology(): TopologySnapshot {
    return this.cluster.topology;
  }

  /** The Consul service this pool follows. */
  get service(): string {
    return this.#resolved.service;
  }

  /** HTTP requests made to Consul so far. */
  get discoveryRequestCount(): number {
    return this.cluster.discoveryRequests;
  }

  /** @internal */
  protected override get countsAllRoles(): boolean {
    return true;
  }

  /**
   * Waits until discovery has named a primary, e.g. at startup before serving traffic.
   * Never needed for correctness: statements wait by themselves.
   *
   * @param timeoutMillis defaults to `failoverTimeoutMillis`
   * @returns the topology with a primary
   * @throws NoPrimaryError when none was named in time, PoolEndedError when the pool ends
   */
  ready(timeoutMillis?: number): Promise<TopologySnapshot> {
    return this.cluster.waitForPrimary(timeoutMillis ?? this.#resolved.failoverTimeoutMillis);
  }

  /**
   * Stops following Consul (aborting the in-flight blocking request), fails statements still
   * waiting out a failover with `PoolEndedError`, and ends every connection; resolves when
   * checked-out clients were released and everything is closed. As with pg.Pool, calling it
   * twice rejects with `Called end on pool more than once`.
   *
   * @returns resolves when everything is closed
   */
  end(): Promise<void>;
  /**
   * Callback form of {@link Pool.end}: the same shutdown, reported to a node-style callback
   * instead of a promise.
   *
   * @param callback called once everything is closed, with the error if ending failed (e.g.
   *   `Called end on pool more than once` on a second call)
   */
  end(callback: () => void): void;
  end(callback?: () => void): Promise<void> | void {
    const promise = this.#endPromise ? Promise.reject(new Error(ENDED_TWICE)) : this.endOnce();
    if (!callback) return promise;
    promise.then(callback, callback);
  }

  /** Ends once; later calls return the same promise. @internal */
  endOnce(): Promise<void> {
    this.#endPromise ??= this.cluster.end();
    return this.#endPromise;
  }
}
