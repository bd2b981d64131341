// Backup target URLs, as Longhorn spells them:
//   vfs:///abs/path                 a directory on this host
//   s3://bucket@region/path/        S3 or any S3-compatible store (region may be left out)
//   nfs://server:/export/path[?nfsOptions=a,b]   mounted with the host's NFS client
import { urlLengthMax } from '../../lib/limits.ts';
import { BackupError, BackupErrorCode } from './backup-error.ts';

export type BackupTargetUrl =
  | { readonly kind: 'vfs'; readonly path: string }
  | { readonly kind: 's3'; readonly bucket: string; readonly region: string; readonly prefix: string }
  | { readonly kind: 'nfs'; readonly server: string; readonly exportPath: string; readonly options: readonly string[] };

function invalid(url: string, problem: string): BackupError {
  return new BackupError(BackupErrorCode.invalidArgument, `Invalid backup target URL ${JSON.stringify(url.slice(0, 200))}: ${problem}`);
}

/** Path segments must be plain names: no "", ".", ".." (so a target can never escape its root). */
function checkSegments(url: string, path: string, what: string): string[] {
  const segments = path.split('/').filter((s) => s !== '');
  for (const segment of segments) {
    if (segment === '.' || segment === '..') throw invalid(url, `${what} may not contain "${segment}"`);
    if (/[\0\\]/.test(segment)) throw invalid(url, `${what} may not contain NUL or backslash`);
  }
  return segments;
}

export function parseBackupTargetUrl(url: string): BackupTargetUrl {
  if (url.length > urlLengthMax) throw invalid(url, `longer than ${urlLengthMax} characters`);
  const scheme = /^([a-z0-9]+):\/\//.exec(url)?.[1];
  switch (scheme) {
    case 'vfs': {
      const path = url.slice('vfs://'.length);
      if (!path.startsWith('/')) throw invalid(url, 'the path must be absolute (vfs:///abs/path)');
      if (path.includes('?')) throw invalid(url, 'vfs URLs take no query');
      const segments = checkSegments(url, path, 'the path');
      return { kind: 'vfs', path: `/${segments.join('/')}` };
    }
    case 's3': {
      const match = /^s3:\/\/([^/@?]+)(?:@([^/?]*))?(\/[^?]*)?$/.exec(url);
      if (match === null) throw invalid(url, 'expected s3://bucket@region/path/');
      const bucket = match[1]!;
      if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw invalid(url, `bucket name ${JSON.stringify(bucket)} is not a valid S3 bucket name`);
      const region = match[2] ?? '';
      if (!/^[a-z0-9-]{0,64}$/.test(region)) throw invalid(url, `region ${JSON.stringify(region)} is not a region name`);
      const segments = checkSegments(url, match[3] ?? '', 'the path');
      return { kind: 's3', bucket, region, prefix: segments.join('/') };
    }
    case 'nfs': {
      const match = /^nfs:\/\/(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9.-]+):(\/[^?]*)(?:\?(.*))?$/.exec(url);
      if (match === null) throw invalid(url, 'expected nfs://server:/export/path');
      const segments = checkSegments(url, match[2]!, 'the export path');
      const options: string[] = [];
      for (const pair of (match[3] ?? '').split('&').filter((p) => p !== '')) {
        const [key, value] = pair.split('=', 2) as [string, string | undefined];
        if (key !== 'nfsOptions') throw invalid(url, `unknown query parameter ${JSON.stringify(key)} (only nfsOptions)`);
        for (const option of decodeURIComponent(value ?? '').split(',').filter((o) => o !== '')) {
          if (!/^[a-zA-Z0-9_.=-]+$/.test(option)) throw invalid(url, `NFS option ${JSON.stringify(option)} has characters outside [a-zA-Z0-9_.=-]`);
          options.push(option);
        }
      }
      return { kind: 'nfs', server: match[1]!, exportPath: `/${segments.join('/')}`, options };
    }
    case undefined:
      throw invalid(url, 'expected scheme://… (vfs, s3 or nfs)');
    default:
      throw invalid(url, `unsupported scheme ${scheme} (vfs, s3 or nfs)`);
  }
}
