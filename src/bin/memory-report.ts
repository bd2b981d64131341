// A data process's memory on demand: `kill -USR2 PID` makes an engine or replica log one line
// with process.memoryUsage() and V8's heap spaces, so where the resident memory goes can be
// measured on a running process (docs/engine.md "Memory") without a debugger or a restart. And
// the idle release of memory, started here for both kinds of process.
import { getHeapSpaceStatistics } from 'node:v8';
import { nativeFileIo } from '../replica/node/native-file-io.ts';
import { releaseMemoryWhenIdle } from './idle-memory-release.ts';

/** Set to 0 to keep an idle process's memory (for comparisons: bench/memory.ts). */
export const idleMemoryReleaseEnvVar = 'SHORTHORN_IDLE_MEMORY_RELEASE';

const mib = (bytes: number): string => (bytes / (1024 * 1024)).toFixed(1);

/** One line: rss, heap used/total, external, arrayBuffers, then each V8 space as used/committed, in MiB. */
export function memoryReportLine(): string {
  const usage = process.memoryUsage();
  const spaces = getHeapSpaceStatistics()
    .filter((s) => s.space_size > 0)
    .map((s) => `${s.space_name.replace(/_space$/, '')}=${mib(s.space_used_size)}/${mib(s.space_size)}`);
  return (
    `memory MiB: rss=${mib(usage.rss)} heapUsed=${mib(usage.heapUsed)} heapTotal=${mib(usage.heapTotal)} ` +
    `external=${mib(usage.external)} arrayBuffers=${mib(usage.arrayBuffers)} spaces(used/committed): ${spaces.join(' ')}`
  );
}

/**
 * What every data process does about its memory: log the memory line on SIGUSR2 (Node keeps
 * SIGUSR1 for its inspector), and give memory back when idle (idle-memory-release.ts).
 */
export function manageDataProcessMemory(log: (message: string) => void): void {
  process.on('SIGUSR2', () => log(memoryReportLine()));
  if (process.env[idleMemoryReleaseEnvVar] === '0') return;
  const native = nativeFileIo();
  const trim = native.kind === 'loaded' ? native.io.mallocTrim : undefined;
  releaseMemoryWhenIdle({ mallocTrim: trim === undefined ? undefined : () => trim() });
}
