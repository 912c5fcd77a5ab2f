/**
 * Real PostgreSQL streaming-replication clusters on loopback, for tests, demos and
 * experiments: one primary and N hot-standby replicas made with `initdb` and
 * `pg_basebackup`, with helpers for switchover, crash, promotion and rejoin.
 *
 * @example
 * ```ts
 * import { PgCluster } from 'pg-consul/testing';
 * const cluster = await PgCluster.start({ replicas: 2 });
 * try {
 *   await cluster.query('node1', 'CREATE TABLE t (id int)');
 *   await cluster.waitForReplay('node2');
 *   await cluster.switchover('node2', { rejoinOld: true });
 * } finally {
 *   await cluster.destroy();
 * }
 * ```
 * @module
 */
import { waitUntil } from './wait-until.js';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { appendFile, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { freePorts } from './free-port.js';
import { chownToPostgres, findPgBin, LOOPBACK_NETWORK, makeOwnedTempDir, runCommand } from './pg-tools.js';
import type { PgNetwork } from './pg-tools.js';
import { pidExists, postmasterPid, processAlive, waitForExit } from './processes.js';

/** Credentials and database of the password-authenticated application user. */
export interface PgAppUser {
  /** Role name (letters, digits, `_`). */
  readonly user: string;
  /** Its password; the role must present it (scram-sha-256) over TCP. */
  readonly password: string;
  /** A database owned by the role. */
  readonly database: string;
}

/** The PID in the first line of a PostgreSQL lock file, if the file exists. */
function lockPid(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Options of {@link PgCluster.start}. */
export interface PgClusterOptions {
  /** Number of replicas besides the primary (default 2). */
  replicas?: number;
  /** Directory to create the cluster's temp dir in (default `os.tmpdir()`). */
  baseDir?: string;
  /** Directory of PostgreSQL's server binaries (default: `PG_BIN`, `pg_config --bindir`, highest `/usr/lib/postgresql/N/bin`). */
  pgBin?: string;
  /** First port to use (node i gets basePort + i - 1); default: free ephemeral ports. */
  basePort?: number;
  /** Receives progress lines (commands run, timings). */
  log?: (line: string) => void;
  /** The password user created on the primary (default `app` / `app-secret` / database `app`). */
  appUser?: PgAppUser;
  /** Extra or overriding `postgresql.conf` settings, e.g. `{ full_page_writes: 'on', wal_log_hints: 'on' }` to make pg_rewind usable. */
  settings?: Readonly<Record<string, string>>;
  /**
   * Where the nodes run (default: all on 127.0.0.1 here). With {@link NetLab.placement} each
   * node listens on its own lab address and its postmaster runs in its own network namespace.
   */
  network?: PgNetwork;
}

/** One PostgreSQL instance of a {@link PgCluster}. */
export interface PgNodeInfo {
  /** `node1` … `nodeN`; node1 is the first primary. */
  readonly name: string;
  /** Its address: 127.0.0.1 unless {@link PgClusterOptions.network} places it elsewhere. */
  readonly host: string;
  /** TCP port it listens on. */
  readonly port: number;
  /** Its data directory. */
  readonly dataDir: string;
}

/** Stop modes of `pg_ctl stop`. */
export type PgStopMode = 'smart' | 'fast' | 'immediate';

const DEFAULT_APP_USER: PgAppUser = { user: 'app', password: 'app-secret', database: 'app' };
const NODE_CONF = 'pgconsul-node.conf';
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Settings that make a throw-away cluster fast; never use them for data you want to keep. */
function fastSettings(socketDir: string, overrides: Readonly<Record<string, string>>): string {
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: socketDir,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    wal_level: 'replica',
    hot_standby: 'on',
    max_wal_senders: '10',
    wal_keep_size: '256MB',
    wal_retrieve_retry_interval: '200ms',
    shared_buffers: '32MB',
    jit: 'off',
    log_line_prefix: '%m [%p] %q%a ',
    ...overrides,
  };
  const lines = Object.entries(settings).map(([k, v]) => `${k} = ${confValue(v)}`);
  return `\n# --- pg-consul testing (PgCluster) ---\n${lines.join('\n')}\ninclude_if_exists = '${NODE_CONF}'\n`;
}

function confValue(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

function sqlLiteral(v: string): string {
  return `'${v.replace(/'/g, "''")}'`;
}

function hbaConf(app: PgAppUser, clientCidr: string): string {
  const extra =
    clientCidr === '127.0.0.1/32'
      ? []
      : [`host    all          ${app.user}  ${clientCidr}   scram-sha-256`, `host    all          all     ${clientCidr}   trust`, `host    replication  all     ${clientCidr}   trust`];
  return [
    '# TYPE  DATABASE     USER    ADDRESS        METHOD',
    'local   all          all                    trust',
    'local   replication  all                    trust',
    `host    all          ${app.user}  127.0.0.1/32   scram-sha-256`,
    'host    all          all     127.0.0.1/32   trust',
    'host    replication  all     127.0.0.1/32   trust',
    ...extra,
    '',
  ].join('\n');
}

/** Parses an LSN `X/Y` into a bigint. */
function parseLsn(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  if (hi === undefined || lo === undefined) throw new Error(`not an LSN: ${lsn}`);
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

const alive = processAlive;

/** Clusters not destroyed yet: killed on process exit so a crashed test run leaves nothing behind. */
const live = new Set<PgCluster>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const cluster of live) {
      for (const node of cluster.nodes) {
        const pid = postmasterPid(node.dataDir);
        if (pid !== undefined && alive(pid)) {
          try {
            process.kill(pid, 'SIGQUIT');
          } catch {
            // already gone
          }
        }
      }
      try {
        rmSync(cluster.baseDir, { recursive: true, force: true });
      } catch {
        // best effort at exit
      }
    }
  });
}

