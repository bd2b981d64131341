// Deletion and garbage collection: only blocks no other backup references go; an in-progress
// backup or an unreadable config stops collection; the grace period protects fresh blocks;
// locks make a deletion wait for a running backup; a whole volume can be removed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../lib/random.ts';
import { isBackupError } from '../format/backup/backup-error.ts';
import { encodeLockFile } from '../format/backup/lock-file.ts';
import { createBackup } from './create-backup.ts';
import { deleteBackup, deleteBackupVolume } from './delete-backup.ts';
import { restoreBackup } from './restore-backup.ts';
import { MemoryBlockDevice } from '../lib/memory-block-device.ts';
import { assertRestoresTo, blockSize, directoryStore, fastLock, fillBlock, seededVolume, testSeed } from './testing/backup-fixture.ts';
import type { MemorySnapshotVolume } from './testing/memory-snapshot-volume.ts';
import type { BackupStore } from './backup-store.ts';

const seed = testSeed();
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups) await cleanup();
});

async function threeBackups(): Promise<{ store: BackupStore; volume: MemorySnapshotVolume; target: Awaited<ReturnType<typeof directoryStore>>['target'] }> {
  const f = await directoryStore();
  cleanups.push(f.cleanup);
  const random = new SeededRandom(seed);
  const volume = seededVolume(6, random);
  for (const s of ['s1', 's2', 's3']) {
    fillBlock(volume, 0, random);
    volume.snapshot(s);
    await createBackup(f.store, volume.reader(s), { volumeName: 'vol-gc', backupName: `backup-${s}`, lock: fastLock });
  }
  return { store: f.store, volume, target: f.target };
}

test(`delete collects only blocks no other backup references; the rest restore (seed ${seed})`, async () => {
  const { store, volume } = await threeBackups();
  const paths = await store.paths('vol-gc');
  const s2 = await store.loadBackup(paths, 'backup-s2');
  const own = s2.blocks[0]!.checksum; // block 0 differs in every backup
  assert.ok((await store.listBlocks(paths)).has(own));
  const result = await deleteBackup(store, { volumeName: 'vol-gc', backupName: 'backup-s2', gcGraceMs: 0, lock: fastLock });
  assert.equal(result.skipped, undefined);
  assert.equal(result.blocksDeleted, 1);
  const blocks = await store.listBlocks(paths);
  assert.ok(!blocks.has(own));
  assert.equal((await store.loadVolumeConfig(paths)).blockCount, blocks.size);
  assert.deepEqual((await store.listBackups(paths)).map((b) => b.name), ['backup-s1', 'backup-s3']);
  await assertRestoresTo(store, { volumeName: 'vol-gc', backupName: 'backup-s1', expected: volume.image('s1'), seed });
  await assertRestoresTo(store, { volumeName: 'vol-gc', backupName: 'backup-s3', expected: volume.image('s3'), seed });
  // Deleting the newest backup moves LastBackupName to the newest one left.
  await deleteBackup(store, { volumeName: 'vol-gc', backupName: 'backup-s3', gcGraceMs: 0, lock: fastLock });
  assert.equal((await store.loadVolumeConfig(paths)).lastBackupName, 'backup-s1');
  await assert.rejects(deleteBackup(store, { volumeName: 'vol-gc', backupName: 'backup-s3', lock: fastLock }), (e) => isBackupError(e, 'not_found'));
});

