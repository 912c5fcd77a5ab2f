/**
 * The published shape: `npm run build` emits dist/, and both `import` and `require()` of
 * `pg-consul` and `pg-consul/testing` work through package.json's `exports` (require of an
 * ES module needs Node ≥ 20.19, the version package.json's `engines` asks for).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

describe('package entry points (integration: built dist/)', function () {
  this.timeout(120_000);

  before(async () => {
    await run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root });
  });

  it('require() works for pg-consul and pg-consul/testing', async () => {
    const { stdout } = await run(
      process.execPath,
      ['-e', "const m = require('pg-consul'); const t = require('pg-consul/testing'); console.log(typeof m.Pool, typeof m.OutcomeUnknownError, typeof t.PatroniLab, typeof t.ConsulDouble)"],
      { cwd: root },
    );
    assert.equal(stdout.trim(), 'function function function function');
  });

  it('import works, and a Pool built from dist is a pg.Pool-shaped object that ends cleanly', async () => {
    const script = [
      "import { Pool, PgConsulError } from 'pg-consul';",
      "const pool = new Pool({ service: 'pglab', consul: { host: '127.0.0.1', port: 1 }, failoverTimeoutMillis: 0 });",
      "const shape = ['query', 'connect', 'end', 'on'].every((k) => typeof pool[k] === 'function') && typeof pool.replica.query === 'function';",
      'await pool.end();',
      "let named = '';",
      "try { new Pool({ service: '../x' }); } catch (e) { named = e instanceof TypeError && /service/.test(e.message) ? 'service' : String(e); }",
      'console.log(shape, pool.ended, named, typeof PgConsulError);',
    ].join('\n');
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: root });
    assert.equal(stdout.trim(), 'true true service function');
  });
});
