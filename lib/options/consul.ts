/**
 * The `consul` option resolved: where Consul is, its TLS settings and credentials, and the
 * request timings, as one frozen `ConsulConfig`.
 *
 * @module
 */
import { OPTIONS } from './table.js';
import type { ConsulConfig } from '../discovery/consul-config.js';
import { assertKnownKeys } from '../option-keys.js';
import { explicitHost, parseConsulAddress, serverName } from './consul-address.js';
import type { ParsedAddress } from './consul-address.js';
import { certificateText, consulName, privateKeyText, resolveBasicAuth, resolveCa, resolvePem, resolveToken } from './consul-credentials.js';
import type { Io } from './consul-credentials.js';
import { DEFAULTS } from './core.js';
import { customSetting, keysAt, setting, settingOrDefault } from './settings.js';
import type { ConsulOptions } from './types.js';
import { deepFreeze, defined, envVar, invalid, isObject, label, nonEmptyString, option, readEnv } from './values.js';


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
  const { where, defaultPort } = consulLocation(c, env);
  const scheme = where.scheme === 'https' || settingOrDefault('consul.secure', c.secure, env) ? 'https' : 'http';
  const port = where.port ?? defaultPort ?? (scheme === 'https' ? 443 : 80);
  const tls = resolveTls(c, env, io);
  const config: ConsulConfig = defined({
    scheme,
    host: where.socketPath === undefined ? (where.host ?? DEFAULTS.consulHost) : 'localhost',
    port,
    socketPath: where.socketPath,
    token: resolveToken(c, env, io),
    basicAuth: resolveBasicAuth(c, env),
    datacenter: customSetting('consul.datacenter', c.datacenter, env, consulName),
    consistency: settingOrDefault('consul.consistency', c.consistency, env),
    namespace: customSetting('consul.namespace', c.namespace, env, consulName),
    partition: customSetting('consul.partition', c.partition, env, consulName),
    tls,
  });
  return {
    config: deepFreeze(config),
    waitSeconds: settingOrDefault('consul.waitSeconds', c.waitSeconds, env),
    requestTimeoutMillis: settingOrDefault('consul.requestTimeoutMillis', c.requestTimeoutMillis, env),
    connectTimeoutMillis: settingOrDefault('consul.connectTimeoutMillis', c.connectTimeoutMillis, env),
  };
}

/** Where Consul is: explicit address | explicit host/port | CONSUL_HTTP_ADDR | default. */
function consulLocation(c: ConsulOptions, env: NodeJS.ProcessEnv): { where: ParsedAddress; defaultPort?: number } {
  if (c.address !== undefined && (c.host !== undefined || c.port !== undefined)) {
    throw new TypeError(`pg-consul: option "consul.address" cannot be combined with "consul.${c.host !== undefined ? 'host' : 'port'}"`);
  }
  if (c.address !== undefined) {
    return { where: parseConsulAddress(nonEmptyString(c.address, option('consul.address')), option('consul.address')) };
  }
  if (c.host !== undefined || c.port !== undefined) {
    const host = c.host === undefined ? DEFAULTS.consulHost : explicitHost(c.host, option('consul.host'));
    return { where: { host, port: setting('consul.port', c.port, env) }, defaultPort: DEFAULTS.consulPort };
  }
  const fromEnv = readEnv(env, OPTIONS['consul.address'].env);
  if (fromEnv === undefined) return { where: { host: DEFAULTS.consulHost }, defaultPort: DEFAULTS.consulPort };
  return { where: parseConsulAddress(fromEnv, envVar(OPTIONS['consul.address'].env)) };
}

/** The TLS settings: verification, server name, CA, and the client certificate and key (both or neither). */
function resolveTls(c: ConsulOptions, env: NodeJS.ProcessEnv, io: Io): ConsulConfig['tls'] {
  const verify = settingOrDefault('consul.verify', c.verify, env);
  const servername = customSetting('consul.tlsServerName', c.tlsServerName, env, serverName);
  const ca = resolveCa(c, env, io);
  const cert = resolvePem(c, 'cert', 'certFile', OPTIONS['consul.certFile'].env, env, io, certificateText);
  const key = resolvePem(c, 'key', 'keyFile', OPTIONS['consul.keyFile'].env, env, io, privateKeyText);
  if (cert !== undefined && key === undefined) {
    throw new TypeError(`pg-consul: ${label(cert.origin)} is set but no client key is (consul.key, consul.keyFile or CONSUL_CLIENT_KEY)`);
  }
  if (key !== undefined && cert === undefined) {
    throw new TypeError(`pg-consul: ${label(key.origin)} is set but no client certificate is (consul.cert, consul.certFile or CONSUL_CLIENT_CERT)`);
  }
  return defined({ ca, cert: cert?.text, key: key?.text, servername, rejectUnauthorized: verify });
}
