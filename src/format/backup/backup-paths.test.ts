import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { backupVolumePaths, volumeNameOfConfigKey } from './backup-paths.ts';
import { generatedName, isValidBackupStoreName } from './backup-names.ts';
import { blockChecksum, isAllZero } from './block-checksum.ts';

const sha512 = (data: Uint8Array): Promise<Uint8Array> => Promise.resolve(new Uint8Array(createHash('sha512').update(data).digest()));

test('block checksum is hex(SHA-512)[:64]', async () => {
  const data = new TextEncoder().encode('hello');
  assert.equal(await blockChecksum(data, sha512), createHash('sha512').update(data).digest('hex').slice(0, 64));
});

test('paths of a backup volume follow the Longhorn layout', async () => {
  const paths = await backupVolumePaths('pvc-x', sha512);
  const h = createHash('sha512').update('pvc-x').digest('hex');
  const dir = `backupstore/volumes/${h.slice(0, 2)}/${h.slice(2, 4)}/pvc-x`;
  assert.equal(paths.volumeConfig, `${dir}/volume.cfg`);
  assert.equal(paths.backupConfig('backup-1'), `${dir}/backups/backup_backup-1.cfg`);
  const c = 'a1b2'.repeat(16);
  assert.equal(paths.block(c), `${dir}/blocks/a1/b2/${c}.blk`);
  assert.equal(paths.lock('lock-0011223344556677'), `${dir}/locks/lock-0011223344556677.lck`);
  assert.equal(paths.backupNameOf(paths.backupConfig('backup-1')), 'backup-1');
  assert.equal(paths.blockChecksumOf(paths.block(c)), c);
  assert.equal(paths.blockChecksumOf(`${dir}/blocks/00/b2/${c}.blk`), undefined, 'a block in the wrong directory is not a block');
  assert.equal(paths.lockNameOf(paths.lock('lock-1')), 'lock-1');
  assert.equal(volumeNameOfConfigKey(paths.volumeConfig), 'pvc-x');
  assert.throws(() => paths.backupConfig('../x'), /Invalid backup name/);
  assert.throws(() => paths.block('../../x'), /Invalid block checksum/);
});

test('names follow Longhorn rule and generated names look like Longhorn', () => {
  for (const good of ['pvc-1', 'a.b_c-d', 'backup-0123456789abcdef', 'AB']) assert.ok(isValidBackupStoreName(good), good);
  for (const bad of ['', 'a', '..', '.x', '-x', 'a/b', 'a b', 'x'.repeat(201), 'a\0b']) assert.ok(!isValidBackupStoreName(bad), bad);
  assert.equal(generatedName('backup', new Uint8Array([0, 1, 2, 3, 0xfc, 0xfd, 0xfe, 0xff])), 'backup-00010203fcfdfeff');
});

test('isAllZero at every alignment', () => {
  const buffer = new Uint8Array(100);
  for (let start = 0; start < 9; start++) {
    const view = buffer.subarray(start, 90);
    assert.ok(isAllZero(view));
    for (const at of [0, 7, 8, 50, view.length - 1]) {
      view[at] = 1;
      assert.ok(!isAllZero(view), `start ${start} at ${at}`);
      view[at] = 0;
    }
  }
});
