// The cluster at a glance: volumes by state and robustness, storage per node, recent changes.
import { Badge, PageTitle } from '../components.tsx';
import { formatBytes, formatTime } from '../format.ts';
import { live, useCollection } from '../live.ts';
import { linkTo } from '../router.ts';
import { volumeState, type NodeView, type VolumeView } from '../views.ts';

function countBy<T>(items: readonly T[], key: (item: T) => string): [string, number][] {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => a[0].localeCompare(b[0]));
}

export function nodeStorage(node: NodeView): { maximum: number; available: number; reserved: number; scheduled: number } {
  let maximum = 0;
  let available = 0;
  let reserved = 0;
  let scheduled = 0;
  for (const [name, disk] of Object.entries(node.spec.disks)) {
    const status = node.status?.diskStatus?.[name];
    reserved += disk.storageReserved;
    maximum += status?.storageMaximum ?? 0;
    available += status?.storageAvailable ?? 0;
    scheduled += status?.storageScheduled ?? 0;
  }
  return { maximum, available, reserved, scheduled };
}

export function DashboardPage() {
  const volumes = useCollection<VolumeView>('Volume');
  const nodes = useCollection<NodeView>('Node');
  const states = countBy(volumes.items, volumeState);
  const robustness = countBy(volumes.items.filter((v) => volumeState(v) === 'attached'), (v) => v.status?.robustness ?? 'unknown');
  return (
    <>
      <PageTitle>Dashboard</PageTitle>
      <div class="cards">
        <section class="card" aria-labelledby="vol-states">
          <h2 id="vol-states">Volumes ({volumes.items.length})</h2>
          {states.length === 0 ? <p>No volumes yet. <a {...linkTo('/volumes')}>Create one</a>.</p> : (
            <ul class="counts">{states.map(([state, n]) => <li key={state}><Badge value={state} /> {n}</li>)}</ul>
          )}
          <h3>Attached volumes by robustness</h3>
          {robustness.length === 0 ? <p>None attached.</p> : (
            <ul class="counts">{robustness.map(([r, n]) => <li key={r}><Badge value={r} /> {n}</li>)}</ul>
          )}
        </section>
        <section class="card wide" aria-labelledby="storage">
          <h2 id="storage">Storage by node</h2>
          <table>
            <thead><tr><th scope="col">Node</th><th scope="col">Ready</th><th scope="col">Size</th><th scope="col">Free</th><th scope="col">Scheduled</th><th scope="col">Reserved</th></tr></thead>
            <tbody>
              {nodes.items.map((node) => {
                const s = nodeStorage(node);
                const ready = node.status?.conditions?.find((c) => c.type === 'Ready')?.status;
                return (
                  <tr key={node.id}>
                    <td><a {...linkTo('/nodes')}>{node.id}</a></td>
                    <td><Badge value={ready} /></td>
                    <td>{formatBytes(s.maximum)}</td>
                    <td>{formatBytes(s.available)}</td>
                    <td>{formatBytes(s.scheduled)}</td>
                    <td>{formatBytes(s.reserved)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </section>
      </div>
      <section aria-labelledby="recent">
        <h2 id="recent">Recent changes</h2>
        <EventTable limit={12} />
      </section>
    </>
  );
}

export function EventTable(props: { limit: number; kind?: string }) {
  useCollection('Volume');
  const events = live.recentEvents.filter((e) => props.kind === undefined || props.kind === '' || e.kind === props.kind).slice(0, props.limit);
  if (events.length === 0) return <p>No changes seen since this page was opened.</p>;
  return (
    <table class="events">
      <thead><tr><th scope="col">Time</th><th scope="col">Change</th><th scope="col">Kind</th><th scope="col">Name</th><th scope="col">State</th></tr></thead>
      <tbody>
        {events.map((e) => {
          const status = e.object?.status as { state?: string; currentState?: string; robustness?: string } | undefined;
          return (
            <tr key={`${e.kind}/${e.name}/${e.resourceVersion}/${e.type}`}>
              <td>{formatTime(e.time)}</td>
              <td>{e.type}</td>
              <td>{e.kind}</td>
              <td>{e.kind === 'Volume' ? <a {...linkTo(`/volumes/${e.name}`)}>{e.name}</a> : e.name}</td>
              <td>{[status?.state ?? status?.currentState, status?.robustness].filter((x) => x !== undefined).join(', ')}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
