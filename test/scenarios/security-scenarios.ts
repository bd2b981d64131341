// S31, security negatives (reliability notes §7.3, §6), on the backup scenarios' real processes
// plus a `shorthorn api` process: hostile names, URLs and bodies through the engine's control
// API, the manager API and the CLI are refused with 4xx and a clear message, and nothing is
// written outside; the API wants its bearer token; a replica refuses a client that names another
// volume and its data stays as it was; an injected S3 secret never reaches a log, an answer or an
// error. What is not there to test (no authentication on the engine control port or the replica
// data port) is reported, not faked.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { connectReplica } from '../../src/engine/replica-client.ts';
import { run, shorthornBin, startDaemon, type Daemon } from '../harness/daemon.ts';
import { freePort } from '../harness/free-port.ts';
import { backupVolume, control, credentials, startBackup, takeSnapshot, targetUrl, waitBackup, writeBlocks, scenarioRandom, type BackupScenarioEnv } from './backup-scenario-env.ts';

/** Every path under `root` (names only), to show that nothing new appeared outside. */
async function tree(root: string): Promise<Set<string>> {
  const out = new Set<string>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      out.add(path);
      if (entry.isDirectory()) await walk(path);
    }
  };
  await walk(root);
  return out;
}

const pathTricks = ['../../x', '..', '../x', 'a/../../x', '%2e%2e%2fx', 'x\u0000y', '/etc/passwd', 'x'.repeat(300)];
const urlTricks = ['file:///etc', 'file:///tmp/x', 'vfs://../../etc', 'vfs:///tmp/../etc', 'vfs:///etc/..', 'nfs://127.0.0.1:/../etc', 's3://bucket@us-east-1/../../x/', 'http://127.0.0.1/x', 'vfs:///tmp/x?y=1'];

