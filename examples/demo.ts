/**
 * `npm run demo`: a real 3-node Patroni cluster (PostgreSQL 15) on this machine, registered
 * in a Consul double, and an application-like workload that follows it through pg-consul —
 * through a planned switchover and then a crash of the leader's PostgreSQL. Every event is
 * shown as it happens, then a summary.
 *
 * Flags: `--keep` leaves the cluster running (until Ctrl-C) and prints how to connect;
 * `--help`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'pg-consul';
import type { FailoverEvent, TopologyEvent } from 'pg-consul';
import { PatroniLab, Workload, crashDrill, findPgBin, switchoverDrill, writeStall } from 'pg-consul/testing';
import type { DrillTiming, WorkloadSummary } from 'pg-consul/testing';

const argv = process.argv.slice(2);
const args = new Set(argv);
const MODES = ['auto', 'consul-health', 'patroni', 'patroni+health'] as const;
type DemoMode = (typeof MODES)[number];
const modeArg = argv[argv.indexOf('--discovery') + 1];
if (args.has('--help') || args.has('-h') || (args.has('--discovery') && !MODES.includes(modeArg as DemoMode))) {
  process.stdout.write(
    'usage: npm run demo [-- --keep] [-- --discovery auto|consul-health|patroni|patroni+health]\n\n' +
      'Starts 3 Patroni nodes on a Consul double, runs writes and reads through pg-consul,\n' +
      'performs a switchover and a crash failover, and prints what happened.\n' +
      '  --keep         leave the cluster running afterwards (Ctrl-C stops it)\n' +
      "  --discovery M  how pg-consul follows the cluster (default auto, pg-consul's default: Patroni's leader\n" +
      "                 key in Consul KV, which moves at the moment of promotion, while Patroni's keys are there;\n" +
      "                 consul-health: Consul's health service only)\n",
  );
  process.exit(args.has('--help') || args.has('-h') ? 0 : 2);
}
const discovery: DemoMode = args.has('--discovery') ? (modeArg as DemoMode) : 'auto';
const keep = args.has('--keep');
const tty = process.stdout.isTTY === true;
const color = (code: string) => (s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const bold = color('1');
const dim = color('2');
const green = color('32');
const yellow = color('33');
const cyan = color('36');

const t0 = Date.now();
let statusShown = false;

function clock(): string {
  return dim(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s]`);
}

function clearStatus(): void {
  if (tty && statusShown) process.stdout.write('\r\x1b[2K');
  statusShown = false;
}

/** One line per event. */
function say(line: string): void {
  clearStatus();
  process.stdout.write(`${clock()} ${line}\n`);
}

/** A progress line: rewritten in place on a terminal, printed every few seconds otherwise. */
let lastPlainStatus = 0;
function status(line: string): void {
  if (tty) {
    process.stdout.write(`\r\x1b[2K${clock()} ${dim(line)}`);
    statusShown = true;
  } else if (Date.now() - lastPlainStatus >= 3000) {
    lastPlainStatus = Date.now();
    process.stdout.write(`${clock()} ${line}\n`);
  }
}

/** Runs `work` while showing `label` with the elapsed time every 250 ms. */
async function withProgress<T>(label: string, work: Promise<T>, extra: () => string = () => ''): Promise<T> {
  const started = Date.now();
  const timer = setInterval(() => status(`${label} (${((Date.now() - started) / 1000).toFixed(1)} s) ${extra()}`), 250);
  try {
    return await work;
  } finally {
    clearInterval(timer);
    clearStatus();
  }
}

function fail(message: string): never {
  clearStatus();
  process.stderr.write(`\n${bold('pg-consul demo: cannot run')}: ${message}\n`);
  process.exit(1);
}

// -------------------------------------------------------------------------------- preflight
let pgBin: string;
try {
  pgBin = findPgBin();
} catch (err) {
  fail(
    `${(err as Error).message}\n` +
      'The demo runs real PostgreSQL servers. On Debian/Ubuntu: apt-get install -y postgresql-15 patroni python3-consul\n' +
      '(or run `bash .ci/install-deps.sh` as root, which `npm run demo` does for you when it can).',
  );
}

process.stdout.write(
  `\n${bold('pg-consul demo')}: a real Patroni cluster followed through Consul by one pg-consul Pool\n` +
    dim(`PostgreSQL binaries: ${pgBin}\n\n`),
);

// -------------------------------------------------------------------------------- the lab
let lab: PatroniLab;
try {
  lab = await withProgress('starting the Consul double and 3 Patroni nodes (PostgreSQL 15) …', PatroniLab.start({ synchronousMode: true }));
} catch (err) {
  fail(`the Patroni lab did not start: ${(err as Error).message}`);
}
let stopped = false;
async function stopLab(): Promise<void> {
  if (stopped) return;
  stopped = true;
  await lab.stop();
}
process.once('SIGINT', () => {
  clearStatus();
  process.stdout.write('\ninterrupted: stopping the cluster …\n');
  void stopLab().then(() => process.exit(130));
});

