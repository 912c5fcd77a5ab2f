/**
 * An application-like load for failover tests and demos: writers insert unique rows on the
 * write path, readers query the read path, and every operation is recorded with its timing,
 * the server that answered and the error (typed) if it failed.
 *
 * @example
 * ```ts
 * import { Workload } from 'pg-consul/testing';
 * const load = await Workload.start({ pool, writers: 4, readers: 4 });
 * // … switchover …
 * await load.stop();
 * console.log(load.summary());
 * ```
 * @module
 */

/** What a {@link WorkloadTarget} query resolves to: the slice of a pg `QueryResult` the workload reads. */
export interface WorkloadQueryResult {
  /** The rows returned, one object per row keyed by column name. */
  rows: Record<string, unknown>[];
}

/** The read path of a {@link WorkloadTarget} (`pool.replica`, or any pg.Pool). */
export interface WorkloadReadTarget {
  /** Runs a read-only statement (`pool.replica.query`). */
  query(text: string, values?: unknown[]): Promise<WorkloadQueryResult>;
}

/** The slice of a pg-consul Pool (or a pg.Pool pair) the workload drives. */
export interface WorkloadTarget {
  /** Write path (`pool.query`). */
  query(text: string, values?: unknown[]): Promise<WorkloadQueryResult>;
  /** Read path (`pool.replica`). */
  readonly replica: WorkloadReadTarget;
}

/** Options of {@link Workload.start}. */
export interface WorkloadOptions {
  /** What to drive. */
  readonly pool: WorkloadTarget;
  /** Concurrent writers (default 4). */
  readonly writers?: number;
  /** Concurrent readers (default 4). */
  readonly readers?: number;
  /** Pause between two operations of one worker, ms (default 5). */
  readonly intervalMillis?: number;
  /** Table to write to; dropped and created by `start` (default `pgconsul_workload`). */
  readonly table?: string;
  /** Clock (ms). */
  readonly now?: () => number;
}

/** How a failed operation failed: enough to classify without keeping the error. */
export interface OperationError {
  /** Error class name (`OutcomeUnknownError`, `FailoverTimeoutError`, `DatabaseError`…). */
  readonly name: string;
  /** pg-consul's code (`pgConsulCode`) when pg-consul raised it, else the SQLSTATE or Node code. */
  readonly code: string | undefined;
  /** pg-consul's outcome label, or `untyped` for an error without one. */
  readonly outcome: string;
  /** The message. */
  readonly message: string;
}

/** One write. */
export interface WriteRecord {
  /** Unique row id. */
  readonly id: number;
  /** When it was issued (ms). */
  readonly startedAt: number;
  /** When it settled (ms). */
  readonly endedAt: number;
  /** Port of the server that acknowledged it (undefined when it failed). */
  readonly port: number | undefined;
  /** The error, when it failed. */
  readonly error: OperationError | undefined;
}

/** One read. */
export interface ReadRecord {
  /** When it was issued (ms). */
  readonly startedAt: number;
  /** When it settled (ms). */
  readonly endedAt: number;
  /** Port of the server that answered. */
  readonly port: number | undefined;
  /** Whether that server was in recovery (a replica). */
  readonly inRecovery: boolean | undefined;
  /** The error, when it failed. */
  readonly error: OperationError | undefined;
}

/** Aggregates of a run (or of the part of it after `since`). */
export interface WorkloadSummary {
  /** Writes acknowledged. */
  readonly writesOk: number;
  /** Failed writes by outcome label (`unknown`, `not-executed`, `untyped`…). */
  readonly writesFailed: Readonly<Record<string, number>>;
  /** Reads answered. */
  readonly readsOk: number;
  /** Failed reads. */
  readonly readsFailed: number;
  /** Reads answered per server port. */
  readonly readsByPort: Readonly<Record<string, number>>;
  /** Writes acknowledged per server port. */
  readonly writesByPort: Readonly<Record<string, number>>;
  /** Longest time with no write acknowledged, ms (a stall). */
  readonly longestWriteGapMillis: number;
  /** When that gap started (ms). */
  readonly longestWriteGapStart: number;
}

function describe(err: unknown): OperationError {
  const e = err as { name?: unknown; code?: unknown; pgConsulCode?: unknown; outcome?: unknown; message?: unknown } | null;
  const code = typeof e?.pgConsulCode === 'string' ? e.pgConsulCode : e?.code;
  return {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    code: typeof code === 'string' ? code : undefined,
    outcome: typeof e?.outcome === 'string' ? e.outcome : 'untyped',
    message: typeof e?.message === 'string' ? e.message : String(err),
  };
}

const SAFE_TABLE = /^[a-z_][a-z0-9_]*$/;

/**
 * A running workload. Create with {@link Workload.start}; stop with {@link Workload.stop}.
 */
