'use strict';
/**
 * What `require('../')` resolves to when bench/pg-pool-suite.ts runs node-postgres's pg-pool
 * test files on pg-consul: a Pool class built on pg-consul's `Pool` (the built `dist/`).
 *
 * Discovery comes from the environment the bench sets (`PGCONSUL_SERVICE`, `CONSUL_HTTP_ADDR`,
 * `PGCONSUL_DISCOVERY`), also in the child process `idle-timeout.js` forks. `host` / `port`
 * are never given to pg-consul (discovery names the nodes). A test that names an address of
 * its own (a closed port, a silent server) gets, with `PGPOOL_SUITE_HOST_PORT=register` (the
 * default), a one-node service whose only node is that address, registered in the Consul
 * double, so the test still means what it says; with `PGPOOL_SUITE_HOST_PORT=ignore` the
 * address is dropped and the pool follows the suite's cluster.
 */
const { Pool } = require('../dist/index.js');

const mode = process.env.PGPOOL_SUITE_HOST_PORT || 'register';

/** Registers `host:port` as the primary of its own service in the Consul double; returns the service name. */
function registerAddress(host, port) {
  const service = `pg-pool-suite-${String(host).replace(/[^A-Za-z0-9]/g, '-')}-${port}`;
  const body = { ID: `${service}/node`, Name: service, Address: host === 'localhost' ? '127.0.0.1' : host, Port: Number(port), Tags: ['master', 'primary'] };
  globalThis.fetch(`http://${process.env.CONSUL_HTTP_ADDR}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify(body) }).then(
    (res) => {
      if (!res.ok) process.stderr.write(`pg-pool-suite shim: registering ${service} answered ${res.status}\n`);
    },
    (err) => process.stderr.write(`pg-pool-suite shim: registering ${service} failed: ${err.message}\n`),
  );
  return service;
}

/** pg-pool's constructor signature `(options, Client)`, on pg-consul's Pool. */
class SuitePool extends Pool {
  constructor(options, Client) {
    const { host, port, ...rest } = options || {};
    const named = mode === 'register' && (host !== undefined || port !== undefined);
    super(named ? { ...rest, service: registerAddress(host || 'localhost', port || 5432) } : rest, Client);
  }
}

module.exports = SuitePool;
