/**
 * The local agent of the Consul double: service and check registration (from HTTP bodies and
 * from the test API), deregistration, maintenance mode and TTL updates. It writes straight to
 * the catalog (the double has no anti-entropy delay) and starts the check runners.
 * @module
 */
import { BodyFields, DecodeError } from './body-fields.js';
import { CheckRunner, type CheckSpec } from './check-runner.js';
import { formatGoDuration } from './go-duration.js';
import { RpcError, type CheckFields, type CheckStatus, type ConsulState, type ServiceAddress, type ServiceFields, type ServiceRecord } from './state.js';

/** A request the agent rejects with this HTTP status and body. */
export class AgentHttpError extends Error {
  /** @param status HTTP status; @param message response body */
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'AgentHttpError';
  }
}

/** Settings of {@link Agent}. */
export interface AgentOptions {
  nodeName: string;
  /** Probe timeout when a check sets none. */
  checkTimeoutMs: number;
  /** Consul raises shorter check intervals to this (1 s in Consul). */
  minCheckIntervalMs: number;
  /** First probe after a random delay within the interval (Consul) or at once. */
  checkStagger: boolean;
}

/** A service registered through the test API (see `ServiceDefinition` in the entry module). */
export interface ManualServiceDefinition {
  id: string;
  name: string;
  address?: string | undefined;
  port: number;
  tags?: string[] | undefined;
  meta?: Record<string, string> | undefined;
  node?: string | undefined;
  nodeAddress?: string | undefined;
  status?: CheckStatus | undefined;
}

interface ParsedCheck {
  explicitId: string;
  name: string;
  notes: string;
  status: CheckStatus | undefined;
  serviceId: string;
  type: string;
  interval: string;
  timeout: string;
  spec: CheckSpec;
}

const STATUSES: ReadonlySet<string> = new Set(['passing', 'warning', 'critical']);

function defaultTaggedAddresses(address: string, port: number): Record<string, ServiceAddress> {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(address)) return { lan_ipv4: { Address: address, Port: port }, wan_ipv4: { Address: address, Port: port } };
  if (address.includes(':')) return { lan_ipv6: { Address: address, Port: port }, wan_ipv6: { Address: address, Port: port } };
  return {};
}

/** The agent. */
export class Agent {
  readonly #state: ConsulState;
  readonly #options: AgentOptions;
  readonly #runner: CheckRunner;

