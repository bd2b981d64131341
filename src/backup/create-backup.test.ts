// Backup and restore on a directory target: full and incremental, compression methods, zero
// blocks, dedup, full-backup interval, explicit full repairs, progress.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../lib/random.ts';
import { isBackupError } from '../format/backup/backup-error.ts';
import type { CompressionMethod } from '../format/backup/compression-method.ts';
import { createBackup } from './create-backup.ts';
import { verifyBackup } from './verify-backup.ts';
import { assertRestoresTo, blockSize, directoryStore, fastLock, fillBlock, seededVolume, testSeed } from './testing/backup-fixture.ts';
import type { BackupProgress } from './snapshot-reader.ts';

const seed = testSeed();
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups) await cleanup();
});
async function fixture(): Promise<Awaited<ReturnType<typeof directoryStore>>> {
  const f = await directoryStore();
  cleanups.push(f.cleanup);
  return f;
}

for (const compression of ['lz4', 'gzip', 'none'] as CompressionMethod[]) {
  test(`full backup with ${compression} restores bit for bit; zero blocks and holes are left out (seed ${seed})`, async () => {
    const { store } = await fixture();
    const random = new SeededRandom(seed);
    const volume = seededVolume(12, random);
    volume.snapshot('s1');
    const progress: BackupProgress[] = [];
    const result = await createBackup(store, volume.reader('s1'), { volumeName: 'vol-1', backupName: 'backup-a', compression, lock: fastLock, onProgress: (p) => progress.push(p) });
    // 12 blocks: 3,10 are holes (never read), 5 is written zeros (read, left out).
    assert.equal(result.mode, 'full');
    assert.equal(result.blocksRead, 10, `seed ${seed}`);
    assert.equal(result.blocksZero, 1);
    assert.equal(result.blocksMapped, 9);
    assert.equal(result.blocksUploaded, 9);
    assert.equal(progress.length, 10);
    assert.equal(progress.at(-1)?.blocksDone, 10);
    assert.ok(progress.every((p) => p.operation === 'backup' && p.blocksTotal === 10));
    const paths = await store.paths('vol-1');
    const config = await store.loadBackup(paths, 'backup-a');
    assert.deepEqual(config.blocks.map((b) => b.offsetBytes / blockSize), [0, 1, 2, 4, 6, 7, 8, 9, 11]);
    assert.equal(config.compressionMethod, compression);
    assert.equal((await store.loadVolumeConfig(paths)).lastBackupName, 'backup-a');
    await assertRestoresTo(store, { volumeName: 'vol-1', backupName: 'backup-a', expected: volume.image('s1'), seed });
    assert.equal((await verifyBackup(store, { volumeName: 'vol-1', backupName: 'backup-a' })).ok, true);
  });
}

test(`incremental backup reads and uploads only the changed 5 %; both restore bit for bit (seed ${seed})`, async () => {
  const { store } = await fixture();
  const random = new SeededRandom(seed + 1);
  const blocks = 40;
  const volume = seededVolume(blocks, random);
  volume.snapshot('s1');
  const first = await createBackup(store, volume.reader('s1'), { volumeName: 'vol-inc', backupName: 'backup-1', lock: fastLock });
  // Change 2 of 40 blocks (5 %): one rewritten, one zeroed (it must leave the map).
  fillBlock(volume, 8 * blockSize, random);
  volume.write(9 * blockSize, new Uint8Array(blockSize));
  volume.snapshot('s2');
  volume.bytesRead = 0;
  const second = await createBackup(store, volume.reader('s2'), { volumeName: 'vol-inc', backupName: 'backup-2', lock: fastLock });
  assert.equal(second.mode, 'incremental');
  assert.equal(second.blocksRead, 2);
  assert.equal(volume.bytesRead, 2 * blockSize, 'only the changed blocks are read');
  assert.equal(second.blocksUploaded, 1);
  assert.ok(second.bytesUploaded < 2 * blockSize && second.bytesUploaded > 0, `uploaded ${second.bytesUploaded}`);
  assert.ok(second.bytesUploaded < first.bytesUploaded / 10, `incremental ${second.bytesUploaded} vs full ${first.bytesUploaded}`);
  const config = await store.loadBackup(await store.paths('vol-inc'), 'backup-2');
  assert.equal(config.isIncremental, true);
  assert.ok(!config.blocks.some((b) => b.offsetBytes === 9 * blockSize), 'a block zeroed since the last backup leaves the map');
  await assertRestoresTo(store, { volumeName: 'vol-inc', backupName: 'backup-1', expected: volume.image('s1'), seed });
  await assertRestoresTo(store, { volumeName: 'vol-inc', backupName: 'backup-2', expected: volume.image('s2'), seed });
});

