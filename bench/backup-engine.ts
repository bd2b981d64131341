// Backup benchmark of a real volume through the engine: a 3-replica volume (real `shorthorn
// replica` and `shorthorn engine` processes) filled like a used filesystem, snapshot s1, 5 % of
// its 2 MiB blocks rewritten, snapshot s2; then, alternating lz4 and none each round: a full
// backup of s1 and an incremental backup of s2 through POST /v1/backups to a Ceph RGW started
// here, and a restore of the incremental backup into a second volume through POST /v1/restore.
// Next to it, the ceiling on this machine: the same blocks of s1 read from a replica over the
// replica protocol (read_layer, as the engine's reader does) and uploaded with one PutObject each
// by the same S3 client at the same concurrency, no hashing or compression; and the same objects
// downloaded. Times come from the engine's own job records (startedAt → finishedAt). Medians.
// Run: npx tsc -p tsconfig.json && node dist/bench/backup-engine.js [--rounds 3] [--size-mib 256] [--concurrency 8]
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SeededRandom } from '../src/lib/random.ts';
import { connectReplica } from '../src/engine/replica-client.ts';
import { runLimited } from '../src/backup/run-limited.ts';
import { startCephRgw } from '../test/harness/ceph-rgw.ts';
import { startDaemon, stopAll, waitFor } from '../test/harness/daemon.ts';
import { startCluster, type Cluster } from '../test/harness/volume.ts';

const blockSize = 2 * 1024 * 1024;
const MiB = 1024 * 1024;
const args = process.argv.slice(2);
const arg = (name: string, fallback: number): number => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const rounds = arg('rounds', 3);
const sizeMiB = arg('size-mib', 256);
const concurrency = arg('concurrency', 8);
const sizeBytes = sizeMiB * MiB;

/** A block like a used filesystem's: a quarter text-like (compresses well), the rest noise. */
function fillBlock(b: number, random: SeededRandom): Uint8Array {
  const data = new Uint8Array(blockSize);
  const word = new TextEncoder().encode(`shorthorn-${b}-${random.int(1 << 20)} `);
  for (let i = 0; i < blockSize / 4; i++) data[i] = word[i % word.length]!;
  const noise = new Uint32Array(data.buffer, blockSize / 4, (blockSize * 3) / 16);
  for (let i = 0; i < noise.length; i++) noise[i] = random.int(2 ** 32);
  return data;
}

/** Write blocks into the volume through nbdfuse (a separate process: async writes to its file are safe). */
async function writeBlocks(cluster: Cluster, fuseDir: string, blocks: readonly number[], random: SeededRandom): Promise<void> {
  mkdirSync(fuseDir, { recursive: true });
  const fuse = await startDaemon({ command: 'nbdfuse', args: [fuseDir, cluster.engine.uri], timeoutMs: 10000 });
  try {
    const file = join(fuseDir, 'nbd');
    const handle = await waitFor('nbdfuse', async () => open(file, 'r+').catch(() => undefined));
    try {
      for (const b of blocks) await handle.write(fillBlock(b, random), 0, blockSize, b * blockSize);
      await handle.sync();
    } finally {
      await handle.close();
    }
  } finally {
    await fuse.stop();
  }
}

