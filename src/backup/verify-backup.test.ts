// Damage on the target: a deleted block, a flipped byte, a truncated config, a tampered block
// list, a deleted volume.cfg. Restore and verify fail with a clear error and never report
// success; the backups the damage does not touch still list and restore.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../lib/random.ts';
import { MemoryBlockDevice } from '../lib/memory-block-device.ts';
import { isBackupError } from '../format/backup/backup-error.ts';
import type { CompressionMethod } from '../format/backup/compression-method.ts';
import { createBackup } from './create-backup.ts';
import { restoreBackup } from './restore-backup.ts';
import { verifyBackup } from './verify-backup.ts';
import { assertRestoresTo, blockSize, directoryStore, fastLock, fillBlock, seededVolume, testSeed } from './testing/backup-fixture.ts';

const seed = testSeed();
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups) await cleanup();
});

async function twoBackups(compression: CompressionMethod) {
  const f = await directoryStore();
  cleanups.push(f.cleanup);
  const random = new SeededRandom(seed);
  const volume = seededVolume(5, random);
  volume.snapshot('s1');
  await createBackup(f.store, volume.reader('s1'), { volumeName: 'vol-v', backupName: 'backup-old', compression, lock: fastLock });
  fillBlock(volume, 2 * blockSize, random);
  volume.snapshot('s2');
  await createBackup(f.store, volume.reader('s2'), { volumeName: 'vol-v', backupName: 'backup-new', lock: fastLock });
  const paths = await f.store.paths('vol-v');
  // The block at offset 2 of the new backup belongs to it alone.
  const victim = (await f.store.loadBackup(paths, 'backup-new')).blocks.find((b) => b.offsetBytes === 2 * blockSize)!;
  return { ...f, volume, paths, victim };
}

async function restoreFails(store: Parameters<typeof restoreBackup>[0], backupName: string, check: (e: unknown) => boolean): Promise<void> {
  const device = new MemoryBlockDevice(5 * blockSize);
  await assert.rejects(restoreBackup(store, device, { volumeName: 'vol-v', backupName, lock: fastLock }), check);
}

test(`a missing block fails restore and verify names it; the other backup restores (seed ${seed})`, async () => {
  const { store, target, volume, paths, victim } = await twoBackups('lz4');
  await target.delete([paths.block(victim.checksum)]);
  await restoreFails(store, 'backup-new', (e) => isBackupError(e, 'not_found') && e.message.includes(`offset ${victim.offsetBytes}`) && e.message.includes(victim.checksum));
  const report = await verifyBackup(store, { volumeName: 'vol-v', backupName: 'backup-new' });
  assert.equal(report.ok, false);
  assert.deepEqual(report.missing.map((p) => [p.offsetBytes, p.checksum]), [[victim.offsetBytes, victim.checksum]]);
  assert.deepEqual(report.corrupt, []);
  assert.equal((await verifyBackup(store, { volumeName: 'vol-v', backupName: 'backup-old' })).ok, true);
  await assertRestoresTo(store, { volumeName: 'vol-v', backupName: 'backup-old', expected: volume.image('s1'), seed });
});

for (const compression of ['lz4', 'gzip', 'none'] as CompressionMethod[]) {
  test(`a flipped byte in a ${compression} block fails restore and verify reports it corrupt (seed ${seed})`, async () => {
    const { store, target, volume, paths, victim } = await twoBackups(compression);
    const key = paths.block(victim.checksum);
    const object = await target.read(key, 8 << 20);
    const random = new SeededRandom(seed + 9);
    const at = random.int(object.length);
    object[at] = object[at]! ^ (1 << random.int(8));
    await target.write(key, object);
    await restoreFails(store, 'backup-new', (e) => (isBackupError(e, 'checksum_mismatch') || isBackupError(e, 'corrupt')) && e.message.includes(`offset ${victim.offsetBytes}`));
    const report = await verifyBackup(store, { volumeName: 'vol-v', backupName: 'backup-new' });
    assert.equal(report.ok, false);
    assert.deepEqual(report.corrupt.map((p) => p.offsetBytes), [victim.offsetBytes], `seed ${seed}`);
    await assertRestoresTo(store, { volumeName: 'vol-v', backupName: 'backup-old', expected: volume.image('s1'), seed });
  });
}

test('a truncated backup config fails restore as corrupt, lists as unreadable, and spares the others', async () => {
  const { store, target, volume, paths } = await twoBackups('lz4');
  const key = paths.backupConfig('backup-new');
  const bytes = await target.read(key, 1 << 20);
  await target.write(key, bytes.subarray(0, Math.floor(bytes.length / 2)));
  await restoreFails(store, 'backup-new', (e) => isBackupError(e, 'corrupt') && /not JSON/.test(e.message));
  await assert.rejects(verifyBackup(store, { volumeName: 'vol-v', backupName: 'backup-new' }), (e) => isBackupError(e, 'corrupt'));
  const listed = await store.listBackups(paths);
  assert.deepEqual(listed.map((b) => [b.name, b.state]), [['backup-new', 'unreadable'], ['backup-old', 'complete']]);
  await assertRestoresTo(store, { volumeName: 'vol-v', backupName: 'backup-old', expected: volume.image('s1'), seed });
});

test('a tampered block list (valid JSON) is caught by its checksum', async () => {
  const { store, target, paths } = await twoBackups('lz4');
  const key = paths.backupConfig('backup-new');
  const text = new TextDecoder().decode(await target.read(key, 1 << 20));
  const config = await store.loadBackup(paths, 'backup-new');
  const [a, b] = [config.blocks[0]!.checksum, config.blocks[1]!.checksum];
  await target.write(key, new TextEncoder().encode(text.replace(a, 'TMP').replace(b, a).replace('TMP', b)));
  await restoreFails(store, 'backup-new', (e) => isBackupError(e, 'corrupt') && /ShorthornBlocksChecksum/.test(e.message));
  const report = await verifyBackup(store, { volumeName: 'vol-v', backupName: 'backup-new' });
  assert.equal(report.blockListOk, false);
  assert.equal(report.ok, false);
});

test('a deleted volume.cfg fails restore and verify with not_found', async () => {
  const { store, target, paths } = await twoBackups('lz4');
  await target.delete([paths.volumeConfig]);
  await restoreFails(store, 'backup-old', (e) => isBackupError(e, 'not_found') && /volume\.cfg/.test(e.message));
  await assert.rejects(verifyBackup(store, { volumeName: 'vol-v', backupName: 'backup-old' }), (e) => isBackupError(e, 'not_found'));
  // The backups themselves are still there to list.
  assert.deepEqual((await store.listBackups(paths)).map((b) => b.state), ['complete', 'complete']);
});

test('restoring an in-progress backup or into a too-small volume is refused', async () => {
  const { store, target, paths } = await twoBackups('lz4');
  await target.write(paths.backupConfig('backup-half'), new TextEncoder().encode('{"Name":"backup-half","VolumeName":"vol-v","CreatedTime":""}'));
  await restoreFails(store, 'backup-half', (e) => isBackupError(e, 'conflict') && /not complete/.test(e.message));
  await assert.rejects(restoreBackup(store, new MemoryBlockDevice(blockSize), { volumeName: 'vol-v', backupName: 'backup-old', lock: fastLock }), (e) => isBackupError(e, 'conflict'));
});
