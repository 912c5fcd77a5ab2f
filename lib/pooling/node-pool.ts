import pg from 'pg';
import { NotWritableError, markHookError } from '../errors.js';
import type { DiscoveredNode } from '../topology/node.js';
import { nodePoolConfig } from './node-config.js';

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

/** Clients currently checked out of a node pool. */
const checkedOut = new WeakSet<object>();

/**
 * `in_hot_standby` as last reported by the server to each client (ParameterStatus; PG ≥ 14).
 * Kept beside the client, never written onto it.
 */
const hotStandby = new WeakMap<object, string>();

/** Clients whose connection has ended or failed (kept beside them, never written onto them). */
const lostClients = new WeakSet<object>();

/**
 * Whether a client's connection ended or failed: after such a loss an error raised by a
 * query means the statement's outcome is unknown.
 */
export function connectionLost(client: object): boolean {
  return lostClients.has(client);
}

/** pg-pool's `verify` option: checks a new client, calling back with an error to refuse it. */
type VerifyHook = (client: pg.PoolClient, done: (err?: Error) => void) => void;

type ClientClass = new (config?: pg.ClientConfig) => pg.Client;
const roleAwareClasses = new WeakMap<ClientClass, ClientClass>();

/**
 * A subclass of the caller's Client class (pg.Client by default) that records the server's
 * `in_hot_standby` ParameterStatus, which PostgreSQL ≥ 14 sends at startup and again on
 * promotion: the role check then costs no round trip.
 */
function roleAwareClient(Base: ClientClass): ClientClass {
  let Cls = roleAwareClasses.get(Base);
  if (!Cls) {
    Cls = class RoleAwareClient extends Base {
      constructor(config?: pg.ClientConfig) {
        super(config);
        const connection = (this as unknown as { connection?: NodeJS.EventEmitter }).connection;
        const lost = (): void => {
          lostClients.add(this);
        };
        connection?.once('end', lost);
        connection?.once('error', lost);
        connection?.on('parameterStatus', (msg: { parameterName?: string; parameterValue?: string }) => {
          if (msg.parameterName === 'in_hot_standby' && typeof msg.parameterValue === 'string') {
            hotStandby.set(this, msg.parameterValue);
          }
        });
      }
    };
    roleAwareClasses.set(Base, Cls);
  }
  return Cls;
}

/**
 * Whether a freshly connected client's server is in recovery (read-only).
 * Uses `in_hot_standby` when the server reported it, else `SELECT pg_is_in_recovery()`.
 */
export async function isInRecovery(client: pg.ClientBase): Promise<boolean> {
  const reported = hotStandby.get(client);
  if (reported !== undefined) return reported === 'on';
  const res = await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
  return res.rows[0]?.r === true;
}

/**
 * One pg.Pool for one node in one role. Primary pools check every new connection is
 * writable and fail the acquisition with {@link NotWritableError} when it is not.
 * Retiring ends the pg.Pool: idle clients close at once, checked-out ones are destroyed
 * when released.
 */
export class NodePool {
  /** The node this pool connects to. */
  readonly node: DiscoveredNode;
  /** The role connections are used in. */
  readonly role: 'primary' | 'replica';
  /** The underlying pg.Pool. */
  readonly pg: pg.Pool;
  #retired = false;
  #endPromise: Promise<void> | undefined;

  /**
   * @param base the caller's pg options
   * @param node the node
   * @param role the role
   * @param events where pool events go
   */
  constructor(base: Readonly<pg.PoolConfig>, node: DiscoveredNode, role: 'primary' | 'replica', events: NodePoolEvents) {
    this.node = node;
    this.role = role;
    const config = nodePoolConfig(base, node);
    const userOnConnect = (base as { onConnect?: (client: pg.ClientBase) => unknown }).onConnect;
    const Base = ((base as { Client?: ClientClass }).Client ?? pg.Client) as ClientClass;
    const onConnect = async (client: pg.ClientBase): Promise<void> => {
      if (role === 'primary') {
        if (await isInRecovery(client)) {
          throw new NotWritableError(
            `node ${node.address} is listed as primary but is in recovery (read-only); skipping it until the topology changes`,
            { node: node.address },
          );
        }
        events.confirmed(this);
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
    this.pg = new pg.Pool({ ...config, Client: roleAwareClient(Base), onConnect, ...(verify ? { verify } : {}) } as pg.PoolConfig);
    this.#max = this.pg.options.max;
    // A checked-out client whose connection dies emits 'error'; pg.Pool.query guards its
    // own checkouts with a listener, and so must we, for ours and for the app's: the app
    // still sees the failure through its query, but the process never crashes.
    this.pg.on('connect', (client: pg.PoolClient) => {
      client.on('error', (err: Error) => {
        if (checkedOut.has(client)) events.checkedOutError(err, this);
      });
    });
    // acquire/release fire on every statement: one fixed-arity listener each, forwarding only
    // when the app listens (no rest-args array, no emit walk otherwise).
    this.pg.on('acquire', (client: pg.PoolClient) => {
      checkedOut.add(client);
      if (events.wants('acquire', role)) events.forward('acquire', [client], this);
    });
    this.pg.on('release', (err: Error | undefined, client: pg.PoolClient) => {
      checkedOut.delete(client);
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

  /** Whether this pool was retired (its node lost the role or left the topology). */
  get retired(): boolean {
    return this.#retired;
  }

  /** Clients checked out plus requests waiting for one: what "least busy" compares. */
  get load(): number {
    return this.pg.totalCount - this.pg.idleCount + this.pg.waitingCount;
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
   * Stops using this pool: idle connections close now, checked-out ones on release, and
   * checkouts still waiting fail at once (retryable). Resolves when every connection is
   * gone. Idempotent.
   */
  retire(): Promise<void> {
    this.#retired = true;
    // One tick later: checkouts already handed an idle client's turn by pg-pool (served on
    // the next tick) get it rather than being stranded by end().
    this.#endPromise ??= new Promise<void>((resolve) => process.nextTick(resolve)).then(() => this.pg.end()).catch(() => undefined);
    for (const waiter of this.#waiting) {
      waiter.settled = true;
      waiter.callback(this.#retiredError());
    }
    this.#waiting.clear();
    return this.#endPromise;
  }

  /**
   * Resolves once no checkout is queued in this pool any more (they were served by released
   * clients, or failed), or after `maxMillis` at the latest. Used by `end()` to let work
   * accepted before it finish, as pg-pool does.
   *
   * @param maxMillis the bound
   */
  drained(maxMillis: number): Promise<void> {
    if (this.pg.waitingCount === 0 && this.#waiting.size === 0) return Promise.resolve();
    const deadline = Date.now() + maxMillis;
    return new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if ((this.pg.waitingCount === 0 && this.#waiting.size === 0) || Date.now() >= deadline) {
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
    // No code: classified as a connect-time failure, i.e. retryable on the next selection.
    return new Error(`the connection pool of ${this.node.address} was closed: the node lost its ${this.role} role`);
  }
}

/** A checkout waiting in {@link NodePool.connect}. */
interface Waiter {
  readonly callback: (err: Error | undefined, client?: pg.PoolClient) => void;
  settled: boolean;
}