test(`full backups: when the last snapshot is gone, every N-th, and on request (re-uploads repair) (seed ${seed})`, async () => {
  const { store, target } = await fixture();
  const random = new SeededRandom(seed + 2);
  const volume = seededVolume(6, random);
  const modes: string[] = [];
  const backup = async (snapshot: string, options: { mode?: 'full' } = {}): Promise<void> => {
    fillBlock(volume, 0, random);
    volume.snapshot(snapshot);
    modes.push((await createBackup(store, volume.reader(snapshot), { volumeName: 'vol-f', backupName: `backup-${snapshot}`, fullBackupInterval: 2, lock: fastLock, ...options })).mode);
  };
  await backup('s1');
  await backup('s2');
  await backup('s3');
  await backup('s4'); // two incrementals in a row: the interval makes this one full
  await backup('s5');
  volume.deleteSnapshot('s5');
  await backup('s6'); // the last backed-up snapshot is gone: full
  assert.deepEqual(modes, ['full', 'incremental', 'incremental', 'full', 'incremental', 'full']);
  // Damage a block every backup shares; an explicit full backup rewrites it.
  const paths = await store.paths('vol-f');
  const shared = (await store.loadBackup(paths, 'backup-s6')).blocks[1]!;
  await target.write(paths.block(shared.checksum), new Uint8Array([1, 2, 3]));
  assert.equal((await verifyBackup(store, { volumeName: 'vol-f', backupName: 'backup-s2' })).corrupt.length, 1);
  volume.snapshot('s7');
  const repair = await createBackup(store, volume.reader('s7'), { volumeName: 'vol-f', backupName: 'backup-s7', mode: 'full', lock: fastLock });
  assert.equal(repair.mode, 'full');
  assert.ok((await store.loadBackup(paths, 'backup-s7')).reUploadedDataSize > 0);
  assert.equal((await verifyBackup(store, { volumeName: 'vol-f', backupName: 'backup-s2' })).ok, true, 'the older backup is whole again');
  for (const s of ['s1', 's2', 's3', 's4', 's6', 's7']) await assertRestoresTo(store, { volumeName: 'vol-f', backupName: `backup-${s}`, expected: volume.image(s), seed });
});

test(`blocks with the same content are stored once (seed ${seed})`, async () => {
  const { store } = await fixture();
  const random = new SeededRandom(seed + 3);
  const volume = seededVolume(8, random);
  volume.snapshot('base');
  const content = (await volume.reader('base').read(0, blockSize)).slice();
  for (const b of [1, 2, 4]) volume.write(b * blockSize, content);
  volume.snapshot('s1');
  const result = await createBackup(store, volume.reader('s1'), { volumeName: 'vol-d', concurrency: 4, lock: fastLock });
  assert.equal(result.blocksMapped, 6);
  assert.equal(result.blocksUploaded, 3, 'blocks 0, 1, 2, 4 share one object');
  assert.equal((await store.listBlocks(await store.paths('vol-d'))).size, 3);
  await assertRestoresTo(store, { volumeName: 'vol-d', backupName: result.backupName, expected: volume.image('s1'), seed });
});

test('bad arguments are refused before anything is written', async () => {
  const { store, target } = await fixture();
  const volume = seededVolume(2, new SeededRandom(1));
  volume.snapshot('s1');
  const refused = (e: unknown): boolean => isBackupError(e, 'invalid_argument');
  await assert.rejects(createBackup(store, volume.reader('s1'), { volumeName: '../etc', lock: fastLock }), refused);
  await assert.rejects(createBackup(store, volume.reader('s1'), { volumeName: 'v1', backupName: 'a/b', lock: fastLock }), refused);
  await assert.rejects(createBackup(store, volume.reader('s1'), { volumeName: 'v1', concurrency: 0, lock: fastLock }), refused);
  await assert.rejects(createBackup(store, volume.reader('s1'), { volumeName: 'v1', blockSizeBytes: 3 * 1024 * 1024, lock: fastLock }), refused);
  const keys: string[] = [];
  for await (const entry of target.list('')) keys.push(entry.key);
  assert.deepEqual(keys, []);
});

test(`an incremental backup after a block of the last backup was lost uploads it again and restores (S22, Longhorn #9784; seed ${seed})`, async () => {
  const { store } = await fixture();
  const random = new SeededRandom(seed + 7);
  const volume = seededVolume(8, random);
  volume.snapshot('s1');
  await createBackup(store, volume.reader('s1'), { volumeName: 'vol-lost', backupName: 'backup-1', lock: fastLock });
  const paths = await store.paths('vol-lost');
  const lost = (await store.loadBackup(paths, 'backup-1')).blocks.find((b) => b.offsetBytes === 0)!;
  await store.target.delete([paths.block(lost.checksum)]);
  fillBlock(volume, 7 * blockSize, random); // a change elsewhere; block 0 is unchanged since s1
  volume.snapshot('s2');
  const second = await createBackup(store, volume.reader('s2'), { volumeName: 'vol-lost', backupName: 'backup-2', lock: fastLock });
  assert.equal(second.mode, 'incremental');
  assert.equal(second.blocksRead, 2, 'the changed block and the lost one');
  assert.match(second.warnings.join('\n'), /1 blocks of the last backup backup-1 were missing/);
  assert.equal((await verifyBackup(store, { volumeName: 'vol-lost', backupName: 'backup-2' })).ok, true);
  await assertRestoresTo(store, { volumeName: 'vol-lost', backupName: 'backup-2', expected: volume.image('s2'), seed });
  // The lost block is back, so the older backup restores again too.
  await assertRestoresTo(store, { volumeName: 'vol-lost', backupName: 'backup-1', expected: volume.image('s1'), seed });
});
