// S27 (reliability notes §7.3) for the recurring-job scheduler: wall-clock steps of ±1 h and ±1 day
// under hourly, per-minute and daily schedules, driven as the controller drives decideSchedule
// (a look at least every 10 s; recurringJobRecheckMs) with a hand-moved clock whose monotonic
// time keeps the real time. What must hold: a step forward gives at most one catch-up run; after
// a step back no two runs come closer than a period of real time and at most one period is
// skipped (the controller knows the real time since its last run); with the manager restarted
// after the step, no slot runs twice (docs/recurring-jobs.md "Missed runs and clock jumps").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../lib/clock.ts';
import { recurringJobClockBehindResetMs, recurringJobRecheckMs } from '../../lib/limits.ts';
import { parseCronSchedule, type CronSchedule } from './cron-schedule.ts';
import { decideSchedule } from './job-schedule.ts';

const hourMs = 3600_000;
const dayMs = 24 * hourMs;

function schedule(text: string): CronSchedule {
  const parsed = parseCronSchedule(text);
  if (typeof parsed === 'string') throw new Error(parsed);
  return parsed;
}

/** Runs with their slot (wall) and the real (monotonic) time they started. */
class Scheduler {
  readonly runs: { slotMs: number; realMs: number }[] = [];
  private lastSlotMs: number | undefined;
  private readonly cron: CronSchedule;
  private readonly clock: ManualClock;
  private readonly createdAtMs: number;
  /** As the controller: the monotonic start of the last scheduled run, unless the manager "restarted". */
  private lastRunRealMs: number | undefined;
  constructor(cron: CronSchedule, clock: ManualClock) {
    this.cron = cron;
    this.clock = clock;
    this.createdAtMs = clock.nowMs();
  }
  /** A manager restart: the in-memory run start is lost, the recorded slot stays. */
  restart(): void {
    this.lastRunRealMs = undefined;
  }
  /** Real time passes in looks every recurringJobRecheckMs. */
  pass(ms: number): void {
    for (let done = 0; done < ms; done += recurringJobRecheckMs) {
      this.clock.advance(Math.min(recurringJobRecheckMs, ms - done));
      const real = this.lastRunRealMs === undefined ? {} : { realSinceLastRunMs: this.clock.monotonicMs() - this.lastRunRealMs };
      const decision = decideSchedule({ schedule: this.cron, lastSlotMs: this.lastSlotMs, createdAtMs: this.createdAtMs, nowMs: this.clock.nowMs(), ...real });
      if (decision.kind === 'run') {
        this.runs.push({ slotMs: decision.slotMs, realMs: this.clock.monotonicMs() });
        this.lastSlotMs = decision.slotMs;
        this.lastRunRealMs = this.clock.monotonicMs();
      } else if (decision.kind === 'wait' && decision.resetAnchorMs !== undefined) {
        this.lastSlotMs = decision.resetAnchorMs;
      }
    }
  }
  runsAfter(realMs: number): number {
    return this.runs.filter((r) => r.realMs > realMs).length;
  }
  maxRealGapMs(): number {
    let max = 0;
    for (let i = 1; i < this.runs.length; i++) max = Math.max(max, this.runs[i]!.realMs - this.runs[i - 1]!.realMs);
    return max;
  }
  minRealGapMs(): number {
    let min = Infinity;
    for (let i = 1; i < this.runs.length; i++) min = Math.min(min, this.runs[i]!.realMs - this.runs[i - 1]!.realMs);
    return min;
  }
  assertNoSlotTwice(what: string): void {
    const slots = this.runs.map((r) => r.slotMs);
    assert.equal(new Set(slots).size, slots.length, `${what}: a slot ran twice`);
    for (let i = 1; i < slots.length; i++) assert.ok(slots[i]! > slots[i - 1]!, `${what}: slots go forward`);
  }
}

const schedules = [
  { text: '* * * * *', periodMs: 60_000 },
  { text: '0 * * * *', periodMs: hourMs },
  { text: '0 3 * * *', periodMs: dayMs },
];

