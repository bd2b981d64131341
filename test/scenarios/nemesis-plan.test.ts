// The nemesis's choices (nemesis-plan.ts): never more than N-1 replicas impaired, never a fault on
// a replica already impaired, nothing during an engine restart, every kind of fault reachable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../src/lib/random.ts';
import { chooseAction, nextGapMs, replicaFaultKinds } from './nemesis-plan.ts';

test('random walks of the nemesis keep at most N-1 replicas impaired and reach every fault', () => {
  const seed = Number(process.env['SEED'] ?? Date.now() % 1_000_000);
  console.log(`nemesis plan walk: SEED=${seed}`);
  const random = new SeededRandom(seed);
  const seen = new Set<string>();
  for (let walk = 0; walk < 200; walk++) {
    const replicaCount = 1 + random.int(5);
    const impaired = new Set<number>();
    for (let step = 0; step < 50; step++) {
      const action = chooseAction(random, { replicaCount, impaired, engineRestarting: false });
      assert.ok(action !== null, `seed ${seed}`);
      seen.add(action.kind);
      if ('replica' in action) {
        assert.ok(!impaired.has(action.replica), `seed ${seed}: replica ${action.replica} chosen while impaired`);
        impaired.add(action.replica);
      }
      assert.ok(impaired.size <= Math.max(0, replicaCount - 1), `seed ${seed}: ${impaired.size} of ${replicaCount} impaired`);
      // Some faults end.
      for (const r of [...impaired]) if (random.next() < 0.3) impaired.delete(r);
    }
  }
  assert.deepEqual([...seen].sort(), [...replicaFaultKinds, 'engine-kill', 'snapshot'].sort(), `seed ${seed}`);
  assert.equal(chooseAction(random, { replicaCount: 3, impaired: new Set(), engineRestarting: true }), null);
});

test('gaps between faults: 5-30 s in long runs, 2-8 s in short ones', () => {
  const random = new SeededRandom(1);
  for (let i = 0; i < 1000; i++) {
    const long = nextGapMs(random, 7200);
    assert.ok(long >= 5000 && long <= 30_000, String(long));
    const short = nextGapMs(random, 60);
    assert.ok(short >= 2000 && short <= 8000, String(short));
  }
});
