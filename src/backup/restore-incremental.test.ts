// Incremental restore (a DR volume following its backups): only the blocks that differ between
// the backup the volume holds and the new one are fetched, blocks dropped from the map become
// zeros, and the result equals the new snapshot bit for bit. An interrupted incremental restore
// redone from the same base gives the same result; a deleted base gives a full restore.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBlockDevice } from '../lib/memory-block-device.ts';
import { SeededRandom } from '../lib/random.ts';
import { createBackup } from './create-backup.ts';
import { deleteBackup } from './delete-backup.ts';
import { restoreBackup } from './restore-backup.ts';
import { blockSize, directoryStore, equalBytes, fastLock, fillBlock, readAll, seededVolume, testSeed } from './testing/backup-fixture.ts';

const seed = testSeed();

test(`incremental restore writes only the changed blocks and zeroes the dropped ones (seed ${seed})`, async () => {
  const random = new SeededRandom(seed);
  const { store, cleanup } = await directoryStore();
  try {
    const volume = seededVolume(12, random);
    volume.snapshot('s1');
    await createBackup(store, volume.reader('s1'), { volumeName: 'vol-dr', backupName: 'backup-1', lock: fastLock });
    // Two blocks rewritten, one hole filled, one data block zeroed (dropped from the map).
    fillBlock(volume, 0, random);
    fillBlock(volume, 7 * blockSize, random);
    fillBlock(volume, 3 * blockSize, random); // block 3 was a hole
    volume.write(9 * blockSize, new Uint8Array(blockSize));
    volume.snapshot('s2');
    await createBackup(store, volume.reader('s2'), { volumeName: 'vol-dr', backupName: 'backup-2', lock: fastLock });

    const device = new MemoryBlockDevice(12 * blockSize);
    const first = await restoreBackup(store, device, { volumeName: 'vol-dr', backupName: 'backup-1', lock: fastLock });
    assert.equal(first.mode, 'full');
    assert.ok(equalBytes(await readAll(device), volume.image('s1')), `backup-1 restores bit for bit (seed ${seed})`);

    const second = await restoreBackup(store, device, { volumeName: 'vol-dr', backupName: 'backup-2', fromBackupName: 'backup-1', lock: fastLock });
    assert.deepEqual({ mode: second.mode, fetched: second.blocksFetched, zeroed: second.blocksZeroed }, { mode: 'incremental', fetched: 3, zeroed: 1 });
    assert.ok(equalBytes(await readAll(device), volume.image('s2')), `incremental restore equals s2 (seed ${seed})`);

    // Interrupted: half of a delta backup-1 → backup-2 applied by hand, then the same delta again.
    const half = new MemoryBlockDevice(12 * blockSize);
    await restoreBackup(store, half, { volumeName: 'vol-dr', backupName: 'backup-1', lock: fastLock });
    await half.write(7 * blockSize, volume.image('s2').subarray(7 * blockSize, 8 * blockSize));
    await restoreBackup(store, half, { volumeName: 'vol-dr', backupName: 'backup-2', fromBackupName: 'backup-1', lock: fastLock });
    assert.ok(equalBytes(await readAll(half), volume.image('s2')), `a redone delta over a half-applied one equals s2 (seed ${seed})`);

    // The base deleted from the target: a full restore, still exact over garbage.
    await deleteBackup(store, { volumeName: 'vol-dr', backupName: 'backup-1', lock: fastLock });
    const junk = new MemoryBlockDevice(12 * blockSize);
    await junk.write(0, new Uint8Array(12 * blockSize).fill(0xee));
    const full = await restoreBackup(store, junk, { volumeName: 'vol-dr', backupName: 'backup-2', fromBackupName: 'backup-1', targetIsZeroed: true, lock: fastLock });
    assert.equal(full.mode, 'full');
    assert.ok(equalBytes(await readAll(junk), volume.image('s2')), `full fallback equals s2 (seed ${seed})`);
  } finally {
    await cleanup();
  }
});
