// The S3 target against a real Ceph RGW started by this file: the conformance suite (each test in
// a fresh prefix of one bucket, and one in a bucket root), credentials from a secret directory
// and the environment, and credentials kept out of everything printed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { S3Target } from '../../src/backup/s3-target.ts';
import { runBackupTargetConformance } from '../../src/backup/backup-target.conformance.ts';
import { isBackupError } from '../../src/format/backup/backup-error.ts';
import { startCephRgw, type CephRgw } from '../harness/ceph-rgw.ts';

let rgw: CephRgw;
let count = 0;

before(async () => {
  rgw = await startCephRgw();
  const client = new S3Client({ region: 'us-east-1', endpoint: rgw.endpoint, forcePathStyle: true, credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey } });
  await client.send(new CreateBucketCommand({ Bucket: 'conformance' }));
  await client.send(new CreateBucketCommand({ Bucket: 'root-bucket' }));
  client.destroy();
});
after(async () => {
  await rgw?.stop();
});

const credentials = (): { accessKeyId: string; secretAccessKey: string } => ({ accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey });

runBackupTargetConformance({
  name: 'S3Target on Ceph RGW',
  create: () => S3Target.open({ bucket: 'conformance', region: 'us-east-1', prefix: `run/t${++count}`, endpoint: rgw.endpoint, credentials: credentials() }),
});

test('S3Target: a target at the bucket root lists and deletes only its keys', async () => {
  const target = await S3Target.open({ bucket: 'root-bucket', region: '', prefix: '', endpoint: rgw.endpoint, credentials: credentials() });
  try {
    await target.write('backupstore/x', new Uint8Array([1]));
    const seen: string[] = [];
    for await (const entry of target.list('')) seen.push(entry.key);
    assert.deepEqual(seen, ['backupstore/x']);
    assert.equal(target.url, 's3://root-bucket/');
  } finally {
    await target.close();
  }
});

test('S3Target: credentials and endpoint from a secret directory or the environment; never printed', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'shorthorn-secret-'));
  try {
    await writeFile(join(dir, 'AWS_ACCESS_KEY_ID'), `${rgw.accessKeyId}\n`);
    await writeFile(join(dir, 'AWS_SECRET_ACCESS_KEY'), rgw.secretAccessKey);
    await writeFile(join(dir, 'AWS_ENDPOINTS'), rgw.endpoint);
    const fromDir = await S3Target.open({ bucket: 'conformance', region: 'us-east-1', prefix: 'secret-dir', secretDir: dir, env: {} });
    await fromDir.write('k', new Uint8Array([7]));
    assert.deepEqual(await fromDir.read('k', 1), new Uint8Array([7]));
    const printed = `${inspect(fromDir, { depth: 10 })} ${JSON.stringify(fromDir)} ${String(fromDir.url)}`;
    assert.ok(!printed.includes(rgw.secretAccessKey), printed);
    await fromDir.close();
    const fromEnv = await S3Target.open({
      bucket: 'conformance', region: 'us-east-1', prefix: 'secret-dir',
      env: { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey, AWS_ENDPOINTS: rgw.endpoint },
    });
    assert.deepEqual(await fromEnv.read('k', 1), new Uint8Array([7]));
    await fromEnv.close();
    await assert.rejects(S3Target.open({ bucket: 'conformance', region: '', prefix: '', env: {} }), (e) => isBackupError(e, 'invalid_argument') && /credentials/.test(e.message));
    const wrong = await S3Target.open({ bucket: 'conformance', region: '', prefix: '', endpoint: rgw.endpoint, credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: 'wrong-secret-value' }, maxAttempts: 1 });
    const error = await wrong.read('secret-dir/k', 1).then(() => undefined, (e: unknown) => e);
    assert.ok(isBackupError(error, 'io'), String(error));
    assert.ok(!String(error).includes('wrong-secret-value') && !String(error).includes(rgw.secretAccessKey));
    await wrong.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
