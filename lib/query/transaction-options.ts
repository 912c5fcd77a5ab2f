/**
 * Transaction options: validation, defaults and the `BEGIN` statement they make (pure).
 *
 * @example
 * ```ts
 * beginStatement(resolveTransactionOptions({ isolationLevel: 'serializable', readOnly: true }));
 * // → 'BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY'
 * ```
 * @module
 */
/** Isolation levels `transaction()` accepts (PostgreSQL runs `read uncommitted` as `read committed`). */
export type IsolationLevel = 'read committed' | 'repeatable read' | 'serializable';

/**
 * Options of `pool.transaction()`.
 *
 * @example
 * ```ts
 * await pool.transaction(work, { isolationLevel: 'serializable', maxAttempts: 10 });
 * await pool.replica.transaction(report, { readOnly: true, isolationLevel: 'repeatable read' });
 * ```
 */
export interface TransactionOptions {
  /** `BEGIN ISOLATION LEVEL …`; default: the server's `default_transaction_isolation`. */
  isolationLevel?: IsolationLevel;
  /** `READ ONLY` (true) or `READ WRITE` (false); default: the server's. Required (true) on `pool.replica`. */
  readOnly?: boolean;
  /** `DEFERRABLE` (true) or `NOT DEFERRABLE` (false); only matters for serializable read-only transactions. */
  deferrable?: boolean;
  /** Runs of the callback at most, the first included (integer ≥ 1). Default 5. */
  maxAttempts?: number;
}

/** Default of {@link TransactionOptions.maxAttempts}. */
export const DEFAULT_MAX_ATTEMPTS = 5;

/** {@link TransactionOptions} after validation. */
export interface ResolvedTransactionOptions {
  /** See {@link TransactionOptions.isolationLevel}. */
  readonly isolationLevel: IsolationLevel | undefined;
  /** See {@link TransactionOptions.readOnly}. */
  readonly readOnly: boolean | undefined;
  /** See {@link TransactionOptions.deferrable}. */
  readonly deferrable: boolean | undefined;
  /** See {@link TransactionOptions.maxAttempts}; the default filled in. */
  readonly maxAttempts: number;
}

const ISOLATION_LEVELS: ReadonlySet<string> = new Set<IsolationLevel>(['read committed', 'repeatable read', 'serializable']);

function optionalBoolean(options: TransactionOptions, name: 'readOnly' | 'deferrable'): boolean | undefined {
  const v = options[name];
  if (v !== undefined && typeof v !== 'boolean') throw new TypeError(`pg-consul: transaction option "${name}" must be a boolean`);
  return v;
}

/**
 * Validates transaction options and fills in defaults. Pure.
 *
 * @param options what the caller passed (may be undefined)
 * @throws TypeError naming the option when one is invalid
 *
 * @example
 * ```ts
 * resolveTransactionOptions({ isolationLevel: 'serializable' });
 * // → { isolationLevel: 'serializable', readOnly: undefined, deferrable: undefined, maxAttempts: 5 }
 * ```
 */
export function resolveTransactionOptions(options: TransactionOptions | undefined): ResolvedTransactionOptions {
  const o = options ?? {};
  if (typeof o !== 'object' || o === null) throw new TypeError('pg-consul: transaction options must be an object');
  const { isolationLevel, maxAttempts } = o;
  if (isolationLevel !== undefined && !ISOLATION_LEVELS.has(isolationLevel)) {
    throw new TypeError(`pg-consul: transaction option "isolationLevel" must be one of ${[...ISOLATION_LEVELS].map((l) => `'${l}'`).join(', ')}`);
  }
  if (maxAttempts !== undefined && !(Number.isInteger(maxAttempts) && maxAttempts >= 1)) {
    throw new TypeError('pg-consul: transaction option "maxAttempts" must be an integer ≥ 1');
  }
  return Object.freeze({
    isolationLevel,
    readOnly: optionalBoolean(o, 'readOnly'),
    deferrable: optionalBoolean(o, 'deferrable'),
    maxAttempts: maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
  });
}

/**
 * The `BEGIN` statement for resolved options. Pure.
 *
 * @param o validated options
 *
 * @example
 * ```ts
 * beginStatement(resolveTransactionOptions({ isolationLevel: 'serializable', readOnly: true, deferrable: true }));
 * // → 'BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE'
 * ```
 */
export function beginStatement(o: ResolvedTransactionOptions): string {
  const modes: string[] = [];
  if (o.isolationLevel !== undefined) modes.push(`ISOLATION LEVEL ${o.isolationLevel.toUpperCase()}`);
  if (o.readOnly !== undefined) modes.push(o.readOnly ? 'READ ONLY' : 'READ WRITE');
  if (o.deferrable !== undefined) modes.push(o.deferrable ? 'DEFERRABLE' : 'NOT DEFERRABLE');
  return modes.length === 0 ? 'BEGIN' : `BEGIN ${modes.join(', ')}`;
}
