// Which manager reconciles an object (Longhorn's status.ownerID rule, pure): the preferred owner
// (e.g. the node a volume is attached to) when it is alive; else the current owner while it is
// alive; else any live manager may take it. The first writer of status.ownerID wins, because the
// claim is a status update with optimistic concurrency. Liveness is a lease per manager.
import type { Resource } from '../resources/object-meta.ts';
import type { ResourceStore } from '../store/resource-store.ts';

export interface OwnerChoice {
  readonly currentOwner: string | undefined;
  readonly preferredOwner: string | undefined;
  readonly self: string;
  readonly isLive: (managerId: string) => boolean;
}

/** Who should own the object now. `self` is assumed alive (it is asking). */
export function chooseOwner(choice: OwnerChoice): string {
  const live = (id: string | undefined): id is string =>
    id !== undefined && id !== '' && (id === choice.self || choice.isLive(id));
  if (live(choice.preferredOwner)) return choice.preferredOwner;
  if (live(choice.currentOwner)) return choice.currentOwner;
  return choice.self;
}

export type OwnershipDecision =
  /** Ours: reconcile it. */
  | { readonly kind: 'reconcile' }
  /** Should be ours but status.ownerID says otherwise: write the claim first. */
  | { readonly kind: 'claim'; readonly object: Resource }
  /** Somebody else's: leave it alone. */
  | { readonly kind: 'skip'; readonly owner: string };

export function ownerIdOf(object: Resource): string | undefined {
  const status = object.status;
  if (typeof status !== 'object' || status === null) return undefined;
  const owner = (status as Record<string, unknown>)['ownerID'];
  return typeof owner === 'string' && owner !== '' ? owner : undefined;
}

export function decideOwnership(object: Resource, choice: Omit<OwnerChoice, 'currentOwner'>): OwnershipDecision {
  const currentOwner = ownerIdOf(object);
  const owner = chooseOwner({ ...choice, currentOwner });
  if (owner !== choice.self) return { kind: 'skip', owner };
  if (currentOwner === choice.self) return { kind: 'reconcile' };
  const status = typeof object.status === 'object' && object.status !== null ? object.status : {};
  return { kind: 'claim', object: { ...object, status: { ...status, ownerID: choice.self } } };
}

/** The lease that says a manager is alive. */
export function managerLeaseName(managerId: string): string {
  return `manager-${managerId}`;
}

/** Liveness by lease: a manager is alive while its lease (managerLeaseName) is held by it. */
export function leaseLiveness(store: ResourceStore): (managerId: string) => Promise<boolean> {
  return async (managerId) => (await store.getLease(managerLeaseName(managerId)))?.holder === managerId;
}
