/**
 * The Consul double's state store: catalog (nodes, services, checks), KV, sessions and
 * prepared queries, with Consul's raft-index bookkeeping. No HTTP here.
 *
 * Every write that changes something takes the next raft index; writes that change nothing
 * (a PUT of the same value, a re-registration of the same service) leave every index alone,
 * as in Consul. Listeners registered with {@link ConsulState.onChange} run once per batch of
 * synchronous writes (on a microtask), which is what wakes blocking queries.
 * @module
 */
import { randomUUID } from 'node:crypto';

/** Health of a check: Consul's `passing`, `warning` or `critical`. */
export type CheckStatus = 'passing' | 'warning' | 'critical';

/** A catalog node. */
export interface NodeRecord {
  readonly id: string;
  readonly name: string;
  address: string;
  meta: Record<string, string>;
  createIndex: number;
  modifyIndex: number;
}

/** A tagged address of a service (`lan_ipv4`, `wan_ipv4`, …). */
export interface ServiceAddress {
  Address: string;
  Port: number;
}

/** The fields of a service instance a registration sets. */
export interface ServiceFields {
  id: string;
  name: string;
  tags: string[];
  address: string;
  port: number;
  meta: Record<string, string>;
  enableTagOverride: boolean;
  weights: { Passing: number; Warning: number };
  taggedAddresses: Record<string, ServiceAddress>;
}

/** A service instance on a node. */
export interface ServiceRecord extends ServiceFields {
  readonly node: string;
  createIndex: number;
  modifyIndex: number;
}

/** The fields of a check a registration sets. */
export interface CheckFields {
  checkId: string;
  name: string;
  status: CheckStatus;
  notes: string;
  output: string;
  serviceId: string;
  /** `http`, `tcp`, `ttl`, `maintenance`, or `` for serfHealth. */
  type: string;
  interval: string;
  timeout: string;
}

/** A check on a node (node-level when `serviceId` is empty). */
export interface CheckRecord extends CheckFields {
  readonly node: string;
  serviceName: string;
  /** Latest output the agent saw (the catalog copy, `output`, syncs on status changes). */
  localOutput: string;
  /** When `output` was last synced to the catalog (ms epoch). */
  outputSyncedAt: number;
  createIndex: number;
  modifyIndex: number;
}

/** One KV entry. */
export interface KvEntry {
  readonly key: string;
  value: Buffer;
  flags: number;
  session: string;
  lockIndex: number;
  createIndex: number;
  modifyIndex: number;
}

/** A session. */
export interface SessionRecord {
  readonly id: string;
  name: string;
  node: string;
  lockDelayNs: number;
  behavior: 'release' | 'delete';
  ttl: string;
  ttlNs: number;
  nodeChecks: string[];
  serviceChecks: { ID: string; Namespace: string }[] | null;
  createIndex: number;
  modifyIndex: number;
}

/** A prepared query definition (the part the double understands). */
export interface PreparedQueryRecord {
  readonly id: string;
  name: string;
  session: string;
  service: {
    Service: string;
    Failover: { NearestN: number; Datacenters: string[] };
    OnlyPassing: boolean;
    IgnoreCheckIDs: string[];
    Near: string;
    Tags: string[];
    NodeMeta: Record<string, string>;
    ServiceMeta: Record<string, string>;
  };
  dnsTtl: string;
  createIndex: number;
  modifyIndex: number;
}

/** An error Consul reports as HTTP 500 with this message. */
export class RpcError extends Error {
  /** @param message the body Consul sends */
  constructor(message: string) {
    super(message);
    this.name = 'RpcError';
  }
}

/** How a KV PUT applies. */
export type KvPutOp = { kind: 'set' } | { kind: 'cas'; index: number } | { kind: 'acquire'; session: string } | { kind: 'release'; session: string };

/** How a KV DELETE applies. */
export type KvDeleteOp = { kind: 'key' } | { kind: 'cas'; index: number } | { kind: 'tree' };

/** Consul's cap on a session's lock delay. */
const MAX_LOCK_DELAY_NS = 60e9;
/** How often Consul syncs an output-only check change to the catalog (check_update_interval). */
const CHECK_UPDATE_INTERVAL_MS = 5 * 60_000;
/** Consul invalidates a session after TTL × this without a renew. */
const SESSION_TTL_MULTIPLIER = 2;

/** Options of {@link ConsulState}. */
export interface ConsulStateOptions {
  datacenter: string;
  nodeName: string;
  nodeAddress: string;
}

