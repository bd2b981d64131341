// A data process that goes idle gives its memory back: after a burst of I/O the engine and the
// replica hold dead request buffers (V8 frees an ArrayBuffer's memory only at a GC, and without
// allocation no GC runs) and free malloc pages (glibc keeps up to MALLOC_TRIM_THRESHOLD_ of free
// heap, set high for speed in src/lib/data-process-env.ts). A node runs many replica processes
// and most are idle at any time, so their idle size is what a node pays (docs/engine.md "Memory").
//
// Every interval the process's CPU time is read; an interval under the idle share after a busy
// one runs a full GC, the next idle interval malloc_trim (a GC's array buffers are freed by a
// background sweeper, so the trim waits an interval for them). Nothing happens under load, so the
// data path pays nothing; a request that arrives during the GC waits for it (milliseconds).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export type IdleReleaseState = 'busy' | 'collected' | 'released';
export type IdleReleaseAction = 'none' | 'gc' | 'trim';

/** Below this share of one core an interval counts as idle (pings, timers: well under 1 %). */
export const idleCpuShareMax = 0.02;
export const idleReleaseIntervalMs = 2000;

/** The pure step: what to do after an interval in which the process used `cpuMicros`. */
export function idleReleaseStep(
  state: IdleReleaseState,
  interval: { cpuMicros: number; intervalMs: number },
): { state: IdleReleaseState; action: IdleReleaseAction } {
  if (interval.cpuMicros > interval.intervalMs * 1000 * idleCpuShareMax) return { state: 'busy', action: 'none' };
  switch (state) {
    case 'busy':
      return { state: 'collected', action: 'gc' };
    case 'collected':
      return { state: 'released', action: 'trim' };
    case 'released':
      return { state, action: 'none' };
  }
}

/**
 * V8's full GC as a function, without `--expose-gc` on the command line: the flag set at run
 * time exposes `gc` in contexts made after it, so only this module holds it.
 */
function fullGc(): (() => void) | undefined {
  setFlagsFromString('--expose-gc');
  const gc: unknown = runInNewContext('gc');
  return typeof gc === 'function' ? (gc as () => void) : undefined;
}

/** Start the idle check (an unref'd timer: it never keeps the process alive). */
export function releaseMemoryWhenIdle(options: { mallocTrim: (() => number) | undefined; intervalMs?: number }): { stop: () => void } {
  const intervalMs = options.intervalMs ?? idleReleaseIntervalMs;
  let state: IdleReleaseState = 'busy';
  let gc: (() => void) | undefined;
  let last = process.cpuUsage();
  const timer = setInterval(() => {
    const used = process.cpuUsage(last);
    last = process.cpuUsage();
    const step = idleReleaseStep(state, { cpuMicros: used.user + used.system, intervalMs });
    state = step.state;
    if (step.action === 'gc') {
      gc ??= fullGc();
      gc?.();
    } else if (step.action === 'trim') {
      options.mallocTrim?.();
    }
    // What the release itself cost is not load: start the next interval after it.
    if (step.action !== 'none') last = process.cpuUsage();
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
