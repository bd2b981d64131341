// Named fault points in the manager (tests only; reliability notes §7.3 S26): a test arms a point
// by name and the manager kills itself with SIGKILL the n-th time it passes that point, so a
// crash lands exactly between two of a reconcile loop's store writes instead of at a random
// moment. Armed through the manager's environment:
//
//   SHORTHORN_MANAGER_CRASH_AT="rebuild:write-set-grown:2,salvage:faulted-recorded"
//
// (a point name, then optionally `:N`, the pass that crashes; 1 when left out). Unset, `pass` is
// one Map lookup on an empty map. `SHORTHORN_MANAGER_FAULT_TRACE=1` logs every point passed, so
// a test (or a person) can see which points a run went through.

/** The environment variable that arms points. */
export const crashAtEnv = 'SHORTHORN_MANAGER_CRASH_AT';
/** The environment variable that logs every point passed. */
export const faultTraceEnv = 'SHORTHORN_MANAGER_FAULT_TRACE';
/** Most points one run may arm. */
const armedMax = 16;

export interface FaultPoints {
  /** Call where the point is: crashes when this pass is the armed one. */
  pass(point: string): void;
}

export interface CrashAt {
  readonly point: string;
  /** The pass (1-based) at which to crash. */
  readonly count: number;
}

/** Parses the armed points; a bad value is an error (a typo must not leave a test unarmed). */
export function parseCrashAt(text: string): CrashAt[] | string {
  const out: CrashAt[] = [];
  for (const item of text.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const match = /^([a-z][a-z0-9-]*(?::[a-z][a-z0-9-]*)+?)(?::(\d+))?$/.exec(item);
    if (match === null) return `${crashAtEnv}: '${item}' is not POINT or POINT:N (e.g. rebuild:write-set-grown:2)`;
    const count = match[2] === undefined ? 1 : Number(match[2]);
    if (!Number.isSafeInteger(count) || count < 1) return `${crashAtEnv}: '${item}': the pass must be 1 or more`;
    out.push({ point: match[1]!, count });
  }
  if (out.length > armedMax) return `${crashAtEnv}: at most ${armedMax} points`;
  return out;
}

/** Points that never fire: the production default. */
export const noFaultPoints: FaultPoints = { pass: () => undefined };

/**
 * Fault points from the parsed settings. `crash` must not return (the manager's is a SIGKILL of
 * itself); `log` must write synchronously, so the marker line is out before the crash.
 */
export function armFaultPoints(armed: readonly CrashAt[], options: { readonly trace: boolean; readonly log: (line: string) => void; readonly crash: () => void }): FaultPoints {
  if (armed.length === 0 && !options.trace) return noFaultPoints;
  const want = new Map(armed.map((a) => [a.point, a.count]));
  const passes = new Map<string, number>();
  return {
    pass: (point) => {
      const n = (passes.get(point) ?? 0) + 1;
      passes.set(point, n);
      if (options.trace) options.log(`fault point ${point} passed (${n})`);
      if (want.get(point) === n) {
        options.log(`fault point ${point} reached (pass ${n}): SIGKILL`);
        options.crash();
      }
    },
  };
}
