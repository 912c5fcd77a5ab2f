/**
 * `pg-consul status` / `watch`: one row per node Consul lists, with its check state, what
 * Patroni says (when its KV members are read), the role a real connection verifies, and
 * where pg-consul routes writes and reads.
 * @module
 */
import type { ResolvedOptions } from '../options.js';
import type { TopologySnapshot } from '../topology/snapshot.js';
import { consulGet } from '../discovery/consul-http.js';
import type { ProbeServer } from '../discovery/pg-probe.js';
import { parsePatroniKv } from '../discovery/patroni-kv.js';
import type { PatroniClusterView, PatroniMember } from '../discovery/patroni-kv.js';
import { formatAddress } from '../topology/node.js';

/** One line of the status table. */
export interface StatusRow {
  /** Consul node name (or Patroni member). */
  readonly node: string;
  /** `host:port`. */
  readonly address: string;
  /** Role by Consul tags: `primary`, `replica` or `other`. */
  readonly consulRole: string;
  /** Worst Consul check state: `passing`, `warning`, `critical`. */
  readonly checks: string;
  /** Patroni role/state/timeline when known. */
  readonly patroni: string;
  /** Replication lag in bytes when known. */
  readonly lagBytes: number | undefined;
  /** Role verified over a real connection: `primary`, `replica`, or `unreachable (…)`. */
  readonly verified: string;
  /** `writes`, `reads`, `writes+reads` or `''`: where pg-consul routes. */
  readonly route: string;
}

/** A Consul health entry, as much of it as the CLI reads. */
export interface HealthEntry {
  readonly Node?: { readonly Node?: string; readonly Address?: string };
  readonly Service?: { readonly ID?: string; readonly Address?: string; readonly Port?: number; readonly Tags?: readonly string[] | null };
  readonly Checks?: readonly { readonly Status?: string }[];
}

const SEVERITY = ['passing', 'warning', 'critical'];

function worstCheck(entry: HealthEntry): string {
  let worst = 0;
  for (const check of entry.Checks ?? []) worst = Math.max(worst, SEVERITY.indexOf(check.Status ?? 'critical'));
  return SEVERITY[worst < 0 ? 2 : worst] ?? 'critical';
}

/**
 * The member name of an entry: Patroni registers its service as `<scope>/<member>`, so the
 * part after the service name and a slash; otherwise the Consul node name.
 * @param entry a health entry
 * @param service the service name
 * @returns the member or node name (`''` when neither is known)
 * @example
 * ```ts
 * memberName({ Node: { Node: 'agent-1' }, Service: { ID: 'pglab/node2' } }, 'pglab'); // 'node2'
 * ```
 */
export function memberName(entry: HealthEntry, service: string): string {
  const id = entry.Service?.ID ?? '';
  if (id.startsWith(`${service}/`) && id.length > service.length + 1) return id.slice(service.length + 1);
  return entry.Node?.Node ?? '';
}

/**
 * Reads every entry of the service (passing or not) from Consul's health endpoint.
 * @param resolved resolved options (Consul address, token, service)
 * @param timeoutMillis deadline
 * @returns the raw entries
 */
export async function readHealthEntries(resolved: ResolvedOptions, timeoutMillis: number): Promise<HealthEntry[]> {
  const res = await consulGet(resolved.consul, `/v1/health/service/${encodeURIComponent(resolved.service)}`, {}, {
    signal: AbortSignal.timeout(timeoutMillis),
    timeoutMillis,
    unref: false,
  });
  return Array.isArray(res.body) ? (res.body as HealthEntry[]) : [];
}

/**
 * Reads Patroni's keys under `prefix` (`service/<scope>/`), for the Patroni column of every
 * member (role, state, timeline) and the lag Patroni reports, as `patronictl list` shows
 * them. Best effort: `undefined` when the keys are absent, refused or malformed (the table
 * is still complete without them).
 *
 * @param resolved resolved options (Consul address, token)
 * @param prefix the KV prefix, e.g. `service/pglab/`
 * @param timeoutMillis deadline
 * @returns the members and leader Patroni describes, or undefined
 */
export async function readPatroniView(resolved: ResolvedOptions, prefix: string, timeoutMillis: number): Promise<PatroniClusterView | undefined> {
  try {
    const res = await consulGet(resolved.consul, `/v1/kv/${prefix.split('/').map(encodeURIComponent).join('/')}`, { recurse: true }, {
      signal: AbortSignal.timeout(timeoutMillis),
      timeoutMillis,
      unref: false,
    });
    const view = parsePatroniKv(res.body, prefix);
    return view.members.length === 0 ? undefined : view;
  } catch {
    return undefined;
  }
}

