/**
 * A Patroni cluster on loopback for tests and demos: N real Patroni 3.0.x agents managing N
 * PostgreSQL instances, with the {@link ConsulDouble} as DCS (Patroni registers the
 * `<scope>` service with `master`/`primary` and `replica` tags, as in production). Where
 * Patroni is not installed (or `PGCONSUL_LAB_NO_PATRONI=1`), the lab plays Patroni's role
 * itself on a {@link PgCluster}, with the same API and the same Consul picture.
 *
 * @example
 * ```ts
 * import { PatroniLab } from 'pg-consul/testing';
 * const lab = await PatroniLab.start();
 * try {
 *   const { primary, replicas } = await lab.waitForHealthy();
 *   const t = await lab.switchover();
 *   console.log(`${t.from} -> ${t.to}: leader key moved after ${t.leaderKeyMovedAt - t.startedAt} ms`);
 * } finally {
 *   await lab.stop();
 * }
 * ```
 * @module
 */
import { waitUntil } from './wait-until.js';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { Server } from 'node:http';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { ConsulDouble } from './consul-double.js';
import { freePorts } from './free-port.js';
import { PgCluster } from './pg-cluster.js';
import type { PgAppUser } from './pg-cluster.js';
import { childEnv, chownToPostgres, findPgBin, LOOPBACK_NETWORK, makeOwnedTempDir, postgresOsUser } from './pg-tools.js';
import type { PgNetwork } from './pg-tools.js';
import { postmasterPid, processAlive, processTree, signalAll, waitForExit } from './processes.js';

/** Options of {@link PatroniLab.start}. */
export interface PatroniLabOptions {
  /** Patroni scope = Consul service name (lowercase letters, digits, `-`; default `pglab`). */
  scope?: string;
  /** Number of members (default 3). */
  nodes?: number;
  /**
   * A running Consul (double) to use; by default the lab starts its own double (session TTL
   * minimum 1 s, no check stagger) and stops it in {@link PatroniLab.stop}. A double given
   * here must accept Patroni's session TTL of `ttl / 2` s (`sessionTtlMinSeconds` ≤ ttl / 2).
   */
  consul?: ConsulDouble;
  /** Receives progress lines. */
  log?: (line: string) => void;
  /** Directory to create the lab's temp dir in (default `os.tmpdir()`). */
  baseDir?: string;
  /** Patroni `ttl` in seconds (default 10; the session TTL is half of it). */
  ttl?: number;
  /** Patroni `loop_wait` in seconds (default 1). */
  loopWait?: number;
  /** Patroni `retry_timeout` in seconds (default 3). */
  retryTimeout?: number;
  /** Consul check interval of the registered services (default `1s`; Patroni's default is `5s`). */
  checkInterval?: string;
  /**
   * `patroni` (require Patroni), `fallback` (play Patroni's role on a PgCluster) or `auto`
   * (default: Patroni when installed, unless `PGCONSUL_LAB_NO_PATRONI=1`).
   */
  mode?: 'auto' | 'patroni' | 'fallback';
  /** Directory of PostgreSQL's server binaries (default as {@link PgCluster}). */
  pgBin?: string;
  /** The password user created on the leader (default `app` / `app-secret` / database `app`). */
  appUser?: PgAppUser;
  /**
   * Synchronous replication (Patroni `synchronous_mode: true`; in fallback mode
   * `synchronous_standby_names = '*'` on the leader and the most advanced replica promoted):
   * a commit acknowledged with `synchronous_commit = on` survives a crash failover. Default false.
   */
  synchronousMode?: boolean;
  /**
   * Where the members run (Patroni mode only; default: all on 127.0.0.1 here). With
   * {@link NetLab.placement} each member (Patroni, its REST API and its PostgreSQL) runs in
   * its own network namespace on its own lab address.
   */
  network?: PgNetwork;
  /**
   * `host:port` the Patroni agents use for Consul (default: the double's own address) — e.g.
   * a {@link NetLab.forward} on a lab host, so Patroni can be cut off from Consul.
   */
  patroniConsulAddress?: string;
}

/** One member of a {@link PatroniLab}. */
export interface PatroniLabNode {
  /** Member name, `node1` … `nodeN`. */
  readonly name: string;
  /** Its address: 127.0.0.1 unless {@link PatroniLabOptions.network} places it elsewhere. */
  readonly host: string;
  /** PostgreSQL port. */
  readonly pgPort: number;
  /** Patroni REST API port (in fallback mode, the lab's stand-in REST endpoint). */
  readonly apiPort: number;
  /** PostgreSQL data directory. */
  readonly dataDir: string;
}

/** What {@link PatroniLab.health} returns: the passing members of the Consul service right now, by role. */
export interface LabHealthView {
  /** Members registered as primary, sorted (more than one during a switchover or split brain; none between leaders). */
  primaries: string[];
  /** Members registered as replicas, sorted. */
  replicas: string[];
}

/** Passing members of the Consul service, by role. */
export interface LabHealth {
  /** The member registered as primary. */
  primary: string;
  /** Members registered as replicas, sorted. */
  replicas: string[];
}

