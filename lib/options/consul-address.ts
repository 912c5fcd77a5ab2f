/**
 * Consul agent addresses: `CONSUL_HTTP_ADDR` syntax (`host:port`, `[v6]:port`, `http(s)://`,
 * `unix://`), explicit hosts and the TLS server name, parsed as Consul's Go client does.
 *
 * @module
 */
import { HOST_NAME, invalid, nonEmptyString } from './values.js';
import type { Origin } from './values.js';
import { isIP, isIPv6 } from 'node:net';

// ---------------------------------------------------------------------------------------
// Consul address

export interface ParsedAddress {
  readonly scheme?: 'http' | 'https' | undefined;
  readonly host?: string | undefined;
  readonly port?: number | undefined;
  readonly socketPath?: string | undefined;
}

export function parsePort(text: string, fail: (why: string) => TypeError): number {
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 1 && port <= 65535)) throw fail('has an invalid port (expected 1-65535)');
  return port;
}

/** Splits `host`, `host:port`, `[v6]` or `[v6]:port`; IPv6 hosts are returned without brackets. */
export function parseHostPort(text: string, fail: (why: string) => TypeError): { host: string; port?: number } {
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    const host = end === -1 ? '' : text.slice(1, end);
    if (!isIPv6(host)) throw fail('has an invalid bracketed IPv6 address');
    const after = text.slice(end + 1);
    if (after === '') return { host };
    if (!after.startsWith(':')) throw fail('has unexpected text after the IPv6 address');
    return { host, port: parsePort(after.slice(1), fail) };
  }
  const colons = text.split(':').length - 1;
  if (colons > 1) throw fail('must write an IPv6 address in brackets, e.g. [::1]:8500');
  const [host = '', portText] = text.split(':');
  if (!HOST_NAME.test(host)) throw fail('has an invalid host');
  return portText === undefined ? { host } : { host, port: parsePort(portText, fail) };
}

/**
 * Parses a `CONSUL_HTTP_ADDR`-style address the way Consul's Go client does (`api.NewClient`):
 * `unix://<path>` → socket; `https://` → https; `http://` → http unless TLS is asked for
 * elsewhere; otherwise a bare `host[:port]`. A trailing `/` is allowed; a path prefix (which
 * the Go client supports behind reverse proxies) and credentials are rejected.
 */
export function parseConsulAddress(text: string, origin: Origin): ParsedAddress {
  // An address with '@' may carry credentials: never echo it.
  const secret = text.includes('@');
  const fail = (why: string): TypeError => invalid(origin, why, text, secret);
  let rest = text;
  let scheme: 'http' | 'https' | undefined;
  const sep = text.indexOf('://');
  if (sep !== -1) {
    const prefix = text.slice(0, sep);
    rest = text.slice(sep + 3);
    if (prefix === 'unix') {
      if (rest === '') throw fail('needs a socket path after "unix://"');
      return { socketPath: rest };
    }
    if (prefix !== 'http' && prefix !== 'https') throw fail('must use the scheme http://, https:// or unix://');
    scheme = prefix;
    const slash = rest.indexOf('/');
    if (slash !== -1) {
      if (slash !== rest.length - 1) throw fail('must not contain a path (path prefixes are not supported)');
      rest = rest.slice(0, slash);
    }
  }
  if (secret) throw fail('must not contain credentials (use consul.auth or CONSUL_HTTP_AUTH)');
  return { scheme, ...parseHostPort(rest, fail) };
}

export function explicitHost(value: unknown, origin: Origin): string {
  const text = nonEmptyString(value, origin);
  const host = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (host.includes(':') ? !isIPv6(host) : !HOST_NAME.test(host)) {
    throw invalid(origin, 'must be a host name or an IP address', value);
  }
  return host;
}

/** `CONSUL_TLS_SERVER_NAME` may carry a port, which Consul's Go client drops. */
export function serverName(value: unknown, origin: Origin): string {
  const text = nonEmptyString(value, origin);
  const fail = (why: string): TypeError => invalid(origin, why, text);
  let name = text;
  if (text.startsWith('[')) name = parseHostPort(text, fail).host;
  else if (text.split(':').length === 2) name = text.slice(0, text.indexOf(':'));
  else if (text.includes(':')) throw fail('must write an IPv6 address in brackets');
  if (isIP(name) === 0 && !HOST_NAME.test(name)) throw fail('must be a host name or an IP address');
  return name;
}
