import pg from 'pg';
import { ConnectionFencedError, NotWritableError, markHookError, markTransientConnectError } from '../errors.js';
import type { DiscoveredNode } from '../topology/node.js';
import { nodePoolConfig } from './node-config.js';
import { NODE_POOL, destroySocket, fencedError, isInRecovery, markFenced, roleAwareClient } from './role-aware-client.js';
import type { ClientClass, ClientHookup, VerifyHook } from './role-aware-client.js';

export { connectionLost, isInRecovery } from './role-aware-client.js';

/** What a node pool reports to its owner. Listeners never throw back. */
export interface NodePoolEvents {
  /** A pg.Pool event to forward (`connect`, `acquire`, `release`, `remove`, `error`). */
  forward(event: 'connect' | 'acquire' | 'release' | 'remove' | 'error', args: unknown[], pool: NodePool): void;
  /** A new connection passed the role check (primary pools only). */
  confirmed(pool: NodePool): void;
  /** A checked-out client's connection failed (its holder sees the error on its next query). */
  checkedOutError(err: Error, pool: NodePool): void;
  /** Whether anyone listens for `event` from a pool of this role (forwarding is skipped otherwise). */
  wants(event: 'acquire' | 'release', role: 'primary' | 'replica'): boolean;
}

/** How often `drained()` looks at the queue while `end()` waits for it. */
const DRAIN_POLL_MILLIS = 5;

/**
 * The pg-pool lifecycle hooks of a node pool: `onConnect` runs the role check of primary
 * pools (then `confirmed`) before the caller's own `onConnect`; both hooks mark the caller's
 * errors as theirs (`markHookError`), so they reach the caller unchanged, never retried.
 */
function lifecycleHooks(
  base: Readonly<pg.PoolConfig>,
  node: DiscoveredNode,
  role: 'primary' | 'replica',
  roleCheckMillis: number,
  confirmed: () => void,
): { onConnect: (client: pg.ClientBase) => Promise<void>; verify: VerifyHook | undefined } {
  const userOnConnect = (base as { onConnect?: (client: pg.ClientBase) => unknown }).onConnect;
  const onConnect = async (client: pg.ClientBase): Promise<void> => {
    if (role === 'primary') {
      if (await isInRecovery(client, roleCheckMillis)) {
        throw new NotWritableError(
          `node ${node.address} is listed as primary but is in recovery (read-only); skipping it until the topology changes ` +
            '(Consul lags behind a switchover, or whatever sets its role is wrong: `npx pg-consul check` compares both)',
          { node: node.address },
        );
      }
      confirmed();
    }
    if (userOnConnect) {
      try {
        await userOnConnect(client);
      } catch (err) {
        markHookError(err);
        throw err;
      }
    }
  };
  const userVerify = (base as { verify?: VerifyHook }).verify;
  const verify: VerifyHook | undefined = userVerify
    ? (client, done) =>
        userVerify(client, (err) => {
          if (err) markHookError(err);
          done(err);
        })
    : undefined;
  return { onConnect, verify };
}

/** What a node pool needs besides the caller's pg options. */
export interface NodePoolLimits {
  /** The connect bound of a new connection when the caller set no `connectionTimeoutMillis` (0 = none). */
  readonly connectTimeoutMillis: number;
  /**
   * A counter the owner advances (the dead-peer sweep): each checkout records its value, so
   * "checked out for N sweeps" costs no clock read per statement.
   */
  readonly clock: { readonly tick: number };
}

const DEFAULT_LIMITS: NodePoolLimits = Object.freeze({ connectTimeoutMillis: 0, clock: Object.freeze({ tick: 0 }) });

/**
 * One pg.Pool for one node in one role. Primary pools check every new connection is
 * writable and fail the acquisition with {@link NotWritableError} when it is not.
 *
 * Two ways to stop using it: {@link NodePool.retire} drains (idle clients close now,
 * checked-out ones when released — for a node that merely changed role, e.g. a promoted
 * replica), {@link NodePool.fence} destroys every socket at once, in use, idle or still
 * connecting (for a node that is gone, failing, demoted or unreachable), so that no caller
 * waits on a server that vanished without a packet.
 */
export class NodePool {
  /** The node this pool connects to. */
  readonly node: DiscoveredNode;
  /** The role connections are used in. */
  readonly role: 'primary' | 'replica';
  /** The underlying pg.Pool. */
  readonly pg: pg.Pool;
  #retired = false;
  #fenced: string | undefined;
  #endPromise: Promise<void> | undefined;
  /** Every client this pool created and that has not ended yet (connecting ones included). */
  readonly #clients = new Set<pg.Client>();
  /** Clients that finished connecting (passed the role check). */
  readonly #connected = new WeakSet<object>();
  /** Checked-out clients, with the sweep tick of their checkout (oldest first: Map order). */
  readonly #busy = new Map<object, number>();
  readonly #clock: { readonly tick: number };
  #lastReleaseTick: number | undefined;

