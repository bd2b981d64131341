// Every change the API has seen (its last 1000 at load, then live from the stream), filterable by kind.
import { useState } from 'preact/hooks';
import { PageTitle } from '../components.tsx';
import { streamedKinds } from '../live.ts';
import { EventTable } from './dashboard.tsx';

export function EventsPage() {
  const [kind, setKind] = useState('');
  return (
    <>
      <PageTitle>Events</PageTitle>
      <div class="toolbar">
        <label for="event-kind">Kind</label>
        <select id="event-kind" value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
          <option value="">all</option>
          {Object.keys(streamedKinds).map((k) => <option key={k} value={k}>{k}</option>)}
        </select>
      </div>
      <EventTable limit={200} kind={kind} />
    </>
  );
}
