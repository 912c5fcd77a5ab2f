/**
 * A mutating HTTP proxy in front of a Consul (double) for fuzz tests and benchmarks: each
 * request is passed through or answered with a fault picked by a seeded PRNG — truncated and
 * non-JSON bodies, wrong types, huge bodies, a missing / negative / backwards / stale index,
 * 403 / 429 / 500, a slow drip, a reset, a hang. Every {@link ConsulChaosProxy.listen} opens
 * a port of its own with its own request log, so one proxy can serve several Pools and count
 * each Pool's requests (ground truth: what reached the wire).
 *
 * @module
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { freePort } from './free-port.js';

/**
 * How the proxy answers:
 * - `pass`: forwards everything;
 * - `fuzz`: a seeded mix of {@link CHAOS_FAULTS} and passed-through answers;
 * - `error`: every request gets one of the error faults (never a valid answer);
 * - `hang`: accepts and never answers;
 * - `churn`: valid answers at once, the index one higher every time (valid index churn).
 */
export type ChaosMode = 'pass' | 'fuzz' | 'error' | 'hang' | 'churn';

/** The faults of `fuzz` mode (besides `pass`). */
export const CHAOS_FAULTS = [
  'truncated',
  'not-json',
  'wrong-type',
  'huge',
  'huge-declared',
  'no-index',
  'negative-index',
  'backwards-index',
  'same-index-early',
  'status-403',
  'status-429',
  'status-500',
  'drip',
  'reset',
  'hang',
] as const;

/** One fault of {@link CHAOS_FAULTS}, or `pass` / `churn`. */
export type ChaosFault = (typeof CHAOS_FAULTS)[number] | 'pass' | 'churn';

/** The error faults `error` mode picks from. */
const ERROR_FAULTS: readonly ChaosFault[] = ['truncated', 'not-json', 'wrong-type', 'huge-declared', 'status-403', 'status-429', 'status-500', 'reset'];

/** Options of {@link ConsulChaosProxy}. */
export interface ChaosProxyOptions {
  /** Port of the Consul (double) on 127.0.0.1 that good answers come from. */
  readonly upstreamPort: number;
  /** PRNG seed: the same seed and request order give the same faults. */
  readonly seed: number;
  /** Initial mode (default `fuzz`); change it with {@link ConsulChaosProxy.mode}. */
  readonly mode?: ChaosMode;
  /** Share of passed-through answers in `fuzz` mode, 0..1 (default 0.3). */
  readonly passShare?: number;
  /** Size of a `huge` body, bytes (default 20 MiB). */
  readonly hugeBytes?: number;
  /** Interval between the bytes of a `drip`, ms (default 200); a drip lasts at most 40 bytes. */
  readonly dripMillis?: number;
}

/** What one listening port saw. */
export interface ChaosPortStats {
  /** Arrival time (`Date.now()`) of every request. */
  readonly arrivals: number[];
  /** How often each fault was served. */
  readonly faults: Map<ChaosFault, number>;
}

/**
 * A small seeded PRNG (mulberry32), uniform in `[0, 1)`.
 *
 * @param seed any 32-bit integer
 * @returns the generator
 *
 * @example
 * ```ts
 * const random = seededRandom(42);
 * random(); // the same number on every run
 * ```
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The most events within any window of `millis` (e.g. the peak requests in one second).
 *
 * @param arrivals event times, ascending
 * @param millis window length
 * @returns the largest count
 *
 * @example
 * ```ts
 * maxInWindow([0, 100, 999, 1000], 1_000); // 3
 * ```
 */
export function maxInWindow(arrivals: readonly number[], millis: number): number {
  let best = 0;
  let from = 0;
  for (let to = 0; to < arrivals.length; to++) {
    while ((arrivals[to] ?? 0) - (arrivals[from] ?? 0) >= millis) from++;
    best = Math.max(best, to - from + 1);
  }
  return best;
}

/**
 * The proxy. Close it with {@link ConsulChaosProxy.close}: that ends every server, socket
 * and timer it holds.
 *
 * @example
 * ```ts
 * const proxy = new ConsulChaosProxy({ upstreamPort: consul.port, seed: 7 });
 * const port = await proxy.listen();   // point one Pool at 127.0.0.1:port
 * proxy.mode = 'error';
 * proxy.stats(port).arrivals.length;   // requests that Pool sent
 * await proxy.close();
 * ```
 */
