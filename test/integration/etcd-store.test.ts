// The store conformance suite against a real etcd (Debian's etcd-server) on 127.0.0.1, plus what
// only it has: a watch ends with 'unavailable' when etcd goes away and resumes after a restart.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { EtcdStore } from '../../src/control/store/etcd-store.ts';
import { isStoreError } from '../../src/control/store/resource-store.ts';
import { storeConformance, volume, nextEvents } from '../../src/control/store/store.conformance.ts';
import { startEtcd, type EtcdServer } from '../harness/etcd.ts';

const childScript = fileURLToPath(new URL('../harness/store-child.js', import.meta.url));
let etcd: EtcdServer | undefined;
let prefixes = 0;

function server(): EtcdServer {
  assert.ok(etcd !== undefined, 'etcd is running');
  return etcd;
}

before(async () => {
  etcd = await startEtcd();
});

after(async () => {
  await etcd?.stop();
});

storeConformance({
  name: 'etcd',
  childScript,
  leaseTtlMs: 1000,
  createBackend() {
    // A fresh prefix per test: an empty store without restarting etcd.
    const prefix = `/shorthorn-test-${process.pid}-${prefixes++}`;
    const endpoints = [server().endpoint];
    return Promise.resolve({
      spec: { backend: 'etcd', endpoints, prefix },
      open: () => new EtcdStore({ endpoints, prefix }),
      passTime: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)), // lease time is etcd's real time
      dispose: () => Promise.resolve(),
    });
  },
});

test('etcd store: a watch ends with unavailable when etcd stops, and resumes after a restart', { timeout: 120_000 }, async () => {
  const own = await startEtcd();
  let restarted: EtcdServer | undefined;
  const store = new EtcdStore({ endpoints: [own.endpoint], prefix: '/restart', requestTimeoutMs: 2000 });
  try {
    const created = await store.create(volume('r'));
    const watch = store.watch('Volume', { resourceVersion: created.metadata.resourceVersion ?? '' })[Symbol.asyncIterator]();
    await own.stop({ keepData: true });
    await assert.rejects(watch.next(), (e: unknown) => isStoreError(e, 'unavailable'));
    await assert.rejects(store.get('Volume', 'r'), (e: unknown) => isStoreError(e, 'unavailable'));
    restarted = await startEtcd({ dataDir: own.dataDir });
    const again = new EtcdStore({ endpoints: [restarted.endpoint], prefix: '/restart' });
    try {
      const updated = await again.update({ ...(await again.get('Volume', 'r')), spec: { size: 2 } });
      const resumed = again.watch('Volume', { resourceVersion: created.metadata.resourceVersion ?? '' });
      assert.deepEqual((await nextEvents(resumed[Symbol.asyncIterator](), 1))[0]?.object, updated);
      resumed.close();
    } finally {
      await again.close();
    }
  } finally {
    await store.close();
    await (restarted ?? own).stop();
  }
});
