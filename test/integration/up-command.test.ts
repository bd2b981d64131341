// `shorthorn up` as a process: a manager, two node agents and the API come up on one data
// directory; the nodes register, a volume is placed on them; SIGTERM stops every daemon it started.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Node } from '../../src/control/resources/node.ts';
import { apiVersion } from '../../src/control/resources/object-meta.ts';
import type { Replica } from '../../src/control/resources/replica.ts';
import { validateResource, withDefaults } from '../../src/control/resources/validate-resource.ts';
import type { Volume } from '../../src/control/resources/volume.ts';
import { SqliteStore } from '../../src/control/store/sqlite-store.ts';
import { startDaemon, stopAll, waitFor, withTempDir } from '../harness/daemon.ts';

after(stopAll);

/** Live processes whose command line mentions `dir` (the daemons `up` started from it). */
function processesUsing(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2))) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) pids.push(Number(entry));
    } catch {
      // Ended while we looked.
    }
  }
  return pids;
}

test('shorthorn up runs a manager, node agents and the API; SIGTERM stops them', async () => {
  await withTempDir('up', async (dir) => {
    const up = await startDaemon({ args: ['up', '--data', dir, '--nodes', '2', '--port', '0'], readyPattern: /2 node\(s\), manager and API running/, timeoutMs: 60_000 });
    assert.match(up.output(), /\[api\] .*listening on http:\/\/127\.0\.0\.1:\d+/);
    const store = new SqliteStore({ dataDir: join(dir, 'store'), pollIntervalMs: 10 });
    try {
      await waitFor('both nodes ready', async () => {
        const nodes = (await store.list('Node')).items as Node[];
        const ready = nodes.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
        return ready.length === 2 ? true : undefined;
      });
      const volume = validateResource('Volume', withDefaults('Volume', {
        apiVersion, kind: 'Volume', metadata: { name: 'vol-up' }, spec: { size: 1024 * 1024, numberOfReplicas: 2 },
      }));
      assert.ok(volume.ok);
      await store.create(volume.value);
      await waitFor('the volume placed on both nodes', async () => {
        const v = (await store.get('Volume', 'vol-up')) as Volume;
        const replicas = ((await store.list('Replica')).items as Replica[]).map((r) => r.spec.nodeID).sort();
        return v.status?.state === 'detached' && replicas.join() === 'node-1,node-2' ? true : undefined;
      });
      assert.ok(processesUsing(dir).length >= 4, 'manager, two agents and the API run');
      await up.stop();
      await waitFor('every daemon ended', () => (processesUsing(dir).length === 0 ? true : undefined));
    } finally {
      for (const pid of processesUsing(dir)) process.kill(pid, 'SIGKILL');
      await store.close();
    }
  });
});
