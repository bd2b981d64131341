// Recurring jobs (cron snapshots, backups, cleanup, trim): list with last and next run, create,
// delete, and the actions each job offers (run now). Degrades to "not available yet" while the
// API has no /v1/recurringjobs route.
import { useState } from 'preact/hooks';
import type { ResourceView } from '../../../src/api/resource-view.ts';
import { recurringJobTasks, type RecurringJobSpec, type RecurringJobStatus } from '../../../src/control/resources/recurring-job.ts';
import { apiCall, errorText, type Collection } from '../api.ts';
import { ActionButton, Badge, NotAvailable, Notice, PageTitle, useOptionalRoute } from '../components.tsx';
import { formatTime } from '../format.ts';

type RecurringJobView = ResourceView & { spec: RecurringJobSpec; status?: RecurringJobStatus };

function CreateJob(props: { onDone: () => void }) {
  const [name, setName] = useState('');
  const [task, setTask] = useState<string>('snapshot');
  const [cron, setCron] = useState('0 * * * *');
  const [retain, setRetain] = useState('5');
  const [groups, setGroups] = useState('default');
  const [error, setError] = useState<string | undefined>(undefined);
  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    setError(undefined);
    try {
      await apiCall('POST', '/v1/recurringjobs', {
        name: name.trim(), task, cron: cron.trim(), retain: Number(retain),
        groups: groups.split(',').map((g) => g.trim()).filter((g) => g !== ''),
      });
      props.onDone();
    } catch (caught) {
      setError(errorText(caught));
    }
  };
  return (
    <form class="panel form-grid" onSubmit={(e) => void submit(e)} aria-labelledby="job-create">
      <h2 id="job-create">Create a recurring job</h2>
      <label for="job-name">Name</label>
      <input id="job-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} /><small />
      <label for="job-task">Task</label>
      <select id="job-task" value={task} onChange={(e) => setTask(e.currentTarget.value)}>
        {recurringJobTasks.map((t) => <option key={t} value={t}>{t}</option>)}
      </select><small />
      <label for="job-cron">Schedule (cron, UTC)</label>
      <input id="job-cron" required value={cron} onInput={(e) => setCron(e.currentTarget.value)} aria-describedby="job-cron-help" />
      <small id="job-cron-help">minute hour day month weekday, e.g. <code>0 2 * * *</code> for 02:00 daily</small>
      <label for="job-retain">Keep</label>
      <input id="job-retain" type="number" min={0} value={retain} onInput={(e) => setRetain(e.currentTarget.value)} /><small>snapshots or backups</small>
      <label for="job-groups">Groups</label>
      <input id="job-groups" value={groups} onInput={(e) => setGroups(e.currentTarget.value)} /><small>comma-separated; <code>default</code> applies to volumes without job labels</small>
      <div class="form-actions"><button type="submit">Create</button> <button type="button" class="secondary" onClick={props.onDone}>Cancel</button></div>
      {error !== undefined && <p class="inline-error" role="alert">{error}</p>}
    </form>
  );
}

export function RecurringJobsPage() {
  const [jobs, refresh] = useOptionalRoute<Collection<RecurringJobView>>('/v1/recurringjobs', 5000);
  const [creating, setCreating] = useState(false);
  return (
    <>
      <PageTitle>Recurring jobs</PageTitle>
      {jobs.kind === 'missing' && <NotAvailable what="Recurring jobs" route="/v1/recurringjobs" />}
      {jobs.kind === 'error' && <Notice tone="bad">{jobs.message}</Notice>}
      {jobs.kind === 'ok' && (
        <>
          <div class="toolbar"><button type="button" onClick={() => setCreating(true)} disabled={creating}>Create job</button></div>
          {creating && <CreateJob onDone={() => { setCreating(false); refresh(); }} />}
          {jobs.value.data.length === 0 ? <p>No recurring jobs.</p> : (
            <table>
              <caption class="visually-hidden">Recurring jobs</caption>
              <thead><tr><th scope="col">Name</th><th scope="col">Task</th><th scope="col">Schedule</th><th scope="col">Keep</th><th scope="col">Groups</th><th scope="col">Last run</th><th scope="col">Next run</th><th scope="col">Actions</th></tr></thead>
              <tbody>
                {jobs.value.data.map((job) => (
                  <tr key={job.id}>
                    <td>{job.id}</td>
                    <td>{job.spec.task}</td>
                    <td><code>{job.spec.cron}</code></td>
                    <td>{job.spec.retain}</td>
                    <td>{job.spec.groups.join(', ')}</td>
                    <td>{job.status?.lastRunResult !== undefined && <Badge value={job.status.lastRunResult === 'Succeeded' ? 'True' : 'False'} label={job.status.lastRunResult} />} {formatTime(job.status?.lastRunFinishedAt)}
                      {job.status?.lastError !== undefined && job.status.lastError !== '' && <span class="inline-error"> {job.status.lastError}</span>}</td>
                    <td>{formatTime(job.status?.nextRunAt)}</td>
                    <td>
                      {Object.entries(job.actions).map(([name, url]) => <ActionButton key={name} label={name} run={async () => { await apiCall('POST', url, {}); refresh(); }} />)}
                      <ActionButton label="Delete" danger confirm={`Delete recurring job ${job.id}?`} run={async () => { await apiCall('DELETE', `/v1/recurringjobs/${job.id}`); refresh(); }} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </>
  );
}
