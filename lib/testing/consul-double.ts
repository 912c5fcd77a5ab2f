/**
 * An in-process fake of the Consul agent HTTP API, faithful enough for pg-consul's discovery
 * code, the npm `consul` client, python-consul 0.7.1 and Patroni 3.0.2 to run against it.
 *
 * @example
 * ```ts
 * import { ConsulDouble } from 'pg-consul/testing';
 *
 * const consul = await ConsulDouble.start();
 * consul.registerService({ id: 'pglab/node1', name: 'pglab', address: '127.0.0.1', port: 5432, tags: ['master', 'primary'] });
 * // point the code under test at consul.url (or CONSUL_HTTP_ADDR=consul.address)
 * consul.setCheckStatus('pglab/node1', 'critical');
 * await consul.stop();
 * ```
 * @module
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { Agent } from './consul-double/agent.js';
import { ConsulHttpApi } from './consul-double/http-api.js';
import { ConsulState, type CheckStatus } from './consul-double/state.js';

/** Options of {@link ConsulDouble.start}. */
export interface ConsulDoubleOptions {
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port to listen on. Default 0 (an ephemeral port). */
  port?: number;
  /** The datacenter name (`?dc=` with any other value answers 500 `No path to datacenter`). Default `dc1`. */
  datacenter?: string;
  /** The agent's own node; its `Node.Address` is `host`. Default `consul-double`. */
  nodeName?: string;
  /**
   * Smallest session TTL accepted, in seconds (Consul's `session_ttl_min`). Default 10 like
   * Consul; Patroni sends TTL = ttl/2, so a lab with a short Patroni `ttl` lowers this (e.g. 1),
   * as Patroni's own tests do.
   */
  sessionTtlMinSeconds?: number;
  /** Timeout of an HTTP/TCP check probe whose definition sets no `Timeout`. Default 2000. */
  checkTimeoutMillis?: number;
  /**
   * When set, every request (except `/v1/status/*`, which Consul serves without ACLs) must carry
   * this token as `X-Consul-Token`, `Authorization: Bearer` or `?token=`, else 403
   * `ACL not found`. The token never appears in {@link ConsulDouble.requestLog}.
   */
  aclToken?: string;
  /**
   * What `GET /v1/agent/service/deregister/<id>` does (python-consul 0.7.1, hence Patroni 3.0.2,
   * deregisters with GET). `reject-405` (default) answers 405 like real Consul, so the service
   * stays registered until its check fails; `accept` deregisters it like a PUT.
   */
  getDeregister?: 'accept' | 'reject-405';
  /**
   * Whether the first probe of an HTTP/TCP check waits a random time within the interval, as
   * Consul does. Default true; false probes at once (faster tests).
   */
  checkStagger?: boolean;
  /** Shorter check intervals are raised to this, like Consul's 1 s minimum. Default 1000. */
  minCheckIntervalMillis?: number;
}

export type { CheckStatus } from './consul-double/state.js';

/** A service registered directly (no HTTP), for tests. */
export interface ServiceDefinition {
  /** Service ID (unique across nodes in the double). */
  id: string;
  /** Service name (Patroni: the scope). */
  name: string;
  /** `Service.Address`; default '' (clients then use `Node.Address`). */
  address?: string;
  /** `Service.Port`. */
  port: number;
  /** Tags, e.g. `['master', 'primary']`. */
  tags?: string[];
  /** Service meta. */
  meta?: Record<string, string>;
  /** Node name; default the agent's node. Another name creates that catalog node. */
  node?: string;
  /** Address of a node this registration creates; default `address`, else the agent's host. */
  nodeAddress?: string;
  /**
   * Status of the service's check `service:<id>` (a TTL-style check only the test sets, via
   * {@link ConsulDouble.setCheckStatus}). Default `passing`; a re-registration without it keeps
   * the current status.
   */
  status?: CheckStatus;
}

