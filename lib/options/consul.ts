import type { ConsulConfig } from '../discovery/consul-config.js';
import { assertKnownKeys } from '../option-keys.js';
import { explicitHost, parseConsulAddress, serverName } from './consul-address.js';
import type { ParsedAddress } from './consul-address.js';
import { certificateText, consulName, privateKeyText, resolveBasicAuth, resolveCa, resolvePem, resolveToken } from './consul-credentials.js';
import type { Io } from './consul-credentials.js';
import { DEFAULTS } from './core.js';
import { keysAt } from './settings.js';
import type { ConsulOptions } from './types.js';
import { MAX_TIMER_MILLIS, boolean, deepFreeze, defined, envVar, integer, invalid, isObject, label, nonEmptyString, oneOf, option, parseGoBool, pick, readEnv } from './values.js';


/** The keys of the `consul` option (the option table's `consul.*` rows). */
export const CONSUL_KEYS: readonly string[] = keysAt('consul');
export interface ResolvedConsul {
  readonly config: ConsulConfig;
  readonly waitSeconds: number;
  readonly requestTimeoutMillis: number;
  readonly connectTimeoutMillis: number;
}

export function resolveConsul(raw: unknown, env: NodeJS.ProcessEnv, io: Io): ResolvedConsul {
  if (raw !== undefined && !isObject(raw)) throw invalid(option('consul'), 'must be an object', raw);
  const c = (raw ?? {}) as ConsulOptions;
  assertKnownKeys(c, CONSUL_KEYS, 'consul');

  // Where: explicit address | explicit host/port | CONSUL_HTTP_ADDR | default.
  if (c.address !== undefined && (c.host !== undefined || c.port !== undefined)) {
    throw new TypeError(`pg-consul: option "consul.address" cannot be combined with "consul.${c.host !== undefined ? 'host' : 'port'}"`);
  }
  let where: ParsedAddress;
  let defaultPort: number | undefined;
  if (c.address !== undefined) {
    where = parseConsulAddress(nonEmptyString(c.address, option('consul.address')), option('consul.address'));
  } else if (c.host !== undefined || c.port !== undefined) {
    where = {
      host: c.host === undefined ? DEFAULTS.consulHost : explicitHost(c.host, option('consul.host')),
      port: c.port === undefined ? undefined : integer(c.port, option('consul.port'), 1, 65535),
    };
    defaultPort = DEFAULTS.consulPort;
  } else {
    const fromEnv = readEnv(env, 'CONSUL_HTTP_ADDR');
    if (fromEnv === undefined) {
      where = { host: DEFAULTS.consulHost };
      defaultPort = DEFAULTS.consulPort;
    } else {
      where = parseConsulAddress(fromEnv, envVar('CONSUL_HTTP_ADDR'));
    }
  }
  const secure = pick(c.secure, 'consul.secure', env, 'CONSUL_HTTP_SSL', boolean, parseGoBool) ?? false;
  const scheme = where.scheme === 'https' || secure ? 'https' : 'http';
  const port = where.port ?? defaultPort ?? (scheme === 'https' ? 443 : 80);

  const verify = pick(c.verify, 'consul.verify', env, 'CONSUL_HTTP_SSL_VERIFY', boolean, parseGoBool) ?? true;
  const servername = pick(c.tlsServerName, 'consul.tlsServerName', env, 'CONSUL_TLS_SERVER_NAME', serverName, serverName);
  const ca = resolveCa(c, env, io);
  const cert = resolvePem(c, 'cert', 'certFile', 'CONSUL_CLIENT_CERT', env, io, certificateText);
  const key = resolvePem(c, 'key', 'keyFile', 'CONSUL_CLIENT_KEY', env, io, privateKeyText);
  if (cert !== undefined && key === undefined) {
    throw new TypeError(`pg-consul: ${label(cert.origin)} is set but no client key is (consul.key, consul.keyFile or CONSUL_CLIENT_KEY)`);
  }
  if (key !== undefined && cert === undefined) {
    throw new TypeError(`pg-consul: ${label(key.origin)} is set but no client certificate is (consul.cert, consul.certFile or CONSUL_CLIENT_CERT)`);
  }

  const config: ConsulConfig = defined({
    scheme,
    host: where.socketPath === undefined ? (where.host ?? DEFAULTS.consulHost) : 'localhost',
    port,
    socketPath: where.socketPath,
    token: resolveToken(c, env, io),
    basicAuth: resolveBasicAuth(c, env),
    datacenter: pick(c.datacenter, 'consul.datacenter', env, 'PGCONSUL_CONSUL_DATACENTER', consulName, consulName),
    consistency:
      pick(
        c.consistency,
        'consul.consistency',
        env,
        'PGCONSUL_CONSUL_CONSISTENCY',
        (v, o) => oneOf(v, o, ['default', 'stale', 'consistent'] as const),
        (v, o) => oneOf(v, o, ['default', 'stale', 'consistent'] as const),
      ) ?? DEFAULTS.consistency,
    namespace: pick(c.namespace, 'consul.namespace', env, 'CONSUL_NAMESPACE', consulName, consulName),
    partition: pick(c.partition, 'consul.partition', env, 'CONSUL_PARTITION', consulName, consulName),
    tls: defined({ ca, cert: cert?.text, key: key?.text, servername, rejectUnauthorized: verify }),
  });

  const waitSeconds =
    c.waitSeconds === undefined ? DEFAULTS.waitSeconds : integer(c.waitSeconds, option('consul.waitSeconds'), 1, 600);
  const requestTimeoutMillis =
    c.requestTimeoutMillis === undefined
      ? DEFAULTS.requestTimeoutMillis
      : integer(c.requestTimeoutMillis, option('consul.requestTimeoutMillis'), 1, MAX_TIMER_MILLIS);
  const connectTimeoutMillis =
    c.connectTimeoutMillis === undefined
      ? DEFAULTS.consulConnectTimeoutMillis
      : integer(c.connectTimeoutMillis, option('consul.connectTimeoutMillis'), 0, MAX_TIMER_MILLIS);
  return { config: deepFreeze(config), waitSeconds, requestTimeoutMillis, connectTimeoutMillis };
}
