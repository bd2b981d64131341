// A check of five-field cron expressions (minute hour day-of-month month day-of-week) and the
// descriptors Longhorn's parser accepts (@daily, ...). Used by recurring jobs and settings; the
// job runner that evaluates them lives elsewhere.

const descriptors = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);

const fields = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day of week', min: 0, max: 7 },
] as const;

const itemPattern = /^(\*|([0-9]{1,2})(-([0-9]{1,2}))?)(\/([0-9]{1,2}))?$/;

/** Why a cron expression is refused, or null when it is valid. */
export function cronProblem(text: string): string | null {
  const trimmed = text.trim();
  if (descriptors.has(trimmed)) return null;
  const parts = trimmed.split(/\s+/);
  if (parts.length !== 5) {
    return `cron ${JSON.stringify(text)} has ${trimmed === '' ? 0 : parts.length} fields; expected 5 (minute hour day-of-month month day-of-week)`;
  }
  for (const [index, part] of parts.entries()) {
    const field = fields[index];
    if (field === undefined) continue;
    for (const item of part.split(',')) {
      const match = itemPattern.exec(item);
      if (match === null) return `cron ${field.name} ${JSON.stringify(item)} is not *, N, N-M or a step (*/N, N-M/N)`;
      const low = match[2] === undefined ? undefined : Number(match[2]);
      const high = match[4] === undefined ? undefined : Number(match[4]);
      const step = match[6] === undefined ? undefined : Number(match[6]);
      for (const value of [low, high]) {
        if (value !== undefined && (value < field.min || value > field.max)) {
          return `cron ${field.name} ${value} is out of range ${field.min}-${field.max}`;
        }
      }
      if (low !== undefined && high !== undefined && low > high) return `cron ${field.name} range ${low}-${high} is backwards`;
      if (step === 0) return `cron ${field.name} step must be at least 1`;
    }
  }
  return null;
}
