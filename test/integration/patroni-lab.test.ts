import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { PatroniLab } from '../../lib/testing/patroni-lab.js';
import { processAlive, processTree } from '../../lib/testing/processes.js';

interface HealthEntry {
  Service: { ID: string; Service: string; Tags: string[]; Address: string; Port: number };
  Checks: { CheckID: string; Status: string }[];
}

function getJson(url: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : (JSON.parse(text) as unknown) });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function passingEntries(lab: PatroniLab): Promise<HealthEntry[]> {
  const res = await getJson(`${lab.consul.url}/v1/health/service/${lab.serviceName}?passing`);
  assert.equal(res.status, 200);
  return res.body as HealthEntry[];
}

const elapsed = (from: number, to = Date.now()): string => `${((to - from) / 1000).toFixed(1)} s`;

/** The checks both modes must pass: bootstrap picture, switchover, stop. */
function commonChecks(getLab: () => PatroniLab): void {
  it('registers the leader with master+primary tags and the replicas with replica, all passing', async function () {
    const lab = getLab();
    const { primary, replicas } = await lab.waitForHealthy();
    assert.equal(await lab.leader(), primary);
    const entries = await passingEntries(lab);
    assert.equal(entries.length, 3);
    for (const e of entries) {
      const name = e.Service.ID.slice(`${lab.scope}/`.length);
      const node = lab.nodes.find((n) => n.name === name);
      assert.ok(node, `unknown service id ${e.Service.ID}`);
      assert.equal(e.Service.ID, `${lab.scope}/${name}`);
      assert.equal(e.Service.Service, lab.serviceName);
      assert.equal(e.Service.Address, '127.0.0.1');
      assert.equal(e.Service.Port, node.pgPort);
      assert.ok(e.Checks.every((c) => c.Status === 'passing'));
      if (name === primary) {
        assert.ok(e.Service.Tags.includes('master') && e.Service.Tags.includes('primary'), `leader tags ${e.Service.Tags.join(',')}`);
      } else {
        assert.deepEqual(e.Service.Tags, ['replica']);
      }
    }
    assert.deepEqual(
      replicas,
      lab.nodes
        .map((n) => n.name)
        .filter((n) => n !== primary)
        .sort(),
    );
  });

  it('switches over: the leader key moves and the health view follows', async function () {
    const lab = getLab();
    const before = await lab.leader();
    const t = await lab.switchover();
    assert.equal(t.from, before);
    assert.notEqual(t.to, before);
    assert.ok(t.startedAt <= t.leaderKeyMovedAt && t.leaderKeyMovedAt <= t.registeredAt);
    console.log(`      [${lab.mode}] switchover ${t.from} -> ${t.to}: leader key moved after ${elapsed(t.startedAt, t.leaderKeyMovedAt)}, sole passing primary after ${elapsed(t.startedAt, t.registeredAt)}`);
    assert.equal(await lab.leader(), t.to);
    const t0 = Date.now();
    const healthy = await lab.waitForHealthy();
    console.log(`      [${lab.mode}] old leader back as a passing replica after ${elapsed(t.startedAt)} (${elapsed(t0)} after registration)`);
    assert.equal(healthy.primary, t.to);
    assert.ok(healthy.replicas.includes(t.from));
  });
}

/** kill -9 of the leader's agent: another member takes the leader key and registers as primary. */
function agentKillCheck(getLab: () => PatroniLab): void {
  it("fails over when the leader's agent is killed with -9", async function () {
    const lab = getLab();
    const old = await lab.leader();
    const t0 = Date.now();
    await lab.killPatroni(old);
    const next = await lab.waitForLeader((n) => n !== old, 60_000);
    const tLeader = Date.now();
    const healthy = await lab.waitForHealthy(60_000, lab.nodes.length - 2);
    console.log(`      [${lab.mode}] kill -9 of ${old}'s agent: new leader ${next} after ${elapsed(t0, tLeader)}, sole passing primary after ${elapsed(t0)}`);
    assert.notEqual(next, old);
    assert.equal(healthy.primary, next);
    const entries = await passingEntries(lab);
    assert.ok(!entries.some((e) => e.Service.ID === `${lab.scope}/${old}`), 'the dead agent’s service is not passing');
  });
}