/** What {@link PatroniLab.switchover} measured; all times are epoch milliseconds. */
export interface SwitchoverTiming {
  /** The leader before. */
  from: string;
  /** The leader after. */
  to: string;
  /** When the switchover was requested. */
  startedAt: number;
  /** When the Consul KV leader key first named `to`. */
  leaderKeyMovedAt: number;
  /** When `to` was the sole passing primary in `/v1/health/service/<scope>?passing`. */
  registeredAt: number;
}

const DEFAULT_APP_USER: PgAppUser = { user: 'app', password: 'app-secret', database: 'app' };
const NAMESPACE = 'service';

/** PostgreSQL settings for speed (throw-away data only). */
const FAST_PARAMETERS: Readonly<Record<string, string | number>> = {
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  wal_level: 'replica',
  hot_standby: 'on',
  max_wal_senders: 10,
  max_replication_slots: 10,
  wal_keep_size: '256MB',
  wal_retrieve_retry_interval: '200ms',
  shared_buffers: '32MB',
  max_connections: 100,
  jit: 'off',
};

interface HttpResult {
  status: number;
  body: string;
}

/** One HTTP request on a fresh connection (no keep-alive: nothing lingers after it). */
function httpRequest(url: string, method: string, body?: unknown, timeoutMs = 10_000): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = request(url, { method, agent: false, timeout: timeoutMs, headers: payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Finds an executable in PATH. */
function which(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

let cachedPatroni: string | null | undefined;
/** Path of a usable `patroni` (its Python can import `consul`), or null. */
function findPatroni(): string | null {
  if (cachedPatroni !== undefined) return cachedPatroni;
  const path = which('patroni');
  cachedPatroni = null;
  if (path !== undefined) {
    try {
      const shebang = /^#!\s*(\S+)/.exec(readFileSync(path, 'utf8').split('\n')[0] ?? '')?.[1] ?? 'python3';
      execFileSync(shebang, ['-c', 'import consul, patroni'], { stdio: 'ignore', env: childEnv() });
      cachedPatroni = path;
    } catch {
      // Patroni's Python lacks python3-consul: not usable with Consul
    }
  }
  return cachedPatroni;
}

/** Labs not stopped yet: their processes are killed on process exit. */
const live = new Set<PatroniLab>();
let exitHookInstalled = false;

/**
 * A Patroni-managed PostgreSQL cluster on 127.0.0.1 with Consul (by default a
 * {@link ConsulDouble}) as DCS. Patroni runs as the `postgres` OS user when the process is
 * root. In fallback mode (no Patroni installed, or `PGCONSUL_LAB_NO_PATRONI=1`) the lab
 * itself registers the services, moves the leader key, promotes and rejoins nodes, and
 * answers the health checks, so the Consul view behaves the same way.
 *
 * @example
 * ```ts
 * const lab = await PatroniLab.start({ nodes: 3 });
 * await lab.killPatroni(await lab.leader());
 * const next = await lab.waitForLeader((n) => n !== 'node1');
 * await lab.stop();
 * ```
 */
export class PatroniLab {
  /** The Consul (double) used as DCS. */
  readonly consul: ConsulDouble;
  /** Patroni scope. */
  readonly scope: string;
  /** Consul service name Patroni registers (equal to the scope here). */
  readonly serviceName: string;
  /** The members. */
  readonly nodes: readonly PatroniLabNode[];
  /** The password-authenticated application role and its database. */
  readonly appUser: PgAppUser;
  /** `patroni` when real Patroni agents run, `fallback` when the lab plays their role. */
  readonly mode: 'patroni' | 'fallback';
  /** The lab's temp dir (data dirs, configs, logs); removed by {@link PatroniLab.stop}. */
  readonly baseDir: string;

  readonly #ownsConsul: boolean;
  readonly #log: (line: string) => void;
  readonly #ttl: number;
  readonly #loopWait: number;
  readonly #retryTimeout: number;
  readonly #synchronous: boolean;
  readonly #checkInterval: string;
  readonly #pgBin: string;
  readonly #network: PgNetwork;
  readonly #patroniConsul: string | undefined;
  readonly #patroniPath: string;
  readonly #patronis = new Map<string, ChildProcess>();
  readonly #cluster: PgCluster | undefined;
  readonly #agents = new Map<string, Server>();
  #fallbackLeader: string | undefined;
  readonly #background = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  #stopping: Promise<void> | undefined;

  private constructor(init: {
    consul: ConsulDouble;
    ownsConsul: boolean;
    scope: string;
    nodes: PatroniLabNode[];
    appUser: PgAppUser;
    mode: 'patroni' | 'fallback';
    baseDir: string;
    options: PatroniLabOptions;
    pgBin: string;
    patroniPath: string;
    cluster?: PgCluster;
  }) {
    this.consul = init.consul;
    this.#ownsConsul = init.ownsConsul;
    this.scope = init.scope;
    this.serviceName = init.scope;
    this.nodes = Object.freeze(init.nodes.map((n) => Object.freeze(n)));
    this.appUser = Object.freeze({ ...init.appUser });
    this.mode = init.mode;
    this.baseDir = init.baseDir;
    this.#log = init.options.log ?? (() => {});
    this.#ttl = init.options.ttl ?? 10;
    this.#loopWait = init.options.loopWait ?? 1;
    this.#retryTimeout = init.options.retryTimeout ?? 3;
    this.#synchronous = init.options.synchronousMode ?? false;
    this.#checkInterval = init.options.checkInterval ?? '1s';
    this.#pgBin = init.pgBin;
    this.#patroniPath = init.patroniPath;
    this.#cluster = init.cluster;
    this.#network = init.options.network ?? LOOPBACK_NETWORK;
    this.#patroniConsul = init.options.patroniConsulAddress;
  }

  /**
   * Starts the lab and resolves once one leader and N-1 replicas are registered and passing
   * in `/v1/health/service/<scope>?passing`. On failure everything started is stopped and
   * removed before the error (with the tail of the agents' logs) is thrown.
   */
  static async start(options: PatroniLabOptions = {}): Promise<PatroniLab> {
    const t0 = Date.now();
    const scope = options.scope ?? 'pglab';
    if (!/^[a-z][a-z0-9-]*$/.test(scope)) throw new Error(`scope must match /^[a-z][a-z0-9-]*$/, got ${JSON.stringify(scope)}`);
    const count = options.nodes ?? 3;
    if (!Number.isInteger(count) || count < 1) throw new Error(`nodes must be an integer ≥ 1, got ${count}`);
    const requested = options.mode ?? (process.env['PGCONSUL_LAB_NO_PATRONI'] === '1' ? 'fallback' : 'auto');
    const patroniPath = requested === 'fallback' ? null : findPatroni();
    if (requested === 'patroni' && patroniPath === null) {
      throw new Error('Patroni with python3-consul is not installed: install the Debian packages patroni and python3-consul (apt-get install -y patroni python3-consul)');
    }
    const mode = patroniPath === null ? 'fallback' : 'patroni';
    const pgBin = findPgBin(options.pgBin);
    const appUser = options.appUser ?? DEFAULT_APP_USER;
    const log = options.log ?? (() => {});
    const consul = options.consul ?? (await ConsulDouble.start({ sessionTtlMinSeconds: 1, checkStagger: false }));
    let lab: PatroniLab | undefined;
    try {
      if (mode === 'patroni') {
        const baseDir = await makeOwnedTempDir('patroni-lab-', options.baseDir);
        const ports = await freePorts(2 * count);
        const nodes = Array.from({ length: count }, (_, i): PatroniLabNode => ({
          name: `node${i + 1}`,
          host: (options.network ?? LOOPBACK_NETWORK).address(`node${i + 1}`),
          pgPort: ports[2 * i] ?? 0,
          apiPort: ports[2 * i + 1] ?? 0,
          dataDir: join(baseDir, `node${i + 1}`, 'data'),
        }));
        lab = new PatroniLab({ consul, ownsConsul: options.consul === undefined, scope, nodes, appUser, mode, baseDir, options, pgBin, patroniPath: patroniPath ?? '' });
        live.add(lab);
        installExitHook();
        await lab.#bootstrapPatroni();
      } else {
        if (options.network !== undefined) throw new Error('patroni-lab: the network option needs real Patroni (mode fallback cannot place members elsewhere)');
        log('patroni-lab: fallback mode (the lab plays Patroni on a PgCluster)');
        const cluster = await PgCluster.start({ replicas: count - 1, baseDir: options.baseDir, pgBin, appUser, log });
        let apiPorts: number[];
        try {
          apiPorts = await freePorts(count);
        } catch (err) {
          await cluster.destroy();
          throw err;
        }
        const nodes = cluster.nodes.map((n, i): PatroniLabNode => ({ name: n.name, host: '127.0.0.1', pgPort: n.port, apiPort: apiPorts[i] ?? 0, dataDir: n.dataDir }));
        lab = new PatroniLab({ consul, ownsConsul: options.consul === undefined, scope, nodes, appUser, mode, baseDir: cluster.baseDir, options, pgBin, patroniPath: '', cluster });
        live.add(lab);
        await lab.#bootstrapFallback();
      }
      log(`patroni-lab (${mode}) healthy in ${Date.now() - t0} ms`);
      return lab;
    } catch (err) {
      const tail = lab === undefined ? '' : await lab.#logTails();
      if (lab !== undefined) await lab.stop().catch(() => {});
      else if (options.consul === undefined) await consul.stop().catch(() => {});
      if (tail !== '' && err instanceof Error) err.message += `\n${tail}`;
      throw err;
    }
  }

  /** The member holding the leader key in Consul KV (`service/<scope>/leader`). @throws Error when there is none. */
  async leader(): Promise<string> {
    const name = await this.#leaderKey();
    if (name === undefined) throw new Error(`no leader key for scope ${this.scope}`);
    return name;
  }

  /** Waits until a leader key exists (and satisfies `predicate`); resolves with its name. */
  async waitForLeader(predicate: (name: string) => boolean = () => true, timeoutMs = 60_000): Promise<string> {
    let found = '';
    await this.#poll('a leader key (matching the predicate)', timeoutMs, async () => {
      const name = await this.#leaderKey();
      if (name === undefined || !predicate(name)) return false;
      found = name;
      return true;
    });
    return found;
  }

  /** Passing members of the service as the health endpoint shows them right now. */
  async health(): Promise<LabHealthView> {
    const res = await httpRequest(`${this.#consulUrl}/v1/health/service/${encodeURIComponent(this.serviceName)}?passing`, 'GET');
    if (res.status !== 200) throw new Error(`health/service answered ${res.status}: ${res.body.slice(0, 200)}`);
    const entries = JSON.parse(res.body) as { Service?: { ID?: string; Tags?: string[] } }[];
    const primaries: string[] = [];
    const replicas: string[] = [];
    for (const e of entries) {
      const id = e.Service?.ID ?? '';
      const name = id.startsWith(`${this.scope}/`) ? id.slice(this.scope.length + 1) : id;
      const tags = e.Service?.Tags ?? [];
      if (tags.includes('primary') || tags.includes('master')) primaries.push(name);
      else if (tags.includes('replica')) replicas.push(name);
    }
    return { primaries: primaries.sort(), replicas: replicas.sort() };
  }

  /**
   * Waits until the health endpoint (passing only) shows exactly one primary, which holds the
   * leader key, and at least `expectedReplicas` replicas (default: all other members).
   */
  async waitForHealthy(timeoutMs = 60_000, expectedReplicas = this.nodes.length - 1): Promise<LabHealth> {
    let result: LabHealth = { primary: '', replicas: [] };
    await this.#poll(`1 passing primary + ${expectedReplicas} passing replicas in health/service/${this.serviceName}`, timeoutMs, async () => {
      const h = await this.health();
      const [primary] = h.primaries;
      if (h.primaries.length !== 1 || primary === undefined || h.replicas.length < expectedReplicas) return false;
      if ((await this.#leaderKey()) !== primary) return false;
      result = { primary, replicas: h.replicas };
      return true;
    });
    return result;
  }

  /**
   * In synchronous mode, waits until Patroni has recorded a synchronous standby for the
   * current leader in the `sync` key: only then can a crash fail over (Patroni promotes only
   * a synchronous standby). Resolves with its name (undefined when not in synchronous mode).
   */
  async waitForSyncStandby(timeoutMs = 30_000): Promise<string | undefined> {
    if (!this.#synchronous || this.mode === 'fallback') return undefined;
    let standby: string | undefined;
    await this.#poll('a synchronous standby', timeoutMs, async () => {
      const leader = await this.#leaderKey();
      const raw = await this.#kvGet(`${this.#prefix}/sync`);
      if (raw === undefined || leader === undefined) return false;
      const sync = JSON.parse(raw) as { leader?: string; sync_standby?: string | null };
      standby = sync.leader === leader && typeof sync.sync_standby === 'string' && sync.sync_standby !== '' ? sync.sync_standby : undefined;
      return standby !== undefined;
    }, this.#abort.signal, 50);
    return standby;
  }

  /**
   * Planned switchover from the current leader to `candidate` (default: the first passing
   * replica). With Patroni: REST `POST /switchover`. Resolves when `to` is the sole passing
   * primary in the health view; the old leader may still be rejoining (use
   * {@link PatroniLab.waitForHealthy} for the full picture).
   */
  async switchover(opts: { candidate?: string; timeoutMs?: number } = {}): Promise<SwitchoverTiming> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const from = await this.leader();
    let to = opts.candidate;
    if (to === undefined) to = await this.waitForSyncStandby();
    if (to === undefined) {
      const h = await this.health();
      to = h.replicas.find((r) => r !== from);
      if (to === undefined) throw new Error('no passing replica to switch over to');
    }
    if (to === from) throw new Error(`${to} is already the leader`);
    this.#node(to);
    const target = to;
    const startedAt = Date.now();
    this.#log(`switchover ${from} -> ${target}`);
    const watch = new AbortController();
    const watching = (async () => {
      let leaderKeyMovedAt = 0;
      await this.#poll(`leader key to name ${target}`, timeoutMs, async () => (await this.#leaderKey()) === target, watch.signal, 20);
      leaderKeyMovedAt = Date.now();
      await this.#poll(`${target} to be the sole passing primary`, timeoutMs, async () => {
        const h = await this.health();
        return h.primaries.length === 1 && h.primaries[0] === target;
      }, watch.signal, 20);
      return { leaderKeyMovedAt, registeredAt: Date.now() };
    })();
    // Awaited below; until then a rejection must not count as unhandled.
    watching.catch(() => {});
    try {
      if (this.mode === 'patroni') await this.#patroniSwitchover(from, target, timeoutMs);
      else await this.#fallbackSwitchover(from, target);
    } catch (err) {
      watch.abort();
      await watching.catch(() => {});
      throw err;
    }
    const t = await watching;
    this.#log(`switchover ${from} -> ${target}: leader key moved +${t.leaderKeyMovedAt - startedAt} ms, sole passing primary +${t.registeredAt - startedAt} ms`);
    return { from, to: target, startedAt, ...t };
  }

  /**
   * `kill -9` of the member's postmaster. Patroni (with `primary_start_timeout: 0`) fails
   * over when it was the leader, else restarts it; the fallback does the same.
   */
  async killPostgres(name: string): Promise<void> {
    const node = this.#node(name);
    const pid = postmasterPid(node.dataDir);
    if (pid === undefined || !processAlive(pid)) throw new Error(`${name}: PostgreSQL is not running`);
    process.kill(pid, 'SIGKILL');
    await waitForExit([pid], 5_000);
    this.#log(`${name}: postmaster ${pid} killed`);
    if (this.mode === 'fallback') this.#inBackground(this.#fallbackAfterPostgresCrash(name));
  }

  /**
   * `kill -9` of the member's Patroni agent. Its PostgreSQL keeps running (no watchdog); if
   * it was the leader, another member takes over once the session expires (~ttl s).
   */
  async killPatroni(name: string): Promise<void> {
    this.#node(name);
    if (this.mode === 'patroni') {
      const child = this.#patronis.get(name);
      if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) throw new Error(`${name}: Patroni is not running`);
      const pid = child.pid;
      child.kill('SIGKILL');
      await waitForExit([pid], 5_000);
      this.#log(`${name}: patroni ${pid} killed`);
      return;
    }
    const agent = this.#agents.get(name);
    if (agent === undefined) throw new Error(`${name}: agent is not running`);
    await closeServer(agent);
    this.#agents.delete(name);
    this.#log(`${name}: fallback agent killed`);
    if (this.#fallbackLeader === name) this.#inBackground(this.#fallbackAfterLeaderAgentDeath(name));
  }

  /** (Re)starts the member's Patroni agent, killing it first if it still runs. */
  async restartPatroni(name: string): Promise<void> {
    const node = this.#node(name);
    if (this.mode === 'patroni') {
      const child = this.#patronis.get(name);
      if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        const pid = child.pid;
        child.kill('SIGKILL');
        await waitForExit([pid], 5_000);
      }
      this.#spawnPatroni(node);
      return;
    }
    if (!this.#agents.has(name)) await this.#startAgent(node);
    const cluster = this.#requireCluster();
    if (this.#fallbackLeader === name) {
      await this.#register(name, 'master');
      return;
    }
    // Like Patroni: a member that is not the leader runs as a replica of the leader.
    await cluster.rejoinAsReplica(name);
    await this.#register(name, 'replica');
  }

  /**
   * Stops everything: kills the Patroni agents (and anything they started), shuts the
   * PostgreSQL instances down (`immediate`), stops the Consul double when the lab started it
   * (else removes the lab's services and KV keys from it) and removes the temp dir.
   * Idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  // ---------------------------------------------------------------- Patroni mode

  async #bootstrapPatroni(): Promise<void> {
    const [first, ...others] = this.nodes;
    if (first === undefined) throw new Error('no nodes');
    const superPassword = randomBytes(12).toString('hex');
    const replPassword = randomBytes(12).toString('hex');
    for (const node of this.nodes) {
      const dir = join(this.baseDir, node.name);
      await mkdir(dir, { mode: 0o700 });
      await chownToPostgres(dir);
      const config = this.#patroniConfig(node, superPassword, replPassword);
      const file = join(this.baseDir, `${node.name}.yml`);
      await writeFile(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
      await chownToPostgres(file);
    }
    // node1 first, so it wins the initialize race and bootstraps; the others start while it runs initdb.
    this.#spawnPatroni(first);
    await this.#poll('node1 to take the initialize key', 30_000, async () => (await this.#kvGet(`${this.#prefix}/initialize`)) !== undefined);
    for (const node of others) this.#spawnPatroni(node);
    const leader = await this.waitForLeader(undefined, 60_000);
    const leaderNode = this.#node(leader);
    await this.#poll(`${leader} to accept writes`, 30_000, async () => {
      const rows = await this.#sql(leaderNode, 'SELECT pg_is_in_recovery() AS r');
      return rows[0]?.['r'] === false;
    });
    await this.#createAppUser(leaderNode);
    await this.waitForHealthy(90_000);
  }

  #patroniConfig(node: PatroniLabNode, superPassword: string, replPassword: string): Record<string, unknown> {
    const dir = join(this.baseDir, node.name);
    return {
      scope: this.scope,
      namespace: `/${NAMESPACE}/`,
      name: node.name,
      log: { level: 'INFO', format: '%(asctime)s %(levelname)s: %(message)s' },
      restapi: { listen: `${node.host}:${node.apiPort}`, connect_address: `${node.host}:${node.apiPort}` },
      consul: { host: this.#patroniConsul ?? this.consul.address, register_service: true, service_check_interval: this.#checkInterval },
      bootstrap: {
        dcs: {
          ttl: this.#ttl,
          loop_wait: this.#loopWait,
          retry_timeout: this.#retryTimeout,
          maximum_lag_on_failover: 1048576,
          primary_start_timeout: 0,
          synchronous_mode: this.#synchronous,
          postgresql: { use_pg_rewind: false, parameters: FAST_PARAMETERS },
        },
        initdb: [{ encoding: 'UTF8' }, { locale: 'C' }, 'no-sync'],
      },
      postgresql: {
        listen: `${node.host}:${node.pgPort}`,
        connect_address: `${node.host}:${node.pgPort}`,
        data_dir: node.dataDir,
        bin_dir: this.#pgBin,
        pgpass: join(dir, 'pgpass'),
        use_unix_socket: false,
        authentication: {
          superuser: { username: 'postgres', password: superPassword },
          replication: { username: 'replicator', password: replPassword },
        },
        parameters: { unix_socket_directories: dir },
        pg_hba: [
          'local all all trust',
          `host all ${this.appUser.user} 127.0.0.1/32 scram-sha-256`,
          'host all all 127.0.0.1/32 trust',
          'host replication all 127.0.0.1/32 trust',
          ...(this.#network.clientCidr === '127.0.0.1/32'
            ? []
            : [`host all ${this.appUser.user} ${this.#network.clientCidr} scram-sha-256`, `host all all ${this.#network.clientCidr} trust`, `host replication all ${this.#network.clientCidr} trust`]),
        ],
        basebackup: [{ checkpoint: 'fast' }, 'no-sync'],
        remove_data_directory_on_rewind_failure: true,
        remove_data_directory_on_diverged_timelines: true,
      },
    };
  }

  #spawnPatroni(node: PatroniLabNode): void {
    const dir = join(this.baseDir, node.name);
    const logFd = openSync(join(this.baseDir, `${node.name}.patroni.log`), 'a');
    const user = postgresOsUser();
    let child: ChildProcess;
    try {
      const prefix = this.#network.commandPrefix(node.name);
      const argv = [this.#patroniPath, join(this.baseDir, `${node.name}.yml`)];
      // In another network namespace: `ip netns exec` needs root, so the switch to the
      // postgres user happens after it (setpriv execs: the pid stays Patroni's).
      const [file, ...args] =
        prefix.length === 0 ? argv : [...prefix, ...(user === null ? [] : ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', '--']), ...argv];
      child = spawn(file ?? this.#patroniPath, args, {
        cwd: dir,
        env: childEnv({ PYTHONUNBUFFERED: '1', HOME: dir, ...(user === null ? {} : { USER: 'postgres', LOGNAME: 'postgres' }) }),
        stdio: ['ignore', logFd, logFd],
        ...(user === null || prefix.length > 0 ? {} : { uid: user.uid, gid: user.gid }),
      });
    } finally {
      closeSync(logFd);
    }
    child.on('error', (err) => this.#log(`${node.name}: patroni failed to start: ${err.message}`));
    child.on('exit', (code, signal) => this.#log(`${node.name}: patroni exited (${signal ?? code})`));
    this.#patronis.set(node.name, child);
    this.#log(`${node.name}: patroni started (pid ${child.pid ?? '?'}, api ${node.apiPort}, pg ${node.pgPort})`);
  }

  async #patroniSwitchover(from: string, to: string, timeoutMs: number): Promise<void> {
    const api = `http://${this.#node(from).host}:${this.#node(from).apiPort}/switchover`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await httpRequest(api, 'POST', { leader: from, candidate: to }, timeoutMs);
      if (res.status === 200) return;
      // 412: not possible yet (candidate not ready); 503: could not write the failover key.
      if ((res.status === 412 || res.status === 503) && Date.now() < deadline) {
        this.#log(`switchover refused (${res.status} ${res.body.trim()}), retrying`);
        await sleep(500, undefined, { signal: this.#abort.signal });
        continue;
      }
      throw new Error(`Patroni refused the switchover ${from} -> ${to}: ${res.status} ${res.body.trim()}`);
    }
  }

  // ---------------------------------------------------------------- fallback mode

  async #bootstrapFallback(): Promise<void> {
    const cluster = this.#requireCluster();
    await Promise.all(this.nodes.map((n) => this.#startAgent(n)));
    const leader = cluster.primaryName();
    await this.#kvPut(`${this.#prefix}/initialize`, String(Date.now()));
    await this.#kvPut(`${this.#prefix}/config`, JSON.stringify({ ttl: this.#ttl, loop_wait: this.#loopWait, retry_timeout: this.#retryTimeout }));
    this.#fallbackLeader = leader;
    await this.#fallbackSynchronous(leader);
    await this.#kvPut(`${this.#prefix}/leader`, leader);
    await Promise.all(this.nodes.map((n) => this.#register(n.name, n.name === leader ? 'master' : 'replica')));
    await this.waitForHealthy(60_000);
  }

  async #fallbackSwitchover(from: string, to: string): Promise<void> {
    const cluster = this.#requireCluster();
    // Patroni's order: the old leader shuts down, releases the key, the candidate takes it and promotes.
    await cluster.stop(from, 'fast');
    this.#fallbackLeader = undefined;
    await this.#kvDelete(`${this.#prefix}/leader`);
    await this.#takeLeadership(to, [from]);
    await cluster.rejoinAsReplica(from);
    await this.#register(from, 'replica');
  }

  /** `name` takes the leader key, is promoted and registered as master; other running members follow it. */
  async #takeLeadership(name: string, exclude: readonly string[]): Promise<void> {
    const cluster = this.#requireCluster();
    this.#fallbackLeader = name;
    await this.#kvPut(`${this.#prefix}/leader`, name);
    await cluster.promote(name);
    await this.#fallbackSynchronous(name);
    await this.#register(name, 'master');
    const followers = this.nodes.filter((n) => n.name !== name && !exclude.includes(n.name) && cluster.isRunning(n.name));
    await Promise.all(followers.map((n) => cluster.follow(n.name, name)));
  }

  async #fallbackAfterPostgresCrash(name: string): Promise<void> {
    const cluster = this.#requireCluster();
    await sleep(this.#loopWait * 1000, undefined, { signal: this.#abort.signal });
    if (this.#fallbackLeader !== name) {
      await cluster.start(name);
      return;
    }
    // primary_start_timeout 0: fail over instead of restarting the leader's PostgreSQL.
    this.#fallbackLeader = undefined;
    await this.#kvDelete(`${this.#prefix}/leader`);
    const candidate = await this.#mostAdvanced(name);
    if (candidate === undefined) throw new Error('no candidate to fail over to');
    await this.#takeLeadership(candidate.name, [name]);
    await cluster.rejoinAsReplica(name);
    await this.#register(name, 'replica');
  }

  /** In synchronous mode, makes `leader` wait for one replica on commit. */
  async #fallbackSynchronous(leader: string): Promise<void> {
    if (!this.#synchronous) return;
    const cluster = this.#requireCluster();
    await cluster.query(leader, "ALTER SYSTEM SET synchronous_standby_names = '*'");
    await cluster.query(leader, 'SELECT pg_reload_conf()');
  }

  /** The running member with an agent, other than `except`, that received the most WAL (Patroni's choice). */
  async #mostAdvanced(except: string): Promise<PatroniLabNode | undefined> {
    const cluster = this.#requireCluster();
    let best: PatroniLabNode | undefined;
    let bestPos = -1n;
    for (const n of this.nodes) {
      if (n.name === except || !cluster.isRunning(n.name) || !this.#agents.has(n.name)) continue;
      const [row] = await cluster.query(n.name, "SELECT pg_wal_lsn_diff(coalesce(pg_last_wal_receive_lsn(), '0/0'), '0/0')::bigint::text AS pos");
      const pos = BigInt(String(row?.['pos'] ?? '0'));
      if (pos > bestPos) {
        best = n;
        bestPos = pos;
      }
    }
    return best;
  }

  async #fallbackAfterLeaderAgentDeath(name: string): Promise<void> {
    const cluster = this.#requireCluster();
    // The dead agent's session expires (2 × ttl/2), then a replica takes over; the old
    // PostgreSQL keeps running as a primary, as with real Patroni and no watchdog.
    await sleep(this.#ttl * 1000, undefined, { signal: this.#abort.signal });
    if (this.#fallbackLeader !== name || this.#agents.has(name)) return;
    this.#fallbackLeader = undefined;
    await this.#kvDelete(`${this.#prefix}/leader`);
    const candidate = this.nodes.find((n) => n.name !== name && cluster.isRunning(n.name) && this.#agents.has(n.name));
    if (candidate === undefined) throw new Error('no candidate to fail over to');
    await this.#takeLeadership(candidate.name, [name]);
  }

  /** The stand-in for Patroni's REST API that Consul's health checks probe. */
  async #startAgent(node: PatroniLabNode): Promise<void> {
    const cluster = this.#requireCluster();
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const running = cluster.isRunning(node.name);
      const isLeader = this.#fallbackLeader === node.name;
      const role = isLeader ? 'master' : 'replica';
      let ok: boolean;
      if (path === '/master' || path === '/primary' || path === '/leader' || path === '/read-write') ok = isLeader;
      else if (path === '/replica' || path === '/read-only') ok = !isLeader && running;
      else ok = running;
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'application/json', Connection: 'close' });
      res.end(JSON.stringify({ state: running ? 'running' : 'stopped', role, patroni: { scope: this.scope, version: 'lab-fallback' } }));
    });
    server.keepAliveTimeout = 1_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(node.apiPort, '127.0.0.1', () => resolve());
    });
    this.#agents.set(node.name, server);
  }

  /** Registers a member the way Patroni 3.0.2 does (tags, HTTP check on `/<role>`) and writes its member key. */
  async #register(name: string, role: 'master' | 'replica'): Promise<void> {
    const node = this.#node(name);
    const res = await httpRequest(`${this.#consulUrl}/v1/agent/service/register`, 'PUT', {
      Name: this.serviceName,
      ID: `${this.scope}/${name}`,
      Address: '127.0.0.1',
      Port: node.pgPort,
      Tags: role === 'master' ? ['master', 'primary'] : ['replica'],
      EnableTagOverride: true,
      Check: { HTTP: `http://127.0.0.1:${node.apiPort}/${role}`, Interval: this.#checkInterval, DeregisterCriticalServiceAfter: `${this.#ttl * 5}s` },
    });
    if (res.status !== 200) throw new Error(`service register of ${name} failed: ${res.status} ${res.body.slice(0, 200)}`);
    await this.#kvPut(
      `${this.#prefix}/members/${name}`,
      JSON.stringify({ conn_url: `postgres://127.0.0.1:${node.pgPort}/postgres`, api_url: `http://127.0.0.1:${node.apiPort}/patroni`, state: 'running', role, version: 'lab-fallback' }),
    );
  }

  #inBackground(task: Promise<void>): void {
    const tracked = task.catch((err: unknown) => {
      if (!this.#abort.signal.aborted) this.#log(`patroni-lab fallback: ${(err as Error).message}`);
    });
    this.#background.add(tracked);
    void tracked.finally(() => this.#background.delete(tracked));
  }

  #requireCluster(): PgCluster {
    if (this.#cluster === undefined) throw new Error('not in fallback mode');
    return this.#cluster;
  }

  // ---------------------------------------------------------------- shared

  async #stop(): Promise<void> {
    this.#abort.abort();
    await Promise.all([...this.#background]);
    if (this.mode === 'patroni') {
      const patroniPids = [...this.#patronis.values()].map((c) => c.pid).filter((p): p is number => p !== undefined);
      // Everything the agents started (initdb, pg_basebackup, postgres…) or that runs on our dirs,
      // listed before the agents die and their children are reparented.
      const tree = processTree(patroniPids, [this.baseDir]);
      signalAll(patroniPids, 'SIGKILL');
      await waitForExit(patroniPids, 2_000);
      // PostgreSQL: immediate shutdown of each postmaster (it takes its backends down with it).
      const postmasters = this.nodes.map((n) => postmasterPid(n.dataDir)).filter((p): p is number => p !== undefined && processAlive(p));
      signalAll(postmasters, 'SIGQUIT');
      const postgresTree = new Set(processTree(postmasters));
      signalAll(
        tree.filter((p) => !postgresTree.has(p) && !patroniPids.includes(p)),
        'SIGKILL',
      );
      const leftovers = await waitForExit([...new Set([...tree, ...postgresTree])], 5_000);
      if (leftovers.length > 0) this.#log(`patroni-lab: processes ${leftovers.join(', ')} survived SIGKILL`);
    } else {
      await Promise.all([...this.#agents.values()].map((s) => closeServer(s)));
      this.#agents.clear();
      await this.#cluster?.destroy();
    }
    if (this.#ownsConsul) {
      await this.consul.stop();
    } else {
      await Promise.all(this.nodes.map((n) => httpRequest(`${this.#consulUrl}/v1/agent/service/deregister/${encodeURIComponent(`${this.scope}/${n.name}`)}`, 'PUT').catch(() => undefined)));
      await httpRequest(`${this.#consulUrl}/v1/kv/${this.#prefix}?recurse`, 'DELETE').catch(() => undefined);
    }
    await rm(this.baseDir, { recursive: true, force: true });
    live.delete(this);
    this.#log('patroni-lab stopped');
  }

  get #prefix(): string {
    return `${NAMESPACE}/${this.scope}`;
  }

  get #consulUrl(): string {
    return `http://${this.consul.address}`;
  }

  #node(name: string): PatroniLabNode {
    const node = this.nodes.find((n) => n.name === name);
    if (node === undefined) throw new Error(`no member ${name} (have ${this.nodes.map((n) => n.name).join(', ')})`);
    return node;
  }

  async #leaderKey(): Promise<string | undefined> {
    return this.#kvGet(`${this.#prefix}/leader`);
  }

  async #kvGet(key: string): Promise<string | undefined> {
    const res = await httpRequest(`${this.#consulUrl}/v1/kv/${key}`, 'GET');
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new Error(`GET kv ${key}: ${res.status} ${res.body.slice(0, 200)}`);
    const [entry] = JSON.parse(res.body) as { Value?: string | null }[];
    return entry?.Value === undefined || entry.Value === null ? '' : Buffer.from(entry.Value, 'base64').toString('utf8');
  }

  async #kvPut(key: string, value: string): Promise<void> {
    const res = await httpRequest(`${this.#consulUrl}/v1/kv/${key}`, 'PUT', value);
    if (res.status !== 200 || res.body.trim() !== 'true') throw new Error(`PUT kv ${key}: ${res.status} ${res.body.slice(0, 200)}`);
  }

  async #kvDelete(key: string): Promise<void> {
    const res = await httpRequest(`${this.#consulUrl}/v1/kv/${key}`, 'DELETE');
    if (res.status !== 200) throw new Error(`DELETE kv ${key}: ${res.status} ${res.body.slice(0, 200)}`);
  }

  async #sql(node: { host: string; pgPort: number }, text: string): Promise<Record<string, unknown>[]> {
    const client = new pg.Client({ host: node.host, port: node.pgPort, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 5_000 });
    client.on('error', () => {});
    await client.connect();
    try {
      return (await client.query(text)).rows as Record<string, unknown>[];
    } finally {
      await client.end().catch(() => {});
    }
  }

  async #createAppUser(node: { host: string; pgPort: number }): Promise<void> {
    const { user, password, database } = this.appUser;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(user) || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) {
      throw new Error('appUser.user and appUser.database must be plain identifiers (letters, digits, _)');
    }
    await this.#sql(node, `CREATE ROLE ${user} LOGIN PASSWORD '${password.replace(/'/g, "''")}'`);
    await this.#sql(node, `CREATE DATABASE ${database} OWNER ${user}`);
  }

  #poll(what: string, timeoutMs: number, check: () => Promise<boolean>, signal?: AbortSignal, intervalMs = 100): Promise<void> {
    const both = signal === undefined ? this.#abort.signal : AbortSignal.any([signal, this.#abort.signal]);
    return waitUntil(what, timeoutMs, check, { signal: both, intervalMillis: intervalMs });
  }

  /** Last lines of every agent's log, for error messages. */
  async #logTails(): Promise<string> {
    if (this.mode !== 'patroni') return '';
    const parts: string[] = [];
    for (const n of this.nodes) {
      const file = join(this.baseDir, `${n.name}.patroni.log`);
      if (!existsSync(file)) continue;
      const lines = (await readFile(file, 'utf8').catch(() => '')).trimEnd().split('\n').slice(-12);
      parts.push(`--- ${n.name} patroni log ---\n${lines.join('\n')}`);
    }
    return parts.join('\n');
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const lab of live) {
      if (lab.mode !== 'patroni') continue;
      const postmasters = lab.nodes.map((n) => postmasterPid(n.dataDir)).filter((p): p is number => p !== undefined);
      signalAll(processTree([], [lab.baseDir]).filter((p) => !postmasters.includes(p)), 'SIGKILL');
      signalAll(postmasters, 'SIGQUIT');
      try {
        rmSync(lab.baseDir, { recursive: true, force: true });
      } catch {
        // best effort at exit
      }
    }
  });
}