/**
 * A real PostgreSQL primary with streaming hot-standby replicas on 127.0.0.1, built with
 * `initdb` + `pg_basebackup` under a fresh temp dir. When the process runs as root every
 * PostgreSQL command runs as the `postgres` OS user. Settings favour speed over durability
 * (fsync off…): for tests and demos only.
 *
 * Authentication: the superuser `postgres` is trusted on 127.0.0.1 (also for replication);
 * {@link PgCluster.appUser} must present its password (scram-sha-256).
 *
 * @example
 * ```ts
 * const cluster = await PgCluster.start();
 * const [{ port }] = cluster.nodes;
 * await cluster.stop(cluster.primaryName(), 'immediate');
 * await cluster.promote('node2');
 * await cluster.destroy();
 * ```
 */
export class PgCluster {
  /** All nodes, node1 first (node1 is the initial primary). */
  readonly nodes: readonly PgNodeInfo[];
  /** The password-authenticated application role and its database. */
  readonly appUser: PgAppUser;
  /** The temp dir holding data dirs, logs and sockets; removed by {@link PgCluster.destroy}. */
  readonly baseDir: string;
  /** Directory of the PostgreSQL binaries in use. */
  readonly pgBin: string;
  #primary: string;
  #startupMs = 0;
  readonly #log: (line: string) => void;
  readonly #settings: Readonly<Record<string, string>>;
  readonly #network: PgNetwork;
  #destroying: Promise<void> | undefined;

  private constructor(baseDir: string, pgBin: string, nodes: PgNodeInfo[], appUser: PgAppUser, log: (line: string) => void, settings: Readonly<Record<string, string>>, network: PgNetwork) {
    this.baseDir = baseDir;
    this.pgBin = pgBin;
    this.nodes = Object.freeze(nodes.map((n) => Object.freeze(n)));
    this.appUser = Object.freeze({ ...appUser });
    this.#primary = nodes[0]?.name ?? 'node1';
    this.#log = log;
    this.#settings = settings;
    this.#network = network;
  }

