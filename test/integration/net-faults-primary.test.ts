/**
 * A primary that vanishes without a packet (NetLab black hole), under load through
 * pg-consul's Pool: Consul moves, Consul stays silent, and the old primary comes back still
 * believing it is the primary.
 */
import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { OutcomeUnknownError } from '../../lib/index.js';
import { FaultLoad } from '../../lib/testing/fault-load.js';
import { waitUntil } from '../../lib/testing/wait-until.js';
import { checkLoad, sleep, startNetFaultEnv } from '../support/net-fault-fixture.js';
import type { NetFaultEnv } from '../support/net-fault-fixture.js';

/**
 * Starts the load through a Pool, black-holes node1 after 1 s and promotes node2 1 s later;
 * the caller then tells Consul.
 */
async function cutThenPromote(env: NetFaultEnv): Promise<{ load: FaultLoad; cutAt: number; moveAt: number }> {
  const pool = env.newPool({ failoverTimeoutMillis: 10_000 });
  const load = await FaultLoad.start({ write: (t, v) => pool.query(t, v), read: (t) => pool.replica.query(t), writers: 4, readers: 2 });
  await sleep(1_000);
  env.lab.blackHole('node1');
  // Taken once the link is down: a write node1 answered while `ip link set` ran went through before the cut.
  const cutAt = Date.now();
  await sleep(1_000);
  await env.cluster.promote('node2');
  return { load, cutAt, moveAt: Date.now() };
}

describe('network faults: black-holed primary', function () {
  this.timeout(90_000);
  let env: NetFaultEnv | undefined;
  afterEach(async () => {
    await env?.stop();
    env = undefined;
  });

  it('Consul moves the primary 1 s after the cut: in-flight writes end as OutcomeUnknownError, writes resume on the new primary, no caller hangs', async () => {
    env = await startNetFaultEnv();
    const { load, cutAt, moveAt } = await cutThenPromote(env);
    env.advertise('node2', ['node1']);
    await waitUntil('a write acknowledged by node2', 10_000, async () => load.firstAckOn(env!.server('node2'), moveAt) !== undefined).catch(() => undefined);
    await sleep(1_000);
    const inFlightAtCut = load.ops.filter((o) => o.kind === 'write' && o.startedAt < cutAt && (o.endedAt ?? Infinity) > cutAt);
    await checkLoad(env, load, { settleBoundMillis: 5_000, finalPrimary: 'node2', notPrimary: [{ server: env.server('node1'), since: cutAt }] });
    assert.ok(load.firstAckOn(env.server('node2'), moveAt) !== undefined, 'writes reach the new primary');
    for (const op of inFlightAtCut) {
      // A success can only be an answer that crossed the link before it went down, its
      // callback run a few ms later on a loaded machine; anything else ends typed.
      const answeredBeforeCut = op.error === undefined && (op.endedAt ?? Infinity) - cutAt < 100;
      assert.ok(
        op.error instanceof OutcomeUnknownError || answeredBeforeCut,
        `write #${op.id} in flight at the cut (started ${cutAt - op.startedAt} ms before it, ended ${(op.endedAt ?? NaN) - cutAt} ms after) ends as OutcomeUnknownError, not ${String(op.error ?? 'success')}`,
      );
    }
  });

  it('Consul stays silent: every caller settles within the detection bound (5 s); after heal the node is used again without restart', async () => {
    env = await startNetFaultEnv();
    const pool = env.newPool({ failoverTimeoutMillis: 2_000 });
    const unreachable: unknown[] = [];
    (pool as unknown as EventEmitter).on('unreachable', (e: unknown) => unreachable.push(e));
    const load = await FaultLoad.start({ write: (t, v) => pool.query(t, v), read: (t) => pool.replica.query(t), writers: 4, readers: 2 });
    await sleep(1_000);
    env.lab.blackHole('node1');
    await sleep(6_000);
    const stuck = load.slowerThan(5_000);
    env.lab.heal('node1');
    const healAt = Date.now();
    await waitUntil('a write acknowledged by node1 after heal', 15_000, async () => load.firstAckOn(env!.server('node1'), healAt) !== undefined).catch(() => undefined);
    assert.equal(stuck.length, 0, `${stuck.length} callers did not settle within 5 s of the cut while the primary was black-holed`);
    assert.ok(unreachable.length > 0, "the pool emitted 'unreachable' for the black-holed primary");
    assert.ok(load.firstAckOn(env.server('node1'), healAt) !== undefined, 'the healed primary takes writes again');
    await checkLoad(env, load, { settleBoundMillis: 5_000, finalPrimary: 'node1' });
  });

  it('the partition heals and the old primary comes back still believing it is primary: it gets no write', async () => {
    env = await startNetFaultEnv();
    const { load, cutAt, moveAt } = await cutThenPromote(env);
    // Consul names node2; node1 is still registered (as a replica) and still runs as a primary.
    env.advertise('node2');
    await sleep(1_500);
    env.lab.heal('node1');
    const [row] = await env.cluster.query('node1', 'SELECT pg_is_in_recovery() AS r');
    assert.equal(row?.['r'], false, 'node1 came back believing it is the primary');
    await sleep(3_000);
    await checkLoad(env, load, { settleBoundMillis: 5_000, finalPrimary: 'node2', notPrimary: [{ server: env.server('node1'), since: cutAt }] });
    assert.ok(load.firstAckOn(env.server('node2'), moveAt) !== undefined, 'writes reach the new primary');
  });
});
