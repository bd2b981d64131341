// CPU time per I/O of each Shorthorn process, for the fio jobs that decide IOPS on a 2-core
// machine: when fio, the engine and the replicas share two cores, the CPU all of them spend per
// request sets the ceiling. CPU time is read from /proc/<pid>/stat around a fixed fio run, so the
// figures hold up when other work loads the machine (IOPS ratios do not).
//
//   node dist/bench/fio-cpu.js [--replicas 1] [--rounds 3] [--runtime 4] [--size-mib 512] [--jobs randread,randwrite]
//     [--label TEXT] [--save]   (--save writes bench/results/fio-cpu-*.md and .json)
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot, run, stopAll } from '../test/harness/daemon.ts';
import { startCluster } from '../test/harness/volume.ts';

interface Job {
  readonly name: string;
  readonly rw: 'randread' | 'randwrite' | 'read' | 'write';
  readonly bs: string;
  readonly iodepth: number;
}

const allJobs: readonly Job[] = [
  { name: 'randread', rw: 'randread', bs: '4k', iodepth: 64 },
  { name: 'randwrite', rw: 'randwrite', bs: '4k', iodepth: 64 },
  { name: 'seqread', rw: 'read', bs: '128k', iodepth: 64 },
  { name: 'seqwrite', rw: 'write', bs: '128k', iodepth: 64 },
];

/** utime + stime in clock ticks (100 per second on Linux). */
async function cpuTicks(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

async function peakRssMib(pid: number): Promise<number> {
  const hwm = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return Number(hwm?.[1] ?? 0) / 1024;
}

interface Sample {
  readonly iops: number;
  readonly mibPerSecond: number;
  /** CPU µs per I/O: engine, each replica, and fio itself (from fio's own usr+sys figures). */
  readonly engineUs: number;
  readonly replicaUs: number[];
  readonly fioUs: number;
}

async function measure(uri: string, pids: { engine: number; replicas: number[] }, job: Job, options: { runtimeS: number; sizeMib: number }): Promise<Sample> {
  const all = [pids.engine, ...pids.replicas];
  const before = await Promise.all(all.map(cpuTicks));
  // No ramp time: the CPU window must match the I/O count exactly.
  const { stdout } = await run('fio', [
    `--name=${job.name}`, '--ioengine=nbd', `--uri=${uri}`, `--rw=${job.rw}`, `--bs=${job.bs}`, `--iodepth=${job.iodepth}`,
    `--size=${options.sizeMib}M`, '--time_based', `--runtime=${options.runtimeS}`, '--norandommap', '--randrepeat=0', '--output-format=json',
  ]);
  const after = await Promise.all(all.map(cpuTicks));
  const result = JSON.parse(stdout.slice(stdout.indexOf('{'))) as {
    jobs: { read: { total_ios: number; iops: number; bw_bytes: number }; write: { total_ios: number; iops: number; bw_bytes: number }; usr_cpu: number; sys_cpu: number; job_runtime: number }[];
  };
  const j = result.jobs[0]!;
  const side = job.rw.includes('read') ? j.read : j.write;
  const ios = side.total_ios;
  const usPerIo = (i: number): number => (((after[i]! - before[i]!) / 100) * 1e6) / ios;
  return {
    iops: side.iops,
    mibPerSecond: side.bw_bytes / (1024 * 1024),
    engineUs: usPerIo(0),
    replicaUs: pids.replicas.map((_, i) => usPerIo(i + 1)),
    fioUs: (((j.usr_cpu + j.sys_cpu) / 100) * (j.job_runtime / 1000) * 1e6) / ios,
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      replicas: { type: 'string', default: '1' },
      rounds: { type: 'string', default: '3' },
      runtime: { type: 'string', default: '4' },
      'size-mib': { type: 'string', default: '512' },
      jobs: { type: 'string', default: 'randread,randwrite' },
      dir: { type: 'string', default: tmpdir() },
      label: { type: 'string', default: '' },
      save: { type: 'boolean', default: false },
    },
  });
  const replicaCount = Number(values.replicas);
  const rounds = Number(values.rounds);
  const runtimeS = Number(values.runtime);
  const sizeMib = Number(values['size-mib']);
  const wanted = values.jobs.split(',');
  const jobs = allJobs.filter((j) => wanted.includes(j.name));
  const base = await mkdtemp(join(values.dir, 'shorthorn-bench-cpu-'));
  const samples = new Map<string, Sample[]>();
  const rssEach: number[] = [];
  try {
    const cluster = await startCluster({ dir: base, volume: 'bench', sizeBytes: sizeMib * 1024 * 1024, replicaCount });
    const pids = { engine: cluster.engine.daemon.pid, replicas: cluster.replicas.map((r) => r.daemon.pid) };
    await run('fio', ['--name=fill', '--ioengine=nbd', `--uri=${cluster.engine.uri}`, '--rw=write', '--bs=1M', '--iodepth=16', `--size=${sizeMib}M`]);
    for (let round = 1; round <= rounds; round++) {
      for (const job of jobs) {
        const s = await measure(cluster.engine.uri, pids, job, { runtimeS, sizeMib });
        samples.set(job.name, [...(samples.get(job.name) ?? []), s]);
        process.stderr.write(
          `round ${round} ${job.name}: ${s.iops.toFixed(0)} IOPS, µs/IO engine ${s.engineUs.toFixed(1)} replicas ${s.replicaUs.map((u) => u.toFixed(1)).join('/')} fio ${s.fioUs.toFixed(1)}\n`,
        );
      }
    }
    rssEach.push(...(await Promise.all([pids.engine, ...pids.replicas].map(peakRssMib))));
  } finally {
    await stopAll();
    await rm(base, { recursive: true, force: true });
  }
  const rss = Math.max(0, ...rssEach);
  const lines = [
    `# CPU per I/O, ${replicaCount} replica(s): medians of ${rounds} rounds × ${runtimeS} s, ${sizeMib} MiB${values.label === '' ? '' : ` (${values.label})`}`,
    '',
    '| job | IOPS | MiB/s | engine µs/IO | replica µs/IO (each) | fio µs/IO |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const job of jobs) {
    const list = samples.get(job.name) ?? [];
    const replicaUs = Array.from({ length: replicaCount }, (_, i) => median(list.map((s) => s.replicaUs[i]!)));
    lines.push(
      `| ${job.name} ${job.bs} qd${job.iodepth} | ${median(list.map((s) => s.iops)).toFixed(0)} | ${median(list.map((s) => s.mibPerSecond)).toFixed(1)} | ${median(list.map((s) => s.engineUs)).toFixed(1)} | ${replicaUs.map((u) => u.toFixed(1)).join(' / ')} | ${median(list.map((s) => s.fioUs)).toFixed(1)} |`,
    );
  }
  lines.push('', `Peak RSS of one process: ${rss.toFixed(0)} MiB (engine ${rssEach[0]?.toFixed(0) ?? '?'}, replicas ${rssEach.slice(1).map((r) => r.toFixed(0)).join(' / ')})`, '');
  const text = lines.join('\n');
  process.stdout.write(text);
  if (!values.save) return;
  const resultsDir = join(repoRoot, 'bench/results');
  await mkdir(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  await writeFile(join(resultsDir, `fio-cpu-${replicaCount}r-${stamp}.md`), text);
  await writeFile(join(resultsDir, `fio-cpu-${replicaCount}r-${stamp}.json`), JSON.stringify({ replicaCount, rounds, runtimeS, sizeMib, label: values.label, samples: Object.fromEntries(samples), peakRssMib: rss, peakRssMibEach: rssEach }, null, 2));
}

await main();
