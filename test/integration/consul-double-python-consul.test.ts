import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConsulDouble } from '../../lib/testing/consul-double.js';

/**
 * The calls Patroni 3.0.2 makes, through python-consul 0.7.1 (Debian python3-consul) — both
 * its own `requests` transport and Patroni's `ConsulClient` (urllib3, X-Consul-Token header,
 * the ttl hack on session/create) — printed as one JSON object.
 */
const SCRIPT = String.raw`
import json, sys, threading, time
import consul
from patroni.dcs.consul import ConsulClient, InvalidSession, InvalidSessionTTL

host, port, check_url, token = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
out = {}

c = ConsulClient(host=host, port=port, token=token)   # Patroni's transport
c.http.set_read_timeout(3)
c.http.set_ttl(5.0)                                     # Patroni: ttl 10 -> session TTL "5.0s"

sid = c.session.create(name='pglab-node1', checks=[], lock_delay=0.001, behavior='delete')
out['session'] = sid
out['renew'] = c.session.renew(sid)['ID'] == sid
_, info = c.session.info(sid)
out['session_info'] = {k: info[k] for k in ('Behavior', 'TTL', 'LockDelay', 'NodeChecks')}

member = json.dumps({'conn_url': 'postgres://127.0.0.1:5432/postgres', 'api_url': check_url + '/patroni', 'state': 'running', 'role': 'master'})
out['put_member'] = c.kv.put('service/pglab/members/node1', member, acquire=sid)
out['initialize'] = c.kv.put('service/pglab/initialize', '7000000000000000001', cas=0)
out['initialize_again'] = c.kv.put('service/pglab/initialize', '7000000000000000002', cas=0)
out['put_leader'] = c.kv.put('service/pglab/leader', 'node1', acquire=sid)
out['put_status'] = c.kv.put('service/pglab/status', '{"optime":67108864}')
try:
    c.kv.put('service/pglab/leader', 'node2', acquire='00000000-0000-0000-0000-000000000000')
    out['invalid_session'] = 'no error'
except InvalidSession as e:
    out['invalid_session'] = str(e)

idx, nodes = c.kv.get('service/pglab/', recurse=True)
out['recurse_index'] = int(idx)
out['recurse'] = [[n['Key'], (n['Value'] or b'').decode(), n.get('Session'), n['LockIndex']] for n in nodes]

idx404, missing = c.kv.get('service/pglab/failover')
out['missing'] = [int(idx404), missing]

# a replica blocks on the leader key; the leader key goes (delete with cas) -> it wakes at once
leader_index, leader = c.kv.get('service/pglab/leader')
def drop_leader():
    time.sleep(0.3)
    out['delete_cas'] = c.kv.delete('service/pglab/leader', cas=leader['ModifyIndex'])
t = threading.Thread(target=drop_leader)
t.start()
t0 = time.time()
new_index, after = c.kv.get('service/pglab/leader', index=leader_index, wait='4.98s')
out['watch'] = {'waited': time.time() - t0, 'moved': str(new_index) != str(leader_index), 'value': after}
t.join()

# the service Patroni registers, and the GET deregister python-consul sends
check = consul.Check.http(check_url + '/master', '0.1s', deregister='50.0s')
out['register'] = c.agent.service.register('pglab', service_id='pglab/node1', address='127.0.0.1', port=5432,
                                           check=check, tags=['master', 'primary'], enable_tag_override=True)
time.sleep(0.5)

plain = consul.Consul(host=host, port=port, token=token)  # python-consul's own requests transport
hidx, entries = plain.health.service('pglab', passing=True)
out['health'] = [[e['Service']['ID'], e['Service']['Tags'], [ch['CheckID'] + '=' + ch['Status'] for ch in e['Checks']]] for e in entries]
t0 = time.time()
hidx2, _ = plain.health.service('pglab', index=hidx, wait='0.3s')
out['health_block'] = {'waited': time.time() - t0, 'same': hidx2 == hidx}
out['self_dc'] = c.agent.self()['Config']['Datacenter']
out['deregister_get'] = c.agent.service.deregister('pglab/node1')   # python-consul sends GET
out['deregister_get_no_token'] = plain.agent.service.deregister('pglab/node1')
_, still = plain.health.service('pglab')
out['after_deregister'] = len(still)

short = ConsulClient(host=host, port=port, token=token)
short.http.set_ttl(0.01)
try:
    short.session.create(name='x', checks=[], behavior='delete')
    out['short_ttl'] = 'no error'
except InvalidSessionTTL as e:
    out['short_ttl'] = str(e)

print(json.dumps(out))
`;

