/**
 * A network-fault lab on Linux network namespaces: every host (a PostgreSQL node, a Consul
 * agent, a Patroni member…) gets its own namespace with one address on a private /24, joined
 * to a bridge in the root namespace by a veth pair, so the test process reaches every host
 * directly. Faults are made without netem or firewall rules:
 *
 * - {@link NetLab.blackHole}: the host's bridge port is set down. Nothing is answered, no RST,
 *   no FIN, no ICMP: established connections hang, new connects time out. Neighbour entries
 *   are static, so not even an ARP failure ("no route to host") gives it away.
 * - {@link NetLab.isolate}: two hosts lose each other only, by routing: each routes the
 *   other's address into a drop device (a veth whose peer is down), which discards silently (a `blackhole` or
 *   `unreachable` route would hand the sender an immediate EINVAL / EHOSTUNREACH).
 *
 * Needs root and iproute2 (`ip`). Each lab claims a free /24 in 10.237.0.0/16 by creating its
 * bridge (the atomic claim), removes everything on {@link NetLab.destroy} and at process exit,
 * and sweeps what a crashed run left behind (labs whose owning process is gone).
 *
 * @example
 * ```ts
 * import { NetLab, PgCluster } from 'pg-consul/testing';
 * const lab = await NetLab.start({ hosts: ['node1', 'node2'] });
 * const cluster = await PgCluster.start({ replicas: 1, network: lab.placement() });
 * lab.blackHole('node1');   // node1 vanishes without a packet
 * lab.heal('node1');
 * await cluster.destroy();
 * await lab.destroy();
 * ```
 * @module
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { runCommand } from './pg-tools.js';
import type { PgNetwork } from './pg-tools.js';
import { processAlive, waitForExit } from './processes.js';

/** Output of {@link NetLab.run}. */
export interface NetLabRunResult {
  /** Everything the command wrote to stdout. */
  readonly stdout: string;
  /** Everything the command wrote to stderr. */
  readonly stderr: string;
}

/** Options of {@link NetLab.start}. */
export interface NetLabOptions {
  /** Host names (letters, digits, `-`, at most 12 hosts), each gets a namespace and an address. */
  readonly hosts: readonly string[];
  /** Receives one line per fault and per setup step. */
  readonly log?: (line: string) => void;
}

const PREFIX = 'pgnl';
const SECOND_OCTET = 237;
const ALIAS_TAG = 'pg-consul-net-lab';
const HOST_NAME = /^[a-z][a-z0-9-]{0,19}$/;
const MAX_HOSTS = 12;
const NS_LINK = 'lab0';
const DROP_LINK = 'drop0';
const DROP_PEER = 'drop1';

/** Runs `ip args…` synchronously (every call is a quick netlink request); throws with its stderr. */
function ip(args: readonly string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`ip ${args.join(' ')} failed: ${stderr || (err as Error).message}`, { cause: err });
  }
}

function ipQuiet(args: readonly string[]): void {
  try {
    ip(args);
  } catch {
    // best effort (cleanup)
  }
}

/** Locally administered MAC of host `i` (0 = the bridge) in slot `slot` (pure). */
export function labMac(slot: number, i: number): string {
  return `02:70:67:${SECOND_OCTET.toString(16).padStart(2, '0')}:${slot.toString(16).padStart(2, '0')}:${(i + 1).toString(16).padStart(2, '0')}`;
}

/** Address of host `i` (0 = the bridge in the root namespace) in slot `slot` (pure). */
export function labAddress(slot: number, i: number): string {
  return `10.${SECOND_OCTET}.${slot}.${i === 0 ? 1 : 10 + i}`;
}

/**
 * Removes the namespaces and links of one slot. The veth pairs go first, by name: a
 * namespace outlives `ip netns del` while a process still runs in it, and so would its veth
 * pair, whose root-side name the next lab on this slot needs.
 */
