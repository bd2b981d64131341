// Scenarios that must FAIL the checker: a checker that never complains would look like a correct
// system. S14c corrupts what the read source's disk returns; the engine has no checksum on the read
// path (per-chunk checksums cover sealed layers, for rebuild and scrub), so the corrupted sectors
// reach the client and the self-describing sectors must expose them.
import type { ScenarioDefinition } from './scenario-run.ts';

export const corruptReadScenario: ScenarioDefinition = {
  id: 'S14c',
  title: 'corrupted reads from the read source (planted: the checker must report them)',
  faults: ({ seed, readSource }) =>
    readSource ? { seed, rules: [{ op: 'read', type: 'corrupt', path: '.data', offsetBytes: 0, lengthBytes: 4 * 1024 * 1024, after: 50 }] } : undefined,
  run: async (ctx) => {
    await ctx.workload.acknowledged(200);
  },
};