  /**
   * Creates and starts the cluster: `initdb` the primary (node1), start it, create the app
   * user and database, `pg_basebackup` each replica (node2…), start them, and resolve once
   * every replica streams from the primary (`pg_stat_replication`). On failure everything
   * created so far is removed before the error is thrown.
   *
   * @throws Error naming the Debian package to install when the server binaries are missing.
   */
  static async start(options: PgClusterOptions = {}): Promise<PgCluster> {
    const t0 = Date.now();
    const pgBin = findPgBin(options.pgBin);
    const replicas = options.replicas ?? 2;
    if (!Number.isInteger(replicas) || replicas < 0) throw new Error(`replicas must be an integer ≥ 0, got ${replicas}`);
    const appUser = options.appUser ?? DEFAULT_APP_USER;
    if (!IDENTIFIER.test(appUser.user) || !IDENTIFIER.test(appUser.database)) {
      throw new Error('appUser.user and appUser.database must be plain identifiers (letters, digits, _)');
    }
    const count = replicas + 1;
    const ports = options.basePort === undefined ? await freePorts(count) : Array.from({ length: count }, (_, i) => (options.basePort ?? 0) + i);
    const baseDir = await makeOwnedTempDir('pg-cluster-', options.baseDir);
    const network = options.network ?? LOOPBACK_NETWORK;
    const nodes: PgNodeInfo[] = ports.map((port, i) => ({ name: `node${i + 1}`, host: network.address(`node${i + 1}`), port, dataDir: join(baseDir, `node${i + 1}`) }));
    const cluster = new PgCluster(baseDir, pgBin, nodes, appUser, options.log ?? (() => {}), options.settings ?? {}, network);
    installExitHook();
    live.add(cluster);
    try {
      await cluster.#bootstrap();
    } catch (err) {
      await cluster.destroy().catch(() => {});
      throw err;
    }
    cluster.#startupMs = Date.now() - t0;
    cluster.#log(`cluster of ${count} started in ${cluster.#startupMs} ms (${baseDir})`);
    return cluster;
  }

  /** Milliseconds {@link PgCluster.start} took. */
  get startupMs(): number {
    return this.#startupMs;
  }

  /** Name of the current primary as this object knows it (it changes on promote/switchover). */
  primaryName(): string {
    return this.#primary;
  }

  /** The node called `name`. @throws Error for an unknown name. */
  node(name: string): PgNodeInfo {
    const node = this.nodes.find((n) => n.name === name);
    if (node === undefined) throw new Error(`no node ${name} (have ${this.nodes.map((n) => n.name).join(', ')})`);
    return node;
  }

  /** Whether the node's postmaster process is alive. */
  isRunning(name: string): boolean {
    const pid = postmasterPid(this.node(name).dataDir);
    return pid !== undefined && alive(pid);
  }

  /** Stops a node with `pg_ctl stop -m <mode>` (default `fast`) and waits; no-op when not running. */
  async stop(name: string, mode: PgStopMode = 'fast'): Promise<void> {
    const node = this.node(name);
    if (!this.isRunning(name)) return;
    await this.#pg('pg_ctl', ['stop', '-D', node.dataDir, '-m', mode, '-w', '-t', '60', '-s']);
  }

  /** Starts a stopped node with its current configuration and waits until it accepts connections. */
  async start(name: string): Promise<void> {
    const node = this.node(name);
    if (this.isRunning(name)) return;
    await this.#clearStaleLocks(node);
    try {
      await this.#pg('pg_ctl', ['start', '-D', node.dataDir, '-l', this.#logFile(name), '-w', '-t', '60', '-s'], this.#network.commandPrefix(name));
    } catch (err) {
      throw new Error(`${name} did not start: ${(err as Error).message}\n--- ${name} log ---\n${await this.serverLog(name, 15)}`, { cause: err });
    }
  }

