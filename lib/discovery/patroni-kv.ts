/**
 * Patroni's own state in Consul KV, read and turned into a topology (pure).
 *
 * Patroni (3.x, Consul DCS) keeps under `<namespace>/<scope>/`:
 * - `leader` — the leader's member name, held by its session: deleted when the session
 *   expires, moved at the moment of a switchover or failover;
 * - `members/<name>` — JSON `{conn_url, api_url, state, role, version, xlog_location,
 *   timeline, tags…}`, one per member, held by that member's session;
 * - `status`, `config`, `initialize`, `history`, `failover`, `sync` — not needed here.
 *
 * @module
 */
import { DiscoveryError } from '../errors.js';
import { formatAddress } from '../topology/node.js';
import type { DiscoveredNode, NodeRole, PatroniMemberInfo, PatroniWalPositions } from '../topology/node.js';
import { MAX_SKIPPED_REASONS, validateHost, validatePort } from './consul-entries.js';

/** The leader key as read. */
export interface PatroniLeaderKey {
  /** Member name the key holds (trimmed). */
  readonly name: string;
  /** The key's `CreateIndex`: a new acquisition after a delete gets a new one. */
  readonly createIndex: number;
}

/** One `members/<name>` key, validated. */
export interface PatroniMember {
  /** Member name (the last path segment of the key). */
  readonly name: string;
  /** Host from `conn_url`. */
  readonly host: string;
  /** Port from `conn_url` (5432 when it has none). */
  readonly port: number;
  /** Patroni's role (`master`, `primary`, `replica`, `promoted`, `demoted`, `standby_leader`…). */
  readonly role: string;
  /** Patroni's state (`running`, `stopping`, `stopped`, `starting`, `crashed`…). */
  readonly state: string;
  /** `xlog_location` when it is a whole number ≥ 0 that JavaScript represents exactly. */
  readonly xlogLocation: number | undefined;
  /** `timeline` when it is a whole number ≥ 1. */
  readonly timeline: number | undefined;
  /** `tags.noloadbalance` (Patroni's boolean parsing). */
  readonly noloadbalance: boolean;
  /** `tags.nofailover` (Patroni's boolean parsing). */
  readonly nofailover: boolean;
  /** The key's `CreateIndex` (stable while the member's session lives). */
  readonly createIndex: number;
}

/** What {@link parsePatroniKv} found under the prefix. */
export interface PatroniClusterView {
  /** The leader key, when present and non-empty. */
  readonly leader: PatroniLeaderKey | undefined;
  /** Valid members, in key order. */
  readonly members: readonly PatroniMember[];
  /** One secret-free reason per member key that was skipped as malformed. */
  readonly skipped: readonly string[];
}

/** Patroni roles that make the leader a writable primary. */
export const PATRONI_PRIMARY_ROLES: ReadonlySet<string> = new Set(['master', 'primary', 'promoted']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function wholeNumber(value: unknown, min: number): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min ? value : undefined;
}

/**
 * Patroni's `parse_bool` plus JSON booleans: `true`, `on`/`true`/`yes`/`1` (any case) and
 * non-zero numbers are true; everything else is false.
 *
 * @param value a tag value
 * @returns the boolean Patroni would see
 *
 * @example
 * ```ts
 * patroniBool('on'); // true
 * patroniBool(false); // false
 * ```
 */
export function patroniBool(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0 && Number.isFinite(value);
  if (typeof value === 'string') return ['on', 'true', 'yes', '1'].includes(value.trim().toLowerCase());
  return false;
}

/**
 * Host and port of a Patroni `conn_url` (`postgres://host:port/db` or `postgresql://…`).
 * IPv6 hosts are written in brackets; a missing port means 5432.
 *
 * @param url the `conn_url` value
 * @returns host (IPv6 without brackets) and port, or `undefined` when unusable
 *
 * @example
 * ```ts
 * parseConnUrl('postgres://127.0.0.1:55401/postgres'); // { host: '127.0.0.1', port: 55401 }
 * parseConnUrl('postgres://[::1]/postgres');           // { host: '::1', port: 5432 }
 * ```
 */
