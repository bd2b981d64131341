// Backups: the backup target's status, the backup volumes on it and their backups; restore into
// a new volume (or a standby DR volume), verify, delete. Backups are not in the event stream, so
// these lists are fetched again every few seconds. A route this API lacks is shown as "not
// available yet", never as a failure.
import { useState } from 'preact/hooks';
import type { ResourceView } from '../../../src/api/resource-view.ts';
import type { BackupSpec, BackupStatus } from '../../../src/control/resources/backup.ts';
import type { BackupTargetSpec, BackupTargetStatus } from '../../../src/control/resources/backup-target.ts';
import type { BackupVolumeSpec, BackupVolumeStatus } from '../../../src/control/resources/backup-volume.ts';
import { apiCall, type Collection } from '../api.ts';
import { ActionButton, Badge, NotAvailable, Notice, PageTitle, useOptionalRoute } from '../components.tsx';
import { formatBytes, formatTime } from '../format.ts';
import { linkTo, navigate } from '../router.ts';

type BackupTargetView = ResourceView & { spec: BackupTargetSpec; status?: BackupTargetStatus };
type BackupVolumeView = ResourceView & { spec: BackupVolumeSpec; status?: BackupVolumeStatus };
type BackupView = ResourceView & { spec: BackupSpec; status?: BackupStatus };

function Restore(props: { backup: BackupView }) {
  const url = props.backup.status?.url;
  const [name, setName] = useState(`${props.backup.status?.volumeName ?? 'restored'}-restore`);
  const id = `restore-${props.backup.id}`;
  if (url === undefined || props.backup.status?.state !== 'Completed') return null;
  // The API fills the size from the mirrored backup and the replica count from the setting.
  const create = async (standby: boolean): Promise<void> => {
    await apiCall('POST', '/v1/volumes', { name: name.trim(), fromBackup: url, ...(standby ? { standby: true } : {}) });
    navigate(`/volumes/${name.trim()}`);
  };
  return (
    <span class="attach">
      <label for={id} class="visually-hidden">Name of the volume to restore {props.backup.id} into</label>
      <input id={id} value={name} onInput={(e) => setName(e.currentTarget.value)} size={16} />
      <ActionButton label="Restore" run={() => create(false)} />
      <ActionButton label="Create DR volume" run={() => create(true)} />
    </span>
  );
}

function Verify(props: { backup: BackupView; backupVolume: string }) {
  const [result, setResult] = useState<string | undefined>(undefined);
  return (
    <>
      <ActionButton label="Verify" run={async () => {
        const verified = await apiCall<Record<string, unknown>>('POST', `/v1/backupvolumes/${props.backupVolume}?action=backupVerify`, { name: props.backup.id });
        setResult(JSON.stringify(verified));
      }} />
      {result !== undefined && <span class="muted" role="status">{result.slice(0, 300)}</span>}
    </>
  );
}

