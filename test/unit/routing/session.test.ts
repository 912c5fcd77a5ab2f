/**
 * Read-your-writes sessions against a fake cluster (no network): which node each statement
 * goes to, how many statements it costs, the position a write records, the token, and the
 * pin to the primary after a position that could not be read.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type pg from 'pg';
import { Pool } from '../../../lib/pool.js';
import type { DiscoveryListener, DiscoverySource } from '../../../lib/discovery/discovery-source.js';
import type { LogLevel } from '../../../lib/log.js';
import { runStatementOn } from '../../../lib/pooling/statement-attempt.js';
import { runTransaction } from '../../../lib/query/transaction.js';
import { AttemptFailure, runWithRetry } from '../../../lib/retry/run-with-retry.js';
import type { RetryDeps } from '../../../lib/retry/run-with-retry.js';
import { MAX_LSN, formatLsn } from '../../../lib/routing/lsn.js';
import { REPLAY_POSITION_QUERY } from '../../../lib/routing/read-paths.js';
import type { Checkout } from '../../../lib/pooling/statement-attempt.js';
import type { ReadPathCluster, Statement } from '../../../lib/routing/read-paths.js';
import { INSERT_POSITION_QUERY, Session } from '../../../lib/routing/session.js';
import type { SessionHost } from '../../../lib/routing/session.js';
import { decodeSessionToken, encodeSessionToken } from '../../../lib/routing/session-token.js';
import type { DiscoveredNode } from '../../../lib/topology/node.js';
import type { CaughtUpSelection, Selection } from '../../../lib/topology/select.js';
import { node } from '../../support/nodes.js';

const P1 = node('n1', 5001, 'primary');
const R2 = node('n2', 5002, 'replica');
const R3 = node('n3', 5003, 'replica');
const START = 0x3000000n; // the primary's insert position before the test's first write
const STEP = 0x100n; // WAL one write adds

interface Sent {
  readonly node: string;
  readonly sql: string;
}

/** One PostgreSQL server: its WAL position (insert on the primary, replay on a replica). */
class FakeServer {
  lsn: bigint;
  /** How many of the next position queries fail with a lost connection. */
  failPositionReads = 0;
  connects = 0;
  released = 0;
  destroyed = 0;

  constructor(
    readonly node: DiscoveredNode,
    lsn: bigint,
  ) {
    this.lsn = lsn;
  }
}

/** A checked-out connection: answers from its server, logs every statement it is sent. */
class FakeClient extends EventEmitter {
  #released = false;

  constructor(
    readonly server: FakeServer,
    readonly log: Sent[],
  ) {
    super();
  }

  query(text: Statement, values?: unknown, cb?: (err: Error | undefined, r?: pg.QueryResult) => void): Promise<pg.QueryResult> | undefined {
    const arrays = typeof text === 'object' && (text as pg.QueryArrayConfig).rowMode === 'array';
    const promise = this.#answer(typeof text === 'string' ? text : text.text).then((r) =>
      arrays ? ({ ...r, rows: r.rows.map((row) => Object.values(row as object)) } as pg.QueryResult) : r,
    );
    if (typeof cb === 'function') {
      promise.then((r) => cb(undefined, r), (err: Error) => cb(err));
      return undefined;
    }
    return promise;
  }

  async #answer(sql: string): Promise<pg.QueryResult> {
    if (this.#released) throw new Error('query on a released client');
    const s = this.server;
    this.log.push({ node: s.node.name, sql });
    await Promise.resolve();
    const result = (command: string, rows: unknown[] = []): pg.QueryResult => ({ command, rowCount: rows.length, oid: 0, fields: [], rows }) as pg.QueryResult;
    if (sql === INSERT_POSITION_QUERY || sql === REPLAY_POSITION_QUERY) {
      if (s.failPositionReads > 0) {
        s.failPositionReads--;
        throw new Error('Connection terminated unexpectedly');
      }
      return sql === INSERT_POSITION_QUERY ? result('SELECT', [{ lsn: formatLsn(s.lsn) }]) : result('SELECT', [{ replay: formatLsn(s.lsn) }]);
    }
    const command = sql.split(' ')[0]!.toUpperCase();
    if (['INSERT', 'UPDATE', 'DELETE'].includes(command)) {
      if (s.node.role !== 'primary') throw Object.assign(new Error('cannot execute in a read-only transaction'), { code: '25006', severity: 'ERROR' });
      s.lsn += STEP;
      return result(command, [{ id: 1 }]);
    }
    if (command === 'SELECT') return result(command, [{ node: s.node.name }]);
    return result(command);
  }

  release(err?: unknown): void {
    if (this.#released) throw new Error('released twice');
    this.#released = true;
    this.server.released++;
    if (err) this.server.destroyed++;
  }
}

