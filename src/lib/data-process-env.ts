// The environment a replica or engine process is started with, by whoever starts it (the node
// agent, the test harness, the benchmarks). Node, libuv and glibc read these before any of our
// code runs, so the process cannot set them for itself.
import { dataProcessThreadPoolSize } from './limits.ts';

/**
 * glibc's allocator returns freed memory above 128 KiB to the kernel (its mmap and trim
 * thresholds), so a data path that allocates a buffer per 128 KiB or 1 MiB request pays a fresh
 * mmap, a page fault per 4 KiB page and an munmap every time: measured on these machines, a
 * 128 KiB buffer cost 136 µs of CPU (6 page faults) instead of 13 µs (0.1), a 1 MiB one 636 µs
 * instead of 352 µs. Buffers up to 32 MiB (the largest request) come from the heap, and up to
 * 64 MiB of free heap is kept rather than trimmed: the price is that much resident memory after
 * a burst of large requests.
 */
export const mallocMmapThresholdBytes = 32 * 1024 * 1024;
export const mallocTrimThresholdBytes = 64 * 1024 * 1024;

/**
 * V8's largest semi-space (its young generation is two of them). Node 20's default, 16 MiB, let
 * each engine and replica under load commit 32 MiB of young generation it never gave back; at
 * 2 MiB the young generation is 4 MiB, and the CPU per request did not move beyond the noise
 * (scavenges run more often but each finds few live objects). Measured in
 * bench/results/memory-*.md; docs/engine.md "Memory".
 */
export const semiSpaceMaxMib = 2;

/**
 * The environment of a data process. `inheritedNodeOptions` (the starter's own NODE_OPTIONS) is
 * kept and comes after ours, so an operator's flag wins over our default.
 */
export function dataProcessEnv(inheritedNodeOptions = ''): Record<string, string> {
  return {
    NODE_OPTIONS: `--max-semi-space-size=${semiSpaceMaxMib} ${inheritedNodeOptions}`.trim(),
    UV_THREADPOOL_SIZE: String(dataProcessThreadPoolSize),
    MALLOC_MMAP_THRESHOLD_: String(mallocMmapThresholdBytes),
    MALLOC_TRIM_THRESHOLD_: String(mallocTrimThresholdBytes),
  };
}
