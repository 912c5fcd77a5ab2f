import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import type pg from 'pg';
import { PROBE_SQL, createPgProbe } from '../../../lib/discovery/pg-probe.js';

const PASSWORD = 'pr0be-s3cret-password';

type Behaviour = {
  connect?: () => Promise<void>;
  rows?: Array<Record<string, unknown>>;
  queryError?: Error;
};

/** A pg.Client stand-in recording its config and calls. */
function fakeClientClass(behaviour: Behaviour, seen: { configs: pg.ClientConfig[]; queries: string[]; ended: number }): new (config?: pg.ClientConfig) => pg.Client {
  class FakeClient {
    constructor(config: pg.ClientConfig = {}) {
      seen.configs.push(config);
    }
    on(): this {
      return this;
    }
    connect(): Promise<void> {
      return behaviour.connect ? behaviour.connect() : Promise.resolve();
    }
    query(text: string): Promise<{ rows: Array<Record<string, unknown>> }> {
      seen.queries.push(text);
      return behaviour.queryError ? Promise.reject(behaviour.queryError) : Promise.resolve({ rows: behaviour.rows ?? [] });
    }
    end(): Promise<void> {
      seen.ended += 1;
      return Promise.resolve();
    }
  }
  return FakeClient as unknown as new (config?: pg.ClientConfig) => pg.Client;
}

describe('createPgProbe', () => {
  function probeWith(behaviour: Behaviour): { probe: ReturnType<typeof createPgProbe>; seen: { configs: pg.ClientConfig[]; queries: string[]; ended: number } } {
    const seen = { configs: [] as pg.ClientConfig[], queries: [] as string[], ended: 0 };
    const probe = createPgProbe({ user: 'app', password: PASSWORD, database: 'app', max: 20, Client: fakeClientClass(behaviour, seen) } as pg.PoolConfig, 750);
    return { probe, seen };
  }

  const table: ReadonlyArray<[string, Behaviour, unknown]> = [
    ['a primary', { rows: [{ in_recovery: false, read_only: 'off' }] }, { reachable: true, inRecovery: false, readOnly: false }],
    ['a standby', { rows: [{ in_recovery: true, read_only: 'on' }] }, { reachable: true, inRecovery: true, readOnly: true }],
    ['a read-only primary', { rows: [{ in_recovery: false, read_only: 'on' }] }, { reachable: true, inRecovery: false, readOnly: true }],
    ['no row', { rows: [] }, { reachable: false, reason: 'probe returned no row' }],
    [
      'a refused password (SQLSTATE only, never the password)',
      { connect: () => Promise.reject(Object.assign(new Error(`password authentication failed for user "app"`), { code: '28P01' })) },
      { reachable: false, reason: '28P01' },
    ],
    ['a connect timeout (pg message)', { connect: () => Promise.reject(new Error('Connection terminated due to connection timeout')) }, { reachable: false, reason: 'Connection terminated due to connection timeout' }],
    ['a query timeout', { queryError: new Error('Query read timeout') }, { reachable: false, reason: 'Query read timeout' }],
  ];
  for (const [name, behaviour, expected] of table) {
    it(`reports ${name}`, async () => {
      const { probe, seen } = probeWith(behaviour);
      const result = await probe('db1', 5433, new AbortController().signal);
      assert.deepEqual(result, expected);
      assert.ok(!JSON.stringify(result).includes(PASSWORD));
      assert.equal(seen.ended, 1, 'always disconnects');
    });
  }

  it('connects to the given host with the pool credentials and short deadlines, running one statement', async () => {
    const { probe, seen } = probeWith({ rows: [{ in_recovery: false, read_only: 'off' }] });
    await probe('10.0.0.7', 6432, new AbortController().signal, { unref: true });
    const config = seen.configs[0]!;
    assert.equal(config.host, '10.0.0.7');
    assert.equal(config.port, 6432);
    assert.equal(config.user, 'app');
    assert.equal(config.password, PASSWORD);
    assert.equal(config.database, 'app');
    assert.equal(config.connectionTimeoutMillis, 750);
    assert.equal(config.query_timeout, 750);
    assert.equal(config.keepAlive, false);
    assert.equal(typeof config.stream, 'function', 'its own socket, to destroy on abort');
    const socket = (config.stream as unknown as () => Socket)();
    assert.ok(socket instanceof Socket);
    socket.destroy();
    assert.deepEqual(seen.queries, [PROBE_SQL]);
  });

  it('gives up at once when aborted mid-connect', async () => {
    let rejectConnect: (err: Error) => void = () => undefined;
    const { probe, seen } = probeWith({ connect: () => new Promise<void>((_, reject) => (rejectConnect = reject)) });
    const controller = new AbortController();
    const pending = probe('db1', 5432, controller.signal);
    await Promise.resolve();
    controller.abort();
    // The fake client has no socket of ours: the probe ends the client, whose connect then fails.
    assert.equal(seen.ended, 1);
    rejectConnect(new Error('Connection terminated'));
    assert.deepEqual(await pending, { reachable: false, reason: 'aborted' });
  });

  it('does not even connect with an already aborted signal', async () => {
    const { probe, seen } = probeWith({});
    const controller = new AbortController();
    controller.abort();
    assert.deepEqual(await probe('db1', 5432, controller.signal), { reachable: false, reason: 'aborted' });
    assert.equal(seen.configs.length, 0);
  });
});
