import { Socket } from 'node:net';

/** What a reachability probe found: the server answered, or why not (secret-free). */
export type ReachabilityResult = { readonly reachable: true } | { readonly reachable: false; readonly reason: string };

/**
 * Probes whether a PostgreSQL server is there at all, the way pg-consul's dead-peer detection
 * needs it: a fresh TCP connection, then an `SSLRequest` (8 bytes), and any one-byte answer
 * (`S`, `N`, or an error) means the host is up and its postmaster forks backends. No
 * credentials are sent, nothing is logged by the server (PostgreSQL stays silent when a
 * client leaves right after SSL negotiation), and a CPU-saturated server still answers within
 * milliseconds — it is the black-holed or crashed host that does not.
 *
 * @example
 * ```ts
 * const r = await probeReachable('10.0.0.1', 5432, 1000);
 * if (!r.reachable) console.log('dead peer:', r.reason); // e.g. 'no answer within 1000 ms'
 * ```
 */
export type ProbeReachable = (host: string, port: number, timeoutMillis: number, signal?: AbortSignal) => Promise<ReachabilityResult>;

/** PostgreSQL's SSLRequest: length 8, code 80877103. */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

/**
 * The default {@link ProbeReachable}: resolves (never rejects) within `timeoutMillis` plus a
 * tick, once its socket is closed — so nothing is left open when it resolves. The socket is
 * unref'd: a probe never keeps the process alive. Aborting `signal` ends it at once
 * (`reachable: false`).
 *
 * @param host the server's host
 * @param port the server's port
 * @param timeoutMillis how long to wait for the connection and the answer together
 * @param signal aborts the probe
 */
export const probeReachable: ProbeReachable = (host, port, timeoutMillis, signal) =>
  new Promise((resolve) => {
    const socket = new Socket();
    let result: ReachabilityResult | undefined;
    const finish = (r: ReachabilityResult): void => {
      if (result !== undefined) return;
      result = r;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
    };
    const onAbort = (): void => finish({ reachable: false, reason: 'aborted' });
    const timer = setTimeout(() => finish({ reachable: false, reason: `no answer within ${timeoutMillis} ms` }), timeoutMillis);
    timer.unref();
    socket.unref();
    socket.once('error', (err: NodeJS.ErrnoException) => finish({ reachable: false, reason: err.code ?? err.message }));
    socket.once('data', () => finish({ reachable: true }));
    socket.once('close', () => {
      finish({ reachable: false, reason: 'closed without an answer' });
      resolve(result!);
    });
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.connect({ host, port }, () => socket.write(SSL_REQUEST));
  });