/** A volume's backups with state and progress; shared with the volume page. */
export function BackupTable(props: { volume: string; backupVolume?: string }) {
  const [backups, refresh] = useOptionalRoute<Collection<BackupView>>(`/v1/backups?volume=${encodeURIComponent(props.volume)}`, 3000);
  if (backups.kind === 'missing') return <NotAvailable what="Listing backups" route="/v1/backups" />;
  if (backups.kind === 'error') return <Notice tone="bad">{backups.message}</Notice>;
  if (backups.kind === 'loading') return <p>Loading…</p>;
  if (backups.value.data.length === 0) return <p>No backups.</p>;
  return (
    <table data-testid={`backups-of-${props.volume}`}>
      <caption class="visually-hidden">Backups of {props.volume}</caption>
      <thead><tr><th scope="col">Backup</th><th scope="col">State</th><th scope="col">Snapshot</th><th scope="col">Created</th><th scope="col">Size</th><th scope="col">Actions</th></tr></thead>
      <tbody>
        {backups.value.data.map((b) => (
          <tr key={b.id} data-testid={`backup-${b.id}`}>
            <td>{b.id}</td>
            <td><Badge value={b.status?.state} />{b.status?.progress !== undefined && b.status.state !== 'Completed' && ` ${b.status.progress}%`}
              {b.status?.error !== undefined && <span class="inline-error"> {b.status.error}</span>}</td>
            <td>{b.status?.snapshotName ?? b.spec.snapshotName ?? '–'}</td>
            <td>{formatTime(b.status?.backupCreatedAt)}</td>
            <td>{formatBytes(b.status?.size)}</td>
            <td>
              {props.backupVolume !== undefined && <><Restore backup={b} /> <Verify backup={b} backupVolume={props.backupVolume} /></>}
              <ActionButton label="Delete" danger confirm={`Delete backup ${b.id} from the target?`}
                run={async () => { await apiCall('DELETE', `/v1/backups/${b.id}`); refresh(); }} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function BackupsPage() {
  const [targets] = useOptionalRoute<Collection<BackupTargetView>>('/v1/backuptargets', 10_000);
  const [volumes] = useOptionalRoute<Collection<BackupVolumeView>>('/v1/backupvolumes', 5000);
  const target = targets.kind === 'ok' ? targets.value.data[0] : undefined;
  return (
    <>
      <PageTitle>Backups</PageTitle>
      <section aria-labelledby="target-title">
        <h2 id="target-title">Backup target</h2>
        {targets.kind === 'missing' && <NotAvailable what="The backup target's status" route="/v1/backuptargets" />}
        {targets.kind === 'error' && <Notice tone="bad">{targets.message}</Notice>}
        {targets.kind === 'ok' && (target === undefined || target.spec.backupTargetURL === ''
          ? <Notice tone="info" testId="no-target">No backup target set. Set <a {...linkTo('/settings')}>backup-target</a> (s3://bucket@region/path, nfs://server:/path or a directory).</Notice>
          : <p><code>{target.spec.backupTargetURL}</code> <Badge value={target.status?.available === true ? 'True' : 'False'} label={target.status?.available === true ? 'available' : 'unavailable'} />
            <span class="muted"> last listed {formatTime(target.status?.lastSyncedAt)}</span>
            {(target.status?.conditions ?? []).filter((c) => c.message !== undefined).map((c) => <span key={c.type} class="inline-error"> {c.message}</span>)}</p>)}
      </section>
      <section aria-labelledby="bv-title">
        <h2 id="bv-title">Backup volumes</h2>
        {volumes.kind === 'missing' && <NotAvailable what="The list of backup volumes" route="/v1/backupvolumes" />}
        {volumes.kind === 'error' && <Notice tone="bad">{volumes.message}</Notice>}
        {volumes.kind === 'loading' && <p>Loading…</p>}
        {volumes.kind === 'ok' && volumes.value.data.length === 0 && <p>No backups on the target yet. Back up a snapshot from a volume's page.</p>}
        {volumes.kind === 'ok' && volumes.value.data.map((v) => (
          <section class="panel" key={v.id} aria-labelledby={`bv-${v.id}`} data-testid={`backup-volume-${v.id}`}>
            <h3 id={`bv-${v.id}`}>{v.id}</h3>
            <p class="muted">last backup {v.status?.lastBackupName ?? '–'} at {formatTime(v.status?.lastBackupAt)} · stored {formatBytes(v.status?.dataStored)}</p>
            <div class="toolbar">
              {'backupVolumeSync' in v.actions && <ActionButton label="Sync from target" run={() => apiCall('POST', `/v1/backupvolumes/${v.id}?action=backupVolumeSync`, {})} />}
              <ActionButton label="Delete backup volume" danger confirm={`Delete backup volume ${v.id} and every backup in it?`} run={() => apiCall('DELETE', `/v1/backupvolumes/${v.id}`)} />
            </div>
            <BackupTable volume={v.id} backupVolume={v.id} />
          </section>
        ))}
      </section>
    </>
  );
}
