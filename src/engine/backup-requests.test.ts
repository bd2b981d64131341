// Backup and restore request bodies: the good ones parse, every hostile one gets bad_request
// naming the field, and no error message carries a credential's value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBackupRequest, parseRestoreRequest } from './backup-requests.ts';

const good = { backupName: 'backup-1', snapshotName: 's1', targetURL: 's3://bucket@us-east-1/path/' };
const secret = 'do-not-print-this-secret';

function refused(body: Record<string, unknown>, field: RegExp, parse: (body: Record<string, unknown>) => unknown = parseBackupRequest): void {
  assert.throws(
    () => parse(body),
    (e: Error & { code?: string }) => e.code === 'bad_request' && field.test(e.message) && !e.message.includes(secret),
    JSON.stringify(body).slice(0, 200),
  );
}

test('a good backup request parses, optional fields kept and absent ones left out', () => {
  assert.deepEqual(parseBackupRequest(good), good);
  const full = {
    ...good, credentials: { AWS_ACCESS_KEY_ID: 'id', AWS_SECRET_ACCESS_KEY: secret, AWS_ENDPOINTS: 'http://127.0.0.1:9000' },
    compression: 'gzip', mode: 'full', fullBackupInterval: 5, concurrency: 16, labels: { a: 'b' },
  };
  assert.deepEqual(parseBackupRequest(full), full);
  assert.deepEqual(parseBackupRequest({ ...good, targetURL: 'vfs:///var/backups' }).targetURL, 'vfs:///var/backups');
});

test('hostile backup requests are refused field by field', () => {
  refused({ ...good, extra: 1 }, /unknown field "extra"/);
  for (const backupName of ['../x', '', 'a', '-x', 'x/y', 'x'.repeat(201), 5, null]) refused({ ...good, backupName }, /backupName/);
  for (const snapshotName of ['S1', '../x', '', 'a'.repeat(300), 1]) refused({ ...good, snapshotName }, /snapshotName/);
  for (const targetURL of ['http://x/', 'vfs://relative', 'vfs:///a/../b', 's3://BAD_bucket/x', '', 'x'.repeat(3000), {}]) refused({ ...good, targetURL }, /targetURL/);
  for (const credentials of [[], 'x', null, { lower: 'x' }, { AWS_SECRET_ACCESS_KEY: 5 }, { AWS_SECRET_ACCESS_KEY: secret.repeat(1000) }]) {
    refused({ ...good, credentials }, /credentials/);
  }
  refused({ ...good, credentials: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`K${i}`, secret])) }, /at most 32/);
  for (const concurrency of [0, 65, 1.5, '8', -1]) refused({ ...good, concurrency }, /concurrency/);
  for (const fullBackupInterval of [-1, 2e6, 0.5]) refused({ ...good, fullBackupInterval }, /fullBackupInterval/);
  refused({ ...good, compression: 'zstd' }, /compression/);
  refused({ ...good, mode: 'delta' }, /mode/);
  for (const labels of [[], { a: 1 }, { '': 'x' }, 'x']) refused({ ...good, labels }, /labels/);
});

test('restore requests: good and hostile', () => {
  const restore = { targetURL: 'vfs:///backups', backupVolumeName: 'vol-1', backupName: 'backup-1' };
  assert.deepEqual(parseRestoreRequest(restore), restore);
  assert.deepEqual(parseRestoreRequest({ ...restore, concurrency: 4, credentials: { AWS_ACCESS_KEY_ID: 'x' } }), { ...restore, concurrency: 4, credentials: { AWS_ACCESS_KEY_ID: 'x' } });
  refused({ ...restore, backupVolumeName: '../etc' }, /backupVolumeName/, parseRestoreRequest);
  refused({ targetURL: 'vfs:///backups', backupName: 'backup-1' }, /backupVolumeName/, parseRestoreRequest);
  refused({ ...restore, snapshotName: 's1' }, /unknown field/, parseRestoreRequest);
  refused({ ...restore, credentials: { AWS_SECRET_ACCESS_KEY: 7 } }, /credentials/, parseRestoreRequest);
  // A DR volume's incremental restore names the backup it holds.
  assert.deepEqual(parseRestoreRequest({ ...restore, fromBackupName: 'backup-0' }), { ...restore, fromBackupName: 'backup-0' });
  refused({ ...restore, fromBackupName: '../backup-0' }, /fromBackupName/, parseRestoreRequest);
  refused({ ...restore, fromBackupName: 3 }, /fromBackupName/, parseRestoreRequest);
});
