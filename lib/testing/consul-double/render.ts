/**
 * Consul's JSON shapes for the double's records (field names and order as Consul 1.15 sends
 * them). Arrays are never null.
 * @module
 */
import type { CheckRecord, ConsulState, KvEntry, NodeRecord, PreparedQueryRecord, ServiceRecord, SessionRecord } from './state.js';

type Json = Record<string, unknown>;

function taggedNodeAddresses(address: string): Record<string, string> {
  const v6 = address.includes(':');
  return v6 ? { lan: address, lan_ipv6: address, wan: address, wan_ipv6: address } : { lan: address, lan_ipv4: address, wan: address, wan_ipv4: address };
}

/** `Node` object of a health entry / `/v1/catalog/nodes` row. */
export function renderNode(n: NodeRecord, datacenter: string): Json {
  return {
    ID: n.id,
    Node: n.name,
    Address: n.address,
    Datacenter: datacenter,
    TaggedAddresses: taggedNodeAddresses(n.address),
    Meta: { ...n.meta },
    CreateIndex: n.createIndex,
    ModifyIndex: n.modifyIndex,
  };
}

/** `Service` object of a health entry. */
export function renderService(s: ServiceRecord): Json {
  const out: Json = {
    ID: s.id,
    Service: s.name,
    Tags: [...s.tags],
    Address: s.address,
  };
  if (Object.keys(s.taggedAddresses).length > 0) out.TaggedAddresses = structuredClone(s.taggedAddresses);
  Object.assign(out, {
    Meta: { ...s.meta },
    Port: s.port,
    Weights: { ...s.weights },
    EnableTagOverride: s.enableTagOverride,
    Proxy: { Mode: '', MeshGateway: {}, Expose: {} },
    Connect: {},
    PeerName: '',
    CreateIndex: s.createIndex,
    ModifyIndex: s.modifyIndex,
  });
  return out;
}

/** A health check as health and agent endpoints show it (`local` = the agent's latest output). */
export function renderCheck(c: CheckRecord, state: ConsulState, local = false): Json {
  const svc = c.serviceId === '' ? undefined : state.findService(c.serviceId, c.node);
  return {
    Node: c.node,
    CheckID: c.checkId,
    Name: c.name,
    Status: c.status,
    Notes: c.notes,
    Output: local ? c.localOutput : c.output,
    ServiceID: c.serviceId,
    ServiceName: c.serviceName,
    ServiceTags: svc ? [...svc.tags] : [],
    Type: c.type,
    Interval: c.interval,
    Timeout: c.timeout,
    ExposedPort: 0,
    Definition: {},
    CreateIndex: c.createIndex,
    ModifyIndex: c.modifyIndex,
  };
}

/** Node checks first, then the service's checks, each sorted by CheckID (Consul's order). */
export function checksForInstance(state: ConsulState, s: ServiceRecord): CheckRecord[] {
  const byId = (a: CheckRecord, b: CheckRecord): number => (a.checkId < b.checkId ? -1 : a.checkId > b.checkId ? 1 : 0);
  return [...state.nodeChecks(s.node).sort(byId), ...state.checksOf(s.node, s.id).sort(byId)];
}

/** One `/v1/health/service/<name>` entry. */
export function renderHealthEntry(state: ConsulState, s: ServiceRecord): Json {
  const node = state.nodes.get(s.node) as NodeRecord;
  return {
    Node: renderNode(node, state.datacenter),
    Service: renderService(s),
    Checks: checksForInstance(state, s).map((c) => renderCheck(c, state)),
  };
}

/** One `/v1/catalog/service/<name>` row. */
export function renderCatalogService(state: ConsulState, s: ServiceRecord): Json {
  const node = state.nodes.get(s.node) as NodeRecord;
  const out: Json = {
    ID: node.id,
    Node: node.name,
    Address: node.address,
    Datacenter: state.datacenter,
    TaggedAddresses: taggedNodeAddresses(node.address),
    NodeMeta: { ...node.meta },
    ServiceKind: '',
    ServiceID: s.id,
    ServiceName: s.name,
    ServiceTags: [...s.tags],
    ServiceAddress: s.address,
  };
  if (Object.keys(s.taggedAddresses).length > 0) out.ServiceTaggedAddresses = structuredClone(s.taggedAddresses);
  Object.assign(out, {
    ServiceWeights: { ...s.weights },
    ServiceMeta: { ...s.meta },
    ServicePort: s.port,
    ServiceSocketPath: '',
    ServiceEnableTagOverride: s.enableTagOverride,
    ServiceProxy: { Mode: '', MeshGateway: {}, Expose: {} },
    ServiceConnect: {},
    CreateIndex: s.createIndex,
    ModifyIndex: s.modifyIndex,
  });
  return out;
}

/** One `/v1/agent/services` value. */
export function renderAgentService(s: ServiceRecord, datacenter: string): Json {
  const out: Json = {
    ID: s.id,
    Service: s.name,
    Tags: [...s.tags],
    Meta: { ...s.meta },
    Port: s.port,
    Address: s.address,
  };
  if (Object.keys(s.taggedAddresses).length > 0) out.TaggedAddresses = structuredClone(s.taggedAddresses);
  Object.assign(out, { Weights: { ...s.weights }, EnableTagOverride: s.enableTagOverride, Datacenter: datacenter });
  return out;
}

/** One KV entry (Value base64, or null when empty; Session only when held). */
export function renderKv(e: KvEntry): Json {
  const out: Json = {
    LockIndex: e.lockIndex,
    Key: e.key,
    Flags: e.flags,
    Value: e.value.length === 0 ? null : e.value.toString('base64'),
  };
  if (e.session !== '') out.Session = e.session;
  out.CreateIndex = e.createIndex;
  out.ModifyIndex = e.modifyIndex;
  return out;
}

/** One session. */
export function renderSession(s: SessionRecord): Json {
  return {
    ID: s.id,
    Name: s.name,
    Node: s.node,
    LockDelay: s.lockDelayNs,
    Behavior: s.behavior,
    TTL: s.ttl,
    NodeChecks: [...s.nodeChecks],
    ServiceChecks: s.serviceChecks === null ? null : s.serviceChecks.map((c) => ({ ...c })),
    CreateIndex: s.createIndex,
    ModifyIndex: s.modifyIndex,
  };
}

/** One prepared query definition. */
export function renderQuery(q: PreparedQueryRecord): Json {
  return {
    ID: q.id,
    Name: q.name,
    Session: q.session,
    Token: '',
    Service: structuredClone({ ...q.service, Connect: { Enabled: false } }),
    DNS: { TTL: q.dnsTtl },
    Template: { Type: '', Regexp: '', RemoveEmptyTags: false },
    CreateIndex: q.createIndex,
    ModifyIndex: q.modifyIndex,
  };
}