export function parseConnUrl(url: unknown): { host: string; port: number } | undefined {
  if (typeof url !== 'string' || !/^postgres(?:ql)?:\/\//i.test(url)) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const host = validateHost(decodeURIComponent(parsed.hostname));
  if (host === undefined) return undefined;
  const port = parsed.port === '' ? 5432 : validatePort(Number(parsed.port));
  return port === undefined ? undefined : { host, port };
}

/** A printable, secret-free rendering of an untrusted string for skip reasons. */
function show(value: unknown): string {
  if (typeof value !== 'string') return typeof value;
  // A URL with user info may carry a password: never echo it.
  if (value.includes('@')) return '(hidden: contains "@")';
  const text = JSON.stringify(value);
  return text.length > 64 ? `${text.slice(0, 61)}...` : text;
}

function decodeValue(raw: unknown): string | undefined {
  if (typeof raw !== 'string') return undefined;
  return Buffer.from(raw, 'base64').toString('utf8');
}

function parseMember(name: string, text: string | undefined, createIndex: number): PatroniMember | string {
  if (text === undefined) return `member ${show(name)}: no value`;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return `member ${show(name)}: value is not JSON`;
  }
  if (!isRecord(data)) return `member ${show(name)}: value is not a JSON object`;
  const where = parseConnUrl(data['conn_url']);
  if (where === undefined) return `member ${show(name)}: unusable conn_url ${show(data['conn_url'])}`;
  const role = typeof data['role'] === 'string' ? data['role'] : '';
  const state = typeof data['state'] === 'string' ? data['state'] : '';
  const tags = isRecord(data['tags']) ? data['tags'] : {};
  return {
    name,
    host: where.host,
    port: where.port,
    role,
    state,
    xlogLocation: wholeNumber(data['xlog_location'], 0),
    timeline: wholeNumber(data['timeline'], 1),
    noloadbalance: patroniBool(tags['noloadbalance']),
    nofailover: patroniBool(tags['nofailover']),
    createIndex,
  };
}

/**
 * Validates the body of `GET /v1/kv/<prefix>?recurse` and extracts the leader key and the
 * members. Keys outside `prefix`, and keys other than `leader` and `members/<name>`, are
 * ignored. A malformed member is skipped with a reason; the leader key's value is the member
 * name (surrounding whitespace ignored; empty = no leader).
 *
 * @param body parsed JSON body; `null` (a 404: no keys under the prefix) is an empty view
 * @param prefix `<namespace>/<scope>/` with the trailing slash
 * @returns the leader key, valid members in key order, skip reasons
 * @throws DiscoveryError when `body` is neither null nor an array: the round is unusable
 *
 * @example
 * ```ts
 * const view = parsePatroniKv(body, 'service/pglab/');
 * view.leader?.name; // 'node1'
 * ```
 */
export function parsePatroniKv(body: unknown, prefix: string): PatroniClusterView {
  if (body === null) return { leader: undefined, members: [], skipped: [] };
  if (!Array.isArray(body)) throw new DiscoveryError('malformed Patroni KV response: expected an array');
  let leader: PatroniLeaderKey | undefined;
  const members: PatroniMember[] = [];
  const skipped: string[] = [];
  let unreported = 0;
  const skip = (reason: string): void => {
    if (skipped.length < MAX_SKIPPED_REASONS) skipped.push(reason);
    else unreported += 1;
  };
  for (const entry of body) {
    if (!isRecord(entry) || typeof entry['Key'] !== 'string' || !entry['Key'].startsWith(prefix)) continue;
    const rel = entry['Key'].slice(prefix.length);
    const createIndex = wholeNumber(entry['CreateIndex'], 0) ?? 0;
    if (rel === 'leader') {
      const name = decodeValue(entry['Value'])?.trim() ?? '';
      if (name !== '') leader = { name, createIndex };
      continue;
    }
    if (!rel.startsWith('members/')) continue;
    const name = rel.slice('members/'.length);
    if (name === '' || name.includes('/')) continue;
    const member = parseMember(name, decodeValue(entry['Value']), createIndex);
    if (typeof member === 'string') skip(member);
    else members.push(member);
  }
  if (unreported > 0) skipped.push(`... and ${unreported} more members skipped`);
  return { leader, members, skipped };
}

