// Backup benchmark against a real Ceph RGW (started here): full backup, incremental backup (5 %
// of the blocks changed) and restore throughput, with lz4 and with no compression, next to the
// ceiling of the same machine: reading the same blocks and uploading them (then downloading
// them) with the same S3 client and concurrency, no hashing or compression. Alternates
// compression methods each round; reports medians.
// Run: npx tsc -p tsconfig.json && node dist/bench/backup.js [--rounds 3] [--size-mib 512] [--concurrency 8]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SeededRandom } from '../src/lib/random.ts';
import { MemoryBlockDevice } from '../src/lib/memory-block-device.ts';
import { BackupStore } from '../src/backup/backup-store.ts';
import { S3Target } from '../src/backup/s3-target.ts';
import { createBackup } from '../src/backup/create-backup.ts';
import { restoreBackup } from '../src/backup/restore-backup.ts';
import { runLimited } from '../src/backup/run-limited.ts';
import { MemorySnapshotVolume } from '../src/backup/testing/memory-snapshot-volume.ts';
import type { CompressionMethod } from '../src/format/backup/compression-method.ts';
import { startCephRgw } from '../test/harness/ceph-rgw.ts';

const blockSize = 2 * 1024 * 1024;
const args = process.argv.slice(2);
const arg = (name: string, fallback: number): number => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const rounds = arg('rounds', 3);
const sizeMiB = arg('size-mib', 512);
const concurrency = arg('concurrency', 8);
const MiB = 1024 * 1024;

/** Blocks like a used filesystem: a quarter text-like (compresses well), the rest noise. */
function fillVolume(volume: MemorySnapshotVolume, blocks: readonly number[], random: SeededRandom): void {
  for (const b of blocks) {
    const data = new Uint8Array(blockSize);
    const word = new TextEncoder().encode(`shorthorn-${b}-${random.int(1 << 20)} `);
    for (let i = 0; i < blockSize / 4; i++) data[i] = word[i % word.length]!;
    const noise = new Uint32Array(data.buffer, blockSize / 4, (blockSize * 3) / 16);
    for (let i = 0; i < noise.length; i++) noise[i] = random.int(2 ** 32);
    volume.write(b * blockSize, data);
  }
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

async function main(): Promise<void> {
  const rgw = await startCephRgw();
  const credentials = { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey };
  const client = new S3Client({ region: 'us-east-1', endpoint: rgw.endpoint, forcePathStyle: true, credentials, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  const results: Record<string, number[]> = {};
  const record = (key: string, value: number): void => {
    (results[key] ??= []).push(value);
  };
  try {
    await client.send(new CreateBucketCommand({ Bucket: 'bench' }));
    const blocks = Math.floor((sizeMiB * MiB) / blockSize);
    const random = new SeededRandom(42);
    const volume = new MemorySnapshotVolume(blocks * blockSize);
    fillVolume(volume, Array.from({ length: blocks }, (_, i) => i), random);
    volume.snapshot('s1');
    const changed = Array.from({ length: Math.max(1, Math.round(blocks / 20)) }, (_, i) => Math.floor((i * blocks) / Math.max(1, Math.round(blocks / 20))));
    fillVolume(volume, changed, random);
    volume.snapshot('s2');
    const dataMiB = blocks * 2;
    for (let round = 0; round < rounds; round++) {
      // Ceiling: the same reads and uploads with the same client, no hashing or compression.
      const reader = volume.reader('s1');
      let start = performance.now();
      await runLimited(Array.from({ length: blocks }, (_, i) => i), concurrency, async (b) => {
        const data = await reader.read(b * blockSize, blockSize);
        await client.send(new PutObjectCommand({ Bucket: 'bench', Key: `ceiling/${round}/${b}`, Body: data, ContentLength: data.length }));
      });
      record('ceiling upload MiB/s', dataMiB / ((performance.now() - start) / 1000));
      start = performance.now();
      await runLimited(Array.from({ length: blocks }, (_, i) => i), concurrency, async (b) => {
        const response = await client.send(new GetObjectCommand({ Bucket: 'bench', Key: `ceiling/${round}/${b}` }));
        await response.Body!.transformToByteArray();
      });
      record('ceiling download MiB/s', dataMiB / ((performance.now() - start) / 1000));
      for (const compression of (round % 2 === 0 ? ['lz4', 'none'] : ['none', 'lz4']) as CompressionMethod[]) {
        const target = await S3Target.open({ bucket: 'bench', region: 'us-east-1', prefix: `run-${round}-${compression}`, endpoint: rgw.endpoint, credentials });
        const store = new BackupStore(target);
        const lock = { settleMs: 50 };
        const full = await createBackup(store, volume.reader('s1'), { volumeName: 'bench', backupName: 'backup-full', compression, concurrency, lock });
        record(`full backup ${compression} MiB/s`, full.bytesRead / MiB / (full.elapsedMs / 1000));
        record(`full backup ${compression} uploaded MiB`, full.bytesUploaded / MiB);
        const inc = await createBackup(store, volume.reader('s2'), { volumeName: 'bench', backupName: 'backup-inc', concurrency, lock });
        record(`incremental backup ${compression} s`, inc.elapsedMs / 1000);
        record(`incremental backup ${compression} changed MiB/s`, inc.bytesRead / MiB / (inc.elapsedMs / 1000));
        record(`incremental backup ${compression} uploaded MiB`, inc.bytesUploaded / MiB);
        const device = new MemoryBlockDevice(volume.size);
        start = performance.now();
        await restoreBackup(store, device, { volumeName: 'bench', backupName: 'backup-inc', concurrency, targetIsZeroed: true, lock });
        record(`restore ${compression} MiB/s`, dataMiB / ((performance.now() - start) / 1000));
        await target.deletePrefix('');
        await target.close();
      }
      console.log(`round ${round + 1}/${rounds} done`);
    }
  } finally {
    client.destroy();
    await rgw.stop();
  }
  const summary = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Number(median(v).toFixed(1))]));
  const ratio = (key: string, ceiling: string): string => `${((summary[key] ?? NaN) / (summary[ceiling] ?? NaN)).toFixed(2)}`;
  const lines = [
    `# Backup benchmark (${sizeMiB} MiB volume, ${concurrency} in flight, ${rounds} rounds, medians; Ceph RGW on 127.0.0.1)`,
    '',
    '| measure | value | vs ceiling |',
    '| --- | --- | --- |',
    ...Object.entries(summary).map(([k, v]) => {
      const vs = k.startsWith('full backup') && k.endsWith('MiB/s') ? ratio(k, 'ceiling upload MiB/s') : k.startsWith('restore') ? ratio(k, 'ceiling download MiB/s') : '';
      return `| ${k} | ${v} | ${vs} |`;
    }),
  ];
  console.log(lines.join('\n'));
  const dir = join(fileURLToPath(new URL('.', import.meta.url)), '../../bench/results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(join(dir, `backup-${stamp}.json`), JSON.stringify({ sizeMiB, concurrency, rounds, results, summary }, null, 2));
  writeFileSync(join(dir, `backup-${stamp}.md`), `${lines.join('\n')}\n`);
}

await main();
