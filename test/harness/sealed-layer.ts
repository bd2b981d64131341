// Bit rot planted behind a replica's back: one byte of its sealed layer flipped on disk, as a disk
// that returns wrong data without an error would. For the scrub and data-check tests.
import assert from 'node:assert/strict';
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** The sealed layer's data file: after one snapshot of a written volume, the only data file with blocks allocated. */
export async function sealedDataFile(replicaDir: string): Promise<string> {
  const files: string[] = [];
  for (const name of await readdir(replicaDir)) {
    if (name.endsWith('.data') && (await stat(join(replicaDir, name))).blocks > 0) files.push(join(replicaDir, name));
  }
  assert.equal(files.length, 1, `data files with blocks in ${replicaDir}: ${files.join(', ')}`);
  return files[0]!;
}

/** Flip the byte at `atBytes` of the sealed layer, which must hold `expected` (the pattern written there). */
export async function flipSealedByte(replicaDir: string, atBytes: number, expected: number): Promise<void> {
  const handle = await open(await sealedDataFile(replicaDir), 'r+');
  try {
    const byte = new Uint8Array(1);
    await handle.read(byte, 0, 1, atBytes);
    assert.equal(byte[0], expected, 'the byte to flip is not where the pattern was written');
    byte[0] = expected ^ 0xff;
    await handle.write(byte, 0, 1, atBytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
