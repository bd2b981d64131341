// A BackupTarget from its URL (vfs://, s3://, nfs://).
import { parseBackupTargetUrl } from '../format/backup/backup-target-url.ts';
import { unreachable } from '../lib/assert.ts';
import type { BackupTarget } from './backup-target.ts';
import { DirectoryTarget } from './directory-target.ts';
import { NfsTarget } from './nfs-target.ts';
import { S3Target, type S3TargetOptions } from './s3-target.ts';

export interface OpenBackupTargetOptions {
  readonly s3?: Omit<S3TargetOptions, 'bucket' | 'region' | 'prefix'>;
  readonly nfsMountRoot?: string;
}

export async function openBackupTarget(url: string, options: OpenBackupTargetOptions = {}): Promise<BackupTarget> {
  const parsed = parseBackupTargetUrl(url);
  switch (parsed.kind) {
    case 'vfs':
      return new DirectoryTarget(parsed.path);
    case 's3':
      return S3Target.open({ ...options.s3, bucket: parsed.bucket, region: parsed.region, prefix: parsed.prefix });
    case 'nfs':
      return NfsTarget.mount(parsed, options.nfsMountRoot === undefined ? {} : { mountRoot: options.nfsMountRoot });
    default:
      return unreachable(parsed, 'backup target kind');
  }
}
