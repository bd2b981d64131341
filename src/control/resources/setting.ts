// Setting: one global setting; the name is the setting's key and spec.value its string form
// (reference §1.7). The catalogue of names, types and defaults is in ../settings/.
import { Type, type Static } from '@sinclair/typebox';
import { settingValueLengthMax } from '../../lib/limits.ts';
import { parseSettingValue } from '../settings/settings.ts';
import { StrictObject } from './common-schemas.ts';
import type { Resource } from './object-meta.ts';
import type { ResourceProblem } from './resource-problem.ts';

export const SettingSpecSchema = StrictObject({
  value: Type.String({ maxLength: settingValueLengthMax, description: 'The value as a string, parsed by the setting\'s type.' }),
});
export type SettingSpec = Static<typeof SettingSpecSchema>;

export const SettingStatusSchema = StrictObject({
  applied: Type.Boolean({ description: 'The value has taken effect (some settings wait for volumes to detach).' }),
});
export type SettingStatus = Static<typeof SettingStatusSchema>;

export type SettingResource = Resource<SettingSpec, SettingStatus>;

export function settingProblems(setting: SettingResource): ResourceProblem[] {
  const parsed = parseSettingValue(setting.metadata.name, setting.spec.value);
  if (parsed.ok) return [];
  return [{ path: parsed.reason.startsWith('there is no setting') ? 'metadata.name' : 'spec.value', reason: parsed.reason }];
}
