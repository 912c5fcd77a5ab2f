import assert from 'node:assert/strict';
import { DiscoveryError } from '../../../lib/errors.js';
import { noNodeHint } from '../../../lib/retry/no-node-hint.js';
import type { NoNodeSetup, NoNodeState } from '../../../lib/retry/no-node-hint.js';

const setup = (mode: string, extra: Partial<NoNodeSetup> = {}): NoNodeSetup => ({
  mode,
  service: 'pg-main',
  primaryTags: ['primary', 'master'],
  replicaTags: ['replica'],
  patroniPrefix: 'service/pg-main/',
  preparedQuery: 'pg-geo',
  ...extra,
});
const never = (lastError?: Error): NoNodeState => ({ discovered: false, nodes: 0, lastError });
const answered = (nodes: number): NoNodeState => ({ discovered: true, nodes, lastError: undefined });

describe('retry/no-node-hint: the fix, for each way of finding no node', () => {
  const table: Array<[string, 'primary' | 'replica', NoNodeSetup, NoNodeState, RegExp]> = [
    ['wrong service name', 'primary', setup('consul-health'), answered(0), /no passing instance of service "pg-main": check the service name \(option "service" or PGCONSUL_SERVICE.*register_service: true/],
    ['wrong Patroni scope', 'primary', setup('patroni'), answered(0), /no running Patroni member under "service\/pg-main\/": check options "patroni\.scope" and "patroni\.namespace"/],
    ['prepared query without healthy nodes', 'primary', setup('prepared-query'), answered(0), /prepared query "pg-geo" returned no healthy node/],
    ['static hosts all down', 'primary', setup('static'), answered(0), /no listed server answered its probe: check option "hosts" or PGCONSUL_HOSTS/],
    ['Consul unreachable', 'primary', setup('consul-health'), never(new DiscoveryError('GET /v1/health/service/pg-main to Consul at http://127.0.0.1:1 failed: ECONNREFUSED')), /not answered yet \(GET .* ECONNREFUSED\): check option "consul\.address" or CONSUL_HTTP_ADDR/],
    ['token without access', 'primary', setup('consul-health'), never(new DiscoveryError('Consul answered 403', { status: 403 })), /HTTP 403\): the ACL token \(option "consul\.token", CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE\) needs read access to service "pg-main" and the nodes/],
    ['token without KV access', 'primary', setup('patroni'), never(new DiscoveryError('403', { status: 403 })), /read access to key_prefix "service\/pg-main\/"/],
    ['basic auth missing', 'primary', setup('consul-health'), never(new DiscoveryError('401', { status: 401 })), /option "consul\.auth" or CONSUL_HTTP_AUTH/],
    ['unknown prepared query', 'primary', setup('prepared-query'), never(new DiscoveryError('404', { status: 404 })), /no prepared query "pg-geo" \(HTTP 404\): check option "preparedQuery\.name" or PGCONSUL_PREPARED_QUERY/],
    ['other Consul status', 'primary', setup('consul-health'), never(new DiscoveryError('500', { status: 500 })), /HTTP 500/],
    ['first request still in flight', 'primary', setup('consul-health'), never(), /^discovery has not answered yet$/],
    ['no primary tag', 'primary', setup('consul-health'), answered(3), /3 nodes are listed but none as a usable primary: a failover may be under way; otherwise check option "primaryTags" .*\(now primary, master\)/],
    ['no leader key', 'primary', setup('patroni'), answered(2), /Patroni names no leader/],
    ['static: nobody writable', 'primary', setup('static'), answered(1), /1 node is listed but none accepts writes/],
    ['no replica tag', 'replica', setup('consul-health'), answered(1), /no usable replica: check option "replicaTags" or PGCONSUL_REPLICA_TAGS \(now replica\), or use readFallback "primary"/],
    ['custom source', 'primary', setup('custom'), answered(0), /custom discovery source listed no node/],
    ['wrong service name points at the CLI', 'primary', setup('consul-health'), answered(0), /`npx pg-consul check` lists the services Consul has and close matches$/],
    ['no token configured', 'primary', setup('consul-health', { tokenConfigured: false }), never(new DiscoveryError('403', { status: 403 })), /HTTP 403\) and no ACL token is configured: set option "consul\.token", CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE to a token with read access to service "pg-main"/],
    ['token denied', 'primary', setup('consul-health', { tokenConfigured: true }), never(new DiscoveryError('403', { status: 403 })), /the ACL token \(option "consul\.token", CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE\) was denied; it needs read access to service "pg-main"/],
    ['tag mismatch lists the tags seen', 'primary', setup('consul-health'), { ...answered(2), tagsSeen: ['leader', 'standby'] }, /\(now primary, master; tags seen: leader, standby\)$/],
    ['replica tags: the tags seen', 'replica', setup('consul-health'), { ...answered(2), tagsSeen: [] }, /\(now replica; tags seen: \(none\)\), or use readFallback/],
    ['listed primary unreachable', 'primary', setup('consul-health'), { ...answered(1), tagsSeen: ['primary'], unreachable: [{ address: '10.0.0.1:5432', reason: 'ECONNREFUSED' }] }, /^1 node is listed but 10\.0\.0\.1:5432 \(ECONNREFUSED\) is unreachable: skipped until a probe gets an answer/],
    ['replicas unreachable', 'replica', setup('consul-health'), { ...answered(2), tagsSeen: ['replica'], unreachable: [{ address: 'a:1', reason: 'ETIMEDOUT' }, { address: 'b:1', reason: 'no answer within 1000 ms' }] }, /but a:1 \(ETIMEDOUT\), b:1 \(no answer within 1000 ms\) are unreachable/],
    ['listed primary read-only in PostgreSQL', 'primary', setup('consul-health'), { ...answered(2), tagsSeen: ['primary'], readOnlyPrimaries: ['10.0.0.1:5432'] }, /but 10\.0\.0\.1:5432, listed as primary, is read-only in PostgreSQL \(in recovery\): Consul's role lags behind a switchover .*`npx pg-consul check`/],
  ];
  for (const [title, intent, s, state, expected] of table) {
    it(title, () => assert.match(noNodeHint(intent, s, state), expected));
  }
});
