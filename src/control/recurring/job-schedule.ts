// When a recurring job runs, decided from its cron schedule, the slot of its last run (kept in
// the job's status, so the rule survives a manager restart) and the wall clock. Pure.
//
// The rule (docs/recurring-jobs.md, "Missed runs and clock jumps"):
// - A run belongs to one cron slot. Its slot is recorded before the run starts.
// - The job is due when the first slot after the last run's slot has come (slot <= now). Every
//   slot that has come since then is covered by ONE run, for the latest of them: a manager that
//   was down, or a wall clock stepped forward, gives one catch-up run, never a burst.
// - A wall clock stepped back (now before the last run's slot) never reruns a slot that has
//   run: the job waits until the clock reaches the slot after the last run's slot again. So in
//   wall-clock terms each slot is covered exactly once: no double, no skip.
// - But waiting for the wall clock skips, in real time, as many periods as the step was long (an
//   hour back costs a per-minute job 60 runs). So when the clock is behind the last slot by more
//   than one period and the manager knows from its monotonic clock how long ago the last scheduled
//   run started (`realSinceLastRunMs`: it started that run in this process), the job runs once a
//   period of real time has passed since it, for the slot the wall clock is in now: no two runs
//   closer than a period, at most one period skipped (scenario S27). The slot recorded then lies
//   before the previous one; the schedule goes on from it in the new wall time.
// - Without that reading (the manager restarted after the step), the wall-clock rule above holds,
//   except when the clock is behind by more than `clockBehindResetMs` (a day): then the record
//   is taken for the mistake (a clock once set far into the future) and the schedule starts
//   again from now, rather than stalling the job until that future date.
import { recurringJobClockBehindResetMs, recurringJobCollapsedSlotsCountMax } from '../../lib/limits.ts';
import type { CronSchedule } from './cron-schedule.ts';

export interface ScheduleInput {
  readonly schedule: CronSchedule;
  /** The slot of the last run started; undefined before the first run. */
  readonly lastSlotMs: number | undefined;
  /** Creation time of the job: the first run is the first slot after it. */
  readonly createdAtMs: number;
  readonly nowMs: number;
  /**
   * Monotonic ms since the last scheduled run started, when this process started it (the
   * controller keeps it in memory); undefined otherwise. Used only when the wall clock is behind.
   */
  readonly realSinceLastRunMs?: number;
}

export type ScheduleDecision =
  /**
   * Run now for `slotMs`. `collapsedSlots` slots came since the last run (1: on time; more:
   * missed ones folded into this run; capped at recurringJobCollapsedSlotsCountMax).
   */
  | { readonly kind: 'run'; readonly slotMs: number; readonly collapsedSlots: number; readonly nextMs: number | null }
  /** Nothing to do before `nextMs`. `resetAnchorMs`: record this as the last slot (clock reset). */
  | { readonly kind: 'wait'; readonly nextMs: number; readonly clockBehindMs?: number; readonly resetAnchorMs?: number }
  /** The expression fires no more. */
  | { readonly kind: 'never' };

export function decideSchedule(input: ScheduleInput): ScheduleDecision {
  const { schedule, nowMs } = input;
  let anchorMs = input.lastSlotMs ?? input.createdAtMs;
  let resetAnchorMs: number | undefined;
  const behindMs = anchorMs - nowMs;
  if (input.lastSlotMs !== undefined && behindMs > 0 && input.realSinceLastRunMs !== undefined) {
    const stepped = afterStepBack(schedule, input.lastSlotMs, nowMs, input.realSinceLastRunMs);
    if (stepped !== undefined) return stepped;
  }
  if (input.lastSlotMs !== undefined && behindMs > recurringJobClockBehindResetMs) {
    anchorMs = nowMs;
    resetAnchorMs = nowMs;
  }
  const firstDue = schedule.nextAfter(anchorMs);
  if (firstDue === null) return { kind: 'never' };
  if (firstDue > nowMs) {
    return {
      kind: 'wait',
      nextMs: firstDue,
      ...(behindMs > 0 && input.lastSlotMs !== undefined ? { clockBehindMs: behindMs } : {}),
      ...(resetAnchorMs === undefined ? {} : { resetAnchorMs }),
    };
  }
  const slotMs = schedule.latestAtOrBefore(nowMs) ?? firstDue;
  let collapsedSlots = 1;
  for (let at = firstDue; at < slotMs && collapsedSlots < recurringJobCollapsedSlotsCountMax; collapsedSlots++) {
    const next = schedule.nextAfter(at);
    if (next === null) break;
    at = next;
  }
  return { kind: 'run', slotMs, collapsedSlots, nextMs: schedule.nextAfter(slotMs) };
}

/**
 * The wall clock is behind the last run's slot and the real time since that run is known: when
 * the step back is longer than the slot's period, run on real time (top of file); otherwise
 * undefined (waiting for the wall clock skips at most one period).
 */
function afterStepBack(schedule: CronSchedule, lastSlotMs: number, nowMs: number, realSinceLastRunMs: number): ScheduleDecision | undefined {
  const following = schedule.nextAfter(lastSlotMs);
  if (following === null) return undefined;
  const periodMs = following - lastSlotMs;
  if (lastSlotMs - nowMs <= periodMs) return undefined;
  const slotMs = schedule.latestAtOrBefore(nowMs);
  if (realSinceLastRunMs < periodMs || slotMs === null) {
    return { kind: 'wait', nextMs: nowMs + Math.max(1, periodMs - realSinceLastRunMs), clockBehindMs: lastSlotMs - nowMs };
  }
  return { kind: 'run', slotMs, collapsedSlots: 1, nextMs: schedule.nextAfter(slotMs) };
}
