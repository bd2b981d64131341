// The real CLI against a real `shorthorn api` process on the embedded store: outputs, --json,
// exit codes (0 ok, 1 usage, 2 not found, 3 conflict, 4 unreachable/other), the token file, and
// the live event stream over a socket. The test writes status as the manager would.
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
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
let token: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shorthorn-cli-'));
  api = await startDaemon({ args: ['api', '--store', `embedded:${dir}`, '--port', '0'], readyPattern: /listening on (http:\/\/127\.0\.0\.1:\d+)/ });
  url = api.ready[1] ?? '';
  store = openStore({ backend: 'embedded', dataDir: dir, pollIntervalMs: 5 });
  for (const name of ['node-1', 'node-2']) await store.create({ ...structuredClone(resourceExamples.Node), metadata: { name } });
  const { readFile } = await import('node:fs/promises');
  token = (await readFile(join(dir, 'api-token'), 'utf8')).trim();
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

async function setVolumeStatus(name: string, status: Record<string, unknown>): Promise<void> {
  const current = await store.get('Volume', name);
  await store.updateStatus({ ...current, status: { ...(current.status as object), ...status } });
}

describe('shorthorn api', () => {
  test('keeps its token in DATA/api-token with mode 0600 and refuses calls without it', async () => {
    const info = await stat(join(dir, 'api-token'));
    assert.equal(info.mode & 0o777, 0o600);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const refused = await fetch(`${url}/v1/volumes`);
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { code: string }).code, 'unauthorized');
  });

  test('streams store changes as server-sent events', async () => {
    const abort = new AbortController();
    const response = await fetch(`${url}/v1/events/stream?kind=Volume`, { headers: { authorization: `Bearer ${token}` }, signal: abort.signal });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/event-stream');
    const reader = response.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    let text = '';
    const first = await reader.read(); // the greeting: the subscription is live from here on
    text += new TextDecoder().decode(first.value);
    await ok('volume', 'create', 'vol-sse', '--size', '1Gi');
    while (!/event: ADDED\ndata: \{[^\n]*"name":"vol-sse"/.test(text)) {
      const chunk = await reader.read();
      assert.ok(!chunk.done, `stream ended before the event arrived:\n${text}`);
      text += new TextDecoder().decode(chunk.value);
    }
    abort.abort();
    await reader.cancel().catch(() => undefined);
    const bad = await fetch(`${url}/v1/events/stream?kind=Nope`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(bad.status, 400);
  });
});

