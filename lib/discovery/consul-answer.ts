/**
 * What Consul answered, and how an answer that is not a success becomes an error: the
 * resolved response, the size caps, the throttling error (429 / 503), and the secret-free
 * excerpt of Consul's own text quoted in error messages.
 *
 * @example
 * ```ts
 * statusError(503, '10', 'rate limit exceeded', config, 'GET /v1/status/leader', where); // ConsulThrottleError
 * ```
 * @module
 */
import type { IncomingHttpHeaders } from 'node:http';
import { DiscoveryError } from '../errors.js';
import type { ConsulConfig } from './consul-config.js';

/**
 * What {@link consulGet} resolves with: a 2xx answer whose body was valid JSON (or, with
 * `acceptNotFound`, a 404 with `body: null`).
 */
export interface ConsulResponse {
  /** HTTP status (2xx, or 404 with `acceptNotFound`). */
  readonly status: number;
  /** Response headers, lower-case names; repeated headers joined with `, `. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  /** The parsed JSON body. */
  readonly body: unknown;
}

/**
 * Default cap on a Consul answer's size: 8 MiB (a health answer for a Patroni cluster is a
 * few KiB per node; a KV prefix a few KiB per member). A larger answer is refused — from its
 * `Content-Length` before reading, else as soon as the bytes received pass the cap — and
 * never buffered whole.
 */
export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;

/**
 * Consul asked the client to slow down: it answered 429 (or 503). `retryAfter` is its raw
 * `Retry-After` header, if any (seconds or an HTTP-date); the discovery loop honours it.
 */
export class ConsulThrottleError extends DiscoveryError {
  /** The raw `Retry-After` header, `undefined` when absent. */
  readonly retryAfter: string | undefined;
  /**
   * @param message description (secret-free)
   * @param status 429 or 503
   * @param retryAfter the raw `Retry-After` header
   */
  constructor(message: string, status: number, retryAfter: string | undefined) {
    super(message, { status });
    this.name = 'ConsulThrottleError';
    this.retryAfter = retryAfter;
  }
}

/** Most bytes of an error answer (non-2xx) read before it is refused: it is only quoted. */
export const MAX_ERROR_BODY_BYTES = 4096;

/** Longest excerpt of Consul's own body text quoted in an error message. */
export const MAX_ERROR_BODY_CHARS = 200;

/**
 * A printable, secret-free excerpt of a body Consul sent: control characters replaced,
 * whitespace collapsed, the token and basic-auth password redacted, truncated to `max`.
 *
 * @param text the body text
 * @param config whose secrets to redact
 * @param max longest excerpt (default {@link MAX_ERROR_BODY_CHARS})
 * @returns the excerpt (`…` appended when truncated)
 *
 * @example
 * ```ts
 * bodyExcerpt('ACL not found\n', config); // 'ACL not found'
 * ```
 */
export function bodyExcerpt(text: string, config: ConsulConfig, max = MAX_ERROR_BODY_CHARS): string {
  let out = text;
  for (const secret of [config.token, config.basicAuth?.password]) {
    if (secret) out = out.split(secret).join('[redacted]');
  }
  // eslint-disable-next-line no-control-regex
  out = out.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim();
  return out.length > max ? `${out.slice(0, max)}…` : out;
}

/** Response headers with lower-case names, repeated ones joined with `, `. */
export function flattenHeaders(raw: IncomingHttpHeaders): Record<string, string | undefined> {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(raw)) {
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/**
 * The error for an answer that is not a success, Consul's text quoted (redacted, shortened):
 * a {@link ConsulThrottleError} for 429 and 503, else a {@link DiscoveryError} with `status`.
 *
 * @param status the HTTP status
 * @param retryAfter the raw `Retry-After` header
 * @param text the body text received (possibly only its start)
 * @param config whose secrets to redact
 * @param label the request (`GET /v1/…`)
 * @param where the Consul connection, described without secrets
 */
export function statusError(status: number, retryAfter: string | undefined, text: string, config: ConsulConfig, label: string, where: string): DiscoveryError {
  const excerpt = bodyExcerpt(text, config);
  const message = `Consul at ${where} answered ${status} to ${label}${excerpt ? `: ${excerpt}` : ''}`;
  return status === 429 || status === 503 ? new ConsulThrottleError(message, status, retryAfter) : new DiscoveryError(message, { status });
}