export async function scenarioS31(env: BackupScenarioEnv, seed: number): Promise<string[]> {
  const random = scenarioRandom(31, seed);
  const report: string[] = [];
  const before = await tree(env.dir);
  const etcBefore = new Set(await readdir('/etc'));
  const strays = ['/tmp/x', join(env.dir, 'x'), join(env.dir, '..', 'x'), join(env.dir, 'source', 'x')].filter((path) => !existsSync(path));
  const refused = (what: string, answer: { status: number; json: unknown }, allowed: readonly number[] = [400, 422]): void => {
    const text = JSON.stringify(answer.json);
    assert.ok(allowed.includes(answer.status), `${what}: HTTP ${answer.status} ${text.slice(0, 300)}`);
    assert.ok(text.length > 20 && /message|error/i.test(text), `${what}: a clear error, got ${text.slice(0, 200)}`);
  };

  // Engine control API: snapshot names, backup and restore names and URLs, bodies.
  let count = 0;
  for (const name of pathTricks) {
    const created = await control(env.source, 'POST', '/v1/snapshots', { name });
    refused(`engine snapshot ${JSON.stringify(name)}`, created);
    const deleted = await control(env.source, 'DELETE', `/v1/snapshots/${encodeURIComponent(name)}`);
    refused(`engine delete ${JSON.stringify(name)}`, deleted, [400, 404]);
    const reverted = await control(env.source, 'POST', '/v1/snapshots/revert', { name });
    refused(`engine revert ${JSON.stringify(name)}`, reverted, [400, 409]);
    const backup = await control(env.source, 'POST', '/v1/backups', { backupName: name, snapshotName: 'x', targetURL: targetUrl('s31') });
    refused(`engine backup name ${JSON.stringify(name)}`, backup);
    const restore = await control(env.restore, 'POST', '/v1/restore', { targetURL: targetUrl('s31'), backupVolumeName: name, backupName: 'b' });
    refused(`engine restore volume ${JSON.stringify(name)}`, restore);
    count += 5;
  }
  await writeBlocks(env, random, [0]);
  await takeSnapshot(env, `s31-${seed}`);
  for (const url of urlTricks) {
    const backup = await control(env.source, 'POST', '/v1/backups', { backupName: `s31-${seed}`, snapshotName: `s31-${seed}`, targetURL: url });
    refused(`engine backup to ${url}`, backup);
    const restore = await control(env.restore, 'POST', '/v1/restore', { targetURL: url, backupVolumeName: backupVolume, backupName: 'b' });
    refused(`engine restore from ${url}`, restore);
    count += 2;
  }
  const huge = await fetch(`${env.source.engine.controlUrl}/v1/snapshots`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x', labels: { a: 'y'.repeat(1 << 20) } }) });
  refused('engine 1 MiB body', { status: huge.status, json: await huge.json() }, [413]);
  for (const body of ['{"name":', '{"name":"x","__proto__":{"admin":true}}', '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]', '"x"', 'null']) {
    const answer = await fetch(`${env.source.engine.controlUrl}/v1/snapshots`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    refused(`engine body ${body.slice(0, 30)}`, { status: answer.status, json: await answer.json() });
    count++;
  }
  report.push(`engine control: ${count + 1} hostile requests refused (400/404/409/413)`);

  // The manager API as its own process: the token, hostile names, URLs and bodies, the CLI.
  const apiDir = join(env.dir, 's31-api');
  await mkdir(apiDir, { recursive: true });
  const port = await freePort();
  const api: Daemon = await startDaemon({ args: ['api', '--store', `embedded:${join(apiDir, 'store')}`, '--port', String(port)], readyPattern: /listening on/, timeoutMs: 120_000 });
  try {
    const url = `http://127.0.0.1:${port}`;
    const tokenFile = join(apiDir, 'store', 'api-token');
    const token = (await readFile(tokenFile, 'utf8')).trim();
    /** auth: the Authorization header; '' sends none. */
    const call = async (method: string, path: string, body?: string, auth = `Bearer ${token}`): Promise<{ status: number; json: unknown }> => {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { ...(auth === '' ? {} : { authorization: auth }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body }),
      });
      return { status: response.status, json: await response.json() };
    };
    for (const [what, auth] of [['no token', ''], ['a wrong token', `Bearer ${'0'.repeat(64)}`], ['a malformed header', 'Basic eDp5']] as const) {
      // (/healthz is public by design.)
      for (const [method, path] of [['GET', '/v1/volumes'], ['POST', '/v1/volumes'], ['GET', '/v1/settings'], ['PUT', '/v1/settings/backup-target']] as const) {
        const answer = await call(method, path, method === 'GET' ? undefined : '{}', auth);
        refused(`API ${method} ${path} with ${what}`, answer, [401]);
      }
    }
    let apiCount = 12;
    for (const name of pathTricks) {
      refused(`API volume ${JSON.stringify(name)}`, await call('POST', '/v1/volumes', JSON.stringify({ name, size: 1 << 30, numberOfReplicas: 1 })));
      const got = await call('GET', `/v1/backupvolumes/${encodeURIComponent(name)}`);
      refused(`API backup volume ${JSON.stringify(name)}`, got, [400, 404]);
      apiCount += 2;
    }
    assert.equal((await call('POST', '/v1/volumes', JSON.stringify({ name: 'vol-s31', size: 1 << 30, numberOfReplicas: 1 }))).status, 201);
    for (const name of pathTricks) {
      const answer = await call('POST', '/v1/volumes/vol-s31?action=snapshotCreate', JSON.stringify({ name }));
      refused(`API snapshotCreate ${JSON.stringify(name)}`, answer, [400, 409]);
      apiCount++;
    }
    for (const value of [...urlTricks, '/tmp/../etc', '/etc/..', 'relative/dir']) {
      refused(`API backup-target ${value}`, await call('PUT', '/v1/settings/backup-target', JSON.stringify({ value })));
      apiCount++;
    }
    for (const value of ['../../etc/shadow', '/etc/shadow', 'a/b/c']) {
      refused(`API credential secret ${value}`, await call('PUT', '/v1/settings/backup-target-credential-secret', JSON.stringify({ value })));
      apiCount++;
    }
    const big = await call('POST', '/v1/volumes', JSON.stringify({ name: 'big', size: 1 << 30, labels: { a: 'y'.repeat(2 << 20) } }));
    refused('API 2 MiB body', big, [413]);
    for (const body of ['{"name":', '{"name":"v2","size":1073741824,"__proto__":{"x":1}}', `${'['.repeat(5000)}${']'.repeat(5000)}`, '"x"']) {
      refused(`API body ${body.slice(0, 30)}`, await call('POST', '/v1/volumes', body));
      apiCount++;
    }
    // The CLI says what is wrong and exits non-zero.
    const cli = (...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
      run(process.execPath, [shorthornBin, ...args, '--api', url, '--token-file', tokenFile], { allowFailure: true });
    for (const args of [['snapshot', 'create', 'vol-s31', '--name', '../../x'], ['volume', 'create', '../../x', '--size', '1Gi'], ['backup', 'create', 'vol-s31', '../../x']]) {
      const out = await cli(...args);
      assert.notEqual(out.code, 0, `shorthorn ${args.join(' ')} must fail`);
      assert.match(out.stderr, /name|invalid|not possible|must/i, `shorthorn ${args.join(' ')}: a clear message on stderr`);
      apiCount++;
    }
    const wrongToken = join(apiDir, 'wrong-token');
    await run('sh', ['-c', `umask 077; printf '%s' ${'f'.repeat(64)} > ${wrongToken}`]);
    const denied = await run(process.execPath, [shorthornBin, 'volume', 'list', '--api', url, '--token-file', wrongToken], { allowFailure: true });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /token|401|unauthor/i);
    report.push(`manager API and CLI: ${apiCount + 2} hostile requests refused (401 without a valid token, 400/404/409/413/422 otherwise)`);
  } finally {
    await api.stop();
  }

  // A replica refuses a client that presents another volume's name; its data is unchanged.
  const block0 = await env.nbd.read(0, 4096);
  const intruder = await connectReplica(env.source.replicas[0]!.address, { volumeName: 'vol-intruder', timeoutMs: 5000 });
  try {
    for (const attempt of [() => intruder.write(0, new Uint8Array(4096).fill(0xaa)), () => intruder.read(0, 4096), () => intruder.chain()]) {
      await assert.rejects(attempt(), /wrong_volume|serves volume/);
    }
  } finally {
    await intruder.close();
  }
  assert.deepEqual(await env.nbd.read(0, 4096), block0, 'the refused write changed nothing');
  report.push('replica data port: write, read and chain_info naming another volume refused (wrong_volume); data unchanged');

  // An injected secret: a backup with a wrong secret key (RGW answers 403) and one with the
  // right key; neither the answers, the job errors nor any process output contain it.
  const injected = `S31-INJECTED-SECRET-${seed}-${random.int(1 << 30)}`;
  const bad = { ...credentials(env), AWS_SECRET_ACCESS_KEY: injected };
  const started = await control(env.source, 'POST', '/v1/backups', { backupName: `s31-${seed}-bad`, snapshotName: `s31-${seed}`, targetURL: targetUrl('s31'), credentials: bad });
  assert.equal(started.status, 202);
  const failed = await waitBackup(env, `s31-${seed}-bad`);
  assert.equal(failed.state, 'error', 'a wrong secret key fails the backup');
  await startBackup(env, { backupName: `s31-${seed}-good`, snapshotName: `s31-${seed}`, prefix: 's31' });
  const good = await waitBackup(env, `s31-${seed}-good`);
  assert.equal(good.state, 'completed', good.error);
  const answers = JSON.stringify([started.json, failed, good, (await control(env.source, 'GET', '/v1/backups')).json]);
  const outputs = [env.source.engine.daemon, env.restore.engine.daemon, ...env.source.replicas.map((r) => r.daemon), api].map((d) => d.output()).join('\n');
  for (const secret of [injected, env.rgw.secretAccessKey]) {
    assert.ok(!answers.includes(secret), 'no secret in an answer');
    assert.ok(!outputs.includes(secret), 'no secret in any process output');
  }
  report.push(`secrets: a backup with an injected secret failed (${(failed.error ?? '').slice(0, 80)}); neither it nor the real one is in ${outputs.length} bytes of process output or the answers`);

  // Nothing appeared outside the processes' own directories, and nothing in /etc.
  const after = await tree(env.dir);
  // The replicas' own directories change with every snapshot and backup; anything else is new.
  const own = [...env.source.replicas, ...env.restore.replicas].map((r) => `${r.dir}/`);
  const outside = [...after].filter((p) => !before.has(p) && !own.some((dir) => p.startsWith(dir)) && !p.startsWith(apiDir));
  assert.deepEqual(outside, [], 'no file written outside the processes\' directories');
  assert.deepEqual(new Set(await readdir('/etc')), etcBefore, 'nothing new in /etc');
  for (const path of strays) assert.ok(!existsSync(path), `${path} appeared`);
  report.push('no file outside the processes\' directories, none in /etc');
  report.push('not testable because absent: authentication on the engine control port and the replica data port (any local process that knows a volume name can use them)');
  return report;
}
