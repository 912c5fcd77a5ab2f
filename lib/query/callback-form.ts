/**
 * pg's callback forms on top of promises: a node-style callback is called outside the promise
 * chain (a callback that throws crashes as it would with pg.Pool, never becomes an unhandled
 * rejection), and the test pg uses to tell a Submittable (cursor, stream) from a statement.
 * @module
 */
import type pg from 'pg';

/** A node-style callback. */
export type Callback<T> = (err: Error | undefined, result?: T) => void;

/** Calls a node-style callback outside the promise chain, so a throwing callback is not swallowed. */
export function settle<T>(promise: Promise<T>, cb: Callback<T>): void {
  promise.then(
    (result) => invoke(() => cb(undefined, result)),
    (err: Error) => invoke(() => cb(err)),
  );
}

/** Runs `fn`; what it throws is rethrown on the next tick (an uncaught exception, as from a pg callback), never swallowed. */
export function invoke(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    process.nextTick(() => {
      throw err;
    });
  }
}

/** Whether `x` is a pg Submittable (it has a `submit` method), which pg runs as given. */
export function isSubmittable(x: unknown): x is pg.Submittable {
  return typeof x === 'object' && x !== null && typeof (x as { submit?: unknown }).submit === 'function';
}