  /**
   * A postmaster killed with -9 stays a zombie until PID 1 reaps it (slowly, or never, on
   * some sandboxes), and PostgreSQL refuses to start while the PID in its lock files
   * (`postmaster.pid`, the socket's `.lock`) exists. Wait a little for the reaping; a lock
   * still held by a zombie is stale and is removed.
   */
  async #clearStaleLocks(node: PgNodeInfo): Promise<void> {
    const locks = [join(node.dataDir, 'postmaster.pid'), join(this.baseDir, `.s.PGSQL.${node.port}.lock`)];
    for (const lock of locks) {
      const pid = lockPid(lock);
      if (pid === undefined || processAlive(pid)) continue;
      await waitUntil(`${node.name}'s old postmaster ${pid} to be reaped`, 3_000, async () => !pidExists(pid)).catch(() => undefined);
      if (pidExists(pid)) {
        this.#log(`${node.name}: removing ${lock} (held by zombie ${pid})`);
        await rm(lock, { force: true });
      }
    }
  }

  /** The last `lines` lines of a node's server log. */
  async serverLog(name: string, lines = 50): Promise<string> {
    try {
      return (await readFile(this.#logFile(name), 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /**
   * Promotes a replica (`pg_ctl promote -w`), waits until `pg_is_in_recovery()` is false and
   * records it as the primary. The old primary, if still running, is left alone.
   */
  async promote(name: string): Promise<void> {
    const node = this.node(name);
    await this.#pg('pg_ctl', ['promote', '-D', node.dataDir, '-w', '-t', '60', '-s']);
    await this.#waitFor(`${name} to leave recovery`, 30_000, async () => {
      const [row] = await this.query(name, 'SELECT pg_is_in_recovery() AS r');
      return row?.['r'] === false;
    });
    this.#primary = name;
    this.#log(`${name} promoted`);
  }

  /**
   * Points a running replica at `primary` (default: the current primary) with
   * `ALTER SYSTEM SET primary_conninfo` + reload, and waits until it streams from it.
   */
  async follow(name: string, primary: string = this.#primary, timeoutMs = 30_000): Promise<void> {
    if (name === primary) throw new Error(`${name} cannot follow itself`);
    const conninfo = this.#conninfo(name, primary);
    await this.query(name, `ALTER SYSTEM SET primary_conninfo = ${sqlLiteral(conninfo)}`);
    await this.query(name, 'SELECT pg_reload_conf()');
    await this.#waitStreaming(primary, [name], timeoutMs);
  }

  /**
   * Planned switchover: stop the old primary (`-m fast` by default, so its replicas receive
   * all its WAL), promote `to`, repoint every other running replica at `to`, and with
   * `rejoinOld` bring the old primary back as a replica of `to`.
   */
  async switchover(to: string, opts: { rejoinOld?: boolean; stopMode?: 'fast' | 'immediate' } = {}): Promise<void> {
    const from = this.#primary;
    if (to === from) throw new Error(`${to} is already the primary`);
    if (!this.isRunning(to)) throw new Error(`${to} is not running`);
    const t0 = Date.now();
    await this.stop(from, opts.stopMode ?? 'fast');
    await this.promote(to);
    const others = this.nodes.filter((n) => n.name !== from && n.name !== to && this.isRunning(n.name));
    await Promise.all(others.map((n) => this.follow(n.name, to)));
    if (opts.rejoinOld === true) await this.rejoinAsReplica(from);
    this.#log(`switchover ${from} -> ${to} done in ${Date.now() - t0} ms`);
  }

  /**
   * Makes `name` (typically a former primary) a streaming replica of the current primary.
   * A cleanly shut down node whose WAL did not diverge is simply restarted as a standby;
   * otherwise pg_rewind is tried when the primary runs with `full_page_writes = on`; failing
   * that the data dir is replaced by a fresh `pg_basebackup`. Resolves once it streams.
   */
  async rejoinAsReplica(name: string, timeoutMs = 60_000): Promise<void> {
    const primary = this.#primary;
    if (name === primary) throw new Error(`${name} is the primary`);
    if (!this.isRunning(primary)) throw new Error(`the primary ${primary} is not running`);
    const node = this.node(name);
    if (this.isRunning(name)) await this.stop(name, 'fast');

    if (existsSync(node.dataDir) && (await this.#canFollowWithoutRewind(name, primary))) {
      await this.#configureStandby(name, primary);
      await this.start(name);
      if (await this.#waitStreaming(primary, [name], 15_000).then(() => true, () => false)) {
        this.#log(`${name} rejoined as a replica of ${primary} (restart)`);
        return;
      }
      await this.stop(name, 'immediate');
    }

    const [fpw] = await this.query(primary, 'SHOW full_page_writes');
    if (existsSync(node.dataDir) && fpw?.['full_page_writes'] === 'on') {
      try {
        await this.#pg('pg_rewind', ['--target-pgdata', node.dataDir, '--source-server', `host=${this.node(primary).host} port=${this.node(primary).port} user=postgres dbname=postgres`]);
        await this.#configureStandby(name, primary);
        await this.start(name);
        await this.#waitStreaming(primary, [name], 15_000);
        this.#log(`${name} rejoined as a replica of ${primary} (pg_rewind)`);
        return;
      } catch (err) {
        this.#log(`${name}: pg_rewind path failed (${(err as Error).message.split('\n')[0]}); taking a fresh base backup`);
        await this.stop(name, 'immediate');
      }
    }

    await rm(node.dataDir, { recursive: true, force: true });
    await this.#baseBackup(name, primary);
    await this.start(name);
    await this.#waitStreaming(primary, [name], timeoutMs);
    this.#log(`${name} rejoined as a replica of ${primary} (pg_basebackup)`);
  }

  /**
   * Waits until replica `name` has replayed everything committed on the primary so far. To
   * get a target the replica can reach (with `synchronous_commit = off` WAL may sit unflushed
   * in the primary's buffers, and the primary only sends flushed WAL) it commits a tiny
   * transaction (one `pg_logical_emit_message` record) with `synchronous_commit = on` on the
   * primary, which flushes all earlier WAL, and waits for the primary's flush LSN.
   */
  async waitForReplay(name: string, timeoutMs = 15_000): Promise<void> {
    const primary = this.#primary;
    if (name === primary) return;
    await this.query(primary, "BEGIN; SET LOCAL synchronous_commit = on; SELECT pg_logical_emit_message(true, 'pg-consul', 'flush'); COMMIT");
    const [row] = await this.query(primary, 'SELECT pg_current_wal_flush_lsn()::text AS lsn');
    const lsn = String(row?.['lsn']);
    await this.#waitFor(`${name} to replay ${lsn}`, timeoutMs, async () => {
      const [r] = await this.query(name, 'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [lsn]);
      return r?.['ok'] === true;
    });
  }

  /**
   * Runs one statement on a node as the superuser `postgres` over a short-lived connection.
   *
   * @param opts.database database to connect to (default `postgres`)
   */
  async query(name: string, sql: string, params: unknown[] = [], opts: { database?: string } = {}): Promise<Record<string, unknown>[]> {
    const node = this.node(name);
    // Bounded like everything else: a statement that blocks (a commit waiting for a
    // synchronous standby that is gone…) fails after 30 s instead of hanging its caller.
    const client = new pg.Client({
      host: node.host,
      port: node.port,
      user: 'postgres',
      database: opts.database ?? 'postgres',
      connectionTimeoutMillis: 10_000,
      statement_timeout: 30_000,
      query_timeout: 35_000,
    });
    client.on('error', () => {});
    await client.connect();
    try {
      const result = await client.query(sql, params);
      return result.rows as Record<string, unknown>[];
    } finally {
      await client.end().catch(() => {});
    }
  }

  /**
   * Stops every node with `-m immediate`, kills any postmaster still alive and removes the
   * temp dir. Idempotent; safe after a failed start.
   */
  destroy(): Promise<void> {
    this.#destroying ??= (async () => {
      await Promise.all(
        this.nodes.map(async (n) => {
          const pid = postmasterPid(n.dataDir);
          if (pid === undefined || !alive(pid)) return;
          try {
            await this.#pg('pg_ctl', ['stop', '-D', n.dataDir, '-m', 'immediate', '-w', '-t', '20', '-s']);
          } catch {
            // fall through to the kill below
          }
          await waitForExit([pid], 0);
        }),
      );
      await rm(this.baseDir, { recursive: true, force: true });
      live.delete(this);
    })();
    return this.#destroying;
  }

  async #bootstrap(): Promise<void> {
    const [primary, ...replicas] = this.nodes;
    if (primary === undefined) throw new Error('no nodes');
    await this.#pg('initdb', ['-D', primary.dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '-N', '--no-instructions']);
    await appendFile(join(primary.dataDir, 'postgresql.conf'), fastSettings(this.baseDir, this.#settings));
    await this.#writeOwned(join(primary.dataDir, 'pg_hba.conf'), hbaConf(this.appUser, this.#network.clientCidr));
    await this.#writeOwned(join(primary.dataDir, NODE_CONF), this.#nodeConf(primary));
    await this.start(primary.name);
    const app = this.appUser;
    await this.query(primary.name, `CREATE ROLE ${app.user} LOGIN PASSWORD ${sqlLiteral(app.password)}`);
    await this.query(primary.name, `CREATE DATABASE ${app.database} OWNER ${app.user}`);
    await Promise.all(
      replicas.map(async (r) => {
        await this.#baseBackup(r.name, primary.name);
        await this.start(r.name);
      }),
    );
    await this.#waitStreaming(
      primary.name,
      replicas.map((r) => r.name),
      60_000,
    );
  }

  async #baseBackup(name: string, from: string): Promise<void> {
    const node = this.node(name);
    const source = this.node(from);
    await this.#pg('pg_basebackup', ['-h', source.host, '-p', String(source.port), '-U', 'postgres', '-D', node.dataDir, '-X', 'stream', '-c', 'fast', '-N']);
    await this.#configureStandby(name, from);
  }

  /** Writes the node's port, `standby.signal` and `primary_conninfo` (in postgresql.auto.conf). */
  async #configureStandby(name: string, primary: string): Promise<void> {
    const node = this.node(name);
    await this.#writeOwned(join(node.dataDir, NODE_CONF), this.#nodeConf(node));
    await this.#writeOwned(join(node.dataDir, 'standby.signal'), '');
    const autoConf = join(node.dataDir, 'postgresql.auto.conf');
    let text = '';
    try {
      text = await readFile(autoConf, 'utf8');
    } catch {
      text = '# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n';
    }
    const kept = text.split('\n').filter((l) => l !== '' && !/^\s*primary_conninfo\s*=/.test(l));
    kept.push(`primary_conninfo = ${confValue(this.#conninfo(name, primary))}`);
    await this.#writeOwned(autoConf, `${kept.join('\n')}\n`);
  }

  /** The node's own settings (port, and its listen address when it is not on loopback). */
  #nodeConf(node: PgNodeInfo): string {
    return `port = ${node.port}\n${node.host === '127.0.0.1' ? '' : `listen_addresses = ${confValue(node.host)}\n`}`;
  }

  #conninfo(name: string, primary: string): string {
    return `host=${this.node(primary).host} port=${this.node(primary).port} user=postgres application_name=${name}`;
  }

  /**
   * Whether a stopped node can simply restart as a standby of `primary`: it was shut down
   * cleanly and its last checkpoint lies before the point where `primary`'s timeline forked
   * off the node's timeline (so the node holds no WAL the primary lacks).
   */
  async #canFollowWithoutRewind(name: string, primary: string): Promise<boolean> {
    const { stdout } = await this.#pg('pg_controldata', ['-D', this.node(name).dataDir]);
    const field = (label: string): string => new RegExp(`^${label}:\\s*(.+)$`, 'm').exec(stdout)?.[1]?.trim() ?? '';
    const state = field('Database cluster state');
    if (state !== 'shut down' && state !== 'shut down in recovery') return false;
    const tli = Number(field("Latest checkpoint's TimeLineID"));
    let end = parseLsn(field('Latest checkpoint location'));
    const minRecovery = field('Minimum recovery ending location');
    if (minRecovery !== '' && parseLsn(minRecovery) > end) end = parseLsn(minRecovery);
    const [row] = await this.query(primary, "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8))::bit(32)::int AS tli, pg_current_wal_insert_lsn()::text AS lsn");
    const primaryTli = Number(row?.['tli']);
    if (tli === primaryTli) return end <= parseLsn(String(row?.['lsn']));
    if (tli > primaryTli) return false;
    const file = `pg_wal/${primaryTli.toString(16).toUpperCase().padStart(8, '0')}.history`;
    const [h] = await this.query(primary, 'SELECT pg_read_file($1) AS h', [file]);
    for (const line of String(h?.['h'] ?? '').split('\n')) {
      const m = /^\s*(\d+)\s+([0-9A-Fa-f]+\/[0-9A-Fa-f]+)/.exec(line);
      if (m && Number(m[1]) === tli) return m[2] !== undefined && end < parseLsn(m[2]);
    }
    return false;
  }

  async #waitStreaming(primary: string, names: readonly string[], timeoutMs: number): Promise<void> {
    if (names.length === 0) return;
    await this.#waitFor(`${names.join(', ')} to stream from ${primary}`, timeoutMs, async () => {
      const rows = await this.query(primary, "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'");
      const streaming = new Set(rows.map((r) => r['application_name']));
      return names.every((n) => streaming.has(n));
    });
  }

  #waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
    return waitUntil(what, timeoutMs, check);
  }

  #logFile(name: string): string {
    return join(this.baseDir, `${name}.log`);
  }

  async #writeOwned(path: string, content: string): Promise<void> {
    await writeFile(path, content, { mode: 0o600 });
    await chownToPostgres(path);
  }

  #pg(tool: string, args: string[], prefix: readonly string[] = []): Promise<{ stdout: string; stderr: string }> {
    return runCommand(join(this.pgBin, tool), args, { asPostgres: true, cwd: this.baseDir, log: this.#log, prefix });
  }
}
