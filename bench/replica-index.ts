// Replica index benchmark: memory of the resolved extent index for a fresh 1 TiB volume, 10 GiB
// written sequentially, and 1 GiB of random 4 KiB writes over 1 TiB (262,144 extents); and random
// 4 KiB read latency at chain depth 1 vs 1000 on real files, alternating, median of rounds.
// Run: npx tsc -p tsconfig.json && node dist/bench/replica-index.js [--rounds N] [--reads N]
// Results: bench/results/replica-index-<time>.json and .md.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManualClock } from '../src/lib/clock.ts';
import { SeededRandom } from '../src/lib/random.ts';
import { MemoryReplicaFiles } from '../src/replica/memory-replica-files.ts';
import { NodeReplicaFiles } from '../src/replica/node/node-replica-files.ts';
import { createReplicaStore, type LayeredReplicaStore } from '../src/replica/layered-store.ts';
import type { FileOpenMode, ReplicaFile, ReplicaFiles } from '../src/replica/replica-files.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;
const block = 4 * KiB;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** Layer data files that keep nothing (so 10 GiB of writes cost no RAM); metadata and journals are real memory files. */
class SinkDataFiles implements ReplicaFiles {
  private readonly inner = new MemoryReplicaFiles();
  open(path: string, mode: FileOpenMode): Promise<ReplicaFile> {
    if (!path.endsWith('.data')) return this.inner.open(path, mode);
    let size = 0;
    const file: ReplicaFile = {
      read: (target) => Promise.resolve(target.fill(0).length),
      write: (data, at) => Promise.resolve(void (size = Math.max(size, at + data.length))),
      sync: () => Promise.resolve(),
      truncate: (n) => Promise.resolve(void (size = n)),
      sizeBytes: () => Promise.resolve(size),
      close: () => Promise.resolve(),
    };
    return Promise.resolve(file);
  }
  list(dir: string): Promise<string[]> {
    return this.inner.list(dir);
  }
  mkdir(dir: string): Promise<void> {
    return this.inner.mkdir(dir);
  }
  rename(from: string, to: string): Promise<void> {
    return this.inner.rename(from, to);
  }
  remove(path: string): Promise<void> {
    return this.inner.remove(path);
  }
  syncDir(dir: string): Promise<void> {
    return this.inner.syncDir(dir);
  }
}

interface IndexCase {
  readonly name: string;
  readonly goalBytes: number;
  indexBytes: number;
  extents: number;
  /** Process heap + array buffers grown while the case ran (noisy; the index figure is exact). */
  heapDeltaBytes: number;
  seconds: number;
}

