/**
 * `pg-consul status` against real Patroni 3.0.2 agents (PatroniLab): the same leader and the
 * same replicas as Patroni's own `patronictl list`, before and after a switchover. Both
 * tables are printed for the record.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PatroniLab } from '../../lib/testing/patroni-lab.js';
import { runCli } from '../support/run-cli.js';

const run = promisify(execFile);

interface PatroniMember {
  Member: string;
  Host: string;
  Role: string;
  State: string;
}

interface StatusJson {
  primary: string | null;
  rows: { node: string; address: string; consulRole: string; verified: string; route: string; patroni: string; lagBytes?: number }[];
}

interface Picture {
  leader: string | undefined;
  replicas: string[];
}

describe('pg-consul status vs patronictl list (integration: real Patroni 3.0.2)', function () {
  this.timeout(180_000);
  let lab: PatroniLab;

  before(async () => {
    lab = await PatroniLab.start({ mode: 'patroni' });
  });
  after(async () => {
    await lab?.stop();
  });

  const env = (): Record<string, string> => ({
    CONSUL_HTTP_ADDR: lab.consul.address,
    PGCONSUL_SERVICE: lab.serviceName,
    PGUSER: lab.appUser.user,
    PGPASSWORD: lab.appUser.password,
    PGDATABASE: lab.appUser.database,
  });

  /** patronictl reads the DCS (the Consul double) through a member's own Patroni config file. */
  async function patronictl(...args: string[]): Promise<string> {
    // Async: the Consul double answers from this very process.
    const { stdout } = await run('patronictl', ['-c', join(lab.baseDir, 'node1.yml'), 'list', ...args], { timeout: 30_000 });
    return stdout;
  }

  async function compare(when: string): Promise<Picture> {
    const members = JSON.parse(await patronictl('-f', 'json')) as PatroniMember[];
    const table = await runCli(['status'], env());
    const status = await runCli(['status', '--json'], env());
    console.log(`\n      patronictl list (${when}):\n${(await patronictl()).replace(/^/gm, '      ')}`);
    console.log(`      pg-consul status (${when}):\n${table.stdout.replace(/^/gm, '      ')}`);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(table.code, 0, table.stderr);
    const json = JSON.parse(status.stdout) as StatusJson;
    const patroni: Picture = {
      leader: members.find((m) => m.Role === 'Leader')?.Host,
      replicas: members.filter((m) => m.Role === 'Replica' || m.Role === 'Sync Standby').map((m) => m.Host).sort(),
    };
    const ours: Picture = {
      leader: json.rows.find((r) => r.route.includes('writes'))?.address,
      replicas: json.rows.filter((r) => r.consulRole === 'replica').map((r) => r.address).sort(),
    };
    assert.ok(patroni.leader !== undefined && patroni.replicas.length === lab.nodes.length - 1, `patronictl shows a leader and ${lab.nodes.length - 1} replicas`);
    assert.deepEqual(ours, patroni);
    assert.equal(json.primary, patroni.leader);
    for (const m of members) {
      const row = json.rows.find((r) => r.address === m.Host);
      assert.ok(row, `a status row for ${m.Member}`);
      assert.equal(row.node, m.Member, 'the member name Patroni registered');
      assert.equal(row.verified, m.Role === 'Leader' ? 'primary' : 'replica');
      // Patroni's own view of every member, read from its keys as patronictl does.
      assert.match(row.patroni, new RegExp(`^${m.Role === 'Leader' ? '(master|primary)' : 'replica'}/${m.State} TL\\d+$`), `Patroni column of ${m.Member}`);
      if (m.Role !== 'Leader') assert.equal(typeof row.lagBytes, 'number', `lag of ${m.Member} from Patroni's xlog positions`);
    }
    return patroni;
  }

  it('shows the same leader and replicas as patronictl, also after a switchover', async () => {
    await lab.waitForHealthy();
    const before = await compare('bootstrap');
    const { to } = await lab.switchover();
    await lab.waitForHealthy();
    const after = await compare(`after switchover to ${to}`);
    assert.notEqual(after.leader, before.leader);
    assert.equal(after.leader, `127.0.0.1:${lab.nodes.find((n) => n.name === to)!.pgPort}`);
  });
});
