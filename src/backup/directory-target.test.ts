import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirectoryTarget } from './directory-target.ts';
import { runBackupTargetConformance } from './backup-target.conformance.ts';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shorthorn-vfs-'));
  dirs.push(dir);
  return dir;
}

runBackupTargetConformance({
  name: 'DirectoryTarget',
  create: async () => new DirectoryTarget(join(await freshDir(), 'root')),
});

test('DirectoryTarget: hostile keys never touch anything outside its root; empty dirs are pruned', async () => {
  const outer = await freshDir();
  await writeFile(join(outer, 'x'), 'outside');
  const target = new DirectoryTarget(join(outer, 'root'));
  await target.write('a/b/c', new Uint8Array(1));
  await assert.rejects(target.write('../x', new Uint8Array(1)));
  await assert.rejects(target.delete(['../x']));
  assert.deepEqual((await readdir(outer)).sort(), ['root', 'x']);
  await target.delete(['a/b/c']);
  assert.deepEqual(await readdir(join(outer, 'root')), [], 'empty directories are removed, as Longhorn does');
});