function heapBytes(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

async function indexCase(name: string, goalBytes: number, body: (store: LayeredReplicaStore) => Promise<void>): Promise<IndexCase> {
  (globalThis as { gc?: () => void }).gc?.();
  const before = heapBytes();
  const start = performance.now();
  const store = await createReplicaStore({ dir: '/r', files: new SinkDataFiles(), clock: new ManualClock(), volumeName: 'bench', sizeBytes: TiB });
  await body(store);
  await store.flush();
  (globalThis as { gc?: () => void }).gc?.();
  const result = { name, goalBytes, indexBytes: store.indexMemoryBytes(), extents: store.indexExtentCount(), heapDeltaBytes: heapBytes() - before, seconds: (performance.now() - start) / 1000 };
  await store.close();
  return result;
}

async function indexCases(): Promise<IndexCase[]> {
  const sequential = new Uint8Array(MiB);
  const small = new Uint8Array(block);
  return [
    await indexCase('fresh 1 TiB volume', MiB, () => Promise.resolve()),
    await indexCase('10 GiB written sequentially (1 MiB writes)', MiB, async (store) => {
      for (let at = 0; at < 10 * GiB; at += MiB) await store.write(at, sequential);
    }),
    await indexCase('1 GiB of random 4 KiB writes over 1 TiB', 8 * MiB, async (store) => {
      const random = new SeededRandom(42);
      for (let i = 0; i < GiB / block; i++) {
        await store.write(random.int(TiB / block) * block, small);
        if (i % 4096 === 4095) await store.flush();
      }
    }),
  ];
}

/** A chain of `depth` layers on real files; the same 64,000 blocks of data spread over them. */
async function buildChain(dir: string, depth: number): Promise<{ store: LayeredReplicaStore; blocks: number[] }> {
  const store = await createReplicaStore({ dir, files: new NodeReplicaFiles(), clock: new ManualClock(), volumeName: 'bench', sizeBytes: 4 * GiB });
  const random = new SeededRandom(7);
  const blocks: number[] = [];
  const total = 64_000;
  const data = new Uint8Array(block);
  for (let layer = 0; layer < depth; layer++) {
    for (let i = Math.floor((layer * total) / depth); i < Math.floor(((layer + 1) * total) / depth); i++) {
      const b = random.int((4 * GiB) / block);
      data[0] = i & 0xff;
      await store.write(b * block, data);
      blocks.push(b);
    }
    await store.snapshot({ name: `s${layer}`, kind: 'system' });
  }
  await store.flush();
  return { store, blocks };
}

async function readLatency(store: LayeredReplicaStore, blocks: readonly number[], reads: number, seed: number): Promise<{ medianUs: number; p99Us: number }> {
  const random = new SeededRandom(seed);
  const samples: number[] = [];
  for (let i = 0; i < reads; i++) {
    const b = blocks[random.int(blocks.length)]!;
    const t0 = performance.now();
    await store.read(b * block, block);
    samples.push((performance.now() - t0) * 1000);
  }
  samples.sort((a, b) => a - b);
  return { medianUs: samples[Math.floor(samples.length / 2)]!, p99Us: samples[Math.floor(samples.length * 0.99)]! };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  const rounds = arg('rounds', 5);
  const reads = arg('reads', 20_000);
  const cases = await indexCases();
  for (const c of cases) console.log(`${c.name}: index ${(c.indexBytes / KiB).toFixed(1)} KiB, ${c.extents} extents (goal ≤ ${c.goalBytes / MiB} MiB) in ${c.seconds.toFixed(1)} s`);

  const root = mkdtempSync(join(tmpdir(), 'shorthorn-bench-'));
  try {
    const shallow = await buildChain(join(root, 'depth1'), 1);
    const deep = await buildChain(join(root, 'depth1000'), 1000);
    // Warm the page cache and the open-file cache, then alternate depths.
    await readLatency(shallow.store, shallow.blocks, reads, 1);
    await readLatency(deep.store, deep.blocks, reads, 1);
    const r1: { medianUs: number; p99Us: number }[] = [];
    const r1000: { medianUs: number; p99Us: number }[] = [];
    for (let round = 0; round < rounds; round++) {
      r1.push(await readLatency(shallow.store, shallow.blocks, reads, 100 + round));
      r1000.push(await readLatency(deep.store, deep.blocks, reads, 100 + round));
    }
    const latency = {
      depth1: { medianUs: median(r1.map((r) => r.medianUs)), p99Us: median(r1.map((r) => r.p99Us)) },
      depth1000: { medianUs: median(r1000.map((r) => r.medianUs)), p99Us: median(r1000.map((r) => r.p99Us)) },
      depth1000IndexBytes: deep.store.indexMemoryBytes(),
      depth1000Extents: deep.store.indexExtentCount(),
      reads,
      rounds,
    };
    const ratio = latency.depth1000.medianUs / latency.depth1.medianUs;
    console.log(`random 4 KiB read, median of ${rounds} rounds × ${reads}: depth 1 ${latency.depth1.medianUs.toFixed(1)} µs (p99 ${latency.depth1.p99Us.toFixed(1)}), depth 1000 ${latency.depth1000.medianUs.toFixed(1)} µs (p99 ${latency.depth1000.p99Us.toFixed(1)}), ratio ${ratio.toFixed(3)}`);
    await shallow.store.close();
    await deep.store.close();

    const outDir = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'bench', 'results');
    mkdirSync(outDir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const result = { when: new Date().toISOString(), node: process.version, cases, latency: { ...latency, ratio }, peakRssBytes: process.resourceUsage().maxRSS * 1024 };
    writeFileSync(join(outDir, `replica-index-${stamp}.json`), `${JSON.stringify(result, null, 2)}\n`);
    const md = [
      `# Replica index benchmark (${result.when}, Node ${result.node})`,
      '',
      '| case | index memory | extents | goal |',
      '| --- | --- | --- | --- |',
      ...cases.map((c) => `| ${c.name} | ${(c.indexBytes / KiB).toFixed(1)} KiB | ${c.extents} | ≤ ${c.goalBytes / MiB} MiB |`),
      '',
      `Random 4 KiB reads (iodepth 1, real files, page cache warm), median of ${rounds} rounds × ${reads} reads:`,
      '',
      '| chain depth | median µs | p99 µs |',
      '| --- | --- | --- |',
      `| 1 | ${latency.depth1.medianUs.toFixed(1)} | ${latency.depth1.p99Us.toFixed(1)} |`,
      `| 1000 | ${latency.depth1000.medianUs.toFixed(1)} | ${latency.depth1000.p99Us.toFixed(1)} |`,
      '',
      `Ratio depth 1000 / depth 1 (median): ${ratio.toFixed(3)} (goal ≤ 1.2). Peak RSS ${(result.peakRssBytes / MiB).toFixed(0)} MiB.`,
      '',
    ].join('\n');
    writeFileSync(join(outDir, `replica-index-${stamp}.md`), md);
    console.log(`results: bench/results/replica-index-${stamp}.{json,md}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
