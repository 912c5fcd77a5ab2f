import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { PgCluster } from '../../lib/testing/pg-cluster.js';
import { processAlive } from '../../lib/testing/processes.js';

/** pids of the postmasters of `cluster` and all their children. */
function clusterPids(cluster: PgCluster): number[] {
  const roots = new Set<number>();
  for (const n of cluster.nodes) {
    try {
      roots.add(Number(readFileSync(join(n.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]));
    } catch {
      // not running
    }
  }
  const pids = [...roots];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (roots.has(ppid)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

describe('PgCluster (real PostgreSQL)', function () {
  this.timeout(120_000);
  let cluster: PgCluster;
  const logs: string[] = [];

  before(async function () {
    const t0 = Date.now();
    cluster = await PgCluster.start({ replicas: 2, log: (l) => { logs.push(l); if (process.env.PGC_DEBUG) console.log(`${Date.now() - t0} ${l}`); } });
    console.log(`      PgCluster 1+2 started in ${Date.now() - t0} ms`);
  });

  after(async function () {
    await cluster?.destroy();
  });

  async function role(name: string): Promise<{ recovery: boolean; port: number }> {
    const [row] = await cluster.query(name, 'SELECT pg_is_in_recovery() AS recovery, inet_server_port() AS port');
    return { recovery: row?.['recovery'] as boolean, port: row?.['port'] as number };
  }

  async function values(name: string): Promise<number[]> {
    const rows = await cluster.query(name, 'SELECT v FROM t ORDER BY v');
    return rows.map((r) => r['v'] as number);
  }

  it('starts node1 as primary and node2, node3 as streaming replicas on their own ports', async function () {
    assert.equal(cluster.primaryName(), 'node1');
    assert.deepEqual(
      cluster.nodes.map((n) => n.name),
      ['node1', 'node2', 'node3'],
    );
    assert.equal(new Set(cluster.nodes.map((n) => n.port)).size, 3);
    for (const n of cluster.nodes) {
      assert.equal(n.host, '127.0.0.1');
      assert.ok(cluster.isRunning(n.name));
      assert.deepEqual(await role(n.name), { recovery: n.name !== 'node1', port: n.port });
    }
    const rows = await cluster.query('node1', "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1");
    assert.deepEqual(
      rows.map((r) => r['application_name']),
      ['node2', 'node3'],
    );
  });

  it('replicates writes on the primary to both replicas', async function () {
    await cluster.query('node1', 'CREATE TABLE t (v int)');
    await cluster.query('node1', 'INSERT INTO t VALUES (1), (2)');
    await cluster.waitForReplay('node2');
    await cluster.waitForReplay('node3');
    assert.deepEqual(await values('node2'), [1, 2]);
    assert.deepEqual(await values('node3'), [1, 2]);
  });

  it('makes the app user authenticate with its password', async function () {
    const { user, password, database } = cluster.appUser;
    const port = cluster.node('node1').port;
    const ok = new pg.Client({ host: '127.0.0.1', port, user, password, database });
    await ok.connect();
    try {
      const { rows } = await ok.query<{ u: string; d: string }>('SELECT current_user AS u, current_database() AS d');
      assert.deepEqual(rows[0], { u: user, d: database });
    } finally {
      await ok.end();
    }
    const bad = new pg.Client({ host: '127.0.0.1', port, user, password: 'wrong', database });
    await assert.rejects(bad.connect(), (err: { code?: string }) => err.code === '28P01');
    await bad.end().catch(() => {});
  });

  it('switches over to node2: node3 follows it, node1 rejoins as a replica', async function () {
    const t0 = Date.now();
    await cluster.switchover('node2', { rejoinOld: true });
    console.log(`      switchover node1 -> node2 (+ rejoin node1) took ${Date.now() - t0} ms`);
    assert.equal(cluster.primaryName(), 'node2');
    assert.ok(logs.some((l) => l.includes('node1 rejoined as a replica of node2 (restart)')), 'a cleanly stopped old primary rejoins without a new base backup');
    assert.equal((await role('node2')).recovery, false);
    assert.equal((await role('node1')).recovery, true);
    assert.equal((await role('node3')).recovery, true);
    await cluster.query('node2', 'INSERT INTO t VALUES (3)');
    await cluster.waitForReplay('node3');
    await cluster.waitForReplay('node1');
    assert.deepEqual(await values('node3'), [1, 2, 3]);
    assert.deepEqual(await values('node1'), [1, 2, 3]);
  });

  it('survives a crash of the primary: promote node3, node1 follows, node2 rejoins from a base backup', async function () {
    await cluster.stop('node2', 'immediate');
    assert.equal(cluster.isRunning('node2'), false);
    await cluster.promote('node3');
    assert.equal(cluster.primaryName(), 'node3');
    await cluster.query('node3', 'INSERT INTO t VALUES (4)');
    await cluster.follow('node1');
    const t0 = Date.now();
    await cluster.rejoinAsReplica('node2');
    console.log(`      rejoin of the crashed node2 took ${Date.now() - t0} ms`);
    assert.ok(logs.some((l) => l.includes('node2 rejoined as a replica of node3 (pg_basebackup)')));
    await cluster.waitForReplay('node1');
    await cluster.waitForReplay('node2');
    assert.deepEqual(await values('node1'), [1, 2, 3, 4]);
    assert.deepEqual(await values('node2'), [1, 2, 3, 4]);
    assert.equal((await role('node2')).recovery, true);
  });

  it('destroy() stops every postgres process of the cluster and removes its dir, idempotently', async function () {
    const pids = clusterPids(cluster);
    assert.ok(pids.length >= 3 * 4, `expected postmasters and their children, got ${pids.length} pids`);
    await cluster.destroy();
    await cluster.destroy();
    assert.deepEqual(
      pids.filter((p) => processAlive(p)),
      [],
    );
    assert.equal(existsSync(cluster.baseDir), false);
    for (const n of cluster.nodes) assert.equal(cluster.isRunning(n.name), false);
  });

  it('names the Debian package when the server binaries are missing', async function () {
    await assert.rejects(PgCluster.start({ pgBin: '/nonexistent/bin' }), /initdb.*not found in \/nonexistent\/bin.*install the Debian package postgresql-15/s);
  });
});
