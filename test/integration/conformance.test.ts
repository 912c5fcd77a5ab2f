/**
 * pg-pool conformance: each behaviour pg-pool's own test suite checks (node-postgres,
 * packages/pg-pool/test), written here against a real PostgreSQL and run twice — on a plain
 * `pg.Pool` (the reference) and on pg-consul's `Pool` following a one-node, stable topology
 * — so that a divergence shows as one failing test of a pair.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { FailoverTimeoutError, OutcomeUnknownError, Pool } from '../../lib/index.js';
import { ConsulDouble } from '../../lib/testing/consul-double.js';
import { PgCluster } from '../../lib/testing/pg-cluster.js';
import { advertise } from '../support/advertise.js';

const SERVICE = 'conformance';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let cluster: PgCluster;
let consul: ConsulDouble;
const open: pg.Pool[] = [];

/** How each flavour builds a pool from pg.Pool options. */
const flavours: Array<{ name: string; make: (options?: pg.PoolConfig) => pg.Pool }> = [
  {
    name: 'pg.Pool',
    make: (options = {}) => {
      const node = cluster.node(cluster.primaryName());
      const pool = new pg.Pool({ host: node.host, port: node.port, ...cluster.appUser, ...options });
      open.push(pool);
      return pool;
    },
  },
  {
    name: 'pg-consul',
    make: (options = {}) => {
      const pool = new Pool({
        service: SERVICE,
        consul: { host: '127.0.0.1', port: consul.port, waitSeconds: 5 },
        ...cluster.appUser,
        discoveryMinIntervalMillis: 20,
        ...(options as object),
      });
      open.push(pool);
      return pool;
    },
  },
];

/** Defines the same test for both flavours. */
function pair(title: string, body: (make: (options?: pg.PoolConfig) => pg.Pool, flavour: string) => Promise<void>): void {
  for (const f of flavours) it(`[${f.name}] ${title}`, () => body(f.make, f.name));
}

async function endAll(): Promise<void> {
  await Promise.all(open.splice(0).map((p) => (p.ending ? undefined : p.end())));
}

/** Host and port of the one node. */
function nodeAddress(): { host: string; port: number } {
  const node = cluster.node(cluster.primaryName());
  return { host: node.host, port: node.port };
}

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** A pool whose one connection was made (so `connect` and the counters start known). */
async function warm(pool: pg.Pool): Promise<void> {
  const c = await pool.connect();
  c.release();
}

