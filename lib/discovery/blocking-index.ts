/**
 * Consul blocking-query index rules (pure).
 *
 * Consul answers every blocking read with `X-Consul-Index`; the next request passes it back
 * as `?index=` and the server holds the request until the result's index moves past it.
 * Client rules (Consul "Blocking Queries", implementation details):
 * - the first request, and any request after a reset, uses index 0, which never blocks;
 * - if the index goes backwards (a server restored a snapshot, the leader changed…) reset to
 *   0 and read afresh;
 * - never wait on an index < 1: an index of 0 would return at once and hot-loop.
 *
 * @module
 */

/**
 * Parses an `X-Consul-Index` header value: a plain decimal integer (surrounding spaces
 * allowed), exactly representable as a JavaScript number.
 *
 * @param header the raw header value
 * @returns the index, or `undefined` when the header is missing or malformed
 *
 * @example
 * ```ts
 * parseConsulIndex('42');  // 42
 * parseConsulIndex('4x2'); // undefined
 * ```
 */
export function parseConsulIndex(header: string | null | undefined): number | undefined {
  if (typeof header !== 'string') return undefined;
  const text = header.trim();
  if (!/^\d{1,16}$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}

/**
 * The index to send with the next blocking request, given the one sent with the previous
 * request and the `X-Consul-Index` header of its answer.
 *
 * Decisions:
 * - missing or unparsable header → 0 (the next request does not block; the caller's rate
 *   limit keeps that from becoming a hot loop, and the answer's body is still usable);
 * - header smaller than `previous` → 0 (the index went backwards: reset and read afresh);
 * - header 0 → 0 (Consul never sends it; we do not invent an index the server did not vouch
 *   for, so the next request simply does not block — see {@link shouldWait});
 * - otherwise the header's value.
 *
 * @param previous index sent with the previous request (0 for a non-blocking one)
 * @param header the answer's `X-Consul-Index`
 * @returns the next index, ≥ 0
 *
 * @example
 * ```ts
 * nextIndex(0, '17');   // 17
 * nextIndex(17, '17');  // 17 (timed out, nothing changed: block again)
 * nextIndex(17, '9');   // 0  (went backwards: reset)
 * nextIndex(17, undefined); // 0
 * ```
 */
export function nextIndex(previous: number, header: string | null | undefined): number {
  const parsed = parseConsulIndex(header);
  if (parsed === undefined || parsed < 1) return 0;
  if (Number.isFinite(previous) && parsed < previous) return 0;
  return parsed;
}

/**
 * Whether a request with this index should be a blocking one (`?index=&wait=`). Only
 * indexes ≥ 1 block; 0 (first request, after a reset or an error) asks for an immediate answer.
 *
 * @param index the index about to be sent
 * @returns true when `index` is a whole number ≥ 1
 *
 * @example
 * ```ts
 * shouldWait(0);  // false
 * shouldWait(42); // true
 * ```
 */
export function shouldWait(index: number): boolean {
  return Number.isSafeInteger(index) && index >= 1;
}
