// Disaster-recovery volumes end to end: two Shorthorn clusters on this host (own stores, node
// agents, managers and APIs) share one directory backup target. Cluster A writes a 64 MiB volume
// (ext4 in its first 32 MiB, raw seeded blocks above, so the changed 2 MiB blocks are known
// exactly) and backs it up again and again; cluster B's standby volume follows. Every
// incremental restore must write exactly the changed blocks and zero exactly the dropped ones.
// B's manager is killed (-9) in the middle of one incremental restore and B's engine in the middle
// of another: the standby never claims a backup before it holds it and ends up correct. While
// standby its engine runs with the frontend disabled: no NBD socket, nbdinfo fails. Then A is
// stopped, B's volume is activated (restoring the last backup first) and equals A's last backed-up
// snapshot bit for bit, served on that same socket path; RTO (activate → attached and ext4 mounted) is measured and printed with
// the backup interval (RPO).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { processTableFileName } from '../../src/agent/process-table.ts';
import { testSeed } from '../../src/backup/testing/backup-fixture.ts';
import type { Engine } from '../../src/control/resources/engine.ts';
import type { Volume, VolumeStatus } from '../../src/control/resources/volume.ts';
import type { ResourceStore } from '../../src/control/store/resource-store.ts';
import { SqliteStore } from '../../src/control/store/sqlite-store.ts';
import { SeededRandom } from '../../src/lib/random.ts';
import { run, shorthornBin, startDaemon, stopAll, waitFor, withTempDir, type Daemon } from '../harness/daemon.ts';
import { freePort } from '../harness/free-port.ts';
import { isAlive } from '../harness/local-cluster.ts';
import { portBlock } from '../harness/port-block.ts';

after(stopAll);

const seed = testSeed();
const mib = 1024 * 1024;
const blockBytes = 2 * mib;
const sizeBytes = 64 * mib;
const blocks = sizeBytes / blockBytes;
/** The ext4 filesystem covers the first 32 MiB; blocks 16–31 are raw data the test changes. */
const fsBytes = 32 * mib;

interface Cluster {
  readonly name: string;
  readonly dir: string;
  readonly store: ResourceStore;
  readonly daemons: Map<string, Daemon>;
  readonly managerArgs: readonly string[];
  call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
}

async function startCluster(name: string, dir: string, firstPort: number): Promise<Cluster> {
  const storeDir = join(dir, 'store');
  const storeArg = `embedded:${storeDir}`;
  const disk = join(dir, 'node-1-disk');
  await mkdir(disk, { recursive: true });
  const daemons = new Map<string, Daemon>();
  daemons.set('agent', await startDaemon({
    args: [
      'node', '--name', 'node-1', '--data', join(dir, 'node-1'), '--store', storeArg, '--disk', disk, '--port-range', `${firstPort}-${firstPort + 19}`,
      '--sync-interval-ms', '200', '--restart-backoff-ms', '200', '--lease-ttl-ms', '15000',
    ],
    readyPattern: /node agent running/, timeoutMs: 60_000,
  }));
  const managerArgs = ['manager', '--store', storeArg, '--id', `mgr-${name}`];
  daemons.set('manager', await startDaemon({ args: managerArgs, readyPattern: /manager running/, timeoutMs: 60_000 }));
  const port = await freePort();
  daemons.set('api', await startDaemon({ args: ['api', '--store', storeArg, '--port', String(port)], readyPattern: /listening on/, timeoutMs: 120_000 }));
  const url = `http://127.0.0.1:${port}`;
  const tokenFile = join(storeDir, 'api-token');
  const token = (await readFile(tokenFile, 'utf8')).trim();
  return {
    name, dir, daemons, managerArgs,
    store: new SqliteStore({ dataDir: storeDir, pollIntervalMs: 10 }),
    call: async <T,>(method: string, path: string, body?: unknown) => {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: response.status, body: (await response.json()) as T };
    },
    cli: (...args: string[]) => run(process.execPath, [shorthornBin, ...args, '--api', url, '--token-file', tokenFile], { allowFailure: true }),
  };
}