const key2 = (a: string, b: string): string => `${a}\u0000${b}`;

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * In-memory Consul state with raft indexes. See the module documentation.
 */
export class ConsulState {
  readonly datacenter: string;
  readonly agentNode: string;
  #raft = 0;
  #tables = { nodes: 0, services: 0, checks: 0, kvs: 0, sessions: 0, queries: 0 };
  #serviceIndex = new Map<string, number>();
  readonly nodes = new Map<string, NodeRecord>();
  readonly services = new Map<string, ServiceRecord>();
  readonly checks = new Map<string, CheckRecord>();
  readonly kv = new Map<string, KvEntry>();
  #tombstones = new Map<string, number>();
  #lockDelays = new Map<string, number>();
  readonly sessions = new Map<string, SessionRecord>();
  #sessionTimers = new Map<string, NodeJS.Timeout>();
  readonly queries = new Map<string, PreparedQueryRecord>();
  #listeners = new Set<() => void>();
  #notifyScheduled = false;
  #disposed = false;

  /** Creates the store with the agent's own node, its serfHealth check and the `consul` service. */
  constructor(options: ConsulStateOptions) {
    this.datacenter = options.datacenter;
    this.agentNode = options.nodeName;
    this.#raft = 9;
    this.ensureNode(options.nodeName, options.nodeAddress, { 'consul-network-segment': '' });
    this.upsertService(options.nodeName, {
      id: 'consul',
      name: 'consul',
      tags: [],
      address: '',
      port: 8300,
      meta: {},
      enableTagOverride: false,
      weights: { Passing: 1, Warning: 1 },
      taggedAddresses: {},
    });
  }

  /** The current raft index (≥ 1). */
  get index(): number {
    return this.#raft;
  }

