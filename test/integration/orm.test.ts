/**
 * ORMs and libraries that take a pg.Pool, handed pg-consul's Pool unchanged, each through a
 * planned switchover in the middle of its work: Drizzle (drizzle-orm/node-postgres), Kysely
 * (PostgresDialect), connect-pg-simple, pg-boss through its `db` adapter (pgBossDb), and
 * Prisma through @prisma/adapter-pg (its client generated before the test: `prisma generate`
 * needs no engine binary, but the CLI insists one exists, hence PRISMA_SCHEMA_ENGINE_BINARY
 * pointing at a dummy — it is only used by migrations, which the test does not run).
 * Every test proves its statements went through pg-consul's Pool (its `acquire` events) and
 * counts errors across the switchover (expected: none).
 */
import assert from 'node:assert/strict';
import { drizzle } from 'drizzle-orm/node-postgres';
import { sql } from 'drizzle-orm';
import { Kysely, PostgresDialect } from 'kysely';
import session from 'express-session';
import connectPgSimple from 'connect-pg-simple';
import PgBoss from 'pg-boss';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { PrismaPg } from '@prisma/adapter-pg';
import { OutcomeUnknownError, pgBossDb } from '../../lib/index.js';
import type { Pool } from '../../lib/index.js';
import { useClusterFixture } from '../support/cluster-fixture.js';

