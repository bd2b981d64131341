// Where a data process's memory goes: starts replicas and an engine (as the test harness does),
// and reads each process's memory idle, after every fio job (qd64 random and sequential, over NBD)
// and idle again afterwards: RSS and its anonymous part from /proc, peak RSS (VmHWM), and the
// process's own report (process.memoryUsage() and V8's heap spaces, logged on SIGUSR2 by
// src/bin/memory-report.ts). Variants (extra environment for the daemons, e.g. other V8 or malloc
// settings) run interleaved, round by round, so they see the same machine load.
//
//   node dist/bench/memory.js [--replicas 1] [--rounds 2] [--runtime 3] [--size-mib 512]
//     [--variants '{"default":{},"semi16":{"NODE_OPTIONS":"--max-semi-space-size=16"}}']
//     [--jobs randread-4k-qd64,randwrite-4k-qd64,seqread-128k-qd64,seqwrite-128k-qd64]
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot, run, startDaemon, stopAll, waitFor, type Daemon } from '../test/harness/daemon.ts';
import { freePort } from '../test/harness/free-port.ts';
import { dataProcessEnv } from '../src/lib/data-process-env.ts';

interface Job {
  readonly name: string;
  readonly rw: 'randread' | 'randwrite' | 'read' | 'write';
  readonly bs: string;
  readonly unit: 'IOPS' | 'MiB/s';
}

const allJobs: readonly Job[] = [
  { name: 'randread-4k-qd64', rw: 'randread', bs: '4k', unit: 'IOPS' },
  { name: 'randwrite-4k-qd64', rw: 'randwrite', bs: '4k', unit: 'IOPS' },
  { name: 'seqread-128k-qd64', rw: 'read', bs: '128k', unit: 'MiB/s' },
  { name: 'seqwrite-128k-qd64', rw: 'write', bs: '128k', unit: 'MiB/s' },
];

/** The jobs this run does (--jobs picks some by name). */
let jobs: readonly Job[] = allJobs;

interface Proc {
  readonly kind: 'engine' | 'replica';
  readonly daemon: Daemon;
}

interface Sample {
  readonly rssMib: number;
  readonly anonMib: number;
  readonly hwmMib: number;
  /** Proportional set size: the node binary's pages, shared by every process, count once overall. */
  readonly pssMib: number;
  readonly cpuS: number;
  /** The process's own SIGUSR2 line (heap, external, arrayBuffers, spaces). */
  readonly report: string;
}

const kib = (text: string, field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(text)?.[1] ?? NaN) / 1024;