function removeSlot(slot: number): void {
  const veth = new RegExp(`^\\d+: (${PREFIX}${slot}v\\d+)[:@]`);
  let links = '';
  try {
    links = ip(['-o', 'link', 'show']);
  } catch {
    // best effort (cleanup)
  }
  for (const line of links.split('\n')) {
    const m = veth.exec(line);
    if (m !== null) ipQuiet(['link', 'del', m[1]!]);
  }
  const namespaces = ip(['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`${PREFIX}${slot}-`));
  for (const ns of namespaces) ipQuiet(['netns', 'del', ns]);
  ipQuiet(['link', 'del', `${PREFIX}${slot}`]);
}

/** Slots of labs whose owning process is gone (bridges named `pgnl<N>` with our alias). */
function staleSlots(): number[] {
  const stale: number[] = [];
  const lines = ip(['-o', '-d', 'link', 'show', 'type', 'bridge']).split('\n');
  for (const line of lines) {
    const m = new RegExp(`^\\d+: ${PREFIX}(\\d+)[:@]`).exec(line);
    if (m === null) continue;
    const alias = new RegExp(`alias ${ALIAS_TAG} pid=(\\d+)`).exec(line);
    const pid = alias === null ? 0 : Number(alias[1]);
    if (pid === 0 || (pid !== process.pid && !processAlive(pid))) stale.push(Number(m[1]));
  }
  return stale;
}

const live = new Set<NetLab>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const lab of live) {
      for (const child of lab.children) child.kill('SIGKILL');
      removeSlot(lab.slot);
    }
  });
}

/**
 * A set of hosts in their own network namespaces on one private /24, with fault injection.
 * See the module documentation for how each fault is made.
 */
export class NetLab {
  /** The /24 slot this lab claimed (third octet of its addresses). */
  readonly slot: number;
  /** `10.237.<slot>.0/24`: every lab address lies in it. */
  readonly cidr: string;
  /** The root namespace's address on the lab bridge (the test process as seen by the hosts). */
  readonly bridgeAddress: string;
  /** Host names in order. */
  readonly hosts: readonly string[];
  /** Processes this lab spawned inside its namespaces (killed by {@link NetLab.destroy}). */
  readonly children = new Set<ChildProcess>();
  readonly #log: (line: string) => void;
  readonly #blackHoled = new Set<string>();
  readonly #isolated = new Set<string>();
  #destroyed = false;

  private constructor(slot: number, hosts: readonly string[], log: (line: string) => void) {
    this.slot = slot;
    this.cidr = `10.${SECOND_OCTET}.${slot}.0/24`;
    this.bridgeAddress = labAddress(slot, 0);
    this.hosts = Object.freeze([...hosts]);
    this.#log = log;
  }

  /**
   * Sweeps stale labs, claims a free slot, creates the bridge, one namespace + veth pair per
   * host and static neighbour entries everywhere, and resolves when every host is up.
   *
   * @throws Error when not root, `ip` is missing or no slot is free.
   */
  static async start(options: NetLabOptions): Promise<NetLab> {
    const hosts = options.hosts;
    if (hosts.length === 0 || hosts.length > MAX_HOSTS) throw new Error(`NetLab needs 1…${MAX_HOSTS} hosts, got ${hosts.length}`);
    for (const h of hosts) if (!HOST_NAME.test(h)) throw new Error(`NetLab host names must match ${String(HOST_NAME)}, got ${JSON.stringify(h)}`);
    if (new Set(hosts).size !== hosts.length) throw new Error('NetLab host names must be unique');
    if (typeof process.getuid !== 'function' || process.getuid() !== 0) throw new Error('NetLab needs root (network namespaces)');
    try {
      ip(['-V']);
    } catch (err) {
      throw new Error('NetLab needs iproute2: apt-get install -y iproute2', { cause: err });
    }
    for (const slot of staleSlots()) removeSlot(slot);
    const slot = NetLab.#claimSlot();
    const lab = new NetLab(slot, hosts, options.log ?? (() => {}));
    live.add(lab);
    installExitHook();
    try {
      lab.#build();
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    lab.#log(`net-lab ${lab.cidr}: ${hosts.map((h) => `${h}=${lab.address(h)}`).join(' ')}`);
    return lab;
  }

  /** Creates the bridge of a free slot (creation fails when another lab holds it: that is the lock). */
  static #claimSlot(): number {
    const used = ip(['-o', 'route', 'show', 'table', 'all']);
    const start = 1 + Math.floor(Math.random() * 250);
    for (let k = 0; k < 250; k++) {
      const slot = 1 + ((start + k) % 250);
      if (used.includes(`10.${SECOND_OCTET}.${slot}.`)) continue;
      try {
        ip(['link', 'add', `${PREFIX}${slot}`, 'type', 'bridge']);
      } catch {
        continue;
      }
      ip(['link', 'set', `${PREFIX}${slot}`, 'alias', `${ALIAS_TAG} pid=${process.pid}`]);
      return slot;
    }
    throw new Error(`NetLab: no free /24 in 10.${SECOND_OCTET}.0.0/16`);
  }

