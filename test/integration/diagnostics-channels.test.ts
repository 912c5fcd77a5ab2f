/**
 * The diagnostics channels on a real cluster: `pg-consul:query` tells where statements were
 * routed, and a switchover shows up on `pg-consul:topology`, `pg-consul:retry` and
 * `pg-consul:failover` with the same payloads as the Pool events.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { FAILOVER_CHANNEL, QUERY_CHANNEL, RETRY_CHANNEL, TOPOLOGY_CHANNEL } from '../../lib/index.js';
import type { FailoverChannelMessage, FailoverEvent, QueryChannelMessage, RetryChannelMessage, RetryEvent, TopologyChannelMessage } from '../../lib/index.js';
import { waitUntil } from '../../lib/testing/wait-until.js';
import { useClusterFixture } from '../support/cluster-fixture.js';

/** Subscribes to `name` for the current test; returns the messages seen. */
function capture<T>(name: string): { messages: T[]; stop: () => void } {
  const messages: T[] = [];
  const listener = (m: unknown): void => {
    messages.push(m as T);
  };
  diagnostics.subscribe(name, listener);
  return { messages, stop: () => diagnostics.unsubscribe(name, listener) };
}

describe('diagnostics channels (real PostgreSQL)', function () {
  this.timeout(120_000);
  const fx = useClusterFixture('diagchan');
  const stops: (() => void)[] = [];
  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
  });
  function sub<T>(name: string): T[] {
    const c = capture<T>(name);
    stops.push(c.stop);
    return c.messages;
  }
  /** Channels are process-wide: keep the messages about this fixture's nodes. */
  function ours(address: string | undefined): boolean {
    return fx.cluster.nodes.some((n) => address === `127.0.0.1:${n.port}`);
  }

  it('publishes where each statement was routed on pg-consul:query', async () => {
    const all = sub<QueryChannelMessage>(QUERY_CHANNEL);
    const pool = fx.newPool();
    await pool.query('SELECT 1');
    await pool.replica.query('SELECT 2');
    const queries = all.filter((q) => ours(q.node));
    const primary = fx.cluster.primaryName();
    const primaryAddress = `127.0.0.1:${fx.portOf(primary)}`;
    const replicaAddresses = fx.cluster.nodes.filter((n) => n.name !== primary).map((n) => `127.0.0.1:${n.port}`);
    assert.equal(queries.length, 2, JSON.stringify(queries));
    assert.deepEqual({ ...queries[0]!, name: undefined }, { intent: 'primary', role: 'primary', node: primaryAddress, name: undefined, attempt: 1 });
    assert.equal(typeof queries[0]!.name, 'string');
    assert.equal(queries[1]!.intent, 'replica');
    assert.equal(queries[1]!.role, 'replica');
    assert.equal(queries[1]!.attempt, 1);
    assert.ok(replicaAddresses.includes(queries[1]!.node), `${queries[1]!.node} is a replica`);
  });

  it('publishes the first topology of a Pool on pg-consul:topology', async () => {
    const topologies = sub<TopologyChannelMessage>(TOPOLOGY_CHANNEL);
    const pool = fx.newPool();
    await pool.query('SELECT 1');
    const primary = fx.cluster.primaryName();
    const mine = topologies.find((t) => ours(t.current.primary) && t.current.primary === `127.0.0.1:${fx.portOf(primary)}` && t.previous.primary === undefined);
    assert.ok(mine, JSON.stringify(topologies));
    assert.equal(mine.current.replicas.length, 2);
    assert.deepEqual([...mine.current.readReplicas].sort(), [...mine.current.replicas].sort());
    assert.deepEqual(mine.current.unreachable, []);
    assert.ok(mine.current.version > mine.previous.version);
  });

  it('a switchover shows on pg-consul:topology, pg-consul:retry and pg-consul:failover', async () => {
    const pool = fx.newPool();
    await pool.query('SELECT 1');
    const allTopologies = sub<TopologyChannelMessage>(TOPOLOGY_CHANNEL);
    const allRetries = sub<RetryChannelMessage>(RETRY_CHANNEL);
    const allFailovers = sub<FailoverChannelMessage>(FAILOVER_CHANNEL);
    const allQueries = sub<QueryChannelMessage>(QUERY_CHANNEL);
    const retryEvents: RetryEvent[] = [];
    const failoverEvents: FailoverEvent[] = [];
    pool.on('retry', (e) => retryEvents.push(e));
    pool.on('failover', (e) => failoverEvents.push(e));

    const oldPrimary = fx.cluster.primaryName();
    const newPrimary = fx.cluster.nodes.find((n) => n.name !== oldPrimary)!.name;
    await fx.cluster.switchover(newPrimary);
    // The old primary is down and still advertised: the write fails and is retried.
    const write = pool.query('SELECT 1 AS ok');
    await waitUntil('a retry on pg-consul:retry', 20_000, async () => allRetries.some((r) => ours(r.node)));
    fx.advertise(newPrimary, [oldPrimary]);
    const result = await write;
    assert.equal(result.rows[0]?.ok, 1);

    const oldAddress = `127.0.0.1:${fx.portOf(oldPrimary)}`;
    const newAddress = `127.0.0.1:${fx.portOf(newPrimary)}`;
    for (const e of retryEvents) assert.ok(allRetries.includes(e), 'the retry channel carries the retry event payloads');
    const retries = allRetries.filter((r) => retryEvents.includes(r));
    assert.equal(retries.length, retryEvents.length);
    assert.equal(retries[0]!.role, 'primary');
    assert.equal(retries[0]!.node, oldAddress);
    assert.equal(retries[0]!.attempt, 1);
    assert.ok(retries[0]!.error instanceof Error);

    await waitUntil('a message on pg-consul:failover', 10_000, async () => allFailovers.some((f) => ours(f.to.address)));
    const failovers = allFailovers.filter((f) => ours(f.to.address));
    assert.equal(failovers.length, 1);
    assert.equal(failovers[0], failoverEvents[0], 'the failover channel carries the failover event payload');
    assert.equal(failovers[0]!.from?.address, oldAddress);
    assert.equal(failovers[0]!.to.address, newAddress);
    assert.ok(failovers[0]!.durationMillis >= failovers[0]!.sinceTopologyChangeMillis);

    const topologies = allTopologies.filter((t) => [t.previous, t.current].some((x) => [x.primary, ...x.replicas, ...x.unreachable].some(ours)));
    // The old primary leaves (fenced as unreachable by the dead-peer probe, or dropped by the
    // Consul update), then the new one is named: one or two messages.
    assert.ok(topologies.some((t) => t.previous.primary === oldAddress && t.current.primary !== oldAddress), JSON.stringify(topologies));
    const named = topologies.find((t) => t.current.primary === newAddress && t.previous.primary !== newAddress);
    assert.ok(named, JSON.stringify(topologies));
    assert.ok(!named.current.replicas.includes(oldAddress) && !named.current.replicas.includes(newAddress));
    for (let i = 1; i < topologies.length; i++) assert.deepEqual(topologies[i]!.previous, topologies[i - 1]!.current, 'messages chain');

    const queries = allQueries.filter((q) => ours(q.node));
    assert.equal(queries[0]!.node, oldAddress, 'the first attempt went to the old primary');
    const last = queries.at(-1)!;
    assert.deepEqual({ intent: last.intent, role: last.role, node: last.node }, { intent: 'primary', role: 'primary', node: newAddress });
    assert.ok(last.attempt > 1, 'the attempt that succeeded is a retry');
  });
});
