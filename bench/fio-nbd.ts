// Longhorn's kbench jobs through fio's NBD engine, against the peer (nbdkit file on the same disk),
// the ceiling of the NBD path (nbdkit memory), and Shorthorn with 1 and 3 replicas: in one run,
// alternating targets round by round, reporting medians, ratios to nbdkit file, and the CPU
// seconds and peak RSS of Shorthorn's processes.
//
//   node dist/bench/fio-nbd.js [--rounds 3] [--runtime 5] [--size-mib 1024] [--dir /var/tmp]
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot, run, startDaemon, stopAll, waitFor, type Daemon } from '../test/harness/daemon.ts';
import { startCluster } from '../test/harness/volume.ts';

interface Job {
  readonly name: string;
  readonly rw: 'randread' | 'randwrite' | 'read' | 'write';
  readonly bs: string;
  readonly iodepth: number;
  readonly metric: 'iops' | 'bw' | 'lat';
}

const jobs: readonly Job[] = [
  { name: 'randread-4k-qd64', rw: 'randread', bs: '4k', iodepth: 64, metric: 'iops' },
  { name: 'randwrite-4k-qd64', rw: 'randwrite', bs: '4k', iodepth: 64, metric: 'iops' },
  { name: 'randread-4k-qd1-latency', rw: 'randread', bs: '4k', iodepth: 1, metric: 'lat' },
  { name: 'randwrite-4k-qd1-latency', rw: 'randwrite', bs: '4k', iodepth: 1, metric: 'lat' },
  { name: 'seqread-128k-qd64', rw: 'read', bs: '128k', iodepth: 64, metric: 'bw' },
  { name: 'seqwrite-128k-qd64', rw: 'write', bs: '128k', iodepth: 64, metric: 'bw' },
];

interface Target {
  readonly name: string;
  readonly ours: boolean;
  start(dir: string, sizeBytes: number): Promise<{ uri: string; pids: () => number[]; stop: () => Promise<void> }>;
}

async function startNbdkit(dir: string, plugin: string[]): Promise<{ uri: string; pids: () => number[]; stop: () => Promise<void> }> {
  const socket = join(dir, 'nbdkit.sock');
  const daemon: Daemon = await startDaemon({ command: 'nbdkit', args: ['-f', '-U', socket, '--threads', '16', ...plugin] });
  await waitFor('nbdkit socket', async () => ((await run('test', ['-S', socket], { allowFailure: true })).code === 0 ? true : undefined));
  return { uri: `nbd+unix:///?socket=${socket}`, pids: () => [daemon.pid], stop: () => daemon.stop() };
}

const targets: readonly Target[] = [
  {
    name: 'nbdkit file',
    ours: false,
    start: async (dir, sizeBytes) => {
      const file = join(dir, 'disk.img');
      await run('truncate', ['-s', String(sizeBytes), file]);
      return startNbdkit(dir, ['file', file]);
    },
  },
  { name: 'nbdkit memory', ours: false, start: (dir, sizeBytes) => startNbdkit(dir, ['memory', String(sizeBytes)]) },
  ...[1, 3].map(
    (replicaCount): Target => ({
      name: `shorthorn ${replicaCount} replica${replicaCount > 1 ? 's' : ''}`,
      ours: true,
      start: async (dir, sizeBytes) => {
        const cluster = await startCluster({ dir, volume: 'bench', sizeBytes, replicaCount });
        return {
          uri: cluster.engine.uri,
          pids: () => [cluster.engine.daemon.pid, ...cluster.replicas.map((r) => r.daemon.pid)],
          stop: async () => {
            await cluster.engine.daemon.stop();
            for (const r of cluster.replicas) await r.daemon.stop();
          },
        };
      },
    }),
  ),
];

async function fio(uri: string, job: Job, options: { runtimeS: number; sizeMib: number }): Promise<number> {
  const args = [
    `--name=${job.name}`, '--ioengine=nbd', `--uri=${uri}`, `--rw=${job.rw}`, `--bs=${job.bs}`,
    `--iodepth=${job.iodepth}`, `--size=${options.sizeMib}M`, '--time_based', `--runtime=${options.runtimeS}`,
    '--ramp_time=1', '--norandommap', '--randrepeat=0', '--output-format=json',
  ];
  const { stdout } = await run('fio', args);
  const result = JSON.parse(stdout.slice(stdout.indexOf('{'))) as {
    jobs: { read: FioSide; write: FioSide }[];
  };
  const side = job.rw.includes('read') ? result.jobs[0]!.read : result.jobs[0]!.write;
  switch (job.metric) {
    case 'iops':
      return side.iops;
    case 'bw':
      return side.bw_bytes / (1024 * 1024);
    case 'lat':
      return side.clat_ns.mean / 1000;
  }
}

interface FioSide {
  iops: number;
  bw_bytes: number;
  clat_ns: { mean: number };
}