/** Recovery: the killed agent comes back as a replica; a killed leader postmaster fails over. */
function recoveryChecks(getLab: () => PatroniLab): void {
  it('restartPatroni() brings the killed agent back as a passing replica', async function () {
    const lab = getLab();
    const h = await lab.health();
    const dead = lab.nodes.map((n) => n.name).find((n) => !h.primaries.includes(n) && !h.replicas.includes(n));
    assert.ok(dead, 'a member with a dead agent');
    const leader = await lab.leader();
    const t0 = Date.now();
    await lab.restartPatroni(dead);
    const healthy = await lab.waitForHealthy(60_000);
    console.log(`      [${lab.mode}] ${dead} rejoined as a passing replica ${elapsed(t0)} after its agent restarted`);
    assert.equal(healthy.primary, leader);
    assert.ok(healthy.replicas.includes(dead));
  });

  it("fails over when the leader's postmaster is killed with -9 (primary_start_timeout 0)", async function () {
    const lab = getLab();
    const old = await lab.leader();
    const t0 = Date.now();
    await lab.killPostgres(old);
    const next = await lab.waitForLeader((n) => n !== old, 60_000);
    const tLeader = Date.now();
    const healthy = await lab.waitForHealthy(60_000);
    console.log(`      [${lab.mode}] kill -9 of ${old}'s postmaster: new leader ${next} after ${elapsed(t0, tLeader)}, all passing again (old leader a replica) after ${elapsed(t0)}`);
    assert.equal(healthy.primary, next);
    assert.ok(healthy.replicas.includes(old));
  });
}

function stopCheck(getLab: () => PatroniLab): void {
  it('stop() leaves no agent or postgres process and no dir behind', async function () {
    const lab = getLab();
    const pids = processTree([], [lab.baseDir]);
    assert.ok(pids.length >= 3, `expected the lab's processes, found ${pids.length}`);
    await lab.stop();
    await lab.stop();
    assert.deepEqual(
      pids.filter((p) => processAlive(p)),
      [],
    );
    assert.deepEqual(processTree([], [lab.baseDir]), []);
    assert.equal(existsSync(lab.baseDir), false);
  });
}

describe('PatroniLab', function () {
  this.timeout(120_000);

  describe('with Patroni 3.0.2', function () {
    let lab: PatroniLab | undefined;
    const getLab = (): PatroniLab => {
      assert.ok(lab);
      return lab;
    };

    before(async function () {
      const t0 = Date.now();
      lab = await PatroniLab.start({ mode: 'patroni' });
      console.log(`      [patroni] bootstrap to 1 leader + 2 passing replicas: ${elapsed(t0)}`);
    });
    after(async function () {
      await lab?.stop();
    });

    commonChecks(getLab);
    agentKillCheck(getLab);
    recoveryChecks(getLab);
    stopCheck(getLab);
  });

  describe('fallback mode (PGCONSUL_LAB_NO_PATRONI=1)', function () {
    let lab: PatroniLab | undefined;
    const getLab = (): PatroniLab => {
      assert.ok(lab);
      return lab;
    };
    let saved: string | undefined;

    before(async function () {
      saved = process.env['PGCONSUL_LAB_NO_PATRONI'];
      process.env['PGCONSUL_LAB_NO_PATRONI'] = '1';
      const t0 = Date.now();
      lab = await PatroniLab.start({ ttl: 2 });
      console.log(`      [fallback] bootstrap: ${elapsed(t0)}`);
    });
    after(async function () {
      if (saved === undefined) delete process.env['PGCONSUL_LAB_NO_PATRONI'];
      else process.env['PGCONSUL_LAB_NO_PATRONI'] = saved;
      await lab?.stop();
    });

    it('chose the fallback because of the environment variable', function () {
      assert.equal(getLab().mode, 'fallback');
    });
    commonChecks(getLab);
    agentKillCheck(getLab);
    recoveryChecks(getLab);
    stopCheck(getLab);
  });
});