/** A node's pg.Pool: `connect` in both forms, nothing else. */
class FakePgPool {
  constructor(
    readonly server: FakeServer,
    readonly log: Sent[],
  ) {}

  connect(cb?: (err: Error | undefined, client?: FakeClient) => void): Promise<FakeClient> | undefined {
    this.server.connects++;
    const client = new FakeClient(this.server, this.log);
    if (typeof cb === 'function') {
      queueMicrotask(() => cb(undefined, client));
      return undefined;
    }
    return Promise.resolve(client);
  }
}

/**
 * The cluster seam of sessions: one primary, two replicas, a virtual clock. Caught-up
 * selection follows `selectCaughtUpReplica`'s rules: a replica known to have replayed the
 * position, else (checks allowed, no lag monitor) a replica to check, else the primary.
 */
class FakeCluster implements ReadPathCluster {
  ending = false;
  lagMonitored = false;
  clock = 0;
  readonly sent: Sent[] = [];
  readonly replayed = new Map<string, bigint>();
  readonly caughtUpSelections: Array<{ position: bigint; allowVerify: boolean }> = [];
  readonly servers = new Map<string, FakeServer>();
  readonly #pools = new Map<string, FakePgPool>();
  #turn = 0;

  constructor() {
    this.servers.set(P1.address, new FakeServer(P1, START));
    this.servers.set(R2.address, new FakeServer(R2, START));
    this.servers.set(R3.address, new FakeServer(R3, START));
  }

  server(n: DiscoveredNode): FakeServer {
    return this.servers.get(n.address)!;
  }