async function precondition(uri: string, sizeMib: number): Promise<void> {
  // Reads of never-written blocks are free for every server: fill the region first.
  await run('fio', ['--name=fill', '--ioengine=nbd', `--uri=${uri}`, '--rw=write', '--bs=1M', '--iodepth=16', `--size=${sizeMib}M`]);
}

async function processUsage(pids: readonly number[]): Promise<{ cpuSeconds: number; peakRssMib: number }> {
  let cpuSeconds = 0;
  let peakRssMib = 0;
  for (const pid of pids) {
    const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
    cpuSeconds += (Number(stat[11]) + Number(stat[12])) / 100;
    const hwm = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    peakRssMib = Math.max(peakRssMib, Number(hwm?.[1] ?? 0) / 1024);
  }
  return { cpuSeconds, peakRssMib };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      runtime: { type: 'string', default: '5' },
      'size-mib': { type: 'string', default: '1024' },
      dir: { type: 'string', default: tmpdir() },
    },
  });
  const rounds = Number(values.rounds);
  const runtimeS = Number(values.runtime);
  const sizeMib = Number(values['size-mib']);
  const base = await mkdtemp(join(values.dir, 'shorthorn-bench-fio-'));
  const samples = new Map<string, number[]>();
  const usage = new Map<string, { cpuSeconds: number; peakRssMib: number }[]>();
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const target of targets) {
        const dir = join(base, `${target.name.replace(/\s+/g, '-')}-${round}`);
        await mkdir(dir, { recursive: true });
        const server = await target.start(dir, sizeMib * 1024 * 1024);
        try {
          await precondition(server.uri, sizeMib);
          for (const job of jobs) {
            const value = await fio(server.uri, job, { runtimeS, sizeMib });
            const key = `${target.name}|${job.name}`;
            samples.set(key, [...(samples.get(key) ?? []), value]);
            process.stderr.write(`round ${round} ${target.name} ${job.name}: ${value.toFixed(1)}\n`);
          }
          if (target.ours) usage.set(target.name, [...(usage.get(target.name) ?? []), await processUsage(server.pids())]);
        } finally {
          await server.stop();
          await rm(dir, { recursive: true, force: true });
        }
      }
    }
  } finally {
    await stopAll();
    await rm(base, { recursive: true, force: true });
  }
  const report = render(samples, usage, { rounds, runtimeS, sizeMib });
  process.stdout.write(report.text);
  const resultsDir = join(repoRoot, 'bench/results');
  await mkdir(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  await writeFile(join(resultsDir, `fio-nbd-${stamp}.json`), JSON.stringify(report.json, null, 2));
  await writeFile(join(resultsDir, `fio-nbd-${stamp}.md`), report.text);
}

function render(
  samples: ReadonlyMap<string, number[]>,
  usage: ReadonlyMap<string, { cpuSeconds: number; peakRssMib: number }[]>,
  params: { rounds: number; runtimeS: number; sizeMib: number },
): { text: string; json: unknown } {
  const unit = { iops: 'IOPS', bw: 'MiB/s', lat: 'µs mean clat' };
  const lines = [
    `# fio over NBD: medians of ${params.rounds} rounds, ${params.runtimeS} s per job, ${params.sizeMib} MiB region`,
    '',
    `| job | ${targets.map((t) => t.name).join(' | ')} |`,
    `| --- | ${targets.map(() => '---').join(' | ')} |`,
  ];
  const json: Record<string, Record<string, { median: number; samples: number[]; ratioToNbdkitFile: number }>> = {};
  for (const job of jobs) {
    const peer = median(samples.get(`nbdkit file|${job.name}`) ?? [NaN]);
    const cells = targets.map((t) => {
      const values = samples.get(`${t.name}|${job.name}`) ?? [NaN];
      const m = median(values);
      // For latency lower is better: the ratio is peer/ours so that > 1 always means "better".
      const ratio = job.metric === 'lat' ? peer / m : m / peer;
      (json[job.name] ??= {})[t.name] = { median: m, samples: values, ratioToNbdkitFile: ratio };
      return `${m.toFixed(job.metric === 'bw' ? 1 : 0)} (${ratio.toFixed(2)}×)`;
    });
    lines.push(`| ${job.name} (${unit[job.metric]}) | ${cells.join(' | ')} |`);
  }
  lines.push('', 'Ratios are to nbdkit file; for latency the ratio is nbdkit/ours, so above 1 is better either way.', '');
  for (const [name, list] of usage) {
    const cpu = median(list.map((u) => u.cpuSeconds));
    const rss = Math.max(...list.map((u) => u.peakRssMib));
    lines.push(`- ${name}: CPU ${cpu.toFixed(1)} s per round (all its processes), peak RSS of one process ${rss.toFixed(0)} MiB`);
  }
  return { text: `${lines.join('\n')}\n`, json: { params, results: json, usage: Object.fromEntries(usage) } };
}

await main();
