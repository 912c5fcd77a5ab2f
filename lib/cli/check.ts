/**
 * `pg-consul check`: resolves the configuration, then walks the path a pool takes (Consul
 * reachable → token accepted → service exists → tags match → a passing primary → PostgreSQL
 * agrees on the role) and stops at the first failure with a concrete hint and an exit code.
 * @module
 */
import type { ResolvedOptions } from '../options.js';
import { consulGet } from '../discovery/consul-http.js';
import { DiscoveryError } from '../errors.js';
import type { ProbeServer } from '../discovery/pg-probe.js';
import { readHealthEntries } from './status.js';

/** Exit codes of `pg-consul check` (documented in docs/cli.md). */
export const EXIT = Object.freeze({
  ok: 0,
  /** Invalid configuration (an option or environment variable rejected). */
  config: 2,
  /** Consul unreachable. */
  consulUnreachable: 3,
  /** ACL token missing or denied (403). */
  acl: 4,
  /** Service not found, or no entry carries the configured tags. */
  service: 5,
  /** No passing primary. */
  noPrimary: 6,
  /** Consul and PostgreSQL disagree on a role, or a node is unreachable over SQL. */
  roleMismatch: 7,
} as const);

/** One finding of the check. */
export interface Finding {
  /** `ok` or `fail`. */
  readonly level: 'ok' | 'fail';
  /** What was checked and found. */
  readonly message: string;
  /** What to do about it (failures only). */
  readonly hint?: string;
}

/** Result of {@link runChecks}. */
export interface CheckResult {
  /** Findings in order. */
  readonly findings: readonly Finding[];
  /** Process exit code ({@link EXIT}). */
  readonly exitCode: number;
}

/**
 * Levenshtein distance, small strings only (service names).
 * @param a first string
 * @param b second string
 * @returns the edit distance
 */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/**
 * Services whose name is close to `wanted` (edit distance ≤ 3, or one contains the other).
 * @param wanted the configured service
 * @param names the services that exist
 * @returns close matches, closest first
 * @example
 * ```ts
 * closeMatches('pglab', ['pg-lab', 'redis']); // ['pg-lab']
 * ```
 */
export function closeMatches(wanted: string, names: readonly string[]): string[] {
  const w = wanted.toLowerCase();
  return names
    .map((name) => ({ name, d: editDistance(w, name.toLowerCase()) }))
    .filter(({ name, d }) => d <= 3 || name.toLowerCase().includes(w) || w.includes(name.toLowerCase()))
    .sort((x, y) => x.d - y.d)
    .map(({ name }) => name);
}

function statusOf(error: unknown): number | undefined {
  return error instanceof DiscoveryError ? error.status : undefined;
}

/** A health entry as `readHealthEntries` returns it. */
type Entry = Awaited<ReturnType<typeof readHealthEntries>>[number];

/** The failure a step stops the check with. */
class CheckFailure extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

function hasTag(entry: Entry, tags: readonly string[]): boolean {
  return (entry.Service?.Tags ?? []).some((t) => tags.includes(t));
}

/** Consul reachable and the token accepted; resolves with the names of the services visible. */
async function checkConsul(resolved: ResolvedOptions, timeoutMillis: number, findings: Finding[]): Promise<string[]> {
  const tokenHint = resolved.consul.token === undefined
    ? 'no token is configured: set CONSUL_HTTP_TOKEN (or CONSUL_HTTP_TOKEN_FILE, or consul.token)'
    : 'the token was refused: check its policy grants service:read and node:read on this service (and key:read on the Patroni prefix)';
  let services: Record<string, unknown>;
  try {
    const signal = AbortSignal.timeout(timeoutMillis);
    services = (await consulGet(resolved.consul, '/v1/catalog/services', {}, { signal, timeoutMillis, unref: false })).body as Record<string, unknown>;
  } catch (error) {
    const status = statusOf(error);
    if (status === 403 || status === 401) throw new CheckFailure(EXIT.acl, `Consul refused the request (${status}): ${(error as Error).message}`, tokenHint);
    if (status === undefined) {
      throw new CheckFailure(EXIT.consulUnreachable, `Consul is unreachable: ${(error as Error).message}`, 'check CONSUL_HTTP_ADDR / consul.host and consul.port, and that the local agent is running');
    }
    throw new CheckFailure(EXIT.consulUnreachable, `Consul answered ${status}: ${(error as Error).message}`, 'check the Consul agent logs');
  }
  findings.push({ level: 'ok', message: `Consul reachable, ${Object.keys(services).length} service(s) visible` });
  return Object.keys(services);
}

