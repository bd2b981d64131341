// The backup routes' part of the OpenAPI document (openapi.ts assembles the whole).
import type { TSchema } from '@sinclair/typebox';
import { backupTargetActionNames, backupVolumeActionInputs, backupVolumeActionNames } from './backup-inputs.ts';

interface Helpers {
  readonly ok: (schema: object, description?: string) => object;
  readonly json: (schema: object) => object;
  readonly ref: (name: string) => object;
  readonly nameParam: readonly object[];
  readonly errors: object;
}

const plain = (schema: TSchema): object => JSON.parse(JSON.stringify(schema)) as object;

export function backupOpenApiSchemas(): Record<string, object> {
  const schemas: Record<string, object> = {};
  for (const action of backupVolumeActionNames) schemas[`${action}Input`] = plain(backupVolumeActionInputs[action]);
  schemas['VerifyReport'] = {
    type: 'object',
    required: ['volumeName', 'backupName', 'ok', 'blocksChecked', 'missing', 'corrupt'],
    properties: {
      volumeName: { type: 'string' }, backupName: { type: 'string' }, ok: { type: 'boolean' }, blocksChecked: { type: 'integer' },
      missing: { type: 'array', items: { type: 'object' } }, corrupt: { type: 'array', items: { type: 'object' } },
      blockListOk: { type: ['boolean', 'null'] }, bytesFetched: { type: 'integer' }, elapsedMs: { type: 'number' },
    },
  };
  return schemas;
}

export function backupOpenApiPaths(h: Helpers): Record<string, object> {
  const actionParam = (names: readonly string[]) => ({ name: 'action', in: 'query', required: true, schema: { enum: [...names] } });
  return {
    '/v1/backuptargets': { get: { summary: 'List backup targets (default follows the backup-target settings)', responses: h.ok(h.ref('Collection')) } },
    '/v1/backuptargets/{name}': {
      get: { summary: 'Get a backup target', parameters: h.nameParam, responses: h.ok(h.ref('BackupTarget')) },
      post: { summary: 'backupTargetSync: list the target now', parameters: [...h.nameParam, actionParam(backupTargetActionNames)], responses: h.ok(h.ref('BackupTarget')) },
    },
    '/v1/backupvolumes': { get: { summary: 'List backup volumes (mirrored from the target)', responses: h.ok(h.ref('Collection')) } },
    '/v1/backupvolumes/{name}': {
      get: { summary: 'Get a backup volume', parameters: h.nameParam, responses: h.ok(h.ref('BackupVolume')) },
      delete: { summary: 'Delete the backup volume and all its backups from the target', parameters: h.nameParam, responses: h.ok(h.ref('BackupVolume')) },
      post: {
        summary: `Run a backup volume action: ${backupVolumeActionNames.join(', ')}`,
        parameters: [...h.nameParam, actionParam(backupVolumeActionNames)],
        requestBody: h.json({ oneOf: backupVolumeActionNames.map((a) => h.ref(`${a}Input`)) }),
        responses: h.ok({ oneOf: [h.ref('Backup'), h.ref('Collection'), h.ref('BackupVolume'), h.ref('VerifyReport')] }),
      },
    },
    '/v1/backups': { get: { summary: 'List backups, optionally ?volume=NAME', responses: h.ok(h.ref('Collection')) } },
    '/v1/backups/{name}': {
      get: { summary: 'Get a backup', parameters: h.nameParam, responses: h.ok(h.ref('Backup')) },
      delete: { summary: 'Delete a backup (the manager deletes it from the target)', parameters: h.nameParam, responses: h.ok(h.ref('Backup')) },
    },
  };
}
