/**
 * A black-holed TCP endpoint on loopback: a listener with a backlog of 0 that never accepts,
 * its one queue slot taken by a filler connection — further SYNs are dropped by the kernel,
 * so a `connect()` to it neither succeeds nor fails (like a firewall that drops packets).
 * Runs in a python3 child so Node's own accept loop cannot drain the queue.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import type { Readable } from 'node:stream';

/** A running black hole; {@link BlackHole.close} ends the child and the filler. */
export interface BlackHole {
  /** Port on 127.0.0.1 whose connects hang. */
  readonly port: number;
  /** Stops it. */
  close(): Promise<void>;
}

const SCRIPT = `
import socket, sys, time
s = socket.socket()
s.bind(('127.0.0.1', 0))
s.listen(0)
print(s.getsockname()[1], flush=True)
sys.stdin.read()
`;

/**
 * Starts a black hole.
 *
 * @returns its port and a close function
 */
export async function startBlackHole(): Promise<BlackHole> {
  const child: ChildProcessByStdio<null, Readable, null> = spawn('python3', ['-c', SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] }) as never;
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  const filler = net.connect(port, '127.0.0.1');
  filler.on('error', () => undefined);
  await once(filler, 'connect');
  return {
    port,
    async close() {
      filler.destroy();
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}
