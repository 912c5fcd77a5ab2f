/**
 * Secrets never leave pg-consul through its observability surfaces: a Pool with a Consul ACL
 * token and a PostgreSQL password runs statements, a switchover, a failed authentication and
 * a Consul 403, while everything is captured — the `logger` at every level, the default sink
 * through the `debug` namespaces, every diagnostics channel, every pg-consul event payload and
 * every error a call rejected with, each serialized deeply (own non-enumerable properties,
 * stacks, causes, Maps and Sets) — and neither secret string appears anywhere.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { inspect } from 'node:util';
import createDebug from 'debug';
import pg from 'pg';
import { DISCOVERY_REQUEST_CHANNEL, FAILOVER_CHANNEL, Pool, QUERY_CHANNEL, RETRY_CHANNEL, TOPOLOGY_CHANNEL } from '../../lib/index.js';
import type { PoolEvents, PoolOptions } from '../../lib/index.js';
import { ConsulDouble } from '../../lib/testing/consul-double.js';
import { PgCluster } from '../../lib/testing/pg-cluster.js';
import { waitUntil } from '../../lib/testing/wait-until.js';
import { advertise } from '../support/advertise.js';

const SERVICE = 'secrets';
const PASSWORD = 'pw-SECRET-4f9c2a71';
const TOKEN = 'tok-SECRET-8d1e77b0';
const WRONG_PASSWORD = 'wrongpw-SECRET-31a9';
const WRONG_TOKEN = 'badtok-SECRET-55b2';
const SECRETS = [PASSWORD, TOKEN, WRONG_PASSWORD, WRONG_TOKEN];
const CHANNELS = [DISCOVERY_REQUEST_CHANNEL, TOPOLOGY_CHANNEL, FAILOVER_CHANNEL, RETRY_CHANNEL, QUERY_CHANNEL];
/** pg-consul's own events (pg.Pool's `connect`/`acquire`/`release`/`remove` hand out pg's client objects as pg does). */
const EVENTS: readonly (keyof PoolEvents)[] = ['topology', 'failover', 'retry', 'discoveryError', 'lag', 'unreachable', 'reachable', 'error'];

/** What a walk found: every string, and the paths at which it met one of pg's client objects (not walked into). */
interface Walk {
  readonly strings: string[];
  readonly pgClients: string[];
}

/**
 * Every string reachable from `value`: own properties (enumerable or not, symbols too),
 * Map/Set entries, error stacks and causes. A pg.Client holds the password as pg keeps it
 * (a non-enumerable property): the walk records where it met one instead of walking in.
 */
function deepStrings(value: unknown, walk: Walk = { strings: [], pgClients: [] }, path = '$', seen = new Set<unknown>(), depth = 0): Walk {
  const out = walk.strings;
  if (typeof value === 'string') out.push(value);
  else if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean' || typeof value === 'symbol') out.push(String(value));
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null || seen.has(value) || depth > 40) return walk;
  seen.add(value);
  if (value instanceof pg.Client) {
    walk.pgClients.push(path);
    return walk;
  }
  if (typeof value === 'function') return walk;
  if (value instanceof Map) for (const [k, v] of value) deepStrings([k, v], walk, `${path}.<entry>`, seen, depth + 1);
  if (value instanceof Set) for (const v of value) deepStrings(v, walk, `${path}.<item>`, seen, depth + 1);
  if (value instanceof Error) {
    out.push(String(value.stack), value.message, inspect(value, { depth: 0 }));
    deepStrings(value.cause, walk, `${path}.cause`, seen, depth + 1);
  }
  for (const key of Reflect.ownKeys(value)) {
    out.push(String(key));
    const descriptor = Object.getOwnPropertyDescriptor(value, key);
    let field: unknown;
    try {
      field = descriptor && 'value' in descriptor ? descriptor.value : (value as Record<PropertyKey, unknown>)[key];
    } catch {
      continue; // a throwing getter shows nothing
    }
    deepStrings(field, walk, `${path}.${String(key)}`, seen, depth + 1);
  }
  return walk;
}

