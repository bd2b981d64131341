// The volume page's live I/O: read and write IOPS, MiB/s and mean latency over the last two
// minutes, as small inline SVG charts with the latest values as text (what a screen reader reads).
import { Notice } from '../components.tsx';
import { ioPollMs, useVolumeIo, type VolumeIo } from '../use-volume-io.ts';
import { ioWindowMs, type IoRates } from '../volume-io.ts';

const width = 240;
const height = 64;
const pad = 3; // so the end dots and thick lines are not clipped

interface Series {
  readonly label: string;
  readonly testId: string;
  readonly value: (r: IoRates) => number | undefined;
}

interface Chart {
  readonly title: string;
  readonly unit: string;
  readonly read: Series;
  readonly write: Series;
}

const charts: readonly Chart[] = [
  { title: 'IOPS', unit: 'operations/s', read: { label: 'Read', testId: 'io-read-iops', value: (r) => r.readIops }, write: { label: 'Write', testId: 'io-write-iops', value: (r) => r.writeIops } },
  { title: 'Throughput', unit: 'MiB/s', read: { label: 'Read', testId: 'io-read-mibps', value: (r) => r.readMiBps }, write: { label: 'Write', testId: 'io-write-mibps', value: (r) => r.writeMiBps } },
  { title: 'Mean latency', unit: 'ms', read: { label: 'Read', testId: 'io-read-latency', value: (r) => r.readLatencyMs }, write: { label: 'Write', testId: 'io-write-latency', value: (r) => r.writeLatencyMs } },
];

export function formatRate(value: number | undefined): string {
  if (value === undefined) return '–';
  if (value === 0) return '0';
  return value >= 100 ? String(Math.round(value)) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

/**
 * SVG polylines for one series; an interval without a value (no operation, so no latency)
 * breaks the line rather than drawing a false zero. Time runs from startMs (left) to endMs.
 */
export function seriesLines(rates: readonly IoRates[], value: Series['value'], options: { startMs: number; endMs: number; max: number }): string[] {
  const lines: string[] = [];
  let current: string[] = [];
  for (const r of rates) {
    const v = value(r);
    if (v === undefined) {
      if (current.length > 0) lines.push(current.join(' '));
      current = [];
      continue;
    }
    const x = pad + ((r.atMs - options.startMs) / Math.max(1, options.endMs - options.startMs)) * (width - 2 * pad);
    const y = height - pad - (v / options.max) * (height - 2 * pad);
    current.push(`${x.toFixed(1)},${y.toFixed(1)}`);
  }
  if (current.length > 0) lines.push(current.join(' '));
  return lines;
}

/** The span drawn: the last 2 minutes, or less while there is less (the first reading starts it). */
export function chartSpan(rates: readonly IoRates[], intervalMs: number): { startMs: number; endMs: number } {
  const endMs = rates[rates.length - 1]?.atMs ?? 0;
  const firstMs = (rates[0]?.atMs ?? 0) - intervalMs;
  return { startMs: Math.max(endMs - ioWindowMs, firstMs), endMs };
}

function IoChart(props: { chart: Chart; rates: readonly IoRates[] }) {
  const { chart, rates } = props;
  const latest = rates[rates.length - 1];
  const span = chartSpan(rates, ioPollMs);
  const values = rates.flatMap((r) => [chart.read.value(r), chart.write.value(r)]).filter((v): v is number => v !== undefined);
  const peak = Math.max(0, ...values);
  const max = peak > 0 ? peak : 1; // all zero: a flat line at the bottom
  const label = `${chart.title} over the last 2 minutes, peak ${formatRate(peak)} ${chart.unit}`;
  return (
    <figure class="io-chart" data-testid={`io-chart-${chart.title}`}>
      <figcaption>{chart.title} <span class="muted">({chart.unit})</span></figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} width={width} height={height} role="img" aria-label={label} data-rates={rates.length}>
        {[chart.read, chart.write].map((series) => {
          const lines = seriesLines(rates, series.value, { ...span, max });
          // A dot on the newest point: a single reading is visible too.
          const [x, y] = (lines[lines.length - 1]?.split(' ').pop() ?? '').split(',');
          return (
            <g key={series.label} class={`io-${series.label.toLowerCase()}`}>
              {lines.map((points) => <polyline key={points} points={points} fill="none" stroke-width="2" />)}
              {x !== undefined && y !== undefined && <circle cx={x} cy={y} r="2.5" />}
            </g>
          );
        })}
      </svg>
      <dl class="io-values">
        {[chart.read, chart.write].map((series) => (
          <div key={series.label} class={`io-${series.label.toLowerCase()}-key`}>
            <dt>{series.label} {chart.unit}</dt>
            <dd data-testid={series.testId}>{formatRate(latest === undefined ? undefined : series.value(latest))}</dd>
          </div>
        ))}
      </dl>
    </figure>
  );
}

function stateText(io: VolumeIo): { tone: 'info' | 'warn' | 'bad'; text: string } | undefined {
  switch (io.state) {
    case 'counting': return undefined;
    case 'waiting': return { tone: 'info', text: 'Waiting for two readings of the engine\'s counters (one every 2 s)…' };
    case 'not-attached': return { tone: 'info', text: 'Not attached: there is no engine to count I/O.' };
    case 'engine-silent': return { tone: 'warn', text: 'The engine is not answering: it did not give its I/O counters at the last scrape of /metrics.' };
    case 'failed': return { tone: 'bad', text: `Cannot read /metrics: ${io.error ?? 'unknown error'}` };
  }
}

export function IoCharts(props: { volume: string; attached: boolean }) {
  const io = useVolumeIo(props.volume, props.attached);
  const note = stateText(io);
  return (
    <>
      {note === undefined
        ? <p class="muted" data-testid="io-state">Live: read from GET /metrics every 2 s while this page is visible.</p>
        : <Notice tone={note.tone} testId="io-state"><p>{note.text}</p></Notice>}
      {props.attached && (
        <div class="io-charts">
          {charts.map((chart) => <IoChart key={chart.title} chart={chart} rates={io.history.rates} />)}
        </div>
      )}
    </>
  );
}
