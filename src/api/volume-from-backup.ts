// Volume create with `fromBackup`: the URL must be a backup URL as Longhorn spells it
// (`<target>?backup=NAME&volume=NAME`), and the size may be left out when the manager has
// mirrored that backup (it is the backed-up volume's size, as in Longhorn).
import { parseBackupUrl } from '../control/backups/backup-url.ts';
import type { Backup } from '../control/resources/backup.ts';
import type { ResourceProblem } from '../control/resources/resource-problem.ts';
import { nameProblem } from '../control/resources/object-meta.ts';
import { isStoreError, type ResourceStore } from '../control/store/resource-store.ts';

/** Checks fromBackup in a create body; fills `size` from the mirrored backup when absent. */
export async function checkFromBackup(store: ResourceStore, fields: Record<string, unknown>, problems: ResourceProblem[]): Promise<void> {
  const url = fields['fromBackup'];
  if (url === undefined) return;
  if (typeof url !== 'string') {
    problems.push({ path: 'fromBackup', reason: 'must be a string' });
    return;
  }
  const parsed = parseBackupUrl(url);
  if (typeof parsed === 'string') {
    problems.push({ path: 'fromBackup', reason: parsed });
    return;
  }
  if (fields['size'] !== undefined || nameProblem(parsed.backupName) !== null) return;
  try {
    const backup = (await store.get('Backup', parsed.backupName)) as Backup;
    const size = backup.status?.volumeSize;
    if (size !== undefined && size > 0) fields['size'] = size;
  } catch (error) {
    if (!isStoreError(error, 'not_found')) throw error;
  }
  if (fields['size'] === undefined) problems.push({ path: 'size', reason: `is required: backup ${parsed.backupName} is not known to the cluster (yet), so its size is not either` });
}
