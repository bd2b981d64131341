// Scenarios that must FAIL the checker: a checker that never complains would look like a correct
// system. S14c corrupts what every replica's disk returns; the engine has no checksum on the read
// path (per-chunk checksums cover sealed layers, for rebuild and scrub), so the corrupted sectors
// reach the client and the self-describing sectors must expose them.
import type { ScenarioDefinition } from './scenario-run.ts';

export const corruptReadScenario: ScenarioDefinition = {
  id: 'S14c',
  title: 'corrupted reads from the read source (planted: the checker must report them)',
  // Every replica's disk corrupts reads of the first 4 MiB after its 10th read: since the engine
  // spreads reads over all rw replicas once they have been compared after start (DESIGN §2.8
  // rule 7), a fault on the read source alone reached only some reads, and the final read checked
  // against the model could miss it (seen once in CI: only the two final reads differed).
  faults: ({ seed }) => ({ seed, rules: [{ op: 'read', type: 'corrupt', path: '.data', offsetBytes: 0, lengthBytes: 4 * 1024 * 1024, after: 10 }] }),
  run: async (ctx) => {
    await ctx.workload.acknowledged(200);
  },
};
