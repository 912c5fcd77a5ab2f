/**
 * HAProxy in front of a Patroni cluster, configured like the usual seed setup: a `primary`
 * listener whose servers are health-checked with `OPTIONS /primary` against each node's
 * Patroni REST API, and a `replicas` listener checked with `/replica`
 * (`inter 3s fall 3 rise 2 on-marked-down shutdown-sessions`). HAProxy runs as a child
 * process (`-db`) from a config in a temp dir.
 *
 * The checks go through a tiny counting HTTP proxy per node (loopback, same process) so the
 * load HAProxy puts on Patroni's REST API is measured, not only computed from the config.
 * HAProxy's own log lines (server UP / DOWN) are kept with their arrival time.
 * @module
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePorts } from '../lib/testing/free-port.js';

/** Where HAProxy lives on Debian. */
export const HAPROXY_BIN = '/usr/sbin/haproxy';

/** One backend node: its PostgreSQL port and its Patroni REST port. */
export interface HaproxyNode {
  /** Member name (server name in the config). */
  readonly name: string;
  /** PostgreSQL port. */
  readonly pgPort: number;
  /** Patroni REST API port. */
  readonly apiPort: number;
  /** Address of PostgreSQL and the REST API (default 127.0.0.1; a NetLab address in bench/net-faults.ts). */
  readonly host?: string;
}

/** Health-check settings, as in the seed setup. */
export const CHECK_SETTINGS = { interMillis: 3_000, fall: 3, rise: 2 } as const;

/** One state change HAProxy logged. */
export interface HaproxyEvent {
  /** Arrival time of the log line (ms since the epoch). */
  readonly at: number;
  /** The line, trimmed. */
  readonly line: string;
}

/** One health-check request seen by the counting proxy. */
export interface CheckRecord {
  /** Arrival time (ms since the epoch). */
  readonly at: number;
  /** Member probed. */
  readonly node: string;
  /** `METHOD /path`. */
  readonly request: string;
  /** Status Patroni answered (0 when the REST API did not answer). */
  status: number;
}

/**
 * The HAProxy config text (pure). `checkPorts` maps a member to the port its checks go to
 * (the counting proxy; Patroni's REST port when there is none).
 */
export function haproxyConfig(nodes: readonly HaproxyNode[], primaryPort: number, replicasPort: number, checkPorts: ReadonlyMap<string, number>): string {
  const servers = (suffix: string): string[] =>
    nodes.map((n) => `    server ${n.name}${suffix} ${n.host ?? '127.0.0.1'}:${n.pgPort} maxconn 100 check ${n.host === undefined || !checkPorts.has(n.name) ? '' : 'addr 127.0.0.1 '}port ${checkPorts.get(n.name) ?? n.apiPort}`);
  const { interMillis, fall, rise } = CHECK_SETTINGS;
  return [
    'global',
    '    maxconn 400',
    '    nbthread 1',
    '',
    'defaults',
    '    mode tcp',
    '    retries 2',
    '    timeout client 30m',
    '    timeout connect 4s',
    '    timeout server 30m',
    '    timeout check 5s',
    '',
    'listen primary',
    `    bind 127.0.0.1:${primaryPort}`,
    '    option httpchk OPTIONS /primary',
    '    http-check expect status 200',
    `    default-server inter ${interMillis / 1000}s fall ${fall} rise ${rise} on-marked-down shutdown-sessions`,
    ...servers(''),
    '',
    'listen replicas',
    `    bind 127.0.0.1:${replicasPort}`,
    '    balance roundrobin',
    '    option httpchk OPTIONS /replica',
    '    http-check expect status 200',
    `    default-server inter ${interMillis / 1000}s fall ${fall} rise ${rise} on-marked-down shutdown-sessions`,
    ...servers('_r'),
    '',
  ].join('\n');
}

/** A running HAProxy with its counting check proxies. */
export class Haproxy {
  /** Port of the `primary` listener (writes). */
  readonly primaryPort: number;
  /** Port of the `replicas` listener (reads). */
  readonly replicasPort: number;
  /** The config it runs with. */
  readonly config: string;
  /** Every check request seen, oldest first. */
  readonly checks: readonly CheckRecord[];
  /** HAProxy's log lines, oldest first. */
  readonly events: HaproxyEvent[] = [];
  readonly #child: ChildProcess;
  readonly #proxies: Server[];
  readonly #dir: string;
  #stopped: Promise<void> | undefined;

