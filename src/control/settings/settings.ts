// Typed access to the global settings. The store holds each setting as a string (a Setting
// resource per name, as in Longhorn); this turns those strings into one typed, validated snapshot.
import { ShorthornError } from '../../lib/errors.ts';
import { settingDefinitions } from './setting-definitions.ts';
import {
  formatSettingValue,
  parseWithDefinition,
  type ParsedSettingValue,
  type SettingDefinition,
  type SettingValueOf,
} from './setting-definition.ts';

export type SettingName = keyof typeof settingDefinitions;
export type SettingValue<N extends SettingName> = SettingValueOf<(typeof settingDefinitions)[N]>;
export type SettingValues = { readonly [N in SettingName]: SettingValue<N> };

export const settingNames = Object.keys(settingDefinitions) as SettingName[];

export const SettingErrorCode = {
  unknownSetting: 'unknown_setting',
  invalidValue: 'invalid_value',
  readOnly: 'read_only',
} as const;
export type SettingErrorCode = (typeof SettingErrorCode)[keyof typeof SettingErrorCode];

export class SettingError extends ShorthornError<SettingErrorCode> {}

export function isSettingName(name: string): name is SettingName {
  return Object.hasOwn(settingDefinitions, name);
}

export function settingDefinition(name: SettingName): SettingDefinition {
  return settingDefinitions[name];
}

/** Parse one setting's string value; the reason is a sentence naming the setting. */
export function parseSettingValue(name: string, text: string): ParsedSettingValue<boolean | number | string> {
  if (!isSettingName(name)) return { ok: false, reason: `there is no setting named ${JSON.stringify(name.slice(0, 100))}` };
  const parsed = parseWithDefinition(settingDefinition(name), text);
  return parsed.ok ? parsed : { ok: false, reason: `setting ${name}: ${parsed.reason}` };
}

export interface SettingProblem {
  readonly name: string;
  readonly reason: string;
}

/** An immutable, typed snapshot of every setting. */
export class Settings {
  readonly values: SettingValues;

  private constructor(values: SettingValues) {
    this.values = values;
  }

  static defaults(): Settings {
    const values: Record<string, boolean | number | string> = {};
    for (const name of settingNames) values[name] = settingDefinitions[name].default;
    return new Settings(values as SettingValues);
  }

  /**
   * Build from stored strings. A stored value that no longer parses (written by an older version,
   * or edited by hand) falls back to the default and is reported, so one bad row cannot stop the
   * control plane; unknown names are reported and ignored.
   */
  static fromStrings(stored: Readonly<Record<string, string>>): { settings: Settings; problems: SettingProblem[] } {
    const values: Record<string, boolean | number | string> = { ...Settings.defaults().values };
    const problems: SettingProblem[] = [];
    for (const [name, text] of Object.entries(stored)) {
      const parsed = parseSettingValue(name, text);
      if (parsed.ok) values[name] = parsed.value;
      else problems.push({ name, reason: parsed.reason });
    }
    return { settings: new Settings(values as SettingValues), problems };
  }

  get<N extends SettingName>(name: N): SettingValue<N> {
    return this.values[name];
  }

  /** A copy with one setting changed from its string form; throws SettingError when refused. */
  with(name: string, text: string): Settings {
    if (!isSettingName(name)) {
      throw new SettingError(SettingErrorCode.unknownSetting, `there is no setting named ${JSON.stringify(name.slice(0, 100))}`);
    }
    if (settingDefinitions[name].readOnly === true) {
      throw new SettingError(SettingErrorCode.readOnly, `setting ${name} is read-only`);
    }
    const parsed = parseSettingValue(name, text);
    if (!parsed.ok) throw new SettingError(SettingErrorCode.invalidValue, parsed.reason);
    return new Settings({ ...this.values, [name]: parsed.value });
  }

  /** The string form of every setting, as stored. */
  toStrings(): Record<SettingName, string> {
    const out = {} as Record<SettingName, string>;
    for (const name of settingNames) out[name] = formatSettingValue(this.values[name]);
    return out;
  }
}
