// Backup scenarios of the reliability notes (§7.3), on real processes (backup-scenario-env.ts):
//   S21 backup target failures: 30 % 503s, block uploads cut off mid-body (RST), a slow store,
//       RGW killed mid-backup — each backup ends in error or completes; nothing half-written lists
//       as a usable backup; a retry and the next backup succeed; every complete backup restores
//       bit for bit to its snapshot's image.
//   S22 damaged backups: a block deleted, a byte of a block flipped, a backup.cfg truncated,
//       volume.cfg deleted — the restore fails visibly (error, never completed, not claimed); the
//       listing still works; a new backup (incremental after a lost block, and full) restores.
//   S23 locks and GC: a fake Longhorn lock and a fake in-progress backup hold deletion back; then
//       a backup, the deletion of an older backup (GC with no grace period) and a restore run at
//       once — no block a live or in-progress backup uses is deleted; every remaining backup
//       verifies and restores bit for bit.
// Each returns report lines; a failed assertion carries the seed.
import assert from 'node:assert/strict';
import { deleteBackup } from '../../src/backup/delete-backup.ts';
import { compressBlock } from '../../src/backup/block-codec.ts';
import { verifyBackup } from '../../src/backup/verify-backup.ts';
import { BackupError } from '../../src/format/backup/backup-error.ts';
import { blockChecksum } from '../../src/format/backup/block-checksum.ts';
import { encodeLockFile, LockType } from '../../src/format/backup/lock-file.ts';
import { HttpFaultProxy } from '../harness/http-fault-proxy.ts';
import {
  assertRestoreFails, assertRestoresTo, backup, backupBlock, backupVolume, openStore, pickBlocks, scenarioRandom, startBackup, takeSnapshot,
  control, waitBackup, writeBlockBytes, writeBlocks, type BackupJob, type BackupScenarioEnv,
} from './backup-scenario-env.ts';

type Fault = 'errors' | 'reset' | 'slow' | 'kill';