/** Options of {@link patroniTopology}. */
export interface PatroniTopologyOptions {
  /** The Patroni scope, for node ids (`<scope>/<member>`, as Patroni's Consul service ids). */
  readonly scope: string;
  /**
   * {@link leaderToken} of a leader whose promotion pg-consul confirmed itself (the server
   * accepted a probe as writable) while Patroni still reports it as `replica`.
   */
  readonly confirmedLeader?: string | undefined;
}

/** What {@link patroniTopology} decided. */
export interface PatroniTopology {
  /** All members with a usable address, with their roles (see {@link patroniTopology}). */
  readonly nodes: readonly DiscoveredNode[];
  /**
   * The leader when it holds the key but its member still says `replica` (promotion under
   * way, not yet confirmed): it is listed as a replica, not as the primary.
   */
  readonly pendingLeader: DiscoveredNode | undefined;
  /** {@link leaderToken} of the leader key, when there is one. */
  readonly leaderToken: string | undefined;
  /** Secret-free notes on members that were left out (duplicate address, leader without member key). */
  readonly notes: readonly string[];
  /** The members' WAL positions ({@link patroniWalPositions} of `nodes`). */
  readonly walPositions: PatroniWalPositions;
}

/**
 * The WAL positions of Patroni members (pure): each member's `xlog_location` by address, and
 * the latest known position of the leader — the highest `xlog_location` of the member the
 * leader key names and of the members with role `replica` and state `running` (a replica can
 * only have received what the leader had written, so its position is a lower bound of the
 * leader's; with no leader key, during an election, the replicas still have a reference).
 * Other members (stopped, crashed, a `demoted` or stale `master` that no longer holds the
 * key and may have written WAL the new leader never had) only get their own entry.
 *
 * @param nodes nodes with `patroni` info (others are ignored)
 * @returns the positions
 *
 * @example
 * ```ts
 * const { latest, members } = patroniWalPositions(patroniTopology(view, { scope: 'pglab' }).nodes);
 * const bytesBehind = latest! - members.get('10.0.0.2:5432')!;
 * ```
 */
export function patroniWalPositions(nodes: readonly DiscoveredNode[]): PatroniWalPositions {
  const members = new Map<string, number>();
  let latest: number | undefined;
  for (const node of nodes) {
    const info = node.patroni;
    const position = info?.xlogLocation;
    if (info === undefined || position === undefined) continue;
    members.set(node.address, position);
    const reference = info.leader || (info.role === 'replica' && info.state === 'running');
    if (reference && (latest === undefined || position > latest)) latest = position;
  }
  return Object.freeze({ latest, members });
}

/**
 * Identifies one tenure of a leader: its name and the leader key's `CreateIndex` (a new
 * acquisition after the key was deleted gets a new one).
 *
 * @param leader the leader key
 * @returns `<name>#<createIndex>`
 *
 * @example
 * ```ts
 * leaderToken({ name: 'node2', createIndex: 812 }); // 'node2#812'
 * ```
 */
export function leaderToken(leader: PatroniLeaderKey): string {
  return `${leader.name}#${leader.createIndex}`;
}

/**
 * The role a member gets (pure decision table):
 *
 * | member                                   | state     | role in the topology |
 * |------------------------------------------|-----------|----------------------|
 * | named by the leader key, role master/primary/promoted | running | `primary` |
 * | named by the leader key, role replica, confirmed writable | running | `primary` |
 * | named by the leader key, role replica (promotion under way) | running | `replica` (pending) |
 * | named by the leader key, any other role (standby_leader, demoted…) or not running | | `other` |
 * | not the leader, role replica, no `noloadbalance` | running | `replica` |
 * | anything else (a stale `master` no longer holding the key, noloadbalance, stopped…) | | `other` |
 *
 * Being writable never makes a node primary: only the leader key does.
 *
 * @param member the member
 * @param isLeader whether the leader key names it
 * @param confirmed whether its promotion was confirmed by a probe
 * @returns the role, and whether it is a pending leader
 *
 * @example
 * ```ts
 * memberRole({ ...member, role: 'replica', state: 'running' }, true, false); // { role: 'replica', pending: true }
 * ```
 */
