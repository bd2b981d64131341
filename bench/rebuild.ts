// Rebuild throughput against the ceiling of this machine, and the returning-replica ratio.
//   node dist/bench/rebuild.js [--size-mib 4096] [--dir /var/tmp] [--label TEXT]
// A 2-replica volume is filled through NBD (nbdcopy of a seeded file), a third replica is rebuilt
// through the control API (time from request to 'done', split into planning, copying and
// verifying); the ceiling is a plain copy of the same bytes in the same run (cp --sparse=always of
// the source replica's layer file, then sync). Then one replica is killed, 1/16 of the volume
// rewritten, and the replica returns: bytes sent / bytes changed. The machine's load average is
// recorded with the figures (other work shares the cores). Results: bench/results/rebuild-*.{md,json}.
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SeededRandom } from '../src/lib/random.ts';
import { repoRoot, run, stopAll, waitFor } from '../test/harness/daemon.ts';
import { restartReplica, startCluster, startReplica, type Cluster } from '../test/harness/volume.ts';

const mib = 1024 * 1024;
const { values } = parseArgs({
  options: { 'size-mib': { type: 'string', default: '4096' }, dir: { type: 'string', default: tmpdir() }, label: { type: 'string', default: '' } },
});
const sizeBytes = Number(values['size-mib']) * mib;

interface Rebuild { address: string; state: string; doneBytes: number; skippedBytes: number; error: string | null }
interface Timed { rebuild: Rebuild; seconds: number; phases: Record<string, number> }

const load = (): string => loadavg().map((l) => l.toFixed(1)).join(' ');

async function rebuild(cluster: Cluster, address: string): Promise<Timed> {
  const start = performance.now();
  const response = await fetch(`${cluster.engine.controlUrl}/v1/rebuilds`, { method: 'POST', body: JSON.stringify({ address }) });
  if (response.status !== 202) throw new Error(`rebuild: HTTP ${response.status} ${await response.text()}`);
  // Seconds from the request to the first time each state was seen (polled every few ms).
  const phases: Record<string, number> = {};
  const done = await waitFor(`rebuild of ${address}`, async () => {
    const json = (await (await fetch(`${cluster.engine.controlUrl}/v1/rebuilds`)).json()) as { rebuilds: Rebuild[] };
    const r = json.rebuilds.find((x) => x.address === address);
    if (r !== undefined) phases[r.state] ??= (performance.now() - start) / 1000;
    if (r?.state === 'failed') throw new Error(`rebuild failed: ${r.error ?? '?'}`);
    return r?.state === 'done' ? r : undefined;
  }, 3_600_000);
  return { rebuild: done, seconds: (performance.now() - start) / 1000, phases };
}

/** The replica's largest data file: the sealed layer holding the volume's data. */
async function largestDataFile(dir: string): Promise<string> {
  let best = { name: '', blocks: -1 };
  for (const name of await readdir(dir)) {
    if (!name.endsWith('.data')) continue;
    const { blocks } = await stat(join(dir, name));
    if (blocks > best.blocks) best = { name, blocks };
  }
  return join(dir, best.name);
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(values.dir, 'shorthorn-bench-rebuild-'));
  const lines: string[] = [];
  const say = (line: string): void => {
    console.log(line);
    lines.push(line);
  };
  try {
    say(`# Rebuild, ${values['size-mib']} MiB volume ${values.label === '' ? '' : `(${values.label})`}`);
    say('');
    say(`load average at start: ${load()}`);
    const cluster = await startCluster({ dir, volume: 'bench', sizeBytes, replicaCount: 2 });
    const image = join(dir, 'image');
    const random = new SeededRandom(1);
    const piece = random.fill(new Uint8Array(16 * mib));
    await writeFile(image, new Uint8Array(0));
    for (let at = 0; at < sizeBytes; at += piece.length) await writeFile(image, piece.map((b, i) => b ^ (at / piece.length + i) % 251), { flag: 'a' });
    await run('nbdcopy', [image, cluster.engine.uri]);
    await rm(image);
    const freshDir = join(dir, 'fresh');
    await mkdir(freshDir);
    const fresh = await startReplica({ dir: freshDir, sizeBytes, volume: 'bench' });
    say(`load average before the rebuild: ${load()}`);
    const full = await rebuild(cluster, fresh.address);
    const copyStart = performance.now();
    const source = await largestDataFile(cluster.replicas[0]!.dir);
    await run('sh', ['-c', `cp --sparse=always ${source} ${join(dir, 'plain-copy')} && sync`]);
    const copySeconds = (performance.now() - copyStart) / 1000;
    await rm(join(dir, 'plain-copy'));
    const rebuildMiBs = full.rebuild.doneBytes / mib / full.seconds;
    const copyMiBs = sizeBytes / mib / copySeconds;
    const p = full.phases;
    const copyingS = (p['verifying'] ?? full.seconds) - (p['copying'] ?? 0);
    const verifyingS = full.seconds - (p['verifying'] ?? full.seconds);
    say(`full rebuild: ${(full.rebuild.doneBytes / mib).toFixed(0)} MiB in ${full.seconds.toFixed(1)} s = ${rebuildMiBs.toFixed(1)} MiB/s (planning ${(p['copying'] ?? 0).toFixed(1)} s, copying ${copyingS.toFixed(1)} s = ${(full.rebuild.doneBytes / mib / copyingS).toFixed(1)} MiB/s, install + verify ${verifyingS.toFixed(1)} s)`);
    say(`plain copy (cp --sparse=always + sync): ${copyMiBs.toFixed(1)} MiB/s; rebuild/copy ratio ${(rebuildMiBs / copyMiBs).toFixed(2)}`);
    say(`load average after: ${load()}`);

    const returning = cluster.replicas[1]!;
    await returning.daemon.kill9();
    const changed = Math.max(mib * 2, Math.floor(sizeBytes / 16 / (2 * mib)) * 2 * mib);
    await run('fio', ['--name=w', '--ioengine=nbd', `--uri=${cluster.engine.uri}`, '--rw=write', '--bs=1M', '--iodepth=4', '--offset=0', `--size=${changed}`]);
    await restartReplica(returning, { sizeBytes, volume: 'bench' });
    const back = await rebuild(cluster, returning.address);
    const ratio = back.rebuild.doneBytes / changed;
    say(`returning replica: ${back.rebuild.doneBytes} bytes sent for ${changed} changed: ratio ${ratio.toFixed(3)} (goal <= 1.2), ${back.seconds.toFixed(1)} s`);
    say(`load average at the end: ${load()}`);
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const resultsDir = join(repoRoot, 'bench/results');
    await mkdir(resultsDir, { recursive: true });
    await writeFile(join(resultsDir, `rebuild-${stamp}.md`), `${lines.join('\n')}\n\nCommand: node dist/bench/rebuild.js --size-mib ${values['size-mib']}\n`);
    await writeFile(
      join(resultsDir, `rebuild-${stamp}.json`),
      JSON.stringify(
        {
          sizeMib: Number(values['size-mib']),
          label: values.label,
          full: { ...full, rebuildMiBs, copyingS, verifyingS },
          plainCopy: { seconds: copySeconds, MiBs: copyMiBs },
          ratioToCopy: rebuildMiBs / copyMiBs,
          returning: { ...back, changedBytes: changed, ratio },
          lines,
        },
        null,
        2,
      ),
    );
  } finally {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
