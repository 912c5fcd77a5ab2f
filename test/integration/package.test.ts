/**
 * The published shape: `npm run build` emits dist/, and both `import` and `require()` of
 * `pg-consul` and `pg-consul/testing` work through package.json's `exports` (require of an
 * ES module needs Node ≥ 20.19, the version package.json's `engines` asks for). The main
 * entry loads nothing of the testing kit. `npm pack` yields a tarball that installs into an
 * empty application and works there (ESM, CommonJS, types, every `bin`).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string; bin?: string | Record<string, string> };

describe('package entry points (integration: built dist/)', function () {
  this.timeout(180_000);
  let scratch: string;

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'pg-consul-package-'));
    await run('npm', ['run', 'build'], { cwd: root });
  });

  after(() => {
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
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

  it('importing the main entry loads no module of the testing kit (a resolve hook lists every module loaded)', async () => {
    // Every URL the loader resolves is appended to a file by an off-thread resolve hook.
    const loaded = async (specifier: string): Promise<string[]> => {
      const log = join(scratch, `resolved-${specifier.replace(/\W/g, '_')}.txt`);
      const hooks = join(scratch, 'record-hooks.mjs');
      writeFileSync(
        hooks,
        "import { appendFileSync } from 'node:fs';\n" +
          'export async function resolve(specifier, context, next) {\n' +
          '  const result = await next(specifier, context);\n' +
          "  appendFileSync(process.env.RESOLVED_LOG, result.url + '\\n');\n" +
          '  return result;\n' +
          '}\n',
      );
      const register = `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(hooks).href)});`;
      await run(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', `await import(${JSON.stringify(specifier)});`], {
        cwd: root,
        env: { ...process.env, RESOLVED_LOG: log },
      });
      return readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('file:'));
    };
    const dist = pathToFileURL(join(root, 'dist')).href;
    const main = await loaded('pg-consul');
    assert.ok(main.some((u) => u === `${dist}/index.js`), 'the hook saw dist/index.js');
    assert.ok(main.filter((u) => u.startsWith(`${dist}/`)).length > 10, 'and the modules it imports');
    assert.deepEqual(main.filter((u) => u.startsWith(`${dist}/testing/`)), [], 'no dist/testing module');
    // The control: the testing entry does load them.
    const testing = await loaded('pg-consul/testing');
    assert.ok(testing.some((u) => u === `${dist}/testing/patroni-lab.js`));
  });

  it('npm pack: the tarball installs into an empty app; ESM import, require(), the type declarations and every bin are there and work', async () => {
    await run('npm', ['pack', '--pack-destination', scratch], { cwd: root });
    const tarball = join(scratch, `${pkg.name}-${pkg.version}.tgz`);
    assert.ok(existsSync(tarball));
    const app = join(scratch, 'app');
    await run('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', version: '1.0.0', private: true }));
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: app, timeout: 120_000 });

    const installed = join(app, 'node_modules', 'pg-consul');
    const files = readdirSync(installed).sort();
    assert.deepEqual(files, ['LICENSE', 'README.md', 'dist', 'docs', 'package.json']);
    assert.ok(existsSync(join(installed, 'docs', 'configuration.md')), 'the guides the README links to');
    assert.ok(existsSync(join(installed, 'dist', 'index.d.ts')) && existsSync(join(installed, 'dist', 'testing', 'index.d.ts')));
    assert.deepEqual(readdirSync(join(installed, 'dist'), { recursive: true }).filter((f) => String(f).endsWith('.map')), [], 'no source maps without their sources');

    writeFileSync(join(app, 'esm.mjs'), "import { Pool } from 'pg-consul';\nimport { ConsulDouble } from 'pg-consul/testing';\nconsole.log(typeof Pool, typeof ConsulDouble);\n");
    writeFileSync(join(app, 'cjs.cjs'), "const { Pool } = require('pg-consul');\nconst { ConsulDouble } = require('pg-consul/testing');\nconsole.log(typeof Pool, typeof ConsulDouble);\n");
    for (const file of ['esm.mjs', 'cjs.cjs']) {
      const { stdout } = await run(process.execPath, [file], { cwd: app });
      assert.equal(stdout.trim(), 'function function', file);
    }

    // Every `bin` of package.json (none until the CLI lands) answers --help.
    const bins = typeof pkg.bin === 'string' ? { [pkg.name]: pkg.bin } : (pkg.bin ?? {});
    for (const name of Object.keys(bins)) {
      const { stdout } = await run(join(app, 'node_modules', '.bin', name), ['--help'], { cwd: app });
      assert.match(stdout, new RegExp(name), `${name} --help`);
    }
  });
});
