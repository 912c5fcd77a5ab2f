/**
 * `pg-consul watch` on real Patroni 3.0.2 agents (PatroniLab): planned switchovers
 * (`PGCONSUL_WATCH_SWITCHOVERS`, default 5), and per switchover the time from Consul's change
 * to the CLI's change line on stdout. Consul's change is timestamped by blocking queries in
 * this process (the double's own process): the leader key (`/v1/kv/<ns>/<scope>/leader`) and
 * the passing health view ({@link HealthWatch}). In the default `auto` mode the primary
 * follows the leader key, so "leader key → line" is the latency that counts; "health → line"
 * is printed too.
 *
 * `tsx bench/cli-watch-patroni.ts` — prints a JSON summary. Never asserted in tests.
 * @module
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { PatroniLab } from '../lib/testing/patroni-lab.js';
import { HealthWatch } from './health-watch.js';
import { median, round } from './stats.js';

const ENTRY = fileURLToPath(new URL('../lib/cli/index.ts', import.meta.url));
const TSX = fileURLToPath(new URL('../node_modules/tsx/dist/cli.mjs', import.meta.url));
const switchovers = Number(process.env['PGCONSUL_WATCH_SWITCHOVERS'] ?? 5);

/** Blocking reads of one KV key; `changes` holds when each new value was first seen. */
function watchKey(port: number, key: string, stop: AbortSignal): { readonly changes: { at: number; value: string }[] } {
  const changes: { at: number; value: string }[] = [];
  void (async () => {
    let index = 0;
    let last: string | undefined;
    while (!stop.aborted) {
      const answer = await new Promise<{ index: number; value: string | undefined } | undefined>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: `/v1/kv/${key}?index=${index}&wait=5s&raw`, agent: false, signal: stop }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ index: Number(res.headers['x-consul-index'] ?? index), value: res.statusCode === 200 ? body : undefined }));
          res.on('error', () => resolve(undefined));
        });
        req.on('error', () => resolve(undefined));
        req.end();
      });
      if (answer === undefined) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      index = answer.index;
      if (answer.value !== undefined && answer.value !== last) {
        last = answer.value;
        changes.push({ at: performance.timeOrigin + performance.now(), value: answer.value });
      }
    }
  })();
  return { changes };
}

const summary = (values: readonly number[]): { min: number; median: number; max: number } => ({
  min: round(Math.min(...values), 1),
  median: round(median(values), 1),
  max: round(Math.max(...values), 1),
});

const lab = await PatroniLab.start({ mode: 'patroni' });
const stop = new AbortController();
const leaderKey = watchKey(lab.consul.port, `service/${lab.scope}/leader`, stop.signal);
const health = new HealthWatch({ host: '127.0.0.1', port: lab.consul.port }, lab.serviceName, lab.scope);
const child = spawn(process.execPath, [TSX, ENTRY, 'watch'], {
  env: {
    PATH: process.env['PATH'],
    HOME: process.env['HOME'],
    CONSUL_HTTP_ADDR: lab.consul.address,
    PGCONSUL_SERVICE: lab.serviceName,
    PGUSER: lab.appUser.user,
    PGPASSWORD: lab.appUser.password,
    PGDATABASE: lab.appUser.database,
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const lines: { at: number; text: string }[] = [];
let buffered = '';
child.stdout.on('data', (chunk: Buffer) => {
  const at = performance.timeOrigin + performance.now();
  buffered += chunk.toString();
  const parts = buffered.split('\n');
  buffered = parts.pop() ?? '';
  for (const text of parts) lines.push({ at, text });
});
const until = async (what: string, test: () => boolean): Promise<void> => {
  const deadline = Date.now() + 60_000;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`no ${what} within 60 s; topology lines:\n${lines.filter((l) => l.text.includes("topology")).map((l) => l.text).join("\n")}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};
const samples: { to: string; leaderKeyToLine: number; healthToLine: number; line: string }[] = [];
const pgAddress = (name: string): string => `127.0.0.1:${lab.nodes.find((n) => n.name === name)!.pgPort}`;
try {
  await until('first table', () => lines.some((l) => l.text.includes('| writes')));
  for (let i = 0; i < switchovers; i++) {
    await lab.waitForHealthy();
    const since = performance.timeOrigin + performance.now();
    const { to } = await lab.switchover();
    const pattern = new RegExp(`topology v\\d+: primary \\S+ -> ${pgAddress(to)}`);
    await until(`change line to ${to}`, () => lines.some((l) => l.at >= since && pattern.test(l.text)));
    const line = lines.find((l) => l.at >= since && pattern.test(l.text))!;
    const key = leaderKey.changes.find((c) => c.at >= since && c.value === to);
    const view = health.samples.find((s) => s.at >= since && s.primaries.length === 1 && s.primaries[0] === to);
    samples.push({ to, leaderKeyToLine: key === undefined ? NaN : line.at - key.at, healthToLine: view === undefined ? NaN : line.at - view.at, line: line.text });
  }
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('close', r));
  stop.abort();
  await health.stop();
  await lab.stop();
}
console.log(JSON.stringify({
  goalMillis: 100,
  samples: samples.map((s) => `${s.to}: leader key +${round(s.leaderKeyToLine, 1)} ms, health ${round(s.healthToLine, 1)} ms`),
  leaderKeyToLine: summary(samples.map((s) => s.leaderKeyToLine)),
  healthToLine: summary(samples.map((s) => s.healthToLine)),
}, null, 2));
