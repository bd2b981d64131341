// Rebuild throughput against the ceiling of this machine, and the returning-replica ratio.
//   node dist/bench/rebuild.js [--size-mib 4096] [--dir /var/tmp]
// A 2-replica volume is filled through NBD (nbdcopy of a seeded file), a third replica is rebuilt
// through the control API (time from request to 'done'); the ceiling is a plain copy of the same
// bytes (cp of the source replica's data file, then sync). Then one replica is killed, 1/16 of the
// volume rewritten, and the replica returns: bytes sent / bytes changed.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SeededRandom } from '../src/lib/random.ts';
import { run, stopAll, waitFor } from '../test/harness/daemon.ts';
import { restartReplica, startCluster, startReplica, type Cluster } from '../test/harness/volume.ts';

const mib = 1024 * 1024;
const { values } = parseArgs({ options: { 'size-mib': { type: 'string', default: '4096' }, dir: { type: 'string', default: tmpdir() } } });
const sizeBytes = Number(values['size-mib']) * mib;

interface Rebuild { address: string; state: string; doneBytes: number; skippedBytes: number; error: string | null }

async function rebuild(cluster: Cluster, address: string): Promise<{ rebuild: Rebuild; seconds: number }> {
  const start = performance.now();
  const response = await fetch(`${cluster.engine.controlUrl}/v1/rebuilds`, { method: 'POST', body: JSON.stringify({ address }) });
  if (response.status !== 202) throw new Error(`rebuild: HTTP ${response.status} ${await response.text()}`);
  const done = await waitFor(`rebuild of ${address}`, async () => {
    const json = (await (await fetch(`${cluster.engine.controlUrl}/v1/rebuilds`)).json()) as { rebuilds: Rebuild[] };
    const r = json.rebuilds.find((x) => x.address === address);
    if (r?.state === 'failed') throw new Error(`rebuild failed: ${r.error ?? '?'}`);
    return r?.state === 'done' ? r : undefined;
  }, 3_600_000);
  return { rebuild: done, seconds: (performance.now() - start) / 1000 };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(values.dir, 'shorthorn-bench-rebuild-'));
  try {
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
    const full = await rebuild(cluster, fresh.address);
    const copyStart = performance.now();
    await run('sh', ['-c', `cp --sparse=always ${join(cluster.replicas[0]!.dir, 'layer-1.data')} ${join(dir, 'plain-copy')} && sync`]);
    const copySeconds = (performance.now() - copyStart) / 1000;
    await rm(join(dir, 'plain-copy'));
    const rebuildMiBs = full.rebuild.doneBytes / mib / full.seconds;
    const copyMiBs = sizeBytes / mib / copySeconds;
    console.log(`full rebuild: ${(full.rebuild.doneBytes / mib).toFixed(0)} MiB in ${full.seconds.toFixed(1)} s = ${rebuildMiBs.toFixed(1)} MiB/s (checksum verification included)`);
    console.log(`plain copy (cp + sync): ${copyMiBs.toFixed(1)} MiB/s; rebuild/copy ratio ${(rebuildMiBs / copyMiBs).toFixed(2)}`);

    const returning = cluster.replicas[1]!;
    await returning.daemon.kill9();
    const changed = Math.max(mib * 2, Math.floor(sizeBytes / 16 / (2 * mib)) * 2 * mib);
    await run('fio', ['--name=w', '--ioengine=nbd', `--uri=${cluster.engine.uri}`, '--rw=write', '--bs=1M', '--iodepth=4', '--offset=0', `--size=${changed}`]);
    await restartReplica(returning, { sizeBytes, volume: 'bench' });
    const back = await rebuild(cluster, returning.address);
    console.log(`returning replica: ${back.rebuild.doneBytes} bytes sent for ${changed} changed: ratio ${(back.rebuild.doneBytes / changed).toFixed(3)}, ${back.seconds.toFixed(1)} s`);
  } finally {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
