// What the node agent measures about its disks: capacity and free space (statfs), the disk's
// identity (a UUID written into the disk directory, so a disk moved to another path is the same
// disk), and replica directories under `<disk>/replicas` that no Replica resource owns.
import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { ShorthornError } from '../lib/errors.ts';

export const diskConfigFileName = 'shorthorn-disk.cfg';

export type DiskProbeErrorCode = 'corrupt';
export class DiskProbeError extends ShorthornError<DiskProbeErrorCode> {}

export interface DiskMeasure {
  readonly storageMaximum: number;
  readonly storageAvailable: number;
  readonly filesystemType: string;
}

export async function measureDisk(path: string): Promise<DiskMeasure> {
  const fs = await statfs(path);
  return {
    storageMaximum: fs.blocks * fs.bsize,
    // bavail, not bfree: what an unprivileged writer can use, as Longhorn reports.
    storageAvailable: fs.bavail * fs.bsize,
    filesystemType: `0x${fs.type.toString(16)}`,
  };
}

/** Read the disk's UUID, writing a new one (atomically) the first time the disk is seen. */
export async function diskUuid(path: string): Promise<string> {
  await mkdir(join(path, 'replicas'), { recursive: true });
  const file = join(path, diskConfigFileName);
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as { diskUUID?: unknown };
    if (typeof parsed.diskUUID !== 'string' || parsed.diskUUID.length === 0) {
      throw new DiskProbeError('corrupt', `${file} has no diskUUID`);
    }
    return parsed.diskUUID;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const uuid = randomUUID();
  const temp = `${file}.tmp`;
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(JSON.stringify({ diskName: '', diskUUID: uuid }));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, file);
  return uuid;
}

/** Replica directories on the disk, sorted. */
export async function replicaDirectories(path: string): Promise<string[]> {
  try {
    const entries = await readdir(join(path, 'replicas'), { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}
