// The durable record a replica keeps for fencing and start-up choice (DESIGN §3.3): the highest
// engine epoch it accepted and the write-set generation it last belonged to. The node agent reads
// it from the replica's metadata file (`replica.meta`, docs/replica-format.md) — whether the
// replica process runs or not — and reports it in the Replica status, so that the manager can
// choose which replicas to salvage when every replica failed (control/controllers/volume-salvage.ts).
// The agent may not import src/replica, so the envelope (magic, version, length, CRC-32 of the
// header and of the JSON body) is checked here again; only the three fields are taken.
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { metadataSizeMaxBytes } from '../lib/limits.ts';

export interface ReplicaRecord {
  readonly epoch: number;
  readonly generation: number;
  readonly members: readonly string[];
}

const magic = 'SHRMETA1';
const headerBytes = 24;
const knownVersion = 1;
export const replicaMetaFileName = 'replica.meta';

/** The record in a metadata file's bytes, or why there is none. Pure. */
export function parseReplicaRecord(bytes: Uint8Array): ReplicaRecord | { readonly problem: string } {
  if (bytes.length < headerBytes) return { problem: `${bytes.length} bytes is shorter than the header` };
  for (let i = 0; i < magic.length; i++) if (bytes[i] !== magic.charCodeAt(i)) return { problem: 'not a replica metadata file (bad magic)' };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (view.getUint32(20, true) !== crc32(bytes.subarray(0, 20))) return { problem: 'header checksum mismatch' };
  const version = view.getUint32(8, true);
  if (version !== knownVersion) return { problem: `format version ${version} (this agent reads ${knownVersion})` };
  const length = view.getUint32(12, true);
  if (bytes.length !== headerBytes + length) return { problem: `${bytes.length} bytes, header says ${headerBytes + length}` };
  const body = bytes.subarray(headerBytes);
  if (crc32(body) !== view.getUint32(16, true)) return { problem: 'body checksum mismatch' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    return { problem: 'body is not JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null) return { problem: 'body is not an object' };
  const { epoch, generation, members } = parsed as Record<string, unknown>;
  const count = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  if (!count(epoch) || !count(generation)) return { problem: 'epoch or generation is not a non-negative integer' };
  if (!Array.isArray(members) || members.length > 64 || !members.every((m): m is string => typeof m === 'string' && m.length <= 512)) {
    return { problem: 'members is not a list of strings' };
  }
  return { epoch, generation, members };
}

/** Reads replica records, again only when the file changed (a commit replaces it by rename). */
export class ReplicaRecordReader {
  private readonly cache = new Map<string, { key: string; record: ReplicaRecord | { problem: string } }>();

  /** The record in `dir`, undefined when there is no metadata file yet; a problem when it does not read. */
  async read(dir: string): Promise<ReplicaRecord | { readonly problem: string } | undefined> {
    const path = join(dir, replicaMetaFileName);
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        this.cache.delete(dir);
        return undefined;
      }
      return { problem: `cannot open ${path}: ${(error as Error).message}` };
    }
    try {
      const stat = await handle.stat();
      const key = `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
      const cached = this.cache.get(dir);
      if (cached?.key === key) return cached.record;
      if (stat.size > metadataSizeMaxBytes) return { problem: `${path} is ${stat.size} bytes, above ${metadataSizeMaxBytes}` };
      const bytes = new Uint8Array(stat.size);
      const { bytesRead } = await handle.read(bytes, 0, stat.size, 0);
      const record = bytesRead === stat.size ? parseReplicaRecord(bytes) : { problem: `short read of ${path}` };
      this.cache.set(dir, { key, record });
      return record;
    } finally {
      await handle.close();
    }
  }
}
