// The operation codes and error codes of the replica protocol, as names (used in code) and as the
// numbers that travel on the wire. Both tables are append-only: a number, once given, keeps its
// meaning forever, so that replicas and engines of different versions understand each other.

/** Every operation, by name → wire number. */
export const replicaOpCodes = {
  read: 1,
  write: 2,
  write_zeroes: 3,
  trim: 4,
  flush: 5,
  ping: 6,
  open: 16,
  set_membership: 17,
  snapshot: 18,
  chain_info: 19,
  mark_removed: 20,
  purge: 21,
  revert: 22,
  expand: 23,
  checksums: 24,
  layer_extents: 25,
  read_layer: 26,
  stage_reset: 27,
  stage_layer: 28,
  stage_write: 29,
  stage_extent: 30,
  stage_install: 31,
} as const;
export type ReplicaOp = keyof typeof replicaOpCodes;

const opsByCode = new Map<number, ReplicaOp>(
  Object.entries(replicaOpCodes).map(([name, code]) => [code, name as ReplicaOp]),
);

export function replicaOpFromCode(code: number): ReplicaOp | undefined {
  return opsByCode.get(code);
}

/**
 * Error codes an error reply carries. Callers branch on these, never on the message text. The
 * store's own codes (src/replica/replica-error.ts) map onto these one to one where they exist.
 * - `bad_request`: the frame or its payload is malformed (unknown op, bad JSON, bad name, ...).
 * - `stale_epoch`: the request's epoch is lower than the one the replica has accepted (fencing).
 * - `epoch_not_open`: the request's epoch is higher than the accepted one; send `open` first.
 * - `wrong_volume`: the request names another volume than the one this replica serves.
 * - `out_of_range`: offset + length is past the end of the volume.
 * - `io`, `no_space`: the disk failed the operation.
 * - `not_found`, `already_exists`: a named snapshot is missing, or already there.
 * - `limit_exceeded`: a maximum (snapshot count, chunks per request) would be crossed.
 * - `overloaded`: too many connections; the server closes this one.
 * - `closed`: the replica is shutting down.
 * - `conflict`: the operation does not apply to the chain as it is (e.g. revert to a removed snapshot).
 * - `failed`: an earlier flush failed; this replica is failed for good and must be rebuilt.
 * - `corrupt`: the replica's metadata or data fails its checks.
 */
export const replicaErrorCodes = {
  bad_request: 1,
  stale_epoch: 2,
  epoch_not_open: 3,
  wrong_volume: 4,
  out_of_range: 5,
  io: 6,
  no_space: 7,
  not_found: 8,
  already_exists: 9,
  limit_exceeded: 10,
  overloaded: 11,
  closed: 12,
  conflict: 13,
  failed: 14,
  corrupt: 15,
} as const;
export type ReplicaErrorCode = keyof typeof replicaErrorCodes;

const errorsByCode = new Map<number, ReplicaErrorCode>(
  Object.entries(replicaErrorCodes).map(([name, code]) => [code, name as ReplicaErrorCode]),
);

export function replicaErrorFromCode(code: number): ReplicaErrorCode | undefined {
  return errorsByCode.get(code);
}

export function isReplicaErrorCode(value: string): value is ReplicaErrorCode {
  return Object.hasOwn(replicaErrorCodes, value);
}
