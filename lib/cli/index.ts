#!/usr/bin/env node
/**
 * The `pg-consul` command line: `status`, `watch` and `check`, configured like the library
 * (options file via `--config`, `CONSUL_*`, `PGCONSUL_*` and `PG*` environment variables).
 * See docs/cli.md.
 * @module
 */
import { parseArgs } from 'node:util';
import { Pool } from '../pool.js';
import type { PoolOptions } from '../options.js';
import { resolveOptions } from '../options.js';
import { createPgProbe } from '../discovery/pg-probe.js';
import { loadOptionsFile, settingSources } from './config.js';
import { buildRows, formatTable, readHealthEntries, readPatroniView } from './status.js';
import { resolveDiscoveryOptions } from '../options.js';
import { patroniKvPrefix } from '../discovery/patroni-kv-source.js';
import { EXIT, runChecks } from './check.js';
import type { TopologySnapshot } from '../topology/snapshot.js';

const USAGE = `Usage: pg-consul <status|watch|check> [--config file.json] [--service name] [--json] [--timeout ms]

  status   one table of the cluster: Consul, Patroni, verified role, routing
  watch    the same, live; every topology change timestamped (Ctrl-C to stop)
  check    effective configuration with sources, and a diagnosis (exit code 0 = ready)
`;

interface Cli {
  readonly command: string;
  readonly options: PoolOptions;
  readonly json: boolean;
  readonly timeoutMillis: number;
}