describe('secrets never appear in logs, channels, events or errors (real PostgreSQL, Consul ACL double)', function () {
  this.timeout(120_000);
  let cluster: PgCluster;
  let consul: ConsulDouble;
  const captured: { what: string; value: unknown }[] = [];
  const pools: Pool[] = [];
  const listeners: [string, (m: unknown) => void][] = [];
  const originalDebugLog = createDebug.log;
  let previousDebug = '';

  before(async () => {
    [cluster, consul] = await Promise.all([
      PgCluster.start({ replicas: 2, appUser: { user: 'secrets_app', password: PASSWORD, database: 'secrets_db' } }),
      ConsulDouble.start({ aclToken: TOKEN }),
    ]);
    advertise(consul, cluster, SERVICE, cluster.primaryName());
    for (const name of CHANNELS) {
      const listener = (message: unknown): void => {
        captured.push({ what: `channel ${name}`, value: message });
      };
      diagnostics.subscribe(name, listener);
      listeners.push([name, listener]);
    }
    previousDebug = createDebug.disable();
    createDebug.enable('pg-consul:*');
    createDebug.log = function (this: createDebug.Debugger, ...args: unknown[]): void {
      captured.push({ what: `debug ${this.namespace}`, value: args });
    };
  });

  after(async () => {
    createDebug.log = originalDebugLog;
    createDebug.disable();
    if (previousDebug) createDebug.enable(previousDebug);
    for (const [name, listener] of listeners) diagnostics.unsubscribe(name, listener);
    await Promise.all(pools.splice(0).map((p) => (p.ending ? Promise.resolve() : p.end())));
    await consul?.stop();
    await cluster?.destroy();
  });

  function newPool(label: string, extra: PoolOptions & { token?: string; customLogger?: boolean } = {}): Pool {
    const { token = TOKEN, customLogger = true, ...rest } = extra;
    const pool = new Pool({
      service: SERVICE,
      consul: { host: '127.0.0.1', port: consul.port, token, waitSeconds: 5 },
      user: cluster.appUser.user,
      password: PASSWORD,
      database: cluster.appUser.database,
      max: 4,
      failoverTimeoutMillis: 30_000,
      discoveryMinIntervalMillis: 20,
      ...(customLogger ? { logger: (level, message, fields) => captured.push({ what: `logger ${label} ${level}`, value: { message, fields } }) } : {}),
      ...rest,
    });
    // `error` is pg.Pool's (err, client): the client is pg's own object, which holds the
    // connection parameters as pg keeps them; the error is what pg-consul is answerable for.
    for (const event of EVENTS) pool.on(event, (...args: unknown[]) => captured.push({ what: `event ${label} ${event}`, value: event === 'error' ? args[0] : args }));
    pools.push(pool);
    return pool;
  }

  async function rejection(what: string, promise: Promise<unknown>): Promise<unknown> {
    try {
      await promise;
    } catch (err) {
      captured.push({ what: `rejection ${what}`, value: err });
      return err;
    }
    assert.fail(`${what} should have failed`);
  }

  it('statements, a failing statement, a switchover, a failed authentication and a Consul 403 leak neither secret', async () => {
    // Statements (primary and replica), a failing statement, with the custom logger and with the default sink.
    const pool = newPool('main');
    const quiet = newPool('default-sink', { customLogger: false });
    await pool.query('SELECT 1');
    await pool.replica.query('SELECT 2');
    await quiet.query('SELECT 3');
    await rejection('bad SQL', pool.query('SELECT * FROM no_such_table'));

    // A switchover: topology, retry and failover payloads.
    const oldPrimary = cluster.primaryName();
    const newPrimary = cluster.nodes.find((n) => n.name !== oldPrimary)!.name;
    await cluster.switchover(newPrimary);
    const write = pool.query('SELECT 1');
    await waitUntil('a retry event', 20_000, async () => captured.some((c) => c.what === 'event main retry'));
    advertise(consul, cluster, SERVICE, newPrimary, [oldPrimary]);
    await write;
    await waitUntil('the failover event', 10_000, async () => captured.some((c) => c.what === 'event main failover'));

    // A failed authentication (wrong PostgreSQL password).
    const badAuth = newPool('bad-password', { password: WRONG_PASSWORD, failoverTimeoutMillis: 3_000 });
    const authError = await rejection('wrong password', badAuth.query('SELECT 1'));
    assert.match(String((authError as Error).message), /password authentication failed|authentication/i, String(authError));

    // A Consul 403 (wrong ACL token).
    const badToken = newPool('bad-token', { token: WRONG_TOKEN, failoverTimeoutMillis: 2_000 });
    await rejection('wrong token', badToken.query('SELECT 1'));
    await waitUntil('a discoveryError event', 10_000, async () => captured.some((c) => c.what === 'event bad-token discoveryError'));
    const forbidden = captured.filter((c) => c.what === `channel ${DISCOVERY_REQUEST_CHANNEL}` && (c.value as { status?: number }).status === 403);
    assert.ok(forbidden.length > 0, 'the discovery channel saw the 403');
    await Promise.all(pools.map((p) => p.end()));

    // Everything was seen (the capture is not empty where it matters)…
    const kinds = new Set(captured.map((c) => c.what.split(' ').slice(0, 2).join(' ')));
    for (const kind of ['logger main', 'logger bad-password', 'logger bad-token', 'event main', 'event bad-token', 'rejection wrong', 'rejection bad']) {
      assert.ok(kinds.has(kind), `captured some ${kind}: ${[...kinds].join(', ')}`);
    }
    for (const name of CHANNELS) assert.ok(kinds.has(`channel ${name}`), `captured channel ${name}`);
    assert.ok([...kinds].some((k) => k.startsWith('debug pg-consul:')), 'the default sink wrote to the debug namespaces');
    for (const level of ['debug', 'info', 'warn']) assert.ok(captured.some((c) => c.what.endsWith(` ${level}`)), `logger level ${level}`);
    for (const event of ['topology', 'retry', 'failover', 'discoveryError']) assert.ok(captured.some((c) => c.what === `event main ${event}` || c.what === `event bad-token ${event}`), `event ${event}`);

    // …and no secret is in any of it.
    let total = 0;
    const pgClientsAt: string[] = [];
    for (const { what, value } of captured) {
      const walk = deepStrings(value);
      for (const at of walk.pgClients) pgClientsAt.push(`${what} ${at}`);
      const text = walk.strings.join('\n');
      total += text.length;
      for (const secret of SECRETS) assert.ok(!text.includes(secret), `${what} contains a secret: ${text.slice(Math.max(0, text.indexOf(secret) - 200), text.indexOf(secret) + 50)}`);
    }
    assert.ok(total > 10_000, `serialized ${total} characters from ${captured.length} captures`);
    // The one place a pg.Client is reachable: pg-pool's idle-error listener sets `err.client`
    // on the error it emits (pg's behaviour, forwarded as the drop-in's `error` event).
    console.log(`      [secrets] ${captured.length} captures, ${total} characters searched; pg clients met at: ${pgClientsAt.join('; ') || 'none'}`);
    for (const at of pgClientsAt) assert.match(at, /^event \S+ error \$\.client$/, `a pg client only on an idle error: ${pgClientsAt.join('; ')}`);
  });
});
