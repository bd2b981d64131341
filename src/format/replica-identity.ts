// A replica's identity (issue #9, scenario S28). An address alone is not an identity: after a
// restart another replica can listen on the port a member used (another volume's — refused by
// the volume name in every frame — or another replica of the same volume, which the volume name
// cannot tell apart). So every replica directory holds a random instance id (`replica.id`),
// reported in chain_info and open replies, and the engine records members of a generation as
// "address#instanceId". A starting engine then knows whether the replica answering at a member's
// address is that member. Replicas treat member ids as opaque strings; a record written before
// instance ids existed holds bare addresses, which match any instance (the old behaviour).
// Pure: no I/O.

/** 128 random bits as 32 lowercase hex digits. */
const instanceIdPattern = /^[0-9a-f]{32}$/;

export function isInstanceId(value: string): boolean {
  return instanceIdPattern.test(value);
}

export interface ReplicaIdentity {
  readonly address: string;
  /** null: not known (a replica or a record from before instance ids). */
  readonly instanceId: string | null;
}

/** The member id recorded in a generation's member list. */
export function memberId(identity: ReplicaIdentity): string {
  return identity.instanceId === null ? identity.address : `${identity.address}#${identity.instanceId}`;
}

/** Parse a recorded member id; anything not ending in "#<instance id>" is a bare address. */
export function parseMemberId(member: string): ReplicaIdentity {
  const at = member.lastIndexOf('#');
  if (at > 0 && isInstanceId(member.slice(at + 1))) return { address: member.slice(0, at), instanceId: member.slice(at + 1) };
  return { address: member, instanceId: null };
}

/**
 * Whether the replica answering at `seen.address` with instance `seen.instanceId` is the
 * recorded member: same address, and the same instance when both are known.
 */
export function isSameReplica(recorded: ReplicaIdentity, seen: ReplicaIdentity): boolean {
  if (recorded.address !== seen.address) return false;
  return recorded.instanceId === null || recorded.instanceId === seen.instanceId;
}
