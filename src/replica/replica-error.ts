// Typed errors of the replica store. Callers (the replica server, the engine behind it) branch on
// `code`, never on the message.
import { ShorthornError } from '../lib/errors.ts';

export const ReplicaErrorCode = {
  /** An I/O call failed (EIO and anything else the disk reports that is not listed here). */
  io: 'io',
  /** The disk is full (ENOSPC). */
  noSpace: 'no_space',
  /** Offset or length outside the volume, or larger than a request may be. */
  outOfRange: 'out_of_range',
  /** A malformed argument: a bad name, a size that is not whole blocks, a label too long. */
  invalidArgument: 'invalid_argument',
  /** The store was closed. */
  closed: 'closed',
  /** A flush failed earlier: the replica is failed for good (DESIGN §2.8 rule 1) and must be rebuilt. */
  failed: 'failed',
  /** An engine epoch lower than the highest this replica has accepted (DESIGN §3.3). */
  staleEpoch: 'stale_epoch',
  /** No snapshot, or no replica directory, of that name. */
  notFound: 'not_found',
  /** A snapshot of that name exists, or a replica directory already holds a replica. */
  alreadyExists: 'already_exists',
  /** The operation is not allowed in the chain's current shape (e.g. revert to a removed snapshot). */
  conflict: 'conflict',
  /** The chain already holds snapshotCountMax snapshots. */
  tooManySnapshots: 'too_many_snapshots',
  /** A metadata, extent, journal or checksum file fails its checks: never guessed around. */
  corrupt: 'corrupt',
  /** The directory was written by a newer format version than this code understands. */
  unsupportedVersion: 'unsupported_version',
} as const;
export type ReplicaErrorCode = (typeof ReplicaErrorCode)[keyof typeof ReplicaErrorCode];

export class ReplicaError extends ShorthornError<ReplicaErrorCode> {}

/** The errno-style code a file port reports (Node's `error.code`, or the memory files' own). */
export function errnoOf(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = error.code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** Translate a file-port failure into a typed replica error, keeping the original as `cause`. */
export function ioFailure(what: string, error: unknown): ReplicaError {
  if (error instanceof ReplicaError) return error;
  const errno = errnoOf(error);
  const code = errno === 'ENOSPC' || errno === 'EDQUOT' ? ReplicaErrorCode.noSpace : ReplicaErrorCode.io;
  const detail = error instanceof Error ? error.message : String(error);
  return new ReplicaError(code, `${what}: ${detail}`, { cause: error });
}
