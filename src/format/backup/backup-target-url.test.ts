import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBackupTargetUrl } from './backup-target-url.ts';

test('target URLs parse as Longhorn spells them', () => {
  assert.deepEqual(parseBackupTargetUrl('vfs:///var/lib/backups/'), { kind: 'vfs', path: '/var/lib/backups' });
  assert.deepEqual(parseBackupTargetUrl('s3://my-bucket@us-east-1/path/to/'), { kind: 's3', bucket: 'my-bucket', region: 'us-east-1', prefix: 'path/to' });
  assert.deepEqual(parseBackupTargetUrl('s3://my-bucket/'), { kind: 's3', bucket: 'my-bucket', region: '', prefix: '' });
  assert.deepEqual(parseBackupTargetUrl('s3://my-bucket'), { kind: 's3', bucket: 'my-bucket', region: '', prefix: '' });
  assert.deepEqual(parseBackupTargetUrl('nfs://10.0.0.5:/exports/backups?nfsOptions=soft,timeo%3D150'), {
    kind: 'nfs', server: '10.0.0.5', exportPath: '/exports/backups', options: ['soft', 'timeo=150'],
  });
});

test('bad target URLs are refused with the reason', () => {
  const cases: [string, RegExp][] = [
    ['vfs://relative', /absolute/],
    ['vfs:///a/../etc', /\.\./],
    ['s3://Bad_Bucket@r/x', /bucket name/],
    ['s3://bucket@r/a/../../x', /\.\./],
    ['nfs://server/export', /expected nfs/],
    ['nfs://server:/export?nfsOptions=a;rm', /NFS option/],
    ['nfs://server:/export?other=1', /unknown query/],
    ['ftp://x/y', /unsupported scheme ftp/],
    ['/just/a/path', /expected scheme/],
    [`vfs:///${'a'.repeat(5000)}`, /longer than/],
  ];
  for (const [url, message] of cases) assert.throws(() => parseBackupTargetUrl(url), (e) => e instanceof Error && 'code' in e && e.code === 'invalid_argument' && message.test(e.message), url);
});
