// Per-volume I/O counters: operations, bytes and latency, for status and metrics.

export interface IoStatsSnapshot {
  readonly count: number;
  readonly bytes: number;
  readonly errors: number;
  readonly latencyMsTotal: number;
  readonly latencyMsMax: number;
}

export class IoStats {
  private count = 0;
  private bytes = 0;
  private errors = 0;
  private latencyMsTotal = 0;
  private latencyMsMax = 0;

  record(bytes: number, latencyMs: number): void {
    this.count += 1;
    this.bytes += bytes;
    this.latencyMsTotal += latencyMs;
    if (latencyMs > this.latencyMsMax) this.latencyMsMax = latencyMs;
  }

  recordError(): void {
    this.errors += 1;
  }

  snapshot(): IoStatsSnapshot {
    const { count, bytes, errors, latencyMsTotal, latencyMsMax } = this;
    return { count, bytes, errors, latencyMsTotal, latencyMsMax };
  }
}