/** S21: one backup per fault (seeded order), then retries, a clean backup and every restore. */
export async function scenarioS21(env: BackupScenarioEnv, seed: number): Promise<string[]> {
  const random = scenarioRandom(21, seed);
  const prefix = `s21-${seed}`;
  const report: string[] = [];
  const proxy = await HttpFaultProxy.start({ targetPort: Number(new URL(env.rgw.endpoint).port), seed });
  const jobs: { job: BackupJob; snapshot: string; fault: Fault | 'none' }[] = [];
  try {
    const faults: Fault[] = ['errors', 'reset', 'slow', 'kill'];
    for (let i = faults.length - 1; i > 0; i--) {
      const j = random.int(i + 1);
      [faults[i], faults[j]] = [faults[j]!, faults[i]!];
    }
    await writeBlocks(env, random, pickBlocks(random, 8));
    for (const [i, fault] of faults.entries()) {
      await writeBlocks(env, random, pickBlocks(random, 2 + random.int(4)));
      const snapshot = `s21-${seed}-${i}`;
      await takeSnapshot(env, snapshot);
      const backupName = `s21-${seed}-${i}-${fault}`;
      const ask = { backupName, snapshotName: snapshot, prefix, endpoint: proxy.endpoint };
      let job: BackupJob;
      let note = '';
      if (fault === 'errors') {
        proxy.errorRate(0.3);
        job = await backup(env, ask);
        assert.ok(proxy.counts.errors > 0, 'the 503s fired');
        note = `${proxy.counts.errors} requests answered 503`;
      } else if (fault === 'reset') {
        const count = random.pick([1, 2, Number.POSITIVE_INFINITY]);
        const afterBytes = 1 + random.int(256 * 1024);
        proxy.resetPuts(/\/blocks\//, afterBytes, count);
        const resetsBefore = proxy.counts.resets;
        job = await backup(env, ask);
        assert.ok(proxy.counts.resets > resetsBefore, 'a block upload was cut off');
        note = `${proxy.counts.resets - resetsBefore} block PUTs reset after ${afterBytes} bytes (limit ${count})`;
        // A few cut-off uploads are retried by the S3 client; every upload cut off is not.
        assert.equal(job.state, count === Number.POSITIVE_INFINITY ? 'error' : 'completed', `reset limit ${count}: ${job.error ?? ''}`);
      } else if (fault === 'slow') {
        proxy.delay(100, 80);
        job = await backup(env, ask);
        assert.equal(job.state, 'completed', `a slow store fails no backup: ${job.error ?? ''}`);
        note = `${proxy.counts.delayed} answers delayed 100 ± 80 ms`;
      } else {
        // Slow enough to be caught mid-way: one block at a time, each answer delayed.
        proxy.delay(150, 50);
        await startBackup(env, { ...ask, mode: 'full', concurrency: 1 });
        const killAfter = 1 + random.int(3);
        let killedAt: BackupJob | undefined;
        for (const deadline = performance.now() + 60_000; killedAt === undefined && performance.now() < deadline;) {
          const now = (await control(env.source, 'GET', `/v1/backups/${backupName}`)).json as unknown as BackupJob;
          assert.equal(now.state, 'in_progress', `the backup was over before RGW could be killed: ${JSON.stringify(now)}`);
          if (now.blocksDone >= killAfter) {
            await env.rgw.killRgw();
            killedAt = now;
          } else await new Promise((resolve) => setTimeout(resolve, 10)); // poll interval
        }
        assert.ok(killedAt !== undefined, 'RGW was killed during the backup');
        job = await waitBackup(env, backupName);
        assert.equal(job.state, 'error', 'a backup whose store died ends in error');
        await env.rgw.startRgw();
        note = `RGW killed after ${killedAt.blocksDone}/${killedAt.blocksTotal} blocks`;
      }
      proxy.heal();
      assert.ok(job.state === 'completed' || job.state === 'error');
      assert.ok(job.error === undefined || !job.error.includes(env.rgw.secretAccessKey), 'no secret in the error');
      report.push(`${fault}: ${job.state}${job.mode === undefined ? '' : ` (${job.mode})`}; ${note}${job.error === undefined ? '' : `; ${job.error.slice(0, 120)}`}`);
      jobs.push({ job, snapshot, fault });
    }
    // Retry what failed, and one more backup of new data, with the store healthy.
    for (const { job, snapshot } of [...jobs]) {
      if (job.state !== 'error') continue;
      const retry = await backup(env, { backupName: `${job.backupName}-retry`, snapshotName: snapshot, prefix });
      assert.equal(retry.state, 'completed', `retry of ${job.backupName}: ${retry.error ?? ''}`);
      jobs.push({ job: retry, snapshot, fault: 'none' });
    }
    await writeBlocks(env, random, pickBlocks(random, 3));
    await takeSnapshot(env, `s21-${seed}-next`);
    const next = await backup(env, { backupName: `s21-${seed}-next`, snapshotName: `s21-${seed}-next`, prefix });
    assert.equal(next.state, 'completed', next.error);
    jobs.push({ job: next, snapshot: `s21-${seed}-next`, fault: 'none' });

    // What the target lists: every completed job complete; a failed job never half-complete.
    const { store, paths, close } = await openStore(env, prefix);
    let listing;
    try {
      listing = await store.listBackups(paths);
    } finally {
      await close();
    }
    const byName = new Map(listing.map((l) => [l.name, l.state]));
    for (const { job } of jobs) {
      if (job.state === 'completed') assert.equal(byName.get(job.backupName), 'complete', `${job.backupName} completed but is not listed complete`);
      else if (byName.get(job.backupName) === 'complete') report.push(`${job.backupName} failed after its config was written: listed complete, restored below`);
      else if (byName.has(job.backupName)) report.push(`${job.backupName}: left ${byName.get(job.backupName)} (the store was gone when the job tried to remove it)`);
    }
    for (const { job, snapshot } of jobs) {
      if (byName.get(job.backupName) !== 'complete') continue;
      await assertRestoresTo(env, prefix, job.backupName, snapshot, `S21 seed ${seed}`);
    }
    report.push(`${jobs.filter((j) => byName.get(j.job.backupName) === 'complete').length} complete backups restored bit for bit`);
  } finally {
    await proxy.close();
  }
  return report;
}

async function flipByte(env: BackupScenarioEnv, prefix: string, key: string, at: (length: number) => number): Promise<number> {
  const { store, close } = await openStore(env, prefix);
  try {
    const bytes = await store.target.read(key, 64 * 1024 * 1024);
    const position = at(bytes.length);
    bytes[position] = bytes[position]! ^ 0x5a;
    await store.target.write(key, bytes);
    return position;
  } finally {
    await close();
  }
}

/** Names of the listing, by state; listing must not throw. */
async function listingStates(env: BackupScenarioEnv, prefix: string): Promise<Map<string, string>> {
  const { store, paths, close } = await openStore(env, prefix);
  try {
    return new Map((await store.listBackups(paths)).map((l) => [l.name, l.state]));
  } finally {
    await close();
  }
}

/** S22: each fault, then a visible restore failure, a working listing and a backup that restores. */
export async function scenarioS22(env: BackupScenarioEnv, seed: number): Promise<string[]> {
  const random = scenarioRandom(22, seed);
  const prefix = `s22-${seed}`;
  const report: string[] = [];
  const name = (x: string): string => `s22-${seed}-${x}`;
  const completed = async (backupName: string, snapshot: string, mode?: 'full'): Promise<BackupJob> => {
    const job = await backup(env, { backupName, snapshotName: snapshot, prefix, ...(mode === undefined ? {} : { mode }) });
    assert.equal(job.state, 'completed', `${backupName}: ${job.error ?? ''}`);
    return job;
  };
  await writeBlocks(env, random, pickBlocks(random, 10));
  await takeSnapshot(env, name('a'));
  await completed(name('a'), name('a'));
  await writeBlocks(env, random, pickBlocks(random, 3));
  await takeSnapshot(env, name('b'));
  await completed(name('b'), name('b'));
  await assertRestoresTo(env, prefix, name('b'), name('b'), 'before any damage');

  // 1. A block object deleted.
  const { store, paths, close } = await openStore(env, prefix);
  try {
    const b = await store.loadBackup(paths, name('b'));
    const victim = random.pick(b.blocks);
    await store.target.delete([paths.block(victim.checksum)]);
    const error = await assertRestoreFails(env, prefix, name('b'), /missing/, 'a block deleted');
    report.push(`block at ${victim.offsetBytes} deleted: restore error "${error.slice(0, 100)}"`);
    assert.deepEqual([...(await listingStates(env, prefix))], [[name('a'), 'complete'], [name('b'), 'complete']], 'the listing still works');
    // The next incremental backup must not lean on the lost block (Longhorn #9784): its map
    // keeps every unchanged block of the last backup, so the block must be uploaded again.
    const victimIndex = victim.offsetBytes / backupBlock;
    await writeBlocks(env, random, pickBlocks(random, 2, [...Array(16).keys()].filter((i) => i !== victimIndex)));
    await takeSnapshot(env, name('c'));
    const incremental = await completed(name('c'), name('c'));
    assert.equal(incremental.mode, 'incremental');
    await assertRestoresTo(env, prefix, name('c'), name('c'), 'an incremental backup after a block was lost');
    await completed(name('b-full'), name('b'), 'full');
    await assertRestoresTo(env, prefix, name('b-full'), name('b'), 'a full backup after a block was lost');

    // 2. One byte of a block object flipped.
    const bFull = await store.loadBackup(paths, name('b-full'));
    const flipped = random.pick(bFull.blocks);
    const position = await flipByte(env, prefix, paths.block(flipped.checksum), (length) => random.int(length));
    const flipError = await assertRestoreFails(env, prefix, name('b-full'), /checksum|decode/, 'a byte flipped');
    report.push(`byte ${position} of the block at ${flipped.offsetBytes} flipped: restore error "${flipError.slice(0, 100)}"`);
    assert.equal((await listingStates(env, prefix)).get(name('b-full')), 'complete', 'the listing still works');
    await completed(name('c-full'), name('c'), 'full');
    await assertRestoresTo(env, prefix, name('c-full'), name('c'), 'a full backup after a byte flipped');

    // 3. A backup.cfg truncated (any complete backup, the last one included).
    const candidates = [name('a'), name('b'), name('c'), name('b-full'), name('c-full')];
    const truncated = random.pick(candidates);
    const key = paths.backupConfig(truncated);
    const text = await store.target.read(key, 1 << 20);
    const cutAt = random.int(text.length);
    await store.target.write(key, text.subarray(0, cutAt));
    await assertRestoreFails(env, prefix, truncated, new RegExp(`${truncated}|JSON|config`), 'backup.cfg truncated');
    const states = await listingStates(env, prefix);
    assert.equal(states.get(truncated), 'unreadable');
    assert.deepEqual(candidates.filter((c) => c !== truncated).map((c) => states.get(c)), candidates.filter((c) => c !== truncated).map(() => 'complete'), 'the other backups still list');
    await writeBlocks(env, random, pickBlocks(random, 1));
    await takeSnapshot(env, name('d'));
    const afterTruncate = await completed(name('d'), name('d'));
    await assertRestoresTo(env, prefix, name('d'), name('d'), `a backup after ${truncated}'s config was truncated`);
    report.push(`backup.cfg of ${truncated} truncated from ${text.length} to ${cutAt} bytes: listed unreadable, restore refused; the next backup (${afterTruncate.mode ?? '?'}) restores`);

    // 4. volume.cfg deleted.
    await store.target.delete([paths.volumeConfig]);
    await assertRestoreFails(env, prefix, name('d'), /volume\.cfg/, 'volume.cfg deleted');
    assert.equal((await listingStates(env, prefix)).get(name('d')), 'complete', 'the backups still list');
    const afterVolumeCfg = await completed(name('e'), name('d'));
    assert.equal(afterVolumeCfg.mode, 'full', 'with volume.cfg gone there is no last backup: full');
    await assertRestoresTo(env, prefix, name('e'), name('d'), 'a new full backup after volume.cfg was deleted');
    report.push('volume.cfg deleted: restore refused, backups still listed, the next (full) backup restores');
  } finally {
    await close();
  }
  return report;
}

/** S23: fake markers hold GC back; then backup + delete-older + restore at once. */
export async function scenarioS23(env: BackupScenarioEnv, seed: number): Promise<string[]> {
  const random = scenarioRandom(23, seed);
  const prefix = `s23-${seed}`;
  const report: string[] = [];
  const name = (x: string): string => `s23-${seed}-${x}`;
  const completed = async (x: string): Promise<void> => {
    const job = await backup(env, { backupName: name(x), snapshotName: name(x), prefix });
    assert.equal(job.state, 'completed', `${name(x)}: ${job.error ?? ''}`);
  };
  await writeBlocks(env, random, pickBlocks(random, 10));
  await takeSnapshot(env, name('a'));
  await completed('a');
  const bWrites = pickBlocks(random, 4);
  await writeBlocks(env, random, bWrites);
  const bImage = await takeSnapshot(env, name('b'));
  await completed('b');
  const cWrites = pickBlocks(random, 3, bWrites); // overwrite blocks b wrote: b's copies become b's alone
  await writeBlocks(env, random, cWrites);
  await takeSnapshot(env, name('c'));
  await completed('c');

  const { store, paths, close } = await openStore(env, prefix);
  try {
    const blocksBefore = new Set((await store.listBlocks(paths)).keys());

    // A fake Longhorn backup holding its lock: the deletion waits, then gives up; nothing is gone.
    const fakeLock = paths.lock(`lock-${seed.toString(16).padStart(16, '0')}`);
    await store.target.write(fakeLock, encodeLockFile({ name: `lock-${seed.toString(16).padStart(16, '0')}`, type: LockType.backupOrRestore, acquired: true }));
    const refused = await deleteBackup(store, { volumeName: backupVolume, backupName: name('a'), gcGraceMs: 0, lock: { waitMs: 3000 } }).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(refused instanceof BackupError && refused.code === 'locked', `the deletion must wait for the lock and give up: ${String(refused)}`);
    assert.deepEqual(new Set((await store.listBlocks(paths)).keys()), blocksBefore, 'no block deleted under a backup lock');
    assert.equal((await listingStates(env, prefix)).get(name('a')), 'complete', 'the backup is still there');
    await store.target.delete([fakeLock]);
    report.push(`a fake acquired type-1 lock: deletion refused (${refused.message.slice(0, 80)})`);

    // A fake in-progress backup (Longhorn's placeholder config) and a block it has just uploaded.
    const orphan = new Uint8Array(backupBlock);
    random.fill(orphan);
    const orphanSum = await blockChecksum(orphan, store.sha512);
    await store.target.write(paths.block(orphanSum), await compressBlock('lz4', orphan));
    const fake = name('in-progress');
    await store.saveBackup(paths, {
      name: fake, volumeName: backupVolume, snapshotName: '', snapshotCreatedAt: '', createdTime: '', sizeBytes: 0, labels: {}, parameters: {},
      isIncremental: false, compressionMethod: 'lz4', newlyUploadedDataSize: 0, reUploadedDataSize: 0, blocks: [], blockSizeBytes: backupBlock,
    });
    const held = await deleteBackup(store, { volumeName: backupVolume, backupName: name('a'), gcGraceMs: 0 });
    assert.equal(held.blocksDeleted, 0);
    assert.match(held.skipped ?? '', /in progress/);
    assert.ok((await store.listBlocks(paths)).has(orphanSum), 'the in-progress backup\'s block is kept');
    report.push(`a fake in-progress backup: ${name('a')} deleted, GC skipped (${held.skipped ?? ''})`);
    await store.target.delete([paths.backupConfig(fake)]);

    // At once: a backup whose snapshot brings back a block only b holds (so it is deduplicated,
    // not uploaded), the deletion of b with GC and no grace period, and a restore of c.
    const revived = random.pick(cWrites);
    await writeBlockBytes(env, revived, bImage.subarray(revived * backupBlock, (revived + 1) * backupBlock));
    await writeBlocks(env, random, pickBlocks(random, 2, [...Array(16).keys()].filter((i) => i !== revived)));
    await takeSnapshot(env, name('d'));
    const proxy = await HttpFaultProxy.start({ targetPort: Number(new URL(env.rgw.endpoint).port), seed });
    try {
      proxy.delay(60, 40); // the backup stays in progress for a while
      const order = random.int(3);
      const offsetsMs = [0, random.int(1500), random.int(1500)];
      const later = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms)); // seeded start offsets
      const runBackup = (async () => {
        await later(offsetsMs[order % 3]!);
        await startBackup(env, { backupName: name('d'), snapshotName: name('d'), prefix, endpoint: proxy.endpoint, concurrency: 2 });
        return waitBackup(env, name('d'));
      })();
      const runDelete = (async () => {
        await later(offsetsMs[(order + 1) % 3]!);
        return deleteBackup(store, { volumeName: backupVolume, backupName: name('b'), gcGraceMs: 0 });
      })();
      const runRestore = (async () => {
        await later(offsetsMs[(order + 2) % 3]!);
        await assertRestoresTo(env, prefix, name('c'), name('c'), `S23 seed ${seed}: restore during backup and deletion`);
      })();
      const [job, gc] = await Promise.all([runBackup, runDelete, runRestore]);
      assert.equal(job.state, 'completed', job.error);
      report.push(`concurrent (offsets ${offsetsMs.join('/')} ms, order ${order}): backup ${job.mode ?? '?'}, ${job.blocksUploaded ?? '?'} blocks uploaded; deletion of b: ${gc.blocksDeleted} blocks deleted, ${gc.blocksKept} kept${gc.skipped === undefined ? '' : `, skipped: ${gc.skipped}`}`);
    } finally {
      await proxy.close();
    }
    // Whatever ran first, every remaining backup is whole.
    const remaining = [...(await listingStates(env, prefix))];
    assert.deepEqual(remaining.map(([n]) => n).sort(), [name('c'), name('d')]);
    for (const [backupName] of remaining) {
      const verified = await verifyBackup(store, { volumeName: backupVolume, backupName });
      assert.ok(verified.ok, `${backupName}: missing ${verified.missing.map((m) => m.offsetBytes).join(',')} corrupt ${verified.corrupt.map((m) => m.offsetBytes).join(',')}`);
      await assertRestoresTo(env, prefix, backupName, backupName, `S23 seed ${seed}: after the deletion`);
    }
    // And GC did its work once nothing was in progress: the orphan and b's own blocks are gone.
    const blocksAfter = await store.listBlocks(paths);
    assert.ok(!blocksAfter.has(orphanSum), 'the fake in-progress block was collected once nothing was in progress');
    report.push(`${remaining.length} remaining backups verify and restore bit for bit; ${blocksAfter.size} blocks left of ${blocksBefore.size + 1}`);
  } finally {
    await close();
  }
  return report;
}