  /** Runs `listener` (once per batch of writes) after state changes. Returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #next(): number {
    this.#raft += 1;
    this.#scheduleNotify();
    return this.#raft;
  }

  #scheduleNotify(): void {
    if (this.#notifyScheduled || this.#disposed) return;
    this.#notifyScheduled = true;
    queueMicrotask(() => {
      this.#notifyScheduled = false;
      if (this.#disposed) return;
      for (const l of [...this.#listeners]) l();
    });
  }

  /**
   * Forces the raft index (to make indexes go backwards as after a snapshot restore): every
   * table, service, key, session and check index above `n` is lowered to `n`.
   */
  setIndex(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`index must be an integer ≥ 1, got ${n}`);
    this.#raft = n;
    const clamp = (v: number): number => Math.min(v, n);
    for (const k of Object.keys(this.#tables) as (keyof ConsulState['tablesSnapshot'])[]) this.#tables[k] = clamp(this.#tables[k]);
    for (const [k, v] of this.#serviceIndex) this.#serviceIndex.set(k, clamp(v));
    for (const [k, v] of this.#tombstones) this.#tombstones.set(k, clamp(v));
    const records: { createIndex: number; modifyIndex: number }[] = [
      ...this.nodes.values(),
      ...this.services.values(),
      ...this.checks.values(),
      ...this.kv.values(),
      ...this.sessions.values(),
      ...this.queries.values(),
    ];
    for (const r of records) {
      r.createIndex = clamp(r.createIndex);
      r.modifyIndex = clamp(r.modifyIndex);
    }
    this.#scheduleNotify();
  }

  /** Read-only copy of the table indexes. */
  get tablesSnapshot(): { nodes: number; services: number; checks: number; kvs: number; sessions: number; queries: number } {
    return { ...this.#tables };
  }

  /** Index for `/v1/catalog/services` and the fallback of unknown services. */
  catalogIndex(): number {
    return Math.max(this.#tables.nodes, this.#tables.services, 1);
  }

  /** Index of the checks table (health/state, health/node). */
  checksIndex(): number {
    return Math.max(this.#tables.checks, 1);
  }

  /** Index of the nodes table. */
  nodesIndex(): number {
    return Math.max(this.#tables.nodes, 1);
  }

  /** Index of the sessions table. */
  sessionsIndex(): number {
    return Math.max(this.#tables.sessions, 1);
  }

  /** Index of the prepared-queries table. */
  queriesIndex(): number {
    return Math.max(this.#tables.queries, 1);
  }

  /**
   * The index of everything that makes up `/v1/health/service/<name>`: the last change to any
   * instance of the service, its checks, or its nodes (node checks included); for a service
   * that never existed, the nodes/services table index.
   */
  serviceIndex(name: string): number {
    return Math.max(this.#serviceIndex.get(name) ?? this.catalogIndex(), 1);
  }

  #touchService(name: string, idx: number): void {
    this.#serviceIndex.set(name, idx);
  }

  #touchNodeServices(node: string, idx: number): void {
    for (const s of this.services.values()) if (s.node === node) this.#touchService(s.name, idx);
  }

  // ---------------------------------------------------------------- catalog

  /** Creates the node (with a passing serfHealth check) if missing; updates its address. */
  ensureNode(name: string, address: string, meta: Record<string, string> = {}): NodeRecord {
    const existing = this.nodes.get(name);
    if (existing) {
      if (existing.address !== address) {
        const idx = this.#next();
        existing.address = address;
        existing.modifyIndex = idx;
        this.#tables.nodes = idx;
        this.#touchNodeServices(name, idx);
      }
      return existing;
    }
    const idx = this.#next();
    const node: NodeRecord = { id: randomUUID(), name, address, meta, createIndex: idx, modifyIndex: idx };
    this.nodes.set(name, node);
    this.#tables.nodes = idx;
    this.upsertCheck(name, {
      checkId: 'serfHealth',
      name: 'Serf Health Status',
      status: 'passing',
      notes: '',
      output: 'Agent alive and reachable',
      serviceId: '',
      type: '',
      interval: '',
      timeout: '',
    });
    return node;
  }

  /** Services on `node`. */
  servicesOn(node: string): ServiceRecord[] {
    return [...this.services.values()].filter((s) => s.node === node);
  }

  /** Finds a service by ID: on `node` if given, else on any node. */
  findService(id: string, node?: string): ServiceRecord | undefined {
    if (node !== undefined) return this.services.get(key2(node, id));
    for (const s of this.services.values()) if (s.id === id) return s;
    return undefined;
  }

  /** Checks of one service instance. */
  checksOf(node: string, serviceId: string): CheckRecord[] {
    return [...this.checks.values()].filter((c) => c.node === node && c.serviceId === serviceId);
  }

  /** Node-level checks of a node. */
  nodeChecks(node: string): CheckRecord[] {
    return [...this.checks.values()].filter((c) => c.node === node && c.serviceId === '');
  }

  /** Creates or replaces a service instance. Returns true when something changed. */
  upsertService(node: string, fields: ServiceFields): boolean {
    if (!this.nodes.has(node)) throw new RpcError('Missing node registration');
    const k = key2(node, fields.id);
    const existing = this.services.get(k);
    if (existing) {
      const { node: _n, createIndex: _c, modifyIndex: _m, ...old } = existing;
      if (sameJson(old, fields)) return false;
    }
    const idx = this.#next();
    const rec: ServiceRecord = { ...structuredClone(fields), node, createIndex: existing?.createIndex ?? idx, modifyIndex: idx };
    this.services.set(k, rec);
    this.#tables.services = idx;
    this.#touchService(fields.name, idx);
    if (existing && existing.name !== fields.name) this.#touchService(existing.name, idx);
    // Service checks carry the service name.
    for (const c of this.checksOf(node, fields.id)) {
      if (c.serviceName !== fields.name) {
        c.serviceName = fields.name;
        c.modifyIndex = idx;
        this.#tables.checks = idx;
      }
    }
    return true;
  }

  /** Removes a service instance and its checks. Returns false when it did not exist. */
  removeService(node: string, id: string): boolean {
    const k = key2(node, id);
    const existing = this.services.get(k);
    if (!existing) return false;
    const idx = this.#next();
    this.services.delete(k);
    this.#tables.services = idx;
    const removedChecks: string[] = [];
    for (const c of this.checksOf(node, id)) {
      this.checks.delete(key2(node, c.checkId));
      removedChecks.push(c.checkId);
      this.#tables.checks = idx;
    }
    this.#touchService(existing.name, idx);
    this.#invalidateSessionsForChecks(node, removedChecks, idx);
    return true;
  }

  /** Finds a check. */
  findCheck(node: string, checkId: string): CheckRecord | undefined {
    return this.checks.get(key2(node, checkId));
  }

  /**
   * Creates or replaces a check (status and output as given). Returns true when something
   * changed.
   */
  upsertCheck(node: string, fields: CheckFields): boolean {
    if (!this.nodes.has(node)) throw new RpcError('Missing node registration');
    let serviceName = '';
    if (fields.serviceId !== '') {
      const svc = this.services.get(key2(node, fields.serviceId));
      if (!svc) throw new RpcError(`ServiceID "${fields.serviceId}" does not exist`);
      serviceName = svc.name;
    }
    const k = key2(node, fields.checkId);
    const existing = this.checks.get(k);
    if (existing) {
      const same =
        existing.name === fields.name &&
        existing.status === fields.status &&
        existing.notes === fields.notes &&
        existing.output === fields.output &&
        existing.serviceId === fields.serviceId &&
        existing.type === fields.type &&
        existing.interval === fields.interval &&
        existing.timeout === fields.timeout;
      if (same) return false;
    }
    const idx = this.#next();
    const rec: CheckRecord = {
      ...fields,
      node,
      serviceName,
      localOutput: fields.output,
      outputSyncedAt: Date.now(),
      createIndex: existing?.createIndex ?? idx,
      modifyIndex: idx,
    };
    this.checks.set(k, rec);
    this.#tables.checks = idx;
    this.#touchCheckOwners(rec, idx);
    if (existing && existing.serviceId !== fields.serviceId && existing.serviceId !== '') {
      const old = this.services.get(key2(node, existing.serviceId));
      if (old) this.#touchService(old.name, idx);
    }
    if (fields.status === 'critical') this.#invalidateSessionsForChecks(node, [fields.checkId], idx);
    return true;
  }

  #touchCheckOwners(check: CheckRecord, idx: number): void {
    if (check.serviceId === '') this.#touchNodeServices(check.node, idx);
    else this.#touchService(check.serviceName, idx);
  }

  /**
   * Records a check result. A status change is written to the catalog at once (new index);
   * an output-only change is kept locally and synced at most every 5 minutes, as Consul's
   * `check_update_interval` does (`syncOutput` writes an output change at once). Returns true
   * when the catalog changed.
   */
  updateCheckStatus(node: string, checkId: string, status: CheckStatus, output: string, syncOutput = false): boolean {
    const c = this.checks.get(key2(node, checkId));
    if (!c) return false;
    c.localOutput = output;
    const now = Date.now();
    if (c.status === status && (c.output === output || (!syncOutput && now - c.outputSyncedAt < CHECK_UPDATE_INTERVAL_MS))) return false;
    const idx = this.#next();
    c.status = status;
    c.output = output;
    c.outputSyncedAt = now;
    c.modifyIndex = idx;
    this.#tables.checks = idx;
    this.#touchCheckOwners(c, idx);
    if (status === 'critical') this.#invalidateSessionsForChecks(node, [checkId], idx);
    return true;
  }

  /** Removes a check. Returns false when it did not exist. */
  removeCheck(node: string, checkId: string): boolean {
    const k = key2(node, checkId);
    const c = this.checks.get(k);
    if (!c) return false;
    const idx = this.#next();
    this.checks.delete(k);
    this.#tables.checks = idx;
    this.#touchCheckOwners(c, idx);
    this.#invalidateSessionsForChecks(node, [checkId], idx);
    return true;
  }

  // ---------------------------------------------------------------- KV

  /** Index for a single-key read: the key's ModifyIndex, or the KV table index when missing. */
  kvKeyIndex(key: string): number {
    const e = this.kv.get(key);
    return Math.max(e ? e.modifyIndex : this.#tables.kvs, 1);
  }

  /** Entries under `prefix`, sorted by key, and the index Consul reports for the listing. */
  kvList(prefix: string): { index: number; entries: KvEntry[] } {
    const entries = [...this.kv.values()].filter((e) => e.key.startsWith(prefix)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    let index = this.#tables.kvs;
    if (prefix !== '') {
      let sub = 0;
      for (const e of entries) sub = Math.max(sub, e.modifyIndex);
      for (const [k, i] of this.#tombstones) if (k.startsWith(prefix)) sub = Math.max(sub, i);
      if (sub !== 0) index = sub;
    }
    return { index: Math.max(index, 1), entries };
  }

  #kvWrite(existing: KvEntry | undefined, key: string, value: Buffer, flags: number, session: string, lockIndex: number): void {
    if (
      existing &&
      existing.flags === flags &&
      existing.session === session &&
      existing.lockIndex === lockIndex &&
      existing.value.equals(value)
    ) {
      return; // Consul skips writes that change nothing: no new ModifyIndex
    }
    const idx = this.#next();
    this.kv.set(key, { key, value: Buffer.from(value), flags, session, lockIndex, createIndex: existing?.createIndex ?? idx, modifyIndex: idx });
    this.#tables.kvs = idx;
  }

  /** Applies a KV PUT. Returns Consul's boolean answer; throws {@link RpcError} for an unknown session. */
  kvPut(key: string, value: Buffer, flags: number, op: KvPutOp): boolean {
    const existing = this.kv.get(key);
    switch (op.kind) {
      case 'set':
        this.#kvWrite(existing, key, value, flags, existing?.session ?? '', 0);
        return true;
      case 'cas':
        if (op.index === 0 && existing) return false;
        if (op.index !== 0 && (!existing || existing.modifyIndex !== op.index)) return false;
        this.#kvWrite(existing, key, value, flags, existing?.session ?? '', 0);
        return true;
      case 'acquire': {
        const delayUntil = this.#lockDelays.get(key);
        if (delayUntil !== undefined) {
          if (delayUntil > Date.now()) return false;
          this.#lockDelays.delete(key);
        }
        if (op.session === '') throw new RpcError('missing session');
        if (!this.sessions.has(op.session)) throw new RpcError(`invalid session ${JSON.stringify(op.session)}`);
        let lockIndex = 1;
        if (existing) {
          if (existing.session === op.session) lockIndex = existing.lockIndex;
          else if (existing.session !== '') return false;
          else lockIndex = existing.lockIndex + 1;
        }
        this.#kvWrite(existing, key, value, flags, op.session, lockIndex);
        return true;
      }
      case 'release':
        if (op.session === '') throw new RpcError('missing session');
        if (!existing || existing.session !== op.session) return false;
        this.#kvWrite(existing, key, value, flags, '', existing.lockIndex);
        return true;
    }
  }

  #kvDeleteKey(key: string, idx: number): void {
    this.kv.delete(key);
    this.#tombstones.set(key, idx);
    this.#tables.kvs = idx;
  }

  /** Applies a KV DELETE. Returns Consul's boolean answer. */
  kvDelete(key: string, op: KvDeleteOp): boolean {
    if (op.kind === 'tree') {
      const keys = [...this.kv.keys()].filter((k) => k.startsWith(key));
      if (keys.length === 0) return true;
      const idx = this.#next();
      for (const k of keys) this.#kvDeleteKey(k, idx);
      return true;
    }
    const existing = this.kv.get(key);
    if (op.kind === 'cas' && (!existing || existing.modifyIndex !== op.index)) return existing === undefined;
    if (!existing) return true;
    this.#kvDeleteKey(key, this.#next());
    return true;
  }

  // ---------------------------------------------------------------- sessions

  /**
   * Creates a session (validated by the caller except for node and checks). Starts its TTL
   * timer (2 × TTL) when it has one.
   */
  createSession(s: Omit<SessionRecord, 'id' | 'createIndex' | 'modifyIndex'>): SessionRecord {
    if (!this.nodes.has(s.node)) throw new RpcError('Missing node registration');
    const checkIds = [...s.nodeChecks, ...(s.serviceChecks ?? []).map((c) => c.ID)];
    for (const id of checkIds) {
      const c = this.checks.get(key2(s.node, id));
      if (!c) throw new RpcError(`Missing check '${id}' registration`);
      if (c.status === 'critical') throw new RpcError(`Check '${id}' is in ${c.status} state`);
    }
    let id = randomUUID();
    while (this.sessions.has(id)) id = randomUUID();
    const idx = this.#next();
    const rec: SessionRecord = { ...s, id, createIndex: idx, modifyIndex: idx };
    this.sessions.set(id, rec);
    this.#tables.sessions = idx;
    this.#armSessionTimer(rec);
    return rec;
  }

  #armSessionTimer(s: SessionRecord): void {
    const old = this.#sessionTimers.get(s.id);
    if (old) clearTimeout(old);
    if (s.ttlNs <= 0 || this.#disposed) return;
    const t = setTimeout(() => {
      this.#sessionTimers.delete(s.id);
      this.destroySession(s.id);
    }, (s.ttlNs / 1e6) * SESSION_TTL_MULTIPLIER);
    t.unref();
    this.#sessionTimers.set(s.id, t);
  }

  /** Resets a session's TTL timer. Returns the session, or undefined when unknown. */
  renewSession(id: string): SessionRecord | undefined {
    const s = this.sessions.get(id);
    if (s) this.#armSessionTimer(s);
    return s;
  }

  /**
   * Invalidates a session: applies its behavior (release or delete) to the keys it holds,
   * sets their lock delay, and deletes prepared queries bound to it. No-op when unknown.
   */
  destroySession(id: string): void {
    if (!this.sessions.has(id)) return;
    this.#destroySessionAt(id, this.#next());
  }

  #destroySessionAt(id: string, idx: number): void {
    const s = this.sessions.get(id);
    if (!s) return;
    this.sessions.delete(id);
    const t = this.#sessionTimers.get(id);
    if (t) clearTimeout(t);
    this.#sessionTimers.delete(id);
    this.#tables.sessions = idx;
    const delayMs = Math.min(s.lockDelayNs, MAX_LOCK_DELAY_NS) / 1e6;
    const now = Date.now();
    for (const e of [...this.kv.values()]) {
      if (e.session !== id) continue;
      if (s.behavior === 'delete') {
        this.#kvDeleteKey(e.key, idx);
      } else {
        e.session = '';
        e.modifyIndex = idx;
        this.#tables.kvs = idx;
      }
      if (delayMs > 0) this.#lockDelays.set(e.key, now + delayMs);
    }
    for (const q of [...this.queries.values()]) {
      if (q.session === id) {
        this.queries.delete(q.id);
        this.#tables.queries = idx;
      }
    }
  }

  #invalidateSessionsForChecks(node: string, checkIds: readonly string[], idx: number): void {
    if (checkIds.length === 0) return;
    for (const s of [...this.sessions.values()]) {
      if (s.node !== node) continue;
      const uses = s.nodeChecks.some((c) => checkIds.includes(c)) || (s.serviceChecks ?? []).some((c) => checkIds.includes(c.ID));
      if (uses) this.#destroySessionAt(s.id, idx);
    }
  }

  // ---------------------------------------------------------------- prepared queries

  /** Stores a new prepared query. Throws {@link RpcError} on a duplicate name or unknown session. */
  createQuery(q: Omit<PreparedQueryRecord, 'id' | 'createIndex' | 'modifyIndex'>): PreparedQueryRecord {
    this.#validateQuery(q, undefined);
    const idx = this.#next();
    const rec: PreparedQueryRecord = { ...q, id: randomUUID(), createIndex: idx, modifyIndex: idx };
    this.queries.set(rec.id, rec);
    this.#tables.queries = idx;
    return rec;
  }

  /** Replaces a prepared query's definition. Throws {@link RpcError} when unknown. */
  updateQuery(id: string, q: Omit<PreparedQueryRecord, 'id' | 'createIndex' | 'modifyIndex'>): void {
    const existing = this.queries.get(id);
    if (!existing) throw new RpcError(`Cannot modify non-existent prepared query: '${id}'`);
    this.#validateQuery(q, id);
    const idx = this.#next();
    this.queries.set(id, { ...q, id, createIndex: existing.createIndex, modifyIndex: idx });
    this.#tables.queries = idx;
  }

  /** Deletes a prepared query. Throws {@link RpcError} when unknown. */
  deleteQuery(id: string): void {
    if (!this.queries.has(id)) throw new RpcError(`Cannot delete non-existent prepared query: '${id}'`);
    const idx = this.#next();
    this.queries.delete(id);
    this.#tables.queries = idx;
  }

  /** Looks a prepared query up by ID, then by name. */
  resolveQuery(idOrName: string): PreparedQueryRecord | undefined {
    const byId = this.queries.get(idOrName);
    if (byId) return byId;
    for (const q of this.queries.values()) if (q.name !== '' && q.name === idOrName) return q;
    return undefined;
  }

  #validateQuery(q: Omit<PreparedQueryRecord, 'id' | 'createIndex' | 'modifyIndex'>, selfId: string | undefined): void {
    if (q.service.Service === '') throw new RpcError('Must provide a Service name to query');
    if (q.session !== '' && !this.sessions.has(q.session)) throw new RpcError(`invalid session ${JSON.stringify(q.session)}`);
    if (q.name !== '') {
      for (const other of this.queries.values()) {
        if (other.id !== selfId && (other.name === q.name || other.id === q.name)) throw new RpcError(`name '${q.name}' aliases an existing query name`);
      }
    }
  }

  // ---------------------------------------------------------------- lifecycle

  /** Stops every session timer and all notifications. */
  dispose(): void {
    this.#disposed = true;
    for (const t of this.#sessionTimers.values()) clearTimeout(t);
    this.#sessionTimers.clear();
    this.#listeners.clear();
  }
}
