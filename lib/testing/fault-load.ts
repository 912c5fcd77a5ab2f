/**
 * A load for network-fault tests and benchmarks: writers insert unique ids on a write path,
 * readers query a read path, and every operation is recorded with when it started, when (or
 * whether) it settled, the server that answered and the error. Unlike {@link Workload},
 * stopping never waits without a bound: {@link FaultLoad.stop} waits at most a given time
 * and reports the callers still pending — the hung ones.
 *
 * @example
 * ```ts
 * const load = await FaultLoad.start({ write: (t, v) => pool.query(t, v), read: (t) => pool.replica.query(t), writers: 4, readers: 2 });
 * lab.blackHole('node1');
 * const hung = await load.stop(5_000);
 * ```
 * @module
 */

/** A query function: pg-consul's `pool.query`, a pg.Pool's, or an adapter around another client. */
export type FaultLoadQuery = (text: string, values?: unknown[]) => Promise<FaultLoadResult>;

/** What a {@link FaultLoadQuery} resolves with: pg's result shape, rows only. */
export interface FaultLoadResult {
  /** The rows returned. */
  rows: Record<string, unknown>[];
}

/** Options of {@link FaultLoad.start}. */
export interface FaultLoadOptions {
  /** Write path. */
  readonly write: FaultLoadQuery;
  /** Read path (default: the write path). */
  readonly read?: FaultLoadQuery;
  /** Concurrent writers (default 4). */
  readonly writers?: number;
  /** Concurrent readers (default 0). */
  readonly readers?: number;
  /** Pause between two operations of one worker, ms (default 10). */
  readonly intervalMillis?: number;
  /** Table written to; created by `start` when missing (default `netfault_writes`). */
  readonly table?: string;
  /** Create the table (default true). */
  readonly createTable?: boolean;
}

/** One operation. `endedAt` stays undefined while it is pending. */
export interface FaultOp {
  /** `write` or `read`. */
  readonly kind: 'write' | 'read';
  /** Row id of a write (0 for reads). */
  readonly id: number;
  /** When it was issued (ms since the epoch). */
  readonly startedAt: number;
  /** When it settled. */
  endedAt: number | undefined;
  /** `host:port` of the server that answered. */
  server: string | undefined;
  /** Whether the answering server was in recovery (reads). */
  inRecovery: boolean | undefined;
  /** The error it failed with. */
  error: unknown;
}

const SAFE_TABLE = /^[a-z_][a-z0-9_]*$/;

/** A running load; see the module documentation. */
export class FaultLoad {
  /** Every operation issued so far, in issue order. */
  readonly ops: FaultOp[] = [];
  readonly #write: FaultLoadQuery;
  readonly #read: FaultLoadQuery;
  readonly #interval: number;
  readonly #table: string;
  readonly #workers: Promise<void>[] = [];
  #running = true;
  #nextId = 1;

  private constructor(options: FaultLoadOptions, table: string) {
    this.#write = options.write;
    this.#read = options.read ?? options.write;
    this.#interval = options.intervalMillis ?? 10;
    this.#table = table;
  }

  /** Creates the table (unless told not to) and starts the workers. */
  static async start(options: FaultLoadOptions): Promise<FaultLoad> {
    const table = options.table ?? 'netfault_writes';
    if (!SAFE_TABLE.test(table)) throw new TypeError(`FaultLoad: option "table" must match ${String(SAFE_TABLE)}`);
    if (options.createTable !== false) await options.write(`CREATE TABLE IF NOT EXISTS ${table} (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())`);
    const load = new FaultLoad(options, table);
    for (let i = 0; i < (options.writers ?? 4); i++) load.#workers.push(load.#loop('write'));
    for (let i = 0; i < (options.readers ?? 0); i++) load.#workers.push(load.#loop('read'));
    return load;
  }

  /** The table written to. */
  get table(): string {
    return this.#table;
  }

  /**
   * Stops issuing operations and waits at most `boundMillis` for those in flight.
   * @returns the operations still pending after that: hung callers
   */
  async stop(boundMillis: number): Promise<FaultOp[]> {
    this.#running = false;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.#workers), new Promise<void>((r) => (timer = setTimeout(r, boundMillis)))]);
    clearTimeout(timer);
    return this.pending();
  }

  /** Operations not settled yet. */
  pending(): FaultOp[] {
    return this.ops.filter((o) => o.endedAt === undefined);
  }

  /** Settled operations that took longer than `boundMillis`, plus pending ones issued longer ago than that. */
  slowerThan(boundMillis: number, now = Date.now()): FaultOp[] {
    return this.ops.filter((o) => (o.endedAt ?? now) - o.startedAt > boundMillis);
  }

  /** Ids of acknowledged writes. */
  ackedIds(): number[] {
    return this.ops.filter((o) => o.kind === 'write' && o.endedAt !== undefined && o.error === undefined).map((o) => o.id);
  }

  /** Failed operations. */
  failures(kind?: 'write' | 'read'): FaultOp[] {
    return this.ops.filter((o) => o.error !== undefined && (kind === undefined || o.kind === kind));
  }

  /** The first write acknowledged by `server` that settled at or after `since`. */
  firstAckOn(server: string, since: number): FaultOp | undefined {
    return this.ops
      .filter((o) => o.kind === 'write' && o.error === undefined && o.server === server && (o.endedAt ?? 0) >= since)
      .sort((a, b) => (a.endedAt ?? 0) - (b.endedAt ?? 0))[0];
  }

  /** When the last operation issued before `before` settled (undefined when one of them is still pending). */
  lastSettledAt(before: number): number | undefined {
    let last = 0;
    for (const o of this.ops) {
      if (o.startedAt >= before) continue;
      if (o.endedAt === undefined) return undefined;
      last = Math.max(last, o.endedAt);
    }
    return last;
  }

  async #loop(kind: 'write' | 'read'): Promise<void> {
    while (this.#running) {
      const op: FaultOp = { kind, id: kind === 'write' ? this.#nextId++ : 0, startedAt: Date.now(), endedAt: undefined, server: undefined, inRecovery: undefined, error: undefined };
      this.ops.push(op);
      try {
        const res =
          kind === 'write'
            ? await this.#write(`INSERT INTO ${this.#table} (id) VALUES ($1) RETURNING host(inet_server_addr()) AS h, inet_server_port() AS p`, [op.id])
            : await this.#read('SELECT host(inet_server_addr()) AS h, inet_server_port() AS p, pg_is_in_recovery() AS r');
        const row = res.rows[0] ?? {};
        op.server = `${String(row['h'])}:${String(row['p'])}`;
        op.inRecovery = kind === 'read' ? row['r'] === true : undefined;
      } catch (err) {
        op.error = err;
      }
      op.endedAt = Date.now();
      if (this.#interval > 0 && this.#running) await new Promise((r) => setTimeout(r, this.#interval));
    }
  }
}
