/**
 * docs/configuration.md cannot drift from lib/options.ts: every option and environment
 * variable the code reads has a row, every row names a real option, and every default in
 * the tables is the one the code uses.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PG_OPTION_KEYS } from '../../lib/option-keys.js';
import { DEFAULTS, DISCOVERY_DEFAULTS, OPTION_KEYS, READ_ROUTING_DEFAULTS } from '../../lib/options.js';
import { OPTIONS } from '../../lib/options/table.js';
import type { OptionSpec } from '../../lib/options/table.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const doc = readFileSync(join(root, 'docs', 'configuration.md'), 'utf8');

interface Row {
  readonly option: string;
  readonly env: string;
  readonly defaults: string;
  readonly meaning: string;
}

/** The rows of every table whose header is `| option | env | default | meaning |`. */
function optionRows(markdown: string): Row[] {
  const rows: Row[] = [];
  let inTable = false;
  for (const line of markdown.split('\n')) {
    if (/^\| option \| env \| default \| meaning \|$/.test(line)) inTable = true;
    else if (!line.startsWith('|')) inTable = false;
    else if (inTable && !line.startsWith('| ---')) {
      const cells = line.split(' | ').map((c) => c.replace(/^\| |\s\|$/g, ''));
      const option = /^`([A-Za-z.]+)`$/.exec(cells[0] ?? '')?.[1];
      assert.ok(option !== undefined, `first cell must be one backticked option: ${line}`);
      rows.push({ option, env: cells[1] ?? '', defaults: cells[2] ?? '', meaning: cells.slice(3).join(' | ') });
    }
  }
  return rows;
}

const ENV_NAME = /\b(?:PG)?CONSUL_[A-Z0-9_]+\b/g;

/**
 * `'PGCONSUL_…'` / `'CONSUL_…'` string literals in the library outside lib/errors.ts (whose
 * literals are error codes) and the testing kit: the environment variables it reads.
 */
function envNamesInCode(): Set<string> {
  const files = readdirSync(join(root, 'lib'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.startsWith('testing') && f !== 'errors.ts')
    .map((f) => join(root, 'lib', f));
  const names = new Set<string>();
  for (const file of files) {
    for (const m of readFileSync(file, 'utf8').matchAll(/'((?:PG)?CONSUL_[A-Z0-9_]+)'/g)) names.add(m[1]!);
  }
  return names;
}

describe('docs/configuration.md against lib/options.ts', () => {
  const rows = optionRows(doc);

  it('has one row per pg-consul option, at every level, and no row for anything else', () => {
    const expected = [
      ...OPTION_KEYS.top,
      ...(['consul', 'patroni', 'preparedQuery', 'probe', 'maxReplicaLag'] as const).flatMap((parent) => OPTION_KEYS[parent].map((k) => `${parent}.${k}`)),
    ].sort();
    assert.deepEqual(rows.map((r) => r.option).sort(), expected);
  });

  it('names every environment variable the library reads, and only those', () => {
    const documented = new Set(rows.flatMap((r) => r.env.match(ENV_NAME) ?? []));
    const code = envNamesInCode();
    assert.ok(code.size > 30, `found ${code.size} variables in lib/`);
    assert.deepEqual([...documented].sort(), [...code].sort());
  });

  it('shows the defaults the code uses', () => {
    const defaults: Record<string, unknown> = {
      failoverTimeoutMillis: DEFAULTS.failoverTimeoutMillis,
      primaryTags: DEFAULTS.primaryTags,
      replicaTags: DEFAULTS.replicaTags,
      readFallback: DEFAULTS.readFallback,
      retryInitialDelayMillis: DEFAULTS.retryInitialDelayMillis,
      retryMaxDelayMillis: DEFAULTS.retryMaxDelayMillis,
      discoveryMinIntervalMillis: DEFAULTS.discoveryMinIntervalMillis,
      discovery: DISCOVERY_DEFAULTS.mode,
      lagCheckIntervalMillis: READ_ROUTING_DEFAULTS.lagCheckIntervalMillis,
      autoReadRouting: READ_ROUTING_DEFAULTS.autoReadRouting,
      'consul.address': `${DEFAULTS.consulHost}:${DEFAULTS.consulPort}`,
      'consul.host': DEFAULTS.consulHost,
      'consul.port': DEFAULTS.consulPort,
      'consul.consistency': DEFAULTS.consistency,
      'consul.waitSeconds': DEFAULTS.waitSeconds,
      'consul.requestTimeoutMillis': DEFAULTS.requestTimeoutMillis,
      'patroni.namespace': DISCOVERY_DEFAULTS.patroniNamespace,
      'patroni.confirmPromotion': DISCOVERY_DEFAULTS.confirmPromotion,
      'preparedQuery.intervalMillis': DISCOVERY_DEFAULTS.preparedQueryIntervalMillis,
      'probe.intervalMillis': DISCOVERY_DEFAULTS.probeIntervalMillis,
      'probe.timeoutMillis': DISCOVERY_DEFAULTS.probeTimeoutMillis,
    };
    for (const [option, value] of Object.entries(defaults)) {
      const row = rows.find((r) => r.option === option);
      assert.ok(row, `a row for ${option}`);
      for (const part of Array.isArray(value) ? value : [value]) {
        assert.ok(row.defaults.includes(`\`${String(part)}\``), `${option}: default cell ${JSON.stringify(row.defaults)} shows \`${String(part)}\``);
      }
    }
  });

  it('has exactly the rows of the option table, in any order', () => {
    assert.deepEqual(rows.map((r) => r.option).sort(), Object.keys(OPTIONS).sort());
  });

  for (const [name, spec] of Object.entries(OPTIONS) as Array<[string, OptionSpec]>) {
    it(`row ${name} matches the option table: doc line, env variable, default, secret`, () => {
      const row = rows.find((r) => r.option === name);
      assert.ok(row, `a row for ${name}`);
      assert.equal(row.meaning, spec.doc);
      if (spec.env === undefined) assert.equal(row.env.match(ENV_NAME), null, `${name} reads no variable`);
      else assert.ok(row.env.startsWith(`\`${spec.env}\``), `${name}: env cell ${JSON.stringify(row.env)} starts with ${spec.env}`);
      const parts = spec.default === undefined ? [] : Array.isArray(spec.default) ? spec.default : [spec.default];
      for (const part of parts) assert.ok(row.defaults.includes(`\`${String(part)}\``), `${name}: default cell shows \`${String(part)}\``);
      assert.equal(spec.secret === true, /\bSecret\./.test(row.meaning), `${name}: secret in the table iff "Secret." in the docs`);
    });
  }

  it('lists every pg option the unknown-key check accepts', () => {
    const pgSection = doc.slice(doc.indexOf('## pg options'));
    for (const key of PG_OPTION_KEYS) assert.ok(pgSection.includes(`\`${key}\``), key);
  });
});
