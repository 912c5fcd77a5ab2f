/**
 * Consul credentials and TLS material: the ACL token (and token file), basic auth, the CA
 * bundle or directory, and the client certificate and key — from options, else their environment variables.
 *
 * @module
 */
import { OPTIONS } from './table.js';
import type { ConsulOptions, ListFiles, ReadFile } from './types.js';
import { customSetting } from './settings.js';
import { CONSUL_NAME, CONTROL_CHAR, PEM_CERTIFICATE, PEM_PRIVATE_KEY, TOKEN_TEXT, envVar, fileError, invalid, label, nonEmptyString, option, readEnv } from './values.js';
import type { Origin } from './values.js';

// ---------------------------------------------------------------------------------------
// Files (token, CA, client certificate and key)

export interface Io {
  readonly readFile: ReadFile;
  readonly listFiles: ListFiles;
}

export function readText(path: string, origin: Origin, io: Io): string {
  try {
    const text = io.readFile(path);
    if (typeof text !== 'string') throw new TypeError('readFile returned a non-string');
    return text;
  } catch (err) {
    throw fileError(origin, path, err);
  }
}

export function certificateText(text: string, origin: Origin, path?: string): string {
  if (!text.includes(PEM_CERTIFICATE)) {
    const where = path === undefined ? '' : ` (file ${JSON.stringify(path)})`;
    throw new TypeError(`pg-consul: ${label(origin)} must be PEM certificate text${where}, got (value hidden)`);
  }
  return text;
}

export function caDirectory(dir: string, origin: Origin, io: Io): string {
  let files: readonly string[];
  try {
    files = io.listFiles(dir);
  } catch (err) {
    throw fileError(origin, dir, err);
  }
  if (files.length === 0) throw new TypeError(`pg-consul: ${label(origin)} names a directory with no files: ${JSON.stringify(dir)}`);
  return files
    .map((file) => certificateText(readText(file, origin, io), origin, file))
    .map((pem) => (pem.endsWith('\n') ? pem : `${pem}\n`))
    .join('');
}

export function resolveCa(c: ConsulOptions, env: NodeJS.ProcessEnv, io: Io): string | undefined {
  const given = (['ca', 'caFile', 'caPath'] as const).filter((k) => c[k] !== undefined);
  if (given.length > 1) {
    throw new TypeError(`pg-consul: options "consul.${given[0]}" and "consul.${given[1]}" cannot be combined`);
  }
  if (c.ca !== undefined) {
    const origin = option('consul.ca');
    return certificateText(nonEmptyString(c.ca, origin), origin);
  }
  if (c.caFile !== undefined) {
    const origin = option('consul.caFile');
    const path = nonEmptyString(c.caFile, origin);
    return certificateText(readText(path, origin, io), origin, path);
  }
  if (c.caPath !== undefined) {
    const origin = option('consul.caPath');
    return caDirectory(nonEmptyString(c.caPath, origin), origin, io);
  }
  const caFile = readEnv(env, OPTIONS['consul.caFile'].env);
  if (caFile !== undefined) {
    const origin = envVar(OPTIONS['consul.caFile'].env);
    return certificateText(readText(caFile, origin, io), origin, caFile);
  }
  const caPath = readEnv(env, OPTIONS['consul.caPath'].env);
  return caPath === undefined ? undefined : caDirectory(caPath, envVar(OPTIONS['consul.caPath'].env), io);
}

/**
 * One PEM item given as text (`inline`), as a file (`file`) or by an environment variable
 * naming a file. Returns the text and where it came from.
 */
export function resolvePem(
  c: ConsulOptions,
  inline: 'cert' | 'key',
  file: 'certFile' | 'keyFile',
  envName: string,
  env: NodeJS.ProcessEnv,
  io: Io,
  check: (text: string, origin: Origin, path?: string) => string,
): { text: string; origin: Origin } | undefined {
  if (c[inline] !== undefined && c[file] !== undefined) {
    throw new TypeError(`pg-consul: options "consul.${inline}" and "consul.${file}" cannot be combined`);
  }
  if (c[inline] !== undefined) {
    const origin = option(`consul.${inline}`);
    return { text: check(nonEmptyString(c[inline], origin), origin), origin };
  }
  let origin: Origin;
  let path: string;
  if (c[file] !== undefined) {
    origin = option(`consul.${file}`);
    path = nonEmptyString(c[file], origin);
  } else {
    const fromEnv = readEnv(env, envName);
    if (fromEnv === undefined) return undefined;
    origin = envVar(envName);
    path = fromEnv;
  }
  return { text: check(readText(path, origin, io), origin, path), origin };
}

export function privateKeyText(text: string, origin: Origin, path?: string): string {
  if (!PEM_PRIVATE_KEY.test(text)) {
    const where = path === undefined ? '' : ` (file ${JSON.stringify(path)})`;
    throw new TypeError(`pg-consul: ${label(origin)} must be a PEM private key${where}, got (value hidden)`);
  }
  return text;
}

export function tokenText(value: unknown, origin: Origin): string {
  if (typeof value !== 'string' || !TOKEN_TEXT.test(value)) {
    throw invalid(origin, 'must be a non-empty string of printable characters without spaces', value);
  }
  return value;
}

/**
 * The ACL token: explicit `tokenFile` > explicit `token`; only when neither is given,
 * `CONSUL_HTTP_TOKEN_FILE` > `CONSUL_HTTP_TOKEN`. A token file is trimmed; an empty one falls
 * back to the token of the same level, as in Consul's Go client.
 */
export function resolveToken(c: ConsulOptions, env: NodeJS.ProcessEnv, io: Io): string | undefined {
  const explicit = c.token !== undefined || c.tokenFile !== undefined;
  const fileOrigin = explicit ? option('consul.tokenFile') : envVar(OPTIONS['consul.tokenFile'].env);
  const tokenOrigin = explicit ? option('consul.token') : envVar(OPTIONS['consul.token'].env);
  const file = explicit ? c.tokenFile : readEnv(env, OPTIONS['consul.tokenFile'].env);
  const token = explicit ? c.token : readEnv(env, OPTIONS['consul.token'].env);
  if (file !== undefined) {
    const path = nonEmptyString(file, fileOrigin);
    const content = readText(path, fileOrigin, io).trim();
    if (content !== '') {
      if (!TOKEN_TEXT.test(content)) {
        throw new TypeError(
          `pg-consul: ${label(fileOrigin)} names a file whose content is not a valid token: ${JSON.stringify(path)} (value hidden)`,
        );
      }
      return content;
    }
  }
  return token === undefined ? undefined : tokenText(token, tokenOrigin);
}

export function resolveBasicAuth(c: ConsulOptions, env: NodeJS.ProcessEnv): { username: string; password: string } | undefined {
  return customSetting(
    'consul.auth',
    c.auth,
    env,
    (value, origin) => splitAuth(nonEmptyString(value, origin), origin),
    (text, origin) => splitAuth(text, origin),
  );
}

export function splitAuth(text: string, origin: Origin): { username: string; password: string } {
  if (CONTROL_CHAR.test(text)) throw invalid(origin, 'must be "user" or "user:password" without control characters', text);
  const colon = text.indexOf(':');
  return colon === -1 ? { username: text, password: '' } : { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

export function consulName(value: unknown, origin: Origin): string {
  if (typeof value !== 'string' || !CONSUL_NAME.test(value)) {
    throw invalid(origin, 'must be a name of letters, digits, ".", "_" or "-"', value);
  }
  return value;
}