const nameByPort = new Map(lab.nodes.map((n) => [n.pgPort, n.name]));
const ports = Object.fromEntries(lab.nodes.map((n) => [n.name, n.pgPort]));
const health = await lab.waitForHealthy();
if (lab.mode === 'fallback') say(yellow('Patroni is not installed: the lab plays its role (apt-get install -y patroni python3-consul for the real thing)'));
say(
  `cluster ready (${lab.mode === 'patroni' ? 'Patroni 3' : 'fallback'}): leader ${bold(health.primary)} :${ports[health.primary]}, ` +
    `replicas ${health.replicas.map((r) => `${r} :${ports[r]}`).join(', ')}; Consul at ${lab.consul.url}`,
);

// -------------------------------------------------------------------------------- the app
const pool = new Pool({
  service: lab.serviceName,
  // The default (auto) needs no option: it finds Patroni's keys in Consul KV by itself.
  ...(discovery === 'auto' ? {} : { discovery }),
  consul: { host: '127.0.0.1', port: lab.consul.port },
  user: lab.appUser.user,
  password: lab.appUser.password,
  database: lab.appUser.database,
  // Acknowledged = on the synchronous standby, the only node Patroni promotes: nothing
  // acknowledged can be lost in a crash.
  options: '-c synchronous_commit=on',
  max: 8,
  failoverTimeoutMillis: 60_000,
  // Show which path discovery 'auto' took, and why (one info line per change).
  logger: (level, message) => {
    if (level === 'info' && message.startsWith('discovery auto:')) say(`  ${cyan('discovery')}: ${message.slice('discovery auto: '.length)}`);
  },
});
pool.on('error', () => undefined); // idle connections die in a crash; pg-consul replaces them
const names = (nodes: readonly { name: string }[]): string => nodes.map((n) => n.name).join(', ') || 'none';
pool.on('topology', ({ previous, current }: TopologyEvent) => {
  if (!previous.discovered) return;
  const parts: string[] = [];
  if (previous.primary?.address !== current.primary?.address) {
    parts.push(`primary ${previous.primary?.name ?? 'none'} → ${bold(current.primary?.name ?? 'none')}`);
  }
  if (names(previous.replicas) !== names(current.replicas)) parts.push(`replicas [${names(current.replicas)}]`);
  if (parts.length > 0) say(`  ${cyan('topology')} (Consul index ${current.index}): ${parts.join('; ')}`);
});
pool.on('failover', (e: FailoverEvent) => {
  say(`  ${green('failover done')}: writes now go to ${bold(e.to.name)} (${e.durationMillis} ms after the first failed attempt on ${e.from?.name ?? '?'})`);
});
let retrying = false;
pool.on('retry', (e) => {
  if (e.role === 'primary' && !retrying) {
    retrying = true;
    say(`  ${yellow('writes waiting')} out the failover: ${e.error.message.split('\n')[0]} — retrying, woken by the next topology change`);
  }
});
const ready = await pool.ready();
say(`pg-consul Pool (discovery: ${discovery}) on service '${lab.serviceName}': primary ${ready.primary?.name}, replicas ${names(ready.replicas)}`);

const load = await Workload.start({ pool, writers: 4, readers: 4, intervalMillis: 5, table: 'demo_orders' });
say('workload: 4 writers (INSERT) + 4 readers (SELECT on pool.replica), one statement every 5 ms each');
let lastWritePort: number | undefined;
load.onWrite((w) => {
  if (w.error || w.port === undefined) return;
  if (lastWritePort !== undefined && w.port !== lastWritePort) say(`  ${green('first write')} acknowledged by ${bold(nameByPort.get(w.port) ?? String(w.port))}`);
  lastWritePort = w.port;
});
function rate(): string {
  const now = Date.now();
  const w = load.writes.filter((x) => !x.error && x.endedAt > now - 1000).length;
  const r = load.reads.filter((x) => !x.error && x.endedAt > now - 1000).length;
  return `writes ${w}/s · reads ${r}/s · primary ${pool.topology.primary?.name ?? 'none'}`;
}
await withProgress('steady state', sleep(3000), rate);

// -------------------------------------------------------------------------------- drills
interface Phase {
  readonly label: string;
  readonly timing: DrillTiming;
  readonly stallMillis: number;
  readonly firstWriteAt: number | undefined;
  readonly summary: WorkloadSummary;
}
const phases: Phase[] = [];