  /** @param state the catalog; @param options see {@link AgentOptions} */
  constructor(state: ConsulState, options: AgentOptions) {
    this.#state = state;
    this.#options = options;
    this.#runner = new CheckRunner(state, {
      node: options.nodeName,
      stagger: options.checkStagger,
      deregisterService: (id) => {
        this.deregister(id);
      },
    });
  }

  /** The agent's node name. */
  get nodeName(): string {
    return this.#options.nodeName;
  }

  /** Services registered on the agent's node (the `consul` service excluded). */
  localServices(): ServiceRecord[] {
    return this.#state.servicesOn(this.#options.nodeName).filter((s) => !(s.id === 'consul' && s.name === 'consul'));
  }

  // ------------------------------------------------------------ parsing

  #parseCheck(f: BodyFields, where: string): ParsedCheck | undefined {
    const http = f.str('HTTP');
    const tcp = f.str('TCP');
    const ttlNs = f.duration('TTL');
    const intervalNs = f.duration('Interval');
    const timeoutNs = f.duration('Timeout');
    if (f.has('Args', 'ScriptArgs', 'Script')) {
      throw new AgentHttpError(500, "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true");
    }
    for (const unsupported of ['GRPC', 'H2PING', 'UDP', 'DockerContainerID', 'AliasNode', 'AliasService', 'OSService']) {
      if (f.str(unsupported) !== '') throw new AgentHttpError(400, `Invalid check: ${unsupported} checks are not supported by the Consul double`);
    }
    const intervalCheck = http !== '' || tcp !== '';
    const anything = intervalCheck || ttlNs > 0 || intervalNs > 0 || f.str('Name') !== '' || f.str('CheckID', 'ID') !== '';
    if (!anything) return undefined;
    if (intervalNs > 0 && ttlNs > 0) throw new AgentHttpError(400, 'Invalid check: Interval and TTL cannot both be specified');
    if (intervalCheck && intervalNs <= 0) throw new AgentHttpError(400, 'Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks');
    if (!intervalCheck && ttlNs <= 0) throw new AgentHttpError(400, 'Invalid check: TTL must be > 0 for TTL checks');
    const status = f.str('Status');
    if (status !== '' && !STATUSES.has(status)) throw new AgentHttpError(400, `Invalid check: Status must be passing, warning or critical, got "${status}" (${where})`);
    const header: Record<string, string[]> = {};
    const rawHeader = f.get('Header');
    if (rawHeader !== undefined && rawHeader !== null) {
      if (typeof rawHeader !== 'object' || Array.isArray(rawHeader)) throw new DecodeError('Header: expected an object of string lists');
      for (const [k, v] of Object.entries(rawHeader)) {
        if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new DecodeError(`Header.${k}: expected a list of strings`);
        header[k] = [...(v as string[])];
      }
    }
    const kind: CheckSpec['kind'] = http !== '' ? 'http' : tcp !== '' ? 'tcp' : 'ttl';
    const intervalMs = Math.max(intervalNs / 1e6, this.#options.minCheckIntervalMs);
    return {
      explicitId: f.str('CheckID', 'ID'),
      name: f.str('Name'),
      notes: f.str('Notes'),
      status: status === '' ? undefined : (status as CheckStatus),
      serviceId: f.str('ServiceID'),
      type: kind,
      interval: intervalCheck ? formatGoDuration(intervalMs * 1e6) : '',
      timeout: timeoutNs > 0 ? formatGoDuration(timeoutNs) : '',
      spec: {
        kind,
        http,
        method: f.str('Method') || 'GET',
        header,
        body: f.str('Body'),
        tcp,
        intervalMs,
        timeoutMs: timeoutNs > 0 ? timeoutNs / 1e6 : this.#options.checkTimeoutMs,
        ttlMs: ttlNs / 1e6,
        deregisterCriticalAfterMs: f.duration('DeregisterCriticalServiceAfter') / 1e6,
        tlsServerName: f.str('TLSServerName'),
        tlsSkipVerify: f.bool('TLSSkipVerify'),
        successBeforePassing: f.num(0, 'SuccessBeforePassing'),
        failuresBeforeCritical: f.num(0, 'FailuresBeforeCritical'),
      },
    };
  }

  // ------------------------------------------------------------ services

  /**
   * `PUT /v1/agent/service/register`. A check keeps its status and output when re-registered
   * under the same check ID; a new check starts `critical` (or its `Status`).
   */
  registerFromBody(body: Buffer, replaceExistingChecks: boolean): void {
    const f = BodyFields.parse(body);
    const name = f.str('Name');
    if (name === '') throw new AgentHttpError(400, 'Missing service name');
    const kind = f.str('Kind');
    if (kind !== '') throw new AgentHttpError(400, `Invalid service: Kind "${kind}" is not supported by the Consul double`);
    const id = f.str('ID') || name;
    const address = f.str('Address');
    const port = f.num(0, 'Port');
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new DecodeError(`Port: invalid port ${port}`);
    const weights = f.obj('Weights');
    const tagged: Record<string, ServiceAddress> = defaultTaggedAddresses(address, port);
    const rawTagged = f.obj('TaggedAddresses');
    if (rawTagged) {
      const value = f.get('TaggedAddresses') as Record<string, unknown>;
      for (const k of Object.keys(value)) {
        const a = new BodyFields(value[k], `TaggedAddresses.${k}`);
        tagged[k] = { Address: a.str('Address'), Port: a.num(0, 'Port') };
      }
    }
    const checks: ParsedCheck[] = [];
    const single = f.obj('Check');
    if (single) {
      const c = this.#parseCheck(single, 'Check');
      if (c) checks.push(c);
    }
    for (const [i, c] of (f.objList('Checks') ?? []).entries()) {
      const parsed = this.#parseCheck(c, `Checks[${i}]`);
      if (parsed) checks.push(parsed);
    }
    const fields: ServiceFields = {
      id,
      name,
      tags: f.strList('Tags') ?? [],
      address,
      port,
      meta: f.strMap('Meta'),
      enableTagOverride: f.bool('EnableTagOverride'),
      weights: { Passing: weights ? weights.num(1, 'Passing') : 1, Warning: weights ? weights.num(1, 'Warning') : 1 },
      taggedAddresses: tagged,
    };
    this.#assertIdFree(id, this.#options.nodeName);
    this.#state.upsertService(this.#options.nodeName, fields);
    const keep = new Set<string>();
    checks.forEach((c, i) => {
      const checkId = c.explicitId || (checks.length > 1 ? `service:${id}:${i + 1}` : `service:${id}`);
      keep.add(checkId);
      this.#installCheck(checkId, id, name, c);
    });
    if (replaceExistingChecks) {
      for (const c of this.#state.checksOf(this.#options.nodeName, id)) {
        if (!keep.has(c.checkId)) {
          this.#runner.stop(c.checkId);
          this.#state.removeCheck(this.#options.nodeName, c.checkId);
        }
      }
    }
  }

  #installCheck(checkId: string, serviceId: string, serviceName: string, c: ParsedCheck): void {
    const node = this.#options.nodeName;
    const existing = this.#state.findCheck(node, checkId);
    const fields: CheckFields = {
      checkId,
      name: c.name || (serviceId === '' ? checkId : `Service '${serviceName}' check`),
      status: existing?.status ?? c.status ?? 'critical',
      notes: c.notes,
      output: existing?.output ?? '',
      serviceId,
      type: c.type,
      interval: c.interval,
      timeout: c.timeout,
    };
    this.#state.upsertCheck(node, fields);
    this.#runner.start(checkId, serviceId, c.spec);
  }

  #assertIdFree(id: string, node: string): void {
    for (const s of this.#state.services.values()) {
      if (s.id === id && s.node !== node) throw new AgentHttpError(500, `service ID "${id}" is already registered on node "${s.node}"`);
    }
  }

  /** `PUT /v1/agent/check/register`. */
  registerCheckFromBody(body: Buffer): void {
    const f = BodyFields.parse(body);
    const name = f.str('Name');
    if (name === '') throw new AgentHttpError(400, 'Missing check name');
    const c = this.#parseCheck(f, 'check');
    if (!c) throw new AgentHttpError(400, 'Invalid check: TTL must be > 0 for TTL checks');
    const serviceId = c.serviceId;
    let serviceName = '';
    if (serviceId !== '') {
      const svc = this.#state.findService(serviceId, this.#options.nodeName);
      if (!svc) throw new AgentHttpError(500, `ServiceID "${serviceId}" does not exist`);
      serviceName = svc.name;
    }
    this.#installCheck(c.explicitId || name, serviceId, serviceName, c);
  }

  /** Registers a service from the test API, with a hand-set check `service:<id>`. */
  registerDefinition(def: ManualServiceDefinition): void {
    const node = def.node ?? this.#options.nodeName;
    if (node !== this.#options.nodeName) {
      this.#state.ensureNode(node, def.nodeAddress ?? def.address ?? this.#state.nodes.get(this.#options.nodeName)?.address ?? '127.0.0.1');
    } else if (def.nodeAddress !== undefined && def.nodeAddress !== this.#state.nodes.get(node)?.address) {
      throw new Error('nodeAddress cannot change the address of the agent node');
    }
    this.#assertIdFree(def.id, node);
    const address = def.address ?? '';
    this.#state.upsertService(node, {
      id: def.id,
      name: def.name,
      tags: [...(def.tags ?? [])],
      address,
      port: def.port,
      meta: { ...(def.meta ?? {}) },
      enableTagOverride: false,
      weights: { Passing: 1, Warning: 1 },
      taggedAddresses: defaultTaggedAddresses(address, def.port),
    });
    const checkId = `service:${def.id}`;
    const existing = this.#state.findCheck(node, checkId);
    if (node === this.#options.nodeName) this.#runner.stop(checkId);
    this.#state.upsertCheck(node, {
      checkId,
      name: `Service '${def.name}' check`,
      status: def.status ?? existing?.status ?? 'passing',
      notes: '',
      output: existing?.output ?? '',
      serviceId: def.id,
      type: 'ttl',
      interval: '',
      timeout: '',
    });
  }

  /** Changes tags / address / port / meta of a service (any node). Throws when unknown. */
  updateService(id: string, patch: { tags?: string[] | undefined; address?: string | undefined; port?: number | undefined; meta?: Record<string, string> | undefined }): void {
    const svc = this.#state.findService(id);
    if (!svc) throw new Error(`unknown service ID ${JSON.stringify(id)}`);
    const address = patch.address ?? svc.address;
    const port = patch.port ?? svc.port;
    const { node, createIndex: _c, modifyIndex: _m, ...fields } = svc;
    this.#state.upsertService(node, {
      ...structuredClone(fields),
      tags: patch.tags ? [...patch.tags] : [...svc.tags],
      meta: patch.meta ? { ...patch.meta } : { ...svc.meta },
      address,
      port,
      taggedAddresses: address !== svc.address || port !== svc.port ? defaultTaggedAddresses(address, port) : structuredClone(svc.taggedAddresses),
    });
  }

  /** Sets the status of every check of a service from the test API. Throws when unknown. */
  setServiceChecks(id: string, status: CheckStatus, output: string): void {
    const svc = this.#state.findService(id);
    if (!svc) throw new Error(`unknown service ID ${JSON.stringify(id)}`);
    for (const c of this.#state.checksOf(svc.node, svc.id)) {
      this.#state.updateCheckStatus(svc.node, c.checkId, status, output, true);
      if (svc.node === this.#options.nodeName) this.#runner.touch(c.checkId);
    }
  }

  /** Sets a node-level check (default `serfHealth`) from the test API. Throws when unknown. */
  setNodeCheck(node: string, status: CheckStatus, output: string, checkId = 'serfHealth'): void {
    if (!this.#state.findCheck(node, checkId)) throw new Error(`unknown check ${JSON.stringify(checkId)} on node ${JSON.stringify(node)}`);
    this.#state.updateCheckStatus(node, checkId, status, output, true);
  }

  /** Deregisters a service by ID (any node for the test API, else the agent's). Returns false when unknown. */
  deregister(id: string, anyNode = false): boolean {
    const svc = anyNode ? this.#state.findService(id) : this.#state.findService(id, this.#options.nodeName);
    if (!svc) return false;
    for (const c of this.#state.checksOf(svc.node, svc.id)) this.#runner.stop(c.checkId);
    this.#state.removeService(svc.node, svc.id);
    return true;
  }

  /** `PUT /v1/agent/check/deregister/<id>`. Returns false when unknown. */
  deregisterCheck(checkId: string): boolean {
    this.#runner.stop(checkId);
    return this.#state.removeCheck(this.#options.nodeName, checkId);
  }

  /** `PUT /v1/agent/check/{pass,warn,fail,update}/<id>` on a TTL check. */
  ttlUpdate(checkId: string, status: CheckStatus, output: string): void {
    if (this.#runner.kindOf(checkId) !== 'ttl') throw new RpcError(`CheckID ${JSON.stringify(checkId)} does not have associated TTL`);
    this.#runner.update(checkId, status, output);
  }

  /** Service maintenance mode: a critical `_service_maintenance:<id>` check. */
  serviceMaintenance(id: string, enable: boolean, reason: string): void {
    const svc = this.#state.findService(id, this.#options.nodeName);
    if (!svc) throw new AgentHttpError(404, `Unknown service ID "${id}"`);
    const checkId = `_service_maintenance:${id}`;
    if (!enable) {
      this.#state.removeCheck(this.#options.nodeName, checkId);
      return;
    }
    this.#state.upsertCheck(this.#options.nodeName, {
      checkId,
      name: 'Service Maintenance Mode',
      status: 'critical',
      notes: reason || 'Maintenance mode is enabled for this service, but no reason was provided. This is a default message.',
      output: '',
      serviceId: id,
      type: 'maintenance',
      interval: '',
      timeout: '',
    });
  }

  /** Node maintenance mode: a critical `_node_maintenance` check. */
  nodeMaintenance(enable: boolean, reason: string): void {
    const checkId = '_node_maintenance';
    if (!enable) {
      this.#state.removeCheck(this.#options.nodeName, checkId);
      return;
    }
    this.#state.upsertCheck(this.#options.nodeName, {
      checkId,
      name: 'Node Maintenance Mode',
      status: 'critical',
      notes: reason || 'Maintenance mode is enabled for this node, but no reason was provided. This is a default message.',
      output: '',
      serviceId: '',
      type: 'maintenance',
      interval: '',
      timeout: '',
    });
  }

  /** Stops every check runner; resolves when probes in flight have settled. */
  stop(): Promise<void> {
    return this.#runner.stopAll();
  }
}
