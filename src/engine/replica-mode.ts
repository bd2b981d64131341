// A replica's place in the engine's write set.
// rw: has every acknowledged write; serves reads and receives writes.
// wo: joining (rebuilding); receives every new write but serves no reads and is not yet a member
//     of the recorded generation, so a crash mid-rebuild can never make it a start candidate.
// err: dropped for good by this engine; it must be rebuilt to come back.
export type ReplicaMode = 'rw' | 'wo' | 'err';
