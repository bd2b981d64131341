// The store interface every control-plane component talks to, with Kubernetes semantics, and the
// typed errors it reports. Implementations: embedded SQLite (sqlite-store.ts), etcd (etcd-store.ts);
// all pass store.conformance.ts. The semantics are written down in docs/store.md.
import { ShorthornError } from '../../lib/errors.ts';
import type { Resource } from '../resources/object-meta.ts';

export const StoreErrorCode = {
  /** No object of that kind and name (or no lease of that name held by the caller). */
  notFound: 'not_found',
  /** create() of a name that exists. */
  alreadyExists: 'already_exists',
  /** resourceVersion precondition failed: somebody else wrote the object first. Re-read and retry. */
  conflict: 'conflict',
  /** Bad input: name, kind, shape, selector, size. The message says which. */
  invalid: 'invalid',
  /** A watch asked for history that was compacted away, or fell too far behind: relist. */
  gone: 'gone',
  /** acquireLease() of a lease another holder has and has not let expire. */
  leaseHeld: 'lease_held',
  /** The backend could not be reached or a watch lost its connection: retry from the last version seen. */
  unavailable: 'unavailable',
  /** The store (or the watch) was closed by its owner. */
  closed: 'closed',
} as const;
export type StoreErrorCode = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];

export class StoreError extends ShorthornError<StoreErrorCode> {}

export function isStoreError(error: unknown, code?: StoreErrorCode): error is StoreError {
  return error instanceof StoreError && (code === undefined || error.code === code);
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/**
 * One change. For DELETED the object is its last state, with metadata.resourceVersion set to the
 * revision of the deletion, so that a watcher can resume after it.
 */
export interface WatchEvent {
  readonly type: WatchEventType;
  readonly object: Resource;
}

export interface ListOptions {
  /** A Kubernetes label selector: `a=b,c!=d,e in (f,g),h notin (i),j,!k`. */
  readonly labelSelector?: string;
}

export interface ListResult {
  readonly items: Resource[];
  /** The store's revision the list was read at: watch from it to miss nothing. */
  readonly resourceVersion: string;
}

export interface WatchOptions {
  /**
   * Deliver every change with a revision greater than this one. Omitted: changes from when the
   * backend sets the watch up (etcd: asynchronously, so possibly a little after this call); to
   * miss nothing, pass the resourceVersion of a list() or of the last event seen.
   * Older than the retained history: the iterator throws StoreError 'gone' (relist, then watch
   * from the list's resourceVersion).
   */
  readonly resourceVersion?: string;
  /** Aborting ends the iteration cleanly (the loop just finishes). */
  readonly signal?: AbortSignal;
}

/** A watch: iterate it; break, return() or abort the signal to stop it. */
export interface Watch extends AsyncIterable<WatchEvent> {
  /** Stop delivering and release the backend's resources. Idempotent. */
  close(): void;
}

export interface DeleteOptions {
  /** Only delete if the object is still at this version (else 'conflict'). */
  readonly resourceVersion?: string;
}

/** Who holds a lease, as seen now. */
export interface LeaseInfo {
  readonly name: string;
  readonly holder: string;
  /** The time to live asked for; the backend may round it up (etcd: whole seconds). */
  readonly ttlMs: number;
}

export interface ResourceStore {
  /** 'not_found' when absent. */
  get(kind: string, name: string): Promise<Resource>;
  list(kind: string, options?: ListOptions): Promise<ListResult>;
  /**
   * Assigns uid, resourceVersion, creationTimestamp and generation 1; keeps the caller's labels,
   * annotations, finalizers, spec and status. Refuses a deletionTimestamp. 'already_exists'.
   */
  create(object: Resource): Promise<Resource>;
  /**
   * Replaces metadata (labels, annotations, finalizers, ownerReferences) and spec, keeping the
   * stored status. metadata.resourceVersion is required and must match ('conflict'). A spec change
   * bumps generation. Removing the last finalizer of an object being deleted deletes it (the
   * returned object then carries the deletion's resourceVersion).
   */
  update(object: Resource): Promise<Resource>;
  /** Replaces only status; metadata.resourceVersion is required and must match. */
  updateStatus(object: Resource): Promise<Resource>;
  /**
   * With finalizers: sets deletionTimestamp (once) and returns the object; it disappears when the
   * last finalizer is removed. Without: removes it and returns its last state. 'not_found'.
   */
  delete(kind: string, name: string, options?: DeleteOptions): Promise<Resource>;
  watch(kind: string, options?: WatchOptions): Watch;

  /**
   * Take the lease if it is free or expired, renew it if `holder` has it; 'lease_held' otherwise.
   * A holder renews well before ttlMs passes (a third of it is customary).
   */
  acquireLease(name: string, holder: string, ttlMs: number): Promise<LeaseInfo>;
  /** Give the lease up if `holder` has it; a no-op otherwise. */
  releaseLease(name: string, holder: string): Promise<void>;
  /** The live holder, or null when free or expired. */
  getLease(name: string): Promise<LeaseInfo | null>;

  /** Ends every watch of this instance and releases the backend connection. */
  close(): Promise<void>;
}
