/**
 * Static host lists (`hosts: ['db1:5432', '[::1]:5433']`): parsing one entry (pure).
 *
 * @module
 */
import { isIPv6 } from 'node:net';
import { validateHost, validatePort } from './consul-entries.js';

/** One entry of a static host list. */
export interface StaticHost {
  /** Host name or IP (IPv6 without brackets). */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
}

/**
 * Parses one host-list entry: `host`, `host:port`, `[v6]`, `[v6]:port` (port default 5432).
 * Pure.
 *
 * @param text the entry
 * @returns the host and port, or a reason why the entry is unusable
 *
 * @example
 * ```ts
 * parseHostEntry('db1:5433');    // { host: 'db1', port: 5433 }
 * parseHostEntry('[::1]');       // { host: '::1', port: 5432 }
 * parseHostEntry('db1:99999');   // 'invalid port "99999"'
 * ```
 */
export function parseHostEntry(text: string): StaticHost | string {
  let hostText = text.trim();
  let portText: string | undefined;
  if (hostText.startsWith('[')) {
    const end = hostText.indexOf(']');
    if (end === -1) return 'unterminated "[" (write IPv6 as [::1]:5432)';
    const after = hostText.slice(end + 1);
    if (after !== '' && !after.startsWith(':')) return 'unexpected text after "]"';
    portText = after === '' ? undefined : after.slice(1);
    hostText = hostText.slice(0, end + 1);
  } else if (isIPv6(hostText)) {
    return 'an IPv6 address needs brackets, e.g. [::1]:5432';
  } else {
    const colon = hostText.lastIndexOf(':');
    if (colon !== -1) {
      portText = hostText.slice(colon + 1);
      hostText = hostText.slice(0, colon);
    }
  }
  const host = validateHost(hostText);
  if (host === undefined) return `invalid host ${JSON.stringify(hostText)}`;
  if (portText === undefined) return { host, port: 5432 };
  const port = /^\d{1,5}$/.test(portText) ? validatePort(Number(portText)) : undefined;
  if (port === undefined) return `invalid port ${JSON.stringify(portText)}`;
  return { host, port };
}