/** Kill the engine and replica processes a cluster's agent started (never a recycled pid). */
function killInstances(cluster: Cluster): void {
  const path = join(cluster.dir, 'node-1', processTableFileName);
  if (!existsSync(path)) return;
  const table = JSON.parse(readFileSync(path, 'utf8')) as { entries: { pid?: number }[] };
  for (const { pid } of table.entries) {
    if (pid === undefined || !isAlive(pid)) continue;
    if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(cluster.dir)) process.kill(pid, 'SIGKILL');
  }
}

function dump(cluster: Cluster): string {
  const parts = [...cluster.daemons].map(([what, d]) => `--- ${cluster.name} ${what}\n${d.output().slice(-6000)}`);
  const logs = join(cluster.dir, 'node-1', 'logs');
  if (existsSync(logs)) for (const file of readdirSync(logs)) parts.push(`--- ${cluster.name} ${file}\n${readFileSync(join(logs, file), 'utf8').slice(-4000)}`);
  return parts.join('\n');
}

async function ok<T = Record<string, unknown>>(cluster: Cluster, method: string, path: string, body?: unknown): Promise<T> {
  const answer = await cluster.call<T>(method, path, body);
  assert.ok(answer.status < 300, `${cluster.name}: ${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

async function cliOk(cluster: Cluster, ...args: string[]): Promise<string> {
  const result = await cluster.cli(...args);
  assert.equal(result.code, 0, `${cluster.name}: shorthorn ${args.join(' ')}: ${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** `volume attach --wait --json`: the NBD URI it prints. */
async function attachUri(cluster: Cluster, volume: string): Promise<string> {
  const printed = JSON.parse(await cliOk(cluster, 'volume', 'attach', volume, '--node', 'node-1', '--wait', '--json')) as { uri?: string | null };
  assert.ok(typeof printed.uri === 'string', `attach --wait prints the NBD URI: ${JSON.stringify(printed)}`);
  return printed.uri;
}

async function volumeStatus(cluster: Cluster, name: string): Promise<VolumeStatus> {
  return ((await cluster.store.get('Volume', name)) as Volume).status ?? {};
}

async function engineOf(cluster: Cluster, volume: string): Promise<Engine> {
  return (await cluster.store.get('Engine', `${volume}-e-0`)) as Engine;
}

function sha(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

async function deviceSha(dir: string, uri: string, name: string): Promise<string> {
  const file = join(dir, `${name}.img`);
  await run('nbdcopy', [uri, file]);
  return sha(await readFile(file));
}

interface RestoreReport { state: string; backupName?: string; blocksDone: number; blocksTotal: number }

/**
 * Poll B's engine until a restore of `backupName` has written some but not all of its blocks,
 * then run `kill`. False when the restore finished before it was seen in the middle.
 */
async function killMidRestore(cluster: Cluster, backupName: string, kill: (engine: Engine) => Promise<void>): Promise<boolean> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const engine = await engineOf(cluster, 'vol-dr');
    const address = engine.status?.currentState === 'running' ? `${engine.status.ip ?? ''}:${engine.status.port ?? 0}` : undefined;
    if (address !== undefined) {
      const response = await fetch(`http://${address}/v1/restore`).catch(() => undefined);
      const report = response?.ok === true ? ((await response.json()) as RestoreReport) : undefined;
      if (report?.backupName === backupName) {
        if (report.state === 'in_progress' && report.blocksDone >= 1 && report.blocksDone < report.blocksTotal) {
          await kill(engine);
          console.log(`killed during the restore of ${backupName} at ${report.blocksDone}/${report.blocksTotal} blocks`);
          return true;
        }
        if (report.state === 'completed') return false;
      }
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`no restore of ${backupName} seen on ${cluster.name} within 120 s`);
}

test(`DR volume follows backups incrementally, survives manager and engine kills, activates bit for bit (seed ${seed})`, { timeout: 900_000 }, async () => {
  await withTempDir('dr', async (dir) => {
    const random = new SeededRandom(seed);
    process.env['SHORTHORN_RUN_DIR'] = join(dir, 'run');
    const target = join(dir, 'backups');
    // Ports from a block this test process holds (test/harness/port-block.ts), so files running
    // at the same time never share one.
    const firstPort = (await portBlock()).first;
    let a: Cluster | undefined;
    let b: Cluster | undefined;
    let last = Date.now();
    const step = (what: string): void => {
      console.log(`${what}: ${Date.now() - last} ms`);
      last = Date.now();
    };
    try {
      // Separate stores: the two clusters can start side by side.
      [a, b] = await Promise.all([startCluster('a', join(dir, 'a'), firstPort), startCluster('b', join(dir, 'b'), firstPort + 20)]);
      const A = a;
      const B = b;
      step('two clusters started');
      for (const c of [A, B]) {
        await ok(c, 'PUT', '/v1/settings/backupstore-poll-interval', { value: '1' });
        await ok(c, 'PUT', '/v1/settings/backup-target', { value: target });
      }
      // One block at a time: restores last long enough to be killed in the middle.
      await ok(B, 'PUT', '/v1/settings/restore-concurrent-limit', { value: '1' });

      // A: the volume, ext4 in the first half (with a file), seeded raw blocks in the second.
      await ok(A, 'POST', '/v1/volumes', { name: 'vol-a', size: '64Mi', numberOfReplicas: 1 });
      await waitFor('vol-a detached', async () => ((await volumeStatus(A, 'vol-a')).state === 'detached' ? true : undefined), 60_000);
      const uriA = await attachUri(A, 'vol-a');
      const files = join(dir, 'files');
      await mkdir(files);
      const note = `written on cluster A, seed ${seed}\n`;
      await writeFile(join(files, 'hello.txt'), note);
      const fsImage = join(dir, 'fs.img');
      await writeFile(fsImage, new Uint8Array(fsBytes));
      await run('mkfs.ext4', ['-q', '-F', '-d', files, fsImage]);
      const model = new Uint8Array(sizeBytes);
      model.set(await readFile(fsImage), 0);
      for (let block = fsBytes / blockBytes; block < blocks; block++) random.fill(model.subarray(block * blockBytes, (block + 1) * blockBytes));
      const mappedBlocks = (): number => {
        let n = 0;
        for (let block = 0; block < blocks; block++) if (model.subarray(block * blockBytes, (block + 1) * blockBytes).some((x) => x !== 0)) n++;
        return n;
      };

      let serial = 0;
      const backupTimes: number[] = [];
      /** Write the model into A, snapshot, back up; the backup's name. */
      const backupA = async (): Promise<string> => {
        serial++;
        await writeFile(join(dir, 'model.img'), model);
        await run('nbdcopy', [join(dir, 'model.img'), uriA]);
        await ok(A, 'POST', '/v1/volumes/vol-a?action=snapshotCreate', { name: `snap-${serial}` });
        await waitFor(`snap-${serial} ready`, async () => ((await ok<{ status?: { readyToUse?: boolean } }>(A, 'GET', `/v1/snapshots/snap-${serial}`)).status?.readyToUse === true ? true : undefined), 60_000);
        const created = JSON.parse(await cliOk(A, 'backup', 'create', 'vol-a', `snap-${serial}`, '--json', '--timeout', '180')) as { id: string; status?: { state?: string } };
        assert.equal(created.status?.state, 'Completed');
        backupTimes.push(Date.now());
        return created.id;
      };
      const change = (list: readonly number[], zero: readonly number[] = []): void => {
        for (const block of list) random.fill(model.subarray(block * blockBytes, (block + 1) * blockBytes));
        for (const block of zero) model.fill(0, block * blockBytes, (block + 1) * blockBytes);
      };
      /** Wait until B's standby holds `backupName`; check what the last restore wrote. */
      const followed = async (backupName: string, expected: { from?: string; fetched: number; zeroed: number }): Promise<VolumeStatus> => {
        const status = await waitFor(`vol-dr holds ${backupName}`, async () => {
          const s = await volumeStatus(B, 'vol-dr');
          return s.lastRestoredBackup === backupName && s.restoringBackup === undefined ? s : undefined;
        }, 180_000);
        assert.deepEqual(
          { mode: status.lastRestore?.mode, from: status.lastRestore?.fromBackupName, fetched: status.lastRestore?.blocksFetched, zeroed: status.lastRestore?.blocksZeroed },
          { mode: expected.from === undefined ? 'full' : 'incremental', from: expected.from, fetched: expected.fetched, zeroed: expected.zeroed },
          `restore of ${backupName} (seed ${seed})`,
        );
        assert.equal(status.isStandby, true);
        return status;
      };

      const b1 = await backupA();
      const modelSha1 = sha(model);
      assert.equal(await deviceSha(dir, uriA, 'a1'), modelSha1, 'A holds the model');
      step('A: volume written and first backup');

      // B: the standby volume, from the backup URL B's mirror shows.
      const url = await waitFor('B mirrors the first backup', async () => {
        const got = await B.call<{ status?: { state?: string; url?: string } }>('GET', `/v1/backups/${b1}`);
        return got.status === 200 && got.body.status?.state === 'Completed' ? got.body.status.url : undefined;
      }, 60_000);
      assert.ok(url !== undefined);
      await cliOk(B, 'volume', 'create', 'vol-dr', '--from-backup', url, '--standby', '--replicas', '1');
      await followed(b1, { fetched: mappedBlocks(), zeroed: 0 });
      const refused = await B.call('POST', '/v1/volumes/vol-dr?action=attach', { hostId: 'node-1' });
      assert.equal(refused.status, 409, 'a standby volume cannot be attached by users');
      const snapshotRefused = await B.call('POST', '/v1/volumes/vol-dr?action=snapshotCreate', {});
      assert.equal(snapshotRefused.status, 409, 'nor snapshotted');
      // Never serving I/O while standby (issue #10): its running engine has no frontend.
      const standbySocket = join(B.dir, 'node-1', 'sockets', 'vol-dr-e-0.sock');
      const standbyEngine = (await B.store.get('Engine', 'vol-dr-e-0')) as Engine;
      assert.deepEqual([standbyEngine.status?.currentState, standbyEngine.spec.disableFrontend], ['running', true], 'the standby engine runs in maintenance mode');
      assert.equal((await volumeStatus(B, 'vol-dr')).frontendDisabled, true);
      const nbdRefused = await run('nbdinfo', ['--size', `nbd+unix:///vol-dr?socket=${standbySocket}`], { allowFailure: true });
      assert.notEqual(nbdRefused.code, 0, `nbdinfo on the standby's engine socket must fail: ${nbdRefused.stdout}`);
      step('B: standby created, first backup restored in full, no NBD while standby');

      // Incremental: three blocks rewritten, one zeroed (dropped from the backup's map).
      change([16, 17, 20], [21]);
      const b2 = await backupA();
      await followed(b2, { from: b1, fetched: 3, zeroed: 1 });
      assert.match(await cliOk(B, 'volume', 'get', 'vol-dr'), new RegExp(`Last restore: +${b2}: incremental from ${b1}, 3 blocks written, 1 zeroed`));
      assert.equal((await A.call('POST', '/v1/volumes/vol-a?action=activate', {})).status, 409, 'only a standby volume can be activated');
      step('B: incremental restore of 3 changed + 1 zeroed block');

      // B's manager killed in the middle of an incremental restore; the engine goes on alone.
      let base = b2;
      let killedManager = false;
      for (let attempt = 1; attempt <= 4 && !killedManager; attempt++) {
        change([16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29]);
        const next = await backupA();
        const manager = B.daemons.get('manager')!;
        killedManager = await killMidRestore(B, next, () => manager.kill9());
        if (killedManager) {
          const held = await volumeStatus(B, 'vol-dr');
          assert.deepEqual([held.lastRestoredBackup, held.restoringBackup], [base, next], 'while the manager is down the standby claims only what it held');
          B.daemons.set('manager', await startDaemon({ args: B.managerArgs, readyPattern: /manager running/, timeoutMs: 120_000 }));
        }
        await followed(next, { from: base, fetched: 14, zeroed: 0 });
        base = next;
        console.log(`manager kill attempt ${attempt}: ${killedManager ? 'killed mid-restore' : 'the restore ended before it was seen midway'}`);
      }
      assert.ok(killedManager, 'the manager was killed in the middle of an incremental restore');
      step('B: manager killed mid-restore, restarted, restore completed');

      // B's engine killed in the middle of an incremental restore: restored again from the base.
      let killedEngine = false;
      for (let attempt = 1; attempt <= 4 && !killedEngine; attempt++) {
        change([18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31], [16]);
        const next = await backupA();
        killedEngine = await killMidRestore(B, next, (engine) => {
          process.kill(engine.status!.pid!, 'SIGKILL');
          return Promise.resolve();
        });
        if (killedEngine) {
          const held = await volumeStatus(B, 'vol-dr');
          assert.equal(held.lastRestoredBackup, base, 'a killed restore is not claimed');
        }
        // The whole delta again from the base (14 blocks and the zeroed one), not a partial one.
        await followed(next, { from: base, fetched: 14, zeroed: 1 });
        base = next;
        // Block 16 is zero now: filled again, so a further round zeroes it again (and the last
        // backup below changes it with block 31).
        change([16]);
        console.log(`engine kill attempt ${attempt}: ${killedEngine ? 'killed mid-restore' : 'the restore ended before it was seen midway'}`);
      }
      assert.ok(killedEngine, 'the engine was killed in the middle of an incremental restore');
      step('B: engine killed mid-restore, restarted, restore redone from the base');

      // The last backup: B is not told (its poll interval is made long), then A stops.
      await ok(B, 'PUT', '/v1/settings/backupstore-poll-interval', { value: '3600' });
      change([31]);
      const lastBackup = await backupA();
      const lastSha = sha(model);
      assert.equal(await deviceSha(dir, uriA, 'a-last'), lastSha, 'A holds the model');
      const rpoSeconds = backupTimes.length < 2 ? NaN : (backupTimes[backupTimes.length - 1]! - backupTimes[0]!) / (backupTimes.length - 1) / 1000;
      await cliOk(A, 'volume', 'detach', 'vol-a', '--wait');
      for (const d of A.daemons.values()) await d.stop();
      killInstances(A);
      assert.equal((await volumeStatus(B, 'vol-dr')).lastRestoredBackup, base, 'B has not seen the last backup yet');
      step('A: last backup, cluster A stopped');

      // Activate: the last backup is restored first (incremental: blocks 16 and 31).
      const activateStart = Date.now();
      const activated = JSON.parse(await cliOk(B, 'volume', 'activate', 'vol-dr', '--wait', '--json', '--timeout', '300')) as { status?: VolumeStatus };
      const activatedMs = Date.now() - activateStart;
      assert.equal(activated.status?.isStandby, false);
      assert.equal(activated.status?.restoreRequired, false);
      assert.equal(activated.status?.lastRestoredBackup, lastBackup);
      assert.deepEqual([activated.status?.lastRestore?.fromBackupName, activated.status?.lastRestore?.blocksFetched, activated.status?.lastRestore?.blocksZeroed], [base, 2, 0]);
      step('B: activated');

      // Bit for bit, before anything mounts it (a mount writes ext4's superblock).
      const uriB = await attachUri(B, 'vol-dr');
      assert.equal(uriB, `nbd+unix:///vol-dr?socket=${standbySocket}`, 'the activated volume serves where the standby refused');
      assert.equal(await deviceSha(dir, uriB, 'b-activated'), lastSha, `the activated volume equals A's last backed-up snapshot (seed ${seed})`);
      await cliOk(B, 'volume', 'detach', 'vol-dr', '--wait');
      step('B: compared bit for bit');

      // RTO: activate (above) + attach and mount ext4 as a user would; the comparison is left out.
      const mnt = join(dir, 'mnt');
      const mountStart = Date.now();
      await cliOk(B, 'volume', 'attach', 'vol-dr', '--node', 'node-1', '--mount', mnt);
      const mountMs = Date.now() - mountStart;
      assert.equal(await readFile(join(mnt, 'hello.txt'), 'utf8'), note, 'the file A wrote is in the mounted filesystem');
      await cliOk(B, 'volume', 'detach', 'vol-dr', '--wait');
      const rtoMs = activatedMs + mountMs;
      console.log(
        `DR measured: RTO ${(rtoMs / 1000).toFixed(1)} s = activate incl. restore of the last backup ${(activatedMs / 1000).toFixed(1)} s + attach and mount ext4 ${(mountMs / 1000).toFixed(1)} s; ` +
          `RPO = the backup interval, ${rpoSeconds.toFixed(1)} s in this test (${backupTimes.length} backups; standby poll interval 1 s while following)`,
      );
      step('B: attached and mounted, detached');
    } catch (error) {
      for (const c of [a, b]) if (c !== undefined) process.stderr.write(`${dump(c)}\n`);
      throw error;
    } finally {
      await stopAll();
      for (const c of [a, b]) {
        if (c === undefined) continue;
        killInstances(c);
        await c.store.close();
      }
    }
  });
});