  /**
   * @param base the caller's pg options
   * @param node the node
   * @param role the role
   * @param events where pool events go
   * @param limits connect bound and sweep clock (defaults: no bound, a still clock)
   */
  constructor(base: Readonly<pg.PoolConfig>, node: DiscoveredNode, role: 'primary' | 'replica', events: NodePoolEvents, limits: NodePoolLimits = DEFAULT_LIMITS) {
    this.node = node;
    this.role = role;
    this.#clock = limits.clock;
    const config = nodePoolConfig(base, node);
    const Base = ((base as { Client?: ClientClass }).Client ?? pg.Client) as ClientClass;
    const { onConnect, verify } = lifecycleHooks(base, node, role, base.connectionTimeoutMillis || limits.connectTimeoutMillis, () => events.confirmed(this));
    const hookup: ClientHookup = { pool: this, connectTimeoutMillis: limits.connectTimeoutMillis };
    this.pg = new pg.Pool({ ...config, Client: roleAwareClient(Base), onConnect, ...(verify ? { verify } : {}), [NODE_POOL]: hookup } as pg.PoolConfig);
    this.#max = this.pg.options.max;
    // A checked-out client whose connection dies emits 'error'; pg.Pool.query guards its
    // own checkouts with a listener, and so must we, for ours and for the app's: the app
    // still sees the failure through its query, but the process never crashes.
    this.pg.on('connect', (client: pg.PoolClient) => {
      this.#connected.add(client);
      client.on('error', (err: Error) => {
        if (this.#busy.has(client)) events.checkedOutError(err, this);
      });
    });
    // acquire/release fire on every statement: one fixed-arity listener each, forwarding only
    // when the app listens (no rest-args array, no emit walk otherwise).
    this.pg.on('acquire', (client: pg.PoolClient) => {
      this.#busy.set(client, this.#clock.tick);
      if (events.wants('acquire', role)) events.forward('acquire', [client], this);
    });
    this.pg.on('release', (err: Error | undefined, client: pg.PoolClient) => {
      this.#busy.delete(client);
      this.#lastReleaseTick = this.#clock.tick;
      if (events.wants('release', role)) events.forward('release', [err, client], this);
    });
    for (const event of ['connect', 'remove', 'error'] as const) {
      this.pg.on(event, (...args: unknown[]) => events.forward(event, args, this));
    }
  }

  /** Address (`host:port`). */
  get address(): string {
    return this.node.address;
  }

  /** Whether this pool was retired or fenced (its node lost the role or left the topology). */
  get retired(): boolean {
    return this.#retired;
  }

  /** Clients checked out plus requests waiting for one: what "least busy" compares. */
  get load(): number {
    return this.pg.totalCount - this.pg.idleCount + this.pg.waitingCount;
  }

  /** Whether anything waits on this node: a checked-out or connecting client, or a queued checkout. */
  get busy(): boolean {
    return this.#clients.size > this.pg.idleCount || this.#busy.size > 0 || this.#waiting.size > 0;
  }

  /** The sweep tick at which the longest-held client still checked out was checked out; undefined when none is. */
  get oldestCheckoutTick(): number | undefined {
    for (const tick of this.#busy.values()) return tick;
    return undefined;
  }

  /** The sweep tick of the latest release (a statement completed on the node); undefined before the first. */
  get lastReleaseTick(): number | undefined {
    return this.#lastReleaseTick;
  }

  /** Every client this pool created that has not ended: connecting, idle or checked out. */
  get clients(): readonly pg.Client[] {
    return [...this.#clients];
  }

  /**
   * Registers a client this pool's Client class just created (called from its constructor).
   * @internal
   */
  adopt(client: pg.Client): void {
    if (this.#fenced !== undefined) {
      // Created after the fence (pg-pool was already connecting it): it never gets a socket to use.
      markFenced(client, new ConnectionFencedError(this.address, this.#fenced, false));
    }
    this.#clients.add(client);
    client.once('end', () => {
      this.#clients.delete(client);
      this.#busy.delete(client);
    });
  }

  /**
   * Checks out a client, like `pg.Pool.connect`, except that a checkout still waiting for a
   * free client when the pool is retired fails at once (with an error that classifies as a
   * retryable acquire failure, so the statement moves to the new node) — pg-pool's `end()`
   * would leave it waiting for ever.
   *
   * @param callback receives the client, or the error
   */
  connect(callback: (err: Error | undefined, client?: pg.PoolClient) => void): void {
    if (this.#retired) {
      callback(this.#retiredError());
      return;
    }
    if (this.pg.idleCount > 0 || this.pg.totalCount < this.#max) {
      // Served now (a new connection) or on the next tick (an idle one): nothing to strand,
      // as retire() ends the pg.Pool only after that tick.
      this.pg.connect(callback);
      return;
    }
    // The pool is full: the checkout queues inside pg-pool until a client is released.
    const waiter: Waiter = { callback, settled: false };
    this.#waiting.add(waiter);
    this.pg.connect((err, client) => {
      if (waiter.settled) {
        // Retired meanwhile: the pool is ending, so releasing destroys the client.
        client?.release();
        return;
      }
      waiter.settled = true;
      this.#waiting.delete(waiter);
      callback(err, client);
    });
  }

  /** The promise form of {@link NodePool.connect}. */
  checkout(): Promise<pg.PoolClient> {
    return new Promise((resolve, reject) => this.connect((err, client) => (err || !client ? reject(err) : resolve(client))));
  }

  /**
   * Stops using this pool gracefully: idle connections close now, checked-out ones on
   * release, and checkouts still waiting fail at once (retryable). Resolves when every
   * connection is gone. Idempotent.
   */
  retire(): Promise<void> {
    this.#retired = true;
    // One tick later: checkouts already handed an idle client's turn by pg-pool (served on
    // the next tick) get it rather than being stranded by end().
    this.#endPromise ??= new Promise<void>((resolve) => process.nextTick(resolve)).then(() => this.pg.end()).catch(() => undefined);
    this.#failWaiting();
    return this.#endPromise;
  }

  /**
   * Fences the node: retires the pool and destroys every socket to it at once — idle ones,
   * connecting ones, and those of checked-out clients, whose pending statement fails with a
   * {@link ConnectionFencedError} (`sent: true`) and whose later calls fail with one
   * (`sent: false`). Nothing waits for a FIN or an answer the peer may never send.
   * Idempotent; resolves when every connection is gone.
   *
   * @param reason why (secret-free; carried by the errors)
   */
  fence(reason: string): Promise<void> {
    if (this.#fenced !== undefined) return this.#endPromise ?? Promise.resolve();
    this.#fenced = reason;
    this.#retired = true;
    this.#failWaiting();
    // pg-pool's end() removes idle clients (ending them, so their close raises no error) and
    // resolves once every client is gone — which the destroyed sockets below make immediate.
    this.#endPromise ??= this.pg.end().catch(() => undefined);
    for (const client of [...this.#clients]) {
      markFenced(client, new ConnectionFencedError(this.address, reason, false));
      const inUse = this.#busy.has(client);
      const connecting = !this.#connected.has(client);
      destroySocket(client, inUse ? new ConnectionFencedError(this.address, reason, true) : connecting ? fencedError(client) : undefined);
    }
    return this.#endPromise;
  }

  #failWaiting(): void {
    for (const waiter of this.#waiting) {
      waiter.settled = true;
      waiter.callback(this.#retiredError());
    }
    this.#waiting.clear();
  }

  /**
   * Resolves once no checkout is queued in this pool any more (they were served by released
   * clients, or failed), or after `maxMillis` at the latest. Used by `end()` to let work
   * accepted before it finish, as pg-pool does.
   *
   * @param maxMillis the bound
   */
  drained(maxMillis: number): Promise<void> {
    // A fenced pool has failed its queue (pg-pool's own queue is never answered once it ends).
    const done = (): boolean => this.#fenced !== undefined || (this.pg.waitingCount === 0 && this.#waiting.size === 0);
    if (done()) return Promise.resolve();
    const deadline = Date.now() + maxMillis;
    return new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (done() || Date.now() >= deadline) {
          clearInterval(timer);
          resolve();
        }
      }, DRAIN_POLL_MILLIS);
      timer.unref();
    });
  }

  /** Checkouts queued in pg-pool because it was full. */
  readonly #waiting = new Set<Waiter>();
  /** pg-pool's `max` (its default 10 when unset). */
  readonly #max: number;

  #retiredError(): Error {
    if (this.#fenced !== undefined) return new ConnectionFencedError(this.address, this.#fenced, false);
    // Marked transient: retried on the next selection (it has no code).
    return markTransientConnectError(new Error(`the connection pool of ${this.node.address} was closed: the node lost its ${this.role} role`));
  }
}

/** A checkout waiting in {@link NodePool.connect}. */
interface Waiter {
  readonly callback: (err: Error | undefined, client?: pg.PoolClient) => void;
  settled: boolean;
}
