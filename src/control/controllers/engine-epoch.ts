// The fencing epoch of an engine about to start (DESIGN §3.3): one above the Engine resource's
// last epoch and above every epoch its replicas have recorded (Replica status.epoch, which their
// node agents read from the replicas' metadata). The resource's epoch alone is enough when every
// engine of the volume was started from it; the replicas' records also cover engines that were
// not (started by hand, or by an older release that picked its own epoch), which would otherwise
// make the new engine refuse to start below what a replica has seen. Pure.
import type { Engine } from '../resources/engine.ts';
import type { Replica } from '../resources/replica.ts';

export function nextEngineEpoch(engine: Engine, replicas: readonly Replica[]): number {
  return Math.max(engine.spec.epoch, ...replicas.map((r) => r.status?.epoch ?? 0)) + 1;
}
