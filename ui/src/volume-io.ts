// A volume's I/O counters from /metrics, and the per-second rates between two readings of them
// (pure: the volume page's poller feeds it, the charts draw what it returns).
import { parseMetrics } from './prometheus-text.ts';

/** The counters since the volume's engine started (docs/api.md, "Metrics"). */
export interface IoCounters {
  readonly readOps: number;
  readonly writeOps: number;
  readonly readBytes: number;
  readonly writeBytes: number;
  readonly readLatencySeconds: number;
  readonly writeLatencySeconds: number;
}

export type VolumeIoReading =
  | { readonly kind: 'counters'; readonly counters: IoCounters }
  | { readonly kind: 'engine-silent' } // shorthorn_volume_io_scrape_error 1
  | { readonly kind: 'absent' }; // no engine asked: the volume is not attached

const counterNames: Readonly<Record<keyof IoCounters, string>> = {
  readOps: 'shorthorn_volume_read_operations_total',
  writeOps: 'shorthorn_volume_write_operations_total',
  readBytes: 'shorthorn_volume_read_bytes_total',
  writeBytes: 'shorthorn_volume_write_bytes_total',
  readLatencySeconds: 'shorthorn_volume_read_latency_seconds_total',
  writeLatencySeconds: 'shorthorn_volume_write_latency_seconds_total',
};

export function volumeIoReading(metricsText: string, volume: string): VolumeIoReading {
  const own = parseMetrics(metricsText).filter((s) => s.labels['volume'] === volume);
  const scrapeError = own.find((s) => s.name === 'shorthorn_volume_io_scrape_error');
  if (scrapeError === undefined) return { kind: 'absent' };
  if (scrapeError.value !== 0) return { kind: 'engine-silent' };
  const values: Partial<Record<keyof IoCounters, number>> = {};
  for (const [key, name] of Object.entries(counterNames) as [keyof IoCounters, string][]) {
    const value = own.find((s) => s.name === name)?.value;
    // A missing or NaN counter cannot give a rate; treat the reading as the engine not answering.
    if (value === undefined || !Number.isFinite(value)) return { kind: 'engine-silent' };
    values[key] = value;
  }
  return { kind: 'counters', counters: values as IoCounters };
}

/** Rates over one interval between readings; latency is undefined when no operation finished. */
export interface IoRates {
  readonly atMs: number;
  readonly readIops: number;
  readonly writeIops: number;
  readonly readMiBps: number;
  readonly writeMiBps: number;
  readonly readLatencyMs: number | undefined;
  readonly writeLatencyMs: number | undefined;
}

export interface IoHistory {
  readonly last: { readonly atMs: number; readonly counters: IoCounters } | undefined;
  readonly rates: readonly IoRates[];
}

export const emptyIoHistory: IoHistory = { last: undefined, rates: [] };

/** How far back the charts go. */
export const ioWindowMs = 120_000;

const mib = 1024 * 1024;

function meanLatencyMs(latencySeconds: number, ops: number): number | undefined {
  return ops > 0 ? (latencySeconds / ops) * 1000 : undefined;
}

/**
 * Add a reading. A counter lower than before means the engine restarted (its counters begin at
 * 0 again): that interval gives no rate, and the next one starts from the new reading, so a rate
 * is never negative. Rates older than the window are dropped.
 */
export function addIoReading(history: IoHistory, counters: IoCounters, atMs: number): IoHistory {
  const kept = history.rates.filter((r) => r.atMs > atMs - ioWindowMs);
  const last = history.last;
  const next = { atMs, counters };
  if (last === undefined || atMs <= last.atMs) return { last: next, rates: kept };
  const delta = (key: keyof IoCounters): number => counters[key] - last.counters[key];
  const keys = Object.keys(counterNames) as (keyof IoCounters)[];
  if (keys.some((key) => delta(key) < 0)) return { last: next, rates: kept };
  const seconds = (atMs - last.atMs) / 1000;
  const rates: IoRates = {
    atMs,
    readIops: delta('readOps') / seconds,
    writeIops: delta('writeOps') / seconds,
    readMiBps: delta('readBytes') / mib / seconds,
    writeMiBps: delta('writeBytes') / mib / seconds,
    readLatencyMs: meanLatencyMs(delta('readLatencySeconds'), delta('readOps')),
    writeLatencyMs: meanLatencyMs(delta('writeLatencySeconds'), delta('writeOps')),
  };
  return { last: next, rates: [...kept, rates] };
}