export function memberRole(member: PatroniMember, isLeader: boolean, confirmed: boolean): { role: NodeRole; pending: boolean } {
  const running = member.state === 'running';
  if (isLeader) {
    if (!running) return { role: 'other', pending: false };
    if (PATRONI_PRIMARY_ROLES.has(member.role)) return { role: 'primary', pending: false };
    if (member.role === 'replica') {
      if (confirmed) return { role: 'primary', pending: false };
      return { role: member.noloadbalance ? 'other' : 'replica', pending: true };
    }
    return { role: 'other', pending: false };
  }
  if (running && member.role === 'replica' && !member.noloadbalance) return { role: 'replica', pending: false };
  return { role: 'other', pending: false };
}

/**
 * Turns a {@link PatroniClusterView} into topology nodes (pure). Roles follow
 * {@link memberRole}. Node ids are `<scope>/<member>` (as Patroni's Consul service ids),
 * names the member names; `tags` hold Patroni's role; `modifyIndex` is the leader key's
 * `CreateIndex` for the leader and the member key's `CreateIndex` for the others (both stable
 * while nothing but WAL positions changes, so routine member updates do not look like a
 * topology change). Two members with the same address: the leader wins, else the first.
 *
 * @param view the parsed KV state
 * @param options scope and the confirmed leader tenure
 * @returns nodes, pending leader, leader token and notes
 *
 * @example
 * ```ts
 * const { nodes, pendingLeader } = patroniTopology(parsePatroniKv(body, 'service/pglab/'), { scope: 'pglab' });
 * ```
 */
export function patroniTopology(view: PatroniClusterView, options: PatroniTopologyOptions): PatroniTopology {
  const token = view.leader === undefined ? undefined : leaderToken(view.leader);
  const leaderName = view.leader?.name;
  const notes: string[] = [];
  if (leaderName !== undefined && !view.members.some((m) => m.name === leaderName)) {
    notes.push(`the leader key names ${JSON.stringify(leaderName)}, which has no usable member key: no primary`);
  }
  // The leader first, so it keeps its address when another member claims the same one.
  const ordered = [...view.members].sort((a, b) => (a.name === leaderName ? -1 : b.name === leaderName ? 1 : 0));
  const byAddress = new Map<string, DiscoveredNode>();
  const byName = new Map<string, DiscoveredNode>();
  let pendingLeader: DiscoveredNode | undefined;
  for (const member of ordered) {
    const isLeader = member.name === leaderName;
    const decision = memberRole(member, isLeader, isLeader && token !== undefined && token === options.confirmedLeader);
    const address = formatAddress(member.host, member.port);
    const kept = byAddress.get(address);
    if (kept !== undefined) {
      notes.push(`member ${JSON.stringify(member.name)} has the same address ${address} as ${JSON.stringify(kept.name)}: left out`);
      continue;
    }
    const patroni: PatroniMemberInfo = Object.freeze({
      member: member.name,
      role: member.role,
      state: member.state,
      leader: isLeader,
      xlogLocation: member.xlogLocation,
      timeline: member.timeline,
      noloadbalance: member.noloadbalance,
      nofailover: member.nofailover,
    });
    const node: DiscoveredNode = Object.freeze({
      id: `${options.scope}/${member.name}`,
      name: member.name,
      host: member.host,
      port: member.port,
      address,
      role: decision.role,
      tags: Object.freeze(member.role === '' ? [] : [member.role]),
      modifyIndex: isLeader && view.leader !== undefined ? view.leader.createIndex : member.createIndex,
      patroni,
    });
    byAddress.set(address, node);
    byName.set(member.name, node);
    if (decision.pending) pendingLeader = node;
  }
  // Key order (member name order), as Consul returned them.
  const nodes = view.members.map((m) => byName.get(m.name)).filter((n): n is DiscoveredNode => n !== undefined);
  return { nodes, pendingLeader, leaderToken: token, notes, walPositions: patroniWalPositions(nodes) };
}
