// Seeded fuzzing of the API with random and hostile requests: the answer is never a 5xx, the
// server keeps serving, and every stored resource still passes validation afterwards.
// Replay a failure with API_FUZZ_SEED=<seed printed below>.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { kindNames } from '../control/resources/resource-kinds.ts';
import { validateResource } from '../control/resources/validate-resource.ts';
import { SeededRandom } from '../lib/random.ts';
import { startApiFixture, type ApiFixture } from './testing/api-fixture.ts';

const seed = Number(process.env['API_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 32));
const requests = Number(process.env['API_FUZZ_REQUESTS'] ?? 1500);
let api: ApiFixture;

before(async () => {
  api = await startApiFixture();
  await api.seedNode('node-1');
  await api.seedNode('node-2');
  for (const name of ['vol-a', 'vol-b']) {
    assert.equal((await api.call('POST', '/v1/volumes', { body: { name, size: 1 << 30, numberOfReplicas: 2 } })).status, 201);
  }
  await api.setVolumeStatus('vol-b', { state: 'attached', robustness: 'healthy', frontendDisabled: true });
});
after(async () => {
  await api.close();
});

const hostileStrings = [
  '', '../x', '..', 'a/b', '%2e%2e%2fx', 'x'.repeat(300), 'VOL', 'vol\u0000a', 'vol-a\n', '${7*7}', '<script>', 'é', '🐄',
  '__proto__', 'constructor', 'prototype', 'null', 'true', '-1', '1e309', '0x10', ' vol-a', 'vol-a;rm -rf /',
];
const fieldNames = [
  'name', 'size', 'numberOfReplicas', 'minimumWriteReplicas', 'frontend', 'accessMode', 'dataLocality', 'nodeID', 'labels',
  'hostId', 'attachmentID', 'disableFrontend', 'forceDetach', 'replicaCount', 'names', 'value', 'tags', 'allowScheduling',
  'evictionRequested', 'disks', 'path', 'storageReserved', 'diskSelector', 'nodeSelector', 'standby', 'fromBackup', '__proto__',
];
const numbers = [0, -1, 1, 4096, 2 ** 30, 2 ** 53, 2 ** 53 + 2, 1e308, -1e308, 0.5, 4097, 64 * 1024 ** 4, 64 * 1024 ** 4 + 4096, 3, 11];

function pick<T>(random: SeededRandom, items: readonly T[]): T {
  return items[random.int(items.length)] as T;
}

function name(random: SeededRandom): string {
  const roll = random.int(10);
  if (roll < 4) return pick(random, ['vol-a', 'vol-b', 'vol-c', 'node-1', 'node-2', 'default-replica-count', 'backup-target', 'snap-1']);
  if (roll < 7) return pick(random, hostileStrings);
  return `n${random.int(1000)}`;
}

function value(random: SeededRandom, depth: number): unknown {
  switch (random.int(depth > 3 ? 5 : 8)) {
    case 0:
      return pick(random, numbers);
    case 1:
      return pick(random, hostileStrings);
    case 2:
      return random.int(2) === 0;
    case 3:
      return null;
    case 4:
      return name(random);
    case 5:
      return Array.from({ length: random.int(4) }, () => value(random, depth + 1));
    case 6:
      return object(random, depth + 1);
    default:
      return String(pick(random, numbers));
  }
}

function object(random: SeededRandom, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = random.int(5); i > 0; i--) {
    Object.defineProperty(out, random.int(4) === 0 ? pick(random, hostileStrings) : pick(random, fieldNames), {
      value: value(random, depth),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

const actions = ['attach', 'detach', 'salvage', 'expand', 'updateReplicaCount', 'snapshotCreate', 'snapshotList', 'snapshotDelete', 'snapshotRevert', 'snapshotPurge', 'diskUpdate', 'bogus', ''];

const volumeNames = ['vol-a', 'vol-b', 'vol-c'];
const settingNamesUsed = ['default-replica-count', 'backup-target', 'storage-over-provisioning-percentage', 'current-shorthorn-version'];

/** Mostly-right calls with one or two wrong values: they get past routing into the handlers. */
function aimedRequest(random: SeededRandom): { method: string; url: string; rawBody: string } {
  const body = object(random, 1);
  const vol = random.int(5) === 0 ? name(random) : pick(random, volumeNames);
  switch (random.int(6)) {
    case 0:
      return { method: 'POST', url: '/v1/volumes', rawBody: JSON.stringify({ name: vol, size: pick(random, numbers), ...body }) };
    case 1:
    case 2: {
      const act = pick(random, actions);
      const input = { hostId: pick(random, ['node-1', 'node-2', 'node-3']), name: pick(random, ['snap-1', 'snap-2']), size: pick(random, numbers), replicaCount: pick(random, numbers) };
      const picked = Object.fromEntries(Object.entries(input).filter(() => random.int(3) === 0));
      return { method: 'POST', url: `/v1/volumes/${encodeURIComponent(vol)}?action=${act}`, rawBody: JSON.stringify(random.int(3) === 0 ? { ...picked, ...body } : picked) };
    }
    case 3:
      return { method: 'PUT', url: `/v1/nodes/${pick(random, ['node-1', 'node-2', 'node-3'])}`, rawBody: JSON.stringify(body) };
    case 4:
      return {
        method: 'POST',
        url: `/v1/nodes/${pick(random, ['node-1', 'node-2'])}?action=diskUpdate`,
        rawBody: JSON.stringify({ disks: { [random.int(3) === 0 ? name(random) : 'd1']: { path: pick(random, ['/mnt/d1', 'rel', '/a/../b', '/mnt/d2']), ...body } } }),
      };
    default:
      return { method: 'PUT', url: `/v1/settings/${pick(random, settingNamesUsed)}`, rawBody: JSON.stringify({ value: random.int(2) === 0 ? String(pick(random, numbers)) : value(random, 1) }) };
  }
}

function request(random: SeededRandom): { method: string; url: string; rawBody?: string; contentType?: string } {
  if (random.int(2) === 0) return aimedRequest(random);
  const collection = pick(random, ['volumes', 'nodes', 'settings', 'replicas', 'engines', 'snapshots', 'volumeattachments', 'events', 'nothing']);
  const method = pick(random, ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'POST', 'POST', 'PUT']);
  let url = `/v1/${collection}`;
  if (random.int(3) !== 0) url += `/${encodeURIComponent(name(random))}`;
  if (random.int(2) === 0) url += `?action=${encodeURIComponent(pick(random, actions))}`;
  if (random.int(20) === 0) url = pick(random, ['/metrics', '/v1/openapi.json', '/v1', '/', '/v1/events', '/v1/nodetags', '/v1/%zz', '//v1//volumes']);
  if (method === 'GET' || method === 'DELETE') return { method, url };
  const roll = random.int(10);
  if (roll === 0) return { method, url, rawBody: pick(random, ['{', '[]', '"x"', '{"a":}', '\u0000', '1e999999', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}']) };
  if (roll === 1) return { method, url, rawBody: 'size=1', contentType: pick(random, ['text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream']) };
  return { method, url, rawBody: JSON.stringify(random.int(8) === 0 ? value(random, 0) : object(random, 0)) };
}

test(`random and hostile requests never get a 5xx (API_FUZZ_SEED=${seed}, ${requests} requests)`, async () => {
  process.stdout.write(`API fuzz seed ${seed}\n`);
  const random = new SeededRandom(seed);
  const statuses = new Map<number, number>();
  for (let i = 0; i < requests; i++) {
    const req = request(random);
    const token = random.int(30) === 0 ? pick(random, [null, '', 'wrong']) : undefined;
    const reply = await api.call(req.method, req.url, {
      ...(req.rawBody === undefined ? {} : { rawBody: req.rawBody }),
      ...(req.contentType === undefined ? {} : { contentType: req.contentType }),
      ...(token === undefined ? {} : { token }),
    });
    statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
    assert.ok(reply.status < 500, `seed ${seed} request ${i}: ${req.method} ${req.url} ${req.rawBody ?? ''} → ${reply.status} ${reply.text.slice(0, 500)}`);
    if (reply.status >= 400 && req.url !== '/metrics') {
      assert.equal(typeof reply.body['code'], 'string', `seed ${seed} request ${i}: error without a code: ${reply.text.slice(0, 300)}`);
      assert.equal(typeof reply.body['message'], 'string');
    }
  }
  process.stdout.write(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}\n`);
  assert.equal((await api.call('GET', '/healthz', { token: null })).status, 200);
  assert.equal((await api.call('GET', '/v1/volumes')).status, 200);
  for (const kind of kindNames) {
    for (const item of (await api.store.list(kind)).items) {
      const checked = validateResource(kind, item);
      assert.ok(checked.ok, `seed ${seed}: stored ${kind} ${item.metadata.name} fails validation: ${JSON.stringify(checked.ok ? [] : checked.problems)}`);
    }
  }
  assert.deepEqual(api.logged, [], `seed ${seed}: server-side errors were logged`);
  assert.ok((statuses.get(200) ?? 0) + (statuses.get(201) ?? 0) > 0, 'some requests must succeed, or the fuzzer tests nothing');
});
