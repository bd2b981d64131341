// CPU per file operation of the replica's file driver alone (no sockets, no store): random 4 KiB
// reads and writes at a fixed queue depth on one file, with the shorthorn_file_io addon and with
// node:fs only, alternating. CPU is this process's utime+stime (process.cpuUsage), libuv's pool
// threads included, so it holds up on a machine loaded by other work better than ops/s does.
//
//   node dist/bench/replica-file-io.js [--rounds 3] [--ops 50000] [--depth 64] [--size-mib 256] [--dir DIR]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nativeFileIo } from '../src/replica/node/native-file-io.ts';
import { NodeReplicaFiles } from '../src/replica/node/node-replica-files.ts';
import type { ReplicaFile } from '../src/replica/replica-files.ts';

interface Sample {
  readonly cpuUsPerOp: number;
  readonly opsPerSecond: number;
}

async function runOps(file: ReplicaFile, options: { isWrite: boolean; ops: number; depth: number; blocks: number }): Promise<Sample> {
  let next = 0;
  let seed = 12345;
  const rand = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed;
  };
  const worker = async (): Promise<void> => {
    const buffer = new Uint8Array(4096);
    while (next < options.ops) {
      next++;
      const position = (rand() % options.blocks) * 4096;
      if (options.isWrite) await file.write(buffer, position);
      else await file.read(buffer, position);
    }
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: options.depth }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { cpuUsPerOp: (cpu.user + cpu.system) / options.ops, opsPerSecond: options.ops / seconds };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      ops: { type: 'string', default: '50000' },
      depth: { type: 'string', default: '64' },
      'size-mib': { type: 'string', default: '256' },
      dir: { type: 'string', default: tmpdir() },
    },
  });
  const load = nativeFileIo();
  if (load.kind !== 'loaded') throw new Error(`the addon is not loaded: ${load.reason}`);
  const sizeBytes = Number(values['size-mib']) * 1024 * 1024;
  const ops = Number(values.ops);
  const depth = Number(values.depth);
  const dir = await mkdtemp(join(values.dir, 'shorthorn-bench-file-io-'));
  const modes = [
    { name: 'addon', files: new NodeReplicaFiles({ native: load.io }) },
    { name: 'node:fs', files: new NodeReplicaFiles({ native: null }) },
  ];
  const samples = new Map<string, Sample[]>();
  try {
    const fill = await modes[0]!.files.open(join(dir, 'data'), 'create');
    const chunk = new Uint8Array(1024 * 1024).fill(7);
    for (let at = 0; at < sizeBytes; at += chunk.length) await fill.write(chunk, at);
    await fill.close();
    for (let round = 1; round <= Number(values.rounds); round++) {
      for (const mode of modes) {
        const file = await mode.files.open(join(dir, 'data'), 'write');
        for (const isWrite of [false, true]) {
          const s = await runOps(file, { isWrite, ops, depth, blocks: sizeBytes / 4096 });
          const key = `${mode.name} ${isWrite ? 'write' : 'read'}`;
          samples.set(key, [...(samples.get(key) ?? []), s]);
          process.stderr.write(`round ${round} ${key}: ${s.cpuUsPerOp.toFixed(2)} µs CPU/op, ${s.opsPerSecond.toFixed(0)} ops/s\n`);
        }
        await file.close();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const lines = [`# Replica file driver: random 4 KiB at depth ${depth}, ${ops} ops per run, medians of ${values.rounds} rounds`, '', '| mode | CPU µs/op | ops/s |', '| --- | --- | --- |'];
  for (const [key, list] of samples) {
    lines.push(`| ${key} | ${median(list.map((s) => s.cpuUsPerOp)).toFixed(2)} | ${median(list.map((s) => s.opsPerSecond)).toFixed(0)} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
