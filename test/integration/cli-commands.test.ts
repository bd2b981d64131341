// The CLI's newer commands against a real `shorthorn api` process on the embedded store (beside
// cli-api.test.ts, so the two files run in parallel): disk list|add|update, replica list and the
// replica table of volume get, and the host options of volume attach|detach that need no
// manager — refused combinations (exit 1), a wait that runs out (6), a damaged attachment record
// (5). The full attach --mount path runs in test/e2e/walkthrough.test.ts.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { resourceExamples } from '../../src/control/resources/testing/resource-examples.ts';
import { openStore } from '../../src/control/store/open-store.ts';
import type { ResourceStore } from '../../src/control/store/resource-store.ts';
import { run, shorthornBin, startDaemon, stopAll, type Daemon } from '../harness/daemon.ts';

let dir: string;
let api: Daemon;
let url: string;
let store: ResourceStore;
let runDir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shorthorn-cli-commands-'));
  // Attachment records of `volume attach --device|--mount` go here, not to /run/shorthorn.
  runDir = join(dir, 'run');
  process.env['SHORTHORN_RUN_DIR'] = runDir;
  api = await startDaemon({ args: ['api', '--store', `embedded:${dir}`, '--port', '0'], readyPattern: /listening on (http:\/\/127\.0\.0\.1:\d+)/ });
  url = api.ready[1] ?? '';
  store = openStore({ backend: 'embedded', dataDir: dir, pollIntervalMs: 5 });
  for (const name of ['node-1', 'node-2']) await store.create({ ...structuredClone(resourceExamples.Node), metadata: { name } });
});
after(async () => {
  await api.stop();
  await stopAll();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(process.execPath, [shorthornBin, ...args, '--api', url, '--token-file', join(dir, 'api-token')], { allowFailure: true });
}

async function ok(...args: string[]): Promise<string> {
  const result = await cli(...args);
  assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

describe('shorthorn CLI: disks, replicas, attach host options', () => {
  test('disk list, add, update', async () => {
    assert.match(await ok('disk', 'list'), /^NODE\s+DISK\s+PATH\s+SCHEDULABLE\s+EVICTING\s+RESERVED\s+USED\s+SCHEDULED\s+TAGS\nnode-1\s+default-disk\s+\/var\/lib\/shorthorn\s+yes/);
    assert.match(await ok('disk', 'add', 'node-1', '/mnt/extra', '--tags', 'ssd,fast'), /disk extra \(\/mnt\/extra\) added to node node-1/);
    const disks = (JSON.parse(await ok('disk', 'list', 'node-1', '--json')) as { disks: Record<string, { path: string; tags: string[]; allowScheduling: boolean }> }[])[0]?.disks;
    assert.deepEqual(disks?.['extra'], { diskType: 'filesystem', path: '/mnt/extra', allowScheduling: true, evictionRequested: false, storageReserved: 0, tags: ['ssd', 'fast'] });
    assert.match(await ok('disk', 'update', 'node-1', 'extra', '--scheduling', 'off', '--reserved', '1Gi'), /node-1\s+extra\s+\/mnt\/extra\s+no\s+no\s+1 GiB/);
    const [again, relative, traversal, noDisk, noNode, nothing, badSize] = await Promise.all([
      cli('disk', 'add', 'node-1', '/mnt/extra'),
      cli('disk', 'add', 'node-1', 'relative/path', '--name', 'rel'),
      cli('disk', 'add', 'node-1', '/mnt/../etc', '--name', 'up'),
      cli('disk', 'update', 'node-1', 'nope', '--scheduling', 'off'),
      cli('disk', 'update', 'node-9', 'extra', '--scheduling', 'off'),
      cli('disk', 'update', 'node-1', 'extra'),
      cli('disk', 'update', 'node-1', 'extra', '--reserved', 'lots'),
    ]);
    assert.deepEqual([again, relative, traversal, noDisk, noNode, nothing, badSize].map((r) => r.code), [1, 1, 1, 2, 2, 1, 1]);
    assert.match(again.stderr, /has a disk named extra already/);
    assert.match(traversal.stderr, /must not contain '\.\.'/);
  });

  test('replica list and volume get show replicas with node, state and pid', async () => {
    await ok('volume', 'create', 'vol-rep', '--size', '1Gi');
    const example = structuredClone(resourceExamples.Replica);
    await store.create({ ...example, metadata: { name: 'vol-rep-r-00000001' }, spec: { ...example.spec, volumeName: 'vol-rep' }, status: { currentState: 'running', pid: 4242, ip: '127.0.0.1', port: 10000 } });
    await store.create({ ...example, metadata: { name: 'vol-rep-r-00000002' }, spec: { ...example.spec, volumeName: 'vol-rep', nodeID: 'node-2' }, status: { currentState: 'stopped' } });
    const [list, pids, onNode, get] = await Promise.all([
      ok('replica', 'list', 'vol-rep'),
      ok('replica', 'list', 'vol-rep', '--pids'),
      ok('replica', 'list', 'vol-rep', '--node', 'node-2'),
      ok('volume', 'get', 'vol-rep'),
    ]);
    assert.match(list, /^NAME\s+VOLUME\s+NODE\s+STATE\s+MODE\s+PID\s+ADDRESS\nvol-rep-r-00000001\s+vol-rep\s+node-1\s+running\s+4242\s+127\.0\.0\.1:10000\n/);
    assert.equal(pids, '4242\n', 'only running replicas have a pid to print');
    assert.doesNotMatch(onNode, /00000001/);
    assert.match(get, /REPLICA\s+NODE\s+STATE\s+MODE\s+PID\s+REBUILD\nvol-rep-r-00000001\s+node-1\s+running\s+4242/);
  });

  test('attach refuses bad host options (1), times out waiting (6), and detach refuses a damaged record (5)', async () => {
    await ok('volume', 'create', 'vol-host', '--size', '1Gi');
    const [formatAlone, maintenanceMount, xfs, zero, waited] = await Promise.all([
      cli('volume', 'attach', 'vol-host', '--node', 'node-1', '--format', 'ext4'),
      cli('volume', 'attach', 'vol-host', '--node', 'node-1', '--maintenance', '--mount', join(dir, 'm')),
      cli('volume', 'attach', 'vol-host', '--node', 'node-1', '--mount', join(dir, 'm'), '--format', 'xfs'),
      cli('volume', 'attach', 'vol-host', '--node', 'node-1', '--wait', '--timeout', '0'),
      // No manager runs here: the volume never becomes attached.
      cli('volume', 'attach', 'vol-host', '--node', 'node-1', '--wait', '--timeout', '1'),
    ]);
    assert.deepEqual([formatAlone, maintenanceMount, xfs, zero].map((r) => r.code), [1, 1, 1, 1]);
    assert.match(formatAlone.stderr, /--format needs --mount/);
    assert.equal(waited.code, 6, waited.stderr);
    assert.match(waited.stderr, /attaching to node-1: not done after 1 s\nhint: /);
    mkdirSync(join(runDir, 'attachments'), { recursive: true });
    writeFileSync(join(runDir, 'attachments', 'vol-host.json'), '{"version":1,"volume":"vol-host","uri":"u","steps":[{"kind":"rm"}]}');
    const damaged = await cli('volume', 'detach', 'vol-host');
    assert.equal(damaged.code, 5, damaged.stderr);
    assert.match(damaged.stderr, /not a Shorthorn attachment record/);
    const again = await cli('volume', 'attach', 'vol-host', '--node', 'node-1', '--device');
    assert.equal(again.code, 5, 'a damaged record is not overwritten either');
    rmSync(join(runDir, 'attachments', 'vol-host.json'));
    assert.match(await ok('volume', 'detach', 'vol-host'), /detach requested/);
  });

  test('volume get --until healthy shows rebuild progress and waits for the rebuild (6 on timeout, 0 once healed)', async () => {
    await ok('volume', 'create', 'vol-watch', '--size', '1Gi', '--replicas', '2');
    const volume = await store.get('Volume', 'vol-watch');
    await store.updateStatus({ ...volume, status: { ...(volume.status as object), state: 'attached', robustness: 'degraded', currentNodeID: 'node-1' } });
    const replica = structuredClone(resourceExamples.Replica);
    for (const [name, node] of [['vol-watch-r-00000001', 'node-1'], ['vol-watch-r-00000002', 'node-2']] as const) {
      await store.create({ ...replica, metadata: { name }, spec: { ...replica.spec, volumeName: 'vol-watch', nodeID: node }, status: { currentState: 'running', pid: 5000 } });
    }
    const engine = structuredClone(resourceExamples.Engine);
    const rebuilding = {
      currentState: 'running' as const,
      currentSize: 1024 ** 3,
      replicaModeMap: { 'vol-watch-r-00000001': 'RW' as const, 'vol-watch-r-00000002': 'WO' as const },
      rebuildStatus: { 'vol-watch-r-00000002': { isRebuilding: true, progress: 40 } },
    };
    await store.create({ ...engine, metadata: { name: 'vol-watch-e-0' }, spec: { ...engine.spec, volumeName: 'vol-watch' }, status: rebuilding });
    const waiting = await cli('volume', 'get', 'vol-watch', '--until', 'healthy', '--timeout', '2');
    assert.equal(waiting.code, 6, waiting.stderr);
    // Not a terminal: a time stamp, and the line set printed once while it does not change.
    assert.match(waiting.stdout, /^\d\d:\d\d:\d\d volume vol-watch: attached, degraded, 1\/2 replicas RW\n/);
    assert.match(waiting.stdout, /\n\s+vol-watch-r-00000002 {2}node-2 {2}rebuilding \[#{8}-{12}\] {2}40%\n/);
    assert.equal(waiting.stdout.match(/volume vol-watch:/g)?.length, 1);
    const current = await store.get('Engine', 'vol-watch-e-0');
    await store.updateStatus({ ...current, status: { ...rebuilding, replicaModeMap: { 'vol-watch-r-00000001': 'RW', 'vol-watch-r-00000002': 'RW' }, rebuildStatus: { 'vol-watch-r-00000002': { isRebuilding: false, progress: 100, state: 'done' } } } });
    const still = await cli('volume', 'get', 'vol-watch', '--until', 'healthy', '--timeout', '1');
    assert.equal(still.code, 6, 'every replica RW but the volume still degraded: not healed yet');
    const healthy = await store.get('Volume', 'vol-watch');
    await store.updateStatus({ ...healthy, status: { ...(healthy.status as object), robustness: 'healthy' } });
    const healed = await ok('volume', 'get', 'vol-watch', '--until', 'healthy', '--timeout', '5');
    assert.match(healed, /attached, healthy, 2\/2 replicas RW/);
    assert.equal((await cli('volume', 'get', 'vol-watch', '--until', 'soon')).code, 1);
  });
});
