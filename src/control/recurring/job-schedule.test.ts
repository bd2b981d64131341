import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../lib/clock.ts';
import { SeededRandom } from '../../lib/random.ts';
import { parseCronSchedule, type CronSchedule } from './cron-schedule.ts';
import { decideSchedule, type ScheduleDecision } from './job-schedule.ts';

const t = (iso: string): number => Date.parse(iso);
const iso = (ms: number): string => new Date(ms).toISOString();

function schedule(text: string): CronSchedule {
  const parsed = parseCronSchedule(text);
  if (typeof parsed === 'string') throw new Error(parsed);
  return parsed;
}

/**
 * The scheduler as the controller drives it: a fake wall clock, the decision at each look, and
 * the recorded slot of each run (what the job's status keeps).
 */
class Driver {
  readonly runs: { slotMs: number; atMs: number; collapsed: number }[] = [];
  lastSlotMs: number | undefined;
  readonly cron: CronSchedule;
  readonly clock: ManualClock;
  readonly createdAtMs: number;
  constructor(cron: CronSchedule, clock: ManualClock, createdAtMs: number) {
    this.cron = cron;
    this.clock = clock;
    this.createdAtMs = createdAtMs;
  }
  look(): ScheduleDecision {
    const decision = decideSchedule({ schedule: this.cron, lastSlotMs: this.lastSlotMs, createdAtMs: this.createdAtMs, nowMs: this.clock.nowMs() });
    if (decision.kind === 'run') {
      this.runs.push({ slotMs: decision.slotMs, atMs: this.clock.nowMs(), collapsed: decision.collapsedSlots });
      this.lastSlotMs = decision.slotMs;
    } else if (decision.kind === 'wait' && decision.resetAnchorMs !== undefined) {
      this.lastSlotMs = decision.resetAnchorMs;
    }
    return decision;
  }
  /** Move real time forward in steps of `stepMs`, looking after each step. */
  pass(ms: number, stepMs = 1000): void {
    for (let done = 0; done < ms; done += stepMs) {
      this.clock.advance(Math.min(stepMs, ms - done));
      this.look();
    }
  }
}

test('cron: five fields, descriptors and six fields (seconds first); bad ones refused with a reason', () => {
  const start = t('2026-11-28T00:00:02.500Z');
  assert.equal(iso(schedule('*/5 * * * * *').nextAfter(start)!), '2026-11-28T00:00:05.000Z');
  assert.equal(iso(schedule('*/5 * * * * *').nextAfter(t('2026-11-28T00:00:05Z'))!), '2026-11-28T00:00:10.000Z', 'strictly after');
  assert.equal(iso(schedule('*/5 * * * * *').latestAtOrBefore(t('2026-11-28T00:00:05Z'))!), '2026-11-28T00:00:05.000Z', 'at or before');
  assert.equal(iso(schedule('0 2 * * *').nextAfter(start)!), '2026-11-28T02:00:00.000Z', 'UTC');
  assert.equal(iso(schedule('@daily').nextAfter(start)!), '2026-11-29T00:00:00.000Z');
  for (const [text, reason] of [
    ['every day', /2 fields; expected 5/],
    ['61 * * * *', /minute 61 is out of range/],
    ['* * * * * * *', /7 fields/],
    ['x * * * * *', /seconds field/],
    ['0 0 30 2 *', /never fires/],
    ['', /0 fields/],
  ] as const) {
    const parsed = parseCronSchedule(text);
    assert.equal(typeof parsed, 'string', text);
    assert.match(parsed as string, reason, text);
  }
});

test('first run is the first slot after the job was created, then one run per slot', () => {
  const clock = new ManualClock(t('2026-11-28T00:00:00.300Z'));
  const driver = new Driver(schedule('* * * * *'), clock, clock.nowMs());
  assert.equal(driver.look().kind, 'wait');
  driver.pass(5 * 60_000);
  assert.deepEqual(driver.runs.map((r) => iso(r.slotMs)), [1, 2, 3, 4, 5].map((m) => `2026-11-28T00:0${m}:00.000Z`));
  assert.ok(driver.runs.every((r) => r.collapsed === 1));
});

test('a manager down across many slots runs once on return, for the latest slot, then on schedule', () => {
  const clock = new ManualClock(t('2026-11-28T00:00:00Z'));
  const driver = new Driver(schedule('*/10 * * * * *'), clock, clock.nowMs());
  driver.pass(20_000);
  assert.equal(driver.runs.length, 2);
  clock.advance(3600_000 + 3000); // down: nobody looks for an hour
  driver.look();
  driver.look();
  assert.equal(driver.runs.length, 3, 'one catch-up run, not 360');
  const catchUp = driver.runs[2]!;
  assert.equal(iso(catchUp.slotMs), '2026-11-28T01:00:20.000Z');
  assert.equal(catchUp.collapsed, 360);
  driver.pass(20_000);
  assert.deepEqual(driver.runs.slice(3).map((r) => iso(r.slotMs)), ['2026-11-28T01:00:30.000Z', '2026-11-28T01:00:40.000Z']);
});