/** A fault {@link ConsulDouble.injectFault} makes requests suffer. */
export type FaultMode =
  /** Answer with this status (and plain-text body, default empty). */
  | {
      /** Answer with an HTTP status. */
      kind: 'status';
      /** HTTP status code to answer. */
      status: number;
      /** Plain-text response body (default empty). */
      body?: string;
    }
  /** Never answer (until the client gives up or the double stops). */
  | {
      /** Never answer. */
      kind: 'hang';
    }
  /** Answer 200 `application/json` with this (presumably unparsable) body and no Consul headers. */
  | {
      /** Answer 200 with a malformed body. */
      kind: 'garbage';
      /** The response body, sent as is. */
      body: string;
    }
  /** Destroy the socket without answering. */
  | {
      /** Destroy the socket. */
      kind: 'reset';
    };

/** One served request. */
export interface RequestLogEntry {
  /** HTTP method. */
  readonly method: string;
  /** Path, percent-encoded as sent. */
  readonly path: string;
  /** Query string without `?`; any `token=` value is replaced by `<hidden>`. */
  readonly query: string;
  /** Status answered; 0 when none was (hang, reset, client gone). */
  readonly status: number;
  /** Arrival time, ms since the epoch. */
  readonly at: number;
}

interface Fault {
  readonly prefix: string;
  readonly mode: FaultMode;
  remaining: number | undefined;
}

const LOG_LIMIT = 10_000;
const BODY_LIMIT = 16 * 1024 * 1024;

function redactQuery(query: string): string {
  return query.replace(/(^|&)token=[^&]*/gi, '$1token=<hidden>');
}

/**
 * A fake Consul agent (and single-server cluster) over real HTTP on loopback.
 *
 * Implemented: blocking queries (`?index`/`?wait` with Go durations, jitter up to wait/16,
 * `X-Consul-Index` ≥ 1 on every read, also on 404s) on every read endpoint; `?stale`,
 * `?consistent`, `?cached`, `?dc`, `?filter` (a go-bexpr subset), `?near`, `?node-meta`,
 * `?pretty`; health (`service` with `passing` and repeated case-insensitive `tag`, `checks`,
 * `node`, `state`), catalog (`services`, `service`, `nodes`, `node`, `datacenters`), agent
 * (`self`, `members`, `services`, `service/<id>`, `checks`, service register/deregister/
 * maintenance, check register/deregister/pass/warn/fail/update, node maintenance), KV (get,
 * recurse, keys, raw, put with cas/acquire/release/flags, delete with cas/recurse), sessions
 * (create, renew, destroy, info, list, node; TTL expiry at 2 × TTL applying `release` or
 * `delete`; lock delay honoured), prepared queries (create, list, get, update, delete,
 * execute, explain), status (`leader`, `peers`).
 *
 * Behaviours worth knowing:
 * - HTTP and TCP checks are really probed (2xx passing, 429 warning, else critical; new checks
 *   start critical) and keep their status across re-registration with the same check ID. A
 *   status change moves the index at once; an output-only change reaches the catalog after
 *   5 minutes (Consul's `check_update_interval`), though `/v1/agent/checks` shows it at once.
 * - **GET deregister**: by default answered 405 like real Consul (see
 *   {@link ConsulDoubleOptions.getDeregister}); with Patroni 3.0.2 a demoted leader then stays
 *   listed with its old tags and a passing check until its next probe, exactly as in
 *   production. Use `getDeregister: 'accept'` to model an agent that honours it.
 * - Writes that change nothing (same KV value, same registration) keep every index, as in
 *   Consul; a plain KV PUT resets `LockIndex` to 0 but keeps the holding session (as Consul).
 * - Differences from Consul: `DeregisterCriticalServiceAfter` is honoured exactly (Consul
 *   enforces ≥ 1 min and reaps every 30 s); one datacenter; no ACL policies (one token, all or
 *   nothing); no Connect, namespaces, templates, script/gRPC/Docker checks (rejected, not
 *   ignored); tombstones are never reaped; the `consul` service is listed in the catalog as on
 *   a real server.
 */
export class ConsulDouble {
  /** Interface the server listens on. */
  readonly host: string;
  /** Port the server listens on. */
  readonly port: number;
  /** `host:port`, what `CONSUL_HTTP_ADDR` and python-consul want. */
  readonly address: string;
  /** `http://host:port`. */
  readonly url: string;
  readonly #server: http.Server;
  readonly #sockets = new Set<Socket>();
  readonly #state: ConsulState;
  readonly #agent: Agent;
  readonly #api: ConsulHttpApi;
  readonly #log: RequestLogEntry[] = [];
  readonly #counts = new Map<string, number>();
  #faults: Fault[] = [];
  #stopping: Promise<void> | undefined;

