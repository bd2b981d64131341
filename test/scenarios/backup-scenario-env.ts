// What the backup scenarios (S21–S23, backup-scenarios.ts) share: one Ceph RGW, a source volume
// (engine and two replicas, real processes) written block by block over NBD, a second volume
// (engine and one replica) that every restore goes into, the engines' control API, and the
// backup store seen directly through the library (to list, corrupt and delete objects the way a
// failing target or an operator would). Each snapshot's image is read back through the engine
// when it is taken (SHA-256 per 2 MiB block): what a restore of its backup must give, bit for bit.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { BackupStore } from '../../src/backup/backup-store.ts';
import { S3Target } from '../../src/backup/s3-target.ts';
import type { BackupVolumePaths } from '../../src/format/backup/backup-paths.ts';
import { SeededRandom } from '../../src/lib/random.ts';
import { startCephRgw, type CephRgw } from '../harness/ceph-rgw.ts';
import { run, waitFor } from '../harness/daemon.ts';
import { startCluster, type Cluster } from '../harness/volume.ts';
import { NbdWorkloadClient } from './nbd-workload-client.ts';

export const mib = 1024 * 1024;
export const backupBlock = 2 * mib;
export const volumeBlocks = 16;
const sizeBytes = volumeBlocks * backupBlock;
const bucket = 'scenario-backups';
export const backupVolume = 'vol-bks';

export interface BackupJob {
  backupName: string;
  state: 'in_progress' | 'completed' | 'error';
  blocksDone: number;
  blocksTotal: number;
  mode?: string;
  error?: string;
  blocksUploaded?: number;
}

export interface RestoreOutcome {
  readonly state: string;
  readonly error: string | undefined;
  readonly lastRestoredBackup: string | undefined;
  /** SHA-256 per 2 MiB block of the restored volume, when the restore completed. */
  readonly blocks: string[] | undefined;
}

export interface BackupScenarioEnv {
  readonly dir: string;
  readonly rgw: CephRgw;
  readonly source: Cluster;
  readonly restore: Cluster;
  readonly nbd: NbdWorkloadClient;
  /** Block hashes of every snapshot taken, by name. */
  readonly images: Map<string, string[]>;
  close(): Promise<void>;
}

export async function startBackupScenarioEnv(dir: string): Promise<BackupScenarioEnv> {
  await mkdir(dir, { recursive: true });
  const rgw = await startCephRgw();
  try {
    const client = new S3Client({ region: 'us-east-1', endpoint: rgw.endpoint, forcePathStyle: true, credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey } });
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    client.destroy();
    const source = await startCluster({ dir: join(dir, 'source'), volume: backupVolume, sizeBytes, replicaCount: 2 });
    const restore = await startCluster({ dir: join(dir, 'restore'), volume: 'vol-bks-restore', sizeBytes, replicaCount: 1 });
    const nbd = await NbdWorkloadClient.connect(source.engine.socket, backupVolume);
    return {
      dir, rgw, source, restore, nbd, images: new Map(),
      async close() {
        nbd.destroy();
        for (const cluster of [source, restore]) {
          await cluster.engine.daemon.stop();
          for (const replica of cluster.replicas) await replica.daemon.stop();
        }
        await rgw.stop();
      },
    };
  } catch (error) {
    await rgw.stop();
    throw error;
  }
}

/** s3://bucket@us-east-1/PREFIX/ — one prefix per scenario and seed, so runs never meet. */
export function targetUrl(prefix: string): string {
  return `s3://${bucket}@us-east-1/${prefix}/`;
}

export function credentials(env: BackupScenarioEnv, endpoint = env.rgw.endpoint): Record<string, string> {
  return { AWS_ACCESS_KEY_ID: env.rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: env.rgw.secretAccessKey, AWS_ENDPOINTS: endpoint };
}

/** The target seen by the library, straight to RGW (no fault proxy). */
export async function openStore(env: BackupScenarioEnv, prefix: string): Promise<{ store: BackupStore; paths: BackupVolumePaths; close: () => Promise<void> }> {
  const target = await S3Target.open({ bucket, region: 'us-east-1', prefix, endpoint: env.rgw.endpoint, credentials: { accessKeyId: env.rgw.accessKeyId, secretAccessKey: env.rgw.secretAccessKey } });
  const store = new BackupStore(target);
  return { store, paths: await store.paths(backupVolume), close: () => target.close() };
}

