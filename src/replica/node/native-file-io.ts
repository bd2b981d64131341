// Loads the shorthorn_file_io addon (native/file_io.c, built by node-gyp from binding.gyp when
// `npm ci` runs): preadv2(RWF_NOWAIT) on the event loop and batched file I/O on one pool thread.
//
// The addon is an optimisation, not a requirement: without it (no compiler at install time, a
// platform without preadv2, or SHORTHORN_NATIVE_FILE_IO=0) the replica does the same I/O through
// node:fs at about 15 µs more CPU per request. The replica logs which path it runs on, and the
// tests fail on Linux when the addon is not loaded, so a build that lost it does not pass quietly.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeFileIo {
  /** Bytes read from the page cache without blocking (0 at end of file), or -errno (-EAGAIN: would touch the disk). */
  preadNowait(fd: number, target: Uint8Array, positionBytes: number): number;
  /**
   * Run the operations in order on one libuv pool thread; `done` gets, per operation, the bytes
   * read or written (reads stop short only at end of file) or -errno.
   */
  submit(isWrite: boolean, buffers: Uint8Array[], fdAndPosition: Float64Array, done: (results: Float64Array) => void): void;
  /** posix_fadvise(DONTNEED) on the whole file (tests: make the next read miss the cache); 0 or -errno. */
  dropCache(fd: number): number;
  /**
   * glibc's malloc_trim(0): free pages of every arena back to the kernel; 1 when some were. Absent
   * from builds older than the function (the caller then does without).
   */
  readonly mallocTrim?: () => number;
  /** The most operations one submit takes. */
  readonly batchMax: number;
}

export const nativeFileIoEnvVar = 'SHORTHORN_NATIVE_FILE_IO';
const addonFile = join('build', 'Release', 'shorthorn_file_io.node');
/** dist/src/replica/node or src/replica/node: the package root is 3 or 4 folders up. */
const searchDepthMax = 5;

export type NativeFileIoLoad = { readonly kind: 'loaded'; readonly io: NativeFileIo; readonly path: string } | { readonly kind: 'absent'; readonly reason: string };

function findAddon(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < searchDepthMax; i++) {
    const candidate = join(dir, addonFile);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}

function isNativeFileIo(value: unknown): value is NativeFileIo {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v['preadNowait'] === 'function' && typeof v['submit'] === 'function' && typeof v['dropCache'] === 'function' && typeof v['batchMax'] === 'number';
}

function load(): NativeFileIoLoad {
  if (process.env[nativeFileIoEnvVar] === '0') return { kind: 'absent', reason: `${nativeFileIoEnvVar}=0` };
  if (process.platform !== 'linux') return { kind: 'absent', reason: `preadv2 with RWF_NOWAIT is Linux only (platform ${process.platform})` };
  const path = findAddon();
  if (path === undefined) return { kind: 'absent', reason: `${addonFile} not found (was npm ci run with a C compiler?)` };
  try {
    const addon: unknown = createRequire(import.meta.url)(path);
    if (!isNativeFileIo(addon)) return { kind: 'absent', reason: `${path} does not export the expected functions` };
    return { kind: 'loaded', io: addon, path };
  } catch (error) {
    // A stale or foreign build (another Node ABI, another architecture): run without it.
    return { kind: 'absent', reason: `${path}: ${error instanceof Error ? error.message : String(error)}` };
  }
}

let loaded: NativeFileIoLoad | undefined;

/** The addon, loaded once per process. */
export function nativeFileIo(): NativeFileIoLoad {
  loaded ??= load();
  return loaded;
}
