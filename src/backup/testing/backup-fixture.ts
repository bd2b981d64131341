// Shared pieces of the backup tests: seeded volume contents, a store on a temp directory with
// short lock settling, and a bit-for-bit restore check.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBlockDevice } from '../../lib/memory-block-device.ts';
import type { SeededRandom } from '../../lib/random.ts';
import { BackupStore } from '../backup-store.ts';
import type { BackupTarget } from '../backup-target.ts';
import { DirectoryTarget } from '../directory-target.ts';
import { restoreBackup } from '../restore-backup.ts';
import { MemorySnapshotVolume } from './memory-snapshot-volume.ts';

export const blockSize = 2 * 1024 * 1024;
export const fastLock = { settleMs: 20 };

export function testSeed(): number {
  return Number(process.env['SEED'] ?? Date.now() % 1_000_000);
}

/** Fill one 2 MiB block: half compressible text-like bytes, half noise, tagged with its offset. */
export function fillBlock(volume: MemorySnapshotVolume, offsetBytes: number, random: SeededRandom): void {
  const data = new Uint8Array(blockSize);
  const tag = new TextEncoder().encode(`block@${offsetBytes}#${random.int(1 << 30)} `);
  for (let i = 0; i < blockSize / 2; i++) data[i] = tag[i % tag.length]!;
  for (let i = blockSize / 2; i < blockSize; i += 4) {
    const r = random.int(2 ** 32);
    data[i] = r & 0xff;
    data[i + 1] = (r >>> 8) & 0xff;
    data[i + 2] = (r >>> 16) & 0xff;
    data[i + 3] = r >>> 24;
  }
  volume.write(offsetBytes, data);
}

/** A volume of `blocks` blocks: most hold data, some are holes, one is explicitly written zeros,
 *  two share content (dedup). */
export function seededVolume(blocks: number, random: SeededRandom): MemorySnapshotVolume {
  const volume = new MemorySnapshotVolume(blocks * blockSize);
  for (let b = 0; b < blocks; b++) {
    if (b % 7 === 3) continue; // a hole
    if (b === 5) volume.write(b * blockSize, new Uint8Array(blockSize)); // written zeros
    else fillBlock(volume, b * blockSize, random);
  }
  return volume;
}

export async function directoryStore(): Promise<{ store: BackupStore; target: BackupTarget; root: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'shorthorn-backup-'));
  const target = new DirectoryTarget(join(root, 'target'));
  return { store: new BackupStore(target), target, root, cleanup: () => rm(root, { recursive: true, force: true }) };
}

export async function assertRestoresTo(store: BackupStore, args: { volumeName: string; backupName: string; expected: Uint8Array; seed: number }): Promise<void> {
  const device = new MemoryBlockDevice(args.expected.length);
  // Garbage first, so a restore that skips zeroing is caught.
  await device.write(0, new Uint8Array(Math.min(args.expected.length, 32 << 20)).fill(0xee));
  await restoreBackup(store, device, { volumeName: args.volumeName, backupName: args.backupName, lock: fastLock });
  const got = await readAll(device);
  if (!equalBytes(got, args.expected)) {
    const at = got.findIndex((b, i) => b !== args.expected[i]);
    assert.fail(`restore of ${args.backupName} differs from its snapshot first at byte ${at} (seed ${args.seed})`);
  }
}

export async function readAll(device: MemoryBlockDevice): Promise<Uint8Array> {
  const out = new Uint8Array(device.sizeBytes());
  for (let at = 0; at < out.length; at += 32 << 20) out.set(await device.read(at, Math.min(32 << 20, out.length - at)), at);
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