/** `role/state TLn` of a member, as the Patroni column shows it. */
function describeMember(m: { role: string; state: string; timeline?: number | undefined }): string {
  return `${m.role}/${m.state}${m.timeline === undefined ? '' : ` TL${m.timeline}`}`;
}

/** A member's lag behind the leader in bytes, from their `xlog_location`s (patronictl's "Lag"). */
function kvLag(member: PatroniMember | undefined, view: PatroniClusterView | undefined): number | undefined {
  const leader = view?.members.find((m) => m.name === view.leader?.name);
  if (member === undefined || leader === undefined || member === leader) return undefined;
  if (member.xlogLocation === undefined || leader.xlogLocation === undefined) return undefined;
  return Math.max(0, leader.xlogLocation - member.xlogLocation);
}

function roleOfTags(tags: readonly string[], resolved: ResolvedOptions): string {
  if (tags.some((t) => resolved.primaryTags.includes(t))) return 'primary';
  if (tags.some((t) => resolved.replicaTags.includes(t))) return 'replica';
  return 'other';
}

/**
 * Builds the table rows (pure apart from the probes): Consul entries merged with the pool's
 * topology (routing, Patroni info, lag) and a verified role per node.
 * @param resolved resolved options
 * @param entries Consul health entries
 * @param topology the pool's snapshot
 * @param probe the bounded role probe
 * @param patroni Patroni's keys (see {@link readPatroniView}), when read
 * @returns the rows, in Consul's order
 */
export async function buildRows(
  resolved: ResolvedOptions,
  entries: readonly HealthEntry[],
  topology: TopologySnapshot,
  probe: ProbeServer,
  patroni?: PatroniClusterView,
): Promise<StatusRow[]> {
  const reads = new Set(topology.readReplicas.map((n) => n.address));
  if (reads.size === 0 && resolved.readFallback === 'primary' && topology.primary) reads.add(topology.primary.address);
  const byAddress = new Map(topology.nodes.map((n) => [n.address, n]));
  return Promise.all(
    entries.map(async (entry): Promise<StatusRow> => {
      const host = entry.Service?.Address || entry.Node?.Address || '';
      const port = entry.Service?.Port ?? 5432;
      const address = formatAddress(host, port);
      const known = byAddress.get(address);
      const p = known?.patroni;
      const member = patroni?.members.find((m) => formatAddress(m.host, m.port) === address);
      const result = await probe(host, port, AbortSignal.timeout(5_000));
      const verified = result.reachable ? (result.inRecovery ? 'replica' : 'primary') : `unreachable (${result.reason})`;
      const route = [topology.primary?.address === address ? 'writes' : '', reads.has(address) ? 'reads' : ''].filter(Boolean).join('+');
      return {
        node: p?.member ?? member?.name ?? (memberName(entry, resolved.service) || known?.name || ''),
        address,
        consulRole: roleOfTags(entry.Service?.Tags ?? [], resolved),
        checks: worstCheck(entry),
        patroni: p ? describeMember(p) : member ? describeMember(member) : '',
        lagBytes: topology.lag.get(address)?.bytes ?? kvLag(member, patroni),
        verified,
        route,
      };
    }),
  );
}

const COLUMNS: readonly [keyof StatusRow, string][] = [
  ['node', 'Member'],
  ['address', 'Host'],
  ['consulRole', 'Consul role'],
  ['checks', 'Checks'],
  ['patroni', 'Patroni'],
  ['lagBytes', 'Lag (bytes)'],
  ['verified', 'Verified'],
  ['route', 'Routes'],
];

/**
 * Formats rows as a `patronictl list`-like table.
 * @param service the service name (title line)
 * @param rows the rows
 * @returns the table text, ending in a newline
 * @example
 * ```ts
 * formatTable('pglab', rows); // "+ Service: pglab ...\n| Member | Host | ..."
 * ```
 */
export function formatTable(service: string, rows: readonly StatusRow[]): string {
  const cells = rows.map((row) => COLUMNS.map(([key]) => (row[key] === undefined ? '' : String(row[key]))));
  const widths = COLUMNS.map(([, title], i) => Math.max(title.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (values: readonly string[]): string => `| ${values.map((v, i) => v.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  return [`+ Service: ${service}`, rule, line(COLUMNS.map(([, t]) => t)), rule, ...cells.map(line), rule, ''].join('\n');
}
