// File-level steps of the replica directory, shared by the store's operations: the atomic metadata
// replace, creating a head's files, loading a sealed layer's extents, and removing files no
// metadata refers to (leftovers of an operation a crash cut short).
import { layerExtentsMax } from '../lib/limits.ts';
import type { ReplicaFiles } from './replica-files.ts';
import { joinPath } from './replica-files.ts';
import { ReplicaError, errnoOf, ioFailure } from './replica-error.ts';
import { decodeExtentFile, encodeExtentFile, fileHeaderBytes, extentEntryBytes, type LayerRange } from './layer-codec.ts';
import { decodeMeta, encodeMeta, type ReplicaMeta } from './replica-meta.ts';
import { HeadJournal } from './head-journal.ts';

export const metaFileName = 'replica.meta';
const metaTempName = 'replica.meta.tmp';

export interface DirContext {
  readonly files: ReplicaFiles;
  readonly dir: string;
}

export function layerFileName(id: number, kind: 'data' | 'extents' | 'journal'): string {
  return `layer-${id}.${kind}`;
}

/** The checksum file belonging to a sealed layer's extent file. */
export function checksumFileName(extentFile: string): string {
  return `${extentFile}.sum`;
}

/** Read a whole small file, refusing one larger than `maxBytes` before allocating. */
export async function readWholeFile(ctx: DirContext, name: string, maxBytes: number): Promise<Uint8Array> {
  const path = joinPath(ctx.dir, name);
  const file = await ctx.files.open(path, 'read');
  try {
    const size = await file.sizeBytes();
    if (size > maxBytes) throw new ReplicaError('corrupt', `${path}: ${size} bytes is more than ${maxBytes}`);
    const bytes = new Uint8Array(size);
    const got = await file.read(bytes, 0);
    if (got !== size) throw new ReplicaError('io', `${path}: read ${got} of ${size} bytes`);
    return bytes;
  } finally {
    await file.close();
  }
}

/** Write a new file (or replace its contents) and make its contents durable. */
export async function writeNewFile(ctx: DirContext, name: string, bytes: Uint8Array): Promise<void> {
  const file = await ctx.files.open(joinPath(ctx.dir, name), 'create');
  try {
    await file.write(bytes, 0);
    await file.sync();
  } finally {
    await file.close();
  }
}

export async function readMeta(ctx: DirContext, maxBytes: number): Promise<ReplicaMeta> {
  let bytes: Uint8Array;
  try {
    bytes = await readWholeFile(ctx, metaFileName, maxBytes);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') {
      throw new ReplicaError('not_found', `no replica in ${ctx.dir} (${metaFileName} is missing)`, { cause: error });
    }
    throw ioFailure(`Cannot read ${joinPath(ctx.dir, metaFileName)}`, error);
  }
  return decodeMeta(bytes, joinPath(ctx.dir, metaFileName));
}

export type MetaWriteOutcome = 'unchanged' | 'unknown';

/**
 * Replace the metadata atomically: temp file, fsync, rename, fsync the directory. On failure the
 * error says whether the old metadata is certainly still in force ('unchanged': failed before the
 * rename) or the outcome is unknown (the rename ran, the directory sync failed).
 */
export async function writeMeta(ctx: DirContext, meta: ReplicaMeta): Promise<void> {
  const bytes = encodeMeta(meta);
  try {
    await writeNewFile(ctx, metaTempName, bytes);
  } catch (error) {
    throw Object.assign(ioFailure(`Cannot write ${metaTempName}`, error), { metaOutcome: 'unchanged' });
  }
  try {
    await ctx.files.rename(joinPath(ctx.dir, metaTempName), joinPath(ctx.dir, metaFileName));
    await ctx.files.syncDir(ctx.dir);
  } catch (error) {
    throw Object.assign(ioFailure(`Cannot commit ${metaFileName}`, error), { metaOutcome: 'unknown' });
  }
}

export function metaOutcomeOf(error: unknown): MetaWriteOutcome | undefined {
  if (typeof error === 'object' && error !== null && 'metaOutcome' in error) {
    return error.metaOutcome === 'unchanged' ? 'unchanged' : 'unknown';
  }
  return undefined;
}

/** Create an empty head: a sparse data file of the volume's size and a journal with its header. */
export async function createHeadFiles(
  ctx: DirContext,
  options: { dataFile: string; journalFile: string; sizeBytes: number; blockSizeBytes: number },
): Promise<void> {
  const data = await ctx.files.open(joinPath(ctx.dir, options.dataFile), 'create');
  try {
    await data.truncate(options.sizeBytes);
    await data.sync();
  } finally {
    await data.close();
  }
  const journal = await ctx.files.open(joinPath(ctx.dir, options.journalFile), 'create');
  try {
    await HeadJournal.initialize(journal, options.blockSizeBytes);
  } finally {
    await journal.close();
  }
}

export async function loadExtents(
  ctx: DirContext,
  extentFile: string,
  limits: { blockSizeBytes: number; volumeBlocks: number },
): Promise<LayerRange[]> {
  const bytes = await readWholeFile(ctx, extentFile, fileHeaderBytes + layerExtentsMax * extentEntryBytes);
  return decodeExtentFile(bytes, { ...limits, entriesMax: layerExtentsMax }, joinPath(ctx.dir, extentFile));
}

export async function writeExtents(ctx: DirContext, extentFile: string, ranges: readonly LayerRange[], blockSizeBytes: number): Promise<void> {
  await writeNewFile(ctx, extentFile, encodeExtentFile(ranges, blockSizeBytes));
}

/** Every file name the metadata refers to (the checksum files of referenced extent files too). */
export function referencedFiles(meta: ReplicaMeta): Set<string> {
  const names = new Set<string>([metaFileName, meta.head.dataFile, meta.head.journalFile]);
  for (const s of meta.snapshots) {
    names.add(s.dataFile);
    names.add(s.extentFile);
    names.add(checksumFileName(s.extentFile));
  }
  if (meta.pending !== null) {
    names.add(meta.pending.extentFile);
    names.add(checksumFileName(meta.pending.extentFile));
  }
  return names;
}

/** Remove layer files and temp files that no metadata refers to; returns their names. */
export async function removeUnreferenced(ctx: DirContext, meta: ReplicaMeta): Promise<string[]> {
  const keep = referencedFiles(meta);
  const removed: string[] = [];
  for (const name of await ctx.files.list(ctx.dir)) {
    const ours = name.startsWith('layer-') || name.endsWith('.tmp');
    if (ours && !keep.has(name)) {
      await ctx.files.remove(joinPath(ctx.dir, name));
      removed.push(name);
    }
  }
  return removed;
}
