import pRetry from 'p-retry';

/** Options of {@link waitUntil}. */
export interface WaitUntilOptions {
  /** Time between two checks, ms (default 50). */
  readonly intervalMillis?: number;
  /** Gives up at once when aborted. */
  readonly signal?: AbortSignal | undefined;
}

/** Thrown by a check that is not satisfied yet: p-retry retries it. */
class NotYet extends Error {}

/**
 * Polls `check` until it resolves `true`, at a fixed interval, for at most `timeoutMillis`
 * (p-retry drives the loop). A check that throws counts as "not yet"; its last error is
 * quoted in the timeout message.
 *
 * @param what what is awaited, for the error message
 * @param timeoutMillis how long to keep trying
 * @param check resolves true when the condition holds
 * @param options interval and abort signal
 * @throws Error `timed out after N ms waiting for <what>` (or `… aborted`)
 *
 * @example
 * ```ts
 * await waitUntil('node2 to accept writes', 30_000, async () => !(await isInRecovery(node2)));
 * ```
 */
export async function waitUntil(what: string, timeoutMillis: number, check: () => Promise<boolean>, options: WaitUntilOptions = {}): Promise<void> {
  const interval = options.intervalMillis ?? 50;
  let lastError: unknown;
  try {
    await pRetry(
      async () => {
        let ok: boolean;
        try {
          ok = await check();
        } catch (err) {
          lastError = err;
          throw new NotYet(what);
        }
        if (!ok) throw new NotYet(what);
      },
      {
        retries: Infinity,
        factor: 1,
        minTimeout: interval,
        maxTimeout: interval,
        randomize: false,
        maxRetryTime: timeoutMillis,
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
  } catch (err) {
    if (options.signal?.aborted === true) throw new Error(`gave up waiting for ${what}: aborted`);
    if (!(err instanceof NotYet)) throw err;
    const last = lastError === undefined ? '' : ` (last error: ${(lastError as Error).message})`;
    throw new Error(`timed out after ${timeoutMillis} ms waiting for ${what}${last}`);
  }
}
