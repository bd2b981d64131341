// The catalogue of global settings: Longhorn's names and defaults wherever Longhorn has the
// setting (reference/longhorn-controlplane.md §5), ours where the design adds one. Bounds differ
// from Longhorn's only where our limits do (e.g. replica counts stop at 10, snapshots at 1024).
import { replicaCountMax, snapshotCountMax } from '../../lib/limits.ts';
import { backupTargetURLProblem } from './backup-target-url.ts';
import { cronProblem } from './cron-expression.ts';
import { boolSetting, enumSetting, intSetting, stringSetting } from './setting-definition.ts';

const dayMinutes = 24 * 60;
const weekSeconds = 7 * 24 * 3600;

/** A Kubernetes object reference `namespace/name` or `name`, or empty. */
function objectNameProblem(value: string): string | null {
  if (value === '') return null;
  return /^([a-z0-9]([-a-z0-9]*[a-z0-9])?\/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(value) && value.length <= 253
    ? null
    : `${JSON.stringify(value)} is not a Kubernetes object name (lowercase, digits, '-', '.'; optional namespace/)`;
}

/** `key=value:Effect;...` tolerations, or empty. */
function tolerationsProblem(value: string): string | null {
  if (value === '') return null;
  for (const item of value.split(';')) {
    if (!/^[A-Za-z0-9./_-]+(=[A-Za-z0-9._-]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$/.test(item.trim())) {
      return `toleration ${JSON.stringify(item)} is not key[=value]:NoSchedule|PreferNoSchedule|NoExecute`;
    }
  }
  return null;
}

/** `key:value;key2:value2` node selector, or empty. */
function nodeSelectorProblem(value: string): string | null {
  if (value === '') return null;
  for (const item of value.split(';')) {
    if (!/^[A-Za-z0-9./_-]+:[A-Za-z0-9._-]*$/.test(item.trim())) return `selector ${JSON.stringify(item)} is not key:value`;
  }
  return null;
}

function absolutePathProblem(value: string): string | null {
  if (!value.startsWith('/')) return `${JSON.stringify(value)} is not an absolute path`;
  if (value.split('/').includes('..')) return `${JSON.stringify(value)} must not contain '..'`;
  return null;
}

export const settingDefinitions = {
  // --- Backup ---
  'backup-target': stringSetting({
    category: 'Backup',
    default: '',
    description: 'Where backups go: s3://bucket@region/path, nfs://server:/path or an absolute directory. Empty: no backups.',
    check: backupTargetURLProblem,
  }),
  'backup-target-credential-secret': stringSetting({
    category: 'Backup',
    default: '',
    description: 'Name of the secret holding the backup target credentials and endpoint (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINTS, ...).',
    check: objectNameProblem,
  }),
  'backupstore-poll-interval': intSetting({
    category: 'Backup',
    default: 300,
    min: 0,
    max: weekSeconds,
    unit: 'seconds',
    description: 'How often the backup target is listed again for new backups; disaster-recovery volumes follow at this pace. 0 stops polling.',
  }),
  'backup-compression-method': enumSetting({
    category: 'Backup',
    default: 'lz4',
    options: ['none', 'lz4', 'gzip'],
    description: 'Compression of backup blocks for volumes that do not choose their own.',
  }),
  'backup-concurrent-limit': intSetting({
    category: 'Backup',
    default: 2,
    min: 1,
    max: 64,
    unit: 'count',
    description: 'Blocks one backup uploads in parallel.',
  }),
  'restore-concurrent-limit': intSetting({
    category: 'Backup',
    default: 2,
    min: 1,
    max: 64,
    unit: 'count',
    description: 'Blocks one restore downloads in parallel.',
  }),
  'backup-execution-timeout': intSetting({
    category: 'Backup',
    default: 1,
    min: 1,
    max: dayMinutes,
    unit: 'minutes',
    description: 'Time allowed for each backup store command the manager runs (list, inspect, delete).',
  }),
  'failed-backup-ttl': intSetting({
    category: 'Backup',
    default: 1440,
    min: 0,
    max: 365 * dayMinutes,
    unit: 'minutes',
    description: 'Failed backups are deleted after this long. 0 keeps them.',
  }),
  'allow-recurring-job-while-volume-detached': boolSetting({
    category: 'Backup',
    default: false,
    description: 'Recurring jobs attach a detached volume to run, and detach it afterwards. Otherwise detached volumes are skipped.',
  }),
  'restore-volume-recurring-jobs': boolSetting({
    category: 'Backup',
    default: false,
    description: 'Restoring a backup also restores the recurring jobs and groups recorded with it.',
  }),
  'recurring-successful-jobs-history-limit': intSetting({
    category: 'Backup',
    default: 1,
    min: 0,
    max: 100,
    unit: 'count',
    description: 'Successful runs of each recurring job kept for inspection.',
  }),
  'recurring-failed-jobs-history-limit': intSetting({
    category: 'Backup',
    default: 1,
    min: 0,
    max: 100,
    unit: 'count',
    description: 'Failed runs of each recurring job kept for inspection.',
  }),
  'recurring-job-max-retention': intSetting({
    category: 'Backup',
    default: 100,
    min: 1,
    max: snapshotCountMax,
    unit: 'count',
    description: 'Upper bound on the sum of retain counts of the recurring jobs applied to one volume.',
  }),
  'concurrent-volume-backup-restore-per-node-limit': intSetting({
    category: 'Backup',
    default: 5,
    min: 0,
    max: 100,
    unit: 'count',
    description: 'Volumes restoring from backups at once on one node. 0 disables restores.',
  }),

  // --- Scheduling ---
  'replica-soft-anti-affinity': boolSetting({
    category: 'Scheduling',
    default: false,
    description: 'Allow two replicas of one volume on the same node when no other node fits. Off: a replica that fits no new node stays unscheduled.',
  }),
  'replica-zone-soft-anti-affinity': boolSetting({
    category: 'Scheduling',
    default: true,
    description: 'Allow two replicas of one volume in the same zone when no other zone fits. Nodes without a zone form one zone.',
  }),
  'replica-disk-soft-anti-affinity': boolSetting({
    category: 'Scheduling',
    default: true,
    description: 'Allow two replicas of one volume on the same disk when no other disk fits.',
  }),
  'replica-auto-balance': enumSetting({
    category: 'Scheduling',
    default: 'disabled',
    options: ['disabled', 'least-effort', 'best-effort'],
    description: 'Move replicas to spread healthy volumes: least-effort only when a zone or node holds none, best-effort to even out counts.',
  }),
  'replica-auto-balance-disk-pressure-percentage': intSetting({
    category: 'Scheduling',
    default: 90,
    min: 0,
    max: 100,
    unit: 'percent',
    description: 'With best-effort balancing, a disk used beyond this share has replicas moved to another disk of its node. 0 disables.',
  }),
  'storage-over-provisioning-percentage': intSetting({
    category: 'Scheduling',
    default: 100,
    min: 0,
    max: 100_000,
    unit: 'percent',
    description: 'The nominal size of all replicas on a disk may reach this share of its capacity minus its reserved space.',
  }),
  'storage-minimal-available-percentage': intSetting({
    category: 'Scheduling',
    default: 25,
    min: 0,
    max: 100,
    unit: 'percent',
    description: 'A disk whose free space would fall below this share of its capacity takes no new replica.',
  }),
  'storage-reserved-percentage-for-default-disk': intSetting({
    category: 'Scheduling',
    default: 30,
    min: 0,
    max: 100,
    unit: 'percent',
    description: 'Share of the default disk withheld from scheduling when it is created.',
  }),
  'disable-scheduling-on-cordoned-node': boolSetting({
    category: 'Scheduling',
    default: true,
    description: 'A cordoned node takes no new replica.',
  }),
  'allow-volume-creation-with-degraded-availability': boolSetting({
    category: 'Scheduling',
    default: true,
    description: 'A new volume is usable once one replica is placed; otherwise every replica must be placed first.',
  }),
  'allow-empty-node-selector-volume': boolSetting({
    category: 'Scheduling',
    default: true,
    description: 'Volumes without a node selector may use nodes that have tags.',
  }),
  'allow-empty-disk-selector-volume': boolSetting({
    category: 'Scheduling',
    default: true,
    description: 'Volumes without a disk selector may use disks that have tags.',
  }),

  // --- General ---
  'default-replica-count': intSetting({
    category: 'General',
    default: 3,
    min: 1,
    max: replicaCountMax,
    unit: 'count',
    description: 'Replicas of a new volume that does not say how many.',
  }),
  'default-minimum-write-replicas': intSetting({
    category: 'General',
    default: 1,
    min: 1,
    max: replicaCountMax,
    unit: 'count',
    description: 'Shorthorn only: writes fail rather than be acknowledged by fewer replicas than this (1 is Longhorn behaviour).',
  }),
  'default-data-locality': enumSetting({
    category: 'General',
    default: 'disabled',
    options: ['disabled', 'best-effort', 'strict-local'],
    description: 'Keep a replica on the node the volume is attached to: best-effort tries, strict-local requires one replica there and no other.',
  }),
  'default-data-path': stringSetting({
    category: 'General',
    default: '/var/lib/shorthorn/',
    description: 'Directory of the default disk created on each node.',
    check: absolutePathProblem,
  }),
  'create-default-disk-labeled-nodes': boolSetting({
    category: 'General',
    default: false,
    description: 'Create the default disk only on nodes labelled node.shorthorn.io/create-default-disk.',
  }),
  'replica-replenishment-wait-interval': intSetting({
    category: 'General',
    default: 600,
    min: 0,
    max: weekSeconds,
    unit: 'seconds',
    description: 'How long a degraded volume waits for a failed replica to come back (and be rebuilt quickly) before it builds a new one elsewhere.',
  }),
  'auto-salvage': boolSetting({
    category: 'General',
    default: true,
    description: 'When every replica has failed, restart the volume from the replicas that hold the latest acknowledged data.',
  }),
  'auto-delete-pod-when-volume-detached-unexpectedly': boolSetting({
    category: 'General',
    default: true,
    description: 'Kubernetes only: restart workload pods whose volume was detached under them, so they mount it again.',
  }),
  'node-down-pod-deletion-policy': enumSetting({
    category: 'General',
    default: 'do-nothing',
    options: ['do-nothing', 'delete-statefulset-pod', 'delete-deployment-pod', 'delete-both-statefulset-and-deployment-pod'],
    description: 'Kubernetes only: force-delete terminating pods on a down node so their volumes can attach elsewhere.',
  }),
  'node-drain-policy': enumSetting({
    category: 'General',
    default: 'block-if-contains-last-replica',
    options: [
      'block-if-contains-last-replica',
      'allow-if-replica-is-stopped',
      'always-allow',
      'block-for-eviction',
      'block-for-eviction-if-contains-last-replica',
    ],
    description: 'Whether draining a node waits while it holds the last healthy replica of a volume, or evicts replicas first.',
  }),
  'detach-manually-attached-volumes-when-cordoned': boolSetting({
    category: 'General',
    default: false,
    description: 'Detach volumes attached through the API or UI from a node when it is cordoned.',
  }),
  'engine-replica-timeout': intSetting({
    category: 'General',
    default: 8,
    min: 8,
    max: 30,
    unit: 'seconds',
    description: 'An engine drops a replica from the write set after it has not answered for this long.',
  }),
  'fast-replica-rebuild-enabled': boolSetting({
    category: 'General',
    default: true,
    description: 'Rebuilds skip chunks whose checksums already match, so a returning replica copies only what changed.',
  }),
  'backing-image-cleanup-wait-interval': intSetting({
    category: 'General',
    default: 60,
    min: 0,
    max: 365 * dayMinutes,
    unit: 'minutes',
    description: 'A backing image copy no replica on its disk has used for this long is removed (never below the minimum copies).',
  }),
  'backing-image-recovery-wait-interval': intSetting({
    category: 'General',
    default: 300,
    min: 0,
    max: weekSeconds,
    unit: 'seconds',
    description: 'Wait before fetching again a failed or unknown backing image copy.',
  }),
  'default-min-number-of-backing-image-copies': intSetting({
    category: 'General',
    default: 3,
    min: 1,
    max: replicaCountMax,
    unit: 'count',
    description: 'Copies of a backing image kept on different disks when the image does not say.',
  }),
  'remove-snapshots-during-filesystem-trim': boolSetting({
    category: 'General',
    default: false,
    description: 'Trimming a filesystem may also remove snapshots already marked for removal.',
  }),
  'log-level': enumSetting({
    category: 'General',
    default: 'Info',
    options: ['Panic', 'Fatal', 'Error', 'Warn', 'Info', 'Debug', 'Trace'],
    description: 'Log level of the managers.',
  }),
  'deleting-confirmation-flag': boolSetting({
    category: 'General',
    default: false,
    description: 'Must be true before an uninstall may delete Shorthorn and its volumes.',
  }),
  'current-shorthorn-version': stringSetting({
    category: 'General',
    default: '',
    readOnly: true,
    description: 'The version of the running managers.',
  }),

  // --- Snapshot ---
  'snapshot-data-integrity': enumSetting({
    category: 'Snapshot',
    default: 'fast-check',
    options: ['disabled', 'enabled', 'fast-check'],
    description: 'The periodic snapshot data check (snapshot-data-integrity-cronjob): fast-check compares the replicas\' stored snapshot checksums, enabled also re-reads the data against them, disabled runs no check.',
  }),
  'snapshot-data-integrity-immediate-check-after-snapshot-creation': boolSetting({
    category: 'Snapshot',
    default: false,
    description: 'Checksum a snapshot as soon as it is taken, not only on the periodic check.',
  }),
  'snapshot-data-integrity-cronjob': stringSetting({
    category: 'Snapshot',
    default: '0 0 */7 * *',
    description: 'When the periodic snapshot checksum check runs (cron).',
    check: cronProblem,
  }),
  'snapshot-max-count': intSetting({
    category: 'Snapshot',
    default: 250,
    min: 2,
    max: snapshotCountMax,
    unit: 'count',
    description: 'Snapshots one volume may hold when it does not set its own limit.',
  }),
  'auto-cleanup-system-generated-snapshot': boolSetting({
    category: 'Snapshot',
    default: true,
    description: 'Remove the snapshots the system took for rebuilds once they are no longer needed.',
  }),
  'auto-cleanup-recurring-job-backup-snapshot': boolSetting({
    category: 'Snapshot',
    default: true,
    description: 'A recurring backup job keeps only the snapshot of its latest backup.',
  }),
  'auto-cleanup-when-delete-backup': boolSetting({
    category: 'Snapshot',
    default: false,
    description: 'Deleting a backup also deletes the snapshot it was taken from.',
  }),
  'freeze-filesystem-for-snapshot': boolSetting({
    category: 'Snapshot',
    default: false,
    description: 'Freeze a mounted filesystem while a snapshot is taken so the snapshot holds a clean filesystem.',
  }),

  // --- Orphan ---
  'orphan-auto-deletion': boolSetting({
    category: 'Orphan',
    default: false,
    description: 'Delete replica data found on disks that no replica owns, without asking.',
  }),

  // --- Danger Zone ---
  'concurrent-replica-rebuild-per-node-limit': intSetting({
    category: 'Danger Zone',
    default: 5,
    min: 0,
    max: 100,
    unit: 'count',
    description: 'Replicas rebuilding at once on one node. 0 disables rebuilding.',
  }),
  'concurrent-backing-image-replenish-per-node-limit': intSetting({
    category: 'Danger Zone',
    default: 5,
    min: 0,
    max: 100,
    unit: 'count',
    description: 'Backing image copies created at once on one node. 0 disables replenishing.',
  }),
  'disable-snapshot-purge': boolSetting({
    category: 'Danger Zone',
    default: false,
    description: 'Refuse snapshot purges, e.g. during maintenance.',
  }),
  'taint-toleration': stringSetting({
    category: 'Danger Zone',
    default: '',
    description: 'Kubernetes only: tolerations (key=value:Effect;...) given to the pods Shorthorn manages.',
    check: tolerationsProblem,
  }),
  'system-managed-components-node-selector': stringSetting({
    category: 'Danger Zone',
    default: '',
    description: 'Kubernetes only: node selector (key:value;...) for the pods Shorthorn manages.',
    check: nodeSelectorProblem,
  }),
  'priority-class': stringSetting({
    category: 'Danger Zone',
    default: '',
    description: 'Kubernetes only: priority class of the pods Shorthorn manages.',
    check: objectNameProblem,
  }),
  'storage-network': stringSetting({
    category: 'Danger Zone',
    default: '',
    description: 'Kubernetes only: network attachment (namespace/name) carrying replica traffic. Empty: the cluster network.',
    check: objectNameProblem,
  }),
  'guaranteed-instance-manager-cpu': intSetting({
    category: 'Danger Zone',
    default: 12,
    min: 0,
    max: 40,
    unit: 'percent',
    description: 'Kubernetes only: share of a node\'s CPU reserved for the node agent that runs engines and replicas.',
  }),
} as const;
