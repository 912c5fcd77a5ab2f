/**
 * Every example runs, as a user would run it (`npx tsx examples/<name>.ts`, importing
 * `pg-consul` by its package name), against real PostgreSQL 15 registered in the Consul
 * double the way Patroni registers it; `demo.ts` starts its own Patroni lab. Configuration
 * comes from the environment only (PGCONSUL_SERVICE, CONSUL_HTTP_ADDR, PGUSER, …), as the
 * README shows.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ConsulDouble } from '../../lib/testing/consul-double.js';
import { PgCluster } from '../../lib/testing/pg-cluster.js';
import { advertise } from '../support/advertise.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const SERVICE = 'pgexamples';

/** What each example must print to count as a success (besides exiting with 0). */
const EXPECTED: Readonly<Record<string, RegExp>> = {
  'quick-start.ts': /visits: [1-9]\d*/,
  'query-helpers.ts': /alice has id \d+ and balance 100/,
  'transactions.ts': /transfer .*: alice → bob/,
  'demo.ts': /done: nothing left running/,
  // EXAMPLE_ROUNDS=3: three statements on each path, no failover, a topology age.
  'otel-metrics.ts': /^(?=[\s\S]*^pgconsul\.queries\{role=primary,intent=primary\} 3$)(?=[\s\S]*^pgconsul\.queries\{role=replica,intent=replica\} 3$)(?=[\s\S]*^pgconsul\.failovers 0$)(?=[\s\S]*^pgconsul\.topology\.age \d+\.\d{3}$)/m,
};

describe('examples (integration: real PostgreSQL + Consul double; demo.ts: real Patroni)', function () {
  this.timeout(240_000);
  let cluster: PgCluster;
  let consul: ConsulDouble;

  before(async () => {
    [cluster, consul] = await Promise.all([PgCluster.start({ replicas: 1 }), ConsulDouble.start()]);
    advertise(consul, cluster, SERVICE, cluster.primaryName());
  });

  after(async () => {
    await consul?.stop();
    await cluster?.destroy();
  });

  it('every file in examples/ has an expectation here', () => {
    assert.deepEqual(readdirSync(new URL('../../examples', import.meta.url)).filter((f) => f.endsWith('.ts')).sort(), Object.keys(EXPECTED).sort());
  });

  for (const [file, expected] of Object.entries(EXPECTED)) {
    it(`examples/${file} runs and exits by itself`, async () => {
      const env = {
        ...process.env,
        PGCONSUL_SERVICE: SERVICE,
        CONSUL_HTTP_ADDR: `127.0.0.1:${consul.port}`,
        PGUSER: cluster.appUser.user,
        PGPASSWORD: cluster.appUser.password,
        PGDATABASE: cluster.appUser.database,
        EXAMPLE_ROUNDS: '3',
      };
      const { stdout } = await run(process.execPath, ['--import', 'tsx', `examples/${file}`], { cwd: root, env, timeout: 180_000 });
      assert.match(stdout, expected);
    });
  }
});