describe('pg-pool conformance (integration: real PostgreSQL; pg.Pool vs pg-consul on one node)', function () {
  this.timeout(60_000);

  before(async () => {
    [cluster, consul] = await Promise.all([PgCluster.start({ replicas: 0 }), ConsulDouble.start()]);
    advertise(consul, cluster, SERVICE, cluster.primaryName());
  });
  afterEach(endAll);
  after(async () => {
    await endAll();
    await consul?.stop();
    await cluster?.destroy();
  });

  describe('identity', () => {
    pair('is an instance of pg.Pool and an EventEmitter', async (make) => {
      const pool = make();
      assert.ok(pool instanceof pg.Pool);
      assert.equal(typeof pool.on, 'function');
      assert.equal(pool.ending, false);
      assert.equal(pool.ended, false);
    });
    pair('options report pg-pool defaults (max 10, idleTimeoutMillis 10000, maxUses Infinity, maxLifetimeSeconds 0)', async (make) => {
      const pool = make();
      assert.equal(pool.options.max, 10);
      assert.equal(pool.options.idleTimeoutMillis, 10000);
      assert.equal(pool.options.maxUses, Infinity);
      assert.equal(pool.options.maxLifetimeSeconds, 0);
      assert.equal(pool.options.allowExitOnIdle, false);
    });
  });

  describe('counts', () => {
    pair('totalCount / idleCount / waitingCount follow checkouts and releases', async (make) => {
      const pool = make({ max: 1 });
      assert.deepEqual([pool.totalCount, pool.idleCount, pool.waitingCount], [0, 0, 0]);
      const a = await pool.connect();
      assert.deepEqual([pool.totalCount, pool.idleCount, pool.waitingCount], [1, 0, 0]);
      const queued = pool.connect();
      await sleep(20);
      assert.equal(pool.waitingCount, 1);
      a.release();
      const b = await queued;
      assert.deepEqual([pool.totalCount, pool.idleCount, pool.waitingCount], [1, 0, 0]);
      b.release();
      assert.deepEqual([pool.totalCount, pool.idleCount, pool.waitingCount], [1, 1, 0]);
    });
    pair('a statement on a new pool counts in totalCount at once (a client being opened), not in waitingCount', async (make) => {
      const pool = make({ idleTimeoutMillis: 1 });
      const query = pool.query('SELECT 1 AS n');
      assert.deepEqual([pool.totalCount, pool.idleCount, pool.waitingCount], [1, 0, 0]);
      assert.equal((await query).rows[0].n, 1);
      await sleep(20);
      assert.deepEqual([pool.totalCount, pool.idleCount], [0, 0], 'removed by idleTimeoutMillis');
      const again = pool.query('SELECT 2 AS n');
      assert.equal(pool.totalCount, 1);
      assert.equal((await again).rows[0].n, 2);
    });
    pair('30 statements on a new pool with max 9: totalCount 9 and waitingCount 21 at once', async (make) => {
      const pool = make({ max: 9 });
      const queries = Array.from({ length: 30 }, () => pool.query('SELECT 1'));
      assert.deepEqual([pool.totalCount, pool.waitingCount], [9, 21]);
      await Promise.all(queries);
      assert.deepEqual([pool.totalCount, pool.idleCount, pool.waitingCount], [9, 9, 0]);
    });
    pair("pg-pool's _clients lists the clients (checked out, idle); ending one fails its pool.query with an error", async (make) => {
      const pool = make({ max: 1 }) as pg.Pool & { _clients: pg.Client[] };
      pool.on('error', () => undefined);
      const c = await pool.connect();
      assert.deepEqual(pool._clients, [c]);
      c.release();
      assert.deepEqual(pool._clients, [c], 'idle clients are listed too');
      const failed = new Promise<Error | undefined>((res) => pool.query('SELECT pg_sleep(5)', [], (err) => res(err)));
      await sleep(200);
      void pool._clients[0]!.end();
      assert.ok((await failed) instanceof Error);
      await sleep(20);
      assert.deepEqual([pool._clients.length, pool.totalCount], [0, 0]);
    });
    pair('a client released with an error is removed', async (make) => {
      const pool = make();
      const c = await pool.connect();
      const removed = new Promise((r) => pool.once('remove', r));
      c.release(new Error('broken'));
      await removed;
      assert.equal(pool.totalCount, 0);
    });
    pair('releasing twice throws pg-pool\'s error', async (make) => {
      const pool = make();
      const c = await pool.connect();
      c.release();
      assert.throws(() => c.release(), { message: 'Release called on client which has already been released to the pool.' });
    });
  });

  describe('events', () => {
    pair('connect, acquire, release on the first query; acquire, release on the next; remove on end', async (make) => {
      const pool = make();
      const seen: string[] = [];
      for (const e of ['connect', 'acquire', 'release', 'remove'] as const) pool.on(e, () => seen.push(e));
      await pool.query('SELECT 1');
      await pool.query('SELECT 1');
      assert.deepEqual(seen, ['connect', 'acquire', 'release', 'acquire', 'release']);
      const removed = new Promise((r) => pool.once('remove', r));
      await pool.end();
      await removed;
      assert.deepEqual(seen.slice(5), ['remove']);
    });
    pair('acquire and connect receive the client; release receives (err, client)', async (make) => {
      const pool = make();
      let connected: unknown;
      let released: unknown[] = [];
      pool.on('connect', (c) => (connected = c));
      pool.on('release', (...args: unknown[]) => (released = args));
      const client = await pool.connect();
      assert.equal(connected, client);
      client.release();
      assert.deepEqual(released, [undefined, client]);
    });
    pair('an idle client whose backend is terminated emits error on the pool (57P01) and is removed', async (make) => {
      const pool = make();
      const client = await pool.connect();
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      client.release();
      const error = new Promise<Error & { code?: string }>((r) => pool.once('error', r));
      const admin = new pg.Client({ ...cluster.node(cluster.primaryName()), ...cluster.appUser });
      await admin.connect();
      try {
        await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      } finally {
        await admin.end();
      }
      const err = await error;
      assert.equal(err.code, '57P01');
      await sleep(50);
      assert.equal(pool.totalCount, 0);
    });
  });

  describe('callback and promise forms', () => {
    pair('query(text, cb) and query(text, values, cb) deliver results', async (make) => {
      const pool = make();
      const a = await new Promise<pg.QueryResult>((res, rej) => pool.query('SELECT 1 AS n', (err, r) => (err ? rej(err) : res(r))));
      const b = await new Promise<pg.QueryResult>((res, rej) => pool.query('SELECT $1::int AS n', [2], (err, r) => (err ? rej(err) : res(r))));
      assert.deepEqual([a.rows[0].n, b.rows[0].n], [1, 2]);
    });
    pair('query(text, cb) delivers a server error to the callback with its code', async (make) => {
      const pool = make();
      const err = await new Promise<Error & { code?: string }>((res) => pool.query('SELEC 1', (e) => res(e)));
      assert.equal(err.code, '42601');
    });
    pair('query() rejects with the server error unchanged (code, message)', async (make) => {
      const pool = make();
      await assert.rejects(pool.query('SELECT 1/0'), (e: Error & { code?: string }) => e.code === '22012' && e.message === 'division by zero');
    });
    pair('connect(cb) passes (undefined, client, done)', async (make) => {
      const pool = make();
      await new Promise<void>((res, rej) =>
        pool.connect((err, client, done) => {
          if (err || !client) return rej(err);
          client.query('SELECT 1', (qerr) => {
            done();
            if (qerr) rej(qerr);
            else res();
          });
        }),
      );
      assert.equal(pool.idleCount, 1);
    });
    pair('a function as the first argument of query is refused with pg-pool\'s message', async (make) => {
      const pool = make();
      const err = await new Promise<Error>((res) => (pool.query as unknown as (cb: (e: Error) => void) => void)((e) => res(e)));
      assert.equal(err.message, 'Passing a function as the first parameter to pool.query is not supported');
    });
  });

  describe('end()', () => {
    pair('in-flight work finishes, then end() resolves; ending/ended flags', async (make) => {
      const pool = make();
      await warm(pool);
      const inFlight = pool.query('SELECT pg_sleep(0.2), 1 AS n');
      await sleep(20);
      const ended = pool.end();
      assert.equal(pool.ending, true);
      assert.equal((await inFlight).rows[0].n, 1);
      await ended;
      assert.equal(pool.ended, true);
      assert.equal(pool.totalCount, 0);
    });
    pair('a checked-out client keeps end() pending until it is released', async (make) => {
      const pool = make();
      const c = await pool.connect();
      let done = false;
      const ended = pool.end().then(() => (done = true));
      await sleep(50);
      assert.equal(done, false);
      c.release();
      await ended;
      assert.equal(done, true);
    });
    pair('statements issued on a new pool, then end() at once: every one completes before end() resolves', async (make) => {
      const pool = make();
      const first = pool.query('SELECT $1::text AS name', ['brianc']);
      const more = Array.from({ length: 5 }, (_, i) => pool.query('SELECT $1::int AS n', [i]));
      const ended = pool.end();
      assert.equal(pool.ending, true);
      await assert.rejects(pool.query('SELECT 1'), { message: 'Cannot use a pool after calling end on the pool' });
      assert.equal((await first).rows[0].name, 'brianc');
      assert.deepEqual((await Promise.all(more)).map((r) => r.rows[0].n), [0, 1, 2, 3, 4]);
      await ended;
      assert.equal(pool.ended, true);
    });
    pair('work after end() rejects with pg-pool\'s message (promise and callback)', async (make) => {
      const pool = make();
      await pool.end();
      await assert.rejects(pool.query('SELECT 1'), { message: 'Cannot use a pool after calling end on the pool' });
      await assert.rejects(pool.connect(), { message: 'Cannot use a pool after calling end on the pool' });
      const err = await new Promise<Error>((res) => pool.query('SELECT 1', (e) => res(e)));
      assert.equal(err.message, 'Cannot use a pool after calling end on the pool');
    });
    pair('end() twice rejects with "Called end on pool more than once"; end(cb) calls back', async (make) => {
      const pool = make();
      await new Promise<void>((res) => pool.end(() => res()));
      await assert.rejects(pool.end(), { message: 'Called end on pool more than once' });
    });
  });

  describe('timeouts and eviction', () => {
    pair('connectionTimeoutMillis: a checkout of a full pool fails with "timeout exceeded when trying to connect"', async (make) => {
      const pool = make({ max: 1, connectionTimeoutMillis: 200 });
      const held = await pool.connect();
      const t0 = Date.now();
      await assert.rejects(pool.connect(), { message: 'timeout exceeded when trying to connect' });
      const took = Date.now() - t0;
      assert.ok(took >= 150 && took < 2000, `timed out after ${took} ms`);
      assert.equal(pool.waitingCount, 0);
      held.release();
    });
    pair('connectionTimeoutMillis: pool.query(text, cb) gets the timeout error in its callback', async (make) => {
      const pool = make({ max: 1, connectionTimeoutMillis: 100 });
      const held = await pool.connect();
      const err = await new Promise<Error>((res) => pool.query('SELECT 1', (e) => res(e)));
      assert.equal(err.message, 'timeout exceeded when trying to connect');
      held.release();
    });
    pair('idleTimeoutMillis: an idle client is removed after the timeout', async (make) => {
      const pool = make({ idleTimeoutMillis: 50 });
      const removed = new Promise((r) => pool.once('remove', r));
      await pool.query('SELECT 1');
      assert.equal(pool.idleCount, 1);
      await removed;
      assert.deepEqual([pool.totalCount, pool.idleCount], [0, 0]);
    });
    pair('maxUses: a client is replaced after maxUses checkouts', async (make) => {
      const pool = make({ maxUses: 2 });
      let connects = 0;
      pool.on('connect', () => connects++);
      for (let i = 0; i < 5; i++) await pool.query('SELECT 1');
      assert.equal(connects, 3);
    });
    pair('maxLifetimeSeconds: a checked-out client past its lifetime counts in expiredCount and is removed on release', async (make) => {
      const pool = make({ maxLifetimeSeconds: 1 });
      const c = await pool.connect();
      assert.equal(pool.expiredCount, 0);
      await sleep(1200);
      assert.equal(pool.expiredCount, 1);
      const removed = new Promise((r) => pool.once('remove', r));
      c.release();
      await removed;
      assert.deepEqual([pool.totalCount, pool.expiredCount], [0, 0]);
    });
    pair('maxLifetimeSeconds: an idle client past its lifetime is removed', async (make) => {
      const pool = make({ maxLifetimeSeconds: 1 });
      await pool.query('SELECT 1');
      const removed = new Promise((r) => pool.once('remove', r));
      await removed;
      assert.equal(pool.totalCount, 0);
    });
  });

  describe('lifecycle options', () => {
    pair('verify is called once per new client; its error fails the checkout', async (make) => {
      let calls = 0;
      const ok = make({ verify: (_c: pg.PoolClient, cb: (e?: Error) => void) => (calls++, cb()) } as pg.PoolConfig);
      await ok.query('SELECT 1');
      await ok.query('SELECT 1');
      assert.equal(calls, 1);
      const bad = make({ verify: (_c: pg.PoolClient, cb: (e?: Error) => void) => cb(new Error('verify says no')) } as pg.PoolConfig);
      await assert.rejects(bad.connect(), { message: 'verify says no' });
    });
    pair('onConnect runs for each new client before it is handed out', async (make) => {
      const seen: unknown[] = [];
      const pool = make({ onConnect: async (c: pg.ClientBase) => { seen.push(c); await c.query('SET application_name = \'hooked\''); } } as pg.PoolConfig);
      const { rows } = await pool.query<{ a: string }>('SHOW application_name');
      assert.equal(rows[0]!.a ?? (rows[0] as Record<string, string>).application_name, 'hooked');
      assert.equal(seen.length, 1);
    });
    pair('an onConnect error fails the checkout with that error', async (make) => {
      const pool = make({ onConnect: async () => { throw new Error('hook says no'); } } as pg.PoolConfig);
      await assert.rejects(pool.query('SELECT 1'), { message: 'hook says no' });
      assert.equal(pool.totalCount, 0);
    });
    pair('the Client option: connections are instances of the given Client class', async (make) => {
      class MyClient extends pg.Client {}
      const pool = make({ Client: MyClient } as pg.PoolConfig);
      const c = await pool.connect();
      try {
        assert.ok(c instanceof MyClient);
      } finally {
        c.release();
      }
    });
    pair('a codeless error from the Client\'s connect fails the checkout at once with that very error', async (make) => {
      const refusal = new Error('the custom Client refuses to connect');
      class RefusingClient extends pg.Client {}
      // pg-pool calls connect(callback); the promise form is there for completeness.
      (RefusingClient.prototype as unknown as { connect: (cb?: (err: Error) => void) => Promise<void> | undefined }).connect = function (cb) {
        if (cb === undefined) return Promise.reject(refusal);
        setImmediate(() => cb(refusal));
        return undefined;
      };
      const pool = make({ Client: RefusingClient } as unknown as pg.PoolConfig);
      const started = Date.now();
      await assert.rejects(pool.connect(), (e) => e === refusal);
      await assert.rejects(pool.query('SELECT 1'), (e) => e === refusal);
      assert.ok(Date.now() - started < 1_000, `failed at once (${Date.now() - started} ms), not retried`);
      assert.equal(pool.totalCount, 0);
    });
    pair('the log option receives pg-pool\'s log lines', async (make) => {
      const lines: unknown[] = [];
      const pool = make({ log: (...args: unknown[]) => lines.push(args[0]) } as pg.PoolConfig);
      await pool.query('SELECT 1');
      assert.ok(lines.includes('connecting new client'), JSON.stringify(lines.slice(0, 5)));
    });
    pair('allowExitOnIdle: a process with an idle, un-ended pool exits by itself', async (_make, flavour) => {
      const node = cluster.node(cluster.primaryName());
      const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../support/allow-exit-child.ts', import.meta.url))], {
        env: { ...process.env, FLAVOUR: flavour, PGHOST: node.host, PGPORT: String(node.port), PGUSER: cluster.appUser.user, PGPASSWORD: cluster.appUser.password, PGDATABASE: cluster.appUser.database, CONSUL_PORT: String(consul.port), SERVICE },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null | 'timeout'>((res) => {
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          res('timeout');
        }, 15_000);
        child.on('exit', (c) => {
          clearTimeout(t);
          res(c);
        });
      });
      assert.equal(code, 0, out);
      assert.match(out, /queried/);
    });
  });

  describe('error identity', () => {
    pair('a terminated checked-out connection fails its next query with 57P01 (code, message kept)', async (make) => {
      const pool = make();
      const client = await pool.connect();
      // The server sends 57P01 and then closes the socket; pg emits a second 'error'
      // ("Connection terminated unexpectedly") if the close arrives before release().
      // A checked-out client has no pool listener, so keep ours for the whole test.
      const clientErrors: Array<Error & { code?: string }> = [];
      const clientError = new Promise<Error & { code?: string }>((r) => {
        client.on('error', (e: Error & { code?: string }) => {
          clientErrors.push(e);
          r(clientErrors[0]!);
        });
      });
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const other = await pool.connect();
      await other.query('SELECT pg_terminate_backend($1)', [pid]);
      other.release();
      const err = await clientError;
      assert.equal(err.code, '57P01');
      assert.match(err.message, /terminating connection due to administrator command/);
      await assert.rejects(client.query('SELECT 1'));
      client.release(err);
      const viaPool = await pool.query('SELECT 1 AS n');
      assert.equal(viaPool.rows[0].n, 1);
    });
  });

  describe('error identity through pool.query (failover semantics on top, pg\'s identity kept)', () => {
    pair('a statement whose backend is terminated mid-flight fails with 57P01, PostgreSQL\'s message and severity', async (make, flavour) => {
      const pool = make();
      const running = pool.query("SELECT pg_sleep(30), 'conformance-victim' AS tag");
      const failed = running.then(
        () => assert.fail('the statement finished'),
        (e: Error & { code?: string; severity?: string; cause?: unknown }) => e,
      );
      const other = new pg.Client({ ...nodeAddress(), ...cluster.appUser });
      await other.connect();
      try {
        for (let i = 0; i < 100; i++) {
          const r = await other.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE query LIKE '%conformance-victim%' AND pid <> pg_backend_pid()");
          if (r.rows.length > 0) {
            await other.query('SELECT pg_terminate_backend($1)', [r.rows[0]!.pid]);
            break;
          }
          await sleep(20);
        }
      } finally {
        await other.end();
      }
      const err = await failed;
      assert.equal(err.code, '57P01');
      assert.match(err.message, /terminating connection due to administrator command/);
      assert.equal(err.severity, 'FATAL');
      if (flavour === 'pg-consul') {
        // It may have run (a write would have committed): typed, never replayed, pg's error as cause.
        assert.ok(err instanceof OutcomeUnknownError, String(err));
        assert.equal(err.pgConsulCode, 'PGCONSUL_OUTCOME_UNKNOWN');
        assert.equal((err.cause as { code?: string }).code, '57P01');
      }
    });

    pair('a node refusing connections fails with ECONNREFUSED (pg-consul: after failoverTimeoutMillis of retries)', async (_make, flavour) => {
      const dead = await closedPort();
      const service = `refusing-${dead}`;
      if (flavour === 'pg-consul') {
        consul.registerService({ id: `${service}/n1`, name: service, address: '127.0.0.1', port: dead, tags: ['master', 'primary'], node: 'n1', nodeAddress: '127.0.0.1' });
      }
      const build = (): pg.Pool => {
        const pool =
          flavour === 'pg.Pool'
            ? new pg.Pool({ host: '127.0.0.1', port: dead, ...cluster.appUser })
            : new Pool({
                service,
                consul: { host: '127.0.0.1', port: consul.port, waitSeconds: 5 },
                ...cluster.appUser,
                discoveryMinIntervalMillis: 20,
                failoverTimeoutMillis: 300,
              });
        open.push(pool);
        return pool;
      };
      const first = build();
      const err = await first.query('SELECT 1').then(
        () => assert.fail('connected to a closed port'),
        (e: Error & { code?: string }) => e,
      );
      assert.equal(err.code, 'ECONNREFUSED');
      assert.match(err.message, /ECONNREFUSED 127\.0\.0\.1:/);
      if (flavour === 'pg-consul') {
        assert.ok(err instanceof FailoverTimeoutError, String(err));
        assert.equal(err.pgConsulCode, 'PGCONSUL_FAILOVER_TIMEOUT');
        assert.equal(err.outcome, 'not-executed');
        assert.match(err.pgConsulMessage, /gave up after \d+ attempts? in \d+ ms/);
        // A difference (docs/drop-in.md): the node is now skipped as unreachable until a
        // probe gets an answer, and the next statement says so instead of connecting again.
        await assert.rejects(first.query('SELECT 1'), (e: Error & { pgConsulCode?: string }) => {
          assert.equal(e.pgConsulCode, 'PGCONSUL_NO_PRIMARY');
          assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${dead} \\(ECONNREFUSED\\) is unreachable`));
          return true;
        });
      }
      const cb = await new Promise<Error & { code?: string }>((resolve) => {
        build().query('SELECT 1', (e: Error & { code?: string }) => resolve(e));
      });
      assert.equal(cb.code, 'ECONNREFUSED', 'the callback form gets the same error');
    });
  });

  describe('pg-consul beyond pg-pool (documented in docs/drop-in.md)', () => {
    it('[pg-consul] end() lets checkouts queued before it finish (pg-pool leaves them pending for ever)', async () => {
      const pool = flavours[1]!.make({ max: 1 });
      const held = await pool.connect();
      const queued = pool.query('SELECT 2 AS n');
      await sleep(20);
      assert.equal(pool.waitingCount, 1);
      const ended = pool.end();
      await assert.rejects(pool.query('SELECT 3'), { message: 'Cannot use a pool after calling end on the pool' });
      held.release();
      assert.equal((await queued).rows[0].n, 2);
      await ended;
      assert.equal(pool.ended, true);
    });
  });
});
