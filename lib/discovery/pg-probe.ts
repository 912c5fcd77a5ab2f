/**
 * Probing a PostgreSQL server's role the way libpq's `target_session_attrs` does: connect
 * with the pool's own credentials, ask whether it is in recovery and whether sessions are
 * read-only, disconnect.
 *
 * @module
 */
import { Socket } from 'node:net';
import pg from 'pg';
import type { NodeRole } from '../topology/node.js';

/** What a probe found out. */
export type ProbeResult =
  | {
      /** The server answered. */
      readonly reachable: true;
      /** `pg_is_in_recovery()`: a standby. */
      readonly inRecovery: boolean;
      /** `transaction_read_only` of a new session (e.g. `default_transaction_read_only = on`). */
      readonly readOnly: boolean;
    }
  | {
      /** The server could not be reached, refused us, or did not answer in time. */
      readonly reachable: false;
      /** Secret-free reason: a Node/SQLSTATE code or pg's message (never the password). */
      readonly reason: string;
    };

/** Per-probe options. */
export interface ProbeOptions {
  /** Unref the socket so a background probe does not keep the process alive (default false). */
  readonly unref?: boolean | undefined;
}

/**
 * Probes one server; resolves (never rejects) with a {@link ProbeResult}. Aborting `signal`
 * destroys the connection at once (the result is then `reachable: false`).
 */
export type ProbeServer = (host: string, port: number, signal: AbortSignal, options?: ProbeOptions) => Promise<ProbeResult>;

/** The statement a probe runs: one round trip, works on every supported PostgreSQL version. */
export const PROBE_SQL = "SELECT pg_is_in_recovery() AS in_recovery, current_setting('transaction_read_only') AS read_only";

/**
 * The role a probe result gives a node (pure), as libpq's `target_session_attrs` sees it:
 *
 * | probe                              | role      | libpq                    |
 * |------------------------------------|-----------|--------------------------|
 * | not reachable                      | `other`   | skipped                  |
 * | in recovery                        | `replica` | `standby`, `read-only`   |
 * | not in recovery, read-only session | `other`   | `read-only` only         |
 * | not in recovery, read-write        | `primary` | `read-write`, `primary`  |
 *
 * @param result the probe result
 * @returns the role
 *
 * @example
 * ```ts
 * roleFromProbe({ reachable: true, inRecovery: false, readOnly: false }); // 'primary'
 * ```
 */
export function roleFromProbe(result: ProbeResult): NodeRole {
  if (!result.reachable) return 'other';
  if (result.inRecovery) return 'replica';
  return result.readOnly ? 'other' : 'primary';
}

function reasonOf(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (typeof e?.code === 'string' && e.code !== '') return e.code;
  const message = typeof e?.message === 'string' && e.message !== '' ? e.message : String(err);
  return message.length > 120 ? `${message.slice(0, 117)}...` : message;
}

type ClientClass = new (config?: pg.ClientConfig) => pg.Client;

/**
 * A {@link ProbeServer} that connects with `pgConfig` (the pool's options: user, password,
 * database, ssl, Client class…) to the given host and port, with `connectionTimeoutMillis`
 * and `query_timeout` set to `timeoutMillis`, runs {@link PROBE_SQL} and disconnects. The
 * password and the rest of the configuration never appear in a result.
 *
 * @param pgConfig the pool's pg options (host/port are replaced per probe)
 * @param timeoutMillis connect and query deadline of one probe
 * @returns the probe function
 *
 * @example
 * ```ts
 * const probe = createPgProbe({ user: 'app', password: 's3cret', database: 'app' }, 1_000);
 * await probe('10.0.0.5', 5432, AbortSignal.timeout(5_000)); // { reachable: true, inRecovery: false, readOnly: false }
 * ```
 */
export function createPgProbe(pgConfig: Readonly<pg.PoolConfig>, timeoutMillis: number): ProbeServer {
  const Client = ((pgConfig as { Client?: ClientClass }).Client ?? pg.Client) as ClientClass;
  return async (host, port, signal, options = {}) => {
    if (signal.aborted) return { reachable: false, reason: 'aborted' };
    let socket: Socket | undefined;
    const own = (pgConfig as { stream?: unknown }).stream === undefined;
    const config: pg.ClientConfig = {
      ...(pgConfig as pg.ClientConfig),
      host,
      port,
      connectionTimeoutMillis: timeoutMillis,
      query_timeout: timeoutMillis,
      keepAlive: false,
      ...(own
        ? {
            stream: () => {
              socket = new Socket();
              if (options.unref === true) socket.unref();
              return socket;
            },
          }
        : {}),
    };
    const client = new Client(config);
    client.on('error', () => undefined);
    const onAbort = (): void => {
      if (socket !== undefined) socket.destroy();
      else void client.end().catch(() => undefined);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await client.connect();
      const res = await client.query<{ in_recovery: boolean; read_only: string }>(PROBE_SQL);
      const row = res.rows[0];
      if (row === undefined) return { reachable: false, reason: 'probe returned no row' };
      return { reachable: true, inRecovery: row.in_recovery === true, readOnly: row.read_only === 'on' };
    } catch (err) {
      return { reachable: false, reason: signal.aborted ? 'aborted' : reasonOf(err) };
    } finally {
      signal.removeEventListener('abort', onAbort);
      // Bounded: a half-dead connection must not keep the probe (and the source) waiting.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        client.end().catch(() => undefined),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMillis);
          timer.unref();
        }),
      ]);
      clearTimeout(timer);
      socket?.destroy();
    }
  };
}