test('a wall clock stepped forward gives one run for the slots it jumped over', () => {
  const clock = new ManualClock(t('2026-11-28T00:00:30Z'));
  const driver = new Driver(schedule('* * * * *'), clock, clock.nowMs());
  driver.pass(60_000);
  assert.equal(driver.runs.length, 1);
  clock.jumpWall(10 * 60_000); // 00:01:30 reads 00:11:30
  driver.pass(20_000);
  assert.equal(driver.runs.length, 2, 'one run for ten skipped slots');
  assert.equal(driver.runs[1]!.collapsed, 10);
  driver.pass(60_000);
  assert.equal(driver.runs.length, 3, 'then on schedule in the new time');
});

test('a wall clock stepped back never reruns a slot that ran, and the next slot still runs', () => {
  const clock = new ManualClock(t('2026-11-28T01:59:50Z'));
  const driver = new Driver(schedule('0 * * * *'), clock, clock.nowMs());
  driver.pass(20_000);
  assert.deepEqual(driver.runs.map((r) => iso(r.slotMs)), ['2026-11-28T02:00:00.000Z']);
  clock.jumpWall(-30_000); // 02:00:10 reads 01:59:40: 02:00 comes round again
  const decision = driver.look();
  assert.equal(decision.kind, 'wait');
  assert.ok(decision.kind === 'wait' && decision.clockBehindMs === 20_000);
  driver.pass(2 * 3600_000 + 30_000, 10_000); // to 04:00:10 on the wall
  assert.deepEqual(
    driver.runs.map((r) => iso(r.slotMs)),
    ['2026-11-28T02:00:00.000Z', '2026-11-28T03:00:00.000Z', '2026-11-28T04:00:00.000Z'],
    'each slot once',
  );
});

test('a clock behind the last slot by more than a day restarts the schedule from now', () => {
  const clock = new ManualClock(t('2030-01-01T00:00:30Z'));
  const driver = new Driver(schedule('* * * * *'), clock, t('2026-01-01T00:00:00Z'));
  driver.look();
  assert.equal(iso(driver.runs[0]!.slotMs), '2030-01-01T00:00:00.000Z');
  clock.jumpWall(t('2026-11-28T00:00:30Z') - clock.nowMs()); // the clock is corrected
  const decision = driver.look();
  assert.ok(decision.kind === 'wait' && decision.resetAnchorMs !== undefined);
  driver.pass(60_000);
  assert.deepEqual(driver.runs.slice(1).map((r) => iso(r.slotMs)), ['2026-11-28T00:01:00.000Z']);
});

test('an expression that fires no more says so', () => {
  const clock = new ManualClock(t('2026-11-28T00:00:00Z'));
  // parseCronSchedule refuses such expressions; a schedule that runs dry is still answered.
  const never: CronSchedule = { text: 'never', nextAfter: () => null, latestAtOrBefore: () => null };
  assert.deepEqual(decideSchedule({ schedule: never, lastSlotMs: undefined, createdAtMs: clock.nowMs(), nowMs: clock.nowMs() }), { kind: 'never' });
});

test('random walks of time: no slot runs twice, every slot up to the last look is covered, runs never outnumber looks', () => {
  const seed = Number(process.env['RECURRING_SEED'] ?? Date.now() % 1_000_000);
  const random = new SeededRandom(seed);
  const message = `seed ${seed} (replay: RECURRING_SEED=${seed})`;
  console.log(`recurring schedule walk: ${message}`);
  for (let round = 0; round < 20; round++) {
    const clock = new ManualClock(t('2026-11-28T00:00:00Z') + random.int(86_400) * 1000);
    const cron = schedule(random.int(2) === 0 ? '*/7 * * * * *' : '*/2 * * * *');
    const driver = new Driver(cron, clock, clock.nowMs());
    let highestWallMs = clock.nowMs();
    for (let step = 0; step < 300; step++) {
      const kind = random.int(10);
      if (kind === 0) clock.jumpWall(random.int(3600) * 1000); // forward step
      else if (kind === 1) clock.jumpWall(-random.int(600) * 1000); // back step (< a day)
      else clock.advance(random.int(90) * 1000);
      highestWallMs = Math.max(highestWallMs, clock.nowMs());
      driver.look();
    }
    const slots = driver.runs.map((r) => r.slotMs);
    assert.equal(new Set(slots).size, slots.length, `a slot ran twice; ${message}`);
    for (let i = 1; i < slots.length; i++) assert.ok(slots[i]! > slots[i - 1]!, `slots go forward; ${message}`);
    // Every slot between creation and the last run is covered by a run at or after it.
    const last = slots.at(-1);
    if (last !== undefined) {
      let covered = 0;
      for (let at = cron.nextAfter(driver.createdAtMs); at !== null && at <= last; at = cron.nextAfter(at)) covered++;
      const folded = driver.runs.reduce((sum, r) => sum + r.collapsed, 0);
      assert.equal(folded, covered, `every slot is covered exactly once; ${message}`);
    }
    assert.ok(highestWallMs >= (last ?? 0), message);
  }
});
