/**
 * The options the option table flags secret never show their values: not in a TypeError
 * (from the option or from its environment variable), and not in a log line of the
 * resolved configuration (lib/log.ts redact).
 */
import assert from 'node:assert/strict';
import { redact } from '../../lib/log.js';
import { resolveOptions } from '../../lib/options.js';
import type { PoolOptions } from '../../lib/options.js';
import { SECRET_OPTIONS } from '../../lib/options/settings.js';
import { OPTIONS } from '../../lib/options/table.js';
import type { OptionSpec } from '../../lib/options/table.js';

const BAD = 's3cr3t \u0001 value';
const KEY_PEM = '-----BEGIN PRIVATE KEY-----\ns3cr3t-key-body\n-----END PRIVATE KEY-----\n';
const CERT_PEM = '-----BEGIN CERTIFICATE-----\ncert-body\n-----END CERTIFICATE-----\n';

/** `{ consul: { token: value } }` for `consul.token`. */
function nested(name: string, value: unknown): PoolOptions {
  const [parent, key] = name.split('.') as [string, string | undefined];
  return (key === undefined ? { [parent]: value } : { [parent]: { [key]: value } }) as PoolOptions;
}

function hidesValue(err: unknown, source: RegExp): boolean {
  return err instanceof TypeError && source.test(err.message) && !err.message.includes('s3cr3t') && /\(value hidden\)/.test(err.message);
}

describe('options: secrets flagged in the option table', () => {
  it('flags the Consul token, basic auth and client key', () => {
    assert.deepEqual([...SECRET_OPTIONS].sort(), ['consul.auth', 'consul.key', 'consul.token']);
  });

  for (const name of SECRET_OPTIONS) {
    const spec: OptionSpec = OPTIONS[name];
    it(`${name}: a bad value from the option is a TypeError naming it, the value hidden`, () => {
      assert.throws(() => resolveOptions({ service: 'pglab', ...nested(name, BAD) }, {}), (err: unknown) => hidesValue(err, new RegExp(`option "${name}"`)));
    });
    if (spec.env !== undefined) {
      const envName = spec.env;
      it(`${name}: a bad value from ${envName} is a TypeError naming the variable, the value hidden`, () => {
        assert.throws(() => resolveOptions({ service: 'pglab' }, { [envName]: BAD }), (err: unknown) => hidesValue(err, new RegExp(`environment variable ${envName}`)));
      });
    }
  }

  it('a resolved configuration with every secret set logs none of them', () => {
    const resolved = resolveOptions(
      { service: 'pglab', password: 's3cr3t-pg', consul: { token: 's3cr3t-token', auth: 'app:s3cr3t-auth', cert: CERT_PEM, key: KEY_PEM } },
      {},
    );
    assert.equal(resolved.consul.token, 's3cr3t-token');
    const logged = JSON.stringify(redact(resolved));
    assert.ok(!logged.includes('s3cr3t'), logged);
  });
});
