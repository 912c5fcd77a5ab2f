/**
 * Why no node was available, worded as the fix: the tail of the `NoPrimaryError` /
 * `NoReplicaError` a statement gets when discovery never offered a node to try. A wrong
 * service name, an unreachable Consul or a token without read access are configuration
 * mistakes that only show at run time; the message names the option or variable to check.
 *
 * @example
 * ```ts
 * noNodeHint('primary', { mode: 'consul-health', service: 'pg-main', primaryTags: ['primary'], replicaTags: ['replica'] },
 *   { discovered: true, nodes: 0, lastError: undefined });
 * // 'Consul lists no passing instance of service "pg-main": check the service name (option "service" or PGCONSUL_SERVICE …)'
 * ```
 * @module
 */
import type { TopologySnapshot } from '../topology/snapshot.js';

/** What the pool was told to look for (no secrets). */
export interface NoNodeSetup {
  /** The discovery mode (`consul-health`, `patroni`, …), or `custom` for a DiscoverySource object. */
  readonly mode: string;
  /** The Consul service name. */
  readonly service: string;
  /** Tags that make an entry a primary. */
  readonly primaryTags: readonly string[];
  /** Tags that make an entry a replica. */
  readonly replicaTags: readonly string[];
  /** Patroni's KV prefix (`service/<scope>/`), in the Patroni modes. */
  readonly patroniPrefix?: string | undefined;
  /** The prepared query's name, in `prepared-query` mode. */
  readonly preparedQuery?: string | undefined;
  /** Whether a Consul ACL token is configured (never the token); undefined when unknown. */
  readonly tokenConfigured?: boolean | undefined;
}

/** What discovery has seen so far. */
export interface NoNodeState {
  /** Whether discovery has answered at least once. */
  readonly discovered: boolean;
  /** How many nodes the last answer listed (any role). */
  readonly nodes: number;
  /** The last discovery error, if discovery never answered. */
  readonly lastError: Error | undefined;
  /** The distinct tags of the listed nodes (what the tag options are compared with). */
  readonly tagsSeen?: readonly string[] | undefined;
  /** Addresses listed as primary that PostgreSQL reported read-only (in recovery). */
  readonly readOnlyPrimaries?: readonly string[] | undefined;
  /** Listed nodes skipped as unreachable (connect or probe failed), with the failure. */
  readonly unreachable?: ReadonlyArray<{ readonly address: string; readonly reason: string }> | undefined;
}

const CONSUL_ADDRESS = 'option "consul.address" or CONSUL_HTTP_ADDR';
const CONSUL_TOKEN = 'option "consul.token", CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE';
const CHECK = 'run `npx pg-consul check` for a diagnosis';

function readTarget(setup: NoNodeSetup): string {
  switch (setup.mode) {
    case 'patroni':
      return `key_prefix "${setup.patroniPrefix ?? ''}"`;
    case 'patroni+health':
      return `key_prefix "${setup.patroniPrefix ?? ''}" and service "${setup.service}"`;
    case 'prepared-query':
      return `prepared query "${setup.preparedQuery ?? ''}"`;
    default:
      return `service "${setup.service}" and the nodes (node_prefix "")`;
  }
}

function statusHint(status: number, setup: NoNodeSetup): string {
  if (status === 403 && setup.tokenConfigured === false) {
    return `Consul refused the request (HTTP 403) and no ACL token is configured: set ${CONSUL_TOKEN} to a token with read access to ${readTarget(setup)}`;
  }
  if (status === 403) {
    return `Consul refused the request (HTTP 403): the ACL token (${CONSUL_TOKEN}) ${setup.tokenConfigured === true ? 'was denied; it ' : ''}needs read access to ${readTarget(setup)}`;
  }
  if (status === 401) return 'Consul asked for authentication (HTTP 401): check option "consul.auth" or CONSUL_HTTP_AUTH';
  if (status === 404 && setup.mode === 'prepared-query') {
    return `Consul has no prepared query "${setup.preparedQuery ?? ''}" (HTTP 404): check option "preparedQuery.name" or PGCONSUL_PREPARED_QUERY`;
  }
  return `Consul answered HTTP ${status} (see the error's cause): check ${CONSUL_ADDRESS} and the Consul agent's log`;
}