  private constructor(init: { primaryPort: number; replicasPort: number; config: string; child: ChildProcess; proxies: Server[]; dir: string; checks: CheckRecord[] }) {
    this.checks = init.checks;
    this.primaryPort = init.primaryPort;
    this.replicasPort = init.replicasPort;
    this.config = init.config;
    this.#child = init.child;
    this.#proxies = init.proxies;
    this.#dir = init.dir;
  }

  /** Whether HAProxy is installed here. */
  static available(): boolean {
    return existsSync(HAPROXY_BIN);
  }

  /**
   * Starts the counting proxies and HAProxy.
   * @param nodes the Patroni members
   */
  static async start(nodes: readonly HaproxyNode[]): Promise<Haproxy> {
    const ports = await freePorts(2 + nodes.length);
    const [primaryPort, replicasPort, ...proxyPorts] = ports as [number, number, ...number[]];
    const checks: CheckRecord[] = [];
    const proxies: Server[] = [];
    const checkPorts = new Map<string, number>();
    for (const [i, n] of nodes.entries()) {
      const port = proxyPorts[i]!;
      proxies.push(await countingProxy(n, port, checks));
      checkPorts.set(n.name, port);
    }
    const dir = await mkdtemp(join(tmpdir(), 'bench-haproxy-'));
    const config = haproxyConfig(nodes, primaryPort, replicasPort, checkPorts);
    const file = join(dir, 'haproxy.cfg');
    await writeFile(file, config);
    const child = spawn(HAPROXY_BIN, ['-f', file, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const h = new Haproxy({ primaryPort, replicasPort, config, child, proxies, dir, checks });
    const onData = (chunk: Buffer): void => {
      const at = Date.now();
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') h.events.push({ at, line: line.trim() });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const exited = new Promise<never>((_, reject) => child.once('exit', (code, signal) => reject(new Error(`haproxy exited early (${signal ?? code}): ${h.events.map((e) => e.line).join(' | ')}`))));
    exited.catch(() => {});
    // Wait until it listens.
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) await exited;
      if (await canConnect(primaryPort)) break;
      if (Date.now() > deadline) {
        await h.stop();
        throw new Error('haproxy did not listen within 10 s');
      }
      await sleep(50);
    }
    return h;
  }

  /** Check requests seen since `since` (ms epoch), optionally up to `until`. */
  checksBetween(since: number, until = Infinity): number {
    let n = 0;
    for (const c of this.checks) if (c.at >= since && c.at < until) n++;
    return n;
  }

  /** Stops HAProxy and the proxies and removes the temp dir. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      if (this.#child.exitCode === null && this.#child.signalCode === null) {
        const gone = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
        this.#child.kill('SIGTERM');
        const timer = setTimeout(() => this.#child.kill('SIGKILL'), 3_000);
        await gone;
        clearTimeout(timer);
      }
      this.#child.stdout?.destroy();
      this.#child.stderr?.destroy();
      await Promise.all(
        this.#proxies.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
      await rm(this.#dir, { recursive: true, force: true });
    })();
    return this.#stopped;
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** An HTTP proxy on `port` that forwards to the member's Patroni REST API and records each request. */
async function countingProxy(node: HaproxyNode, port: number, out: CheckRecord[]): Promise<Server> {
  const server = createServer((req, res) => {
    const record: CheckRecord = { at: Date.now(), node: node.name, request: `${req.method ?? '?'} ${req.url ?? '/'}`, status: 0 };
    out.push(record);
    const upstream = request(
      { host: node.host ?? '127.0.0.1', port: node.apiPort, method: req.method, path: req.url, headers: { ...req.headers, connection: 'close' }, agent: false, timeout: 4_000 },
      (up) => {
        record.status = up.statusCode ?? 0;
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('timeout', () => upstream.destroy(new Error('timeout')));
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(503, { connection: 'close' });
      res.end();
    });
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}
