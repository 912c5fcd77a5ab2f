/**
 * Free TCP ports on loopback for test servers.
 * @module
 */
import { createServer } from 'node:net';

/**
 * Asks the kernel for `count` distinct free ephemeral ports on 127.0.0.1 (binds port 0, reads
 * the port, closes). All sockets are held open until every port is known, so the ports are
 * distinct; another process could still take one before the caller binds it.
 *
 * @example
 * ```ts
 * const [pgPort, apiPort] = await freePorts(2);
 * ```
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('could not read a bound port');
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
  }
}

/**
 * One free ephemeral port on 127.0.0.1. See {@link freePorts}.
 *
 * @example
 * ```ts
 * const port = await freePort();
 * ```
 */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error('no port');
  return port;
}
