/**
 * Child process for the "Consul hangs / is black-holed" checks. argv: consulPort mode
 * (`hang` | `black-hole`). Starts a Pool, runs three queries (none can succeed: Consul never
 * answers), ends the Pool and prints one JSON line: how long each query took to settle, how
 * long end() took, and the active resources left beyond the baseline taken before the Pool.
 * The process must then exit by itself.
 */
import { Pool } from '../../lib/index.js';

const IGNORED = new Set(['TTYWrap', 'PipeWrap', 'FSReqCallback', 'FSEventWrap', 'SignalWrap', 'ProcessWrap', 'Immediate']);
const resources = (): string[] => process.getActiveResourcesInfo().filter((r) => !IGNORED.has(r));

const [consulPort] = process.argv.slice(2);
const baseline = resources();
const pool = new Pool({
  service: 'pglab',
  consul: { host: '127.0.0.1', port: Number(consulPort), connectTimeoutMillis: 500, requestTimeoutMillis: 800, waitSeconds: 2 },
  failoverTimeoutMillis: 1_500,
});
pool.on('error', () => undefined);
const started = Date.now();
const results = await Promise.allSettled(
  [0, 1, 2].map(async () => {
    const t = Date.now();
    try {
      await pool.query('SELECT 1');
      return { ok: true, millis: Date.now() - t };
    } catch (err) {
      return { ok: false, millis: Date.now() - t, code: (err as { code?: string }).code };
    }
  }),
);
const endStarted = Date.now();
await pool.end();
const endMillis = Date.now() - endStarted;
// No grace period: end() must have closed everything by the time it resolved.
const left = [...resources()];
for (const r of baseline) {
  const i = left.indexOf(r);
  if (i >= 0) left.splice(i, 1);
}
process.stdout.write(
  `${JSON.stringify({
    queries: results.map((r) => (r.status === 'fulfilled' ? r.value : { ok: false, millis: -1 })),
    totalMillis: endStarted - started,
    endMillis,
    requests: pool.discoveryRequestCount,
    left,
  })}\n`,
);
