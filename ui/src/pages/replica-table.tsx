// A volume's replicas: node, disk, process state, mode in the engine's write set, and rebuild
// progress with an estimate of the time left, from the progress seen since the page opened.
import { Badge } from '../components.tsx';
import { formatDuration } from '../format.ts';
import { replicaMode } from '../explain.ts';
import type { EngineView, ReplicaView } from '../views.ts';

interface Sample {
  readonly atMs: number;
  readonly progress: number;
}

/** Rebuild progress samples per replica, kept across renders (bounded per replica). */
const samples = new Map<string, Sample[]>();
const samplesMax = 120;

export function recordProgress(replica: string, progress: number, nowMs: number): readonly Sample[] {
  const list = samples.get(replica) ?? [];
  const last = list[list.length - 1];
  if (last !== undefined && progress < last.progress) list.length = 0; // a new rebuild started
  if (last === undefined || last.progress !== progress || list.length === 0) list.push({ atMs: nowMs, progress });
  if (list.length > samplesMax) list.splice(0, list.length - samplesMax);
  samples.set(replica, list);
  return list;
}

/** Time left at the average rate over the samples; undefined until there are two. */
export function etaMs(list: readonly Sample[], nowMs: number): number | undefined {
  const first = list[0];
  const last = list[list.length - 1];
  if (first === undefined || last === undefined || last.progress <= first.progress) return undefined;
  const rate = (last.progress - first.progress) / Math.max(1, nowMs - first.atMs);
  return (100 - last.progress) / rate;
}

export function ProgressChart(props: { samples: readonly Sample[]; label: string }) {
  const first = props.samples[0];
  if (first === undefined || props.samples.length < 2) return null;
  const spanMs = Math.max(1, (props.samples[props.samples.length - 1]?.atMs ?? first.atMs) - first.atMs);
  const points = props.samples.map((s) => `${((s.atMs - first.atMs) / spanMs) * 200},${40 - (s.progress / 100) * 40}`).join(' ');
  return (
    <svg class="spark" viewBox="0 0 200 40" width="200" height="40" role="img" aria-label={props.label}>
      <polyline points={points} fill="none" stroke="currentColor" stroke-width="2" />
    </svg>
  );
}

export function ReplicaTable(props: { replicas: readonly ReplicaView[]; engine: EngineView | undefined }) {
  const now = Date.now();
  return (
    <table data-testid="replica-table">
      <caption class="visually-hidden">Replicas</caption>
      <thead>
        <tr><th scope="col">Replica</th><th scope="col">Node</th><th scope="col">Disk</th><th scope="col">Process</th><th scope="col">Mode</th><th scope="col">Rebuild</th></tr>
      </thead>
      <tbody>
        {props.replicas.map((r) => {
          const mode = replicaMode(r, props.engine);
          const rebuild = props.engine?.status?.rebuildStatus?.[r.id];
          const rebuilding = mode === 'WO' || rebuild?.isRebuilding === true;
          const progress = rebuild?.progress ?? 0;
          const list = rebuilding ? recordProgress(r.id, progress, now) : [];
          const eta = rebuilding ? etaMs(list, now) : undefined;
          return (
            <tr key={r.id} data-testid={`replica-${r.id}`}>
              <td>{r.id}</td>
              <td>{r.spec.nodeID ?? '–'}</td>
              <td>{r.spec.diskPath ?? '–'}</td>
              <td><Badge value={r.status?.currentState} />{r.spec.failedAt !== undefined && <> <Badge value="error" label="failed" /></>}</td>
              <td><Badge value={mode === 'none' ? undefined : mode} label={mode === 'WO' ? 'WO (rebuilding)' : mode === 'none' ? 'not in engine' : mode} /></td>
              <td>
                {rebuilding ? (
                  <span class="rebuild" data-testid="rebuild-progress">
                    <progress max={100} value={progress} aria-label={`Rebuild of ${r.id}`} /> {progress}%
                    {eta !== undefined && <span class="muted"> · about {formatDuration(eta)} left</span>}
                    <ProgressChart samples={list} label={`Rebuild progress of ${r.id} over time`} />
                  </span>
                ) : rebuild?.error !== undefined ? <span class="inline-error">{rebuild.error}</span> : '–'}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