describe('shorthorn CLI', () => {
  test('volume create, list, get, expand, replicas, delete', async () => {
    assert.match(await ok('volume', 'create', 'vol-a', '--size', '2Gi', '--replicas', '2'), /volume vol-a created \(2 GiB, 2 replicas\)/);
    const list = await ok('volume', 'list');
    assert.match(list, /^NAME\s+STATE\s+ROBUSTNESS\s+SIZE\s+REPLICAS\s+NODE\n/);
    assert.match(list, /vol-a\s+creating\s+unknown\s+2 GiB\s+2/);
    const json = JSON.parse(await ok('volume', 'list', '--json')) as { id: string; spec: { size: number } }[];
    assert.equal(json.find((v) => v.id === 'vol-a')?.spec.size, 2 * 1024 ** 3);
    assert.match(await ok('volume', 'get', 'vol-a'), /Size:\s+2 GiB \(2147483648 bytes\)/);
    assert.match(await ok('volume', 'expand', 'vol-a', '--size', '3Gi'), /size is now 3 GiB/);
    assert.match(await ok('volume', 'replicas', 'vol-a', '3'), /3 replicas/);
    assert.match(await ok('volume', 'delete', 'vol-a'), /deleted/);
  });

  test('exit codes: usage 1, not found 2, conflict 3, unreachable 4', async () => {
    await ok('volume', 'create', 'vol-b', '--size', '1Gi');
    const wrongToken = join(dir, 'wrong-token');
    await writeFile(wrongToken, `${'0'.repeat(64)}\n`);
    const other = (...args: string[]) => run(process.execPath, [shorthornBin, ...args], { allowFailure: true });
    // Independent invocations run at once: each CLI start costs about a second of CPU.
    const [duplicate, missing, badName, badSize, noSize, shrink, unknown, unreachable, refused, noFile] = await Promise.all([
      cli('volume', 'create', 'vol-b', '--size', '1Gi'),
      cli('volume', 'get', 'nope'),
      cli('volume', 'create', '../x', '--size', '1Gi'),
      cli('volume', 'create', 'vol-c', '--size', 'huge'),
      cli('volume', 'create', 'vol-c'),
      cli('volume', 'expand', 'vol-b', '--size', '1Mi'),
      cli('volume', 'frobnicate'),
      other('volume', 'list', '--api', 'http://127.0.0.1:1', '--token-file', join(dir, 'api-token')),
      other('volume', 'list', '--api', url, '--token-file', wrongToken),
      other('volume', 'list', '--api', url, '--token-file', join(dir, 'absent')),
    ]);
    assert.equal(duplicate.code, 3);
    assert.match(duplicate.stderr, /exists already/);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no volume named "nope"/);
    assert.equal(badName.code, 1);
    assert.equal(badSize.code, 1);
    assert.equal(noSize.code, 1, 'missing --size');
    assert.equal(shrink.code, 1, 'shrinking is refused');
    assert.equal(unknown.code, 1);
    assert.equal(unreachable.code, 4);
    assert.match(unreachable.stderr, /hint: is the API running/);
    assert.equal(refused.code, 4);
    assert.match(refused.stderr, /wrong bearer token/);
    assert.equal(noFile.code, 4);
    assert.match(noFile.stderr, /hint: pass --token-file/);
  });

  test('attach and detach; attaching elsewhere is a conflict', async () => {
    await ok('volume', 'create', 'vol-att', '--size', '1Gi');
    assert.match(await ok('volume', 'attach', 'vol-att', '--node', 'node-1'), /attach to node-1 requested/);
    const elsewhere = await cli('volume', 'attach', 'vol-att', '--node', 'node-2');
    assert.equal(elsewhere.code, 3);
    assert.match(elsewhere.stderr, /detach it there first/);
    assert.equal((await cli('volume', 'attach', 'vol-att', '--node', 'node-9')).code, 1);
    await ok('volume', 'detach', 'vol-att');
    await ok('volume', 'attach', 'vol-att', '--node', 'node-2', '--maintenance');
    const attachment = await store.get('VolumeAttachment', 'vol-att');
    const tickets = (attachment.spec as { attachmentTickets: Record<string, { nodeID: string; parameters?: { disableFrontend?: boolean } }> }).attachmentTickets;
    assert.equal(tickets['shorthorn-ui']?.nodeID, 'node-2');
    assert.equal(tickets['shorthorn-ui']?.parameters?.disableFrontend, true);
  });

  test('snapshot create, list, revert, purge, delete', async () => {
    await ok('volume', 'create', 'vol-snap', '--size', '1Gi');
    const detached = await cli('snapshot', 'create', 'vol-snap', '--name', 's1');
    assert.equal(detached.code, 3);
    assert.match(detached.stderr, /snapshotCreate is not possible now/);
    await setVolumeStatus('vol-snap', { state: 'attached', robustness: 'healthy', currentNodeID: 'node-1', frontendDisabled: true });
    assert.match(await ok('snapshot', 'create', 'vol-snap', '--name', 's1', '--label', 'app=db'), /snapshot s1 of volume vol-snap requested/);
    assert.equal((await cli('snapshot', 'create', 'vol-snap', '--label', 'nokey')).code, 1);
    assert.match(await ok('snapshot', 'list', 'vol-snap'), /^NAME\s+CREATED\s+SIZE\s+READY\s+REMOVED\s+CHECKSUM\ns1\s+no/);
    const listed = JSON.parse(await ok('snapshot', 'list', 'vol-snap', '--json')) as { id: string; spec: { labels: Record<string, string> } }[];
    assert.deepEqual(listed.map((s) => [s.id, s.spec.labels]), [['s1', { app: 'db' }]]);
    await ok('snapshot', 'revert', 'vol-snap', 's1');
    await ok('snapshot', 'purge', 'vol-snap');
    const annotations = (await store.get('Volume', 'vol-snap')).metadata.annotations ?? {};
    assert.equal(annotations['shorthorn.io/snapshot-revert-requested'], 's1');
    await ok('snapshot', 'delete', 'vol-snap', 's1');
    assert.equal((await cli('snapshot', 'delete', 'vol-snap', 's1')).code, 2);
  });

  test('node list and update', async () => {
    const list = await ok('node', 'list');
    assert.match(list, /^NAME\s+READY\s+SCHEDULABLE\s+EVICTING\s+DISKS\s+USED\s+TAGS\n/);
    assert.match(list, /node-1\s+yes\s+yes\s+no\s+1\s+20 GiB \/ 100 GiB/);
    assert.match(await ok('node', 'update', 'node-2', '--scheduling', 'off', '--tags', 'fast,ssd'), /node-2\s+yes\s+no\s+no\s+1\s+\S+ GiB \/ 100 GiB\s+fast,ssd/);
    const codes = await Promise.all([
      cli('node', 'update', 'node-2', '--scheduling', 'maybe'),
      cli('node', 'update', 'node-2'),
      cli('node', 'update', 'node-9', '--eviction', 'on'),
    ]);
    assert.deepEqual(codes.map((r) => r.code), [1, 1, 2]);
  });

  test('setting list, get, set', async () => {
    const [list, got] = await Promise.all([ok('setting', 'list'), ok('setting', 'get', 'default-replica-count')]);
    assert.match(list, /default-replica-count\s+3\s+3\s+General/);
    assert.match(got, /Range:\s+1–10/);
    assert.match(await ok('setting', 'set', 'default-replica-count', '2'), /default-replica-count = 2/);
    const [refused, unknown] = await Promise.all([cli('setting', 'set', 'default-replica-count', '99'), cli('setting', 'get', 'no-such')]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /out of range/);
    assert.equal(unknown.code, 2);
    assert.equal((JSON.parse(await ok('setting', 'get', 'default-replica-count', '--json')) as { value: string }).value, '2');
  });
});
