// The volume page's I/O charts compute in two pure modules (the UI's own build bundles them for
// the browser); they are checked here, under Node, with the same strict compiler settings.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMetricLine, parseMetrics } from '../../ui/src/prometheus-text.ts';
import { addIoReading, emptyIoHistory, ioWindowMs, volumeIoReading, type IoCounters } from '../../ui/src/volume-io.ts';

test('a metric line: labels with escaped values, NaN, Inf, a timestamp', () => {
  assert.deepEqual(parseMetricLine('shorthorn_node_count_total 3'), { name: 'shorthorn_node_count_total', labels: {}, value: 3 });
  assert.deepEqual(parseMetricLine('m{volume="a\\"b\\\\c\\nd",node="n-1"} 1.5e3 1700000000000'),
    { name: 'm', labels: { volume: 'a"b\\c\nd', node: 'n-1' }, value: 1500 });
  assert.deepEqual(parseMetricLine('m{volume="v",} 2'), { name: 'm', labels: { volume: 'v' }, value: 2 });
  assert.ok(Number.isNaN(parseMetricLine('m{a="b"} NaN')?.value));
  assert.equal(parseMetricLine('m +Inf')?.value, Number.POSITIVE_INFINITY);
  assert.equal(parseMetricLine('m{a="x,y}"} -Inf')?.labels['a'], 'x,y}');
  for (const junk of ['', '# HELP m help', '# TYPE m counter', 'm{a="b" 1', 'm{a=b} 1', 'm', 'm abc', '{a="b"} 1', 'm{a="b"}']) {
    assert.equal(parseMetricLine(junk), undefined, junk);
  }
});

// Label values escaped as the API's exporter writes them.
const exposition = (name: string, w: number): string => {
  const volume = name.replace(/["\\]/g, '\\$&');
  return `# HELP shorthorn_volume_write_operations_total Writes
# TYPE shorthorn_volume_write_operations_total counter
shorthorn_volume_io_scrape_error{volume="${volume}",node="node-1"} 0
shorthorn_volume_read_operations_total{volume="${volume}",node="node-1"} 4
shorthorn_volume_write_operations_total{node="node-1",volume="${volume}"} ${w}
shorthorn_volume_read_bytes_total{volume="${volume}",node="node-1"} 16384
shorthorn_volume_write_bytes_total{volume="${volume}",node="node-1"} ${w * 65536}
shorthorn_volume_read_latency_seconds_total{volume="${volume}",node="node-1"} 0.004
shorthorn_volume_write_latency_seconds_total{volume="${volume}",node="node-1"} ${w * 0.002}
shorthorn_volume_rebuild_progress_percent{volume="${volume}",replica="r-1"} NaN
`;
};

test('a volume\'s reading: its counters, a silent engine, no engine, other volumes ignored', () => {
  const text = exposition('v"1', 10) + exposition('other', 99) + 'not a metric line {\n';
  assert.equal(parseMetrics(text).length, 16);
  assert.deepEqual(volumeIoReading(text, 'v"1'), {
    kind: 'counters',
    counters: { readOps: 4, writeOps: 10, readBytes: 16384, writeBytes: 655360, readLatencySeconds: 0.004, writeLatencySeconds: 0.02 },
  });
  assert.deepEqual(volumeIoReading(text, 'missing'), { kind: 'absent' });
  assert.deepEqual(volumeIoReading('shorthorn_volume_io_scrape_error{volume="v",node="n"} 1\n', 'v'), { kind: 'engine-silent' });
  // A counter that is NaN gives no rate: shown as the engine not answering rather than a wrong number.
  assert.deepEqual(volumeIoReading(exposition('v', 1).replace(/(write_bytes_total\{[^}]*\}) \d+/, '$1 NaN'), 'v'), { kind: 'engine-silent' });
});

const counters = (writeOps: number, more: Partial<IoCounters> = {}): IoCounters => ({
  readOps: 0, writeOps, readBytes: 0, writeBytes: writeOps * 1024 * 1024, readLatencySeconds: 0, writeLatencySeconds: writeOps * 0.003, ...more,
});

test('rates per second between readings; an engine restart starts again, never negative', () => {
  let history = addIoReading(emptyIoHistory, counters(100), 0);
  assert.equal(history.rates.length, 0, 'one reading gives no rate');
  history = addIoReading(history, counters(120), 2000);
  const { writeLatencyMs, ...rest } = history.rates[0] ?? { writeLatencyMs: undefined };
  assert.deepEqual(rest, { atMs: 2000, readIops: 0, writeIops: 10, readMiBps: 0, writeMiBps: 10, readLatencyMs: undefined });
  assert.ok(writeLatencyMs !== undefined && Math.abs(writeLatencyMs - 3) < 1e-9, `mean write latency ${writeLatencyMs}`);
  // The engine restarted: its counters are lower; no rate for that interval, counting resumes.
  history = addIoReading(history, counters(5), 4000);
  assert.equal(history.rates.length, 1);
  history = addIoReading(history, counters(9), 6000);
  assert.equal(history.rates.at(-1)?.writeIops, 2);
  assert.ok(history.rates.every((r) => r.writeIops >= 0 && r.writeMiBps >= 0));
  // A reading not later than the last one (a clock step) gives no rate either.
  assert.equal(addIoReading(history, counters(20), 6000).rates.length, 2);
});

test('rates older than the window are dropped', () => {
  let history = emptyIoHistory;
  for (let i = 0; i <= 100; i++) history = addIoReading(history, counters(i), i * 2000);
  const newest = history.rates.at(-1)?.atMs ?? 0;
  assert.ok(history.rates.every((r) => r.atMs > newest - ioWindowMs));
  assert.equal(history.rates.length, ioWindowMs / 2000);
});
