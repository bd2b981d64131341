// The file-system port of the replica store. The store does all its disk I/O through these two
// small interfaces, so tests and the simulator can swap in memory files that lose unsynced writes,
// tear writes and fail with EIO or ENOSPC (memory-replica-files.ts), while production uses
// node/node-replica-files.ts. Paths are plain strings joined with '/'.

/** How to open a file. */
export type FileOpenMode =
  /** Read only; the file must exist. */
  | 'read'
  /** Read and write; the file must exist. */
  | 'write'
  /** Read and write; created empty, or truncated to empty if it exists. */
  | 'create';

export interface ReplicaFile {
  /** Read into `target` from `positionBytes`; returns how many bytes were read (short only at end of file). */
  read(target: Uint8Array, positionBytes: number): Promise<number>;
  /** Write all of `data` at `positionBytes` (extending the file if needed). Not durable until sync(). */
  write(data: Uint8Array, positionBytes: number): Promise<void>;
  /** fdatasync: every completed write (and the file's size) is durable when this resolves. */
  sync(): Promise<void>;
  truncate(sizeBytes: number): Promise<void>;
  sizeBytes(): Promise<number>;
  close(): Promise<void>;
}

export interface ReplicaFiles {
  open(path: string, mode: FileOpenMode): Promise<ReplicaFile>;
  /** Names (not paths) of the entries of a directory. */
  list(dir: string): Promise<string[]>;
  /** Create a directory and its parents; no error if it exists. */
  mkdir(dir: string): Promise<void>;
  /** Atomically replace `to` with `from` (POSIX rename). Durable after syncDir of the directory. */
  rename(from: string, to: string): Promise<void>;
  /** Remove a file; no error if it does not exist. */
  remove(path: string): Promise<void>;
  /** fsync a directory: creations, renames and removals in it are durable when this resolves. */
  syncDir(dir: string): Promise<void>;
}

export function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}
