// One volume: what state it is in and why, its replicas with rebuild progress, its snapshot tree,
// and the actions on it (attach, detach, maintenance mode, expand, replica count, delete; a
// standby DR volume offers only activate).
import { useState } from 'preact/hooks';
import { apiCall, volumeAction } from '../api.ts';
import { ActionButton, Badge, Notice, PageTitle } from '../components.tsx';
import { explainVolume } from '../explain.ts';
import { formatBytes } from '../format.ts';
import { useCollection } from '../live.ts';
import { linkTo, navigate } from '../router.ts';
import { volumeState, type EngineView, type NodeView, type ReplicaView, type SnapshotView, type VolumeView } from '../views.ts';
import { BackupTable } from './backups.tsx';
import { IoCharts } from './io-charts.tsx';
import { ReplicaTable } from './replica-table.tsx';
import { formatTime } from '../format.ts';
import { SnapshotTree } from './snapshot-tree.tsx';

function SizeAndCount(props: { volume: VolumeView }) {
  const [size, setSize] = useState('');
  const [count, setCount] = useState(String(props.volume.spec.numberOfReplicas));
  const actions = props.volume.actions;
  return (
    <div class="toolbar">
      <label for="expand-size">New size</label>
      <input id="expand-size" value={size} placeholder="e.g. 2Gi" onInput={(e) => setSize(e.currentTarget.value)} disabled={!('expand' in actions)} />
      <ActionButton label="Expand" disabled={!('expand' in actions) || size.trim() === ''} run={() => volumeAction(props.volume.id, 'expand', { size: size.trim() })} />
      <label for="replica-count">Replicas</label>
      <input id="replica-count" type="number" min={1} max={10} value={count} onInput={(e) => setCount(e.currentTarget.value)} disabled={!('updateReplicaCount' in actions)} />
      <ActionButton label="Update replica count" disabled={!('updateReplicaCount' in actions)}
        run={() => volumeAction(props.volume.id, 'updateReplicaCount', { replicaCount: Number(count) })} />
    </div>
  );
}

function AttachActions(props: { volume: VolumeView; nodes: readonly NodeView[] }) {
  const [node, setNode] = useState(props.volume.status?.currentNodeID ?? props.nodes[0]?.id ?? '');
  const state = volumeState(props.volume);
  const attachedish = state === 'attached' || state === 'attaching';
  return (
    <div class="toolbar">
      <label for="attach-node">Node</label>
      <select id="attach-node" value={node} onChange={(e) => setNode(e.currentTarget.value)} disabled={attachedish}>
        {props.nodes.map((n) => <option key={n.id} value={n.id}>{n.id}</option>)}
      </select>
      <ActionButton label="Attach" disabled={attachedish || node === ''} run={() => volumeAction(props.volume.id, 'attach', { hostId: node })} />
      <ActionButton label="Attach in maintenance mode" disabled={attachedish || node === ''}
        run={() => volumeAction(props.volume.id, 'attach', { hostId: node, disableFrontend: true })} />
      <ActionButton label="Detach" disabled={state === 'detached'} run={() => volumeAction(props.volume.id, 'detach', {})} />
      <ActionButton label="Delete volume" danger confirm={`Delete ${props.volume.id} and all its data?`}
        run={async () => {
          await apiCall('DELETE', `/v1/volumes/${props.volume.id}`);
          navigate('/volumes');
        }} />
    </div>
  );
}

/**
 * A standby (DR) volume offers only `activate` (the API's actions say so): it follows its backups
 * with the frontend disabled and serves no I/O until activated. Activation is irreversible.
 */
function ActivateActions(props: { volume: VolumeView }) {
  const [frontend, setFrontend] = useState('');
  const held = props.volume.status?.lastRestoredBackup;
  return (
    <div class="toolbar" data-testid="standby-actions">
      <span class="muted">Standby volume: it serves no I/O until activated{held === undefined ? '' : `; holds backup ${held}`}.</span>
      <label for="activate-frontend">Frontend</label>
      <select id="activate-frontend" value={frontend} onChange={(e) => setFrontend(e.currentTarget.value)}>
        <option value="">unchanged ({props.volume.spec.frontend})</option>
        <option value="blockdev">blockdev</option>
        <option value="nbd">nbd</option>
      </select>
      <ActionButton label="Activate" confirm={`Activate ${props.volume.id}? It restores the newest backup, stops following the backups and becomes a normal volume (this cannot be undone).`}
        run={() => volumeAction(props.volume.id, 'activate', frontend === '' ? {} : { frontend })} />
    </div>
  );
}

