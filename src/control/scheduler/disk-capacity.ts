// Longhorn's capacity test for placing a replica on a disk (reference §3.2): enough free space
// beyond the minimal-available share, and the nominal sizes of all replicas on the disk within
// the over-provisioning share of its capacity minus its reserved space.
import type { SettingValues } from '../settings/settings.ts';

export interface DiskSpace {
  readonly storageMaximumBytes: number;
  readonly storageAvailableBytes: number;
  readonly storageReservedBytes: number;
  /** Nominal sizes of the replicas already placed on the disk. */
  readonly storageScheduledBytes: number;
}

export type CapacitySettings = Pick<SettingValues, 'storage-over-provisioning-percentage' | 'storage-minimal-available-percentage'>;

export type CapacityVerdict =
  | { readonly fits: true }
  | { readonly fits: false; readonly why: 'no-disk-info' | 'minimal-available' | 'over-provisioning'; readonly detail: string };

/**
 * Whether a replica of nominal `sizeBytes`, needing `requiredBytes` of real space now (the
 * volume's actual size), may go on this disk. The node controller calls it with size 0 to decide
 * whether a disk is under DiskPressure.
 */
export function diskCapacityVerdict(
  space: DiskSpace,
  demand: { readonly sizeBytes: number; readonly requiredBytes: number },
  settings: CapacitySettings,
): CapacityVerdict {
  const { storageMaximumBytes: maximum, storageAvailableBytes: available, storageReservedBytes: reserved } = space;
  if (maximum <= 0 || available <= 0) return { fits: false, why: 'no-disk-info', detail: 'the disk reports no capacity or no free space' };
  const minimalPercent = settings['storage-minimal-available-percentage'];
  const floorBytes = (maximum * minimalPercent) / 100;
  if (!(available - demand.requiredBytes > floorBytes)) {
    return {
      fits: false,
      why: 'minimal-available',
      detail: `${available - demand.requiredBytes} bytes would be left free, not more than ${minimalPercent}% of ${maximum}`,
    };
  }
  const overPercent = settings['storage-over-provisioning-percentage'];
  const ceilingBytes = ((maximum - reserved) * overPercent) / 100;
  const scheduled = demand.sizeBytes + space.storageScheduledBytes;
  if (scheduled > ceilingBytes) {
    return {
      fits: false,
      why: 'over-provisioning',
      detail: `${scheduled} bytes would be scheduled, over ${overPercent}% of ${maximum} - ${reserved} reserved`,
    };
  }
  return { fits: true };
}
