/**
 * `pg-consul/testing`: real components for tests and demos of code that uses pg-consul —
 * a Consul HTTP API double, real PostgreSQL streaming clusters, and a Patroni lab.
 *
 * @example
 * ```ts
 * import { PatroniLab } from 'pg-consul/testing';
 * const lab = await PatroniLab.start();  // 3 Patroni nodes on a Consul double
 * console.log(lab.consul.url, lab.serviceName, await lab.waitForHealthy());
 * await lab.switchover();
 * await lab.stop();
 * ```
 * @module
 */
export * from './consul-double.js';
export { PgCluster } from './pg-cluster.js';
export type { PgAppUser, PgClusterOptions, PgNodeInfo, PgStopMode } from './pg-cluster.js';
export { PatroniLab } from './patroni-lab.js';
export type { LabHealth, LabHealthView, PatroniLabNode, PatroniLabOptions, SwitchoverTiming } from './patroni-lab.js';
export { freePort, freePorts } from './free-port.js';
export { findPgBin } from './pg-tools.js';
export * from './workload.js';
export * from './failover-drill.js';
export { NetLab } from './net-lab.js';
export type { NetLabOptions, NetLabRunResult } from './net-lab.js';
export type { PgNetwork } from './pg-tools.js';
export { FaultLoad } from './fault-load.js';
export type { FaultLoadOptions, FaultLoadQuery, FaultLoadResult, FaultOp } from './fault-load.js';
