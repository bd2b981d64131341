// A small parser for the Prometheus text format that GET /metrics answers, enough for the volume
// page's I/O charts: one sample per line, labels with escaped values, NaN and ±Inf. Comments,
// blank lines and lines it cannot read are skipped, not fatal: the page needs a few series and
// must not break when the API exports more.

export interface MetricSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const namePattern = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const labelNamePattern = /^[a-zA-Z_][a-zA-Z0-9_]*/;

/** Label values escape only \\, \" and \n (the format's own rule). */
function unescapeLabelValue(raw: string): string {
  return raw.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseValue(text: string): number | undefined {
  switch (text) {
    case 'NaN': return Number.NaN;
    case '+Inf': case 'Inf': return Number.POSITIVE_INFINITY;
    case '-Inf': return Number.NEGATIVE_INFINITY;
  }
  if (text === '' || !/^[-+0-9.eE]+$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isNaN(value) ? undefined : value;
}

/** One line, or undefined for a comment, a blank line or a line that is not a sample. */
export function parseMetricLine(line: string): MetricSample | undefined {
  const text = line.trim();
  if (text === '' || text.startsWith('#')) return undefined;
  const name = namePattern.exec(text)?.[0];
  if (name === undefined) return undefined;
  let rest = text.slice(name.length);
  const labels: Record<string, string> = {};
  if (rest.startsWith('{')) {
    rest = rest.slice(1);
    for (;;) {
      rest = rest.trimStart();
      if (rest.startsWith('}')) { rest = rest.slice(1); break; }
      const labelName = labelNamePattern.exec(rest)?.[0];
      if (labelName === undefined) return undefined;
      rest = rest.slice(labelName.length).trimStart();
      if (!rest.startsWith('="')) return undefined;
      rest = rest.slice(2);
      // The value ends at the first quote not escaped by a backslash.
      const end = /^(?:[^"\\]|\\.)*"/.exec(rest);
      if (end === null) return undefined;
      labels[labelName] = unescapeLabelValue(end[0].slice(0, -1));
      rest = rest.slice(end[0].length).trimStart();
      if (rest.startsWith(',')) rest = rest.slice(1);
      else if (!rest.startsWith('}')) return undefined;
    }
  }
  // Value, then an optional timestamp, which the charts do not need (they time samples themselves).
  const fields = rest.trim().split(/\s+/);
  const value = parseValue(fields[0] ?? '');
  return value === undefined ? undefined : { name, labels, value };
}

export function parseMetrics(text: string): MetricSample[] {
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    const sample = parseMetricLine(line);
    if (sample !== undefined) samples.push(sample);
  }
  return samples;
}