  #build(): void {
    const br = `${PREFIX}${this.slot}`;
    ip(['link', 'set', br, 'address', labMac(this.slot, 0)]);
    ip(['addr', 'add', `${this.bridgeAddress}/24`, 'dev', br]);
    ip(['link', 'set', br, 'up']);
    this.hosts.forEach((host, k) => {
      const i = k + 1;
      const ns = this.netns(host);
      const outer = `${PREFIX}${this.slot}v${i}`;
      const inner = `${PREFIX}${this.slot}p${i}`;
      ip(['netns', 'add', ns]);
      ipQuiet(['link', 'del', outer]); // a pair left by an earlier lab on this slot (see removeSlot)
      ip(['link', 'add', outer, 'type', 'veth', 'peer', 'name', inner]);
      ip(['link', 'set', inner, 'netns', ns]);
      ip(['link', 'set', outer, 'master', br]);
      ip(['link', 'set', outer, 'up']);
      ip(['-n', ns, 'link', 'set', inner, 'name', NS_LINK]);
      ip(['-n', ns, 'link', 'set', NS_LINK, 'address', labMac(this.slot, i)]);
      ip(['-n', ns, 'addr', 'add', `${labAddress(this.slot, i)}/24`, 'dev', NS_LINK]);
      ip(['-n', ns, 'link', 'set', NS_LINK, 'up']);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      // The drop device: one end of a veth pair whose other end stays down, so whatever is
      // routed into it is discarded without an error to the sender (no `dummy` module needed);
      // without ARP, so no neighbour resolution can fail and report "no route to host".
      ip(['-n', ns, 'link', 'add', DROP_LINK, 'type', 'veth', 'peer', 'name', DROP_PEER]);
      ip(['-n', ns, 'link', 'set', DROP_LINK, 'arp', 'off', 'up']);
      ip(['neigh', 'replace', labAddress(this.slot, i), 'lladdr', labMac(this.slot, i), 'dev', br, 'nud', 'permanent']);
      ip(['-n', ns, 'neigh', 'replace', this.bridgeAddress, 'lladdr', labMac(this.slot, 0), 'dev', NS_LINK, 'nud', 'permanent']);
    });
    this.hosts.forEach((host) => {
      this.hosts.forEach((other, j) => {
        if (other !== host) ip(['-n', this.netns(host), 'neigh', 'replace', labAddress(this.slot, j + 1), 'lladdr', labMac(this.slot, j + 1), 'dev', NS_LINK, 'nud', 'permanent']);
      });
    });
  }

  #index(host: string): number {
    const k = this.hosts.indexOf(host);
    if (k < 0) throw new Error(`NetLab: no host ${JSON.stringify(host)} (have ${this.hosts.join(', ')})`);
    return k + 1;
  }

  /** The host's address, e.g. `10.237.42.11`. @throws Error for an unknown host. */
  address(host: string): string {
    return labAddress(this.slot, this.#index(host));
  }

  /** The host's network namespace name, e.g. `pgnl42-node1`. */
  netns(host: string): string {
    this.#index(host);
    return `${PREFIX}${this.slot}-${host}`;
  }

  /** The prefix that runs a command inside the host's namespace: `ip netns exec <ns>`. */
  commandPrefix(host: string): readonly string[] {
    return ['ip', 'netns', 'exec', this.netns(host)];
  }

  /**
   * Where a PgCluster / PatroniLab puts its nodes: node `name` on lab host `name` (so name
   * the hosts `node1`, `node2`, …), clients allowed from the whole lab /24.
   */
  placement(): PgNetwork {
    return { address: (n) => this.address(n), commandPrefix: (n) => this.commandPrefix(n), clientCidr: this.cidr };
  }

  /**
   * Runs a command inside the host's namespace to completion and returns its output.
   *
   * @param options.timeoutMs kill it after this long (default 120 s)
   * @param options.asPostgres run it as the `postgres` OS user when we are root
   */
  run(host: string, file: string, args: readonly string[], options: { timeoutMs?: number; asPostgres?: boolean } = {}): Promise<NetLabRunResult> {
    return runCommand(file, args, { ...options, prefix: this.commandPrefix(host) });
  }

  /** Whether the host is black-holed right now. */
  isBlackHoled(host: string): boolean {
    return this.#blackHoled.has(host);
  }

  /**
   * Makes the host vanish without a packet: its bridge port goes down, so nothing from or to
   * it is delivered and nobody is told (no RST, FIN or ICMP). Its processes keep running and
   * believe they are fine.
   */
  blackHole(host: string): void {
    ip(['link', 'set', `${PREFIX}${this.slot}v${this.#index(host)}`, 'down']);
    this.#blackHoled.add(host);
    this.#log(`net-lab: ${host} black-holed`);
  }

  /** Undoes {@link NetLab.blackHole}; connections that survived resume with TCP's next retransmission. */
  heal(host: string): void {
    ip(['link', 'set', `${PREFIX}${this.slot}v${this.#index(host)}`, 'up']);
    this.#blackHoled.delete(host);
    this.#log(`net-lab: ${host} healed`);
  }

  /**
   * Cuts `a` and `b` off from each other only (both directions), silently: each routes the
   * other's address into a drop device (a veth whose peer is down) that discards every packet. Everyone else still
   * reaches both.
   */
  isolate(a: string, b: string): void {
    if (a === b) throw new Error('NetLab.isolate needs two different hosts');
    ip(['-n', this.netns(a), 'route', 'replace', `${this.address(b)}/32`, 'dev', DROP_LINK]);
    ip(['-n', this.netns(b), 'route', 'replace', `${this.address(a)}/32`, 'dev', DROP_LINK]);
    this.#isolated.add([a, b].sort().join('|'));
    this.#log(`net-lab: ${a} and ${b} isolated from each other`);
  }

  /** Undoes {@link NetLab.isolate}. */
  unisolate(a: string, b: string): void {
    ipQuiet(['-n', this.netns(a), 'route', 'del', `${this.address(b)}/32`, 'dev', DROP_LINK]);
    ipQuiet(['-n', this.netns(b), 'route', 'del', `${this.address(a)}/32`, 'dev', DROP_LINK]);
    this.#isolated.delete([a, b].sort().join('|'));
    this.#log(`net-lab: ${a} and ${b} reach each other again`);
  }

  /** Heals every black hole and isolation. */
  healAll(): void {
    for (const h of [...this.#blackHoled]) this.heal(h);
    for (const pair of [...this.#isolated]) {
      const [a, b] = pair.split('|');
      if (a !== undefined && b !== undefined) this.unisolate(a, b);
    }
  }

  /**
   * Starts a TCP forwarder inside the host's namespace: `address(host):port` → `target`. Use it
   * to give a service of the test process (e.g. the Consul double on {@link NetLab.bridgeAddress})
   * a lab address that can be black-holed or isolated like any host. Resolves once it listens;
   * the forwarder exits with the lab, or when this process dies (its stdin closes).
   */
  async forward(host: string, port: number, target: { host: string; port: number }): Promise<void> {
    await this.serve(host, process.execPath, ['-e', FORWARDER, this.address(host), String(port), target.host, String(target.port)]);
    this.#log(`net-lab: ${host}:${port} forwards to ${target.host}:${target.port}`);
  }

  /**
   * Starts a long-running process inside the host's namespace and resolves once it prints
   * `listening` (within 10 s). It gets a stdin pipe (it should exit when that closes) and is
   * killed by {@link NetLab.destroy}.
   */
  async serve(host: string, file: string, args: readonly string[]): Promise<void> {
    const [cmd, ...argv] = [...this.commandPrefix(host), file, ...args];
    const child = spawn(cmd ?? 'ip', argv, { stdio: ['pipe', 'pipe', 'ignore'] });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`net-lab: ${file} on ${host} did not start within 10 s`)), 10_000);
      timer.unref();
      child.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('listening')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`net-lab: ${file} on ${host} exited (${String(code)})`));
      });
    });
  }

  /** Kills the lab's processes, deletes its namespaces and bridge. Idempotent. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const pids = [...this.children].map((c) => c.pid).filter((p): p is number => p !== undefined);
    for (const c of this.children) c.kill('SIGKILL');
    await waitForExit(pids, 2_000);
    removeSlot(this.slot);
    live.delete(this);
    this.#log(`net-lab ${this.cidr}: removed`);
  }
}

/** The forwarder run by {@link NetLab.forward} (`node -e`, CommonJS): argv listenHost listenPort targetHost targetPort. */
const FORWARDER = `
const net = require('node:net');
const [lh, lp, th, tp] = process.argv.slice(1);
const server = net.createServer((c) => {
  const u = net.connect(Number(tp), th);
  const kill = () => { c.destroy(); u.destroy(); };
  c.pipe(u); u.pipe(c);
  for (const s of [c, u]) { s.on('error', kill); s.on('close', kill); }
});
server.listen(Number(lp), lh, () => process.stdout.write('listening\\n'));
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
`;
