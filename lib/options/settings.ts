/**
 * The scalar settings of the option table: one resolver per option, driven by its row in
 * {@link OPTIONS} (type, constraint, environment variable, default). The explicit option wins
 * over the environment variable, which wins over the default; an invalid value is a
 * TypeError naming the option or the variable, as the per-type parsers of values.ts word it.
 *
 * @module
 */
import { OPTIONS } from './table.js';
import type { OptionName, OptionSpec } from './table.js';
import { boolean, envInteger, envTagList, integer, oneOf, parseGoBool, pick, tagList } from './values.js';
import type { Origin } from './values.js';

type Spec<N extends OptionName> = (typeof OPTIONS)[N];

/** The names of the options whose type the table can parse by itself. */
export type ScalarName = {
  [N in OptionName]: Spec<N>['type'] extends 'integer' | 'boolean' | 'enum' | 'tags' ? N : never;
}[OptionName];

/** The resolved value type of a scalar option. */
export type ValueOf<N extends ScalarName> =
  Spec<N> extends { readonly type: 'integer' } ? number
  : Spec<N> extends { readonly type: 'boolean' } ? boolean
  : Spec<N> extends { readonly type: 'tags' } ? readonly string[]
  : Spec<N> extends { readonly values: readonly (infer V)[] } ? V
  : never;

type Parser = (value: unknown, origin: Origin) => unknown;
type EnvParser = (text: string, origin: Origin) => unknown;

/** The option parser and the environment-variable parser of one row. */
function parsersOf(spec: OptionSpec): readonly [Parser, EnvParser] {
  const min = spec.min ?? 0;
  const max = spec.max ?? Number.MAX_SAFE_INTEGER;
  const values = spec.values ?? [];
  switch (spec.type) {
    case 'integer':
      return [(v, o) => integer(v, o, min, max), (t, o) => envInteger(t, o, min, max)];
    case 'boolean':
      return [boolean, parseGoBool];
    case 'tags':
      return [tagList, envTagList];
    case 'enum':
      return [(v, o) => oneOf(v, o, values), (t, o) => oneOf(t, o, values)];
    default:
      throw new Error(`pg-consul: option table row of type ${spec.type} has no generic parser`);
  }
}

/**
 * A scalar option's value from the explicit option or its environment variable, validated
 * against its row; undefined when neither is set.
 *
 * @param name the option (`parent.key` for nested ones)
 * @param raw the explicit value, or undefined
 * @param env the environment (its variable is read only when `raw` is undefined)
 * @returns the validated value, or undefined
 * @throws TypeError naming the option or the environment variable
 */
export function setting<N extends ScalarName>(name: N, raw: unknown, env: NodeJS.ProcessEnv): ValueOf<N> | undefined {
  const spec: OptionSpec = OPTIONS[name];
  const [fromOption, fromEnv] = parsersOf(spec);
  return pick(raw, name, env, spec.env, fromOption, fromEnv) as ValueOf<N> | undefined;
}

/**
 * {@link setting}, falling back to the row's default.
 *
 * @param name the option, one with a default
 * @param raw the explicit value, or undefined
 * @param env the environment
 * @returns the validated value or the default
 * @throws TypeError naming the option or the environment variable
 */
export function settingOrDefault<N extends ScalarName>(name: N, raw: unknown, env: NodeJS.ProcessEnv): ValueOf<N> {
  return setting(name, raw, env) ?? (defaultOf(name) as ValueOf<N>);
}

/**
 * The default of an option, from its row.
 *
 * @param name the option
 * @returns its default
 */
export function defaultOf<N extends OptionName>(name: N): Spec<N> extends { readonly default: infer D } ? D : undefined {
  return (OPTIONS[name] as OptionSpec).default as Spec<N> extends { readonly default: infer D } ? D : undefined;
}

/**
 * The own keys at one level of the options: the top level (`undefined`) or a nested object
 * (`'consul'`), in table order.
 *
 * @param parent the nested option, or undefined for the top level
 * @returns the keys valid at that level
 */
export function keysAt(parent?: string): readonly string[] {
  const names = Object.keys(OPTIONS);
  if (parent === undefined) return Object.freeze(names.filter((n) => !n.includes('.')));
  const prefix = `${parent}.`;
  return Object.freeze(names.filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length)));
}

/** The options flagged secret in the table (`parent.key` for nested ones). */
export const SECRET_OPTIONS: readonly OptionName[] = Object.freeze(
  (Object.keys(OPTIONS) as OptionName[]).filter((n) => (OPTIONS[n] as OptionSpec).secret === true),
);

/**
 * An option with a parser of its own (names, host lists, paths…): its value from the explicit
 * option or, when that is undefined, from the environment variable of its row.
 *
 * @param name the option
 * @param raw the explicit value, or undefined
 * @param env the environment
 * @param parse validates an explicit value
 * @param parseEnv validates the variable's text, default `parse`
 * @returns the validated value, or undefined when neither is set
 * @throws TypeError naming the option or the environment variable
 */
export function customSetting<T>(
  name: OptionName,
  raw: unknown,
  env: NodeJS.ProcessEnv,
  parse: (value: unknown, origin: Origin) => T,
  parseEnv: (text: string, origin: Origin) => T = parse,
): T | undefined {
  return pick(raw, name, env, (OPTIONS[name] as OptionSpec).env, parse, parseEnv);
}