for (const stepMs of [hourMs, dayMs]) {
  for (const { text, periodMs } of schedules) {
    test(`S27: a step forward by ${stepMs / hourMs} h under '${text}' gives at most one catch-up run, then the schedule`, () => {
      const clock = new ManualClock(Date.parse('2026-11-28T02:59:30Z'));
      const job = new Scheduler(schedule(text), clock);
      job.pass(2 * periodMs);
      const runsBefore = job.runs.length;
      assert.ok(runsBefore >= 1);
      clock.jumpWall(stepMs);
      const steppedAt = clock.monotonicMs();
      const steppedWallMs = clock.nowMs();
      job.pass(3 * periodMs);
      // Catch-up runs: those after the step for slots the step jumped over (at or before the new wall time).
      const catchUps = job.runs.filter((r) => r.realMs > steppedAt && r.slotMs <= steppedWallMs);
      assert.equal(catchUps.length, 1, `${catchUps.length} catch-up runs for the slots the step jumped over`);
      assert.ok(catchUps[0]!.realMs - steppedAt <= recurringJobRecheckMs, 'the catch-up run comes at the next look');
      job.assertNoSlotTwice(text);
      // Back on schedule: about one run per period in real time from then on.
      assert.ok(job.runsAfter(steppedAt) >= 3 && job.runsAfter(steppedAt) <= 5, `${job.runsAfter(steppedAt)} runs in 3.5 periods after the step`);
    });

    test(`S27: a step back by ${stepMs / hourMs} h under '${text}': no two runs closer than a period of real time, at most one period skipped`, () => {
      const clock = new ManualClock(Date.parse('2026-11-28T02:59:30Z'));
      const job = new Scheduler(schedule(text), clock);
      job.pass(2 * periodMs);
      const lastRunRealMs = job.runs.at(-1)!.realMs;
      clock.jumpWall(-stepMs);
      job.pass(stepMs + 3 * periodMs);
      const next = job.runs.find((r) => r.realMs > lastRunRealMs);
      assert.ok(next !== undefined, 'the job runs again');
      const waitedMs = next.realMs - lastRunRealMs;
      assert.ok(waitedMs <= 2 * periodMs + recurringJobRecheckMs, `waited ${waitedMs / 60_000} min for the next run: more than one period skipped`);
      assert.ok(job.minRealGapMs() >= periodMs - recurringJobRecheckMs, `two runs ${job.minRealGapMs() / 60_000} min apart: fired twice`);
      assert.ok(job.runsAfter(lastRunRealMs) >= Math.floor((stepMs + 3 * periodMs) / periodMs) - 2, `${job.runsAfter(lastRunRealMs)} runs after the step: the schedule goes on`);
    });

    test(`S27: a step back by ${stepMs / hourMs} h under '${text}' with the manager restarted after it never fires a slot again (wall-clock rule)`, () => {
      const clock = new ManualClock(Date.parse('2026-11-28T02:59:30Z'));
      const job = new Scheduler(schedule(text), clock);
      job.pass(2 * periodMs);
      const lastRunRealMs = job.runs.at(-1)!.realMs;
      clock.jumpWall(-stepMs);
      job.restart();
      job.pass(stepMs + 3 * periodMs);
      job.assertNoSlotTwice(text);
      const next = job.runs.find((r) => r.realMs > lastRunRealMs);
      assert.ok(next !== undefined, 'the job runs again');
      const waitedMs = next.realMs - lastRunRealMs;
      // Without the real time since the last run the job waits for the wall clock (the step plus
      // up to a period); a step of a day or more than a day behind the last slot restarts from now.
      assert.ok(waitedMs <= stepMs + periodMs + recurringJobRecheckMs, `waited ${waitedMs / 60_000} min for the next run`);
      if (stepMs < recurringJobClockBehindResetMs) assert.ok(waitedMs >= stepMs - periodMs, `ran after ${waitedMs / 60_000} min: a slot that ran came round again`);
    });
  }
}

test('S27: a step back by a day and an hour (more than a day behind the last slot) restarts an hourly job from now: one period of real time, not a day', () => {
  const clock = new ManualClock(Date.parse('2026-11-28T02:59:30Z'));
  const job = new Scheduler(schedule('0 * * * *'), clock);
  job.pass(2 * hourMs);
  const lastRunRealMs = job.runs.at(-1)!.realMs;
  clock.jumpWall(-(dayMs + hourMs));
  job.pass(3 * hourMs);
  const next = job.runs.find((r) => r.realMs > lastRunRealMs)!;
  assert.ok(next.realMs - lastRunRealMs <= 2 * hourMs, `waited ${(next.realMs - lastRunRealMs) / 60_000} min`);
  assert.ok(job.maxRealGapMs() <= 2 * hourMs);
});
