/**
 * Turns the body of Consul's `GET /v1/health/service/<service>` into validated
 * {@link DiscoveredNode}s (pure).
 *
 * @module
 */
import { isIPv4, isIPv6 } from 'node:net';
import { DiscoveryError } from '../errors.js';
import { formatAddress } from '../topology/node.js';
import type { DiscoveredNode, NodeRole } from '../topology/node.js';

/** Tags that give a node its role; compared case-insensitively. */
export interface RoleTags {
  /** Any of these makes a node `primary` (Patroni: `master`, `primary`). Wins over replica tags. */
  readonly primary: readonly string[];
  /** Any of these makes a node `replica` (Patroni: `replica`). */
  readonly replica: readonly string[];
}

/** Result of {@link parseHealthEntries}. */
export interface ParsedHealthEntries {
  /** Valid nodes, deduplicated by address, in the order Consul returned them. */
  readonly nodes: DiscoveredNode[];
  /** One human-readable, secret-free reason per skipped entry (capped, see {@link MAX_SKIPPED_REASONS}). */
  readonly skipped: string[];
}

/**
 * At most this many skip reasons are returned one by one; beyond it a single summary reason
 * (`… and N more entries skipped`) is appended, so a huge junk answer cannot flood logs.
 */
export const MAX_SKIPPED_REASONS = 50;

const DNS_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/**
 * Normalises and validates a host as Consul reports it: an IPv4 literal, an IPv6 literal
 * (written without brackets; surrounding brackets are tolerated and removed), or a DNS name
 * (RFC 1123 labels, underscores allowed, optional trailing dot, ≤ 253 characters). Names made
 * only of digits and dots must be valid IPv4 (`999.1.1.1` is rejected).
 *
 * @param value the raw `Service.Address` / `Node.Address`
 * @returns the host to connect to, or `undefined` when it is not acceptable
 *
 * @example
 * ```ts
 * validateHost('10.0.0.5');   // '10.0.0.5'
 * validateHost('[::1]');      // '::1'
 * validateHost('db 1');       // undefined
 * ```
 */
