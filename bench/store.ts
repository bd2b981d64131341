// Store benchmark: creates and updates per second, and watch latency (update call → event
// delivered) for the embedded SQLite store and etcd, alternating backends over several rounds and
// reporting the median round. Run: npx tsc -p tsconfig.json && node dist/bench/store.js [--rounds N]
// Results: bench/results/store-<time>.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EtcdStore } from '../src/control/store/etcd-store.ts';
import { SqliteStore } from '../src/control/store/sqlite-store.ts';
import type { ResourceStore, WatchEvent } from '../src/control/store/resource-store.ts';
import type { Resource } from '../src/control/resources/object-meta.ts';
import { startEtcd, type EtcdServer } from '../test/harness/etcd.ts';

const objectCount = 500;
const latencySamples = 300;
const concurrency = 16;

interface RoundResult {
  createsPerSec: number;
  updatesPerSec: number;
  concurrentUpdatesPerSec: number;
  watchSameInstance: { medianMs: number; p99Ms: number };
  watchOtherInstance: { medianMs: number; p99Ms: number };
}

interface Backend {
  readonly name: string;
  /** Two instances on one fresh, empty data set (the second as another process would be). */
  open(): Promise<{ a: ResourceStore; b: ResourceStore; dispose(): Promise<void> }>;
}

const volume = (name: string, i: number): Resource => ({
  apiVersion: 'shorthorn.io/v1', kind: 'Volume', metadata: { name, labels: { app: 'bench' } },
  spec: { size: 1024 ** 3, replicas: 3, i, note: 'x'.repeat(512) },
});

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))] ?? NaN;
}

async function watchLatency(writer: ResourceStore, watcher: ResourceStore, prefix: string): Promise<{ medianMs: number; p99Ms: number }> {
  let current = await writer.create(volume(`${prefix}-lat`, 0));
  const watch = watcher.watch('Volume', { resourceVersion: current.metadata.resourceVersion ?? '' });
  const it = watch[Symbol.asyncIterator]();
  const samples: number[] = [];
  for (let i = 0; i < latencySamples; i++) {
    const start = performance.now();
    const update = writer.update({ ...current, spec: { ...(current.spec as object), i: i + 1 } });
    let event: WatchEvent | undefined;
    do {
      const next = await it.next();
      if (next.done === true) throw new Error('watch ended');
      event = next.value;
    } while (event.object.metadata.name !== `${prefix}-lat`);
    samples.push(performance.now() - start);
    current = await update;
  }
  watch.close();
  samples.sort((x, y) => x - y);
  return { medianMs: percentile(samples, 0.5), p99Ms: percentile(samples, 0.99) };
}

async function round(backend: Backend): Promise<RoundResult> {
  const opened = await backend.open();
  const { a, b } = opened;
  try {
    let t = performance.now();
    const created: Resource[] = [];
    for (let i = 0; i < objectCount; i++) created.push(await a.create(volume(`v${i}`, i)));
    const createsPerSec = objectCount / ((performance.now() - t) / 1000);
    t = performance.now();
    for (let i = 0; i < objectCount; i++) created[i] = await a.update({ ...created[i]!, spec: { ...(created[i]!.spec as object), i: i + 1 } });
    const updatesPerSec = objectCount / ((performance.now() - t) / 1000);
    t = performance.now();
    let done = 0;
    await Promise.all(Array.from({ length: concurrency }, async (_, w) => {
      for (let i = w; i < objectCount; i += concurrency) {
        created[i] = await a.update({ ...created[i]!, spec: { ...(created[i]!.spec as object), i: i + 2 } });
        done++;
      }
    }));
    const concurrentUpdatesPerSec = done / ((performance.now() - t) / 1000);
    process.stderr.write(`${backend.name}: writes done\n`);
    const watchSameInstance = await watchLatency(a, a, 'same');
    const watchOtherInstance = await watchLatency(a, b, 'other');
    return { createsPerSec, updatesPerSec, concurrentUpdatesPerSec, watchSameInstance, watchOtherInstance };
  } finally {
    await a.close();
    await b.close();
    await opened.dispose();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

async function main(): Promise<void> {
  const roundsArg = process.argv.indexOf('--rounds');
  const rounds = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 3;
  const etcd: EtcdServer = await startEtcd();
  let prefixes = 0;
  const backends: Backend[] = [
    {
      name: 'embedded',
      open() {
        const dataDir = mkdtempSync(join(tmpdir(), 'shorthorn-bench-'));
        return Promise.resolve({
          a: new SqliteStore({ dataDir }),
          b: new SqliteStore({ dataDir }),
          dispose: () => Promise.resolve(rmSync(dataDir, { recursive: true, force: true })),
        });
      },
    },
    {
      name: 'etcd',
      open() {
        const prefix = `/bench-${prefixes++}`;
        return Promise.resolve({
          a: new EtcdStore({ endpoints: [etcd.endpoint], prefix }),
          b: new EtcdStore({ endpoints: [etcd.endpoint], prefix }),
          dispose: () => Promise.resolve(),
        });
      },
    },
  ];
  const results = new Map<string, RoundResult[]>(backends.map((x) => [x.name, []]));
  try {
    for (let r = 0; r < rounds; r++) {
      for (const backend of backends) {
        const result = await round(backend);
        results.get(backend.name)!.push(result);
        process.stderr.write(`round ${r + 1}/${rounds} ${backend.name}: ${JSON.stringify(result)}\n`);
      }
    }
  } finally {
    await etcd.stop();
  }
  const summary = Object.fromEntries([...results].map(([name, list]) => [name, {
    createsPerSec: Math.round(median(list.map((x) => x.createsPerSec))),
    updatesPerSec: Math.round(median(list.map((x) => x.updatesPerSec))),
    concurrentUpdatesPerSec: Math.round(median(list.map((x) => x.concurrentUpdatesPerSec))),
    watchSameInstanceMedianMs: +median(list.map((x) => x.watchSameInstance.medianMs)).toFixed(2),
    watchSameInstanceP99Ms: +median(list.map((x) => x.watchSameInstance.p99Ms)).toFixed(2),
    watchOtherInstanceMedianMs: +median(list.map((x) => x.watchOtherInstance.medianMs)).toFixed(2),
    watchOtherInstanceP99Ms: +median(list.map((x) => x.watchOtherInstance.p99Ms)).toFixed(2),
  }]));
  const report = {
    date: new Date().toISOString(), node: process.version, rounds, objectCount, latencySamples, concurrency,
    note: 'embedded: SQLite WAL, synchronous=FULL, poll interval 20 ms for other instances; etcd 3.4 on 127.0.0.1, one member',
    summary, rounds_raw: Object.fromEntries(results),
  };
  const dir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `store-${report.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  console.table(summary);
  console.log(`written to ${file}`);
}

await main();
