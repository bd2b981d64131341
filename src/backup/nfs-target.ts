// nfs://server:/export/path: mounted with the host's NFS client (type nfs4, trying 4.2, 4.1,
// then 4.0 with Longhorn's default options unless the URL gives its own), then used as a
// directory target. An existing mount of the same export at the same place is reused.
import { execFile } from 'node:child_process';
import { access, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BackupError, BackupErrorCode } from '../format/backup/backup-error.ts';
import { DirectoryTarget } from './directory-target.ts';

const execFileAsync = promisify(execFile);

export const defaultNfsMountRoot = '/var/lib/shorthorn-backupstore-mounts';
const defaultOptions = ['actimeo=1', 'soft', 'timeo=300', 'retry=2'];
const versions = ['4.2', '4.1', '4.0'];

export interface NfsTargetUrl {
  readonly server: string;
  readonly exportPath: string;
  readonly options: readonly string[];
}

/** Where an export is mounted: <root>/<server with . and : as _>/<export path>. */
export function nfsMountDir(url: NfsTargetUrl, mountRoot = defaultNfsMountRoot): string {
  return join(mountRoot, url.server.replace(/[.:[\]]/g, '_'), url.exportPath);
}

/** The `-o` option lists to try in order. */
export function nfsMountAttempts(url: NfsTargetUrl): string[] {
  if (url.options.length > 0) return [url.options.join(',')];
  return versions.map((v) => [`nfsvers=${v}`, ...defaultOptions].join(','));
}

async function isMountPoint(dir: string): Promise<boolean> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  return mountinfo.split('\n').some((line) => line.split(' ')[4] === dir);
}

export class NfsTarget extends DirectoryTarget {
  readonly mountDir: string;

  private constructor(mountDir: string, url: string) {
    super(mountDir, url);
    this.mountDir = mountDir;
  }

  static async mount(url: NfsTargetUrl, options: { mountRoot?: string; timeoutMs?: number } = {}): Promise<NfsTarget> {
    const text = `nfs://${url.server}:${url.exportPath}`;
    const dir = nfsMountDir(url, options.mountRoot);
    await mkdir(dir, { recursive: true });
    if (!(await isMountPoint(dir))) {
      try {
        await access('/sbin/mount.nfs4');
      } catch (error) {
        throw new BackupError(BackupErrorCode.notSupported, `Cannot mount ${text}: this host has no NFS client (mount.nfs4 from nfs-common)`, { cause: error });
      }
      const failures: string[] = [];
      for (const o of nfsMountAttempts(url)) {
        try {
          await execFileAsync('mount', ['-t', 'nfs4', '-o', o, `${url.server}:${url.exportPath}`, dir], { timeout: options.timeoutMs ?? 60_000 });
          failures.length = 0;
          break;
        } catch (error) {
          const stderr = error instanceof Error && 'stderr' in error ? String(error.stderr).trim() : String(error);
          failures.push(`-o ${o}: ${stderr}`);
        }
      }
      if (failures.length > 0) throw new BackupError(BackupErrorCode.io, `Cannot mount ${text} on ${dir}: ${failures.join('; ')}`);
    }
    return new NfsTarget(dir, text);
  }

  /** Unmount (the directory target itself holds nothing open). */
  async unmount(): Promise<void> {
    await execFileAsync('umount', [this.mountDir]);
  }
}