export function validateHost(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > 255) return undefined;
  if (/[\s/\\@?#]/.test(value)) return undefined;
  let host = value;
  if (host.startsWith('[') && host.endsWith(']')) {
    host = host.slice(1, -1);
    return isIPv6(host) ? host : undefined;
  }
  if (isIPv4(host) || isIPv6(host)) return host;
  if (host.includes(':')) return undefined;
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  if (name.length === 0 || name.length > 253) return undefined;
  const labels = name.split('.');
  if (!labels.every((label) => DNS_LABEL.test(label))) return undefined;
  if (labels.every((label) => /^\d+$/.test(label))) return undefined;
  return host;
}

/**
 * Validates a TCP port: a JavaScript integer in 1..65535. Strings such as `"5432"` are
 * rejected: Consul always sends a number, so a string means something between us and Consul
 * is not Consul.
 *
 * @param value the raw `Service.Port`
 * @returns the port, or `undefined`
 *
 * @example
 * ```ts
 * validatePort(5432);   // 5432
 * validatePort('5432'); // undefined
 * ```
 */
export function validatePort(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535 ? value : undefined;
}

/**
 * The role the tags give: any primary tag → `primary` (even if a replica tag is present too),
 * else any replica tag → `replica`, else `other`. Case-insensitive.
 *
 * @param tags the entry's `Service.Tags`
 * @param roleTags which tags mean what
 * @returns the node's role
 *
 * @example
 * ```ts
 * roleFromTags(['Master', 'primary'], { primary: ['master', 'primary'], replica: ['replica'] }); // 'primary'
 * roleFromTags(['standby-leader'], { primary: ['master'], replica: ['replica'] });               // 'other'
 * ```
 */
export function roleFromTags(tags: readonly string[], roleTags: RoleTags): NodeRole {
  const lower = new Set(tags.map((t) => t.toLowerCase()));
  if (roleTags.primary.some((t) => lower.has(t.toLowerCase()))) return 'primary';
  if (roleTags.replica.some((t) => lower.has(t.toLowerCase()))) return 'replica';
  return 'other';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** A short, printable rendering of an untrusted value for skip reasons. */
function show(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > 64 ? `${text.slice(0, 61)}...` : text;
}

type EntryResult = { readonly node: DiscoveredNode } | { readonly reason: string };

function parseEntry(entry: unknown, position: number, roleTags: RoleTags): EntryResult {
  const where = `entry ${position}`;
  if (!isRecord(entry)) return { reason: `${where}: not an object (${show(entry)})` };
  const service = entry['Service'];
  if (!isRecord(service)) return { reason: `${where}: missing Service` };
  const node = isRecord(entry['Node']) ? entry['Node'] : undefined;
  const serviceId = nonEmptyString(service['ID']);
  const nodeName = nonEmptyString(node?.['Node']);
  const serviceName = nonEmptyString(service['Service']);
  const label = serviceId ?? (nodeName && serviceName ? `${nodeName}/${serviceName}` : undefined);
  const what = label === undefined ? where : `${where} (${show(label)})`;

  const serviceAddress = service['Address'];
  const rawHost = serviceAddress === undefined || serviceAddress === null || serviceAddress === '' ? node?.['Address'] : serviceAddress;
  if (rawHost === undefined || rawHost === null || rawHost === '') return { reason: `${what}: no Service.Address and no Node.Address` };
  const host = validateHost(rawHost);
  if (host === undefined) return { reason: `${what}: invalid address ${show(rawHost)}` };
  const port = validatePort(service['Port']);
  if (port === undefined) return { reason: `${what}: invalid port ${show(service['Port'])}` };

  const address = formatAddress(host, port);
  const rawTags = service['Tags'];
  const tags = Object.freeze(Array.isArray(rawTags) ? rawTags.filter((t): t is string => typeof t === 'string') : []);
  const rawModify = service['ModifyIndex'];
  const modifyIndex = typeof rawModify === 'number' && Number.isSafeInteger(rawModify) && rawModify >= 0 ? rawModify : 0;
  const id = label ?? address;
  const slash = serviceId?.indexOf('/') ?? -1;
  const member = serviceId !== undefined && slash > 0 ? serviceId.slice(slash + 1) : '';
  const name = member.length > 0 ? member : (nodeName ?? id);

  return {
    node: Object.freeze({ id, name, host, port, address, role: roleFromTags(tags, roleTags), tags, modifyIndex }),
  };
}

/**
 * Validates the body of `GET /v1/health/service/<service>` and maps every usable entry to a
 * {@link DiscoveredNode}.
 *
 * Per entry:
 * - host = `Service.Address`, or `Node.Address` when that is empty or missing
 *   ({@link validateHost}); port = `Service.Port` ({@link validatePort});
 * - role from `Service.Tags` ({@link roleFromTags});
 * - `id` = `Service.ID`, else `<Node.Node>/<Service.Service>`, else the address;
 * - `name` = the Patroni member name when `Service.ID` looks like Patroni's `<scope>/<name>`
 *   (the part after the first `/`), else `Node.Node`, else `id`. Patroni members often share
 *   one Consul agent (so one `Node.Node`), and the member name is what `patronictl list`
 *   shows, so it is the name people recognise;
 * - `modifyIndex` = `Service.ModifyIndex` (0 when absent or not a whole number ≥ 0).
 *
 * A bad entry is skipped with a reason, never thrown for. Entries with the same address are
 * merged: the one with the highest `modifyIndex` wins (the first one on a tie) and takes the
 * position of the first occurrence; the others are reported as skipped. Returned nodes and
 * their `tags` are frozen.
 *
 * @param body the parsed JSON body
 * @param tags which tags make a node primary / replica
 * @returns valid nodes and skip reasons (secret-free; untrusted values are quoted and truncated)
 * @throws DiscoveryError `malformed health response: expected an array` when `body` is not an
 *   array: the whole round is unusable
 *
 * @example
 * ```ts
 * const { nodes } = parseHealthEntries(
 *   [{ Node: { Node: 'host1', Address: '10.0.0.1' },
 *      Service: { ID: 'pglab/node1', Service: 'pglab', Address: '', Port: 5432, Tags: ['master', 'primary'], ModifyIndex: 42 } }],
 *   { primary: ['master', 'primary'], replica: ['replica'] },
 * );
 * // nodes[0]: { id: 'pglab/node1', name: 'node1', address: '10.0.0.1:5432', role: 'primary', … }
 * ```
 */
export function parseHealthEntries(body: unknown, tags: RoleTags): ParsedHealthEntries {
  if (!Array.isArray(body)) {
    throw new DiscoveryError('malformed health response: expected an array');
  }
  const nodes: DiscoveredNode[] = [];
  const byAddress = new Map<string, number>();
  const skipped: string[] = [];
  let unreported = 0;
  const skip = (reason: string): void => {
    if (skipped.length < MAX_SKIPPED_REASONS) skipped.push(reason);
    else unreported += 1;
  };

  for (let i = 0; i < body.length; i++) {
    const result = parseEntry(body[i], i, tags);
    if ('reason' in result) {
      skip(result.reason);
      continue;
    }
    const candidate = result.node;
    const at = byAddress.get(candidate.address);
    if (at === undefined) {
      byAddress.set(candidate.address, nodes.length);
      nodes.push(candidate);
      continue;
    }
    const kept = nodes[at] as DiscoveredNode;
    if (candidate.modifyIndex > kept.modifyIndex) {
      nodes[at] = candidate;
      skip(`entry ${i}: duplicate address ${candidate.address}: ${show(kept.id)} replaced by ${show(candidate.id)} (higher ModifyIndex)`);
    } else {
      skip(`entry ${i} (${show(candidate.id)}): duplicate address ${candidate.address}, kept ${show(kept.id)}`);
    }
  }
  if (unreported > 0) skipped.push(`... and ${unreported} more entries skipped`);
  return { nodes, skipped };
}