let fixture: ReturnType<typeof useClusterFixture>;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The errors a switchover may legitimately cause: a write in flight at the instant the old
 * primary shut down has an unknown outcome and is never retried. Through `pool.query` it is
 * an OutcomeUnknownError; on a checked-out client (Kysely, Prisma's transactions) it is
 * pg's own error, unchanged as with pg.Pool: 57P01/57P02, or 'Connection terminated
 * unexpectedly'. At most one per run, as the loop runs one step at a time.
 */
function unexpected(errors: unknown[]): unknown[] {
  // Prisma wraps it (PrismaClientKnownRequestError, P2039 for a 57P01 as with pg.Pool) with
  // the adapter's error in meta.driverAdapterError, whose cause has pg's code; Drizzle wraps
  // it (DrizzleQueryError) as its cause.
  const isUnknown = (e: unknown): boolean => {
    const x = e as { code?: unknown; cause?: unknown; message?: unknown; meta?: { driverAdapterError?: unknown } } | null;
    return (
      e instanceof OutcomeUnknownError ||
      (x as { pgConsulCode?: unknown } | null)?.pgConsulCode === 'PGCONSUL_OUTCOME_UNKNOWN' ||
      x?.code === '57P01' ||
      x?.code === '57P02' ||
      (typeof x?.message === 'string' && x.message.includes('Connection terminated unexpectedly')) ||
      (x?.cause !== undefined && isUnknown(x.cause)) ||
      (x?.meta?.driverAdapterError !== undefined && isUnknown(x.meta.driverAdapterError))
    );
  };
  const inFlight = errors.filter(isUnknown);
  assert.ok(inFlight.length <= 1, `${inFlight.length} statements in flight at the switchover`);
  return errors.filter((e) => !isUnknown(e));
}

/**
 * Runs `step` in a loop while the cluster switches over to another node (Consul updated once
 * the new primary is up), and for a while after. Resolves with the steps run and failed.
 */
async function acrossSwitchover(step: (i: number) => Promise<void>): Promise<{ ok: number; errors: unknown[]; primaries: string[] }> {
  const errors: unknown[] = [];
  let ok = 0;
  let stop = false;
  const loop = (async () => {
    for (let i = 0; !stop; i++) {
      try {
        await step(i);
        ok++;
      } catch (err) {
        errors.push(err);
      }
      await sleep(5);
    }
  })();
  const from = fixture.cluster.primaryName();
  const to = fixture.cluster.nodes.find((n) => n.name !== from && fixture.cluster.isRunning(n.name))!.name;
  await sleep(300);
  await fixture.cluster.switchover(to, { rejoinOld: true });
  fixture.advertise(to);
  await sleep(700);
  stop = true;
  await loop;
  return { ok, errors, primaries: [from, to] };
}

function acquires(pool: Pool): () => number {
  let n = 0;
  pool.on('acquire', () => n++);
  return () => n;
}

describe('ORMs on pg-consul\'s Pool across a switchover (integration: real PostgreSQL + Consul double)', function () {
  this.timeout(120_000);
  fixture = useClusterFixture('orm');

  it('Drizzle (drizzle-orm/node-postgres): inserts and selects: no error (a write in flight at the stop may end OutcomeUnknownError)', async () => {
    const pool = fixture.newPool();
    const count = acquires(pool);
    const db = drizzle(pool);
    await db.execute(sql`CREATE TABLE IF NOT EXISTS orm_drizzle (id serial PRIMARY KEY, v int NOT NULL)`);
    const run = await acrossSwitchover(async (i) => {
      await db.execute(sql`INSERT INTO orm_drizzle (v) VALUES (${i})`);
      await db.execute(sql`SELECT count(*) FROM orm_drizzle`);
    });
    assert.deepEqual(unexpected(run.errors), []);
    assert.ok(run.ok > 10, `${run.ok} steps`);
    assert.ok(count() >= run.ok * 2, `statements went through pg-consul (${count()} acquires)`);
    assert.equal(pool.topology.primary?.port, fixture.portOf(run.primaries[1]!));
  });

  it('Kysely (PostgresDialect): inserts and selects: no error (a write in flight at the stop may end OutcomeUnknownError)', async () => {
    const pool = fixture.newPool();
    const count = acquires(pool);
    const db = new Kysely<{ orm_kysely: { id: number; v: number } }>({ dialect: new PostgresDialect({ pool }) });
    await db.schema.createTable('orm_kysely').ifNotExists().addColumn('id', 'serial', (c) => c.primaryKey()).addColumn('v', 'integer', (c) => c.notNull()).execute();
    const run = await acrossSwitchover(async (i) => {
      await db.insertInto('orm_kysely').values({ v: i } as never).execute();
      await db.selectFrom('orm_kysely').select(db.fn.countAll().as('n')).executeTakeFirstOrThrow();
    });
    assert.deepEqual(unexpected(run.errors), []);
    assert.ok(run.ok > 10, `${run.ok} steps`);
    assert.ok(count() >= run.ok * 2, `statements went through pg-consul (${count()} acquires)`);
    await db.destroy();
  });

  it('connect-pg-simple: session set/get: no error (a write in flight at the stop may end OutcomeUnknownError)', async () => {
    const pool = fixture.newPool();
    const count = acquires(pool);
    const PgStore = connectPgSimple(session);
    const store = new PgStore({ pool, createTableIfMissing: true, pruneSessionInterval: false });
    const set = (sid: string, data: session.SessionData): Promise<void> => new Promise((res, rej) => store.set(sid, data, (err?: unknown) => (err ? rej(err) : res())));
    const get = (sid: string): Promise<session.SessionData | null | undefined> =>
      new Promise((res, rej) => store.get(sid, (err: unknown, s?: session.SessionData | null) => (err ? rej(err) : res(s))));
    const run = await acrossSwitchover(async (i) => {
      const data = { cookie: { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000) }, n: i } as unknown as session.SessionData;
      await set(`s${i % 20}`, data);
      const back = (await get(`s${i % 20}`)) as unknown as { n: number };
      assert.equal(back.n, i);
    });
    assert.deepEqual(unexpected(run.errors), []);
    assert.ok(run.ok > 10, `${run.ok} steps`);
    assert.ok(count() >= run.ok * 2, `statements went through pg-consul (${count()} acquires)`);
    store.close();
  });

  it('pg-boss (db: pgBossDb(pool)): send and fetch/complete jobs: no error (a write in flight at the stop may end OutcomeUnknownError)', async () => {
    const pool = fixture.newPool();
    const count = acquires(pool);
    const boss = new PgBoss({ db: pgBossDb(pool), supervise: false, schedule: false, migrate: true });
    boss.on('error', (err) => assert.fail(err));
    await boss.start();
    await boss.createQueue('orm-q');
    const before = count();
    const run = await acrossSwitchover(async (i) => {
      const id = await boss.send('orm-q', { i });
      assert.ok(id);
      const [job] = await boss.fetch('orm-q');
      if (job) await boss.complete('orm-q', job.id);
    });
    assert.deepEqual(unexpected(run.errors), []);
    assert.ok(run.ok > 10, `${run.ok} steps`);
    assert.ok(count() - before >= run.ok * 2, `statements went through pg-consul (${count() - before} acquires)`);
    await boss.stop({ graceful: false, wait: true });
  });

  it('Prisma (@prisma/adapter-pg given the Pool): creates and counts rows, no error (a write in flight at the stop may end OutcomeUnknownError)', async () => {
    await promisify(execFile)(process.execPath, ['node_modules/prisma/build/index.js', 'generate', '--schema', 'test/support/prisma/schema.prisma'], {
      env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: '/bin/false', PRISMA_ENGINES_CHECKSUM_IGNORE_MISSING: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' },
      timeout: 90_000,
    });
    const generated = '../../.tmp/prisma-client/client.ts';
    const { PrismaClient } = (await import(generated)) as { PrismaClient: new (o: { adapter: PrismaPg }) => PrismaLike };
    const pool = fixture.newPool();
    const count = acquires(pool);
    await pool.query('CREATE TABLE IF NOT EXISTS orm_prisma (id serial PRIMARY KEY, v int NOT NULL)');
    const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
    try {
      const before = count();
      const run = await acrossSwitchover(async (i) => {
        await prisma.ormPrisma.create({ data: { v: i } });
        await prisma.ormPrisma.count();
      });
      assert.deepEqual(unexpected(run.errors), []);
      assert.ok(run.ok > 10, `${run.ok} steps`);
      assert.ok(count() - before >= run.ok * 2, `the adapter's statements went through pg-consul (${count() - before} acquires)`);
    } finally {
      await prisma.$disconnect();
    }
    assert.equal(pool.ending, false, 'the adapter does not end a pool it was given');
  });
});

/** The part of the generated PrismaClient the test uses. */
interface PrismaLike {
  ormPrisma: { create(args: { data: { v: number } }): Promise<unknown>; count(): Promise<number> };
  $disconnect(): Promise<void>;
}
