// A volume's snapshot chain as a tree (parent → children), oldest at the top, the live head last,
// with create, revert, delete, purge and backup.
import { useState } from 'preact/hooks';
import { volumeAction } from '../api.ts';
import { ActionButton, Badge } from '../components.tsx';
import { formatBytes, formatTime } from '../format.ts';
import type { SnapshotView, VolumeView } from '../views.ts';

interface TreeNode {
  readonly snapshot: SnapshotView;
  readonly children: TreeNode[];
}

/** Roots are snapshots whose parent is unknown (the chain's bottom, or a parent not listed). */
export function buildSnapshotTree(snapshots: readonly SnapshotView[]): TreeNode[] {
  const nodes = new Map(snapshots.map((s) => [s.id, { snapshot: s, children: [] as TreeNode[] }]));
  const roots: TreeNode[] = [];
  for (const node of nodes.values()) {
    const parent = node.snapshot.status?.parent;
    const parentNode = parent === undefined || parent === '' ? undefined : nodes.get(parent);
    if (parentNode === undefined) roots.push(node);
    else parentNode.children.push(node);
  }
  const byTime = (a: TreeNode, b: TreeNode): number =>
    (a.snapshot.status?.creationTime ?? a.snapshot.metadata.creationTimestamp ?? '').localeCompare(b.snapshot.status?.creationTime ?? b.snapshot.metadata.creationTimestamp ?? '');
  for (const node of nodes.values()) node.children.sort(byTime);
  return roots.sort(byTime);
}

function SnapshotItem(props: { node: TreeNode; volume: VolumeView; canAct: boolean }) {
  const { snapshot } = props.node;
  const status = snapshot.status;
  const actions = props.volume.actions;
  const state = status?.markRemoved === true ? 'removed' : status?.readyToUse === true ? 'ready' : status?.error !== undefined ? 'error' : 'pending';
  return (
    <li data-testid={`snapshot-${snapshot.id}`}>
      <div class="snapshot">
        <strong>{snapshot.id}</strong>
        <Badge value={state} />
        {status?.userCreated === false && <Badge value="system" />}
        {status?.checksumState !== undefined && status.checksumState !== 'none' && (
          <span class="muted" title={status.checksumComputedAt === undefined ? 'per-chunk checksums' : `per-chunk checksums computed ${formatTime(status.checksumComputedAt)}`}>
            checksums {status.checksumState}
          </span>
        )}
        <span class="muted">{formatTime(status?.creationTime ?? snapshot.metadata.creationTimestamp)} · {formatBytes(status?.size)}</span>
        {status?.error !== undefined && <span class="inline-error">{status.error}</span>}
        {props.canAct && (
          <span class="snapshot-actions">
            <ActionButton label="Revert" disabled={!('snapshotRevert' in actions)}
              confirm={`Revert ${props.volume.id} to ${snapshot.id}? Writes after it are lost.`}
              run={() => volumeAction(props.volume.id, 'snapshotRevert', { name: snapshot.id })} />
            {'snapshotBackup' in actions && <ActionButton label="Back up" run={() => volumeAction(props.volume.id, 'snapshotBackup', { name: snapshot.id })} />}
            <ActionButton label="Delete" danger disabled={!('snapshotDelete' in actions)}
              confirm={`Delete snapshot ${snapshot.id}?`} run={() => volumeAction(props.volume.id, 'snapshotDelete', { name: snapshot.id })} />
          </span>
        )}
      </div>
      {props.node.children.length > 0 && (
        <ul>{props.node.children.map((c) => <SnapshotItem key={c.snapshot.id} node={c} volume={props.volume} canAct={props.canAct} />)}</ul>
      )}
    </li>
  );
}

export function SnapshotTree(props: { volume: VolumeView; snapshots: readonly SnapshotView[] }) {
  const [name, setName] = useState('');
  const actions = props.volume.actions;
  const attached = 'snapshotCreate' in actions;
  const roots = buildSnapshotTree(props.snapshots);
  return (
    <section aria-labelledby="snap-title">
      <h2 id="snap-title">Snapshots</h2>
      <div class="toolbar">
        <label for="snap-name">New snapshot name (optional)</label>
        <input id="snap-name" value={name} onInput={(e) => setName(e.currentTarget.value)} disabled={!attached} />
        <ActionButton label="Take snapshot" disabled={!attached}
          run={async () => {
            await volumeAction(props.volume.id, 'snapshotCreate', name.trim() === '' ? {} : { name: name.trim() });
            setName('');
          }} />
        <ActionButton label="Purge system snapshots" disabled={!('snapshotPurge' in actions)} run={() => volumeAction(props.volume.id, 'snapshotPurge', {})} />
      </div>
      {!attached && <p class="muted">Snapshots are taken and changed while the volume is attached.</p>}
      {'snapshotRevert' in actions ? null : attached && <p class="muted">Revert needs maintenance mode: detach, then attach with the frontend disabled.</p>}
      {roots.length === 0 ? <p>No snapshots.</p> : (
        <ul class="tree" aria-label={`Snapshot tree of ${props.volume.id}`}>
          {roots.map((r) => <SnapshotItem key={r.snapshot.id} node={r} volume={props.volume} canAct={attached} />)}
          <li class="head"><strong>volume-head</strong> <span class="muted">live data, written now</span></li>
        </ul>
      )}
    </section>
  );
}
