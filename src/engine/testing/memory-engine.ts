// An Engine over `count` in-memory replicas (r1, r2, …) that all hold generation 1 with every one
// of them as a member, as after a clean start; for the engine's unit tests.
import { ManualClock } from '../../lib/clock.ts';
import { Engine } from '../engine.ts';
import { MemoryReplicaLink } from './memory-replica-link.ts';

export const memoryEngineSizeBytes = 1024 * 1024;

export function memoryEngine(
  count: number,
  options: { minimumWriteReplicas?: number; promoteBelowMinimum?: boolean } = {},
): { links: MemoryReplicaLink[]; engine: Engine; log: string[] } {
  const links = Array.from({ length: count }, (_, i) => {
    const link = new MemoryReplicaLink(`r${i + 1}`, memoryEngineSizeBytes);
    link.generation = 1;
    link.members = Array.from({ length: count }, (_, j) => `r${j + 1}`);
    return link;
  });
  const log: string[] = [];
  const engine = new Engine({
    volumeName: 'vol', sizeBytes: memoryEngineSizeBytes, epoch: 1, generation: 1, members: links, clock: new ManualClock(), log: (m) => log.push(m), ...options,
  });
  return { links, engine, log };
}