  select(intent: 'primary' | 'replica'): Selection {
    if (intent === 'primary') return { node: P1, role: 'primary' };
    return { node: this.#turn++ % 2 === 0 ? R2 : R3, role: 'replica' };
  }

  selectCaughtUp(position: bigint, allowVerify = true): CaughtUpSelection {
    this.caughtUpSelections.push({ position, allowVerify });
    for (const r of [R2, R3]) {
      const known = this.replayed.get(r.address);
      if (known !== undefined && known >= position) return { node: r, role: 'replica', verify: false };
    }
    if (allowVerify && !this.lagMonitored) return { node: R2, role: 'replica', verify: true };
    return { node: P1, role: 'primary', verify: false };
  }

  noteReplayed(address: string, lsn: bigint): void {
    if ((this.replayed.get(address) ?? -1n) < lsn) this.replayed.set(address, lsn);
  }

  retryDeps(intent: 'primary' | 'replica'): RetryDeps {
    return {
      select: () => this.select(intent),
      invalidate: () => undefined,
      refresh: () => undefined,
      waitForChange: async (ms) => {
        this.clock += ms;
      },
      isEnding: () => this.ending,
      now: () => this.clock,
      backoff: () => 100,
      failoverTimeoutMillis: 1000,
      discovered: () => true,
      lastDiscoveryError: () => undefined,
      onRetry: () => undefined,
    };
  }

  retryDepsWith(select: () => Selection): RetryDeps {
    return { ...this.retryDeps('replica'), select };
  }

  autoReadDeps(): RetryDeps {
    return this.retryDepsWith(() => this.select('replica'));
  }

  nodePool(n: DiscoveredNode, _role: 'primary' | 'replica'): Checkout & { checkout(): Promise<pg.PoolClient> } {
    let pool = this.#pools.get(n.address);
    if (!pool) {
      pool = new FakePgPool(this.server(n), this.sent);
      this.#pools.set(n.address, pool);
    }
    const pg = pool as unknown as pg.Pool;
    return {
      connect: (callback) => pg.connect((err, client) => callback(err, client)),
      checkout: () => pg.connect(),
    };
  }

  /** The statements sent since the last call. */
  take(): Sent[] {
    return this.sent.splice(0);
  }
}

/** The pool's side of a session, wired as `Pool` wires it, over the fake cluster. */
function hostFor(cluster: FakeCluster, autoReadRouting = false): SessionHost & { logs: Array<{ level: LogLevel; message: string }> } {
  const logs: Array<{ level: LogLevel; message: string }> = [];
  const run = (intent: 'primary' | 'replica', text: Statement, values: unknown[] | undefined): Promise<pg.QueryResult> =>
    runWithRetry(cluster.retryDeps(intent), intent, (n, role) => runStatementOn(cluster.nodePool(n, role), text, values));
  return {
    cluster,
    autoReadRouting,
    readRun: (text, values) => run('replica', text, values),
    primaryRun: (text, values) => run('primary', text, values),
    transaction: (callback, options) => {
      const deps = cluster.retryDeps('primary');
      const acquire: Parameters<typeof runTransaction>[0]['acquire'] = (budget) =>
        runWithRetry(
          deps,
          'primary',
          async (n, role) => {
            try {
              return await cluster.nodePool(n, role).checkout();
            } catch (err) {
              throw new AttemptFailure(err, 'acquire');
            }
          },
          budget,
        );
      return runTransaction({ deps, role: 'primary', acquire }, callback, options);
    },
    log: (level, message) => logs.push({ level, message }),
    logs,
  };
}

const READ = 'SELECT v FROM t WHERE id = $1';
const WRITE = 'UPDATE t SET v = $1 WHERE id = $2';
const at = (n: DiscoveredNode, sql: string): Sent => ({ node: n.name, sql });

/** A session after one write: its position is START + STEP. */
async function afterWrite(cluster: FakeCluster, host = hostFor(cluster)): Promise<Session> {
  const s = new Session(host, 0n);
  await s.query(WRITE, [1, 2]);
  cluster.take();
  return s;
}

describe('routing/session (fake cluster, no network)', () => {
  describe('without a position', () => {
    for (const [name, position] of [
      ['a fresh session', 0n],
      ["a session from the empty token ''", decodeSessionToken('')],
      ['a session from the token of a session that never wrote', decodeSessionToken(encodeSessionToken(0n))],
    ] as const) {
      it(`${name} reads from a replica with exactly one statement (no position check)`, async () => {
        const cluster = new FakeCluster();
        const s = new Session(hostFor(cluster), position);
        assert.equal(s.lsn, undefined);
        const { rows } = await s.replica.query(READ, [1]);
        assert.deepEqual(rows, [{ node: 'n2' }]);
        assert.equal(await s.replica.value(READ, [1]), 'n3', 'the helpers take the same path');
        assert.deepEqual(cluster.take(), [at(R2, READ), at(R3, READ)]);
        assert.deepEqual(cluster.caughtUpSelections, [], 'no read-your-writes selection at all');
        assert.equal(s.token, encodeSessionToken(0n));
      });
    }
  });

  describe('a write', () => {
    it('runs on the primary, then reads its insert position on the same connection', async () => {
      const cluster = new FakeCluster();
      const s = new Session(hostFor(cluster), 0n);
      const result = await s.query(WRITE, [1, 2]);
      assert.equal(result.command, 'UPDATE');
      assert.deepEqual(cluster.take(), [at(P1, WRITE), at(P1, INSERT_POSITION_QUERY)]);
      const primary = cluster.server(P1);
      assert.deepEqual([primary.connects, primary.released, primary.destroyed], [1, 1, 0], 'one connection, returned to the pool');
      assert.equal(s.position, START + STEP);
      assert.equal(s.lsn, formatLsn(START + STEP));
    });

    it('the position only moves forward', async () => {
      const cluster = new FakeCluster();
      const s = new Session(hostFor(cluster), START + 10n * STEP);
      await s.query(WRITE, [1, 2]); // the primary reports START + STEP: older than the token's
      assert.equal(s.position, START + 10n * STEP);
    });

    it('a statement the classifier finds certainly read-only goes to the primary and records nothing', async () => {
      const cluster = new FakeCluster();
      const s = new Session(hostFor(cluster), 0n);
      await s.query(READ, [1]);
      assert.deepEqual(cluster.take(), [at(P1, READ)]);
      assert.equal(s.lsn, undefined);
    });
  });

  describe('reads after a write (table)', () => {
    const pos = START + STEP;
    interface Row {
      readonly name: string;
      readonly monitored: boolean;
      /** Replay positions the cluster already knows (lag monitor data or earlier checks). */
      readonly known: ReadonlyArray<readonly [DiscoveredNode, bigint]>;
      /** The replicas' real replay positions (what a check would answer). */
      readonly replay: bigint;
      readonly expect: readonly Sent[];
      /** What a second read then sends. */
      readonly then: readonly Sent[];
    }
    const rows: Row[] = [
      {
        name: 'a replica known to have replayed exactly the position: one statement there, no check',
        monitored: false,
        known: [[R2, pos]],
        replay: pos,
        expect: [at(R2, READ)],
        then: [at(R2, READ)],
      },
      {
        name: 'a replica known to be past it (the other one behind): one statement there',
        monitored: true,
        known: [[R2, pos - 1n], [R3, pos + STEP]],
        replay: pos + STEP,
        expect: [at(R3, READ)],
        then: [at(R3, READ)],
      },
      {
        name: 'lag monitor on, every replica known to be behind: the primary, one statement',
        monitored: true,
        known: [[R2, pos - 1n], [R3, pos - 1n]],
        replay: pos - 1n,
        expect: [at(P1, READ)],
        then: [at(P1, READ)],
      },
      {
        name: 'lag monitor on, nothing known: the primary, no check',
        monitored: true,
        known: [],
        replay: pos,
        expect: [at(P1, READ)],
        then: [at(P1, READ)],
      },
      {
        name: 'no monitor, a replica not known to have it that has: one check, the read there; then known',
        monitored: false,
        known: [],
        replay: pos,
        expect: [at(R2, REPLAY_POSITION_QUERY), at(R2, READ)],
        then: [at(R2, READ)],
      },
      {
        name: 'no monitor, a replica not known to have it that is behind: one check there, the read on the primary',
        monitored: false,
        known: [],
        replay: pos - 1n,
        expect: [at(R2, REPLAY_POSITION_QUERY), at(P1, READ)],
        then: [at(R2, REPLAY_POSITION_QUERY), at(P1, READ)],
      },
    ];
    for (const row of rows) {
      it(row.name, async () => {
        const cluster = new FakeCluster();
        cluster.lagMonitored = row.monitored;
        const s = await afterWrite(cluster);
        assert.equal(s.position, pos);
        for (const [n, lsn] of row.known) cluster.noteReplayed(n.address, lsn);
        cluster.server(R2).lsn = row.replay;
        cluster.server(R3).lsn = row.replay;
        const { rows: got } = await s.replica.query(READ, [1]);
        assert.deepEqual(got, [{ node: row.expect.at(-1)!.node }]);
        assert.deepEqual(cluster.take(), row.expect);
        await s.replica.query(READ, [1]);
        assert.deepEqual(cluster.take(), row.then);
        for (const server of cluster.servers.values()) assert.equal(server.connects, server.released, `${server.node.name}: every connection released`);
      });
    }
  });

  describe('the token', () => {
    it('round-trips the position: a session rebuilt from it (another process, another pool) routes the same', async () => {
      const a = new FakeCluster();
      const s = await afterWrite(a);
      assert.match(s.token, /^[A-Za-z0-9_-]{12}$/);
      const b = new FakeCluster();
      b.lagMonitored = true;
      const s2 = new Session(hostFor(b), decodeSessionToken(s.token));
      assert.equal(s2.position, s.position);
      assert.equal(s2.lsn, s.lsn);
      assert.equal(s2.token, s.token);
      await s2.replica.query(READ, [1]);
      assert.deepEqual(b.take(), [at(P1, READ)], 'no replica known to have it: the primary');
      b.noteReplayed(R3.address, s.position);
      await s2.replica.query(READ, [1]);
      assert.deepEqual(b.take(), [at(R3, READ)]);
    });

    describe('pool.session(token) with a malformed token', () => {
      let pool: Pool;
      before(() => {
        const source: DiscoverySource = {
          requestCount: 0,
          start: (_listener: DiscoveryListener) => undefined,
          refresh: () => undefined,
          stop: async () => undefined,
        };
        pool = new Pool({ discovery: source });
      });
      after(() => pool.end());

      const tokens: Array<[string, unknown]> = [
        ['too short', 'secret-sauce'.slice(0, 9)],
        ['too long', 'AQAAAAADAAFI-my-secret'],
        ['characters outside base64url', 'AQAAAAAD+/==' ],
        ['an unknown version', encodeSessionToken(0x3000148n).replace(/^AQ/, 'Ag')],
        ['not a string', 12345],
      ];
      for (const [why, token] of tokens) {
        it(`${why}: TypeError, and the message does not contain the token`, () => {
          assert.throws(
            () => pool.session(token as string),
            (err: unknown) => err instanceof TypeError && (typeof token !== 'string' || !err.message.includes(token)),
          );
        });
      }

      it('a valid token makes a session at its position', () => {
        assert.equal(pool.session(encodeSessionToken(0x3000148n)).lsn, '0/3000148');
        assert.equal(pool.session().lsn, undefined);
      });
    });
  });

  describe('a position that cannot be read after a write', () => {
    it('the write resolves; the session is pinned to the primary until its next recorded write', async () => {
      const cluster = new FakeCluster();
      const host = hostFor(cluster);
      const s = new Session(host, 0n);
      cluster.server(P1).failPositionReads = 1;
      const result = await s.query(WRITE, [1, 2]);
      assert.equal(result.command, 'UPDATE', 'the write is not failed (nor retried: it ran)');
      assert.deepEqual(cluster.take(), [at(P1, WRITE), at(P1, INSERT_POSITION_QUERY)]);
      assert.equal(cluster.server(P1).destroyed, 1, 'the connection whose position read failed is destroyed');
      assert.equal(s.position, MAX_LSN);
      assert.equal(s.lsn, 'FFFFFFFF/FFFFFFFF');
      assert.equal(decodeSessionToken(s.token), MAX_LSN, 'the token carries the pin');
      assert.ok(host.logs.some((l) => l.level === 'debug'));

      // Every replica has replayed far more than the write: still the primary, and no check.
      for (const r of [R2, R3]) {
        cluster.server(r).lsn = START + 100n * STEP;
        cluster.noteReplayed(r.address, START + 100n * STEP);
      }
      await s.replica.query(READ, [1]);
      await s.replica.query(READ, [1]);
      assert.deepEqual(cluster.take(), [at(P1, READ), at(P1, READ)]);
      assert.ok(cluster.caughtUpSelections.every((c) => c.position === MAX_LSN && !c.allowVerify), 'pinned: no replica is ever checked');

      // A session rebuilt from the pinned token is pinned too.
      const rebuilt = new Session(hostFor(cluster), decodeSessionToken(s.token));
      await rebuilt.replica.query(READ, [1]);
      assert.deepEqual(cluster.take(), [at(P1, READ)]);

      // A read through session.query records nothing: still pinned.
      await s.query(READ, [1]);
      assert.equal(s.position, MAX_LSN);
      cluster.take();

      // The next recorded write unpins it (its position is lower than the pin).
      await s.query(WRITE, [3, 4]);
      assert.equal(s.position, START + 2n * STEP);
      cluster.take();
      await s.replica.query(READ, [1]);
      assert.deepEqual(cluster.take(), [at(R2, READ)], 'a replica known to have it serves the read again');
    });

    it('after a transaction too: it resolves, pinned', async () => {
      const cluster = new FakeCluster();
      const s = new Session(hostFor(cluster), 0n);
      cluster.server(P1).failPositionReads = 1_000;
      assert.equal(await s.transaction(async (tx) => (await tx.query(WRITE, [1, 2])).command), 'UPDATE');
      assert.equal(s.lsn, 'FFFFFFFF/FFFFFFFF');
    });
  });

  describe('transactions', () => {
    it('record the position after COMMIT (one statement more); read-only ones record nothing', async () => {
      const cluster = new FakeCluster();
      const s = new Session(hostFor(cluster), 0n);
      await s.transaction(async (tx) => {
        await tx.query(WRITE, [1, 2]);
      });
      assert.deepEqual(cluster.take(), [at(P1, 'BEGIN'), at(P1, WRITE), at(P1, 'COMMIT'), at(P1, INSERT_POSITION_QUERY)]);
      assert.equal(s.position, START + STEP);
      cluster.server(P1).lsn += 5n * STEP; // other sessions write
      await s.transaction((tx) => tx.query(READ, [1]), { readOnly: true });
      assert.deepEqual(cluster.take(), [at(P1, 'BEGIN READ ONLY'), at(P1, READ), at(P1, 'COMMIT')]);
      assert.equal(s.position, START + STEP);
    });
  });

  describe('autoReadRouting', () => {
    it('session.query sends certainly read-only statements to the session read path, writes to the primary', async () => {
      const cluster = new FakeCluster();
      cluster.lagMonitored = true;
      const s = new Session(hostFor(cluster, true), 0n);
      await s.query(READ, [1]);
      assert.deepEqual(cluster.take(), [at(R2, READ)], 'no position: a plain replica read');
      await s.query(WRITE, [1, 2]);
      cluster.take();
      await s.query(READ, [1]);
      assert.deepEqual(cluster.take(), [at(P1, READ)], 'with a position no replica is known to have: the primary');
    });
  });

  it('rejects the callback and Submittable forms with a TypeError', async () => {
    const cluster = new FakeCluster();
    const s = new Session(hostFor(cluster), 0n);
    await assert.rejects(s.query(READ, (() => undefined) as never), TypeError);
    await assert.rejects(s.replica.query({ submit: () => undefined } as never), TypeError);
    assert.deepEqual(cluster.take(), []);
  });
});