function emptyHint(setup: NoNodeSetup): string {
  switch (setup.mode) {
    case 'patroni':
      return (
        `Consul KV holds no running Patroni member under "${setup.patroniPrefix ?? ''}": check options "patroni.scope" and ` +
        '"patroni.namespace" (PGCONSUL_PATRONI_SCOPE, PGCONSUL_PATRONI_NAMESPACE) against Patroni\'s scope and namespace'
      );
    case 'prepared-query':
      return `prepared query "${setup.preparedQuery ?? ''}" returned no healthy node: check the query's service and its health checks`;
    case 'static':
      return 'no listed server answered its probe: check option "hosts" or PGCONSUL_HOSTS, and that the pool\'s user can log in there';
    case 'custom':
      return 'the custom discovery source listed no node';
    default:
      return (
        `Consul lists no passing instance of service "${setup.service}": check the service name (option "service" or ` +
        "PGCONSUL_SERVICE: Patroni's scope, lowercased) and that Patroni registers it (register_service: true); " +
        '`npx pg-consul check` lists the services Consul has and close matches'
      );
  }
}

/**
 * The reason no node of the wanted role was available, with what to check. Pure.
 *
 * @param intent the path that found no node
 * @param setup what the pool was told to look for
 * @param state what discovery has seen
 * @returns a sentence to append to the error message (never contains a secret)
 *
 * @example
 * ```ts
 * noNodeHint('primary', setup, { discovered: false, nodes: 0, lastError: new DiscoveryError('…', { status: 403 }) });
 * // 'Consul refused the request (HTTP 403): the ACL token (…) needs read access to service "pg-main" …'
 * ```
 */
export function noNodeHint(intent: 'primary' | 'replica', setup: NoNodeSetup, state: NoNodeState): string {
  if (!state.discovered) {
    const error = state.lastError;
    if (error === undefined) return 'discovery has not answered yet';
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number') return `discovery has not answered yet: ${statusHint(status, setup)}`;
    if (setup.mode === 'static') return `discovery has not answered yet: ${emptyHint(setup)}`;
    if (setup.mode === 'custom') return 'discovery has not answered yet (see the error\'s cause)';
    return `discovery has not answered yet (${error.message}): check ${CONSUL_ADDRESS}`;
  }
  if (state.nodes === 0) return emptyHint(setup);
  const known = `${state.nodes} node${state.nodes === 1 ? ' is' : 's are'} listed`;
  const seen = state.tagsSeen === undefined ? '' : `; tags seen: ${state.tagsSeen.join(', ') || '(none)'}`;
  const unreachable = state.unreachable ?? [];
  if (unreachable.length > 0) {
    const which = unreachable.map((u) => `${u.address} (${u.reason})`).join(', ');
    return `${known} but ${which} ${unreachable.length === 1 ? 'is' : 'are'} unreachable: skipped until a probe gets an answer or discovery ` +
      'changes; a failover may be under way, otherwise check the address and port discovery lists and that PostgreSQL listens there';
  }
  if (intent === 'replica') {
    return `${known} but no usable replica: check option "replicaTags" or PGCONSUL_REPLICA_TAGS (now ${setup.replicaTags.join(', ')}${seen}), or use readFallback "primary"`;
  }
  const readOnly = state.readOnlyPrimaries ?? [];
  if (readOnly.length > 0) {
    return `${known} but ${readOnly.join(', ')}, listed as primary, is read-only in PostgreSQL (in recovery): Consul's role lags behind a switchover ` +
      `(it clears when Consul re-registers the node), or whatever sets the tags or leader key (Patroni, a registration script) is wrong; ${CHECK}`;
  }
  if (setup.mode === 'patroni' || setup.mode === 'patroni+health') return `${known} but Patroni names no leader: a failover may be under way`;
  if (setup.mode === 'static') return `${known} but none accepts writes: a failover may be under way`;
  return `${known} but none as a usable primary: a failover may be under way; otherwise check option "primaryTags" or PGCONSUL_PRIMARY_TAGS (now ${setup.primaryTags.join(', ')}${seen})`;
}

/**
 * The {@link NoNodeState} of a topology snapshot: what discovery answered, the tags its
 * nodes carry, the primaries found read-only and the nodes found unreachable.
 * @param t the snapshot
 * @param lastError the last discovery error, if discovery never answered
 */
export function noNodeState(t: TopologySnapshot, lastError: Error | undefined): NoNodeState {
  return {
    discovered: t.discovered,
    nodes: t.nodes.length,
    lastError,
    tagsSeen: [...new Set(t.nodes.flatMap((n) => n.tags))],
    readOnlyPrimaries: [...t.invalidated.keys()],
    unreachable: [...t.unreachable].map(([address, u]) => ({ address, reason: u.reason })),
  };
}
