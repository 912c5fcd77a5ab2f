/**
 * A replica, then the Consul agent, vanishing without a packet (NetLab black hole), under
 * load through pg-consul's Pool.
 */
import assert from 'node:assert/strict';
import { FaultLoad } from '../../lib/testing/fault-load.js';
import { waitUntil } from '../../lib/testing/wait-until.js';
import { checkLoad, sleep, startNetFaultEnv } from '../support/net-fault-fixture.js';
import type { NetFaultEnv } from '../support/net-fault-fixture.js';

describe('network faults: black-holed replica and Consul agent', function () {
  this.timeout(90_000);
  let env: NetFaultEnv | undefined;
  afterEach(async () => {
    await env?.stop();
    env = undefined;
  });

  it('a black-holed replica with reads in flight: 0 read errors, no caller hangs, writes unaffected', async () => {
    env = await startNetFaultEnv();
    const pool = env.newPool();
    const load = await FaultLoad.start({ write: (t, v) => pool.query(t, v), read: (t) => pool.replica.query(t), writers: 2, readers: 4 });
    await waitUntil('reads answered by node3', 10_000, async () => load.ops.some((o) => o.kind === 'read' && o.server === env!.server('node3')));
    const cutAt = Date.now();
    env.lab.blackHole('node3');
    await sleep(6_000);
    const readsAfter = load.ops.filter((o) => o.kind === 'read' && o.startedAt > cutAt + 5_000 && o.error === undefined);
    await checkLoad(env, load, { settleBoundMillis: 5_000, finalPrimary: 'node1', noReadErrors: true });
    assert.ok(readsAfter.length > 0, 'reads go on while node3 is black-holed');
    assert.ok(
      readsAfter.every((o) => o.server !== env!.server('node3')),
      'no read answered by the black-holed replica',
    );
  });

  it('a black-holed Consul agent: the pool keeps the last topology, no false failover, and resumes watching after heal', async () => {
    env = await startNetFaultEnv();
    const pool = env.newPool();
    const failovers: unknown[] = [];
    pool.on('failover', (e) => failovers.push(e));
    const load = await FaultLoad.start({ write: (t, v) => pool.query(t, v), read: (t) => pool.replica.query(t), writers: 2, readers: 2 });
    await waitUntil('the pool to know all three nodes', 10_000, async () => pool.topology.nodes.length === 3);
    const before = pool.topology.nodes.map((n) => n.address).sort();
    env.lab.blackHole('consul');
    await sleep(1_000);
    // While the agent is unreachable, Consul's answer changes: node3 leaves the service.
    env.advertise('node1', ['node3']);
    await sleep(5_000);
    assert.deepEqual(pool.topology.nodes.map((n) => n.address).sort(), before, 'the last topology stays in force while Consul is black-holed');
    assert.equal(load.failures().length, 0, 'no statement fails because Consul is unreachable');
    env.lab.heal('consul');
    const healAt = Date.now();
    await waitUntil('the pool to see node3 leave after heal', 20_000, async () => pool.topology.nodes.length === 2);
    const watchResumedMillis = Date.now() - healAt;
    await checkLoad(env, load, { settleBoundMillis: 5_000, finalPrimary: 'node1', noReadErrors: true });
    assert.equal(load.failures().length, 0, 'no statement failed');
    assert.deepEqual(failovers, [], 'no false failover');
    assert.ok(watchResumedMillis < 20_000);
  });
});