export function VolumeDetailPage(props: { name: string }) {
  const volumes = useCollection<VolumeView>('Volume');
  const replicas = useCollection<ReplicaView>('Replica');
  const engines = useCollection<EngineView>('Engine');
  const snapshots = useCollection<SnapshotView>('Snapshot');
  const nodes = useCollection<NodeView>('Node');
  const volume = volumes.items.find((v) => v.id === props.name);
  if (volume === undefined) {
    return (
      <>
        <PageTitle>{props.name}</PageTitle>
        {volumes.loading ? <p>Loading…</p> : <Notice tone="warn">There is no volume named {props.name}.</Notice>}
      </>
    );
  }
  const own = replicas.items.filter((r) => r.spec.volumeName === volume.id);
  const engine = engines.items.find((e) => e.spec.volumeName === volume.id && e.spec.active);
  const explanation = explainVolume(volume, own, engine);
  const state = volumeState(volume);
  return (
    <>
      <PageTitle>{volume.id}</PageTitle>
      <p class="summary">
        <Badge value={state} /> {state === 'attached' && <Badge value={volume.status?.robustness} />}
        {(volume.status?.frontendDisabled === true || engine?.spec.disableFrontend === true) && <Badge value="maintenance" />}
        <span class="muted"> {formatBytes(volume.spec.size)} · {volume.spec.numberOfReplicas} replicas · {volume.spec.accessMode} · frontend {volume.spec.frontend}
          {volume.status?.currentNodeID !== undefined && ` · on ${volume.status.currentNodeID}`}
          {engine?.status?.endpoint !== undefined && engine.status.endpoint !== '' && ` · ${engine.status.endpoint}`}</span>
      </p>
      <Notice tone={explanation.tone} testId="volume-explanation">
        <p data-testid="volume-headline">{explanation.headline}</p>
        {explanation.details.length > 0 && <ul>{explanation.details.map((d) => <li key={d}>{d}</li>)}</ul>}
      </Notice>
      {'activate' in volume.actions ? <ActivateActions volume={volume} /> : <AttachActions volume={volume} nodes={nodes.items} />}
      <SizeAndCount volume={volume} />
      <section aria-labelledby="replicas-title">
        <h2 id="replicas-title">Replicas</h2>
        <ReplicaTable replicas={own} engine={engine} />
      </section>
      <section aria-labelledby="io-title">
        <h2 id="io-title">I/O</h2>
        <p class="muted">Used {formatBytes(volume.status?.actualSize)} of {formatBytes(volume.spec.size)}.</p>
        <IoCharts volume={volume.id} attached={state === 'attached'} />
      </section>
      <SnapshotTree volume={volume} snapshots={snapshots.items.filter((s) => s.spec.volume === volume.id)} />
      <section aria-labelledby="backups-title">
        <h2 id="backups-title">Backups</h2>
        <p class="muted">Back up a snapshot with its "Back up" button; all backups are on the <a {...linkTo('/backups')}>Backups</a> page.</p>
        <BackupTable volume={volume.id} />
      </section>
      {(volume.status?.conditions ?? []).length > 0 && (
        <section aria-labelledby="conditions-title">
          <h2 id="conditions-title">Conditions</h2>
          <table data-testid="volume-conditions">
            <caption class="visually-hidden">Conditions of {volume.id}</caption>
            <thead><tr><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Reason</th><th scope="col">Message</th><th scope="col">Since</th></tr></thead>
            <tbody>
              {(volume.status?.conditions ?? []).map((c) => (
                <tr key={c.type}><td>{c.type}</td><td><Badge value={c.status} /></td><td>{c.reason ?? '–'}</td><td>{c.message ?? '–'}</td><td>{formatTime(c.lastTransitionTime)}</td></tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
    </>
  );
}