export class Workload {
  /** Every write so far, in completion order. */
  readonly writes: WriteRecord[] = [];
  /** Every read so far, in completion order. */
  readonly reads: ReadRecord[] = [];
  readonly #pool: WorkloadTarget;
  readonly #table: string;
  readonly #interval: number;
  readonly #now: () => number;
  #running = true;
  #nextId = 1;
  readonly #workers: Promise<void>[] = [];
  readonly #listeners = new Set<(w: WriteRecord) => void>();

  private constructor(options: WorkloadOptions, table: string) {
    this.#pool = options.pool;
    this.#table = table;
    this.#interval = options.intervalMillis ?? 5;
    this.#now = options.now ?? Date.now;
  }

  /**
   * (Re)creates the table on the write path and starts the workers.
   * @param options see {@link WorkloadOptions}
   */
  static async start(options: WorkloadOptions): Promise<Workload> {
    const table = options.table ?? 'pgconsul_workload';
    if (!SAFE_TABLE.test(table)) throw new TypeError(`Workload: option "table" must match ${SAFE_TABLE}`);
    await options.pool.query(`DROP TABLE IF EXISTS ${table}`);
    await options.pool.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, writer int NOT NULL, at timestamptz NOT NULL DEFAULT now())`);
    const w = new Workload(options, table);
    for (let i = 0; i < (options.writers ?? 4); i++) w.#workers.push(w.#writer(i));
    for (let i = 0; i < (options.readers ?? 4); i++) w.#workers.push(w.#reader());
    return w;
  }

  /** The table written to. */
  get table(): string {
    return this.#table;
  }

  /** Calls `listener` after every write settles (for live progress output). */
  onWrite(listener: (w: WriteRecord) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Ids of the acknowledged writes. */
  ackedIds(): number[] {
    return this.writes.filter((w) => !w.error).map((w) => w.id);
  }

  /** Stops issuing operations and waits for those in flight. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#workers);
  }

  /**
   * Aggregates the records.
   * @param since only operations issued at or after this time (ms)
   * @param until only operations issued before this time (ms)
   */
  summary(since = -Infinity, until = Infinity): WorkloadSummary {
    const inRange = (r: { startedAt: number }): boolean => r.startedAt >= since && r.startedAt < until;
    const writes = this.writes.filter(inRange);
    const reads = this.reads.filter(inRange);
    const writesFailed: Record<string, number> = {};
    const readsByPort: Record<string, number> = {};
    const writesByPort: Record<string, number> = {};
    for (const w of writes) {
      if (w.error) writesFailed[w.error.outcome] = (writesFailed[w.error.outcome] ?? 0) + 1;
      else writesByPort[String(w.port)] = (writesByPort[String(w.port)] ?? 0) + 1;
    }
    for (const r of reads) if (!r.error) readsByPort[String(r.port)] = (readsByPort[String(r.port)] ?? 0) + 1;
    const acks = writes.filter((w) => !w.error).map((w) => w.endedAt).sort((a, b) => a - b);
    let gap = 0;
    let gapStart = acks[0] ?? 0;
    for (let i = 1; i < acks.length; i++) {
      const d = acks[i]! - acks[i - 1]!;
      if (d > gap) {
        gap = d;
        gapStart = acks[i - 1]!;
      }
    }
    return {
      writesOk: writes.length - Object.values(writesFailed).reduce((a, b) => a + b, 0),
      writesFailed,
      readsOk: reads.filter((r) => !r.error).length,
      readsFailed: reads.filter((r) => r.error).length,
      readsByPort,
      writesByPort,
      longestWriteGapMillis: gap,
      longestWriteGapStart: gapStart,
    };
  }

  async #pause(): Promise<void> {
    if (this.#interval > 0) await new Promise((r) => setTimeout(r, this.#interval));
  }

  async #writer(writer: number): Promise<void> {
    while (this.#running) {
      const id = this.#nextId++;
      const startedAt = this.#now();
      let record: WriteRecord;
      try {
        const res = await this.#pool.query(
          `INSERT INTO ${this.#table} (id, writer) VALUES ($1, $2) RETURNING inet_server_port() AS port`,
          [id, writer],
        );
        record = { id, startedAt, endedAt: this.#now(), port: Number(res.rows[0]?.port), error: undefined };
      } catch (err) {
        record = { id, startedAt, endedAt: this.#now(), port: undefined, error: describe(err) };
      }
      this.writes.push(record);
      for (const l of this.#listeners) l(record);
      await this.#pause();
    }
  }

  async #reader(): Promise<void> {
    while (this.#running) {
      const startedAt = this.#now();
      try {
        const res = await this.#pool.replica.query('SELECT inet_server_port() AS port, pg_is_in_recovery() AS r');
        const row = res.rows[0] ?? {};
        this.reads.push({ startedAt, endedAt: this.#now(), port: Number(row.port), inRecovery: row.r === true, error: undefined });
      } catch (err) {
        this.reads.push({ startedAt, endedAt: this.#now(), port: undefined, inRecovery: undefined, error: describe(err) });
      }
      await this.#pause();
    }
  }
}