async function drill(label: string, announce: string, run: () => Promise<DrillTiming>): Promise<void> {
  retrying = false;
  const from = pool.topology.primary?.name ?? '?';
  say(`${bold('▶')} ${announce.replace('$LEADER', from)}`);
  const timing = await withProgress(`  ${label}: waiting for Patroni to elect and register a new leader`, run(), rate);
  say(
    `  ${dim('Patroni')}: leader key moved +${timing.leaderKeyMovedAt - timing.startedAt} ms, ` +
      `${timing.to} registered as the sole passing primary +${timing.registeredAt - timing.startedAt} ms`,
  );
  await withProgress('  writes flowing on the new leader', sleep(2500), rate);
  const stall = writeStall(load, timing, ports);
  say(`  write stall: ${bold(`${stall.millis} ms`)} (first write on ${timing.to} at +${(stall.firstNewAckAt ?? NaN) - timing.startedAt} ms)`);
  phases.push({ label, timing, stallMillis: stall.millis, firstWriteAt: stall.firstNewAckAt, summary: load.summary(timing.startedAt - 500, Date.now()) });
}

await drill('switchover', 'planned switchover of $LEADER (Patroni REST POST /switchover, like patronictl switchover --force)', () =>
  switchoverDrill(lab),
);
await withProgress('waiting for the cluster to be whole again and a synchronous standby to be named', (async () => {
  await lab.waitForHealthy(90_000);
  await lab.waitForSyncStandby();
})(), rate);
await drill('crash', 'crash: kill -9 of $LEADER\'s postmaster (Patroni fails over: primary_start_timeout 0)', () => crashDrill(lab));

await load.stop();
const total = load.summary();
const finalLeader = await lab.leader();
const stored = await pool.query<{ id: string }>(`SELECT id FROM ${load.table}`);
const present = new Set(stored.rows.map((r) => Number(r.id)));
const missing = load.ackedIds().filter((id) => !present.has(id));

// -------------------------------------------------------------------------------- summary
function row(label: string, cells: string[]): string {
  return `  ${label.padEnd(40)}${cells.map((c) => c.padStart(14)).join('')}\n`;
}
const failedOther = (s: WorkloadSummary): number => Object.entries(s.writesFailed).filter(([k]) => k !== 'unknown').reduce((a, [, n]) => a + n, 0);
const cols = [...phases.map((p) => p.summary), total];
let out = `\n${bold('Summary')}\n`;
out += row('', [...phases.map((p) => p.label), 'whole run']);
out += row('writes acknowledged', cols.map((s) => String(s.writesOk)));
out += row('writes failed, outcome unknown', cols.map((s) => String(s.writesFailed['unknown'] ?? 0)));
out += row('writes failed, other', cols.map((s) => String(failedOther(s))));
out += row('reads ok', cols.map((s) => String(s.readsOk)));
out += row('reads failed', cols.map((s) => String(s.readsFailed)));
out += row('new leader registered by Patroni', [...phases.map((p) => `+${p.timing.registeredAt - p.timing.startedAt} ms`), '']);
out += row('first write on the new leader', [...phases.map((p) => `+${(p.firstWriteAt ?? NaN) - p.timing.startedAt} ms`), '']);
out += row('longest write stall', [...phases.map((p) => `${p.stallMillis} ms`), `${total.longestWriteGapMillis} ms`]);
const readTotal = Object.values(total.readsByPort).reduce((a, b) => a + b, 0);
const shares = Object.entries(total.readsByPort)
  .map(([port, n]) => `${nameByPort.get(Number(port)) ?? port} ${((100 * n) / Math.max(1, readTotal)).toFixed(0)}%`)
  .sort()
  .join(' · ');
out += `\n  reads by server:  ${shares}\n`;
out += `  acknowledged writes missing on the final leader (${finalLeader}): ${missing.length === 0 ? green('0') : yellow(String(missing.length))}\n`;
out += `  Consul requests made by pg-consul: ${pool.discoveryRequestCount} (blocking queries, no polling)\n`;
if (discovery === 'consul-health' || (discovery === 'auto' && lab.mode !== 'patroni')) {
  out += dim("\n  The stall is Patroni's health-check lag; `npm run demo -- --discovery patroni` follows Patroni's leader key instead.\n");
}
process.stdout.write(out);

await pool.end();

if (keep) {
  const h = await lab.waitForHealthy(60_000).catch(() => undefined);
  process.stdout.write(
    `\n${bold('The cluster is still running (--keep).')} Connect with psql:\n` +
      lab.nodes
        .map((n) => `  PGPASSWORD=${lab.appUser.password} psql "host=127.0.0.1 port=${n.pgPort} user=${lab.appUser.user} dbname=${lab.appUser.database}"   # ${n.name}${h?.primary === n.name ? ' (leader)' : ''}\n`)
        .join('') +
      `  curl -s '${lab.consul.url}/v1/health/service/${lab.serviceName}?passing'   # what pg-consul follows\n` +
      (lab.mode === 'patroni' ? `  patronictl -c ${lab.baseDir}/node1.yml list\n` : '') +
      'Press Ctrl-C to stop it and remove everything.\n',
  );
  setInterval(() => undefined, 1 << 30); // stay up until Ctrl-C (SIGINT stops the lab)
} else {
  await withProgress('stopping the cluster', stopLab());
  say('done: nothing left running');
}
