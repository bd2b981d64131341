// A parsed cron expression (croner underneath), evaluated in UTC. Five fields as Longhorn takes
// (minute hour day-of-month month day-of-week) or @daily-style descriptors; six fields (seconds
// first) are our extension, so that tests and short recovery-point objectives need not wait
// minutes. Pure: it only answers "which slot comes after / at or before this instant".
import { Cron } from 'croner';
import { cronProblem } from '../settings/cron-expression.ts';

export interface CronSchedule {
  readonly text: string;
  /** The first slot strictly after `afterMs`, or null when the expression never fires again. */
  nextAfter(afterMs: number): number | null;
  /** The latest slot at or before `atMs`, or null when there is none. */
  latestAtOrBefore(atMs: number): number | null;
}

function fieldCount(text: string): number {
  const trimmed = text.trim();
  return trimmed === '' ? 0 : trimmed.split(/\s+/).length;
}

/** Why a recurring job's cron expression is refused, or null. */
export function cronScheduleProblem(text: string): string | null {
  const parsed = parseCronSchedule(text);
  return typeof parsed === 'string' ? parsed : null;
}

/** The schedule, or a sentence saying why the expression is refused. */
export function parseCronSchedule(text: string): CronSchedule | string {
  // Five-field expressions and descriptors get the project's own check first: its messages
  // name the field, and it keeps what the API accepts identical to Longhorn's parser.
  if (fieldCount(text) !== 6) {
    const problem = cronProblem(text);
    if (problem !== null) return problem;
  } else if (!/^[0-9*,/-]+$/.test(text.trim().split(/\s+/)[0] ?? '')) {
    return `cron ${JSON.stringify(text)}: the seconds field takes *, N, N-M, lists and steps only`;
  }
  let cron: Cron;
  try {
    cron = new Cron(text.trim(), { paused: true, utcOffset: 0, mode: '5-or-6-parts' });
  } catch (error) {
    return `cron ${JSON.stringify(text)} is not valid: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (cron.nextRun(new Date(0)) === null) return `cron ${JSON.stringify(text)} never fires (no such date)`;
  return {
    text,
    nextAfter: (afterMs) => cron.nextRun(new Date(afterMs))?.getTime() ?? null,
    // previousRuns looks strictly before its reference; +1 ms makes "at or before" (slots are
    // whole seconds).
    latestAtOrBefore: (atMs) => cron.previousRuns(1, new Date(atMs + 1))[0]?.getTime() ?? null,
  };
}
