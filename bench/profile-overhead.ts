/**
 * A focused load for profiling the hot path: one client style only, one statement, fixed
 * concurrency, for a fixed time, against its own PgCluster + Consul double. Run it under the
 * V8 profiler and summarize the profile with `bench/cpuprofile-summary.ts`:
 *
 * ```sh
 * node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/profile-overhead.ts pg-consul primary 1 8000
 * node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/profile-overhead.ts pg primary 1 8000
 * npx tsx bench/cpuprofile-summary.ts /tmp/prof/<file>.cpuprofile
 * ```
 *
 * Arguments: `pg | pg-consul`, `primary | replica`, concurrency, duration ms, statement
 * (`select1` | `row1k`). Prints statements/s. Setup and teardown are outside the measured
 * window but inside the profile (they are a small, fixed share).
 * @module
 */
import pg from 'pg';
import { Pool } from '../lib/index.js';
import { ConsulDouble } from '../lib/testing/consul-double.js';
import { PgCluster } from '../lib/testing/pg-cluster.js';
import { OVERHEAD_STATEMENTS } from './overhead.js';
import { drive } from './stats.js';

const [client = 'pg-consul', path = 'primary', concArg = '1', durArg = '8000', stArg = 'select1'] = process.argv.slice(2);
const concurrency = Number(concArg);
const duration = Number(durArg);
const statement = OVERHEAD_STATEMENTS.find((s) => s.id === stArg);
if (!['pg', 'pg-consul'].includes(client) || !['primary', 'replica'].includes(path) || !statement || !(concurrency > 0) || !(duration > 0 && duration <= 120_000)) {
  throw new Error('usage: profile-overhead.ts pg|pg-consul primary|replica <concurrency> <ms ≤ 120000> [select1|row1k]');
}
const [cluster, consul] = await Promise.all([PgCluster.start({ replicas: 1 }), ConsulDouble.start()]);
try {
  const primary = cluster.node(cluster.primaryName());
  const replica = cluster.nodes.find((n) => n.name !== primary.name)!;
  for (const n of [primary, replica]) {
    consul.registerService({ id: `prof/${n.name}`, name: 'prof', address: n.host, port: n.port, tags: n === primary ? ['master', 'primary'] : ['replica'], node: n.name, nodeAddress: '127.0.0.1' });
  }
  const { user, password, database } = cluster.appUser;
  const options = { user, password, database, max: Math.max(concurrency, 1), idleTimeoutMillis: 60_000 };
  let query: (text: string) => Promise<unknown>;
  let end: () => Promise<void>;
  if (client === 'pg') {
    const p = new pg.Pool({ ...options, host: '127.0.0.1', port: path === 'primary' ? primary.port : replica.port });
    query = (t) => p.query(t);
    end = () => p.end();
  } else {
    const p = new Pool({ ...options, service: 'prof', consul: { host: '127.0.0.1', port: consul.port } });
    await p.ready(10_000);
    query = path === 'primary' ? (t) => p.query(t) : (t) => p.replica.query(t);
    end = () => p.end();
  }
  await drive(() => query(statement.text), concurrency, 500);
  const r = await drive(() => query(statement.text), concurrency, duration);
  console.log(JSON.stringify({ client, path, concurrency, statement: statement.id, opsPerSec: Math.round(r.opsPerSec), ops: r.ops, errors: r.errors }));
  await end();
} finally {
  await consul.stop();
  await cluster.destroy();
}