export async function control(cluster: Cluster, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${cluster.engine.controlUrl}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

/** Seeded 2 MiB blocks (half repetitive text, half noise, tagged) written over NBD, then a flush. */
export async function writeBlocks(env: BackupScenarioEnv, random: SeededRandom, blocks: readonly number[]): Promise<void> {
  for (const index of blocks) {
    const data = new Uint8Array(backupBlock);
    const tag = new TextEncoder().encode(`block ${index} version ${random.int(1 << 30)} `);
    for (let i = 0; i < backupBlock / 2; i++) data[i] = tag[i % tag.length]!;
    random.fill(data.subarray(backupBlock / 2));
    await env.nbd.write(index * backupBlock, data);
  }
  await env.nbd.flush();
}

/** Write exact bytes (a block's earlier content, for dedup against an older backup). */
export async function writeBlockBytes(env: BackupScenarioEnv, index: number, data: Uint8Array): Promise<void> {
  await env.nbd.write(index * backupBlock, data);
  await env.nbd.flush();
}

/** Distinct block indexes, seeded. */
export function pickBlocks(random: SeededRandom, count: number, from: readonly number[] = [...Array(volumeBlocks).keys()]): number[] {
  const pool = [...from];
  const out: number[] = [];
  while (out.length < count && pool.length > 0) out.push(pool.splice(random.int(pool.length), 1)[0]!);
  return out.sort((a, b) => a - b);
}

async function deviceImage(env: BackupScenarioEnv, cluster: Cluster, name: string): Promise<Uint8Array> {
  const file = join(env.dir, `${name}.img`);
  await run('nbdcopy', [cluster.engine.uri, file]);
  try {
    return await readFile(file);
  } finally {
    await rm(file, { force: true });
  }
}

export function blockHashes(image: Uint8Array): string[] {
  const out: string[] = [];
  for (let at = 0; at < image.length; at += backupBlock) out.push(createHash('sha256').update(image.subarray(at, at + backupBlock)).digest('hex'));
  return out;
}

/** Snapshot the source and record its image (read through the engine right after). */
export async function takeSnapshot(env: BackupScenarioEnv, name: string): Promise<Uint8Array> {
  const answer = await control(env.source, 'POST', '/v1/snapshots', { name });
  assert.equal(answer.status, 200, JSON.stringify(answer.json));
  const image = await deviceImage(env, env.source, `snap-${name}`);
  env.images.set(name, blockHashes(image));
  return image;
}

export async function waitBackup(env: BackupScenarioEnv, backupName: string, timeoutMs = 120_000): Promise<BackupJob> {
  return waitFor(`backup ${backupName}`, async () => {
    const { status, json } = await control(env.source, 'GET', `/v1/backups/${backupName}`);
    assert.equal(status, 200, JSON.stringify(json));
    const job = json as unknown as BackupJob;
    return job.state === 'in_progress' ? undefined : job;
  }, timeoutMs);
}

export interface BackupAsk {
  readonly backupName: string;
  readonly snapshotName: string;
  readonly prefix: string;
  readonly endpoint?: string;
  readonly mode?: 'full' | 'incremental';
  readonly concurrency?: number;
}

export async function startBackup(env: BackupScenarioEnv, ask: BackupAsk): Promise<void> {
  const body = {
    backupName: ask.backupName, snapshotName: ask.snapshotName, targetURL: targetUrl(ask.prefix), credentials: credentials(env, ask.endpoint),
    ...(ask.mode === undefined ? {} : { mode: ask.mode }), ...(ask.concurrency === undefined ? {} : { concurrency: ask.concurrency }),
  };
  const answer = await control(env.source, 'POST', '/v1/backups', body);
  assert.equal(answer.status, 202, JSON.stringify(answer.json));
}

export async function backup(env: BackupScenarioEnv, ask: BackupAsk): Promise<BackupJob> {
  await startBackup(env, ask);
  return waitBackup(env, ask.backupName);
}

/** Restore a backup into the second volume; on success, its image's block hashes. */
export async function restore(env: BackupScenarioEnv, prefix: string, backupName: string): Promise<RestoreOutcome> {
  const started = await waitFor('the restore to be accepted', async () => {
    const answer = await control(env.restore, 'POST', '/v1/restore', { targetURL: targetUrl(prefix), credentials: credentials(env), backupVolumeName: backupVolume, backupName });
    return answer.status === 409 ? undefined : answer;
  });
  assert.equal(started.status, 202, JSON.stringify(started.json));
  const status = await waitFor(`restore of ${backupName}`, async () => {
    const { json } = await control(env.restore, 'GET', '/v1/restore');
    return json['state'] === 'in_progress' ? undefined : json;
  }, 120_000);
  const state = String(status['state']);
  const blocks = state === 'completed' ? blockHashes(await deviceImage(env, env.restore, `restored-${backupName}`)) : undefined;
  return {
    state,
    error: typeof status['error'] === 'string' ? status['error'] : undefined,
    lastRestoredBackup: typeof status['lastRestoredBackup'] === 'string' ? status['lastRestoredBackup'] : undefined,
    blocks,
  };
}

/** A restore that must complete and give the snapshot's image bit for bit. */
export async function assertRestoresTo(env: BackupScenarioEnv, prefix: string, backupName: string, snapshotName: string, note: string): Promise<void> {
  const outcome = await restore(env, prefix, backupName);
  assert.equal(outcome.state, 'completed', `restore of ${backupName}: ${outcome.error ?? ''} (${note})`);
  assert.equal(outcome.lastRestoredBackup, backupName);
  const expected = env.images.get(snapshotName);
  assert.ok(expected !== undefined, `no image recorded for snapshot ${snapshotName}`);
  const differing = expected.flatMap((hash, i) => (outcome.blocks![i] === hash ? [] : [i]));
  assert.deepEqual(differing, [], `restore of ${backupName} differs from snapshot ${snapshotName} in blocks ${differing.join(', ')} (${note})`);
}

/** A restore that must fail visibly: state error with a message, never completed, not claimed. */
export async function assertRestoreFails(env: BackupScenarioEnv, prefix: string, backupName: string, expected: RegExp, note: string): Promise<string> {
  const outcome = await restore(env, prefix, backupName);
  assert.equal(outcome.state, 'error', `restore of ${backupName} must fail (${note}), got ${outcome.state}`);
  assert.match(outcome.error ?? '', expected, `restore of ${backupName}: the error names the cause (${note})`);
  assert.notEqual(outcome.lastRestoredBackup, backupName, `a failed restore of ${backupName} is not claimed (${note})`);
  return outcome.error ?? '';
}

export function scenarioRandom(scenario: number, seed: number): SeededRandom {
  return new SeededRandom(seed * 1000 + scenario);
}