  private constructor(server: http.Server, host: string, port: number, state: ConsulState, agent: Agent, api: ConsulHttpApi) {
    this.#server = server;
    this.host = host;
    this.port = port;
    this.address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.url = `http://${this.address}`;
    this.#state = state;
    this.#agent = agent;
    this.#api = api;
  }

  /**
   * Starts a double listening on `host:port`.
   *
   * @example
   * ```ts
   * const consul = await ConsulDouble.start({ sessionTtlMinSeconds: 1, checkStagger: false });
   * ```
   */
  static async start(options: ConsulDoubleOptions = {}): Promise<ConsulDouble> {
    const host = options.host ?? '127.0.0.1';
    const datacenter = options.datacenter ?? 'dc1';
    const nodeName = options.nodeName ?? 'consul-double';
    const ttlMin = options.sessionTtlMinSeconds ?? 10;
    if (!(ttlMin > 0)) throw new RangeError('sessionTtlMinSeconds must be > 0');
    const checkTimeoutMs = options.checkTimeoutMillis ?? 2000;
    if (!(checkTimeoutMs > 0)) throw new RangeError('checkTimeoutMillis must be > 0');
    const minCheckIntervalMs = options.minCheckIntervalMillis ?? 1000;
    if (!(minCheckIntervalMs > 0)) throw new RangeError('minCheckIntervalMillis must be > 0');
    if (options.aclToken === '') throw new RangeError('aclToken must not be empty');

    const state = new ConsulState({ datacenter, nodeName, nodeAddress: host });
    const agent = new Agent(state, { nodeName, checkTimeoutMs, minCheckIntervalMs, checkStagger: options.checkStagger ?? true });
    const api = new ConsulHttpApi(state, agent, {
      datacenter,
      nodeName,
      host,
      sessionTtlMinNs: ttlMin * 1e9,
      getDeregister: options.getDeregister ?? 'reject-405',
      aclToken: options.aclToken,
    });
    const server = http.createServer({ requestTimeout: 0, keepAliveTimeout: 0 });
    server.keepAliveTimeout = 0; // like Go's net/http: idle keep-alive connections stay open
    server.timeout = 0;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port ?? 0, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      state.dispose();
      api.close();
      await agent.stop();
      throw err;
    }
    const port = (server.address() as { port: number }).port;
    const double = new ConsulDouble(server, host, port, state, agent, api);
    server.on('connection', (socket: Socket) => {
      double.#sockets.add(socket);
      socket.once('close', () => double.#sockets.delete(socket));
    });
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => double.#onRequest(req, res));
    server.on('clientError', (_err, socket: Socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    return double;
  }

  /** The current raft index. */
  get index(): number {
    return this.#state.index;
  }

  /** The last 10 000 requests served, oldest first. */
  get requestLog(): ReadonlyArray<RequestLogEntry> {
    return this.#log;
  }

  /** How many blocking queries are being held open right now. */
  get blockingQueries(): number {
    return this.#api.waiting;
  }

  /** Requests received so far (since start, not bounded like the log) whose path starts with `pathPrefix`. */
  requestCount(pathPrefix = ''): number {
    let n = 0;
    for (const [path, count] of this.#counts) if (path.startsWith(pathPrefix)) n += count;
    return n;
  }

  /**
   * Registers (or replaces) a service directly. Its check `service:<id>` is set by hand only.
   *
   * @example
   * ```ts
   * consul.registerService({ id: 'pglab/node2', name: 'pglab', address: '127.0.0.1', port: 5433, tags: ['replica'] });
   * ```
   */
  registerService(def: ServiceDefinition): void {
    this.#agent.registerDefinition(def);
  }

  /** Changes tags, address, port or meta of a registered service (any node). Throws when unknown. */
  updateService(id: string, patch: Partial<Pick<ServiceDefinition, 'tags' | 'address' | 'port' | 'meta'>>): void {
    this.#agent.updateService(id, patch);
  }

  /** Sets the status (and output) of every check of a service. Throws when unknown. */
  setCheckStatus(serviceId: string, status: CheckStatus, output = ''): void {
    this.#agent.setServiceChecks(serviceId, status, output);
  }

  /**
   * Sets a node-level check (`serfHealth` by default) — with `passing` results every service on
   * the node drops out, and sessions using the check are invalidated when it goes critical.
   */
  setNodeCheckStatus(node: string, status: CheckStatus, output = '', checkId = 'serfHealth'): void {
    this.#agent.setNodeCheck(node, status, output, checkId);
  }

  /** Deregisters a service (any node) and its checks. Throws when unknown. */
  deregisterService(id: string): void {
    if (!this.#agent.deregister(id, true)) throw new Error(`unknown service ID ${JSON.stringify(id)}`);
  }

  /** Forces the raft index, lowering every index above `n` (to test "index went backwards"). */
  setIndex(n: number): void {
    this.#state.setIndex(n);
  }

  /**
   * Injects a fault for requests whose path starts with `pathPrefix` (e.g.
   * `/v1/health/service/`): all of them until {@link ConsulDouble.clearFaults}, or the next
   * `count` ones. The latest matching fault wins.
   */
  injectFault(pathPrefix: string, fault: FaultMode, count?: number): void {
    if (count !== undefined && !(Number.isInteger(count) && count > 0)) throw new RangeError('count must be a positive integer');
    this.#faults.push({ prefix: pathPrefix, mode: fault, remaining: count });
  }

  /** Removes every injected fault. */
  clearFaults(): void {
    this.#faults = [];
  }

  /** The decoded (UTF-8) value of a KV key, or undefined when missing. */
  kvGet(key: string): string | undefined {
    return this.#state.kv.get(key)?.value.toString('utf8');
  }

  /** Writes a KV key directly (a plain PUT). */
  kvPut(key: string, value: string): void {
    this.#state.kvPut(key, Buffer.from(value, 'utf8'), 0, { kind: 'set' });
  }

  /** Deletes a KV key directly (a plain DELETE; nothing happens when it is missing). */
  kvDelete(key: string): void {
    this.#state.kvDelete(key, { kind: 'key' });
  }

  /**
   * Stops the server: destroys every socket (blocking queries included), stops check probes,
   * session and TTL timers; resolves when all are gone. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#api.close();
      this.#state.dispose();
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      this.#server.closeAllConnections();
      for (const s of this.#sockets) s.destroy();
      await this.#agent.stop();
      await closed;
    })();
    return this.#stopping;
  }

  #takeFault(path: string): FaultMode | undefined {
    for (let i = this.#faults.length - 1; i >= 0; i--) {
      const f = this.#faults[i] as Fault;
      if (!path.startsWith(f.prefix)) continue;
      if (f.remaining !== undefined) {
        f.remaining -= 1;
        if (f.remaining <= 0) this.#faults.splice(i, 1);
      }
      return f.mode;
    }
    return undefined;
  }

  #onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const at = Date.now();
    const method = req.method ?? 'GET';
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const query = q < 0 ? '' : rawUrl.slice(q + 1);
    this.#counts.set(path, (this.#counts.get(path) ?? 0) + 1);
    res.once('close', () => {
      this.#log.push({ method, path, query: redactQuery(query), status: res.headersSent ? res.statusCode : 0, at });
      if (this.#log.length > LOG_LIMIT + 1000) this.#log.splice(0, this.#log.length - LOG_LIMIT);
    });
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    if (this.#stopping) {
      req.socket.destroy();
      return;
    }
    const fault = this.#takeFault(path);
    if (fault) {
      switch (fault.kind) {
        case 'reset':
          req.socket.destroy();
          return;
        case 'hang':
          req.resume();
          return;
        case 'status':
          req.resume();
          res.writeHead(fault.status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(fault.body ?? '')) });
          res.end(fault.body ?? '');
          return;
        case 'garbage':
          req.resume();
          res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(fault.body)) });
          res.end(fault.body);
          return;
      }
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= BODY_LIMIT) chunks.push(chunk);
    });
    req.on('end', () => {
      if (this.#stopping) return;
      if (size > BODY_LIMIT) {
        res.writeHead(413, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('request body too large');
        return;
      }
      this.#api.handle({ req, res, method, path, params: new URLSearchParams(query), body: Buffer.concat(chunks) });
    });
  }
}
