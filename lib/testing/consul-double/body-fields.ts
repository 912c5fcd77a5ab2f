/**
 * Reading Consul request bodies: keys match case-insensitively and ignoring underscores
 * (`EnableTagOverride`, `enabletagoverride` and `enable_tag_override` are the same field), as
 * Consul's decoder does. Type errors become {@link DecodeError}s (HTTP 400).
 * @module
 */
import { parseGoDuration } from './go-duration.js';

/** A body that cannot be decoded; Consul answers 400 `Request decode failed: …`. */
export class DecodeError extends Error {
  /** @param message what is wrong */
  constructor(message: string) {
    super(message);
    this.name = 'DecodeError';
  }
}

const normalize = (k: string): string => k.toLowerCase().replace(/_/g, '');

/** Typed, case-insensitive access to one JSON object of a request body. */
export class BodyFields {
  readonly #map = new Map<string, unknown>();

  /** @param value a decoded JSON object (anything else throws {@link DecodeError}) */
  constructor(value: unknown, what = 'body') {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new DecodeError(`${what} must be a JSON object`);
    for (const [k, v] of Object.entries(value)) this.#map.set(normalize(k), v);
  }

  /** Parses a request body; an empty body is `{}`. */
  static parse(body: Buffer): BodyFields {
    const text = body.toString('utf8').trim();
    if (text === '') return new BodyFields({});
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new DecodeError((err as Error).message);
    }
    return new BodyFields(value);
  }

  /** Whether the field is present (even when null). */
  has(...names: string[]): boolean {
    return names.some((n) => this.#map.has(normalize(n)));
  }

  /** Raw value of the first present alias. */
  get(...names: string[]): unknown {
    for (const n of names) {
      const k = normalize(n);
      if (this.#map.has(k)) return this.#map.get(k);
    }
    return undefined;
  }

  /** A string field ('' when absent or null). */
  str(...names: string[]): string {
    const v = this.get(...names);
    if (v === undefined || v === null) return '';
    if (typeof v !== 'string') throw new DecodeError(`${names[0]}: expected a string, got ${JSON.stringify(v)}`);
    return v;
  }

  /** A numeric field (`fallback` when absent or null). */
  num(fallback: number, ...names: string[]): number {
    const v = this.get(...names);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new DecodeError(`${names[0]}: expected a number, got ${JSON.stringify(v)}`);
    return v;
  }

  /** A boolean field (false when absent or null). */
  bool(...names: string[]): boolean {
    const v = this.get(...names);
    if (v === undefined || v === null) return false;
    if (typeof v !== 'boolean') throw new DecodeError(`${names[0]}: expected a boolean, got ${JSON.stringify(v)}`);
    return v;
  }

  /** A list of strings (undefined when absent or null). */
  strList(...names: string[]): string[] | undefined {
    const v = this.get(...names);
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new DecodeError(`${names[0]}: expected a list of strings`);
    return [...(v as string[])];
  }

  /** A string → string map, keys kept as sent (empty when absent or null). */
  strMap(...names: string[]): Record<string, string> {
    const v = this.get(...names);
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) throw new DecodeError(`${names[0]}: expected an object`);
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(v)) {
      if (typeof x !== 'string') throw new DecodeError(`${names[0]}.${k}: expected a string`);
      out[k] = x;
    }
    return out;
  }

  /** A nested object (undefined when absent or null). */
  obj(...names: string[]): BodyFields | undefined {
    const v = this.get(...names);
    if (v === undefined || v === null) return undefined;
    return new BodyFields(v, names[0]);
  }

  /** A list of nested objects (undefined when absent or null). */
  objList(...names: string[]): BodyFields[] | undefined {
    const v = this.get(...names);
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) throw new DecodeError(`${names[0]}: expected a list`);
    return v.map((x, i) => new BodyFields(x, `${names[0]}[${i}]`));
  }

  /**
   * A duration field: a Go duration string or a number of nanoseconds. Returns nanoseconds
   * (0 when absent, null or empty).
   */
  duration(...names: string[]): number {
    const v = this.get(...names);
    if (v === undefined || v === null || v === '') return 0;
    if (typeof v === 'number' && Number.isFinite(v)) return Math.trunc(v);
    if (typeof v === 'string') {
      const ns = parseGoDuration(v);
      if (ns === undefined) throw new DecodeError(`time: invalid duration ${JSON.stringify(v)}`);
      return ns;
    }
    throw new DecodeError(`${names[0]}: expected a duration, got ${JSON.stringify(v)}`);
  }
}
