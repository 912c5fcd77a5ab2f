/**
 * A stand-in for a member's Patroni REST API, run inside the member's network namespace by
 * bench/net-faults.ts (so it vanishes with the host): `GET|OPTIONS /primary` answers 200
 * when the local PostgreSQL is not in recovery, `/replica` when it is, else 503 — what
 * HAProxy's seed checks ask Patroni. argv: listenHost listenPort pgHost pgPort.
 */
import { createServer } from 'node:http';
import pg from 'pg';

const [host, port, pgHost, pgPort] = process.argv.slice(2);
const server = createServer((req, res) => {
  const want = req.url?.startsWith('/replica') === true ? true : req.url?.startsWith('/primary') === true ? false : undefined;
  const client = new pg.Client({ host: pgHost, port: Number(pgPort), user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2_000 });
  client.on('error', () => {});
  client
    .connect()
    .then(() => client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))
    .then((r) => res.writeHead(want !== undefined && r.rows[0]?.r === want ? 200 : 503).end())
    .catch(() => res.writeHead(503).end())
    .finally(() => void client.end().catch(() => {}));
});
server.listen(Number(port), host, () => process.stdout.write('listening\n'));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
