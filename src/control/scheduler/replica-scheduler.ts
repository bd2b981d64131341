// The replica scheduler (Longhorn's rules, reference §3): choose a node and a disk for a new
// replica of a volume, or say why none is possible. Pure: everything it needs comes in; it moves
// no data and writes nothing.
//
// Order: node filter (ready, schedulable, allowed, not evicting, tags) → disk filter (ready,
// allowed, not evicting, tags, capacity) → anti-affinity tiers (unused nodes in unused zones
// first; then what the soft/hard settings allow) → disk anti-affinity → the disk with the most
// free space (available − reserved); ties go to the node name, then the disk name.
import type { BackingImage } from '../resources/backing-image.ts';
import { cordonedReason, diskPressureReason, NodeConditionType, type DiskSpec, type DiskStatus, type Node } from '../resources/node.ts';
import { replicaRebuildRetryMax, type Replica } from '../resources/replica.ts';
import type { SettingOverride, Volume } from '../resources/volume.ts';
import type { SettingValues } from '../settings/settings.ts';
import { diskCapacityVerdict } from './disk-capacity.ts';

export type SchedulerSettings = Pick<
  SettingValues,
  | 'replica-soft-anti-affinity'
  | 'replica-zone-soft-anti-affinity'
  | 'replica-disk-soft-anti-affinity'
  | 'storage-over-provisioning-percentage'
  | 'storage-minimal-available-percentage'
  | 'disable-scheduling-on-cordoned-node'
  | 'allow-empty-node-selector-volume'
  | 'allow-empty-disk-selector-volume'
  | 'replica-replenishment-wait-interval'
>;

export interface SchedulingInput {
  readonly volume: Volume;
  readonly nodes: readonly Node[];
  /** Every replica of the volume, in any state. */
  readonly replicas: readonly Replica[];
  readonly settings: SchedulerSettings;
  /** Wall-clock time, for the replenishment wait. */
  readonly nowMs: number;
  /** The volume's backing image, whose node and disk selectors replicas must also satisfy. */
  readonly backingImage?: BackingImage;
}

export interface ScheduleOptions {
  /** The replica being placed (if it exists already): not counted as using a node or disk. */
  readonly replicaName?: string;
  /** Place only on this node (the replica's spec.hardNodeAffinity). */
  readonly hardNodeAffinity?: string;
}

export interface Placement {
  readonly nodeID: string;
  readonly diskName: string;
  /** The disk's UUID (replica spec.diskID). */
  readonly diskID: string;
  readonly diskPath: string;
}

/** Why no placement exists, from the earliest stage to the latest a candidate reached. */
export const unschedulableReasons = [
  'waiting-for-attachment',
  'hard-affinity-unsatisfied',
  'nodes-unavailable',
  'tags-not-fulfilled',
  'disks-unavailable',
  'insufficient-storage',
  'anti-affinity',
] as const;
export type UnschedulableReason = (typeof unschedulableReasons)[number];

export type ScheduleResult =
  | { readonly ok: true; readonly placement: Placement }
  | { readonly ok: false; readonly reason: UnschedulableReason; readonly message: string };

interface CandidateDisk {
  readonly nodeName: string;
  readonly zone: string;
  readonly diskName: string;
  readonly spec: DiskSpec;
  readonly status: DiskStatus;
}

/** What blocked one node or disk; the furthest stage any candidate reached names the failure. */
interface Refusal {
  readonly reason: UnschedulableReason;
  readonly what: string;
}

function conditionOf(conditions: readonly { type: string; status: string; reason?: string }[] | undefined, type: string) {
  return conditions?.find((condition) => condition.type === type);
}

/** Effective soft flag: the volume's override unless `ignored`, else the global setting. */
export function effectiveSoft(override: SettingOverride, setting: boolean): boolean {
  return override === 'ignored' ? setting : override === 'enabled';
}

export function nodeZone(node: Node): string {
  return node.status?.zone ?? '';
}

function missingTags(selector: readonly string[], tags: readonly string[]): string[] {
  return selector.filter((tag) => !tags.includes(tag));
}

