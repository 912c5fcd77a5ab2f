/**
 * Child process for the "a peer never answers" checks. argv: peer (`consul` | `pg`) and its
 * port on 127.0.0.1 — a Consul agent that hangs or is black-holed, or the only PostgreSQL
 * node (named primary by a fixed discovery source) that accepts TCP and never answers, or is
 * black-holed. Starts a Pool, runs three queries (none can succeed), ends the Pool and prints
 * one JSON line: how long each query took to settle, how long end() took, and the active
 * resources left beyond the baseline taken before the Pool. The process must then exit by
 * itself.
 */
import { Pool } from '../../lib/index.js';
import type { DiscoverySource } from '../../lib/index.js';
import { node, update } from './nodes.js';

const IGNORED = new Set(['TTYWrap', 'PipeWrap', 'FSReqCallback', 'FSEventWrap', 'SignalWrap', 'ProcessWrap', 'Immediate']);
const resources = (): string[] => process.getActiveResourcesInfo().filter((r) => !IGNORED.has(r));

const [peer, portText] = process.argv.slice(2);
const port = Number(portText);
/** The one node, at the silent port, as primary: nothing to ask Consul. */
const fixed: DiscoverySource = {
  start: (listener) => listener.onUpdate(update(1, node('silent', port, 'primary'))),
  refresh: () => undefined,
  stop: async () => undefined,
  requestCount: 0,
};
const baseline = resources();
const pool =
  peer === 'pg'
    ? new Pool({ discovery: fixed, user: 'app', password: 'pg-secret', database: 'app', connectTimeoutMillis: 500, failoverTimeoutMillis: 1_500 })
    : new Pool({
        service: 'pglab',
        consul: { host: '127.0.0.1', port, connectTimeoutMillis: 500, requestTimeoutMillis: 800, waitSeconds: 2 },
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
      return { ok: false, millis: Date.now() - t, code: (err as { pgConsulCode?: string; code?: string }).pgConsulCode ?? (err as { code?: string }).code };
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
