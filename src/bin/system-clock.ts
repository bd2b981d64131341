// The real clock, for processes: wall time from Date, monotonic time from performance.now().
import { performance } from 'node:perf_hooks';
import type { Clock } from '../lib/clock.ts';

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  monotonicMs: () => performance.now(),
};
