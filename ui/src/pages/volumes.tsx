// The volume list: filter, create, attach and detach, bulk detach and delete.
import { useState } from 'preact/hooks';
import { apiCall, errorText, volumeAction } from '../api.ts';
import { ActionButton, Badge, Notice, PageTitle } from '../components.tsx';
import { formatBytes } from '../format.ts';
import { useCollection } from '../live.ts';
import { linkTo, navigate } from '../router.ts';
import { volumeState, type NodeView, type VolumeView } from '../views.ts';
import { accessModes, dataLocalities, volumeFrontends } from '../../../src/control/resources/volume.ts';

function CreateVolume(props: { onDone: () => void }) {
  const [name, setName] = useState('');
  const [size, setSize] = useState('1Gi');
  const [replicas, setReplicas] = useState('3');
  const [locality, setLocality] = useState<string>('disabled');
  const [access, setAccess] = useState<string>('rwo');
  const [frontend, setFrontend] = useState<string>('blockdev');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await apiCall('POST', '/v1/volumes', {
        name: name.trim(), size: size.trim(), numberOfReplicas: Number(replicas), dataLocality: locality, accessMode: access, frontend,
      });
      props.onDone();
      navigate(`/volumes/${name.trim()}`);
    } catch (caught) {
      setError(errorText(caught));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="panel form-grid" onSubmit={(e) => void submit(e)} aria-labelledby="create-title">
      <h2 id="create-title">Create a volume</h2>
      <label for="v-name">Name</label>
      <input id="v-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="vol-a" aria-describedby="v-name-help" />
      <small id="v-name-help">Lowercase letters, digits and '-'.</small>
      <label for="v-size">Size</label>
      <input id="v-size" required value={size} onInput={(e) => setSize(e.currentTarget.value)} aria-describedby="v-size-help" />
      <small id="v-size-help">Bytes or with a unit: 512Mi, 10Gi, 1Ti.</small>
      <label for="v-replicas">Replicas</label>
      <input id="v-replicas" type="number" min={1} max={10} value={replicas} onInput={(e) => setReplicas(e.currentTarget.value)} />
      <small />
      <label for="v-locality">Data locality</label>
      <select id="v-locality" value={locality} onChange={(e) => setLocality(e.currentTarget.value)}>
        {dataLocalities.map((d) => <option key={d} value={d}>{d}</option>)}
      </select>
      <small />
      <label for="v-access">Access mode</label>
      <select id="v-access" value={access} onChange={(e) => setAccess(e.currentTarget.value)}>
        {accessModes.map((d) => <option key={d} value={d}>{d}</option>)}
      </select>
      <small />
      <label for="v-frontend">Frontend</label>
      <select id="v-frontend" value={frontend} onChange={(e) => setFrontend(e.currentTarget.value)}>
        {volumeFrontends.map((d) => <option key={d} value={d}>{d}</option>)}
      </select>
      <small />
      <div class="form-actions">
        <button type="submit" disabled={busy}>{busy ? 'Creating…' : 'Create'}</button>
        <button type="button" class="secondary" onClick={props.onDone}>Cancel</button>
      </div>
      {error !== undefined && <p class="inline-error" role="alert">{error}</p>}
    </form>
  );
}

export function AttachControl(props: { volume: VolumeView; nodes: readonly NodeView[] }) {
  const [node, setNode] = useState(props.nodes[0]?.id ?? '');
  const id = `attach-${props.volume.id}`;
  return (
    <span class="attach">
      <label for={id} class="visually-hidden">Node to attach {props.volume.id} to</label>
      <select id={id} value={node} onChange={(e) => setNode(e.currentTarget.value)}>
        {props.nodes.map((n) => <option key={n.id} value={n.id}>{n.id}</option>)}
      </select>
      <ActionButton label="Attach" disabled={node === ''} run={() => volumeAction(props.volume.id, 'attach', { hostId: node })} />
    </span>
  );
}

export function VolumesPage() {
  const volumes = useCollection<VolumeView>('Volume');
  const nodes = useCollection<NodeView>('Node');
  const [creating, setCreating] = useState(false);
  const [filter, setFilter] = useState('');
  const [stateFilter, setStateFilter] = useState('');
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  const shown = volumes.items.filter((v) => v.id.includes(filter.trim()) && (stateFilter === '' || volumeState(v) === stateFilter || v.status?.robustness === stateFilter));
  const toggle = (name: string): void => {
    const next = new Set(selected);
    if (next.has(name)) next.delete(name);
    else next.add(name);
    setSelected(next);
  };
  const bulk = async (run: (name: string) => Promise<unknown>): Promise<void> => {
    const failures: string[] = [];
    for (const name of selected) {
      try {
        await run(name);
      } catch (error) {
        failures.push(`${name}: ${errorText(error)}`);
      }
    }
    setSelected(new Set());
    if (failures.length > 0) throw new Error(failures.join('; '));
  };
  return (
    <>
      <PageTitle>Volumes</PageTitle>
      <div class="toolbar">
        <button type="button" onClick={() => setCreating(true)} disabled={creating}>Create volume</button>
        <label for="filter">Filter by name</label>
        <input id="filter" type="search" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
        <label for="state-filter">State</label>
        <select id="state-filter" value={stateFilter} onChange={(e) => setStateFilter(e.currentTarget.value)}>
          <option value="">all</option>
          {['attached', 'detached', 'creating', 'healthy', 'degraded', 'faulted'].map((s) => <option key={s} value={s}>{s}</option>)}
        </select>
        <ActionButton label={`Detach selected (${selected.size})`} disabled={selected.size === 0} run={() => bulk((n) => volumeAction(n, 'detach', {}))} />
        <ActionButton label={`Delete selected (${selected.size})`} danger disabled={selected.size === 0}
          confirm={`Delete ${selected.size} volume(s) and all their data?`} run={() => bulk((n) => apiCall('DELETE', `/v1/volumes/${n}`))} />
      </div>
      {creating && <CreateVolume onDone={() => setCreating(false)} />}
      {volumes.error !== undefined && <Notice tone="bad">{volumes.error}</Notice>}
      <table>
        <caption class="visually-hidden">Volumes</caption>
        <thead>
          <tr>
            <th scope="col"><span class="visually-hidden">Select</span></th>
            <th scope="col">Name</th><th scope="col">State</th><th scope="col">Robustness</th><th scope="col">Size</th>
            <th scope="col">Replicas</th><th scope="col">Node</th><th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((v) => {
            const state = volumeState(v);
            return (
              <tr key={v.id} data-testid={`volume-row-${v.id}`}>
                <td><input type="checkbox" aria-label={`Select ${v.id}`} checked={selected.has(v.id)} onChange={() => toggle(v.id)} /></td>
                <td><a {...linkTo(`/volumes/${v.id}`)}>{v.id}</a></td>
                <td><Badge value={state} /></td>
                <td>{state === 'attached' ? <Badge value={v.status?.robustness} /> : '–'}</td>
                <td>{formatBytes(v.spec.size)}</td>
                <td>{v.spec.numberOfReplicas}</td>
                <td>{v.status?.currentNodeID ?? v.spec.nodeID ?? '–'}</td>
                <td>
                  {state === 'detached' || state === 'creating'
                    ? <AttachControl volume={v} nodes={nodes.items} />
                    : <ActionButton label="Detach" run={() => volumeAction(v.id, 'detach', {})} />}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {!volumes.loading && shown.length === 0 && <p>No volumes{filter !== '' || stateFilter !== '' ? ' match the filter' : ''}.</p>}
    </>
  );
}
