// The conformance suite every BackupTarget passes (directory, S3; NFS is a mounted directory).
// Each test gets a fresh target from the factory (a fresh directory, bucket or prefix).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isBackupError } from '../format/backup/backup-error.ts';
import type { BackupTarget } from './backup-target.ts';

export interface BackupTargetFactory {
  readonly name: string;
  create(): Promise<BackupTarget>;
}

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

async function keys(target: BackupTarget, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of target.list(prefix)) out.push(entry.key);
  return out.sort();
}

async function withTarget(factory: BackupTargetFactory, body: (target: BackupTarget) => Promise<void>): Promise<void> {
  const target = await factory.create();
  try {
    await body(target);
  } finally {
    await target.close();
  }
}

export const hostileKeys = ['../x', 'a/../../x', '/etc/passwd', '', 'a//b', 'a/./b', 'a/', '.hidden', 'a/.tmp', 'a\\..\\b', 'a\0b', `k/${'x'.repeat(1100)}`];

export function runBackupTargetConformance(factory: BackupTargetFactory): void {
  test(`${factory.name}: write, read, overwrite, stat, exists`, () =>
    withTarget(factory, async (target) => {
      const before = Date.now();
      await target.write('backupstore/volumes/aa/bb/v/volume.cfg', bytes('one'));
      assert.deepEqual(await target.read('backupstore/volumes/aa/bb/v/volume.cfg', 100), bytes('one'));
      await target.write('backupstore/volumes/aa/bb/v/volume.cfg', bytes('second'));
      assert.deepEqual(await target.read('backupstore/volumes/aa/bb/v/volume.cfg', 100), bytes('second'));
      const info = await target.stat('backupstore/volumes/aa/bb/v/volume.cfg');
      assert.equal(info?.sizeBytes, 6);
      // Server time, within a generous skew of ours (locks are ranked by it).
      assert.ok(info !== undefined && Math.abs(info.modifiedMs - before) < 120_000, `modified ${info?.modifiedMs} vs ${before}`);
      assert.equal(await target.exists('backupstore/volumes/aa/bb/v/volume.cfg'), true);
      assert.equal(await target.exists('backupstore/volumes/aa/bb/v/other.cfg'), false);
      assert.equal(await target.stat('backupstore/nothing/here'), undefined);
      await target.write('empty', new Uint8Array(0));
      assert.deepEqual(await target.read('empty', 0), new Uint8Array(0));
      const big = new Uint8Array(3 << 20).map((_, i) => i % 251);
      await target.write('big.blk', big);
      assert.deepEqual(await target.read('big.blk', big.length), big);
    }));

  test(`${factory.name}: missing objects and over-limit reads fail with their codes`, () =>
    withTarget(factory, async (target) => {
      await assert.rejects(target.read('no/such/key', 100), (e) => isBackupError(e, 'not_found'));
      await target.write('sized', new Uint8Array(1000));
      await assert.rejects(target.read('sized', 999), (e) => isBackupError(e, 'too_large') && /1000 bytes/.test(e.message));
    }));

  test(`${factory.name}: list is recursive, exact about prefixes, and pages past 1000`, () =>
    withTarget(factory, async (target) => {
      await target.write('a/b/1', bytes('1'));
      await target.write('a/b/c/2', bytes('22'));
      await target.write('a/bc/3', bytes('3'));
      await target.write('z', bytes('z'));
      assert.deepEqual(await keys(target, 'a/b'), ['a/b/1', 'a/b/c/2']);
      assert.deepEqual(await keys(target, 'a'), ['a/b/1', 'a/b/c/2', 'a/bc/3']);
      assert.deepEqual(await keys(target, ''), ['a/b/1', 'a/b/c/2', 'a/bc/3', 'z']);
      assert.deepEqual(await keys(target, 'nothing'), []);
      const sizes = new Map<string, number>();
      for await (const entry of target.list('a/b')) sizes.set(entry.key, entry.sizeBytes);
      assert.equal(sizes.get('a/b/c/2'), 2);
      const many = Array.from({ length: 1005 }, (_, i) => `many/${String(i).padStart(4, '0')}`);
      for (let at = 0; at < many.length; at += 50) await Promise.all(many.slice(at, at + 50).map((k) => target.write(k, bytes(k))));
      assert.deepEqual(await keys(target, 'many'), many);
      assert.equal(await target.deletePrefix('many'), 1005);
      assert.deepEqual(await keys(target, 'many'), []);
      assert.deepEqual(await keys(target, ''), ['a/b/1', 'a/b/c/2', 'a/bc/3', 'z']);
    }));

  test(`${factory.name}: delete removes some keys, tolerates missing ones`, () =>
    withTarget(factory, async (target) => {
      await target.write('d/1', bytes('1'));
      await target.write('d/2', bytes('2'));
      await target.write('d/3/4', bytes('3'));
      await target.delete(['d/1', 'd/3/4', 'd/missing']);
      assert.deepEqual(await keys(target, 'd'), ['d/2']);
      await target.delete([]);
      // A write right after its directory was emptied still lands.
      await target.write('d/3/5', bytes('5'));
      assert.deepEqual(await keys(target, 'd'), ['d/2', 'd/3/5']);
    }));

  test(`${factory.name}: concurrent writes of one key leave one whole value`, () =>
    withTarget(factory, async (target) => {
      const values = Array.from({ length: 8 }, (_, i) => new Uint8Array(256 * 1024).fill(i + 1));
      await Promise.all(values.map((v) => target.write('race', v)));
      const got = await target.read('race', 1 << 20);
      assert.equal(got.length, 256 * 1024);
      assert.ok(got.every((b) => b === got[0]), 'a torn mix of two writes');
      assert.deepEqual(await keys(target, ''), ['race'], 'no temporary files are listed');
    }));

  test(`${factory.name}: hostile keys are refused before anything is touched`, () =>
    withTarget(factory, async (target) => {
      await target.write('keep', bytes('keep'));
      for (const key of hostileKeys) {
        const refused = (e: unknown): boolean => isBackupError(e, 'invalid_argument');
        await assert.rejects(target.write(key, bytes('x')), refused, `write ${JSON.stringify(key)}`);
        await assert.rejects(target.read(key, 10), refused, `read ${JSON.stringify(key)}`);
        await assert.rejects(target.stat(key), refused, `stat ${JSON.stringify(key)}`);
        await assert.rejects(target.delete([key]), refused, `delete ${JSON.stringify(key)}`);
        if (key !== '') {
          await assert.rejects(keys(target, key), refused, `list ${JSON.stringify(key)}`);
          await assert.rejects(target.deletePrefix(key), refused, `deletePrefix ${JSON.stringify(key)}`);
        }
      }
      // A batch with one bad key deletes nothing.
      await assert.rejects(target.delete(['keep', '../x']), (e) => isBackupError(e, 'invalid_argument'));
      assert.deepEqual(await keys(target, ''), ['keep']);
    }));
}
