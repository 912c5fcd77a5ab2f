/**
 * The Consul HTTP API of the double: routing, query options (`index`/`wait` blocking, `stale`
 * / `consistent`, `dc`, `filter`), the response headers Consul sets, and every endpoint.
 * @module
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AgentHttpError, type Agent } from './agent.js';
import { BodyFields, DecodeError } from './body-fields.js';
import { compileFilter, FilterError, type FilterPredicate } from './bexpr.js';
import { formatGoDuration, parseGoDuration, parseLenientDuration } from './go-duration.js';
import {
  checksForInstance,
  renderAgentService,
  renderCatalogService,
  renderCheck,
  renderHealthEntry,
  renderKv,
  renderNode,
  renderQuery,
  renderSession,
} from './render.js';
import { RpcError, type CheckStatus, type ConsulState, type KvPutOp, type PreparedQueryRecord, type ServiceRecord } from './state.js';

/** Settings of {@link ConsulHttpApi}. */
export interface ConsulHttpApiOptions {
  datacenter: string;
  nodeName: string;
  host: string;
  sessionTtlMinNs: number;
  getDeregister: 'accept' | 'reject-405';
  aclToken: string | undefined;
}

/** One request, body already read. */
export interface ApiRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly method: string;
  /** Raw (still percent-encoded) path. */
  readonly path: string;
  readonly params: URLSearchParams;
  readonly body: Buffer;
}

interface Reply {
  status: number;
  json?: unknown;
  text?: string;
  raw?: Buffer;
  headers?: Record<string, string>;
}

interface Computed extends Reply {
  index?: number;
  hash?: string;
}

interface Waiter {
  check(): void;
  cancel(): void;
}

/** An answer with this status and plain-text body. */
class HttpFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

type Handler = (ctx: ApiRequest, rest: string) => void;

interface Route {
  readonly path: string;
  readonly prefix: boolean;
  readonly methods: readonly string[];
  /** Runs Consul's `parse` (consistency, wait/index, ns, dc) before the handler. */
  readonly parse: boolean;
  readonly handler: Handler;
}

const TEXT = 'text/plain; charset=utf-8';
const MAX_WAIT_MS = 10 * 60_000;
const DEFAULT_WAIT_MS = 5 * 60_000;
const KV_MAX_VALUE = 512 * 1024;
const SESSION_TTL_MAX_NS = 24 * 3600e9;
const DEFAULT_LOCK_DELAY_NS = 15e9;

function parseBoolParam(params: URLSearchParams, name: string): boolean {
  if (!params.has(name)) return false;
  const v = params.get(name) ?? '';
  if (v === '') return true;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw new HttpFailure(400, `Invalid value for ?${name}`);
}

function parseUintParam(params: URLSearchParams, name: string): number {
  const v = params.get(name) ?? '';
  if (!/^\d+$/.test(v)) throw new RpcError(`strconv.ParseUint: parsing ${JSON.stringify(v)}: invalid syntax`);
  return Number(v);
}

