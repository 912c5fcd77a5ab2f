import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { NetLab } from '../../lib/testing/net-lab.js';
import { PgCluster } from '../../lib/testing/pg-cluster.js';
import { freePort } from '../../lib/testing/free-port.js';
import { bounded } from '../support/net-fault-fixture.js';

/** What happens to a connect attempt within `ms`: 'connected', an error code, or 'pending' (nothing at all). */
function connectOutcome(host: string, port: number, ms: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, host);
    const done = (what: string): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(what);
    };
    const timer = setTimeout(() => done('pending'), ms);
    s.on('connect', () => done('connected'));
    s.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}

/** Same as {@link connectOutcome}, from inside a lab host's namespace (a one-shot node child). */
async function connectOutcomeFrom(lab: NetLab, from: string, host: string, port: number, ms: number): Promise<string> {
  const script = `const s=require('node:net').connect(${port},'${host}');const t=setTimeout(()=>{console.log('pending');process.exit(0)},${ms});s.on('connect',()=>{console.log('connected');process.exit(0)});s.on('error',(e)=>{console.log(e.code||e.message);process.exit(0)});`;
  const { stdout } = await lab.run(from, process.execPath, ['-e', script], { timeoutMs: ms + 10_000 });
  return stdout.trim();
}

describe('NetLab (network namespaces + veth pairs)', function () {
  this.timeout(60_000);
  let lab: NetLab;
  let echo: Server;
  let echoPort: number;
  const sockets = new Set<Socket>();

  before(async () => {
    lab = await NetLab.start({ hosts: ['a', 'b'] });
    echo = createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, lab.bridgeAddress, r));
    echoPort = (echo.address() as { port: number }).port;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => echo.close(() => r()));
    await lab.destroy();
  });

  it('gives each host its own namespace and address on a private /24', () => {
    assert.match(lab.cidr, /^10\.237\.\d+\.0\/24$/);
    assert.notEqual(lab.address('a'), lab.address('b'));
    const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    assert.ok(namespaces.includes(lab.netns('a')) && namespaces.includes(lab.netns('b')));
  });

  it('blackHole: an established connection just hangs, a new connect times out (no RST, no refusal); heal resumes it', async () => {
    const port = await freePort();
    await lab.forward('a', port, { host: lab.bridgeAddress, port: echoPort });
    const s = connect(port, lab.address('a'));
    const events: string[] = [];
    let received = '';
    const got = (): string => received;
    s.on('data', (d: Buffer) => (received += d.toString()));
    s.on('error', (e: NodeJS.ErrnoException) => events.push(`error ${e.code ?? ''}`));
    s.on('close', () => events.push('close'));
    s.on('end', () => events.push('end'));
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write('x');
    const t0 = Date.now();
    while (received !== 'x' && Date.now() - t0 < 5_000) await new Promise((r) => setTimeout(r, 20));
    assert.equal(received, 'x', 'echo works before the cut');

    lab.blackHole('a');
    assert.ok(lab.isBlackHoled('a'));
    s.write('y');
    const outcome = await connectOutcome(lab.address('a'), port, 2_500);
    assert.equal(outcome, 'pending', 'a new connect neither succeeds nor is refused');
    assert.equal(received, 'x', 'nothing comes back');
    assert.deepEqual(events, [], 'no error, no FIN, no close on the established connection');

    lab.heal('a');
    const t1 = Date.now();
    while (got() !== 'xy' && Date.now() - t1 < 15_000) await new Promise((r) => setTimeout(r, 20));
    assert.equal(got(), 'xy', 'the same connection resumes after heal');
    assert.equal(await connectOutcome(lab.address('a'), port, 5_000), 'connected');
    s.destroy();
  });

  it('isolate: two hosts lose each other only, silently (the sender gets no error); unisolate restores', async () => {
    const port = await freePort();
    await lab.forward('a', port, { host: lab.bridgeAddress, port: echoPort });
    assert.equal(await connectOutcomeFrom(lab, 'b', lab.address('a'), port, 3_000), 'connected');
    lab.isolate('a', 'b');
    assert.equal(await connectOutcomeFrom(lab, 'b', lab.address('a'), port, 2_000), 'pending', 'b → a drops silently');
    assert.equal(await connectOutcome(lab.address('a'), port, 3_000), 'connected', 'the root namespace still reaches a');
    lab.unisolate('a', 'b');
    assert.equal(await connectOutcomeFrom(lab, 'b', lab.address('a'), port, 3_000), 'connected');
  });
});

describe('NetLab + PgCluster: one node per namespace', function () {
  this.timeout(120_000);
  let lab: NetLab;
  let cluster: PgCluster;
  before(async () => {
    lab = await NetLab.start({ hosts: ['node1', 'node2'] });
    cluster = await PgCluster.start({ replicas: 1, network: lab.placement() });
  });
  after(async () => {
    lab.healAll();
    await cluster.destroy();
    await lab.destroy();
  });

  it('streams across namespaces and a black-holed node stops answering without an error', async () => {
    assert.equal(cluster.node('node1').host, lab.address('node1'));
    const [row] = await cluster.query('node1', "SELECT host(client_addr) AS a FROM pg_stat_replication WHERE application_name = 'node2'");
    assert.equal(row?.['a'], lab.address('node2'), 'node2 streams from node1 over the lab network');
    const client = new pg.Client({ host: lab.address('node1'), port: cluster.node('node1').port, user: 'postgres', database: 'postgres' });
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    await client.connect();
    lab.blackHole('node1');
    const settled = await bounded(client.query('SELECT 1').then(() => 'answered', (e: Error) => `failed: ${e.message}`), 2_000);
    assert.equal(settled, 'pending');
    assert.deepEqual(errors, []);
    lab.heal('node1');
    const after = await bounded(client.query('SELECT 1 AS x').then((r) => String(r.rows[0]?.x)), 15_000);
    assert.equal(after, '1', 'the query that was in the black hole completes after heal');
    await client.end();
  });
});