test('collection is skipped while a backup is in progress or a config is unreadable, and spares young blocks', async () => {
  const { store, target } = await threeBackups();
  const paths = await store.paths('vol-gc');
  const before = (await store.listBlocks(paths)).size;
  // A placeholder as a running backup leaves it (CreatedTime "").
  await target.write(paths.backupConfig('backup-running'), new TextEncoder().encode('{"Name":"backup-running","VolumeName":"vol-gc","CreatedTime":""}'));
  const skipped = await deleteBackup(store, { volumeName: 'vol-gc', backupName: 'backup-s2', gcGraceMs: 0, lock: fastLock });
  assert.match(skipped.skipped ?? '', /backup-running is in progress/);
  assert.equal((await store.listBlocks(paths)).size, before);
  await target.delete([paths.backupConfig('backup-running')]);
  await target.write(paths.backupConfig('backup-broken'), new TextEncoder().encode('{"Name":"backup-br'));
  const broken = await deleteBackup(store, { volumeName: 'vol-gc', backupName: 'backup-s1', gcGraceMs: 0, lock: fastLock });
  assert.match(broken.skipped ?? '', /backup-broken could not be loaded/);
  assert.equal((await store.listBlocks(paths)).size, before);
  await target.delete([paths.backupConfig('backup-broken')]);
  // Now two backups' own blocks are unreferenced, but younger than the grace period.
  const young = await deleteBackup(store, { volumeName: 'vol-gc', backupName: 'backup-s3', gcGraceMs: 3600_000, lock: fastLock });
  assert.equal(young.blocksDeleted, 0);
});

test(`a deletion waits for a running backup; backup, delete of another and restore at once all succeed (seed ${seed})`, async () => {
  const { store, volume } = await threeBackups();
  const random = new SeededRandom(seed + 5);
  for (let b = 0; b < 6; b++) fillBlock(volume, b * blockSize, random);
  volume.snapshot('s4');
  const events: string[] = [];
  const device = new MemoryBlockDevice(volume.size);
  await Promise.all([
    createBackup(store, volume.reader('s4'), { volumeName: 'vol-gc', backupName: 'backup-s4', mode: 'full', concurrency: 1, lock: fastLock }).then(() => events.push('backup')),
    deleteBackup(store, { volumeName: 'vol-gc', backupName: 'backup-s1', gcGraceMs: 0, lock: { settleMs: 20, waitMs: 60_000 } }).then(() => events.push('delete')),
    restoreBackup(store, device, { volumeName: 'vol-gc', backupName: 'backup-s2', lock: fastLock }).then(() => events.push('restore')),
  ]);
  assert.deepEqual([...events].sort(), ['backup', 'delete', 'restore']);
  for (const s of ['s2', 's3', 's4']) await assertRestoresTo(store, { volumeName: 'vol-gc', backupName: `backup-${s}`, expected: volume.image(s), seed });
});

test('a deletion fails at once (Longhorn) or after its wait when a backup holds the lock', async () => {
  const { store, target } = await threeBackups();
  const paths = await store.paths('vol-gc');
  // Another client's acquired backup lock, fresh.
  await target.write(paths.lock('lock-00000000000000ff'), encodeLockFile({ name: 'lock-00000000000000ff', type: 1, acquired: true }));
  await assert.rejects(deleteBackup(store, { volumeName: 'vol-gc', backupName: 'backup-s1', lock: { settleMs: 20, waitMs: 0 } }), (e) => isBackupError(e, 'locked') && /lock-00000000000000ff/.test(e.message));
  // Backups (same type) still run beside it.
  const volume = seededVolume(6, new SeededRandom(2));
  volume.snapshot('other');
  await createBackup(store, volume.reader('other'), { volumeName: 'vol-gc', backupName: 'backup-other', lock: fastLock });
  await target.delete([paths.lock('lock-00000000000000ff')]);
  await deleteBackup(store, { volumeName: 'vol-gc', backupName: 'backup-s1', lock: fastLock });
});

test('deleting a whole backup volume removes everything under it', async () => {
  const { store, target } = await threeBackups();
  await deleteBackupVolume(store, { volumeName: 'vol-gc', lock: fastLock });
  const keys: string[] = [];
  for await (const entry of target.list('')) keys.push(entry.key);
  assert.deepEqual(keys, []);
  assert.deepEqual(await store.listVolumes(), []);
});