function nodeMetaFilter(params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of params.getAll('node-meta')) {
    const i = pair.indexOf(':');
    if (i < 0) out[pair] = '';
    else out[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return out;
}

function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

function byNodeThenId(a: ServiceRecord, b: ServiceRecord): number {
  if (a.node !== b.node) return a.node < b.node ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The double's HTTP API. */
export class ConsulHttpApi {
  readonly #state: ConsulState;
  readonly #agent: Agent;
  readonly #options: ConsulHttpApiOptions;
  readonly #routes: Route[];
  readonly #waiters = new Set<Waiter>();
  readonly #unsubscribe: () => void;

  /** @param state the store; @param agent the local agent; @param options see {@link ConsulHttpApiOptions} */
  constructor(state: ConsulState, agent: Agent, options: ConsulHttpApiOptions) {
    this.#state = state;
    this.#agent = agent;
    this.#options = options;
    this.#routes = this.#buildRoutes();
    this.#unsubscribe = state.onChange(() => {
      for (const w of [...this.#waiters]) w.check();
    });
  }

  /** Number of blocking queries currently waiting. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /** Answers one request. Never throws. */
  handle(ctx: ApiRequest): void {
    try {
      this.#dispatch(ctx);
    } catch (err) {
      this.#sendError(ctx, err);
    }
  }

  /** Cancels every blocking query (their sockets are the server's to destroy). */
  close(): void {
    this.#unsubscribe();
    for (const w of [...this.#waiters]) w.cancel();
    this.#waiters.clear();
  }

  // ------------------------------------------------------------------ plumbing

  #dispatch(ctx: ApiRequest): void {
    let best: Route | undefined;
    for (const r of this.#routes) {
      if (r.prefix ? ctx.path.startsWith(r.path) : ctx.path === r.path) {
        if (!best || (!r.prefix && best.prefix) || (r.prefix === best.prefix && r.path.length > best.path.length)) best = r;
      }
    }
    if (!best) throw new HttpFailure(404, '404 page not found\n');
    if (ctx.method === 'OPTIONS') {
      this.#send(ctx, { status: 200, headers: { Allow: ['OPTIONS', ...best.methods].join(',') } });
      return;
    }
    if (!best.methods.includes(ctx.method)) {
      this.#send(ctx, { status: 405, text: `method ${ctx.method} not allowed`, headers: { Allow: ['OPTIONS', ...best.methods].join(',') } });
      return;
    }
    // As in Consul, 404 and 405 come from routing, before the token is looked at.
    if (this.#options.aclToken !== undefined && !ctx.path.startsWith('/v1/status/')) {
      const auth = ctx.req.headers.authorization ?? '';
      const bearer = /^Bearer\s+(.+)$/i.exec(auth)?.[1]?.trim();
      const token = ctx.params.get('token') || (ctx.req.headers['x-consul-token'] as string | undefined) || bearer || '';
      if (token !== this.#options.aclToken) throw new HttpFailure(403, 'ACL not found');
    }
    let rest = '';
    if (best.prefix) {
      try {
        rest = decodeURIComponent(ctx.path.slice(best.path.length));
      } catch {
        throw new HttpFailure(400, 'invalid URL escape in path');
      }
    }
    if (best.parse) this.#parseQueryOptions(ctx);
    best.handler(ctx, rest);
  }

  #parseQueryOptions(ctx: ApiRequest): void {
    const p = ctx.params;
    if (p.has('stale') && p.has('consistent')) throw new HttpFailure(400, 'Cannot specify ?stale with ?consistent, conflicting semantics.');
    const wait = p.get('wait') ?? '';
    if (wait !== '' && parseGoDuration(wait) === undefined) throw new HttpFailure(400, 'Invalid wait time');
    const index = p.get('index') ?? '';
    if (index !== '' && !/^\d+$/.test(index)) throw new HttpFailure(400, 'Invalid index');
    const ns = p.get('ns') ?? '';
    if (ns !== '' && ns !== 'default') throw new HttpFailure(400, 'Invalid query parameter: "ns" - Namespaces are a Consul Enterprise feature');
    const partition = p.get('partition') ?? '';
    if (partition !== '' && partition !== 'default') throw new HttpFailure(400, 'Invalid query parameter: "partition" - Partitions are a Consul Enterprise feature');
    const dc = p.get('dc') ?? '';
    if (dc !== '' && dc !== this.#options.datacenter) throw new RpcError('No path to datacenter');
  }

  #sendError(ctx: ApiRequest, err: unknown): void {
    if (err instanceof HttpFailure || err instanceof AgentHttpError) this.#send(ctx, { status: err.status, text: err.message });
    else if (err instanceof DecodeError) this.#send(ctx, { status: 400, text: `Request decode failed: ${err.message}` });
    else if (err instanceof FilterError) this.#send(ctx, { status: 400, text: `Failed to create boolean expression evaluator: ${err.message}` });
    else if (err instanceof RpcError) this.#send(ctx, { status: 500, text: err.message });
    else this.#send(ctx, { status: 500, text: `Consul double internal error: ${err instanceof Error ? err.message : String(err)}` });
  }

  #send(ctx: ApiRequest, r: Reply): void {
    const { res } = ctx;
    if (res.headersSent || res.destroyed) return;
    const headers: Record<string, string> = { ...(r.headers ?? {}) };
    let body: Buffer | string | undefined;
    if (r.raw !== undefined) {
      body = r.raw;
    } else if (r.json !== undefined) {
      body = ctx.params.has('pretty') ? `${JSON.stringify(r.json, null, 4)}\n` : JSON.stringify(r.json);
      headers['Content-Type'] = 'application/json';
    } else if (r.text !== undefined && r.text !== '') {
      body = r.text;
      headers['Content-Type'] ??= TEXT;
    }
    headers['Content-Length'] = String(body === undefined ? 0 : Buffer.byteLength(body));
    res.writeHead(r.status, headers);
    res.end(body);
  }

  #queryHeaders(ctx: ApiRequest, index: number): Record<string, string> {
    const p = ctx.params;
    return {
      'X-Consul-Index': String(Math.max(index, 1)),
      'X-Consul-KnownLeader': 'true',
      'X-Consul-LastContact': '0',
      'X-Consul-Effective-Consistency': p.has('stale') ? 'stale' : p.has('consistent') ? 'consistent' : 'leader',
      'X-Consul-Query-Backend': 'blocking-query',
    };
  }

  #sendComputed(ctx: ApiRequest, r: Computed): void {
    const headers = { ...(r.headers ?? {}) };
    if (r.index !== undefined) Object.assign(headers, this.#queryHeaders(ctx, r.index));
    if (r.hash !== undefined) headers['X-Consul-ContentHash'] = r.hash;
    this.#send(ctx, { ...r, headers });
  }

  /**
   * Answers a read, blocking while its index is ≤ `?index` (or, in hash mode, while its
   * content hash equals `?hash`) for `?wait` plus up to wait/16 of jitter.
   */
  #read(ctx: ApiRequest, compute: () => Computed, mode: 'index' | 'hash' = 'index'): void {
    const p = ctx.params;
    const minIndex = Number(p.get('index') || '0');
    const wantHash = p.get('hash') ?? '';
    const blocks = (r: Computed): boolean => (mode === 'index' ? minIndex > 0 && (r.index ?? 1) <= minIndex : wantHash !== '' && r.hash === wantHash);
    const first = compute();
    if (!blocks(first)) {
      this.#sendComputed(ctx, first);
      return;
    }
    let waitMs = (parseGoDuration(p.get('wait') ?? '') ?? 0) / 1e6;
    if (waitMs <= 0) waitMs = DEFAULT_WAIT_MS;
    waitMs = Math.min(waitMs, MAX_WAIT_MS);
    waitMs += Math.random() * (waitMs / 16);
    let done = false;
    const finish = (r?: Computed): void => {
      if (done) return;
      cleanup();
      try {
        this.#sendComputed(ctx, r ?? compute());
      } catch (err) {
        this.#sendError(ctx, err);
      }
    };
    const cleanup = (): void => {
      done = true;
      clearTimeout(timer);
      this.#waiters.delete(waiter);
      ctx.res.off('close', cleanup);
    };
    const waiter: Waiter = {
      check: () => {
        let r: Computed;
        try {
          r = compute();
        } catch (err) {
          cleanup();
          this.#sendError(ctx, err);
          return;
        }
        if (!blocks(r)) finish(r);
      },
      cancel: cleanup,
    };
    const timer = setTimeout(() => finish(), waitMs);
    timer.unref();
    this.#waiters.add(waiter);
    ctx.res.on('close', cleanup);
  }

  #filterParam(ctx: ApiRequest): FilterPredicate | undefined {
    const f = ctx.params.get('filter') ?? '';
    return f === '' ? undefined : compileFilter(f);
  }

  #cacheHeaders(ctx: ApiRequest): Record<string, string> {
    return ctx.params.has('cached') ? { 'X-Cache': 'MISS', Age: '0' } : {};
  }

  /** Instances of a service, sorted by node then ID, filtered by tags (AND, case-insensitive) and node meta, `near` first. */
  #instances(name: string, tags: readonly string[], nodeMeta: Record<string, string>, near: string): ServiceRecord[] {
    const wanted = tags.map((t) => t.toLowerCase());
    const list = [...this.#state.services.values()]
      .filter((s) => s.name === name)
      .filter((s) => wanted.every((t) => s.tags.some((x) => x.toLowerCase() === t)))
      .filter((s) => {
        const meta = this.#state.nodes.get(s.node)?.meta ?? {};
        return Object.entries(nodeMeta).every(([k, v]) => meta[k] === v);
      })
      .sort(byNodeThenId);
    return this.#nearFirst(list, near);
  }

  #nearFirst(list: ServiceRecord[], near: string): ServiceRecord[] {
    const node = near === '_agent' ? this.#options.nodeName : near;
    if (node === '') return list;
    return [...list.filter((s) => s.node === node), ...list.filter((s) => s.node !== node)];
  }

  // ------------------------------------------------------------------ routes

  #buildRoutes(): Route[] {
    const r = (path: string, methods: string[], parse: boolean, handler: Handler): Route => ({
      path,
      prefix: path.endsWith('/'),
      methods,
      parse,
      handler,
    });
    const deregisterMethods = this.#options.getDeregister === 'accept' ? ['PUT', 'GET'] : ['PUT'];
    return [
      // health
      r('/v1/health/service/', ['GET'], true, (c, s) => this.#healthService(c, s)),
      r('/v1/health/checks/', ['GET'], true, (c, s) => this.#healthChecks(c, s)),
      r('/v1/health/node/', ['GET'], true, (c, s) => this.#healthNode(c, s)),
      r('/v1/health/state/', ['GET'], true, (c, s) => this.#healthState(c, s)),
      // catalog
      r('/v1/catalog/services', ['GET'], true, (c) => this.#catalogServices(c)),
      r('/v1/catalog/service/', ['GET'], true, (c, s) => this.#catalogService(c, s)),
      r('/v1/catalog/nodes', ['GET'], true, (c) => this.#catalogNodes(c)),
      r('/v1/catalog/node/', ['GET'], true, (c, s) => this.#catalogNode(c, s)),
      r('/v1/catalog/datacenters', ['GET'], false, (c) => this.#send(c, { status: 200, json: [this.#options.datacenter] })),
      // agent
      r('/v1/agent/self', ['GET'], false, (c) => this.#agentSelf(c)),
      r('/v1/agent/members', ['GET'], false, (c) => this.#send(c, { status: 200, json: [this.#member()] })),
      r('/v1/agent/services', ['GET'], false, (c) => this.#agentServices(c)),
      r('/v1/agent/service/', ['GET'], false, (c, s) => this.#agentService(c, s)),
      r('/v1/agent/checks', ['GET'], false, (c) => this.#agentChecks(c)),
      r('/v1/agent/service/register', ['PUT'], false, (c) => {
        this.#agent.registerFromBody(c.body, parseBoolParam(c.params, 'replace-existing-checks'));
        this.#send(c, { status: 200 });
      }),
      r('/v1/agent/service/deregister/', deregisterMethods, false, (c, id) => this.#agentDeregister(c, id)),
      r('/v1/agent/service/maintenance/', ['PUT'], false, (c, id) => {
        const enable = this.#maintenanceFlag(c);
        this.#agent.serviceMaintenance(id, enable, c.params.get('reason') ?? '');
        this.#send(c, { status: 200 });
      }),
      r('/v1/agent/maintenance', ['PUT'], false, (c) => {
        this.#agent.nodeMaintenance(this.#maintenanceFlag(c), c.params.get('reason') ?? '');
        this.#send(c, { status: 200 });
      }),
      r('/v1/agent/check/register', ['PUT'], false, (c) => {
        this.#agent.registerCheckFromBody(c.body);
        this.#send(c, { status: 200 });
      }),
      r('/v1/agent/check/deregister/', ['PUT'], false, (c, id) => {
        if (!this.#agent.deregisterCheck(id)) throw new HttpFailure(404, `Unknown check ID ${JSON.stringify(id)}. Ensure that the check ID is passed, not the check name.`);
        this.#send(c, { status: 200 });
      }),
      r('/v1/agent/check/pass/', ['PUT'], false, (c, id) => this.#ttl(c, id, 'passing', c.params.get('note') ?? '')),
      r('/v1/agent/check/warn/', ['PUT'], false, (c, id) => this.#ttl(c, id, 'warning', c.params.get('note') ?? '')),
      r('/v1/agent/check/fail/', ['PUT'], false, (c, id) => this.#ttl(c, id, 'critical', c.params.get('note') ?? '')),
      r('/v1/agent/check/update/', ['PUT'], false, (c, id) => {
        const f = BodyFields.parse(c.body);
        const status = f.str('Status');
        if (!['passing', 'warning', 'critical'].includes(status)) throw new HttpFailure(400, `Invalid check status: '${status}'`);
        this.#ttl(c, id, status as CheckStatus, f.str('Output'));
      }),
      // status
      r('/v1/status/leader', ['GET'], false, (c) => this.#send(c, { status: 200, json: `${this.#options.host}:8300` })),
      r('/v1/status/peers', ['GET'], false, (c) => this.#send(c, { status: 200, json: [`${this.#options.host}:8300`] })),
      // kv
      r('/v1/kv/', ['GET', 'PUT', 'DELETE'], true, (c, key) => this.#kv(c, key)),
      // sessions
      r('/v1/session/create', ['PUT'], true, (c) => this.#sessionCreate(c)),
      r('/v1/session/renew/', ['PUT'], true, (c, id) => this.#sessionRenew(c, id)),
      r('/v1/session/destroy/', ['PUT'], true, (c, id) => {
        if (id === '') throw new HttpFailure(400, 'Missing session');
        this.#state.destroySession(id);
        this.#send(c, { status: 200, json: true });
      }),
      r('/v1/session/info/', ['GET'], true, (c, id) => {
        if (id === '') throw new HttpFailure(400, 'Missing session');
        this.#read(c, () => {
          const s = this.#state.sessions.get(id);
          return { status: 200, json: s ? [renderSession(s)] : [], index: this.#state.sessionsIndex() };
        });
      }),
      r('/v1/session/list', ['GET'], true, (c) =>
        this.#read(c, () => ({ status: 200, json: [...this.#state.sessions.values()].map(renderSession), index: this.#state.sessionsIndex() })),
      ),
      r('/v1/session/node/', ['GET'], true, (c, node) => {
        if (node === '') throw new HttpFailure(400, 'Missing node name');
        this.#read(c, () => ({
          status: 200,
          json: [...this.#state.sessions.values()].filter((s) => s.node === node).map(renderSession),
          index: this.#state.sessionsIndex(),
        }));
      }),
      // prepared queries
      r('/v1/query', ['GET', 'POST'], true, (c) => this.#queryRoot(c)),
      r('/v1/query/', ['GET', 'PUT', 'DELETE'], true, (c, rest) => this.#queryItem(c, rest)),
    ];
  }

  // ------------------------------------------------------------------ health / catalog

  #healthService(ctx: ApiRequest, service: string): void {
    if (service === '') throw new HttpFailure(400, 'Missing service name');
    const passing = parseBoolParam(ctx.params, 'passing');
    const tags = ctx.params.getAll('tag');
    const meta = nodeMetaFilter(ctx.params);
    const near = ctx.params.get('near') ?? '';
    const filter = this.#filterParam(ctx);
    this.#read(ctx, () => {
      let list = this.#instances(service, tags, meta, near);
      if (passing) list = list.filter((s) => checksForInstance(this.#state, s).every((c) => c.status === 'passing'));
      let entries = list.map((s) => renderHealthEntry(this.#state, s));
      if (filter) entries = entries.filter(filter);
      return { status: 200, json: entries, index: this.#state.serviceIndex(service), headers: this.#cacheHeaders(ctx) };
    });
  }

  #healthChecks(ctx: ApiRequest, service: string): void {
    if (service === '') throw new HttpFailure(400, 'Missing service name');
    const meta = nodeMetaFilter(ctx.params);
    const filter = this.#filterParam(ctx);
    this.#read(ctx, () => {
      let checks = [...this.#state.checks.values()]
        .filter((c) => c.serviceId !== '' && c.serviceName === service)
        .filter((c) => {
          const m = this.#state.nodes.get(c.node)?.meta ?? {};
          return Object.entries(meta).every(([k, v]) => m[k] === v);
        })
        .map((c) => renderCheck(c, this.#state));
      if (filter) checks = checks.filter(filter);
      return { status: 200, json: checks, index: this.#state.checksIndex() };
    });
  }

  #healthNode(ctx: ApiRequest, node: string): void {
    if (node === '') throw new HttpFailure(400, 'Missing node name');
    const filter = this.#filterParam(ctx);
    this.#read(ctx, () => {
      let checks = [...this.#state.checks.values()].filter((c) => c.node === node).map((c) => renderCheck(c, this.#state));
      if (filter) checks = checks.filter(filter);
      return { status: 200, json: checks, index: this.#state.checksIndex() };
    });
  }

  #healthState(ctx: ApiRequest, state: string): void {
    if (!['any', 'passing', 'warning', 'critical'].includes(state)) throw new HttpFailure(400, 'Bad state');
    const filter = this.#filterParam(ctx);
    this.#read(ctx, () => {
      let checks = [...this.#state.checks.values()].filter((c) => state === 'any' || c.status === state).map((c) => renderCheck(c, this.#state));
      if (filter) checks = checks.filter(filter);
      return { status: 200, json: checks, index: this.#state.checksIndex() };
    });
  }

  #catalogServices(ctx: ApiRequest): void {
    const meta = nodeMetaFilter(ctx.params);
    const filter = this.#filterParam(ctx);
    this.#read(ctx, () => {
      const out: Record<string, string[]> = {};
      const rows = [...this.#state.services.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : byNodeThenId(a, b)));
      for (const s of rows) {
        const m = this.#state.nodes.get(s.node)?.meta ?? {};
        if (!Object.entries(meta).every(([k, v]) => m[k] === v)) continue;
        if (filter && !filter(renderCatalogService(this.#state, s))) continue;
        const tags = (out[s.name] ??= []);
        for (const t of s.tags) if (!tags.includes(t)) tags.push(t);
      }
      return { status: 200, json: out, index: this.#state.catalogIndex(), headers: this.#cacheHeaders(ctx) };
    });
  }

  #catalogService(ctx: ApiRequest, service: string): void {
    if (service === '') throw new HttpFailure(400, 'Missing service name');
    const tags = ctx.params.getAll('tag');
    const meta = nodeMetaFilter(ctx.params);
    const near = ctx.params.get('near') ?? '';
    const filter = this.#filterParam(ctx);
    this.#read(ctx, () => {
      let rows = this.#instances(service, tags, meta, near).map((s) => renderCatalogService(this.#state, s));
      if (filter) rows = rows.filter(filter);
      return { status: 200, json: rows, index: this.#state.serviceIndex(service), headers: this.#cacheHeaders(ctx) };
    });
  }

  #catalogNodes(ctx: ApiRequest): void {
    const meta = nodeMetaFilter(ctx.params);
    const near = ctx.params.get('near') ?? '';
    const filter = this.#filterParam(ctx);
    this.#read(ctx, () => {
      const nearNode = near === '_agent' ? this.#options.nodeName : near;
      let nodes = [...this.#state.nodes.values()]
        .filter((n) => Object.entries(meta).every(([k, v]) => n.meta[k] === v))
        .sort((a, b) => (a.name === nearNode ? -1 : b.name === nearNode ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
        .map((n) => renderNode(n, this.#state.datacenter));
      if (filter) nodes = nodes.filter(filter);
      return { status: 200, json: nodes, index: this.#state.nodesIndex() };
    });
  }

  #catalogNode(ctx: ApiRequest, name: string): void {
    if (name === '') throw new HttpFailure(400, 'Missing node name');
    this.#read(ctx, () => {
      const node = this.#state.nodes.get(name);
      if (!node) return { status: 200, json: null, index: this.#state.catalogIndex() };
      const services: Record<string, unknown> = {};
      for (const s of this.#state.servicesOn(name).sort(byNodeThenId)) {
        const { Proxy: _p, Connect: _c, PeerName: _n, ...rest } = renderHealthEntry(this.#state, s).Service as Record<string, unknown>;
        services[s.id] = rest;
      }
      return { status: 200, json: { Node: renderNode(node, this.#state.datacenter), Services: services }, index: this.#state.catalogIndex() };
    });
  }

  // ------------------------------------------------------------------ agent

  #member(): Record<string, unknown> {
    return {
      Name: this.#options.nodeName,
      Addr: this.#options.host,
      Port: 8301,
      Tags: { dc: this.#options.datacenter, role: 'consul', port: '8300', bootstrap: '1', build: '1.15.4:double', vsn: '2', vsn_min: '2', vsn_max: '3', segment: '' },
      Status: 1,
      ProtocolMin: 1,
      ProtocolMax: 5,
      ProtocolCur: 2,
      DelegateMin: 2,
      DelegateMax: 5,
      DelegateCur: 4,
    };
  }

  #agentSelf(ctx: ApiRequest): void {
    const node = this.#state.nodes.get(this.#options.nodeName);
    this.#send(ctx, {
      status: 200,
      json: {
        Config: {
          Datacenter: this.#options.datacenter,
          PrimaryDatacenter: this.#options.datacenter,
          NodeName: this.#options.nodeName,
          NodeID: node?.id ?? '',
          Revision: 'double',
          Server: true,
          Version: '1.15.4',
          BuildDate: '2023-06-26T00:00:00Z',
        },
        DebugConfig: {
          Datacenter: this.#options.datacenter,
          NodeName: this.#options.nodeName,
          SessionTTLMin: formatGoDuration(this.#options.sessionTtlMinNs),
        },
        Coord: { Vec: [0, 0, 0, 0, 0, 0, 0, 0], Error: 1.5, Adjustment: 0, Height: 0.00001 },
        Member: this.#member(),
        Stats: {},
        Meta: { 'consul-network-segment': '' },
      },
    });
  }

  #agentServices(ctx: ApiRequest): void {
    const filter = this.#filterParam(ctx);
    this.#read(
      ctx,
      () => {
        const out: Record<string, unknown> = {};
        for (const s of this.#agent.localServices().sort(byNodeThenId)) {
          const v = renderAgentService(s, this.#state.datacenter);
          if (!filter || filter(v)) out[s.id] = v;
        }
        return { status: 200, json: out, hash: hashOf(out) };
      },
      'hash',
    );
  }

  #agentService(ctx: ApiRequest, id: string): void {
    if (id === '') throw new HttpFailure(404, '404 page not found\n');
    this.#read(
      ctx,
      () => {
        const s = this.#agent.localServices().find((x) => x.id === id);
        if (!s) throw new HttpFailure(404, `unknown service ID: ${id}`);
        const v = renderAgentService(s, this.#state.datacenter);
        const hash = hashOf(v);
        return { status: 200, json: { ...v, ContentHash: hash }, hash };
      },
      'hash',
    );
  }

  #agentChecks(ctx: ApiRequest): void {
    const filter = this.#filterParam(ctx);
    const out: Record<string, unknown> = {};
    for (const c of this.#state.checks.values()) {
      if (c.node !== this.#options.nodeName) continue;
      const v = renderCheck(c, this.#state, true);
      if (!filter || filter(v)) out[c.checkId] = v;
    }
    this.#send(ctx, { status: 200, json: out });
  }

  #agentDeregister(ctx: ApiRequest, id: string): void {
    if (!this.#agent.deregister(id)) {
      throw new HttpFailure(404, `Unknown service ID ${JSON.stringify(id)}. Ensure that the service ID is passed, not the service name.`);
    }
    this.#send(ctx, { status: 200 });
  }

  #maintenanceFlag(ctx: ApiRequest): boolean {
    if (!ctx.params.has('enable')) throw new HttpFailure(400, 'Missing value for enable');
    const v = ctx.params.get('enable') ?? '';
    if (v === 'true') return true;
    if (v === 'false') return false;
    throw new HttpFailure(400, `Invalid value for enable: ${JSON.stringify(v)}`);
  }

  #ttl(ctx: ApiRequest, id: string, status: CheckStatus, output: string): void {
    this.#agent.ttlUpdate(id, status, output);
    this.#send(ctx, { status: 200 });
  }

  // ------------------------------------------------------------------ KV

  #kv(ctx: ApiRequest, key: string): void {
    const p = ctx.params;
    if (ctx.method === 'GET') {
      if (p.has('keys')) {
        this.#kvKeys(ctx, key);
        return;
      }
      if (p.has('recurse')) {
        this.#read(ctx, () => {
          const { index, entries } = this.#state.kvList(key);
          if (entries.length === 0) return { status: 404, index };
          return { status: 200, json: entries.map(renderKv), index };
        });
        return;
      }
      if (key === '') throw new HttpFailure(400, 'Missing key name');
      const raw = p.has('raw');
      this.#read(ctx, () => {
        const index = this.#state.kvKeyIndex(key);
        const e = this.#state.kv.get(key);
        if (!e) return { status: 404, index };
        if (raw) {
          return {
            status: 200,
            raw: Buffer.from(e.value),
            index,
            headers: { 'Content-Type': 'text/plain', 'X-Content-Type-Options': 'nosniff', 'Content-Security-Policy': 'sandbox' },
          };
        }
        return { status: 200, json: [renderKv(e)], index };
      });
      return;
    }
    if (ctx.method === 'PUT') {
      if (key === '') throw new HttpFailure(400, 'Missing key name');
      this.#conflicting(ctx, ['cas', 'acquire', 'release']);
      const flags = p.has('flags') ? parseUintParam(p, 'flags') : 0;
      let op: KvPutOp = { kind: 'set' };
      if (p.has('cas')) op = { kind: 'cas', index: parseUintParam(p, 'cas') };
      if (p.has('acquire')) op = { kind: 'acquire', session: p.get('acquire') ?? '' };
      if (p.has('release')) op = { kind: 'release', session: p.get('release') ?? '' };
      if (ctx.body.length > KV_MAX_VALUE) {
        throw new HttpFailure(413, `Request body(${ctx.body.length} bytes) too large, max size: ${KV_MAX_VALUE} bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.`);
      }
      const ok = this.#state.kvPut(key, ctx.body, flags, op);
      this.#send(ctx, { status: 200, json: op.kind === 'set' ? true : ok });
      return;
    }
    // DELETE
    this.#conflicting(ctx, ['recurse', 'cas']);
    if (p.has('recurse')) {
      this.#send(ctx, { status: 200, json: this.#state.kvDelete(key, { kind: 'tree' }) });
      return;
    }
    if (key === '') throw new HttpFailure(400, 'Missing key name');
    if (p.has('cas')) {
      this.#send(ctx, { status: 200, json: this.#state.kvDelete(key, { kind: 'cas', index: parseUintParam(p, 'cas') }) });
      return;
    }
    this.#state.kvDelete(key, { kind: 'key' });
    this.#send(ctx, { status: 200, json: true });
  }

  #conflicting(ctx: ApiRequest, flags: readonly string[]): void {
    if (flags.filter((f) => ctx.params.has(f)).length > 1) {
      const sorted = [...ctx.params.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      throw new HttpFailure(400, `Conflicting flags: ${new URLSearchParams(sorted).toString()}\n`);
    }
  }

  #kvKeys(ctx: ApiRequest, prefix: string): void {
    const sep = ctx.params.get('separator') ?? ctx.params.get('seperator') ?? '';
    this.#read(ctx, () => {
      const { index, entries } = this.#state.kvList(prefix);
      const keys: string[] = [];
      for (const e of entries) {
        let k = e.key;
        if (sep !== '') {
          const i = k.indexOf(sep, prefix.length);
          if (i >= 0) k = k.slice(0, i + sep.length);
        }
        if (keys[keys.length - 1] !== k) keys.push(k);
      }
      if (keys.length === 0 && prefix !== '') return { status: 404, index };
      return { status: 200, json: keys, index };
    });
  }

  // ------------------------------------------------------------------ sessions

  #sessionCreate(ctx: ApiRequest): void {
    const f = BodyFields.parse(ctx.body);
    let lockDelayNs = DEFAULT_LOCK_DELAY_NS;
    if (f.has('LockDelay')) {
      const raw = f.get('LockDelay');
      const ns = parseLenientDuration(raw);
      if (ns === undefined) throw new DecodeError(`time: invalid duration ${JSON.stringify(String(raw))}`);
      lockDelayNs = ns;
    }
    const behavior = f.str('Behavior') || 'release';
    if (behavior !== 'release' && behavior !== 'delete') throw new RpcError(`Invalid Behavior setting '${behavior}'`);
    const ttl = f.str('TTL');
    let ttlNs = 0;
    if (ttl !== '') {
      const ns = parseGoDuration(ttl);
      if (ns === undefined) throw new RpcError(`Session TTL '${ttl}' invalid: time: invalid duration ${JSON.stringify(ttl)}`);
      if (ns !== 0 && (ns < this.#options.sessionTtlMinNs || ns > SESSION_TTL_MAX_NS)) {
        throw new RpcError(`Invalid Session TTL '${ns}', must be between [${formatGoDuration(this.#options.sessionTtlMinNs)}-${formatGoDuration(SESSION_TTL_MAX_NS)}]`);
      }
      ttlNs = ns;
    }
    const explicit = f.has('Checks') || f.has('NodeChecks') || f.has('ServiceChecks');
    const nodeChecks = explicit ? [...new Set([...(f.strList('Checks') ?? []), ...(f.strList('NodeChecks') ?? [])])] : ['serfHealth'];
    const serviceChecks = f.objList('ServiceChecks')?.map((c) => ({ ID: c.str('ID'), Namespace: c.str('Namespace') })) ?? null;
    const s = this.#state.createSession({
      name: f.str('Name'),
      node: f.str('Node') || this.#options.nodeName,
      lockDelayNs,
      behavior,
      ttl,
      ttlNs,
      nodeChecks,
      serviceChecks: serviceChecks && serviceChecks.length > 0 ? serviceChecks : null,
    });
    this.#send(ctx, { status: 200, json: { ID: s.id } });
  }

  #sessionRenew(ctx: ApiRequest, id: string): void {
    if (id === '') throw new HttpFailure(400, 'Missing session');
    const s = this.#state.renewSession(id);
    if (!s) throw new HttpFailure(404, `Session id '${id}' not found`);
    this.#send(ctx, { status: 200, json: [renderSession(s)] });
  }

  // ------------------------------------------------------------------ prepared queries

  #parseQueryBody(body: Buffer): Omit<PreparedQueryRecord, 'id' | 'createIndex' | 'modifyIndex'> {
    const f = BodyFields.parse(body);
    const template = f.obj('Template');
    if (template && template.str('Type') !== '') throw new HttpFailure(400, 'Prepared query templates are not supported by the Consul double');
    const svc = f.obj('Service') ?? new BodyFields({});
    const failover = svc.obj('Failover');
    const dnsTtl = f.obj('DNS')?.str('TTL') ?? '';
    if (dnsTtl !== '' && parseGoDuration(dnsTtl) === undefined) throw new RpcError(`Bad DNS TTL '${dnsTtl}': time: invalid duration ${JSON.stringify(dnsTtl)}`);
    return {
      name: f.str('Name'),
      session: f.str('Session'),
      service: {
        Service: svc.str('Service'),
        Failover: { NearestN: failover?.num(0, 'NearestN') ?? 0, Datacenters: failover?.strList('Datacenters') ?? [] },
        OnlyPassing: svc.bool('OnlyPassing'),
        IgnoreCheckIDs: svc.strList('IgnoreCheckIDs') ?? [],
        Near: svc.str('Near'),
        Tags: svc.strList('Tags') ?? [],
        NodeMeta: svc.strMap('NodeMeta'),
        ServiceMeta: svc.strMap('ServiceMeta'),
      },
      dnsTtl,
    };
  }

  #queryRoot(ctx: ApiRequest): void {
    if (ctx.method === 'POST') {
      const q = this.#state.createQuery(this.#parseQueryBody(ctx.body));
      this.#send(ctx, { status: 200, json: { ID: q.id } });
      return;
    }
    this.#read(ctx, () => ({ status: 200, json: [...this.#state.queries.values()].map(renderQuery), index: this.#state.queriesIndex() }));
  }

  #queryItem(ctx: ApiRequest, rest: string): void {
    const m = /^(.*?)(?:\/(execute|explain))?$/.exec(rest) as RegExpExecArray;
    const id = m[1] ?? '';
    const action = m[2];
    if (id === '') throw new HttpFailure(400, 'Missing query ID');
    if (action !== undefined) {
      if (ctx.method !== 'GET') {
        this.#send(ctx, { status: 405, text: `method ${ctx.method} not allowed`, headers: { Allow: 'OPTIONS,GET' } });
        return;
      }
      const q = this.#state.resolveQuery(id);
      if (!q) throw new HttpFailure(404, 'Query not found');
      if (action === 'explain') {
        this.#send(ctx, { status: 200, json: { Query: renderQuery(q) }, headers: this.#queryHeaders(ctx, this.#state.queriesIndex()) });
        return;
      }
      this.#execute(ctx, q);
      return;
    }
    if (ctx.method === 'GET') {
      this.#read(ctx, () => {
        const q = this.#state.queries.get(id);
        if (!q) throw new HttpFailure(404, 'Query not found');
        return { status: 200, json: [renderQuery(q)], index: this.#state.queriesIndex() };
      });
      return;
    }
    if (ctx.method === 'PUT') this.#state.updateQuery(id, this.#parseQueryBody(ctx.body));
    else this.#state.deleteQuery(id);
    this.#send(ctx, { status: 200 });
  }

  #execute(ctx: ApiRequest, q: PreparedQueryRecord): void {
    const spec = q.service;
    const ignore = new Set(spec.IgnoreCheckIDs);
    const near = ctx.params.get('near') || spec.Near;
    const limitText = ctx.params.get('limit') ?? '';
    if (limitText !== '' && !/^\d+$/.test(limitText)) throw new HttpFailure(400, 'Invalid limit');
    let list = this.#instances(spec.Service, [], spec.NodeMeta, '').filter((s) => {
      const statuses = checksForInstance(this.#state, s)
        .filter((c) => !ignore.has(c.checkId))
        .map((c) => c.status);
      if (statuses.includes('critical')) return false;
      if (spec.OnlyPassing && statuses.includes('warning')) return false;
      for (const t of spec.Tags) {
        const negate = t.startsWith('!');
        const name = (negate ? t.slice(1) : t).toLowerCase();
        const has = s.tags.some((x) => x.toLowerCase() === name);
        if (has === negate) return false;
      }
      return Object.entries(spec.ServiceMeta).every(([k, v]) => s.meta[k] === v);
    });
    for (let i = list.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [list[i], list[j]] = [list[j] as ServiceRecord, list[i] as ServiceRecord];
    }
    list = this.#nearFirst(list, near);
    if (limitText !== '' && Number(limitText) > 0) list = list.slice(0, Number(limitText));
    this.#sendComputed(ctx, {
      status: 200,
      json: {
        Service: spec.Service,
        Nodes: list.map((s) => renderHealthEntry(this.#state, s)),
        DNS: { TTL: q.dnsTtl },
        Datacenter: this.#options.datacenter,
        Failovers: 0,
      },
      index: Math.max(this.#state.serviceIndex(spec.Service), this.#state.queriesIndex()),
    });
  }
}
