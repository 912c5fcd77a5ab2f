/**
 * The statements of one Pool that wait out a failover: each waits for its backoff delay, or
 * less when the topology changes or the pool ends (then every one is woken at once).
 * @module
 */

/** The waits of the retry loops (see the module description). */
export class ChangeWaiters {
  readonly #waiters = new Set<() => void>();

  /** How many waits are pending. */
  get size(): number {
    return this.#waiters.size;
  }

  /**
   * Resolves after `ms`, or earlier at the next {@link ChangeWaiters.wakeAll}.
   * The timer is not unref'd: a statement waiting out a failover keeps the process alive, as
   * a pending pg.Pool checkout does.
   * @param ms the longest wait
   */
  wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.add(done);
    });
  }

  /** Ends every pending wait now (a topology change, or the pool ending). */
  wakeAll(): void {
    for (const w of [...this.#waiters]) w();
  }
}
