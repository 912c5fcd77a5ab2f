/**
 * Value parsers and error wording shared by the per-source resolvers: where a value came from
 * (option or environment variable), the TypeError naming it (secret values hidden, per the option
 * table), and the per-type parsers (integers, Go booleans, enums, tag lists).
 *
 * @module
 */
import type { ListFiles, ReadFile } from './types.js';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { OPTIONS } from './table.js';
import type { OptionSpec } from './table.js';

export { MAX_TIMER_MILLIS } from './table.js';

export const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
export const CONSUL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
export const HOST_NAME = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?$/;
export const TOKEN_TEXT = /^[\x21-\x7e]+$/;
// eslint-disable-next-line no-control-regex
export const CONTROL_CHAR = /[\x00-\x1f\x7f]/;
export const PEM_CERTIFICATE = '-----BEGIN CERTIFICATE-----';
export const PEM_PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;
/** Where a value came from, for error messages. */
export interface Origin {
  readonly kind: 'option' | 'env';
  readonly name: string;
}

export function option(name: string): Origin {
  return { kind: 'option', name };
}

export function envVar(name: string): Origin {
  return { kind: 'env', name };
}

export function label(origin: Origin): string {
  return origin.kind === 'option' ? `option "${origin.name}"` : `environment variable ${origin.name}`;
}

/** A short, secret-free rendering of a value for an error message. */
export function show(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
    case 'number':
    case 'boolean':
      return String(value);
    case 'bigint':
      return `${value}n`;
    case 'undefined':
      return 'undefined';
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    default:
      return value === null ? 'null' : Array.isArray(value) ? 'an array' : 'an object';
  }
}

/** The options flagged secret in the option table, and their environment variables. */
const SECRET_SOURCES: ReadonlySet<string> = new Set(
  (Object.entries(OPTIONS) as Array<[string, OptionSpec]>).flatMap(([name, spec]) =>
    spec.secret === true ? [name, ...(spec.env === undefined ? [] : [spec.env])] : [],
  ),
);

/** Whether a value from `origin` is a secret: an option flagged secret in the table, or its variable. */
export function isSecretOrigin(origin: Origin): boolean {
  return SECRET_SOURCES.has(origin.name);
}

/** The TypeError for a bad value; the value is hidden when `secret` or when the table flags the origin secret. */
export function invalid(origin: Origin, expectation: string, value: unknown, secret = false): TypeError {
  const hidden = secret || isSecretOrigin(origin);
  return new TypeError(`pg-consul: ${label(origin)} ${expectation}, got ${hidden ? '(value hidden)' : show(value)}`);
}

export function fileError(origin: Origin, path: string, err: unknown): TypeError {
  const code = (err as { code?: unknown } | null)?.code;
  const why = typeof code === 'string' ? code : 'read failed';
  return new TypeError(`pg-consul: ${label(origin)} names a file that cannot be read: ${JSON.stringify(path)} (${why})`);
}

/** An environment variable's value; empty counts as unset, as in Consul's Go client. */
export function readEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function nonEmptyString(value: unknown, origin: Origin, secret = false): string {
  if (typeof value !== 'string' || value === '') throw invalid(origin, 'must be a non-empty string', value, secret);
  return value;
}

export function integer(value: unknown, origin: Origin, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(origin, `must be an integer from ${min} to ${max}`, value);
  }
  return value;
}

export function envInteger(text: string, origin: Origin, min: number, max: number): number {
  const value = /^[0-9]{1,16}$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) throw invalid(origin, `must be an integer from ${min} to ${max}`, text);
  return value;
}

export function boolean(value: unknown, origin: Origin): boolean {
  if (typeof value !== 'boolean') throw invalid(origin, 'must be a boolean', value);
  return value;
}

export const GO_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
export const GO_FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/**
 * Parses a boolean exactly as Go's `strconv.ParseBool`: `1 t T TRUE true True` and
 * `0 f F FALSE false False`; anything else is a TypeError naming `origin`.
 */
export function parseGoBool(text: string, origin: Origin): boolean {
  if (GO_TRUE.has(text)) return true;
  if (GO_FALSE.has(text)) return false;
  throw invalid(origin, 'must be one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False', text);
}

export function oneOf<T extends string>(value: unknown, origin: Origin, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalid(origin, `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}`, value);
  }
  return value as T;
}

export function tagList(value: unknown, origin: Origin): readonly string[] {
  if (!Array.isArray(value)) throw invalid(origin, 'must be a non-empty array of non-empty strings', value);
  const tags: string[] = [];
  for (const tag of value as unknown[]) {
    if (typeof tag !== 'string' || tag === '') throw invalid(origin, 'must contain only non-empty strings', tag);
    if (!tags.includes(tag)) tags.push(tag);
  }
  if (tags.length === 0) throw invalid(origin, 'must be a non-empty array of non-empty strings', value);
  return tags;
}

export function envTagList(text: string, origin: Origin): readonly string[] {
  const tags: string[] = [];
  for (const part of text.split(',')) {
    const tag = part.trim();
    if (tag !== '' && !tags.includes(tag)) tags.push(tag);
  }
  if (tags.length === 0) throw invalid(origin, 'must be a comma-separated list of tags', text);
  return tags;
}

/**
 * The value of a setting: the explicit option if defined, else the environment variable if
 * set and non-empty, else `undefined`.
 */
export function pick<T>(
  value: unknown,
  name: string,
  env: NodeJS.ProcessEnv,
  envName: string | undefined,
  fromOption: (value: unknown, origin: Origin) => T,
  fromEnv: (text: string, origin: Origin) => T,
): T | undefined {
  if (value !== undefined) return fromOption(value, option(name));
  if (envName === undefined) return undefined;
  const text = readEnv(env, envName);
  return text === undefined ? undefined : fromEnv(text, envVar(envName));
}

/** Where `pick` would take a setting from, or undefined when it falls back to its default. */
export function originOf(value: unknown, name: string, env: NodeJS.ProcessEnv, envName: string): Origin | undefined {
  if (value !== undefined) return option(name);
  return readEnv(env, envName) === undefined ? undefined : envVar(envName);
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
    Object.freeze(value);
  }
  return value;
}

/** Drops keys whose value is `undefined`, so resolved objects carry only what is set. */
export function defined<T extends object>(value: T): T {
  for (const key of Object.keys(value)) {
    if ((value as Record<string, unknown>)[key] === undefined) delete (value as Record<string, unknown>)[key];
  }
  return value;
}

export const defaultReadFile: ReadFile = (path) => readFileSync(path, 'utf8');

export const defaultListFiles: ListFiles = (dir) => {
  const entries = readdirSync(dir, { recursive: true, encoding: 'utf8' });
  return entries
    .map((entry) => join(dir, entry))
    .filter((path) => statSync(path).isFile())
    .sort();
};
