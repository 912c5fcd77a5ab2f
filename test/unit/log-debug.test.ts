import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import createDebug from 'debug';
import { REDACTED, createLogger, logArea } from '../../lib/log.js';
import type { LogArea } from '../../lib/log.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('log: DEBUG=pg-consul:* namespaces', () => {
  describe('logArea', () => {
    const cases: ReadonlyArray<readonly [string, Record<string, unknown> | undefined, LogArea]> = [
      ['retrying', { role: 'primary' }, 'retry'],
      ['topology changed', { version: 2 }, 'topology'],
      ['writes moved to a new primary', {}, 'topology'],
      ['primary candidate is read-only; skipping it', { node: 'a:1' }, 'topology'],
      ['node did not answer the dead-peer probe; fencing it until it answers or the topology changes', {}, 'topology'],
      ['an unreachable node answers again; routing to it resumes', {}, 'topology'],
      ['discovery round failed; keeping the last known topology', { error: 'x' }, 'discovery'],
      ['Consul health discovery recovered', { source: 'consul-health', service: 's' }, 'discovery'],
      ['connect ECONNREFUSED 127.0.0.1:1', { source: 'static' }, 'discovery'],
      ['lag monitor could not measure a node', {}, 'lag'],
      ['session could not read the WAL position after a write', {}, 'session'],
      ['idle client error (no error listener on the pool)', {}, 'pool'],
      ["a 'topology' listener threw", {}, 'pool'],
      ['end(): a node with work pending did not answer; closing its connections', {}, 'pool'],
      ['connection of a checked-out client failed', undefined, 'pool'],
    ];
    for (const [message, fields, area] of cases) {
      it(`${JSON.stringify(message)} → ${area}`, () => assert.equal(logArea(message, fields), area));
    }
  });

  describe('the default sink', () => {
    const originalLog = createDebug.log;
    let previous = '';
    let lines: { namespace: string; text: string }[] = [];
    beforeEach(() => {
      previous = createDebug.disable();
      lines = [];
      createDebug.log = function (this: createDebug.Debugger, ...args: unknown[]): void {
        lines.push({ namespace: this.namespace, text: args.map(String).join(' ') });
      };
    });
    afterEach(() => {
      createDebug.log = originalLog;
      createDebug.disable();
      if (previous) createDebug.enable(previous);
    });

    it('writes each line to the namespace of its area, redacted, when enabled', () => {
      createDebug.enable('pg-consul:*');
      const log = createLogger();
      log('warn', 'discovery round failed; keeping the last known topology', { error: 'GET http://u:s3cret@c/v1 403', token: 't0ken' });
      log('debug', 'retrying', { role: 'primary', attempt: 1 });
      log('info', 'writes moved to a new primary', { to: 'n2' });
      log('warn', 'idle client error (no error listener on the pool)', { error: 'password=s3cret' });
      assert.deepEqual(
        lines.map((l) => l.namespace),
        ['pg-consul:discovery', 'pg-consul:retry', 'pg-consul:topology', 'pg-consul:pool'],
      );
      assert.match(lines[0]!.text, /warn discovery round failed; keeping the last known topology/);
      assert.ok(lines[0]!.text.includes(`token: '${REDACTED}'`), lines[0]!.text);
      assert.ok(lines[0]!.text.includes(`http://u:${REDACTED}@c/v1`), lines[0]!.text);
      assert.match(lines[1]!.text, /debug retrying \{ role: 'primary', attempt: 1 \}/);
      for (const l of lines) {
        assert.ok(!l.text.includes('s3cret'), l.text);
        assert.ok(!l.text.includes('t0ken'), l.text);
      }
    });

    it('writes only the enabled areas', () => {
      createDebug.enable('pg-consul:retry,pg-consul:topology');
      const log = createLogger();
      log('warn', 'discovery round failed; keeping the last known topology', {});
      log('debug', 'retrying', { attempt: 2 });
      log('debug', 'topology changed', { version: 3 });
      assert.deepEqual(
        lines.map((l) => l.namespace),
        ['pg-consul:retry', 'pg-consul:topology'],
      );
    });

    it('writes nothing when no namespace is enabled', () => {
      const log = createLogger();
      log('error', 'retrying', { attempt: 1 });
      log('error', 'topology changed', {});
      assert.deepEqual(lines, []);
    });
  });

  it('DEBUG=pg-consul:* in the environment prints redacted lines per area on stderr (without NODE_DEBUG)', async function () {
    this.timeout(30_000);
    const script = [
      "import { createLogger } from './lib/log.ts';",
      'const log = createLogger();',
      "log('debug', 'retrying', { attempt: 1 });",
      "log('warn', 'w-msg postgres://app:s3cret@db/app', { password: 's3cret', node: 'n1' });",
    ].join('\n');
    const env: NodeJS.ProcessEnv = { ...process.env, DEBUG: 'pg-consul:*', DEBUG_COLORS: 'no' };
    delete env.NODE_DEBUG;
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, env, timeout: 20_000 }, (err, out, errOut) =>
        err ? reject(err) : resolve({ stdout: out, stderr: errOut }),
      );
    });
    assert.equal(stdout, '');
    assert.match(stderr, /pg-consul:retry debug retrying \{ attempt: 1 \}/);
    assert.match(stderr, /pg-consul:pool warn w-msg postgres:\/\/app:\[REDACTED\]@db\/app \{ password: '\[REDACTED\]', node: 'n1' \}/);
    assert.ok(!stderr.includes('s3cret'), stderr);
    assert.ok(!stderr.includes('PG-CONSUL'), 'NODE_DEBUG output only with NODE_DEBUG');
  });
});