async function control(cluster: Cluster, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${cluster.engine.controlUrl}${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const json = (await response.json()) as Record<string, unknown>;
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status}: ${JSON.stringify(json)}`);
  return json;
}

/** Wait for a job to finish; its duration from the engine's own record, in seconds. */
async function finished(cluster: Cluster, path: string): Promise<{ seconds: number; job: Record<string, unknown> }> {
  const job = await waitFor(path, async () => {
    const j = await control(cluster, 'GET', path);
    return j['state'] === 'in_progress' ? undefined : j;
  }, 600_000);
  if (job['state'] !== 'completed') throw new Error(`${path}: ${JSON.stringify(job)}`);
  return { seconds: (Date.parse(String(job['finishedAt'])) - Date.parse(String(job['startedAt']))) / 1000, job };
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'shorthorn-bench-bk-'));
  const rgw = await startCephRgw();
  const s3 = { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey };
  const credentials = { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey, AWS_ENDPOINTS: rgw.endpoint };
  const client = new S3Client({ region: 'us-east-1', endpoint: rgw.endpoint, forcePathStyle: true, credentials: s3, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  const results: Record<string, number[]> = {};
  const record = (key: string, value: number): void => {
    (results[key] ??= []).push(value);
  };
  const blocks = Math.floor(sizeBytes / blockSize);
  const dataMiB = (blocks * blockSize) / MiB;
  try {
    await client.send(new CreateBucketCommand({ Bucket: 'bench' }));
    const source = await startCluster({ dir: join(dir, 'source'), volume: 'bench', sizeBytes, replicaCount: 3 });
    const random = new SeededRandom(42);
    await writeBlocks(source, join(dir, 'fuse'), Array.from({ length: blocks }, (_, i) => i), random);
    await control(source, 'POST', '/v1/snapshots', { name: 's1' });
    const changedCount = Math.max(1, Math.round(blocks / 20));
    const changed = Array.from({ length: changedCount }, (_, i) => Math.floor((i * blocks) / changedCount));
    await writeBlocks(source, join(dir, 'fuse'), changed, random);
    await control(source, 'POST', '/v1/snapshots', { name: 's2' });
    const restoreTarget = await startCluster({ dir: join(dir, 'restore'), volume: 'bench-restore', sizeBytes, replicaCount: 3 });
    // The ceiling reads from the engine's read source over its own connection, at the engine's epoch.
    const status = await control(source, 'GET', '/v1/status');
    const replica = await connectReplica(source.replicas[0]!.address, { volumeName: 'bench', epoch: Number(status['epoch']) });
    let run = 0;
    for (let round = 0; round < rounds; round++) {
      let start = performance.now();
      await runLimited(Array.from({ length: blocks }, (_, i) => i), concurrency, async (b) => {
        const data = await replica.readLayer('s1', b * blockSize, blockSize);
        await client.send(new PutObjectCommand({ Bucket: 'bench', Key: `ceiling/${round}/${b}`, Body: data, ContentLength: data.length }));
      });
      record('ceiling: read s1 + upload MiB/s', dataMiB / ((performance.now() - start) / 1000));
      start = performance.now();
      await runLimited(Array.from({ length: blocks }, (_, i) => i), concurrency, async (b) => {
        const response = await client.send(new GetObjectCommand({ Bucket: 'bench', Key: `ceiling/${round}/${b}` }));
        await response.Body!.transformToByteArray();
      });
      record('ceiling: download MiB/s', dataMiB / ((performance.now() - start) / 1000));
      for (const compression of round % 2 === 0 ? ['lz4', 'none'] : ['none', 'lz4']) {
        const targetURL = `s3://bench@us-east-1/run-${round}-${compression}/`;
        run++;
        await control(source, 'POST', '/v1/backups', { backupName: `full-${run}`, snapshotName: 's1', targetURL, credentials, compression, concurrency });
        const full = await finished(source, `/v1/backups/full-${run}`);
        record(`full backup ${compression} MiB/s`, Number(full.job['dataBytes']) / MiB / full.seconds);
        record(`full backup ${compression} data phase MiB/s`, Number(full.job['bytesPerSecond']) / MiB);
        record(`full backup ${compression} uploaded MiB`, Number(full.job['transferBytes']) / MiB);
        await control(source, 'POST', '/v1/backups', { backupName: `inc-${run}`, snapshotName: 's2', targetURL, credentials, concurrency });
        const inc = await finished(source, `/v1/backups/inc-${run}`);
        if (inc.job['mode'] !== 'incremental') throw new Error(`backup inc-${run} was ${String(inc.job['mode'])}`);
        record(`incremental backup ${compression} s`, inc.seconds);
        record(`incremental backup ${compression} blocks read`, Number(inc.job['blocksDone']));
        record(`incremental backup ${compression} uploaded MiB`, Number(inc.job['transferBytes']) / MiB);
        await control(restoreTarget, 'POST', '/v1/restore', { targetURL, credentials, backupVolumeName: 'bench', backupName: `inc-${run}`, concurrency });
        const restored = await finished(restoreTarget, '/v1/restore');
        record(`restore ${compression} MiB/s`, Number(restored.job['dataBytes']) / MiB / restored.seconds);
        record(`restore ${compression} data phase MiB/s`, Number(restored.job['bytesPerSecond']) / MiB);
      }
      console.log(`round ${round + 1}/${rounds} done`);
    }
    await replica.close();
  } finally {
    client.destroy();
    await stopAll();
    await rgw.stop();
    await rm(dir, { recursive: true, force: true });
  }
  const summary = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Number(median(v).toFixed(2))]));
  const ratio = (key: string, ceiling: string): string => `${((summary[key] ?? NaN) / (summary[ceiling] ?? NaN)).toFixed(2)}`;
  const lines = [
    `# Backup through the engine (${sizeMiB} MiB volume, 3 replicas, ${concurrency} in flight, ${rounds} rounds, medians; Ceph RGW on 127.0.0.1)`,
    '',
    'Job rates are data bytes over the job\'s whole time (startedAt → finishedAt, which includes Longhorn\'s 2 s lock settle);',
    '"data phase" rates are the backup library\'s own (from the first block to the last). The restore ceiling only downloads;',
    'a restore also writes every block to 3 replicas through the engine.',
    '',
    `5 % of the blocks (${Math.max(1, Math.round(blocks / 20))} of ${blocks}) change between s1 and s2. Load average at the end: ${loadavg().map((l) => l.toFixed(1)).join(' ')}.`,
    '',
    '| measure | value | vs ceiling |',
    '| --- | --- | --- |',
    ...Object.entries(summary).map(([k, v]) => {
      const vs = k.startsWith('full backup') && k.endsWith('MiB/s') && !k.includes('uploaded') ? ratio(k, 'ceiling: read s1 + upload MiB/s') : k.startsWith('restore') ? ratio(k, 'ceiling: download MiB/s') : '';
      return `| ${k} | ${v} | ${vs} |`;
    }),
  ];
  console.log(lines.join('\n'));
  const out = join(fileURLToPath(new URL('.', import.meta.url)), '../../bench/results');
  mkdirSync(out, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(join(out, `backup-engine-${stamp}.json`), JSON.stringify({ sizeMiB, concurrency, rounds, results, summary }, null, 2));
  writeFileSync(join(out, `backup-engine-${stamp}.md`), `${lines.join('\n')}\n`);
}

await main();
