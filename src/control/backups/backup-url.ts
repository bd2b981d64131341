// Backup URLs as Longhorn spells them, and the setting's target URL as the backup library wants
// it. Pure.
//   target:  s3://bucket@region/path/, nfs://server:/export, vfs:///dir, or (setting) /dir
//   backup:  <target>?backup=<backup name>&volume=<volume name>

/** The library's URL for the backup-target setting value ('' stays '': no target). */
export function targetUrlOfSetting(value: string): string {
  return value.startsWith('/') ? `vfs://${value}` : value;
}

export interface BackupUrl {
  readonly targetURL: string;
  readonly backupName: string;
  readonly volumeName: string;
}

const storeName = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,199}$/;

/** A backup URL's parts, or a sentence saying why it is refused. */
export function parseBackupUrl(url: string): BackupUrl | string {
  const at = url.lastIndexOf('?');
  if (at <= 0) return `backup URL ${JSON.stringify(url.slice(0, 200))} has no ?backup=NAME&volume=NAME`;
  const targetURL = url.slice(0, at);
  if (!/^(s3|nfs|vfs):\/\/./.test(targetURL)) return `backup URL ${JSON.stringify(url.slice(0, 200))} does not start with s3://, nfs:// or vfs://`;
  const query = new URLSearchParams(url.slice(at + 1));
  const backupName = query.get('backup');
  const volumeName = query.get('volume');
  if (backupName === null || volumeName === null) return `backup URL ${JSON.stringify(url.slice(0, 200))} needs both backup= and volume=`;
  if (!storeName.test(backupName)) return `backup name ${JSON.stringify(backupName.slice(0, 200))} in the backup URL is not a backup store name`;
  if (!storeName.test(volumeName)) return `volume name ${JSON.stringify(volumeName.slice(0, 200))} in the backup URL is not a backup store name`;
  if (targetURL.split('/').includes('..')) return 'backup URL must not contain ".."';
  return { targetURL, backupName, volumeName };
}

/** The URL of a backup in a target, as the library writes it. */
export function backupUrlOf(targetURL: string, volumeName: string, backupName: string): string {
  return `${targetURL}?${new URLSearchParams({ backup: backupName, volume: volumeName }).toString()}`;
}
