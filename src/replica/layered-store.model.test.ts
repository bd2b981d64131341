// The randomized model test: seeded workloads of writes (aligned and not), trims, write-zeroes,
// flushes, snapshots, removes, purges, reverts, expansions, reopens and crashes, with every read
// compared to a plain in-memory model. Replay one seed with SEED=n; SEEDS=k runs k seeds;
// STEPS=n changes the length (CI: 8 seeds × 1500 steps on memory files, 2 × 400 on real files).
import { test } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryReplicaFiles } from './memory-replica-files.ts';
import { NodeReplicaFiles } from './node/node-replica-files.ts';
import { runModelWorkload, seedList, stepsFromEnv } from './testing/replica-model.ts';


test('LayeredReplicaStore equals the model under seeded workloads (memory files)', async () => {
  for (const seed of seedList(1000, 8)) {
    const memory = new MemoryReplicaFiles();
    await runModelWorkload({ seed, steps: stepsFromEnv(1500), files: memory, dir: '/replica', memory });
  }
});

test('LayeredReplicaStore equals the model under seeded workloads (real files)', async () => {
  for (const seed of seedList(7, 2)) {
    const dir = await mkdtemp(join(tmpdir(), 'shorthorn-model-'));
    try {
      await runModelWorkload({ seed, steps: stepsFromEnv(400), files: new NodeReplicaFiles(), dir, checkEveryStep: false });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
});
