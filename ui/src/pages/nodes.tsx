// Nodes and their disks: readiness, capacity, tags, scheduling and eviction switches, and adding or
// removing disks (PUT /v1/nodes/NAME, POST ?action=diskUpdate).
import { useState } from 'preact/hooks';
import { apiCall } from '../api.ts';
import { ActionButton, Badge, PageTitle } from '../components.tsx';
import { formatBytes } from '../format.ts';
import { useCollection } from '../live.ts';
import type { NodeView } from '../views.ts';
import type { DiskSpec } from '../../../src/control/resources/node.ts';

const putNode = (name: string, body: object): Promise<unknown> => apiCall('PUT', `/v1/nodes/${name}`, body);
const updateDisks = (name: string, disks: Record<string, DiskSpec>): Promise<unknown> => apiCall('POST', `/v1/nodes/${name}?action=diskUpdate`, { disks });

function AddDisk(props: { node: NodeView }) {
  const [name, setName] = useState('');
  const [path, setPath] = useState('');
  const id = props.node.id;
  return (
    <div class="toolbar">
      <label for={`disk-name-${id}`}>Disk name</label>
      <input id={`disk-name-${id}`} value={name} onInput={(e) => setName(e.currentTarget.value)} />
      <label for={`disk-path-${id}`}>Path</label>
      <input id={`disk-path-${id}`} value={path} placeholder="/var/lib/shorthorn-disk2" onInput={(e) => setPath(e.currentTarget.value)} />
      <ActionButton label="Add disk" disabled={name.trim() === '' || path.trim() === ''}
        run={() => updateDisks(id, { ...props.node.spec.disks, [name.trim()]: { diskType: 'filesystem', path: path.trim(), allowScheduling: true, evictionRequested: false, storageReserved: 0, tags: [] } })} />
    </div>
  );
}

function NodeCard(props: { node: NodeView }) {
  const { node } = props;
  const [tags, setTags] = useState(node.spec.tags.join(', '));
  const conditions = node.status?.conditions ?? [];
  return (
    <section class="panel" aria-labelledby={`node-${node.id}`} data-testid={`node-${node.id}`}>
      <h2 id={`node-${node.id}`}>{node.id}</h2>
      <p>
        {conditions.map((c) => <span key={c.type} title={c.message}><Badge value={c.status} label={`${c.type}: ${c.status}`} /> </span>)}
        {node.status?.zone !== undefined && <span class="muted">zone {node.status.zone}</span>}
      </p>
      <div class="toolbar">
        <ActionButton label={node.spec.allowScheduling ? 'Disable scheduling' : 'Enable scheduling'} run={() => putNode(node.id, { allowScheduling: !node.spec.allowScheduling })} />
        <ActionButton label={node.spec.evictionRequested ? 'Cancel eviction' : 'Evict replicas'} danger={!node.spec.evictionRequested}
          run={() => putNode(node.id, { evictionRequested: !node.spec.evictionRequested })} />
        <label for={`tags-${node.id}`}>Tags</label>
        <input id={`tags-${node.id}`} value={tags} onInput={(e) => setTags(e.currentTarget.value)} aria-describedby={`tags-help-${node.id}`} />
        <small id={`tags-help-${node.id}`} class="muted">comma-separated</small>
        <ActionButton label="Save tags" run={() => putNode(node.id, { tags: tags.split(',').map((t) => t.trim()).filter((t) => t !== '') })} />
      </div>
      <table>
        <caption class="visually-hidden">Disks of {node.id}</caption>
        <thead>
          <tr><th scope="col">Disk</th><th scope="col">Path</th><th scope="col">Size</th><th scope="col">Free</th><th scope="col">Scheduled</th><th scope="col">Reserved</th><th scope="col">Scheduling</th><th scope="col">Actions</th></tr>
        </thead>
        <tbody>
          {Object.entries(node.spec.disks).map(([name, disk]) => {
            const status = node.status?.diskStatus?.[name];
            const { [name]: _removed, ...others } = node.spec.disks;
            return (
              <tr key={name}>
                <td>{name}</td>
                <td>{disk.path}</td>
                <td>{formatBytes(status?.storageMaximum)}</td>
                <td>{formatBytes(status?.storageAvailable)}</td>
                <td>{formatBytes(status?.storageScheduled)}</td>
                <td>{formatBytes(disk.storageReserved)}</td>
                <td><Badge value={disk.allowScheduling ? 'True' : 'False'} label={disk.allowScheduling ? 'allowed' : 'off'} /></td>
                <td>
                  <ActionButton label={disk.allowScheduling ? 'Disable' : 'Enable'}
                    run={() => updateDisks(node.id, { ...node.spec.disks, [name]: { ...disk, allowScheduling: !disk.allowScheduling } })} />
                  <ActionButton label="Remove" danger confirm={`Remove disk ${name} from ${node.id}?`} run={() => updateDisks(node.id, others)} />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <AddDisk node={node} />
    </section>
  );
}

export function NodesPage() {
  const nodes = useCollection<NodeView>('Node');
  return (
    <>
      <PageTitle>Nodes and disks</PageTitle>
      {nodes.items.length === 0 && !nodes.loading && <p>No nodes have registered. Start a node agent (<code>shorthorn node</code>).</p>}
      {nodes.items.map((n) => <NodeCard key={n.id} node={n} />)}
    </>
  );
}