function parse(argv: readonly string[]): Cli {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      service: { type: 'string', short: 's' },
      json: { type: 'boolean', default: false },
      timeout: { type: 'string', default: '5000' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const command = values.help ? 'help' : (positionals[0] ?? 'help');
  const timeoutMillis = Number(values.timeout);
  if (!Number.isInteger(timeoutMillis) || timeoutMillis < 1) throw new TypeError('pg-consul: --timeout must be a positive integer (ms)');
  const file = values.config === undefined ? {} : loadOptionsFile(values.config);
  const options: PoolOptions = values.service === undefined ? file : { ...file, service: values.service };
  return { command, options, json: values.json, timeoutMillis };
}

function out(text: string): void {
  process.stdout.write(text);
}

async function rowsFor(pool: Pool, cli: Cli, topology: TopologySnapshot): Promise<Awaited<ReturnType<typeof buildRows>>> {
  const resolved = resolveOptions(cli.options);
  const discovery = resolveDiscoveryOptions(cli.options, resolved.service);
  const readsKv = discovery.mode === 'auto' || discovery.mode === 'patroni' || discovery.mode === 'patroni+health';
  const [entries, patroni] = await Promise.all([
    readHealthEntries(resolved, cli.timeoutMillis),
    readsKv ? readPatroniView(resolved, patroniKvPrefix(discovery.patroni.namespace, discovery.patroni.scope), cli.timeoutMillis) : undefined,
  ]);
  return buildRows(resolved, entries, topology, createPgProbe(resolved.pg, Math.min(cli.timeoutMillis, 3_000)), patroni);
}

/**
 * `watch`'s pacing between two discovery requests unless the options file sets
 * `discoveryMinIntervalMillis`: the library's 100 ms is shared by the health and KV watches
 * of one Pool, so right after start a change waited up to ~160 ms for the second blocking
 * request (bench/cli-watch.ts). One operator's process may ask a little faster.
 */
const WATCH_MIN_INTERVAL_MILLIS = 20;

function newPool(cli: Cli, defaults: PoolOptions = {}): Pool {
  const pool = new Pool({ ...defaults, ...cli.options });
  pool.on('error', () => undefined);
  return pool;
}

async function status(cli: Cli): Promise<number> {
  const pool = newPool(cli);
  try {
    let topology: TopologySnapshot;
    try {
      topology = await pool.ready(cli.timeoutMillis);
    } catch {
      topology = pool.topology;
    }
    const rows = await rowsFor(pool, cli, topology);
    out(cli.json ? `${JSON.stringify({ service: pool.service, primary: topology.primary?.address ?? null, rows }, null, 2)}\n` : formatTable(pool.service, rows));
    return topology.primary ? EXIT.ok : EXIT.noPrimary;
  } finally {
    await pool.end();
  }
}

function describeChange(previous: TopologySnapshot, current: TopologySnapshot): string {
  const was = previous.primary?.address ?? 'none';
  const now = current.primary?.address ?? 'none';
  const replicas = current.replicas.map((n) => n.address).join(',') || 'none';
  return was === now ? `topology v${current.version}: primary ${now}, replicas ${replicas}` : `topology v${current.version}: primary ${was} -> ${now}, replicas ${replicas}`;
}

async function watch(cli: Cli): Promise<number> {
  const pool = newPool(cli, { discoveryMinIntervalMillis: WATCH_MIN_INTERVAL_MILLIS });
  let rendering = Promise.resolve();
  const render = (topology: TopologySnapshot): void => {
    rendering = rendering
      .then(async () => {
        const rows = await rowsFor(pool, cli, topology);
        out(cli.json ? `${JSON.stringify({ at: new Date().toISOString(), type: 'status', rows })}\n` : formatTable(pool.service, rows));
      })
      .catch((error: unknown) => out(`${new Date().toISOString()} status failed: ${(error as Error).message}\n`));
  };
  pool.on('topology', ({ previous, current }) => {
    const at = new Date().toISOString();
    out(cli.json
      ? `${JSON.stringify({ at, type: 'topology', version: current.version, from: previous.primary?.address ?? null, to: current.primary?.address ?? null, replicas: current.replicas.map((n) => n.address) })}\n`
      : `${at} ${describeChange(previous, current)}\n`);
    render(current);
  });
  pool.on('discoveryError', ({ error }) => out(`${new Date().toISOString()} discovery error: ${error.message}\n`));
  await new Promise<void>((resolve) => {
    // pg-consul unrefs its timers and sockets; this keeps the process alive until a signal.
    const keepAlive = setInterval(() => undefined, 1 << 30);
    const stop = (): void => {
      clearInterval(keepAlive);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await rendering;
  await pool.end();
  return EXIT.ok;
}

async function check(cli: Cli): Promise<number> {
  const sources = settingSources(cli.options, process.env);
  let resolved;
  try {
    resolved = resolveOptions(cli.options);
  } catch (error) {
    if (cli.json) out(`${JSON.stringify({ settings: sources, findings: [{ level: 'fail', message: (error as Error).message }], exitCode: EXIT.config })}\n`);
    else out(`${sources.map((s) => `  ${s.setting} = ${s.value}  (${s.source})`).join('\n')}\nFAIL ${(error as Error).message}\n`);
    return EXIT.config;
  }
  const result = await runChecks(resolved, createPgProbe(resolved.pg, Math.min(cli.timeoutMillis, 3_000)), cli.timeoutMillis);
  if (cli.json) {
    out(`${JSON.stringify({ settings: sources, findings: result.findings, exitCode: result.exitCode }, null, 2)}\n`);
  } else {
    out(`Effective configuration:\n${sources.map((s) => `  ${s.setting} = ${s.value}  (${s.source})`).join('\n')}\n\n`);
    for (const f of result.findings) out(`${f.level === 'ok' ? 'OK  ' : 'FAIL'} ${f.message}\n${f.hint === undefined ? '' : `     hint: ${f.hint}\n`}`);
  }
  return result.exitCode;
}

async function main(argv: readonly string[]): Promise<number> {
  let cli: Cli;
  try {
    cli = parse(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}`);
    return EXIT.config;
  }
  try {
    switch (cli.command) {
      case 'status':
        return await status(cli);
      case 'watch':
        return await watch(cli);
      case 'check':
      case 'doctor':
        return await check(cli);
      case 'help':
        out(USAGE);
        return EXIT.ok;
      default:
        process.stderr.write(`pg-consul: unknown command "${cli.command}"\n${USAGE}`);
        return EXIT.config;
    }
  } catch (error) {
    process.stderr.write(`pg-consul: ${(error as Error).message}\n`);
    return error instanceof TypeError ? EXIT.config : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
