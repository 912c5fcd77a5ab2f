/**
 * The Client class pg-consul's node pools create: a subclass of the caller's Client class
 * that records what the role check and the fencing need beside each client (never on it):
 * the server's `in_hot_standby` ParameterStatus, whether the connection was lost, and
 * whether the client was fenced (its later `query` calls then fail typed, nothing sent).
 * @module
 */
import type pg from 'pg';
import type { ConnectionFencedError } from '../errors.js';

/** What a role-aware client reports to the node pool that created it. */
export interface ClientOwner {
  /** Registers a client the pool's Client class just created (called from its constructor). */
  adopt(client: pg.Client): void;
}

/**
 * What pg-consul hands each client it creates, under a symbol key of the node pool's
 * configuration (pg ignores it): the node pool that owns the client (so it can fence every
 * socket, connecting ones included) and the connect bound.
 */
export const NODE_POOL = Symbol('pg-consul.nodePool');

export interface ClientHookup {
  readonly pool: ClientOwner;
  /** pg's `connectionTimeoutMillis` for this client when the caller set none (0 = none). */
  readonly connectTimeoutMillis: number;
}

/** Clients pg-consul fenced, with the error a later call on them fails with (kept beside them). */
const fencedClients = new WeakMap<object, ConnectionFencedError>();
/** Whether any client of the process was ever fenced: until then `query` skips the WeakMap lookup. */
let anyFenced = false;

/** The error a fenced client's calls fail with; undefined for a client that was not fenced. */
export function fencedError(client: object): ConnectionFencedError | undefined {
  return fencedClients.get(client);
}

/** Marks `client` fenced: its later `query` calls fail with `err`. */
export function markFenced(client: object, err: ConnectionFencedError): void {
  anyFenced = true;
  fencedClients.set(client, err);
}

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
export type VerifyHook = (client: pg.PoolClient, done: (err?: Error) => void) => void;

export type ClientClass = new (config?: pg.ClientConfig) => pg.Client;
const roleAwareClasses = new WeakMap<ClientClass, ClientClass>();

/**
 * A subclass of the caller's Client class (pg.Client by default) that records the server's
 * `in_hot_standby` ParameterStatus, which PostgreSQL ≥ 14 sends at startup and again on
 * promotion: the role check then costs no round trip.
 */
export function roleAwareClient(Base: ClientClass): ClientClass {
  let Cls = roleAwareClasses.get(Base);
  if (!Cls) {
    Cls = class RoleAwareClient extends Base {
      constructor(config?: pg.ClientConfig) {
        const hookup = (config as { [NODE_POOL]?: ClientHookup } | undefined)?.[NODE_POOL];
        // The caller's connectionTimeoutMillis wins (also pg-pool's checkout bound); without
        // one, pg-consul's connect bound covers TCP, TLS, startup and authentication.
        super(hookup && !config?.connectionTimeoutMillis ? withConnectTimeout(config, hookup.connectTimeoutMillis) : config);
        hookup?.pool.adopt(this);
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
    // A fenced client fails every later call with a typed, retryable error (nothing sent).
    const proto = Base.prototype as unknown as { query: (...args: unknown[]) => unknown };
    Cls.prototype.query = function fencedAwareQuery(this: pg.Client, config: unknown, values?: unknown, callback?: unknown): unknown {
      const fenced = anyFenced ? fencedClients.get(this) : undefined;
      // Looked up per call (not captured): the base class's query may be wrapped later (tracing, spies).
      if (fenced === undefined) return proto.query.call(this, config, values, callback);
      return failQuery(fenced, config, values, callback);
    } as typeof Cls.prototype.query;
    roleAwareClasses.set(Base, Cls);
  }
  return Cls;
}

/**
 * `config` with pg's `connectionTimeoutMillis` set; the password stays a non-enumerable
 * property, as pg-pool keeps it (so it never shows in a dump of the options).
 */
function withConnectTimeout(config: pg.ClientConfig | undefined, connectionTimeoutMillis: number): pg.ClientConfig {
  const bounded: pg.ClientConfig = { ...config, connectionTimeoutMillis };
  if (config && 'password' in config) {
    Object.defineProperty(bounded, 'password', { value: config.password, enumerable: false, writable: true, configurable: true });
  }
  return bounded;
}

/** Fails one `client.query(…)` call with `err` in the form the call expects (callback, Submittable or promise). */
function failQuery(err: Error, config: unknown, values: unknown, callback: unknown): unknown {
  const cb = typeof values === 'function' ? values : callback;
  const submittable = config as { submit?: unknown; handleError?: (e: Error) => void } | null;
  if (typeof submittable?.submit === 'function') {
    process.nextTick(() => submittable.handleError?.(err));
    return config;
  }
  if (typeof cb === 'function') {
    process.nextTick(() => (cb as (e: Error) => void)(err));
    return undefined;
  }
  return Promise.reject(err);
}

/** Destroys a client's socket at once (no FIN handshake to wait for): `err` reaches its pending queries. */
export function destroySocket(client: object, err?: Error): void {
  (client as { connection?: { stream?: { destroy(e?: Error): void } } }).connection?.stream?.destroy(err);
}

/**
 * Whether a freshly connected client's server is in recovery (read-only).
 * Uses `in_hot_standby` when the server reported it, else `SELECT pg_is_in_recovery()`.
 */
export async function isInRecovery(client: pg.ClientBase, timeoutMillis = 0): Promise<boolean> {
  const reported = hotStandby.get(client);
  if (reported !== undefined) return reported === 'on';
  const res = await client.query<{ r: boolean }>({ text: 'SELECT pg_is_in_recovery() AS r', ...(timeoutMillis > 0 ? { query_timeout: timeoutMillis } : {}) });
  return res.rows[0]?.r === true;
}

