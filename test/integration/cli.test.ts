/**
 * The `pg-consul` CLI as a process against real PostgreSQL 15 and the Consul double:
 * status (table and JSON), check diagnoses with exit codes, and watch following a switchover.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../lib/testing/free-port.js';
import { useClusterFixture } from '../support/cluster-fixture.js';
import { runCli, spawnCli } from '../support/run-cli.js';

const SERVICE = 'pglab';
const TOKEN = 'cli-consul-token-5f2a9c';

interface StatusJson {
  primary: string | null;
  rows: { node: string; address: string; consulRole: string; checks: string; verified: string; route: string }[];
}

describe('pg-consul CLI (integration: real PostgreSQL + Consul double)', function () {
  this.timeout(120_000);
  const fx = useClusterFixture(SERVICE, TOKEN);
  let dir: string;
  const env = (extra: Record<string, string> = {}): Record<string, string> => ({
    CONSUL_HTTP_ADDR: `127.0.0.1:${fx.consul.port}`,
    CONSUL_HTTP_TOKEN: TOKEN,
    PGCONSUL_SERVICE: SERVICE,
    PGUSER: fx.cluster.appUser.user,
    PGPASSWORD: fx.cluster.appUser.password,
    PGDATABASE: fx.cluster.appUser.database,
    ...extra,
  });
  const addr = (name: string): string => `127.0.0.1:${fx.portOf(name)}`;
  const noSecrets = (text: string): void => {
    assert.ok(!text.includes(TOKEN), 'the Consul token is never printed');
    assert.ok(!text.includes(fx.cluster.appUser.password), 'the PG password is never printed');
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pg-consul-cli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => fx.advertise(fx.cluster.primaryName()));

  it('status --json lists every node with its verified role and the routing', async () => {
    const run = await runCli(['status', '--json'], env());
    assert.equal(run.code, 0, run.stderr);
    noSecrets(run.stdout + run.stderr);
    const status = JSON.parse(run.stdout) as StatusJson;
    const primary = fx.cluster.primaryName();
    assert.equal(status.primary, addr(primary));
    assert.equal(status.rows.length, 3);
    for (const node of fx.cluster.nodes) {
      const row = status.rows.find((r) => r.address === addr(node.name));
      assert.ok(row, `row for ${node.name}`);
      const role = node.name === primary ? 'primary' : 'replica';
      assert.equal(row.consulRole, role);
      assert.equal(row.verified, role);
      assert.equal(row.checks, 'passing');
      assert.equal(row.route, node.name === primary ? 'writes' : 'reads');
    }
  });

  it('status prints a table; options come from --config too', async () => {
    const file = join(dir, 'options.json');
    writeFileSync(file, JSON.stringify({ service: SERVICE, consul: { host: '127.0.0.1', port: fx.consul.port } }));
    const run = await runCli(['status', '--config', file], { ...env(), CONSUL_HTTP_ADDR: '127.0.0.1:1', PGCONSUL_SERVICE: 'other' });
    assert.equal(run.code, 0, run.stderr);
    const primaryLine = run.stdout.split('\n').find((l) => l.includes(addr(fx.cluster.primaryName())));
    assert.match(primaryLine ?? '', /\| primary +\| passing .*\| primary +\| writes/);
    assert.match(run.stdout, /Member +\| Host/);
  });

  it('check passes (exit 0) and names the source of each setting, secrets redacted', async () => {
    const run = await runCli(['check'], env());
    assert.equal(run.code, 0, run.stdout + run.stderr);
    noSecrets(run.stdout + run.stderr);
    assert.match(run.stdout, /consul\.token = \[REDACTED\] {2}\(env CONSUL_HTTP_TOKEN\)/);
    assert.match(run.stdout, /password = \[REDACTED\] {2}\(env PGPASSWORD\)/);
    assert.match(run.stdout, /service = pglab {2}\(env PGCONSUL_SERVICE\)/);
    assert.match(run.stdout, /readFallback = primary {2}\(default\)/);
    assert.match(run.stdout, /OK {3}PostgreSQL roles match Consul/);
  });

  it('check: Consul unreachable → 3, token missing → 4, invalid option → 2', async () => {
    const port = await freePort();
    const down = await runCli(['check'], env({ CONSUL_HTTP_ADDR: `127.0.0.1:${port}` }));
    assert.equal(down.code, 3, down.stdout);
    assert.match(down.stdout, /Consul is unreachable/);
    const { CONSUL_HTTP_TOKEN: _, ...withoutToken } = env();
    const denied = await runCli(['check'], withoutToken);
    assert.equal(denied.code, 4, denied.stdout);
    assert.match(denied.stdout, /hint: no token is configured: set CONSUL_HTTP_TOKEN/);
    const wrong = await runCli(['check'], env({ CONSUL_HTTP_TOKEN: 'not-the-token' }));
    assert.equal(wrong.code, 4, wrong.stdout);
    assert.match(wrong.stdout, /the token was refused/);
    const invalid = await runCli(['check'], env({ PGCONSUL_READ_FALLBACK: 'sometimes' }));
    assert.equal(invalid.code, 2, invalid.stdout);
    assert.match(invalid.stdout, /FAIL .*PGCONSUL_READ_FALLBACK/);
  });

  it('check: unknown service → 5 with the services that exist and close matches; tag mismatch → 5 with the tags seen', async () => {
    const typo = await runCli(['check', '--service', 'pg-lab'], env());
    assert.equal(typo.code, 5, typo.stdout);
    assert.match(typo.stdout, /service "pg-lab" is not registered/);
    assert.match(typo.stdout, /did you mean pglab\?/);
    const tags = await runCli(['check'], env({ PGCONSUL_PRIMARY_TAGS: 'leader', PGCONSUL_REPLICA_TAGS: 'standby' }));
    assert.equal(tags.code, 5, tags.stdout);
    assert.match(tags.stdout, /tags seen: master, primary, replica/);
  });

  it('check: no passing primary → 6; Consul and PostgreSQL disagree → 7', async () => {
    fx.advertise(undefined);
    const none = await runCli(['check'], env());
    assert.equal(none.code, 6, none.stdout);
    assert.match(none.stdout, /no passing instance of "pglab" is tagged primary/);
    assert.match(none.stdout, /hint: a failover may be in progress .*PGCONSUL_PRIMARY_TAGS \/ primaryTags is primary,master, tags seen: replica$/m);
    fx.advertise(fx.cluster.primaryName());
    const wrongPrimaryTag = await runCli(['check'], env({ PGCONSUL_PRIMARY_TAGS: 'leader' }));
    assert.equal(wrongPrimaryTag.code, 6, wrongPrimaryTag.stdout);
    assert.match(wrongPrimaryTag.stdout, /primaryTags is leader, tags seen: master, primary, replica$/m);
    const replica = fx.cluster.nodes.find((n) => n.name !== fx.cluster.primaryName())!.name;
    fx.advertise(replica);
    const mismatch = await runCli(['check', '--json'], env());
    assert.equal(mismatch.code, 7, mismatch.stdout);
    const json = JSON.parse(mismatch.stdout) as { findings: { level: string; message: string }[]; exitCode: number };
    assert.equal(json.exitCode, 7);
    assert.match(json.findings.at(-1)!.message, new RegExp(`${addr(replica)} is primary in Consul but in recovery`));
  });

  it('watch prints the switchover, timestamped, and exits 0 on SIGTERM', async () => {
    const child = spawnCli(['watch'], env());
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const waitFor = (pattern: RegExp, what: string): Promise<void> =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${what} in 30 s:\n${stdout}\n${stderr}`)), 30_000);
        const onData = (d: Buffer): void => {
          stdout += d.toString();
          if (pattern.test(stdout)) {
            clearTimeout(timer);
            child.stdout.off('data', onData);
            resolve();
          }
        };
        child.stdout.on('data', onData);
        onData(Buffer.alloc(0));
      });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      const from = fx.cluster.primaryName();
      await waitFor(/\| writes/, 'first table');
      const to = fx.cluster.nodes.find((n) => n.name !== from)!.name;
      await fx.cluster.switchover(to, { rejoinOld: true });
      fx.advertise(to);
      const line = new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z topology v\\d+: primary ${addr(from)} -> ${addr(to)}`, 'm');
      await waitFor(line, 'switchover line');
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
    noSecrets(stdout + stderr);
  });
});