function runPython(args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile('/usr/bin/python3', ['-c', SCRIPT, ...args], { timeout: 20_000, env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`python failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as Record<string, unknown>);
    });
  });
}

describe('ConsulDouble fidelity: python-consul 0.7.1 as Patroni 3.0.2 uses it', function () {
  this.timeout(30_000);
  let consul: ConsulDouble;
  let api: http.Server;
  let apiUrl: string;

  before(async () => {
    // stands in for Patroni's REST API: /master and /replica answer 200
    api = http.createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"state":"running","role":"master"}');
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
    consul = await ConsulDouble.start({ sessionTtlMinSeconds: 1, checkStagger: false, minCheckIntervalMillis: 50, aclToken: 'patroni-token' });
  });
  after(async () => {
    await consul.stop();
    api.closeAllConnections();
    await new Promise<void>((r) => api.close(() => r()));
  });

  it('runs Patroni’s calls and sees what real Consul would answer', async () => {
    const out = await runPython([consul.host, String(consul.port), apiUrl, 'patroni-token']);
    const sid = out.session as string;
    assert.match(sid, /^[0-9a-f-]{36}$/);
    assert.equal(out.renew, true);
    assert.deepEqual(out.session_info, { Behavior: 'delete', TTL: '5.0s', LockDelay: 1_000_000, NodeChecks: [] });
    assert.equal(out.put_member, true);
    assert.equal(out.initialize, true);
    assert.equal(out.initialize_again, false);
    assert.equal(out.put_leader, true);
    assert.equal(out.put_status, true);
    assert.equal(out.invalid_session, '500 invalid session "00000000-0000-0000-0000-000000000000"');
    const recurse = out.recurse as [string, string, string | null, number][];
    const memberValue = recurse[2]?.[1] ?? '';
    assert.deepEqual(recurse, [
      ['service/pglab/initialize', '7000000000000000001', null, 0],
      ['service/pglab/leader', 'node1', sid, 1],
      ['service/pglab/members/node1', memberValue, sid, 1],
      ['service/pglab/status', '{"optime":67108864}', null, 0],
    ]);
    assert.equal((JSON.parse(memberValue) as { role: string }).role, 'master');
    assert.ok((out.recurse_index as number) >= 1);
    const [missingIndex, missingValue] = out.missing as [number, null];
    assert.ok(missingIndex >= 1, 'X-Consul-Index on a KV 404 (python-consul reads it)');
    assert.equal(missingValue, null);
    const watch = out.watch as { waited: number; moved: boolean; value: unknown };
    assert.equal(out.delete_cas, true);
    assert.equal(watch.moved, true);
    assert.equal(watch.value, null);
    assert.ok(watch.waited >= 0.25 && watch.waited < 2, `woke after ${watch.waited} s`);
    assert.equal(out.register, true);
    assert.deepEqual(out.health, [['pglab/node1', ['master', 'primary'], ['serfHealth=passing', 'service:pglab/node1=passing']]]);
    const block = out.health_block as { waited: number; same: boolean };
    assert.equal(block.same, true);
    assert.ok(block.waited >= 0.29, `blocked ${block.waited} s`);
    assert.equal(out.self_dc, 'dc1');
    assert.equal(out.deregister_get, false, 'GET deregister: 405, as real Consul');
    assert.equal(out.deregister_get_no_token, false);
    const deregisters = consul.requestLog.filter((e) => e.path === '/v1/agent/service/deregister/pglab/node1');
    assert.deepEqual(
      deregisters.map((e) => `${e.method} ${e.status}`),
      ['GET 405', 'GET 405'],
    );
    assert.equal(out.after_deregister, 1);
    assert.equal(out.short_ttl, "500 Invalid Session TTL '10000000', must be between [1s-24h0m0s]");
    // the token went in the X-Consul-Token header (Patroni) or ?token= (python-consul) and is never logged
    assert.ok(consul.requestCount('/v1/') > 15);
    assert.ok(!consul.requestLog.some((e) => e.status === 403));
    assert.ok(!JSON.stringify(consul.requestLog).includes('patroni-token'));
  });
});
