// The backup target URLs we accept (DESIGN §2.6): `s3://bucket@region/path`,
// `nfs://server:/export/path`, a plain absolute directory, or '' for none.
import { urlLengthMax } from '../../lib/limits.ts';

const s3Pattern = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])@([A-Za-z0-9-]*)(\/[^\s]*)?$/;
const nfsPattern = /^nfs:\/\/([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(\/[^\s?]*)(\?[^\s]*)?$/;

export type BackupTargetKind = 'none' | 's3' | 'nfs' | 'directory';

export function backupTargetKind(url: string): BackupTargetKind | null {
  if (url === '') return 'none';
  if (url.length > urlLengthMax) return null;
  if (s3Pattern.test(url)) return 's3';
  if (nfsPattern.test(url)) return 'nfs';
  if (url.startsWith('/') && !/[\s\0]/.test(url)) return 'directory';
  return null;
}

/** Why a backup target URL is refused, or null when it is valid. */
export function backupTargetURLProblem(url: string): string | null {
  if (url.length > urlLengthMax) return `backup target URL is ${url.length} characters; at most ${urlLengthMax} allowed`;
  const kind = backupTargetKind(url);
  if (kind === null) {
    return `backup target ${JSON.stringify(url)} is not s3://bucket@region/path, nfs://server:/path or an absolute directory`;
  }
  // The path of every kind, s3 included (S31 found s3://b@r/../../x accepted here and refused
  // only when a backup ran): the backup library refuses "." and ".." segments in all of them.
  const path = kind === 'directory' ? url : kind === 'nfs' ? (nfsPattern.exec(url)?.[2] ?? '') : kind === 's3' ? (s3Pattern.exec(url)?.[3] ?? '') : '';
  const segments = path.split('/');
  if (segments.includes('..') || segments.includes('.')) return `backup target ${JSON.stringify(url)} must not contain '..' or '.' path segments`;
  return null;
}
