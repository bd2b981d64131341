// `shorthorn setting list|get|set`: global settings through the API, validated by the server.
import type { Command } from 'commander';
import type { SettingView } from '../api/setting-routes.ts';
import { details, runClientCommand, table, withClientOptions, type ClientCommandOptions } from './cli-client.ts';

function settingDetails(view: SettingView): string {
  const definition = view.definition;
  const range = definition['range'] as { min: number; max: number } | undefined;
  const options = definition['options'] as string[] | undefined;
  return details([
    ['Name', view.name],
    ['Value', view.value],
    ['Default', String(definition['default'])],
    ['Type', String(definition['type'])],
    ...(range === undefined ? [] : [['Range', `${range.min}–${range.max} ${typeof definition['unit'] === 'string' ? definition['unit'] : ''}`.trimEnd()] as const]),
    ...(options === undefined ? [] : [['Options', options.join(', ')] as const]),
    ['Category', String(definition['category'])],
    ['Read-only', definition['readOnly'] === true ? 'yes' : 'no'],
    ['Description', String(definition['description'])],
  ]);
}

export function registerSettingCommands(program: Command): void {
  const setting = program.command('setting').description('list, show and change global settings through the API');

  withClientOptions(setting.command('list').alias('ls').description('list every setting with its value')).action(async (options: ClientCommandOptions) =>
    runClientCommand(options, async (client, out) => {
      const list = await client.listSettings();
      out.print(list.data, () =>
        table(
          ['NAME', 'VALUE', 'DEFAULT', 'CATEGORY'],
          list.data.map((s) => [s.name, s.value, String(s.definition['default']), String(s.definition['category'])]),
        ),
      );
    }),
  );

  withClientOptions(setting.command('get <name>').description('show one setting and what it accepts')).action(
    async (name: string, options: ClientCommandOptions) =>
      runClientCommand(options, async (client, out) => {
        const view = await client.getSetting(name);
        out.print(view, () => settingDetails(view));
      }),
  );

  withClientOptions(setting.command('set <name> <value>').description('change a setting')).action(
    async (name: string, value: string, options: ClientCommandOptions) =>
      runClientCommand(options, async (client, out) => {
        const view = await client.updateSetting(name, value);
        out.print(view, () => `setting ${view.name} = ${view.value}\n`);
      }),
  );
}