async function sample(proc: Proc): Promise<Sample> {
  const before = (proc.daemon.output().match(/memory MiB:/g) ?? []).length;
  process.kill(proc.daemon.pid, 'SIGUSR2');
  const report = await waitFor(`${proc.kind} ${proc.daemon.pid} memory report`, () => {
    const lines = proc.daemon.output().split('\n').filter((l) => l.includes('memory MiB:'));
    return Promise.resolve(lines.length > before ? lines[lines.length - 1]!.replace(/^.*memory MiB: /, '') : undefined);
  });
  const status = await readFile(`/proc/${proc.daemon.pid}/status`, 'utf8');
  const stat = (await readFile(`/proc/${proc.daemon.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  const rollup = await readFile(`/proc/${proc.daemon.pid}/smaps_rollup`, 'utf8');
  return {
    pssMib: kib(rollup, 'Pss'),
    rssMib: kib(status, 'VmRSS'),
    anonMib: kib(status, 'RssAnon'),
    hwmMib: kib(status, 'VmHWM'),
    cpuS: (Number(stat[11]) + Number(stat[12])) / 100,
    report,
  };
}

async function startProcs(dir: string, options: { replicas: number; sizeBytes: number; env: Record<string, string> }): Promise<{ procs: Proc[]; uri: string }> {
  const env = { ...dataProcessEnv(process.env['NODE_OPTIONS']), ...options.env };
  const procs: Proc[] = [];
  const addresses: string[] = [];
  for (let i = 0; i < options.replicas; i++) {
    const address = `127.0.0.1:${await freePort()}`;
    const daemon = await startDaemon({
      args: ['replica', '--dir', join(dir, `replica-${i}`), '--size', String(options.sizeBytes), '--volume', 'bench', '--listen', address],
      readyPattern: /listening on (\S+)/,
      env,
    });
    procs.push({ kind: 'replica', daemon });
    addresses.push(address);
  }
  const socket = join(dir, 'nbd.sock');
  const daemon = await startDaemon({
    args: ['engine', '--name', 'bench', '--size', String(options.sizeBytes), '--nbd-socket', socket, ...addresses.flatMap((a) => ['--replica', a])],
    readyPattern: /control on (\S+)/,
    env,
  });
  procs.unshift({ kind: 'engine', daemon });
  return { procs, uri: `nbd+unix:///bench?socket=${socket}` };
}

async function fio(uri: string, job: Job, options: { runtimeS: number; sizeMib: number }): Promise<number> {
  const { stdout } = await run('fio', [
    `--name=${job.name}`, '--ioengine=nbd', `--uri=${uri}`, `--rw=${job.rw}`, `--bs=${job.bs}`, '--iodepth=64',
    `--size=${options.sizeMib}M`, '--time_based', `--runtime=${options.runtimeS}`, '--ramp_time=1', '--norandommap',
    '--randrepeat=0', '--output-format=json',
  ]);
  const side = (JSON.parse(stdout.slice(stdout.indexOf('{'))) as { jobs: { read: FioSide; write: FioSide }[] }).jobs[0]!;
  const result = job.rw.includes('read') ? side.read : side.write;
  return job.unit === 'IOPS' ? result.iops : result.bw_bytes / (1024 * 1024);
}

interface FioSide {
  iops: number;
  bw_bytes: number;
}

/** One round of one variant: stage name -> per-process samples, job name -> throughput. */
interface RoundResult {
  readonly stages: Map<string, Sample[]>;
  readonly throughput: Map<string, number>;
  readonly kinds: Proc['kind'][];
}

async function oneRound(dir: string, env: Record<string, string>, options: { replicas: number; runtimeS: number; sizeMib: number }): Promise<RoundResult> {
  const { procs, uri } = await startProcs(dir, { replicas: options.replicas, sizeBytes: options.sizeMib * 1024 * 1024, env });
  const stages = new Map<string, Sample[]>();
  const throughput = new Map<string, number>();
  const take = async (stage: string): Promise<void> => {
    stages.set(stage, await Promise.all(procs.map((p) => sample(p))));
  };
  try {
    await take('idle at start');
    await run('fio', ['--name=fill', '--ioengine=nbd', `--uri=${uri}`, '--rw=write', '--bs=1M', '--iodepth=16', `--size=${options.sizeMib}M`]);
    await take('after fill');
    for (const job of jobs) {
      throughput.set(job.name, await fio(uri, job, options));
      await take(`after ${job.name}`);
    }
    // Idle again: what the process keeps once the load is gone (V8 shrinks its young generation
    // only at a GC, and an idle process may not run one for a while).
    await new Promise((resolve) => setTimeout(resolve, 7000));
    await take('idle 7 s after');
  } finally {
    for (const p of procs) await p.daemon.stop();
  }
  return { stages, throughput, kinds: procs.map((p) => p.kind) };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function render(results: Map<string, RoundResult[]>, params: { replicas: number; rounds: number; runtimeS: number; sizeMib: number; variants: Record<string, Record<string, string>>; load: string }): string {
  const names = [...results.keys()];
  const lines = [
    `# Memory of the data processes: ${params.replicas} replica(s), ${params.rounds} round(s), ${params.runtimeS} s per fio job (qd64), ${params.sizeMib} MiB region`,
    '',
    `Load average at start: ${params.load}. Variants (extra daemon environment): ${names.map((n) => `${n} = ${JSON.stringify(params.variants[n])}`).join('; ')}`,
    '',
    `| job | ${names.join(' | ')} |`,
    `| --- | ${names.map(() => '---').join(' | ')} |`,
  ];
  for (const job of jobs) {
    const cells = names.map((n) => median(results.get(n)!.map((r) => r.throughput.get(job.name) ?? NaN)).toFixed(job.unit === 'IOPS' ? 0 : 1));
    lines.push(`| ${job.name} (${job.unit}, median) | ${cells.join(' | ')} |`);
  }
  for (const job of jobs) {
    // CPU of all our processes during the job (its 1 s ramp included) per I/O done in it: the
    // measure that holds still when other work shares the cores (docs/engine.md).
    const perIo = names.map((n) =>
      median(results.get(n)!.map((r) => {
        const previous = [...r.stages.keys()][[...r.stages.keys()].indexOf(`after ${job.name}`) - 1]!;
        const cpuS = sumAll(r, (s) => s.cpuS, `after ${job.name}`) - sumAll(r, (s) => s.cpuS, previous);
        const ios = (r.throughput.get(job.name) ?? NaN) * (job.unit === 'IOPS' ? 1 : 8) * (params.runtimeS + 1);
        return (cpuS * 1e6) / ios;
      })).toFixed(0),
    );
    lines.push(`| ${job.name}: µs CPU per I/O, all processes (median) | ${perIo.join(' | ')} |`);
  }
  for (const kind of ['engine', 'replica'] as const) {
    const cpu = names.map((n) => median(results.get(n)!.map((r) => sumKind(r, kind, (s) => s.cpuS, 'idle 7 s after') - sumKind(r, kind, (s) => s.cpuS, 'after fill'))).toFixed(1));
    lines.push(`| ${kind} CPU s over the jobs (all of that kind, median) | ${cpu.join(' | ')} |`);
    const peak = names.map((n) => Math.max(...results.get(n)!.map((r) => maxKind(r, kind, (s) => s.hwmMib, 'idle 7 s after'))).toFixed(0));
    lines.push(`| ${kind} peak RSS MiB (max over rounds) | ${peak.join(' | ')} |`);
    const pss = names.map((n) => Math.max(...results.get(n)!.map((r) => Math.max(...[...r.stages.keys()].map((stage) => maxKind(r, kind, (s) => s.pssMib, stage))))).toFixed(0));
    lines.push(`| ${kind} largest PSS MiB seen (max over stages and rounds) | ${pss.join(' | ')} |`);
  }
  lines.push('', 'Per stage, first round of each variant: RSS / anonymous RSS / PSS MiB, then the process\'s own report (MiB).', '');
  for (const n of names) {
    const r = results.get(n)![0]!;
    lines.push(`## ${n}`, '');
    for (const [stage, samples] of r.stages) {
      lines.push(`- ${stage}:`);
      samples.forEach((s, i) => lines.push(`  - ${r.kinds[i]}: rss ${s.rssMib.toFixed(0)} / anon ${s.anonMib.toFixed(0)} / pss ${s.pssMib.toFixed(0)}; ${s.report}`));
    }
    lines.push('');
  }
  return lines.join('\n');
}

function sumAll(r: RoundResult, f: (s: Sample) => number, stage: string): number {
  return (r.stages.get(stage) ?? []).reduce((sum, s) => sum + f(s), 0);
}

function sumKind(r: RoundResult, kind: Proc['kind'], f: (s: Sample) => number, stage: string): number {
  return (r.stages.get(stage) ?? []).reduce((sum, s, i) => sum + (r.kinds[i] === kind ? f(s) : 0), 0);
}

function maxKind(r: RoundResult, kind: Proc['kind'], f: (s: Sample) => number, stage: string): number {
  return (r.stages.get(stage) ?? []).reduce((max, s, i) => Math.max(max, r.kinds[i] === kind ? f(s) : 0), 0);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      replicas: { type: 'string', default: '1' },
      rounds: { type: 'string', default: '2' },
      runtime: { type: 'string', default: '3' },
      'size-mib': { type: 'string', default: '512' },
      variants: { type: 'string', default: '{"default":{}}' },
      jobs: { type: 'string', default: allJobs.map((j) => j.name).join(',') },
      dir: { type: 'string', default: tmpdir() },
    },
  });
  const wanted = values.jobs.split(',');
  jobs = allJobs.filter((j) => wanted.includes(j.name));
  if (jobs.length !== wanted.length) throw new Error(`--jobs: known jobs are ${allJobs.map((j) => j.name).join(', ')}`);
  const params = {
    replicas: Number(values.replicas),
    rounds: Number(values.rounds),
    runtimeS: Number(values.runtime),
    sizeMib: Number(values['size-mib']),
    variants: JSON.parse(values.variants) as Record<string, Record<string, string>>,
    load: (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' '),
  };
  const base = await mkdtemp(join(values.dir, 'shorthorn-bench-memory-'));
  const results = new Map<string, RoundResult[]>();
  try {
    for (let round = 1; round <= params.rounds; round++) {
      for (const [name, env] of Object.entries(params.variants)) {
        const dir = join(base, `${name}-${round}`);
        await mkdir(dir, { recursive: true });
        try {
          const r = await oneRound(dir, env, params);
          results.set(name, [...(results.get(name) ?? []), r]);
          process.stderr.write(`round ${round} ${name}: ${[...r.throughput].map(([j, v]) => `${j} ${v.toFixed(0)}`).join(', ')}\n`);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }
    }
  } finally {
    await stopAll();
    await rm(base, { recursive: true, force: true });
  }
  const text = render(results, params);
  process.stdout.write(`${text}\n`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  await mkdir(join(repoRoot, 'bench/results'), { recursive: true });
  await writeFile(join(repoRoot, `bench/results/memory-${params.replicas}r-${stamp}.md`), `${text}\n`);
}

await main();