/** The service registered, with instances carrying the configured tags; resolves with its entries. */
async function checkService(resolved: ResolvedOptions, names: readonly string[], timeoutMillis: number, findings: Finding[]): Promise<Entry[]> {
  if (!names.includes(resolved.service)) {
    const close = closeMatches(resolved.service, names);
    const hint = `services that exist: ${names.join(', ') || '(none)'}` + (close.length > 0 ? `; did you mean ${close.join(' or ')}?` : '') +
      (resolved.consul.token === undefined ? '; with ACLs on, an anonymous token may hide services: set CONSUL_HTTP_TOKEN' : '');
    throw new CheckFailure(EXIT.service, `service "${resolved.service}" is not registered in Consul`, hint);
  }
  const entries = await readHealthEntries(resolved, timeoutMillis);
  const tagsSeen = [...new Set(entries.flatMap((e) => e.Service?.Tags ?? []))];
  if (!entries.some((e) => hasTag(e, resolved.primaryTags) || hasTag(e, resolved.replicaTags))) {
    throw new CheckFailure(EXIT.service, `no instance of "${resolved.service}" carries the primary tags [${resolved.primaryTags.join(',')}] or replica tags [${resolved.replicaTags.join(',')}]`,
      `tags seen: ${tagsSeen.join(', ') || '(none)'}; set PGCONSUL_PRIMARY_TAGS / PGCONSUL_REPLICA_TAGS (or primaryTags / replicaTags) to match`);
  }
  findings.push({ level: 'ok', message: `service "${resolved.service}": ${entries.length} instance(s), tags seen: ${tagsSeen.join(', ')}` });
  return entries;
}

/** A passing primary; returns the passing entries. */
function checkPrimary(resolved: ResolvedOptions, entries: readonly Entry[], findings: Finding[]): Entry[] {
  const passing = entries.filter((e) => (e.Checks ?? []).every((c) => c.Status === 'passing'));
  const primaries = passing.filter((e) => hasTag(e, resolved.primaryTags));
  if (primaries.length === 0) {
    const tagsSeen = [...new Set(entries.flatMap((e) => e.Service?.Tags ?? []))];
    throw new CheckFailure(EXIT.noPrimary, `no passing instance of "${resolved.service}" is tagged primary`,
      `a failover may be in progress (run \`pg-consul watch\`), or the primary's health check fails (see \`patronictl list\` and the Patroni logs); ` +
        `otherwise the primary tags do not match: PGCONSUL_PRIMARY_TAGS / primaryTags is ${resolved.primaryTags.join(',')}, tags seen: ${tagsSeen.join(', ') || '(none)'}`);
  }
  findings.push({ level: 'ok', message: `${primaries.length} passing primary, ${passing.length - primaries.length} other passing instance(s)` });
  return passing;
}

/** Every passing instance reachable over SQL, in the role Consul gives it. */
async function checkRoles(resolved: ResolvedOptions, passing: readonly Entry[], probe: ProbeServer, timeoutMillis: number, findings: Finding[]): Promise<void> {
  const mismatches: string[] = [];
  for (const entry of passing) {
    const host = entry.Service?.Address || entry.Node?.Address || '';
    const port = entry.Service?.Port ?? 5432;
    const consulRole = hasTag(entry, resolved.primaryTags) ? 'primary' : hasTag(entry, resolved.replicaTags) ? 'replica' : 'other';
    const result = await probe(host, port, AbortSignal.timeout(timeoutMillis));
    if (!result.reachable) mismatches.push(`${host}:${port} (${consulRole} in Consul) is not reachable over SQL: ${result.reason}`);
    else if (consulRole !== 'other' && (result.inRecovery ? 'replica' : 'primary') !== consulRole) {
      mismatches.push(`${host}:${port} is ${consulRole} in Consul but ${result.inRecovery ? 'in recovery (replica)' : 'writable (primary)'} in PostgreSQL`);
    }
  }
  if (mismatches.length > 0) {
    throw new CheckFailure(EXIT.roleMismatch, mismatches.join('; '),
      'Consul\'s tags lag behind PostgreSQL during a switchover (re-run in a few seconds); if it persists, check the Patroni/registration script that sets the tags, and the PG* credentials');
  }
  findings.push({ level: 'ok', message: 'PostgreSQL roles match Consul' });
}

/**
 * Runs the diagnosis against Consul and PostgreSQL.
 * @param resolved resolved options
 * @param probe the bounded role probe
 * @param timeoutMillis per-request deadline
 * @returns findings and the exit code
 */
export async function runChecks(resolved: ResolvedOptions, probe: ProbeServer, timeoutMillis: number): Promise<CheckResult> {
  const findings: Finding[] = [];
  try {
    const names = await checkConsul(resolved, timeoutMillis, findings);
    const entries = await checkService(resolved, names, timeoutMillis, findings);
    const passing = checkPrimary(resolved, entries, findings);
    await checkRoles(resolved, passing, probe, timeoutMillis, findings);
  } catch (err) {
    if (!(err instanceof CheckFailure)) throw err;
    findings.push({ level: 'fail', message: err.message, hint: err.hint });
    return { findings, exitCode: err.exitCode };
  }
  return { findings, exitCode: EXIT.ok };
}
