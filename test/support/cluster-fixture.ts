/**
 * The fixture most integration suites share: a real PostgreSQL primary + 2 streaming
 * replicas (PgCluster), a Consul double advertising them like Patroni does, and a factory of
 * pg-consul Pools that are all ended after each test. Registers its own mocha hooks.
 */
import { Pool } from '../../lib/index.js';
import type { PoolOptions } from '../../lib/index.js';
import { ConsulDouble } from '../../lib/testing/consul-double.js';
import { PgCluster } from '../../lib/testing/pg-cluster.js';
import { advertise } from './advertise.js';

/** What a suite gets from {@link useClusterFixture}; fields are set once `before` ran. */
export interface ClusterFixture {
  /** The PostgreSQL cluster. */
  readonly cluster: PgCluster;
  /** The Consul double. */
  readonly consul: ConsulDouble;
  /** A Pool on the fixture's service, ended automatically after the test. */
  newPool(extra?: PoolOptions): Pool;
  /** (Re-)registers the nodes: `primary` with master+primary, the rest replica; `exclude`d or stopped ones deregistered. */
  advertise(primary: string | undefined, exclude?: readonly string[]): void;
  /** PostgreSQL port of a node. */
  portOf(name: string): number;
  /** Ends every Pool made so far. */
  endPools(): Promise<void>;
}

/**
 * Sets up the fixture for the current `describe` block.
 * @param service Consul service name
 * @param token Consul ACL token the double requires (and pools send), if any
 * @param defaults pool options every `newPool` starts from
 */
export function useClusterFixture(service: string, token?: string, defaults: PoolOptions = {}): ClusterFixture {
  const pools: Pool[] = [];
  let cluster: PgCluster | undefined;
  let consul: ConsulDouble | undefined;
  const endPools = async (): Promise<void> => {
    await Promise.all(pools.splice(0).map((p) => (p.ending ? Promise.resolve() : p.end())));
  };
  const fixture: ClusterFixture = {
    get cluster() {
      if (!cluster) throw new Error('the cluster fixture is not started yet');
      return cluster;
    },
    get consul() {
      if (!consul) throw new Error('the cluster fixture is not started yet');
      return consul;
    },
    newPool(extra: PoolOptions = {}): Pool {
      const pool = new Pool({
        service,
        consul: { host: '127.0.0.1', port: fixture.consul.port, ...(token === undefined ? {} : { token }), waitSeconds: 5 },
        user: fixture.cluster.appUser.user,
        password: fixture.cluster.appUser.password,
        database: fixture.cluster.appUser.database,
        max: 8,
        failoverTimeoutMillis: 30_000,
        discoveryMinIntervalMillis: 20,
        ...defaults,
        ...extra,
      });
      pools.push(pool);
      return pool;
    },
    advertise: (primary, exclude = []) => advertise(fixture.consul, fixture.cluster, service, primary, exclude),
    portOf: (name) => fixture.cluster.node(name).port,
    endPools,
  };
  before(async () => {
    [cluster, consul] = await Promise.all([
      PgCluster.start({ replicas: 2 }),
      ConsulDouble.start(token === undefined ? {} : { aclToken: token }),
    ]);
    fixture.advertise(cluster.primaryName());
  });
  afterEach(endPools);
  after(async () => {
    await endPools();
    await consul?.stop();
    await cluster?.destroy();
  });
  return fixture;
}
