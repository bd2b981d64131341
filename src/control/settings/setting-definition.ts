// What a setting is: its type (bool, int, string, enum), default, bounds or allowed values,
// category and description; and how a setting's string value (Settings store strings, as in
// Longhorn) is parsed into a typed value with a clear reason when it is refused.
import { settingValueLengthMax } from '../../lib/limits.ts';

/** Longhorn's setting categories, as the UI groups them. */
export const settingCategories = ['General', 'Backup', 'Scheduling', 'Snapshot', 'Orphan', 'Danger Zone'] as const;
export type SettingCategory = (typeof settingCategories)[number];

export type SettingUnit = 'seconds' | 'minutes' | 'percent' | 'count' | 'millicpu';

interface SettingBase {
  readonly category: SettingCategory;
  /** What the setting does, in our words; shown by the API, the CLI and the UI. */
  readonly description: string;
  /** Reported by the system; users cannot change it. */
  readonly readOnly?: boolean;
}

export interface BoolSettingDefinition extends SettingBase {
  readonly type: 'bool';
  readonly default: boolean;
}

export interface IntSettingDefinition extends SettingBase {
  readonly type: 'int';
  readonly default: number;
  readonly min: number;
  readonly max: number;
  readonly unit: SettingUnit;
}

export interface StringSettingDefinition extends SettingBase {
  readonly type: 'string';
  readonly default: string;
  /** Why a value is refused, or null when it is acceptable (beyond the length limit). */
  readonly check?: (value: string) => string | null;
}

export interface EnumSettingDefinition<O extends readonly [string, ...string[]] = readonly [string, ...string[]]>
  extends SettingBase {
  readonly type: 'enum';
  readonly default: O[number];
  readonly options: O;
}

export type SettingDefinition =
  | BoolSettingDefinition
  | IntSettingDefinition
  | StringSettingDefinition
  | EnumSettingDefinition;

/** The typed value a definition parses to. */
export type SettingValueOf<D> =
  D extends BoolSettingDefinition
    ? boolean
    : D extends IntSettingDefinition
      ? number
      : D extends EnumSettingDefinition<infer O>
        ? O[number]
        : string;

export function boolSetting(definition: Omit<BoolSettingDefinition, 'type'>): BoolSettingDefinition {
  return { type: 'bool', ...definition };
}

export function intSetting(definition: Omit<IntSettingDefinition, 'type'>): IntSettingDefinition {
  return { type: 'int', ...definition };
}

export function stringSetting(definition: Omit<StringSettingDefinition, 'type'>): StringSettingDefinition {
  return { type: 'string', ...definition };
}

export function enumSetting<const O extends readonly [string, ...string[]]>(
  definition: Omit<EnumSettingDefinition<O>, 'type'>,
): EnumSettingDefinition<O> {
  return { type: 'enum', ...definition };
}

export type ParsedSettingValue<V> = { readonly ok: true; readonly value: V } | { readonly ok: false; readonly reason: string };

const integerText = /^-?[0-9]{1,16}$/;

/** Parse a setting's stored string. The reason names the value and what would be accepted. */
export function parseWithDefinition<D extends SettingDefinition>(
  definition: D,
  text: string,
): ParsedSettingValue<SettingValueOf<D>> {
  const parsed = parseAny(definition, text);
  return parsed as ParsedSettingValue<SettingValueOf<D>>;
}

function parseAny(definition: SettingDefinition, text: string): ParsedSettingValue<boolean | number | string> {
  if (text.length > settingValueLengthMax) {
    return { ok: false, reason: `value is ${text.length} characters; at most ${settingValueLengthMax} allowed` };
  }
  const shown = JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
  switch (definition.type) {
    case 'bool':
      if (text === 'true') return { ok: true, value: true };
      if (text === 'false') return { ok: true, value: false };
      return { ok: false, reason: `${shown} is not a boolean; use "true" or "false"` };
    case 'int': {
      if (!integerText.test(text)) return { ok: false, reason: `${shown} is not a whole number` };
      const value = Number(text);
      if (value < definition.min || value > definition.max) {
        return { ok: false, reason: `${value} is out of range: must be ${definition.min} to ${definition.max} (${definition.unit})` };
      }
      return { ok: true, value };
    }
    case 'enum':
      if ((definition.options as readonly string[]).includes(text)) return { ok: true, value: text };
      return { ok: false, reason: `${shown} is not one of ${definition.options.join(', ')}` };
    case 'string': {
      const problem = definition.check?.(text) ?? null;
      return problem === null ? { ok: true, value: text } : { ok: false, reason: problem };
    }
  }
}

/** The string form a value is stored as (the inverse of parsing). */
export function formatSettingValue(value: boolean | number | string): string {
  return String(value);
}
