// The engine is a BlockDevice: it passes the same conformance suite as the memory and sparse-file
// devices, over three real replica stores (in-memory files) and over plain memory replicas.
import { ManualClock } from '../../src/lib/clock.ts';
import { runBlockDeviceConformance } from '../../src/lib/testing/block-device-conformance.ts';
import { Engine } from '../../src/engine/engine.ts';
import { startEngine } from '../../src/engine/engine-start.ts';
import { MemoryReplicaLink } from '../../src/engine/testing/memory-replica-link.ts';
import { createReplicaStore } from '../../src/replica/layered-store.ts';
import { MemoryReplicaFiles } from '../../src/replica/memory-replica-files.ts';
import { StoreReplicaLink } from '../harness/store-replica-link.ts';

const seed = Number(process.env['SEED'] ?? Date.now() % 1_000_000);

runBlockDeviceConformance({
  name: 'Engine over 3 replica stores',
  seed,
  sizeGranularityBytes: 4096,
  create: async (sizeBytes) => {
    const clock = new ManualClock();
    const files = new MemoryReplicaFiles();
    const links = await Promise.all(
      ['a', 'b', 'c'].map(async (name) => {
        const store = await createReplicaStore({ dir: `/replicas/${name}`, files, clock, volumeName: 'vol', sizeBytes });
        return new StoreReplicaLink(name, store);
      }),
    );
    const { engine } = await startEngine({ volumeName: 'vol', sizeBytes, links, clock, log: () => undefined });
    return engine;
  },
  dispose: (device) => (device as Engine).close(),
});

runBlockDeviceConformance({
  name: 'Engine over memory replicas',
  seed,
  sizeGranularityBytes: 4096,
  create: (sizeBytes) =>
    Promise.resolve(
      new Engine({
        volumeName: 'vol',
        sizeBytes,
        epoch: 1,
        generation: 1,
        members: ['a', 'b'].map((a) => new MemoryReplicaLink(a, sizeBytes)),
        clock: new ManualClock(),
        log: () => undefined,
      }),
    ),
  dispose: (device) => (device as Engine).close(),
});