/** Node checks shared by new placements and failed-replica reuse. */
export function nodeRefusal(node: Node, input: SchedulingInput): Refusal | null {
  const name = node.metadata.name;
  if (node.metadata.deletionTimestamp !== undefined) return { reason: 'nodes-unavailable', what: `node ${name} is being deleted` };
  if (conditionOf(node.status?.conditions, NodeConditionType.ready)?.status !== 'True') {
    return { reason: 'nodes-unavailable', what: `node ${name} is not ready` };
  }
  const schedulable = conditionOf(node.status?.conditions, NodeConditionType.schedulable);
  if (schedulable !== undefined && schedulable.status !== 'True') {
    const cordonAllowed = schedulable.reason === cordonedReason && !input.settings['disable-scheduling-on-cordoned-node'];
    if (!cordonAllowed) return { reason: 'nodes-unavailable', what: `node ${name} is not schedulable (${schedulable.reason ?? 'no reason'})` };
  }
  if (!node.spec.allowScheduling) return { reason: 'nodes-unavailable', what: `node ${name} has scheduling disabled` };
  if (node.spec.evictionRequested) return { reason: 'nodes-unavailable', what: `node ${name} is being evicted` };
  const selector = [...input.volume.spec.nodeSelector, ...(input.backingImage?.spec.nodeSelector ?? [])];
  const missing = missingTags(selector, node.spec.tags);
  if (missing.length > 0) return { reason: 'tags-not-fulfilled', what: `node ${name} lacks tags ${missing.join(', ')}` };
  if (selector.length === 0 && node.spec.tags.length > 0 && !input.settings['allow-empty-node-selector-volume']) {
    return { reason: 'tags-not-fulfilled', what: `node ${name} has tags and the volume has no node selector` };
  }
  return null;
}

/** Disk checks shared by new placements and reuse; capacity is checked separately. */
export function diskRefusal(node: Node, diskName: string, input: SchedulingInput, options: { allowPressure: boolean }): Refusal | null {
  const what = `disk ${diskName} on node ${node.metadata.name}`;
  const spec = node.spec.disks[diskName];
  const status = node.status?.diskStatus?.[diskName];
  if (spec === undefined || status === undefined) return { reason: 'disks-unavailable', what: `${what} has no status yet` };
  if (conditionOf(status.conditions, 'Ready')?.status !== 'True') return { reason: 'disks-unavailable', what: `${what} is not ready` };
  if (!spec.allowScheduling) return { reason: 'disks-unavailable', what: `${what} has scheduling disabled` };
  if (spec.evictionRequested) return { reason: 'disks-unavailable', what: `${what} is being evicted` };
  const schedulable = conditionOf(status.conditions, 'Schedulable');
  if (schedulable !== undefined && schedulable.status !== 'True') {
    const pressure = schedulable.reason === diskPressureReason;
    if (!(pressure && options.allowPressure)) {
      return { reason: pressure ? 'insufficient-storage' : 'disks-unavailable', what: `${what} is not schedulable (${schedulable.reason ?? 'no reason'})` };
    }
  }
  const selector = [...input.volume.spec.diskSelector, ...(input.backingImage?.spec.diskSelector ?? [])];
  const missing = missingTags(selector, spec.tags);
  if (missing.length > 0) return { reason: 'tags-not-fulfilled', what: `${what} lacks tags ${missing.join(', ')}` };
  if (selector.length === 0 && spec.tags.length > 0 && !input.settings['allow-empty-disk-selector-volume']) {
    return { reason: 'tags-not-fulfilled', what: `${what} has tags and the volume has no disk selector` };
  }
  return null;
}

/** Bytes scheduled on a disk: what the node agent counted plus this volume's replicas it has not seen yet. */
function scheduledBytes(status: DiskStatus, input: SchedulingInput, exclude: string | undefined): number {
  let bytes = status.storageScheduled;
  for (const replica of input.replicas) {
    if (replica.metadata.name === exclude || replica.spec.diskID !== status.diskUUID) continue;
    if (status.scheduledReplica?.[replica.metadata.name] === undefined) bytes += replica.spec.volumeSize;
  }
  return bytes;
}

function timeMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** A failed replica that may still be rebuilt in place (Longhorn's "potentially reusable"). */
export function isPotentiallyReusable(replica: Replica): boolean {
  return (
    replica.spec.failedAt !== undefined &&
    replica.spec.nodeID !== undefined &&
    replica.spec.diskID !== undefined &&
    replica.spec.rebuildRetryCount < replicaRebuildRetryMax &&
    !replica.spec.evictionRequested
  );
}

/** When the wait for failed replicas to come back ends: from lastDegradedAt (else the latest failure). */
export function replenishmentWaitEndsMs(input: SchedulingInput): number | undefined {
  const failures = input.replicas.filter(isPotentiallyReusable).map((replica) => timeMs(replica.spec.failedAt) ?? 0);
  if (failures.length === 0) return undefined;
  const startMs = timeMs(input.volume.status?.lastDegradedAt) ?? Math.max(...failures);
  return startMs + input.settings['replica-replenishment-wait-interval'] * 1000;
}

interface Footprint {
  /** Nodes, zones and disks holding a replica of the volume that is staying. */
  readonly nodes: Set<string>;
  readonly zones: Set<string>;
  readonly disks: Set<string>;
  /** Nodes and zones holding replicas that are being evicted. */
  readonly evictingNodes: Set<string>;
  readonly evictingZones: Set<string>;
}

function footprint(input: SchedulingInput, exclude: string | undefined): Footprint {
  const zoneOf = new Map(input.nodes.map((node) => [node.metadata.name, nodeZone(node)]));
  const waitEnds = replenishmentWaitEndsMs(input);
  const result: Footprint = { nodes: new Set(), zones: new Set(), disks: new Set(), evictingNodes: new Set(), evictingZones: new Set() };
  for (const replica of input.replicas) {
    const nodeName = replica.spec.nodeID;
    if (replica.metadata.name === exclude || nodeName === undefined) continue;
    if (replica.spec.failedAt !== undefined) {
      // A failed replica holds its place only while it may come back.
      const mayReturn = isPotentiallyReusable(replica) && waitEnds !== undefined && input.nowMs < waitEnds;
      if (!mayReturn) continue;
    }
    const zone = zoneOf.get(nodeName);
    if (replica.spec.diskID !== undefined) result.disks.add(replica.spec.diskID);
    if (replica.spec.evictionRequested) {
      result.evictingNodes.add(nodeName);
      if (zone !== undefined) result.evictingZones.add(zone);
    } else {
      result.nodes.add(nodeName);
      if (zone !== undefined) result.zones.add(zone);
    }
  }
  return result;
}

/**
 * The node tiers to try in order, by anti-affinity (reference §3.3). A node "used" only by
 * evicting replicas counts as free in the later tiers, so an evicted replica can move.
 */
function nodeTiers(candidates: readonly CandidateDisk[], used: Footprint, soft: { node: boolean; zone: boolean }) {
  const free = (disk: CandidateDisk) => !used.nodes.has(disk.nodeName) && !used.evictingNodes.has(disk.nodeName);
  const freeZone = (disk: CandidateDisk) => !used.zones.has(disk.zone) && !used.evictingZones.has(disk.zone);
  const freeAfterEviction = (disk: CandidateDisk) => !used.nodes.has(disk.nodeName);
  const freeZoneAfterEviction = (disk: CandidateDisk) => !used.zones.has(disk.zone);
  const tiers: ((disk: CandidateDisk) => boolean)[] = [(disk) => free(disk) && freeZone(disk)];
  if (!soft.zone) {
    tiers.push((disk) => freeAfterEviction(disk) && freeZoneAfterEviction(disk));
  } else {
    tiers.push(free, freeAfterEviction);
    if (soft.node) tiers.push(() => true);
  }
  return tiers.map((keep) => candidates.filter(keep));
}

function best(disks: readonly CandidateDisk[]): CandidateDisk | undefined {
  const freeBytes = (disk: CandidateDisk) => disk.status.storageAvailable - disk.spec.storageReserved;
  return [...disks].sort(
    (a, b) =>
      freeBytes(b) - freeBytes(a) ||
      (a.nodeName < b.nodeName ? -1 : a.nodeName > b.nodeName ? 1 : 0) ||
      (a.diskName < b.diskName ? -1 : a.diskName > b.diskName ? 1 : 0),
  )[0];
}

function summarise(refusals: readonly Refusal[]): { reason: UnschedulableReason; message: string } {
  let reason: UnschedulableReason = 'nodes-unavailable';
  for (const refusal of refusals) {
    if (unschedulableReasons.indexOf(refusal.reason) > unschedulableReasons.indexOf(reason)) reason = refusal.reason;
  }
  const shown = refusals.filter((refusal) => refusal.reason === reason).slice(0, 8);
  const more = refusals.filter((refusal) => refusal.reason === reason).length - shown.length;
  const list = shown.map((refusal) => refusal.what).join('; ');
  return { reason, message: refusals.length === 0 ? 'there are no nodes' : `${list}${more > 0 ? `; and ${more} more` : ''}` };
}

/** Choose a node and disk for a new replica of `input.volume`, or say why none is possible. */
export function scheduleReplica(input: SchedulingInput, options: ScheduleOptions = {}): ScheduleResult {
  const { volume, settings } = input;
  let hardNode = options.hardNodeAffinity;
  if (volume.spec.dataLocality === 'strict-local' && hardNode === undefined) {
    hardNode = volume.spec.nodeID;
    if (hardNode === undefined) {
      return { ok: false, reason: 'waiting-for-attachment', message: 'a strict-local replica is placed on the node the volume first attaches to' };
    }
  }
  if (hardNode === undefined && volume.spec.dataLocality === 'best-effort' && volume.spec.nodeID !== undefined) {
    // Prefer the attached node, softly: if the local placement fails, place anywhere.
    const attached = volume.spec.nodeID;
    const hasLocal = input.replicas.some(
      (replica) => replica.metadata.name !== options.replicaName && replica.spec.nodeID === attached && replica.spec.failedAt === undefined,
    );
    if (!hasLocal) {
      const local = scheduleReplica(input, { ...options, hardNodeAffinity: attached });
      if (local.ok) return local;
    }
  }

  const refusals: Refusal[] = [];
  const candidates: CandidateDisk[] = [];
  const nodes = hardNode === undefined ? input.nodes : input.nodes.filter((node) => node.metadata.name === hardNode);
  for (const node of nodes) {
    const refused = nodeRefusal(node, input);
    if (refused !== null) {
      refusals.push(refused);
      continue;
    }
    for (const diskName of Object.keys(node.spec.disks).sort()) {
      const diskRefused = diskRefusal(node, diskName, input, { allowPressure: false });
      if (diskRefused !== null) {
        refusals.push(diskRefused);
        continue;
      }
      const spec = node.spec.disks[diskName];
      const status = node.status?.diskStatus?.[diskName];
      if (spec === undefined || status === undefined) continue; // diskRefusal already reported it
      const verdict = diskCapacityVerdict(
        {
          storageMaximumBytes: status.storageMaximum,
          storageAvailableBytes: status.storageAvailable,
          storageReservedBytes: spec.storageReserved,
          storageScheduledBytes: scheduledBytes(status, input, options.replicaName),
        },
        { sizeBytes: volume.spec.size, requiredBytes: volume.status?.actualSize ?? 0 },
        settings,
      );
      if (!verdict.fits) {
        refusals.push({ reason: 'insufficient-storage', what: `disk ${diskName} on node ${node.metadata.name}: ${verdict.detail}` });
        continue;
      }
      candidates.push({ nodeName: node.metadata.name, zone: nodeZone(node), diskName, spec, status });
    }
  }

  const soft = {
    node: effectiveSoft(volume.spec.replicaSoftAntiAffinity, settings['replica-soft-anti-affinity']),
    zone: effectiveSoft(volume.spec.replicaZoneSoftAntiAffinity, settings['replica-zone-soft-anti-affinity']),
    disk: effectiveSoft(volume.spec.replicaDiskSoftAntiAffinity, settings['replica-disk-soft-anti-affinity']),
  };
  const used = footprint(input, options.replicaName);
  for (const tier of nodeTiers(candidates, used, soft)) {
    const unusedDisks = tier.filter((disk) => !used.disks.has(disk.status.diskUUID));
    const chosen = best(unusedDisks.length > 0 ? unusedDisks : soft.disk ? tier : []);
    if (chosen !== undefined) {
      return {
        ok: true,
        placement: { nodeID: chosen.nodeName, diskName: chosen.diskName, diskID: chosen.status.diskUUID, diskPath: chosen.spec.path },
      };
    }
  }
  if (candidates.length > 0) {
    const rules = [
      soft.zone ? null : 'zone',
      soft.node ? null : 'node',
      soft.disk ? null : 'disk',
    ].filter((rule) => rule !== null);
    refusals.push({
      reason: 'anti-affinity',
      what: `every disk with room is on a node, zone or disk that already holds a replica of ${volume.metadata.name} (hard ${rules.join(', ') || 'none'} anti-affinity)`,
    });
  }
  const summary = summarise(refusals);
  if (hardNode !== undefined) {
    return { ok: false, reason: 'hard-affinity-unsatisfied', message: `cannot place on node ${hardNode}: ${summary.message}` };
  }
  return { ok: false, ...summary };
}
