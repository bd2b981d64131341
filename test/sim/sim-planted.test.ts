// The checker can fail: with a defect planted in the link to one replica, the simulator must
// report a violation within a few seeds. Without these, a checker that never complains would
// look exactly like a correct system.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSimulation } from './sim-run.ts';
import type { PlantedLinkBug } from './sim-replica-link.ts';
import type { Violation } from './volume-model.ts';

async function firstViolation(bug: PlantedLinkBug, seedsMax: number): Promise<{ seed: number; violations: readonly Violation[] } | null> {
  for (let seed = 1; seed <= seedsMax; seed++) {
    const result = await runSimulation({ seed, bug: { link: bug, replica: 0 } });
    if (result.violations.length > 0) return { seed, violations: result.violations };
  }
  return null;
}

const cases: { bug: PlantedLinkBug; expect: RegExp; why: string }[] = [
  { bug: 'skip-flush', expect: /^1 durability|^3 convergence/, why: 'a flush acknowledged but never sent loses flushed writes at a power loss' },
  { bug: 'corrupt-read', expect: /^2 no fabrication/, why: 'a flipped byte is a sector nobody wrote' },
  { bug: 'lose-write', expect: /^1 durability|^3 convergence/, why: 'a write acknowledged but never sent is missing from that replica' },
];

for (const { bug, expect, why } of cases) {
  test(`the checker catches a planted '${bug}' link (${why})`, async () => {
    const found = await firstViolation(bug, 60);
    assert.ok(found !== null, `no violation in 60 seeds with the '${bug}' defect planted`);
    assert.ok(
      found.violations.some((v) => expect.test(v.invariant)),
      `seed ${found.seed}: expected a ${String(expect)} violation, got ${found.violations.map((v) => v.invariant).join(', ')}`,
    );
  });
}