export class ConsulChaosProxy {
  /** Current mode; may be changed at any time. */
  mode: ChaosMode;
  readonly #options: ChaosProxyOptions;
  readonly #random: () => number;
  readonly #servers = new Map<number, http.Server>();
  readonly #stats = new Map<number, ChaosPortStats>();
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #upstream = new http.Agent({ keepAlive: true, maxSockets: 64 });
  #churnIndex = 1_000_000;

  /** @param options upstream, seed, mode, fault sizes */
  constructor(options: ChaosProxyOptions) {
    this.#options = options;
    this.mode = options.mode ?? 'fuzz';
    this.#random = seededRandom(options.seed);
  }

  /**
   * Opens one more port (on 127.0.0.1) with its own statistics.
   *
   * @returns the port
   */
  async listen(): Promise<number> {
    const port = await freePort();
    const stats: ChaosPortStats = { arrivals: [], faults: new Map() };
    const server = http.createServer({ keepAliveTimeout: 60_000, requestTimeout: 0 }, (req, res) => this.#handle(req, res, stats));
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#servers.set(port, server);
    this.#stats.set(port, stats);
    return port;
  }

  /**
   * @param port a port from {@link ConsulChaosProxy.listen}
   * @returns what it saw
   */
  stats(port: number): ChaosPortStats {
    const stats = this.#stats.get(port);
    if (stats === undefined) throw new Error(`ConsulChaosProxy: ${port} is not one of my ports`);
    return stats;
  }

  /** Client connections still open (on every port). */
  get openConnections(): number {
    return this.#sockets.size;
  }

  /** Closes every port, socket and timer. Idempotent. */
  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    const closing = [...this.#servers.values()].map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const socket of this.#sockets) socket.destroy();
    this.#servers.clear();
    this.#upstream.destroy();
    await Promise.all(closing);
  }

  #pick(): ChaosFault {
    switch (this.mode) {
      case 'pass':
        return 'pass';
      case 'hang':
        return 'hang';
      case 'churn':
        return 'churn';
      case 'error':
        return ERROR_FAULTS[Math.floor(this.#random() * ERROR_FAULTS.length)] ?? 'status-500';
      case 'fuzz': {
        if (this.#random() < (this.#options.passShare ?? 0.3)) return 'pass';
        return CHAOS_FAULTS[Math.floor(this.#random() * CHAOS_FAULTS.length)] ?? 'pass';
      }
    }
  }

  #after(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    this.#timers.add(timer);
  }

  #handle(req: IncomingMessage, res: ServerResponse, stats: ChaosPortStats): void {
    stats.arrivals.push(Date.now());
    const fault = this.#pick();
    stats.faults.set(fault, (stats.faults.get(fault) ?? 0) + 1);
    req.resume();
    res.on('error', () => undefined);
    const url = new URL(req.url ?? '/', 'http://consul');
    const sentIndex = Number(url.searchParams.get('index') ?? '0');
    switch (fault) {
      case 'pass':
        this.#forward(req, res, url, false);
        return;
      case 'hang':
        return; // the socket stays open until the client gives up (or close())
      case 'reset':
        req.socket.destroy();
        return;
      case 'status-403':
        this.#text(res, 403, 'ACL not found');
        return;
      case 'status-500':
        this.#text(res, 500, 'rpc error making call: No cluster leader');
        return;
      case 'status-429': {
        const retryAfter = this.#random() < 0.5 ? '1' : new Date(Date.now() + 2_000).toUTCString();
        this.#text(res, 429, 'rate limit exceeded', { 'retry-after': retryAfter });
        return;
      }
      case 'huge-declared':
        res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': '5', 'content-length': String(this.#options.hugeBytes ?? 20 * 1024 * 1024) });
        res.write('[');
        this.#after(50, () => req.socket.destroy());
        return;
      case 'huge':
        this.#huge(req, res);
        return;
      case 'drip':
        this.#drip(req, res);
        return;
      default:
        this.#forward(req, res, url, true, (status, headers, body) => this.#mutate(fault, status, headers, body, sentIndex));
    }
  }

  /** Fetches the upstream answer (non-blocking when `immediate`) and sends it, mutated by `mutate`. */
  #forward(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    immediate: boolean,
    mutate?: (status: number, headers: http.OutgoingHttpHeaders, body: Buffer) => { status: number; headers: http.OutgoingHttpHeaders; body: Buffer; truncate?: boolean },
  ): void {
    if (immediate) {
      url.searchParams.delete('index');
      url.searchParams.delete('wait');
    }
    const headers = { ...req.headers };
    delete headers['host'];
    const up = http.request({ host: '127.0.0.1', port: this.#options.upstreamPort, path: `${url.pathname}${url.search}`, headers, agent: this.#upstream }, (upRes) => {
      const chunks: Buffer[] = [];
      upRes.on('data', (c: Buffer) => chunks.push(c));
      upRes.on('error', () => req.socket.destroy());
      upRes.on('end', () => {
        const outHeaders: http.OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(upRes.headers)) if (v !== undefined && k !== 'content-length' && k !== 'connection' && k !== 'keep-alive') outHeaders[k] = v;
        const out = mutate?.(upRes.statusCode ?? 502, outHeaders, Buffer.concat(chunks)) ?? { status: upRes.statusCode ?? 502, headers: outHeaders, body: Buffer.concat(chunks) };
        if (out.truncate === true) {
          res.writeHead(out.status, { ...out.headers, 'content-length': String(out.body.length * 2 + 1) });
          res.write(out.body);
          this.#after(10, () => req.socket.destroy());
          return;
        }
        res.writeHead(out.status, { ...out.headers, 'content-length': String(out.body.length) });
        res.end(out.body);
      });
    });
    up.on('error', () => req.socket.destroy());
    // The client went away: stop waiting on a blocking upstream read.
    res.on('close', () => up.destroy());
    up.end();
  }

  #mutate(fault: ChaosFault, status: number, headers: http.OutgoingHttpHeaders, body: Buffer, sentIndex: number) {
    const index = Number(headers['x-consul-index'] ?? '1');
    switch (fault) {
      case 'truncated':
        return { status, headers, body: body.subarray(0, Math.floor(body.length / 2)), truncate: true };
      case 'not-json':
        return { status: 200, headers: { ...headers, 'content-type': 'text/html' }, body: Buffer.from('<html><body>502 Bad Gateway</body></html>') };
      case 'wrong-type': {
        const shapes = ['{"Nodes":5}', '"passing"', '[{"Node":5,"Service":"x","Checks":{}}]', 'null', '[[[]]]', '{"leader":true}'];
        return { status: 200, headers, body: Buffer.from(shapes[Math.floor(this.#random() * shapes.length)] ?? 'null') };
      }
      case 'no-index': {
        const { ['x-consul-index']: _dropped, ...rest } = headers;
        return { status, headers: rest, body };
      }
      case 'negative-index':
        return { status, headers: { ...headers, 'x-consul-index': String(-1 - Math.floor(this.#random() * 100)) }, body };
      case 'backwards-index':
        return { status, headers: { ...headers, 'x-consul-index': String(Math.max(1, Math.floor(index * this.#random()))) }, body };
      case 'same-index-early':
        return { status, headers: { ...headers, 'x-consul-index': String(sentIndex > 0 ? sentIndex : index) }, body };
      case 'churn':
        this.#churnIndex += 1;
        return { status, headers: { ...headers, 'x-consul-index': String(this.#churnIndex) }, body };
      default:
        return { status, headers, body };
    }
  }

  #text(res: ServerResponse, status: number, text: string, headers: http.OutgoingHttpHeaders = {}): void {
    res.writeHead(status, { 'content-type': 'text/plain', 'x-consul-index': '7', ...headers });
    res.end(text);
  }

  /** A chunked 200 body of `hugeBytes`, written as fast as the client reads. */
  #huge(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': '9' });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let left = this.#options.hugeBytes ?? 20 * 1024 * 1024;
    const pump = (): void => {
      while (left > 0 && !res.destroyed) {
        left -= chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      if (!res.destroyed) res.end();
    };
    req.socket.on('close', () => res.destroy());
    pump();
  }

  /** A valid-looking answer sent one byte every `dripMillis`, abandoned after 40 bytes. */
  #drip(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': '11' });
    const text = '[{"Node":{"Node":"n1","Address":"127.0.0.1"},"Service":{"ID":"x","Tags":["primary"],"Port":1}}]';
    let at = 0;
    const step = (): void => {
      if (res.destroyed) return;
      if (at >= 40) {
        req.socket.destroy();
        return;
      }
      res.write(text.slice(at, at + 1));
      at += 1;
      this.#after(this.#options.dripMillis ?? 200, step);
    };
    step();
  }
}
