/**
 * Fake lag-monitor clients for unit tests: a scriptable cluster of WAL positions, no network.
 */
import type { MonitorClient, MonitorClientFactory } from '../../../lib/routing/lag-monitor.js';
import { PRIMARY_LAG_QUERY, REPLICA_LAG_QUERY } from '../../../lib/routing/lag-monitor.js';
import type { DiscoveredNode } from '../../../lib/topology/node.js';

/** WAL positions and failures, by address, that the fake clients report. */
export class FakeWal {
  /** `pg_current_wal_lsn()` of each primary. */
  readonly primary = new Map<string, string>();
  /** `pg_last_wal_replay_lsn()` (and receive) of each replica. */
  readonly replay = new Map<string, string | null>();
  /** Addresses whose queries fail. */
  readonly failing = new Set<string>();
  /** Addresses whose queries never answer (until `release()`). */
  readonly hanging = new Set<string>();
  /** Every client created. */
  readonly clients: FakeMonitorClient[] = [];
  #held: Array<() => void> = [];

  /** The factory to give the monitor. */
  readonly factory: MonitorClientFactory = (node) => {
    const c = new FakeMonitorClient(node, this);
    this.clients.push(c);
    return c;
  };

  /** Queries sent so far. */
  get queries(): number {
    return this.clients.reduce((n, c) => n + c.queries, 0);
  }

  /** Holds a query until {@link FakeWal.release}. */
  hold(): Promise<void> {
    return new Promise((resolve) => this.#held.push(resolve));
  }

  /** Lets held queries answer. */
  release(): void {
    for (const r of this.#held.splice(0)) r();
  }
}

/** One fake connection. */
export class FakeMonitorClient implements MonitorClient {
  queries = 0;
  ended = false;
  constructor(
    readonly node: DiscoveredNode,
    readonly wal: FakeWal,
  ) {}

  async connect(): Promise<unknown> {
    return this;
  }

  async query(text: string): Promise<{ rows: Array<Record<string, unknown>> }> {
    this.queries++;
    if (this.ended) throw new Error('Client was closed and is not queryable');
    const a = this.node.address;
    if (this.wal.hanging.has(a)) await this.wal.hold();
    if (this.wal.failing.has(a)) throw Object.assign(new Error('Connection terminated unexpectedly'), {});
    if (text === PRIMARY_LAG_QUERY) return { rows: [{ lsn: this.wal.primary.get(a) ?? null }] };
    if (text === REPLICA_LAG_QUERY) {
      const r = this.wal.replay.has(a) ? this.wal.replay.get(a)! : null;
      return { rows: [{ replay: r, receive: r }] };
    }
    throw new Error(`unexpected query ${text}`);
  }

  async end(): Promise<void> {
    this.ended = true;
  }

  on(): this {
    return this;
  }
}
